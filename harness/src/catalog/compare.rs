//! Comparing two fingerprints: each difference named, as a row changed, added (with the
//! extension it belongs to) or removed, and rows initdb numbered after the collations it
//! imported compared by name only when two clusters imported different spans.

use super::{FIRST_NORMAL_OBJECT_ID, Fingerprint, Row};

/// A difference between the reference and a restored database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Change {
    /// A built-in row whose columns differ.
    Changed { what: String },
    /// A row the reference does not have.
    Added { what: String, extension: Option<String> },
    /// A built-in row the restored database no longer has (dropped or renamed).
    Removed { what: String },
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Change::Changed { what } => write!(f, "the backup changed {what}"),
            Change::Added { what, extension: None } => write!(f, "the backup added {what}"),
            Change::Added { what, extension: Some(e) } => {
                write!(f, "the backup added {what} (a member of extension `{e}`)")
            }
            Change::Removed { what } => write!(f, "the backup removed or renamed {what}"),
        }
    }
}

/// The differences between `reference` and `actual`, added ones first, each named.
///
/// When both clusters imported the same span of collations (the same cluster before and after
/// a restore), every row is compared whole. Otherwise (a base backup against a fresh cluster of
/// the image) what initdb made after importing collations (the snowball dictionaries,
/// `information_schema`, plpgsql) has other OIDs in each, and those rows are compared by name
/// only.
pub(crate) fn compare(reference: &Fingerprint, actual: &Fingerprint) -> Vec<Change> {
    let exact = reference.imported_collations == actual.imported_collations;
    let stable_below = [reference.imported_collations, actual.imported_collations]
        .iter()
        .map(|c| c.map_or(FIRST_NORMAL_OBJECT_ID, |(first, _)| first))
        .min()
        .unwrap_or(FIRST_NORMAL_OBJECT_ID);
    let comparable = |a: &Row, b: &Row| {
        exact
            || (a.oid < stable_below && b.oid < stable_below)
            || (a.oid >= FIRST_NORMAL_OBJECT_ID && b.oid >= FIRST_NORMAL_OBJECT_ID)
    };
    let mut added = Vec::new();
    let mut changed = Vec::new();
    let mut removed = Vec::new();
    for (what, row) in &actual.rows {
        match reference.rows.get(what) {
            None => added.push(Change::Added { what: what.clone(), extension: row.extension.clone() }),
            Some(before) if before.digest != row.digest && comparable(before, row) => {
                changed.push(Change::Changed { what: what.clone() })
            }
            Some(_) => {}
        }
    }
    for what in reference.rows.keys() {
        if !actual.rows.contains_key(what) {
            removed.push(Change::Removed { what: what.clone() });
        }
    }
    added.into_iter().chain(changed).chain(removed).collect()
}

/// Whether `change` is a function a newer minor release's initdb added: an addition to
/// pg_catalog with an OID initdb gives, of no extension, under a name none of the reference's
/// functions has (so that no call the reference resolves can resolve to it).
pub(super) fn of_a_newer_minor(change: &Change, reference: &Fingerprint, actual: &Fingerprint) -> bool {
    const FUNCTION: &str = "function pg_catalog.";
    let Change::Added { what, extension: None } = change else { return false };
    let Some(name) = what.strip_prefix(FUNCTION).and_then(|rest| rest.split_once('(')).map(|(name, _)| name) else {
        return false;
    };
    let built_in = actual.rows.get(what).is_some_and(|row| row.oid < FIRST_NORMAL_OBJECT_ID);
    let named_before = reference
        .rows
        .keys()
        .filter_map(|key| key.strip_prefix(FUNCTION)?.split_once('('))
        .any(|(known, _)| known == name);
    built_in && !named_before
}

#[cfg(test)]
pub(super) mod tests {
    use std::collections::BTreeMap;

    use super::*;

    /// A catalog row of this oid and digest, of no extension (the catalog's tests share it).
    pub(in crate::catalog) fn row(oid: u32, digest: &str) -> Row {
        Row { oid, digest: digest.into(), extension: None }
    }

    /// A fingerprint of these rows (the catalog's tests share it).
    pub(in crate::catalog) fn print(rows: &[(&str, Row)], collations: Option<(u32, u32)>) -> Fingerprint {
        Fingerprint {
            rows: rows.iter().map(|(k, r)| (k.to_string(), r.clone())).collect(),
            imported_collations: collations,
            summary: BTreeMap::new(),
        }
    }

    #[test]
    fn the_same_catalog_has_no_difference() {
        let a = print(&[("function pg_catalog.lower(text)", row(870, "aa"))], Some((12351, 13223)));
        assert!(compare(&a, &a.clone()).is_empty());
    }

    #[test]
    fn a_changed_an_added_and_a_removed_row_are_each_named() {
        let before = print(
            &[
                ("function pg_catalog.lower(text)", row(870, "aa")),
                ("function pg_catalog.upper(text)", row(871, "bb")),
                ("function pg_catalog.quote_ident(text)", row(1282, "cc")),
            ],
            None,
        );
        let mut after = before.clone();
        after.rows.get_mut("function pg_catalog.lower(text)").unwrap().digest = "zz".into();
        after.rows.remove("function pg_catalog.quote_ident(text)");
        after.rows.insert("function pg_catalog.quote_ident2(text)".into(), row(1282, "cd"));
        after.rows.insert(
            "aggregate pg_catalog.count(text)".into(),
            Row { oid: 16500, digest: "dd".into(), extension: Some("evil".into()) },
        );
        let changes = compare(&before, &after);
        let lines: Vec<String> = changes.iter().map(|c| c.to_string()).collect();
        assert_eq!(
            lines,
            [
                "the backup added aggregate pg_catalog.count(text) (a member of extension `evil`)",
                // A renamed built-in keeps its OID and shows under its new name.
                "the backup added function pg_catalog.quote_ident2(text)",
                "the backup changed function pg_catalog.lower(text)",
                "the backup removed or renamed function pg_catalog.quote_ident(text)",
            ]
        );
    }

    /// PostgreSQL 15.20's initdb adds `binary_upgrade_set_next_attribute_versions`, which 15.18's
    /// does not: a base backup of a 15.20 cluster recovered on an image of 15.18 has it.
    #[test]
    fn only_a_function_initdb_added_under_a_new_name_is_of_a_newer_minor() {
        let reference = print(&[("function pg_catalog.lower(text)", row(870, "aa"))], None);
        let mut actual = reference.clone();
        let rows = [
            ("function pg_catalog.binary_upgrade_set_next_attribute_versions(pg_catalog.pg_lsn[])", 6433, None),
            // An overload of a name the reference calls could win its resolution.
            ("function pg_catalog.lower(text, integer)", 6434, None),
            // Made after initdb (a dump's `CREATE FUNCTION pg_catalog.x`), or an extension's.
            ("function pg_catalog.helper(text)", 16500, None),
            ("function pg_catalog.vendor(text)", 6435, Some("evil".to_owned())),
        ];
        for (what, oid, extension) in &rows {
            actual.rows.insert(what.to_string(), Row { oid: *oid, digest: "bb".into(), extension: extension.clone() });
        }
        let newer: Vec<bool> =
            compare(&reference, &actual).iter().map(|c| of_a_newer_minor(c, &reference, &actual)).collect();
        let named: Vec<String> = compare(&reference, &actual).iter().map(|c| c.to_string()).collect();
        assert_eq!(named.len(), 4, "{named:?}");
        for (change, newer) in named.iter().zip(newer) {
            assert_eq!(newer, change.contains("binary_upgrade_set_next_attribute_versions"), "{change}");
        }
        // A built-in changed is never one.
        let changed = Change::Changed { what: "function pg_catalog.lower(text)".into() };
        assert!(!of_a_newer_minor(&changed, &reference, &actual));
    }

    #[test]
    fn rows_initdb_made_after_the_collations_are_compared_by_name_when_the_clusters_imported_others() {
        let before = print(
            &[
                ("function pg_catalog.lower(text)", row(870, "aa")),
                ("schema information_schema", row(13283, "ns1")),
                ("function pg_catalog.plpgsql_call_handler()", row(13634, "h1")),
            ],
            Some((12351, 13223)),
        );
        // Another machine's initdb imported fewer collations: what came after has other OIDs.
        let mut after = print(
            &[
                ("function pg_catalog.lower(text)", row(870, "aa")),
                ("schema information_schema", row(12600, "ns2")),
                ("function pg_catalog.plpgsql_call_handler()", row(12950, "h2")),
            ],
            Some((12351, 12500)),
        );
        assert!(compare(&before, &after).is_empty());
        // A change below the imported collations is still seen, and so is a missing row.
        after.rows.get_mut("function pg_catalog.lower(text)").unwrap().digest = "zz".into();
        after.rows.remove("schema information_schema");
        let lines: Vec<String> = compare(&before, &after).iter().map(|c| c.to_string()).collect();
        assert_eq!(
            lines,
            [
                "the backup changed function pg_catalog.lower(text)",
                "the backup removed or renamed schema information_schema"
            ]
        );
        // The same span: every row is compared whole.
        let mut same = before.clone();
        same.rows.get_mut("schema information_schema").unwrap().digest = "other".into();
        assert_eq!(compare(&before, &same).len(), 1);
    }
}
