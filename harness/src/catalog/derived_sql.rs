//! The derived flags' SQL, and nothing else: one statement that returns, for the backup's own
//! objects (OIDs from 16384: the built-ins are the fingerprint's), each flag PostgreSQL acts on
//! that disagrees with what the DDL of the objects it derives from would make. Every name in it
//! is schema-qualified (see the test): the backup audited cannot answer in its place.
//!
//! Only a flag that DDL cannot leave so is returned: `relhastriggers`, `relhasrules`,
//! `relhasindex` and `relhassubclass` legitimately stay true after the last trigger, rule,
//! index or child is dropped, so only false over objects that exist is; an index may be
//! invalid, or not ready, midway through `CREATE INDEX CONCURRENTLY` (a base backup can be
//! taken then), but valid is never without ready, nor ready without live; a partition's
//! identity column shares its parent's sequence (PostgreSQL 17).

/// The catalogs the statement reads, by their fixed OIDs (checked to be the real ones first).
pub(super) const READ: [(u32, &str); 9] = [
    (1259, "pg_class"),
    (2610, "pg_index"),
    (2606, "pg_constraint"),
    (2620, "pg_trigger"),
    (2618, "pg_rewrite"),
    (2611, "pg_inherits"),
    (1249, "pg_attribute"),
    (2608, "pg_depend"),
    (3079, "pg_extension"),
];

const EQ: &str = "OPERATOR(pg_catalog.=)";
const NE: &str = "OPERATOR(pg_catalog.<>)";
const GT: &str = "OPERATOR(pg_catalog.>)";
const GE: &str = "OPERATOR(pg_catalog.>=)";
/// The first OID of objects made after initdb.
const NORMAL: &str = "16384::pg_catalog.oid";

/// A relation flag that must be true while rows of `catalog` (by `column`) name the relation:
/// `(flag, catalog, column)`.
const HAS: [(&str, &str, &str); 4] = [
    ("relhastriggers", "pg_trigger", "tgrelid"),
    ("relhasrules", "pg_rewrite", "ev_class"),
    ("relhasindex", "pg_index", "indrelid"),
    ("relhassubclass", "pg_inherits", "inhparent"),
];

/// The statement: rows of `(code, class, oid, sub, found, expected, object)`, `object` what
/// `pg_identify_object` calls the object (`table public.orders`), named only for the rows
/// returned.
pub(super) fn derived_sql() -> String {
    let mut branches = vec![relchecks()];
    branches.extend(HAS.iter().map(|(flag, catalog, column)| has(flag, catalog, column)));
    branches.extend(indexes());
    branches.push(constraint_triggers());
    branches.extend(columns());
    format!(
        "WITH ix AS ({INDEXED}) SELECT u.code, u.class, u.oid, u.sub, u.found, u.expected, \
           (SELECT pg_catalog.concat(i.type, ' ', i.identity) FROM pg_catalog.pg_identify_object(u.class, u.oid, u.sub) i) \
         FROM ({}) u ORDER BY u.oid, u.sub, u.code",
        branches.join(" UNION ALL ")
    )
}

/// Columns of every branch: `code, class, oid, sub, found, expected`.
fn row(code: &str, class: u32, oid: &str, sub: &str, found: &str, expected: &str) -> String {
    format!(
        "SELECT '{code}'::pg_catalog.text AS code, {class}::pg_catalog.oid AS class, {oid} AS oid, \
         ({sub})::pg_catalog.int4 AS sub, ({found})::pg_catalog.text AS found, ({expected})::pg_catalog.text AS expected"
    )
}

/// `relchecks` is how many CHECK constraints PostgreSQL loads and enforces: exactly the
/// relation's rows of `pg_constraint`.
fn relchecks() -> String {
    format!(
        "{} FROM pg_catalog.pg_class c, LATERAL (SELECT pg_catalog.count(*) AS n FROM pg_catalog.pg_constraint k \
           WHERE k.conrelid {EQ} c.oid AND k.contype {EQ} 'c'::pg_catalog.\"char\") k \
         WHERE c.oid {GE} {NORMAL} AND c.relchecks {NE} k.n",
        row("relchecks", 1259, "c.oid", "0", "c.relchecks", "k.n")
    )
}

/// A `relhas…` flag false while rows of `catalog` name the relation.
fn has(flag: &str, catalog: &str, column: &str) -> String {
    format!(
        "{} FROM pg_catalog.{catalog} x JOIN pg_catalog.pg_class c ON c.oid {EQ} x.{column} \
         WHERE c.oid {GE} {NORMAL} AND NOT c.{flag} GROUP BY c.oid",
        row(flag, 1259, "c.oid", "0", "'false'", "pg_catalog.count(*)")
    )
}

/// Each index of the backup's with the constraint that owns it, if one does (a primary key,
/// unique or exclusion constraint; a foreign key's `conindid` is the referenced index).
const INDEXED: &str = "SELECT i.indexrelid, i.indisvalid, i.indisready, i.indislive, i.indisunique, i.indisprimary, \
       i.indisexclusion, i.indimmediate, k.oid AS con, k.contype, k.condeferrable \
     FROM pg_catalog.pg_index i LEFT JOIN pg_catalog.pg_constraint k ON k.conindid OPERATOR(pg_catalog.=) i.indexrelid \
       AND k.conrelid OPERATOR(pg_catalog.=) i.indrelid AND k.contype IN ('p'::pg_catalog.\"char\", 'u'::pg_catalog.\"char\", 'x'::pg_catalog.\"char\") \
     WHERE i.indexrelid OPERATOR(pg_catalog.>=) 16384::pg_catalog.oid";

/// An index's own states, and its flags against its constraint's: `found` the flag, `expected`
/// the constraint (what `pg_identify_object` calls it) or empty.
fn indexes() -> Vec<String> {
    let con = "CASE WHEN x.con IS NULL THEN '' ELSE (SELECT pg_catalog.concat(i.type, ' ', i.identity) \
               FROM pg_catalog.pg_identify_object(2606::pg_catalog.oid, x.con, 0) i) END";
    let p = "x.contype IS NOT DISTINCT FROM 'p'::pg_catalog.\"char\"";
    let u = "x.contype IN ('p'::pg_catalog.\"char\", 'u'::pg_catalog.\"char\")";
    let ex = "x.contype IS NOT DISTINCT FROM 'x'::pg_catalog.\"char\"";
    let states = "pg_catalog.concat('indisvalid = ', x.indisvalid::pg_catalog.text, ', indisready = ', \
                  x.indisready::pg_catalog.text, ', indislive = ', x.indislive::pg_catalog.text)";
    let branch = |code: &str, found: &str, filter: &str| {
        format!("{} FROM ix x WHERE {filter}", row(code, 1259, "x.indexrelid", "0", found, con))
    };
    vec![
        format!(
            "{} FROM ix x WHERE (x.indisvalid AND NOT x.indisready) OR (x.indisready AND NOT x.indislive)",
            row("index states", 1259, "x.indexrelid", "0", states, "''")
        ),
        // A TOAST table's index is marked primary with no constraint: only a primary key's
        // index that is not is a write.
        branch("indisprimary", "x.indisprimary", &format!("{p} AND NOT x.indisprimary")),
        // A temporal key (PostgreSQL 18, `WITHOUT OVERLAPS`) is enforced as an exclusion.
        branch("indisunique", "x.indisunique", &format!("{u} AND NOT x.indisunique AND NOT x.indisexclusion")),
        branch(
            "indisexclusion",
            "x.indisexclusion",
            &format!("(({ex}) AND NOT x.indisexclusion) OR (x.con IS NULL AND x.indisexclusion)"),
        ),
        branch("indimmediate", "x.indimmediate", &format!("x.indimmediate {EQ} COALESCE(x.condeferrable, false)")),
    ]
}

/// A foreign key, or a deferrable key, is enforced by its triggers: one with none is listed and
/// not enforced.
fn constraint_triggers() -> String {
    format!(
        "{} FROM pg_catalog.pg_constraint k WHERE k.oid {GE} {NORMAL} \
           AND (k.contype {EQ} 'f'::pg_catalog.\"char\" OR (k.condeferrable AND k.contype IN ('p'::pg_catalog.\"char\", 'u'::pg_catalog.\"char\", 'x'::pg_catalog.\"char\"))) \
           AND NOT EXISTS (SELECT FROM pg_catalog.pg_trigger t WHERE t.tgconstraint {EQ} k.oid)",
        row("constraint triggers", 2606, "k.oid", "0", "'0'", "k.contype")
    )
}

/// A column's NOT NULL against what demands it (a primary key, an identity, PostgreSQL 18's
/// NOT NULL constraint), and its identity against its sequence.
fn columns() -> Vec<String> {
    let demands = format!(
        "CASE WHEN a.attidentity {NE} ''::pg_catalog.\"char\" THEN 'it is an identity column' ELSE \
           (SELECT pg_catalog.concat(CASE WHEN k.contype {EQ} 'p'::pg_catalog.\"char\" THEN 'it is in PRIMARY KEY ' \
              ELSE 'it has NOT NULL constraint ' END, k.conname) FROM pg_catalog.pg_constraint k \
            WHERE k.conrelid {EQ} a.attrelid AND k.contype IN ('p'::pg_catalog.\"char\", 'n'::pg_catalog.\"char\") \
              AND a.attnum {EQ} ANY (k.conkey) LIMIT 1) END"
    );
    let identity_sequence = format!(
        "SELECT FROM pg_catalog.pg_depend d WHERE d.refclassid {EQ} 1259::pg_catalog.oid AND d.refobjid {EQ} a.attrelid \
           AND d.refobjsubid {EQ} a.attnum AND d.classid {EQ} 1259::pg_catalog.oid AND d.deptype {EQ} 'i'::pg_catalog.\"char\""
    );
    let user_column = format!("a.attrelid {GE} {NORMAL} AND a.attnum {GT} 0::pg_catalog.int2 AND NOT a.attisdropped");
    vec![
        format!(
            "SELECT * FROM ({} FROM pg_catalog.pg_attribute a WHERE {user_column} AND NOT a.attnotnull) n \
             WHERE n.expected IS NOT NULL",
            row("attnotnull", 1259, "a.attrelid", "a.attnum", "'false'", &demands)
        ),
        format!(
            "{} FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_class c ON c.oid {EQ} a.attrelid \
             WHERE {user_column} AND a.attidentity {NE} ''::pg_catalog.\"char\" AND NOT c.relispartition \
               AND NOT EXISTS ({identity_sequence})",
            row("attidentity", 1259, "a.attrelid", "a.attnum", "a.attidentity", "''")
        ),
        format!(
            "{} FROM pg_catalog.pg_depend d JOIN pg_catalog.pg_attribute a ON a.attrelid {EQ} d.refobjid \
               AND a.attnum {EQ} d.refobjsubid \
             WHERE d.classid {EQ} 1259::pg_catalog.oid AND d.refclassid {EQ} 1259::pg_catalog.oid \
               AND d.deptype {EQ} 'i'::pg_catalog.\"char\" AND d.refobjsubid {GT} 0 \
               AND a.attidentity {EQ} ''::pg_catalog.\"char\" AND NOT a.attisdropped",
            row("identity sequence", 1259, "a.attrelid", "a.attnum", "''", "d.objid::pg_catalog.regclass")
        ),
    ]
}

/// The members of each extension of a database: `(extension, version, member, definition)`,
/// the member as `pg_identify_object` calls it (always schema-qualified), and for a function,
/// an operator, a cast or a type what PostgreSQL runs for it (`volatility i; strict t; ...`,
/// the code by its md5): an `ALTER FUNCTION ... STABLE` or a `CREATE OR REPLACE` of a member
/// after `CREATE EXTENSION` changes it. A schema created by the extension (not given to it) is
/// among them.
pub(super) const MEMBERS_SQL: &str = "SELECT e.extname, e.extversion, pg_catalog.concat(i.type, ' ', i.identity), COALESCE( \
       (SELECT pg_catalog.concat('volatility ', p.provolatile, '; strict ', p.proisstrict, '; security definer ', p.prosecdef, \
               '; leakproof ', p.proleakproof, '; parallel ', p.proparallel, '; language ', l.lanname, '; settings ', p.proconfig, \
               '; returns ', p.prorettype::pg_catalog.regtype, '; code md5 ', pg_catalog.md5(p.prosrc), '; library ', p.probin) \
          FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_language l ON l.oid OPERATOR(pg_catalog.=) p.prolang \
         WHERE d.classid OPERATOR(pg_catalog.=) 1255::pg_catalog.oid AND p.oid OPERATOR(pg_catalog.=) d.objid), \
       (SELECT pg_catalog.concat('function ', o.oprcode::pg_catalog.regprocedure, '; restrict ', o.oprrest::pg_catalog.regprocedure, \
               '; join ', o.oprjoin::pg_catalog.regprocedure, '; commutator ', o.oprcom::pg_catalog.regoperator, \
               '; negator ', o.oprnegate::pg_catalog.regoperator) \
          FROM pg_catalog.pg_operator o WHERE d.classid OPERATOR(pg_catalog.=) 2617::pg_catalog.oid AND o.oid OPERATOR(pg_catalog.=) d.objid), \
       (SELECT pg_catalog.concat('function ', c.castfunc::pg_catalog.regprocedure, '; context ', c.castcontext, '; method ', c.castmethod) \
          FROM pg_catalog.pg_cast c WHERE d.classid OPERATOR(pg_catalog.=) 2605::pg_catalog.oid AND c.oid OPERATOR(pg_catalog.=) d.objid), \
       (SELECT pg_catalog.concat('input ', t.typinput::pg_catalog.regprocedure, '; output ', t.typoutput::pg_catalog.regprocedure, \
               '; receive ', t.typreceive::pg_catalog.regprocedure, '; send ', t.typsend::pg_catalog.regprocedure, \
               '; modifier input ', t.typmodin::pg_catalog.regprocedure, '; analyze ', t.typanalyze::pg_catalog.regprocedure) \
          FROM pg_catalog.pg_type t WHERE d.classid OPERATOR(pg_catalog.=) 1247::pg_catalog.oid AND t.oid OPERATOR(pg_catalog.=) d.objid), '') \
     FROM pg_catalog.pg_depend d JOIN pg_catalog.pg_extension e ON e.oid OPERATOR(pg_catalog.=) d.refobjid, \
       LATERAL pg_catalog.pg_identify_object(d.classid, d.objid, d.objsubid) i \
     WHERE d.refclassid OPERATOR(pg_catalog.=) 3079::pg_catalog.oid AND d.deptype OPERATOR(pg_catalog.=) 'e'::pg_catalog.\"char\"";

/// Each extension of a database, in the order it was created: `(name, version, schema,
/// whether the schema is one of its members)`.
pub(super) const EXTENSIONS_SQL: &str = "SELECT e.extname, e.extversion, n.nspname, EXISTS (SELECT FROM pg_catalog.pg_depend d \
       WHERE d.classid OPERATOR(pg_catalog.=) 2615::pg_catalog.oid AND d.objid OPERATOR(pg_catalog.=) n.oid \
         AND d.refclassid OPERATOR(pg_catalog.=) 3079::pg_catalog.oid AND d.refobjid OPERATOR(pg_catalog.=) e.oid \
         AND d.deptype OPERATOR(pg_catalog.=) 'e'::pg_catalog.\"char\") \
     FROM pg_catalog.pg_extension e JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) e.extnamespace \
     ORDER BY e.oid";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_in_the_derived_flags_sql_is_schema_qualified() {
        let sql = [derived_sql(), MEMBERS_SQL.to_owned(), EXTENSIONS_SQL.to_owned()].join("\n;\n");
        if let Ok(path) = std::env::var("PGDRILL_DERIVED_SQL") {
            std::fs::write(path, &sql).unwrap();
        }
        // What is quoted is text, not a name.
        let sql: String = sql.split('\'').step_by(2).collect::<Vec<_>>().join("''");
        assert!(sql.contains("pg_catalog.pg_index i"), "{sql}");
        for bare in [" < ", " = ", " >= ", " <> ", " > ", " || ", "(count(", " count(", "CASE k."] {
            assert!(!sql.contains(bare), "`{bare}` in {sql}");
        }
        let keywords =
            ["ROW", "IN", "OPERATOR", "FROM", "AND", "OR", "LATERAL", "EXISTS", "ANY", "AS", "COALESCE", "WHERE"];
        for call in sql.match_indices('(').map(|(i, _)| &sql[..i]) {
            let word: String = call.chars().rev().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
            let word: String = word.chars().rev().collect();
            if word.is_empty() || keywords.contains(&word.as_str()) {
                continue;
            }
            assert!(call.ends_with(&format!("pg_catalog.{word}")), "`{word}(` is not schema-qualified");
        }
    }
}
