//! What a set's manifest restores, read before pgBackRest restores it. pgBackRest joins the
//! manifest's names to the data directory, and a tablespace's to the place it restores the
//! tablespace, unchecked: every name must stay inside one of them. A link is refused, but a
//! tablespace's: its place is never the one the manifest names (the source's), but a folder of
//! the drill's own that pgdrill maps it to (`--tablespace-map=<oid>=...`), and then moves into
//! `pg_tblspc/<oid>` (`restore::physical::set`).

use serde_json::Value;

use super::Ini;

/// What a set restores.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Targets {
    /// How many files.
    pub files: usize,
    /// Its tablespaces, by OID (`pg_tblspc/<oid>`), in order.
    pub tablespaces: Vec<u32>,
}

/// The OID of `pg_tblspc/<oid>`, written as PostgreSQL writes it (digits, no leading zero).
fn tablespace_of(name: &str) -> Option<u32> {
    let digits = name.strip_prefix("pg_tblspc/")?;
    let oid: u32 = digits.parse().ok().filter(|oid| *oid > 0)?;
    (oid.to_string() == digits).then_some(oid)
}

/// Whether the parts of `rest` (`a/b/c`) are names, none empty, `.` or `..`.
fn plain_parts(rest: &str) -> bool {
    rest.split('/').all(|part| !["", ".", ".."].contains(&part))
}

/// Whether a file's or a folder's name in the manifest stays inside the data directory or one of
/// the set's `tablespaces`.
fn stays_inside(name: &str, folder: bool, tablespaces: &[u32]) -> bool {
    if name == "pg_data" || (folder && name == "pg_tblspc") {
        return true;
    }
    if let Some(rest) = name.strip_prefix("pg_data/") {
        return plain_parts(rest);
    }
    let Some(rest) = name.strip_prefix("pg_tblspc/") else { return false };
    let (oid, inner) = rest.split_once('/').map_or((rest, None), |(oid, inner)| (oid, Some(inner)));
    tablespace_of(&format!("pg_tblspc/{oid}")).is_some_and(|oid| tablespaces.contains(&oid))
        && inner.is_none_or(plain_parts)
}

/// A name in a set's manifest that pgBackRest would restore somewhere pgdrill does not allow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum TargetsError {
    /// A `[backup:target]` entry under `pg_tblspc/` that is not a tablespace's link.
    #[error(
        "[backup:target] `{name}` is no tablespace pgBackRest writes (`pg_tblspc/<oid>`, a link whose tablespace-id is that OID): a hostile or damaged manifest"
    )]
    NotATablespace { name: String },
    /// A link other than one of the set's tablespaces.
    #[error("restores a link `{name}`: pgdrill restores only files and folders")]
    Link { name: String },
    /// A name that climbs out of the data directory and the set's tablespaces.
    #[error("[{section}] `{name}` leads out of the data directory: a hostile or damaged manifest")]
    LeadsOut { section: String, name: String },
}

/// The tablespaces `[backup:target]` lists: `pg_tblspc/<oid>`, a link whose `tablespace-id` is
/// that OID.
fn tablespaces(manifest: &Ini) -> Result<Vec<u32>, TargetsError> {
    let mut found = Vec::new();
    let targets = manifest.iter().filter(|(s, _)| s == "backup:target").flat_map(|(_, keys)| keys);
    for (name, value) in targets.filter(|(name, _)| name.starts_with("pg_tblspc/")) {
        let target: Value = serde_json::from_str(value).unwrap_or_default();
        let id = target["tablespace-id"].as_str().and_then(|id| tablespace_of(&format!("pg_tblspc/{id}")));
        match tablespace_of(name) {
            Some(oid) if id == Some(oid) && target["type"] == "link" => found.push(oid),
            _ => return Err(TargetsError::NotATablespace { name: name.clone() }),
        }
    }
    found.sort_unstable();
    found.dedup();
    Ok(found)
}

/// Every name the set's manifest restores stays inside the data directory or one of its
/// tablespaces, and it restores no link but its tablespaces'; what it restores.
pub(super) fn read(manifest: &Ini) -> Result<Targets, TargetsError> {
    let tablespaces = tablespaces(manifest)?;
    let mut files = 0;
    for (section, keys) in manifest {
        for (name, value) in keys {
            let inside = match section.as_str() {
                "backup:target" => {
                    (name == "pg_data" && value.contains(r#""type":"path""#)) || name.starts_with("pg_tblspc/")
                }
                "target:link" => match name.strip_prefix("pg_data/").and_then(tablespace_of) {
                    Some(oid) if tablespaces.contains(&oid) => true,
                    _ => return Err(TargetsError::Link { name: name.clone() }),
                },
                "target:file" => {
                    files += 1;
                    stays_inside(name, false, &tablespaces)
                }
                "target:path" => stays_inside(name, true, &tablespaces),
                _ => true,
            };
            if !inside {
                return Err(TargetsError::LeadsOut { section: section.clone(), name: name.clone() });
            }
        }
    }
    Ok(Targets { files, tablespaces })
}

#[cfg(test)]
mod tests {
    use super::super::parse_ini;
    use super::*;

    const MANIFEST: &str = r#"[backup:target]
pg_data={"path":"/var/lib/pgdrill/data","type":"path"}

[target:file]
pg_data/PG_VERSION={"checksum":"a","size":3,"timestamp":1}
pg_data/global/pg_control={"checksum":"b","size":8192,"timestamp":1}

[target:path]
pg_data={}
pg_data/global={}
"#;

    /// The manifest with a tablespace 16385, as pgBackRest 2.55 writes one (its link is not in
    /// `[target:link]`; the files are named from `pg_tblspc`, not `pg_data`).
    fn with_tablespace() -> String {
        MANIFEST
            .replace(
                "[backup:target]\n",
                "[backup:target]\npg_tblspc/16385={\"path\":\"/srv/space\",\"tablespace-id\":\"16385\",\"tablespace-name\":\"ts1\",\"type\":\"link\"}\n",
            )
            .replace("[target:file]\n", "[target:file]\npg_tblspc/16385/PG_17_202406281/5/16386={\"size\":8192}\n")
            .replace("[target:path]\n", "[target:path]\npg_tblspc={}\npg_tblspc/16385={}\npg_tblspc/16385/PG_17_202406281={}\n")
    }

    fn read_text(text: &str) -> Result<Targets, TargetsError> {
        read(&parse_ini(text))
    }

    #[test]
    fn every_name_stays_inside_the_data_directory() {
        assert_eq!(read_text(MANIFEST), Ok(Targets { files: 2, tablespaces: Vec::new() }));
        let escaping = MANIFEST.replace("[target:path]", "[target:path]\npg_data/../canary={}");
        let error = read_text(&escaping).unwrap_err().to_string();
        assert!(error.contains("`pg_data/../canary` leads out of the data directory"), "{error}");
        assert!(read_text(&MANIFEST.replace("pg_data/PG_VERSION=", "pg_data/../../etc/x=")).is_err());
        let linked = format!("{MANIFEST}\n[target:link]\npg_data/pg_wal={{\"destination\":\"/srv/wal\"}}\n");
        assert!(read_text(&linked).unwrap_err().to_string().contains("restores a link `pg_data/pg_wal`"));
        let elsewhere = MANIFEST.replace(
            r#"pg_data={"path":"/var/lib/pgdrill/data","type":"path"}"#,
            r#"pg_data={"path":"/x","type":"link"}"#,
        );
        assert!(read_text(&elsewhere).is_err());
    }

    #[test]
    fn a_tablespace_is_restored_and_its_names_stay_inside_it() {
        let text = with_tablespace();
        assert_eq!(read_text(&text), Ok(Targets { files: 3, tablespaces: vec![16385] }));
        // Its link, as older pgBackRest releases list it.
        let linked = format!("{text}\n[target:link]\npg_data/pg_tblspc/16385={{\"destination\":\"/srv/space\"}}\n");
        assert_eq!(read_text(&linked).map(|t| t.tablespaces), Ok(vec![16385]));
        // A file of it that climbs out, or of a tablespace the set does not have.
        for bad in ["pg_tblspc/16385/../../../etc/x", "pg_tblspc/16390/PG_17_202406281/x", "pg_tblspc/016385/x"] {
            let error =
                read_text(&text.replace("pg_tblspc/16385/PG_17_202406281/5/16386", bad)).unwrap_err().to_string();
            assert!(error.contains("leads out of the data directory"), "{bad}: {error}");
        }
        // A tablespace whose id is not its name's, or that is no link, or not a tablespace's name.
        for bad in [
            text.replace(r#""tablespace-id":"16385""#, r#""tablespace-id":"16390""#),
            text.replace(r#""type":"link"}"#, r#""type":"path"}"#),
            text.replace("pg_tblspc/16385={\"path\"", "pg_tblspc/../x={\"path\""),
        ] {
            let error = read_text(&bad).unwrap_err().to_string();
            assert!(error.contains("is no tablespace pgBackRest writes"), "{error}");
        }
        // A link of a tablespace the set does not have.
        let other = format!("{text}\n[target:link]\npg_data/pg_tblspc/16390={{\"destination\":\"/srv/other\"}}\n");
        assert!(read_text(&other).unwrap_err().to_string().contains("restores a link `pg_data/pg_tblspc/16390`"));
    }
}
