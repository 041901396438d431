//! The audit's SQL, and nothing else: the catalogs it compares, each row's digest and what
//! counts as built in, the query that fingerprints them (row by row, or one digest per catalog)
//! and the one that finds initdb's imported collations. Every name in it is schema-qualified
//! (see the test): the backup audited cannot answer in its place.

/// Columns of the catalogs that hold an owner or privileges, without them.
const PROC_COLUMNS: &str = "p.oid, p.proname, p.pronamespace, p.prolang, p.procost, p.prorows, p.provariadic, \
    p.prosupport, p.prokind, p.prosecdef, p.proleakproof, p.proisstrict, p.proretset, p.provolatile, p.proparallel, \
    p.pronargs, p.pronargdefaults, p.prorettype, p.proargtypes, p.proallargtypes, p.proargmodes, p.proargnames, \
    p.proargdefaults, p.protrftypes, p.prosrc, p.probin, p.prosqlbody, p.proconfig";

/// The schemas of PostgreSQL's own objects: pg_catalog and information_schema.
const NS: &str = "(11::pg_catalog.oid, 'information_schema'::pg_catalog.regnamespace::pg_catalog.oid)";
const LT: &str = "OPERATOR(pg_catalog.<)";
const GE: &str = "OPERATOR(pg_catalog.>=)";
const EQ: &str = "OPERATOR(pg_catalog.=)";
/// The first OID of objects made after initdb.
const NORMAL: &str = "16384::pg_catalog.oid";

/// The digest of a catalog row's `row` columns.
fn md5(row: &str) -> String {
    format!("pg_catalog.md5(ROW({row})::pg_catalog.text)")
}

/// A catalog compared: its class OID, the alias its rows go by, its name, the digest of a row,
/// and which of its rows are built in (or stand in for one).
type Compared = (u32, &'static str, &'static str, String, String);

/// The catalogs compared, in the order the fingerprint reads them.
fn catalogs() -> Vec<Compared> {
    let mut all = resolution();
    all.extend(access_methods());
    all.extend(relations());
    all
}

/// What resolving a function, a type, an operator or a cast reads.
fn resolution() -> Vec<Compared> {
    vec![
        (1255, "p", "pg_proc", md5(PROC_COLUMNS), format!("p.oid {LT} {NORMAL} OR p.pronamespace IN {NS}")),
        (
            1247,
            "t",
            "pg_type",
            md5("t.oid, t.typname, t.typnamespace, t.typlen, t.typbyval, t.typtype, t.typcategory, \
                 t.typispreferred, t.typisdefined, t.typdelim, t.typrelid, t.typsubscript, t.typelem, t.typarray, \
                 t.typinput, t.typoutput, t.typreceive, t.typsend, t.typmodin, t.typmodout, t.typanalyze, \
                 t.typalign, t.typstorage, t.typnotnull, t.typbasetype, t.typtypmod, t.typndims, t.typcollation, \
                 t.typdefaultbin, t.typdefault"),
            format!("t.oid {LT} {NORMAL} OR t.typnamespace IN {NS}"),
        ),
        (
            2617,
            "o",
            "pg_operator",
            md5("o.oid, o.oprname, o.oprnamespace, o.oprkind, o.oprcanmerge, o.oprcanhash, o.oprleft, o.oprright, \
                 o.oprresult, o.oprcom, o.oprnegate, o.oprcode, o.oprrest, o.oprjoin"),
            format!("o.oid {LT} {NORMAL} OR o.oprnamespace IN {NS}"),
        ),
        // A cast between two built-in types changes how pgdrill's own expressions resolve.
        (
            2605,
            "c",
            "pg_cast",
            md5("c.*"),
            format!("c.oid {LT} {NORMAL} OR (c.castsource {LT} {NORMAL} AND c.casttarget {LT} {NORMAL})"),
        ),
    ]
}

/// Access methods, their operator classes and families, and languages.
fn access_methods() -> Vec<Compared> {
    vec![
        (2601, "m", "pg_am", md5("m.*"), format!("m.oid {LT} {NORMAL}")),
        (
            2616,
            "c",
            "pg_opclass",
            md5("c.oid, c.opcmethod, c.opcname, c.opcnamespace, c.opcfamily, c.opcintype, c.opcdefault, c.opckeytype"),
            format!("c.oid {LT} {NORMAL} OR c.opcnamespace IN {NS}"),
        ),
        (
            2753,
            "f",
            "pg_opfamily",
            md5("f.oid, f.opfmethod, f.opfname, f.opfnamespace"),
            format!("f.oid {LT} {NORMAL} OR f.opfnamespace IN {NS}"),
        ),
        (2602, "o", "pg_amop", md5("o.*"), format!("o.oid {LT} {NORMAL} OR o.amopfamily {LT} {NORMAL}")),
        (2603, "p", "pg_amproc", md5("p.*"), format!("p.oid {LT} {NORMAL} OR p.amprocfamily {LT} {NORMAL}")),
        (
            2612,
            "l",
            "pg_language",
            md5("l.oid, l.lanname, l.lanispl, l.lanpltrusted, l.lanplcallfoid, l.laninline, l.lanvalidator"),
            format!("l.oid {LT} {NORMAL}"),
        ),
    ]
}

/// Schemas, relations and what acts on them (rules, triggers, policies), collations and
/// conversions.
fn relations() -> Vec<Compared> {
    vec![
        // `public` is the backup's to change.
        (
            2615,
            "n",
            "pg_namespace",
            md5("n.oid, n.nspname"),
            format!("n.oid {LT} {NORMAL} AND n.oid OPERATOR(pg_catalog.<>) 2200::pg_catalog.oid"),
        ),
        (
            1259,
            "c",
            "pg_class",
            md5("c.oid, c.relname, c.relnamespace, c.reltype, c.reloftype, c.relam, c.relkind, c.relnatts, \
                 c.relchecks, c.relhasrules, c.relhastriggers, c.relhassubclass, c.relrowsecurity, \
                 c.relforcerowsecurity, c.relispopulated, c.relreplident, c.relispartition, c.reloptions, \
                 c.relpersistence, c.relisshared"),
            format!("c.oid {LT} {NORMAL} OR c.relnamespace IN {NS}"),
        ),
        (2618, "r", "pg_rewrite", md5("r.*"), format!("r.oid {LT} {NORMAL} OR r.ev_class {LT} {NORMAL}")),
        (2620, "t", "pg_trigger", md5("t.*"), format!("t.tgrelid {LT} {NORMAL}")),
        (3256, "p", "pg_policy", md5("p.*"), format!("p.polrelid {LT} {NORMAL}")),
        (
            3456,
            "c",
            "pg_collation",
            md5("c.oid, c.collname, c.collnamespace"),
            format!("c.oid {GE} {NORMAL} AND c.collnamespace IN {NS}"),
        ),
        (
            2607,
            "c",
            "pg_conversion",
            md5("c.oid, c.conname, c.connamespace, c.conforencoding, c.contoencoding, c.conproc, c.condefault"),
            format!("c.oid {LT} {NORMAL} OR c.connamespace IN {NS}"),
        ),
    ]
}

/// The fingerprint's SQL: one row per catalog row, `(kind, identity, oid, digest, extension)`;
/// or, `summary`, one row per catalog, `(catalog, digest of its rows in OID order)`, which
/// costs no naming and no transfer (the functions that make it, md5 and string_agg, are sent
/// whole, as their own rows).
pub(super) fn fingerprint_sql(summary: bool) -> String {
    let parts = catalogs();
    // Naming costs: a summary names nothing.
    let named = |class: u32, oid: &str| {
        if summary {
            ("'', ''".to_owned(), String::new())
        } else {
            (
                "i.type, i.identity".to_owned(),
                format!(", LATERAL pg_catalog.pg_identify_object({class}::pg_catalog.oid, {oid}, 0) i"),
            )
        }
    };
    let mut branches: Vec<String> = parts
        .iter()
        .map(|(class, alias, catalog, digest, filter)| {
            let (name, lateral) = named(*class, &format!("{alias}.oid"));
            format!(
                "SELECT '{catalog}' AS catalog, {name}, {alias}.oid, 0::pg_catalog.int2 AS sub, \
                 {class}::pg_catalog.oid AS class, {digest} AS digest \
                 FROM pg_catalog.{catalog} {alias}{lateral} WHERE {filter}"
            )
        })
        .collect();
    // An aggregate's definition (its functions, its initial value) is a row of its own.
    let (name, lateral) = named(1255, "a.aggfnoid");
    let name = name.replacen("i.type", "'aggregate definition'", 1);
    branches.push(format!(
        "SELECT 'pg_aggregate', {name}, a.aggfnoid, 0::pg_catalog.int2, 0::pg_catalog.oid, {} \
         FROM pg_catalog.pg_aggregate a{lateral} WHERE a.aggfnoid {LT} {NORMAL}",
        md5("a.*")
    ));
    // Columns of the built-in relations: a renamed or retyped column makes a read return
    // another column's values.
    let name =
        if summary { "'', ''" } else { "'column', pg_catalog.concat(a.attrelid::pg_catalog.regclass, '.', a.attname)" };
    branches.push(format!(
        "SELECT 'pg_attribute', {name}, a.attrelid, a.attnum, 0::pg_catalog.oid, {} FROM pg_catalog.pg_attribute a \
         WHERE a.attrelid {LT} {NORMAL} AND a.attnum OPERATOR(pg_catalog.>) 0::pg_catalog.int2",
        md5("a.attrelid, a.attname, a.atttypid, a.attnum, a.attlen, a.atttypmod, a.attnotnull, a.atthasdef, \
             a.attisdropped, a.attgenerated, a.attcollation")
    ));
    // The digest functions' own rows, whole: a replaced md5 or string_agg cannot vouch for
    // itself.
    let agg = "'pg_catalog.string_agg(pg_catalog.text,pg_catalog.text)'::pg_catalog.regprocedure";
    branches.push(format!(
        "SELECT '{TRUST}', 'digest function', p.oid::pg_catalog.regprocedure::pg_catalog.text, p.oid, 0::pg_catalog.int2, \
         0::pg_catalog.oid, ROW({PROC_COLUMNS})::pg_catalog.text FROM pg_catalog.pg_proc p \
         WHERE p.oid {EQ} 'pg_catalog.md5(pg_catalog.text)'::pg_catalog.regprocedure OR p.oid {EQ} {agg} \
            OR p.oid IN (SELECT a.aggtransfn::pg_catalog.oid FROM pg_catalog.pg_aggregate a WHERE a.aggfnoid {EQ} {agg}) \
            OR p.oid IN (SELECT a.aggfinalfn::pg_catalog.oid FROM pg_catalog.pg_aggregate a WHERE a.aggfnoid {EQ} {agg}) \
         UNION ALL SELECT '{TRUST}', 'digest aggregate', 'string_agg', a.aggfnoid, 0::pg_catalog.int2, 0::pg_catalog.oid, \
         ROW(a.*)::pg_catalog.text FROM pg_catalog.pg_aggregate a WHERE a.aggfnoid {EQ} {agg}"
    ));
    let union = branches.join(" UNION ALL ");
    if summary {
        // Each catalog's rows in one digest; the trusted functions' rows as they are.
        return format!(
            "SELECT u.catalog, CASE WHEN u.catalog OPERATOR(pg_catalog.=) '{TRUST}'::pg_catalog.text \
               THEN pg_catalog.string_agg(u.digest, ' ' ORDER BY u.oid, u.sub, u.digest) \
               ELSE pg_catalog.md5(pg_catalog.string_agg(u.digest, ',' ORDER BY u.oid, u.sub, u.digest)) END \
             FROM ({union}) u GROUP BY u.catalog"
        );
    }
    // Which extension an addition belongs to, looked up for additions only.
    format!(
        "SELECT u.type, u.identity, u.oid, u.digest, CASE WHEN u.oid {GE} {NORMAL} THEN \
           (SELECT e.extname FROM pg_catalog.pg_depend d JOIN pg_catalog.pg_extension e ON e.oid {EQ} d.refobjid \
            WHERE d.classid {EQ} u.class AND d.objid {EQ} u.oid AND d.deptype {EQ} 'e'::pg_catalog.\"char\" LIMIT 1) END \
         FROM ({union}) u"
    )
}

/// The summary's name for the digest functions' rows, sent whole.
const TRUST: &str = "digest functions";

/// Where initdb's imported collations sit: the OIDs it gave out after them depend on how many
/// the machine had.
pub(super) const COLLATIONS_SQL: &str = "SELECT pg_catalog.min(c.oid), pg_catalog.max(c.oid) \
     FROM pg_catalog.pg_collation c WHERE c.oid OPERATOR(pg_catalog.>=) 12000::pg_catalog.oid \
     AND c.oid OPERATOR(pg_catalog.<) 16384::pg_catalog.oid";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_in_the_audits_sql_is_schema_qualified() {
        let sql = [fingerprint_sql(false), fingerprint_sql(true)].join("\n;\n");
        if let Ok(path) = std::env::var("PGDRILL_CATALOG_SQL") {
            std::fs::write(path, &sql).unwrap();
        }
        // No bare operator and no unqualified function call.
        for bare in [" < ", " = ", " >= ", " <> ", " || ", "(md5(", " md5("] {
            assert!(!sql.contains(bare), "`{bare}` in {sql}");
        }
        for call in sql.match_indices('(').map(|(i, _)| &sql[..i]) {
            let word: String =
                call.chars().rev().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect::<String>();
            let word: String = word.chars().rev().collect();
            if word.is_empty() || ["ROW", "IN", "OPERATOR", "FROM", "AND", "OR", "LATERAL"].contains(&word.as_str()) {
                continue;
            }
            assert!(call.ends_with(&format!("pg_catalog.{word}")), "`{word}(` is not schema-qualified");
        }
    }
}
