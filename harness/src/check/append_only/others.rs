//! The trail changed with another role's powers. The probes prove what the writer's own
//! statements do to the table; the writer also runs code that others own, with their powers:
//! a `SECURITY DEFINER` function it may execute, a definer trigger or a rule on a table it may
//! write (a rule's actions run as the table's owner), a definer event trigger (its login and
//! its DDL fire them), a view it may change (a view's privileges
//! are its owner's), and a foreign key of the trail with a cascading action on a table it may
//! change (the cascade runs as the trail's owner). Each of these whose powers could change the
//! trail ([`POWERS_SQL`]: a superuser, an owner, a role with UPDATE, DELETE or TRUNCATE on it or
//! on a table it follows by cascade, and every role that may execute a definer function of one
//! of them) must be proven to leave the trail as it is: the code it runs is read whole
//! ([`crate::check::loophole::graph`]) and every statement must be on the allow-list of
//! [`crate::check::loophole::writes`]. A view and a cascade cannot be proven so. What is not
//! proven fails, naming it, unless the scenario accepts it with the sha256 of its code and a
//! reason (`accept`).

use std::collections::BTreeSet;
use std::time::Instant;

use sqlx::PgConnection;

use super::{Found, KIND, Spec};
use crate::check::accept::{self, Judged};
use crate::check::loophole::graph::{self, Gathered};
use crate::check::loophole::writes::{self, HARMLESS, Operation};
use crate::check::loophole::{Reader, facts};
use crate::check::{CheckContext, CheckResult, bind_evidence};
use crate::pg::describe_sql_error;

/// The roles `$2` (oids) and every role that may change the trail `$1` or any table under it
/// directly, or a table it follows by a cascading foreign key, or that inherits from one of
/// those, or may execute a `SECURITY DEFINER` function one of those owns, or may write a table
/// whose rule (run as the table's owner) or definer trigger one of those owns.
const POWERS_SQL: &str = "WITH RECURSIVE tree(relid) AS ( \
       SELECT $1::pg_catalog.regclass::pg_catalog.oid \
       UNION SELECT i.inhrelid FROM pg_catalog.pg_inherits i JOIN tree ON i.inhparent OPERATOR(pg_catalog.=) tree.relid), \
     parents AS (SELECT f.confrelid, f.confdeltype OPERATOR(pg_catalog.<>) ALL ('{a,r}'::pg_catalog.\"char\"[]) AS del, \
                        f.confupdtype OPERATOR(pg_catalog.<>) ALL ('{a,r}'::pg_catalog.\"char\"[]) AS upd \
       FROM pg_catalog.pg_constraint f WHERE f.contype OPERATOR(pg_catalog.=) 'f' AND f.conrelid IN (SELECT relid FROM tree)) \
SELECT r.oid::pg_catalog.int8 FROM pg_catalog.pg_roles r \
 WHERE r.rolsuper OR r.oid::pg_catalog.int8 OPERATOR(pg_catalog.=) ANY ($2::pg_catalog.int8[]) \
    OR EXISTS (SELECT 1 FROM pg_catalog.unnest($2::pg_catalog.int8[]) s(o) WHERE pg_catalog.pg_has_role(r.oid, s.o::pg_catalog.oid, 'USAGE')) \
    OR EXISTS (SELECT 1 FROM tree t JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) t.relid \
                WHERE pg_catalog.pg_has_role(r.oid, c.relowner, 'USAGE') OR pg_catalog.has_table_privilege(r.oid, t.relid, 'DELETE') \
                   OR pg_catalog.has_table_privilege(r.oid, t.relid, 'TRUNCATE') OR pg_catalog.has_any_column_privilege(r.oid, t.relid, 'UPDATE')) \
    OR EXISTS (SELECT 1 FROM parents p WHERE (p.del AND pg_catalog.has_table_privilege(r.oid, p.confrelid, 'DELETE')) \
                   OR (p.del AND pg_catalog.has_table_privilege(r.oid, p.confrelid, 'TRUNCATE')) \
                   OR (p.upd AND pg_catalog.has_any_column_privilege(r.oid, p.confrelid, 'UPDATE'))) \
    OR EXISTS (SELECT 1 FROM pg_catalog.pg_proc f WHERE f.prosecdef AND f.proowner::pg_catalog.int8 OPERATOR(pg_catalog.=) ANY ($2::pg_catalog.int8[]) \
                  AND pg_catalog.has_function_privilege(r.oid, f.oid, 'EXECUTE')) \
    OR EXISTS (SELECT 1 FROM pg_catalog.pg_class c \
                WHERE (EXISTS (SELECT 1 FROM pg_catalog.pg_rewrite w WHERE w.ev_class OPERATOR(pg_catalog.=) c.oid \
                                 AND w.rulename OPERATOR(pg_catalog.<>) '_RETURN' AND c.relowner::pg_catalog.int8 OPERATOR(pg_catalog.=) ANY ($2::pg_catalog.int8[])) \
                       OR EXISTS (SELECT 1 FROM pg_catalog.pg_trigger t JOIN pg_catalog.pg_proc f ON f.oid OPERATOR(pg_catalog.=) t.tgfoid \
                                   WHERE t.tgrelid OPERATOR(pg_catalog.=) c.oid AND f.prosecdef \
                                     AND f.proowner::pg_catalog.int8 OPERATOR(pg_catalog.=) ANY ($2::pg_catalog.int8[]))) \
                  AND (pg_catalog.has_table_privilege(r.oid, c.oid, 'INSERT') OR pg_catalog.has_table_privilege(r.oid, c.oid, 'DELETE') \
                       OR pg_catalog.has_any_column_privilege(r.oid, c.oid, 'UPDATE'))) \
 ORDER BY 1";

/// The ways the writer `$1` runs code of the roles `$2` (oids) that it is not a member of:
/// `(kind, name, text to read, function oid, the search_path it pins, the sha256's input)`. Definer functions it may
/// execute (not an extension's, not PostgreSQL's); definer trigger functions and rules on the
/// tables it may write; definer functions of event triggers (its logins and its DDL, a
/// temporary table's, fire them); views over the trail `$3` (or over such views) it may change;
/// foreign keys of the trail with a cascading action on a table it may change.
const PATHS_SQL: &str = "WITH RECURSIVE tree(relid) AS ( \
       SELECT $3::pg_catalog.regclass::pg_catalog.oid \
       UNION SELECT i.inhrelid FROM pg_catalog.pg_inherits i JOIN tree ON i.inhparent OPERATOR(pg_catalog.=) tree.relid), \
     owners AS (SELECT o FROM pg_catalog.unnest($2::pg_catalog.int8[]) u(o) \
                 WHERE NOT pg_catalog.pg_has_role($1, u.o::pg_catalog.oid, 'MEMBER')), \
     writable AS (SELECT c.oid, c.relowner, c.relkind FROM pg_catalog.pg_class c \
                   JOIN pg_catalog.pg_namespace cn ON cn.oid OPERATOR(pg_catalog.=) c.relnamespace \
                   WHERE cn.nspname OPERATOR(pg_catalog.<>) ALL ('{pg_catalog,information_schema}'::pg_catalog.name[]) \
                     AND c.relkind OPERATOR(pg_catalog.=) ANY ('{r,p,v,f}'::pg_catalog.\"char\"[]) \
                     AND (pg_catalog.has_table_privilege($1, c.oid, 'INSERT') OR pg_catalog.has_table_privilege($1, c.oid, 'DELETE') \
                          OR pg_catalog.has_table_privilege($1, c.oid, 'TRUNCATE') OR pg_catalog.has_any_column_privilege($1, c.oid, 'UPDATE'))), \
     viewed(oid) AS (SELECT relid FROM tree \
       UNION SELECT r.ev_class FROM pg_catalog.pg_rewrite r \
         JOIN pg_catalog.pg_depend d ON d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_rewrite'::pg_catalog.regclass AND d.objid OPERATOR(pg_catalog.=) r.oid \
          AND d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass \
         JOIN viewed v ON d.refobjid OPERATOR(pg_catalog.=) v.oid \
        WHERE r.rulename OPERATOR(pg_catalog.=) '_RETURN' AND r.ev_class OPERATOR(pg_catalog.<>) v.oid), \
     views AS (SELECT w.oid, w.relowner FROM writable w \
                WHERE w.relkind OPERATOR(pg_catalog.=) 'v' AND w.oid IN (SELECT oid FROM viewed) \
                  AND (pg_catalog.has_table_privilege($1, w.oid, 'DELETE') OR pg_catalog.has_any_column_privilege($1, w.oid, 'UPDATE'))) \
SELECT 'function', p.oid::pg_catalog.regprocedure::pg_catalog.text, '', p.oid::pg_catalog.int8, \
       (SELECT pg_catalog.substr(c, 13) FROM pg_catalog.unnest(p.proconfig) c WHERE c OPERATOR(pg_catalog.~~) 'search\\_path=%'), \
       l.lanname OPERATOR(pg_catalog.||) E'\\n' OPERATOR(pg_catalog.||) COALESCE(pg_catalog.array_to_string(p.proconfig, E'\\n'), '') OPERATOR(pg_catalog.||) E'\\n' OPERATOR(pg_catalog.||) p.prosrc \
  FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_language l ON l.oid OPERATOR(pg_catalog.=) p.prolang \
  JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) p.pronamespace \
 WHERE p.prosecdef AND p.proowner::pg_catalog.int8 IN (SELECT o FROM owners) \
   AND n.nspname OPERATOR(pg_catalog.<>) ALL ('{pg_catalog,information_schema}'::pg_catalog.name[]) \
   AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend e WHERE e.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_proc'::pg_catalog.regclass \
                   AND e.objid OPERATOR(pg_catalog.=) p.oid AND e.deptype OPERATOR(pg_catalog.=) 'e') \
   AND pg_catalog.has_function_privilege($1, p.oid, 'EXECUTE') AND pg_catalog.has_schema_privilege($1, n.oid, 'USAGE') \
   AND p.prorettype OPERATOR(pg_catalog.<>) ALL (ARRAY['pg_catalog.trigger'::pg_catalog.regtype, 'pg_catalog.event_trigger'::pg_catalog.regtype]::pg_catalog.oid[]) \
UNION ALL \
SELECT 'trigger', pg_catalog.format('trigger %I on %s', t.tgname, t.tgrelid::pg_catalog.regclass), '', p.oid::pg_catalog.int8, \
       (SELECT pg_catalog.substr(c, 13) FROM pg_catalog.unnest(p.proconfig) c WHERE c OPERATOR(pg_catalog.~~) 'search\\_path=%'), \
       l.lanname OPERATOR(pg_catalog.||) E'\\n' OPERATOR(pg_catalog.||) COALESCE(pg_catalog.array_to_string(p.proconfig, E'\\n'), '') OPERATOR(pg_catalog.||) E'\\n' OPERATOR(pg_catalog.||) p.prosrc \
  FROM pg_catalog.pg_trigger t JOIN writable w ON w.oid OPERATOR(pg_catalog.=) t.tgrelid \
  JOIN pg_catalog.pg_proc p ON p.oid OPERATOR(pg_catalog.=) t.tgfoid JOIN pg_catalog.pg_language l ON l.oid OPERATOR(pg_catalog.=) p.prolang \
 WHERE NOT t.tgisinternal AND t.tgenabled OPERATOR(pg_catalog.=) ANY ('{O,A}'::pg_catalog.\"char\"[]) \
   AND p.prosecdef AND p.proowner::pg_catalog.int8 IN (SELECT o FROM owners) \
UNION ALL \
SELECT 'rule', pg_catalog.format('rule %I on %s', r.rulename, r.ev_class::pg_catalog.regclass), pg_catalog.pg_get_ruledef(r.oid), 0, NULL::pg_catalog.text, pg_catalog.pg_get_ruledef(r.oid) \
  FROM pg_catalog.pg_rewrite r JOIN writable w ON w.oid OPERATOR(pg_catalog.=) r.ev_class \
 WHERE r.rulename OPERATOR(pg_catalog.<>) '_RETURN' AND r.ev_enabled OPERATOR(pg_catalog.<>) 'D' \
   AND w.relowner::pg_catalog.int8 IN (SELECT o FROM owners) \
UNION ALL \
SELECT 'event trigger', pg_catalog.format('event trigger %I', e.evtname), '', p.oid::pg_catalog.int8, \
       (SELECT pg_catalog.substr(c, 13) FROM pg_catalog.unnest(p.proconfig) c WHERE c OPERATOR(pg_catalog.~~) 'search\\_path=%'), \
       l.lanname OPERATOR(pg_catalog.||) E'\\n' OPERATOR(pg_catalog.||) COALESCE(pg_catalog.array_to_string(p.proconfig, E'\\n'), '') OPERATOR(pg_catalog.||) E'\\n' OPERATOR(pg_catalog.||) p.prosrc \
  FROM pg_catalog.pg_event_trigger e JOIN pg_catalog.pg_proc p ON p.oid OPERATOR(pg_catalog.=) e.evtfoid \
  JOIN pg_catalog.pg_language l ON l.oid OPERATOR(pg_catalog.=) p.prolang \
 WHERE e.evtenabled OPERATOR(pg_catalog.<>) 'D' AND p.prosecdef AND p.proowner::pg_catalog.int8 IN (SELECT o FROM owners) \
UNION ALL \
SELECT 'view', pg_catalog.format('view %s', v.oid::pg_catalog.regclass), '', 0, NULL::pg_catalog.text, pg_catalog.pg_get_viewdef(v.oid) \
  FROM views v JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) v.oid \
 WHERE v.relowner::pg_catalog.int8 IN (SELECT o FROM owners) \
   AND NOT COALESCE('security_invoker=true' OPERATOR(pg_catalog.=) ANY (c.reloptions), false) \
UNION ALL \
SELECT 'cascade', pg_catalog.format('constraint %I on %s', f.conname, f.conrelid::pg_catalog.regclass), '', 0, NULL::pg_catalog.text, pg_catalog.pg_get_constraintdef(f.oid) \
  FROM pg_catalog.pg_constraint f \
 WHERE f.contype OPERATOR(pg_catalog.=) 'f' AND f.conrelid IN (SELECT relid FROM tree) \
   AND ((f.confdeltype OPERATOR(pg_catalog.<>) ALL ('{a,r}'::pg_catalog.\"char\"[]) \
         AND (pg_catalog.has_table_privilege($1, f.confrelid, 'DELETE') OR pg_catalog.has_table_privilege($1, f.confrelid, 'TRUNCATE'))) \
     OR (f.confupdtype OPERATOR(pg_catalog.<>) ALL ('{a,r}'::pg_catalog.\"char\"[]) \
         AND pg_catalog.has_any_column_privilege($1, f.confrelid, 'UPDATE'))) \
 ORDER BY 1, 2";

/// The names of the relations a change to which changes the trail `$1`: each with whether it is
/// the trail (or under it), and which changes of a parent cascade into it (`d`elete, `u`pdate).
const NAMES_SQL: &str = "WITH RECURSIVE tree(relid) AS ( \
       SELECT $1::pg_catalog.regclass::pg_catalog.oid \
       UNION SELECT i.inhrelid FROM pg_catalog.pg_inherits i JOIN tree ON i.inhparent OPERATOR(pg_catalog.=) tree.relid) \
SELECT c.relname::pg_catalog.text, true, '' FROM tree JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) tree.relid \
UNION ALL \
SELECT c.relname::pg_catalog.text, false, \
       CASE WHEN f.confdeltype OPERATOR(pg_catalog.<>) ALL ('{a,r}'::pg_catalog.\"char\"[]) THEN 'd' ELSE '' END \
         OPERATOR(pg_catalog.||) CASE WHEN f.confupdtype OPERATOR(pg_catalog.<>) ALL ('{a,r}'::pg_catalog.\"char\"[]) THEN 'u' ELSE '' END \
  FROM pg_catalog.pg_constraint f JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) f.confrelid \
 WHERE f.contype OPERATOR(pg_catalog.=) 'f' AND f.conrelid IN (SELECT relid FROM tree)";

/// Relations named `$1` (bare, any schema): each as `regclass` prints it, and whether it is a view.
const TARGETS_SQL: &str = "SELECT c.oid::pg_catalog.regclass::pg_catalog.text, c.relkind OPERATOR(pg_catalog.=) 'v' \
  FROM pg_catalog.pg_class c WHERE pg_catalog.lower(c.relname::pg_catalog.text) OPERATOR(pg_catalog.=) $1 \
   AND c.relkind OPERATOR(pg_catalog.=) ANY ('{r,p,v,f}'::pg_catalog.\"char\"[])";

/// The schemas the role `$1` may create objects in, and `pg_temp` where it may create
/// temporary tables.
const CREATABLE_SQL: &str = "SELECT n.nspname::pg_catalog.text FROM pg_catalog.pg_namespace n \
 WHERE pg_catalog.has_schema_privilege($1, n.oid, 'CREATE') AND n.nspname::pg_catalog.text OPERATOR(pg_catalog.!~) '^pg_temp_' \
UNION ALL SELECT 'pg_temp' WHERE pg_catalog.has_database_privilege($1, pg_catalog.current_database(), 'TEMP') ORDER BY 1";

/// The enabled triggers of the relation `$1` (and of the tables under it): each function, and
/// how it is reached.
const AFTER_SQL: &str = "WITH RECURSIVE tree(relid) AS ( \
       SELECT $1::pg_catalog.regclass::pg_catalog.oid \
       UNION SELECT i.inhrelid FROM pg_catalog.pg_inherits i JOIN tree ON i.inhparent OPERATOR(pg_catalog.=) tree.relid) \
SELECT DISTINCT t.tgfoid::pg_catalog.int8, pg_catalog.format('trigger %I on %s', t.tgname, t.tgrelid::pg_catalog.regclass) \
  FROM pg_catalog.pg_trigger t WHERE t.tgrelid IN (SELECT relid FROM tree) AND NOT t.tgisinternal \
   AND t.tgenabled OPERATOR(pg_catalog.=) ANY ('{O,A}'::pg_catalog.\"char\"[])";

/// Of the built-ins named `$1`, those with a volatile overload.
const VOLATILE_SQL: &str = "SELECT DISTINCT pg_catalog.lower(p.proname::pg_catalog.text) FROM pg_catalog.pg_proc p \
 WHERE pg_catalog.lower(p.proname::pg_catalog.text) OPERATOR(pg_catalog.=) ANY ($1::pg_catalog.text[]) AND p.provolatile OPERATOR(pg_catalog.=) 'v'";

/// A row of [`PATHS_SQL`].
type PathRow = (String, String, String, i64, Option<String>, String);

/// The relations whose change changes the trail.
struct Trail {
    /// The trail and the tables under it (bare names, lower case).
    names: Vec<String>,
    /// Tables the trail follows by a cascading foreign key, with what cascades (`d`, `u`).
    parents: Vec<(String, String)>,
}

impl Trail {
    /// Why `operation` on a relation named `name` changes the trail, if it does.
    fn changed_by(&self, name: &str, operation: Operation) -> Option<String> {
        if self.names.iter().any(|n| n == name) {
            return (operation != Operation::Insert).then(|| format!("{}, the trail", writes::said(name, operation)));
        }
        let cascades = |on: &str| self.parents.iter().any(|(n, how)| n == name && how.contains(on));
        let cascading = match operation {
            Operation::Delete | Operation::Truncate => cascades("d"),
            Operation::Update => cascades("u"),
            Operation::Insert => false,
        };
        cascading
            .then(|| format!("{}, which the trail follows by a cascading foreign key", writes::said(name, operation)))
    }
}

/// One way the writer runs others' code, judged.
struct Path {
    name: String,
    /// The sha256 of what an acceptance holds for.
    code: String,
    /// Why it is not proven to leave the trail as it is (empty: proven).
    unproven: Vec<String>,
}

impl Spec {
    /// The trail's paths through others' powers (see the module): one result.
    pub(super) async fn others(&self, ctx: &CheckContext<'_>) -> CheckResult {
        let started = Instant::now();
        let result = CheckResult::build(KIND, self.object("through others' powers"), started)
            .expected("no code that runs with powers over the trail, and that the role may run, changes it")
            .evidence(format!(
                "{}\n{}",
                bind_evidence(POWERS_SQL, &[&self.table.sql(), "{}"]),
                bind_evidence(PATHS_SQL, &[&self.role, "(the roles above)", &self.table.sql()])
            ));
        let paths = async {
            let mut conn = ctx.pool.acquire().await?;
            self.paths(&mut conn).await
        }
        .await;
        match paths {
            Ok(paths) => self.judged_paths(result, &paths),
            Err(err) => result.found(
                Found::CouldNotRead,
                format!("could not read what `{}` runs as others: {}", self.role, describe_sql_error(&err)),
            ),
        }
    }

    /// The paths, each judged.
    async fn paths(&self, conn: &mut PgConnection) -> sqlx::Result<Vec<Path>> {
        let t = self.table.sql();
        let mut powers: Vec<i64> = Vec::new();
        for _ in 0..8 {
            let found: Vec<i64> = sqlx::query_scalar(POWERS_SQL).bind(&t).bind(&powers).fetch_all(&mut *conn).await?;
            if found == powers {
                break;
            }
            powers = found;
        }
        let rows: Vec<PathRow> =
            sqlx::query_as(PATHS_SQL).bind(&self.role).bind(&powers).bind(&t).fetch_all(&mut *conn).await?;
        let names: Vec<(String, bool, String)> = sqlx::query_as(NAMES_SQL).bind(&t).fetch_all(&mut *conn).await?;
        let trail = Trail {
            names: names.iter().filter(|(_, own, _)| *own).map(|(n, _, _)| n.to_lowercase()).collect(),
            parents: names.into_iter().filter(|(_, own, _)| !own).map(|(n, _, how)| (n.to_lowercase(), how)).collect(),
        };
        let creatable: Vec<String> = sqlx::query_scalar(CREATABLE_SQL).bind(&self.role).fetch_all(&mut *conn).await?;
        let mut paths = Vec::new();
        for (kind, name, text, function, pinned, own) in rows {
            let path = match kind.as_str() {
                "view" | "cascade" => {
                    let why = if kind == "view" {
                        format!("`{}` may change the trail through it with its owner's privileges", self.role)
                    } else {
                        format!(
                            "`{}` may change the table it references, and the cascade (`{own}`) changes the trail as its owner",
                            self.role
                        )
                    };
                    Path { code: accept::digest(&own), unproven: vec![why], name }
                }
                _ => {
                    let texts: Vec<Reader> =
                        if text.is_empty() { Vec::new() } else { vec![Reader { name: "its action".into(), text }] };
                    let functions: Vec<(i64, String)> =
                        if function == 0 { Vec::new() } else { vec![(function, "it runs".into())] };
                    let entry = Entry { path: pinned.map(|p| split_path(&p)), creatable: &creatable };
                    let (unproven, read) = read_code(conn, &texts, &functions, &trail, &entry).await?;
                    Path { code: accept::digest(&format!("{own}\n{}", read.join("\n"))), unproven, name }
                }
            };
            paths.push(path);
        }
        Ok(paths)
    }

    fn judged_paths(&self, result: crate::check::CheckResultBuilder, paths: &[Path]) -> CheckResult {
        let (mut failing, mut accepted, mut proven) = (Vec::new(), Vec::new(), Vec::new());
        // A path that changes the trail in its own statements is named before one unproven for
        // how it resolves names or what it cannot read: the summary shows the first few.
        let mut paths: Vec<&Path> = paths.iter().collect();
        paths.sort_by_key(|p| !p.unproven.iter().any(|u| u.contains("the trail")));
        for path in paths {
            if path.unproven.is_empty() {
                proven.push(format!("`{}`", path.name));
                continue;
            }
            let why = crate::listing::first(&path.unproven, 3, "; ");
            match accept::judge(&self.accept, &path.name, &path.code) {
                Judged::Accepted(door) => accepted.push(format!("`{}`: accepted, {}", path.name, door.reason)),
                Judged::Rewritten(door) => failing.push(format!(
                    "`{}`: {why}; accepted for other code (sha256 {}), its code is now sha256 {}: it was rewritten",
                    path.name, door.code, path.code
                )),
                Judged::No => failing.push(format!(
                    "`{}`: {why} (if it is there by design, accept it after review: `accept = [{{ through = \"{}\", code = \"{}\", reason = \"...\" }}]`)",
                    path.name, path.name, path.code
                )),
            }
        }
        let mut seen = proven.clone();
        seen.extend(accepted.iter().cloned());
        if failing.is_empty() {
            let actual = if seen.is_empty() { "none".to_owned() } else { seen.join("; ") };
            let read = if proven.is_empty() {
                String::new()
            } else {
                format!(
                    " ({} read whole, each leaves it as it is: {})",
                    proven.len(),
                    crate::listing::first(&proven, 5, ", ")
                )
            };
            let but = if accepted.is_empty() { String::new() } else { format!("; accepted: {}", accepted.join("; ")) };
            return result.actual(actual).found(
                Found::NoOthersPowers,
                format!("`{}` runs no code of others that may change `{}`{read}{but}", self.role, self.table),
            );
        }
        result.actual(failing.join("; ")).found(
            Found::OthersPowers,
            format!(
                "`{}` may change `{}` with another role's powers: {}",
                self.role,
                self.table,
                crate::listing::first(&failing, 3, "; ")
            ),
        )
    }
}

/// Where a path's code resolves the names it does not qualify.
struct Entry<'a> {
    /// The `search_path` its first function pins (`None`: none, or a rule's action).
    path: Option<Vec<String>>,
    /// The schemas the writer may create objects in.
    creatable: &'a [String],
}

/// A `search_path` setting's schemas, lower case and unquoted.
fn split_path(setting: &str) -> Vec<String> {
    setting
        .split(',')
        .map(|s| s.trim().trim_matches(|c| c == '"' || c == '\'').to_lowercase())
        .filter(|s| !s.is_empty())
        .collect()
}

/// Why a function the path runs resolves a name the writer chooses, if it may: its
/// `search_path` (its own, else the path's first function's) is its caller's while the writer
/// may create temporary objects or objects in some schema, or does not end with `pg_temp`
/// while the writer may create temporary ones, or puts a schema the writer may create objects
/// in before `pg_catalog`.
fn resolution(reader: &Reader, entry: &Entry<'_>) -> Vec<String> {
    let text = reader.text.trim_start().to_lowercase();
    if !(text.starts_with("create or replace function") || text.starts_with("create or replace procedure")) {
        return Vec::new();
    }
    let temporary = entry.creatable.iter().any(|s| s == "pg_temp");
    let schemas: Vec<&str> = entry.creatable.iter().map(String::as_str).filter(|s| *s != "pg_temp").collect();
    let Some(path) = writes::pinned_path(&reader.text).or_else(|| entry.path.clone()) else {
        // Unpinned, its names resolve in its caller's search_path.
        if !temporary && schemas.is_empty() {
            return Vec::new();
        }
        let may = if schemas.is_empty() {
            "create temporary tables, views and types".to_owned()
        } else {
            format!("create objects in `{}`", schemas.join("`, `"))
        };
        return vec![format!(
            "{}: its search_path is not pinned (no `SET search_path`), so what its unqualified names (tables, types, functions, operators) are is its caller's choice: its caller may {may}",
            reader.name
        )];
    };
    let mut out = Vec::new();
    // PostgreSQL searches the caller's temporary schema first for tables, views and types (and
    // their casts) unless the search_path names it, last: a name the code leaves unqualified,
    // a `::text` included, may be the caller's. A body that names none has nothing to shadow.
    if temporary
        && path.last().map(String::as_str) != Some("pg_temp")
        && crate::check::loophole::shadow::may_name_relations_or_types(&reader.text)
    {
        out.push(format!(
            "{}: its search_path (`{}`) does not end with pg_temp, so its caller's temporary tables, views and types (and casts on them) come first for the names it leaves unqualified",
            reader.name,
            path.join(", ")
        ));
    }
    let catalog = path.iter().position(|s| s == "pg_catalog");
    for (at, schema) in path.iter().enumerate() {
        if entry.creatable.contains(schema) && catalog.is_some_and(|c| at < c) {
            out.push(format!(
                "{}: its search_path puts `{schema}`, where its caller may create objects, before pg_catalog",
                reader.name
            ));
        }
    }
    out
}

/// Reads the code of `texts` and `functions` whole, with the triggers and rules of every table
/// it changes: why it is not proven to leave the trail as it is, and the texts read (sorted).
async fn read_code(
    conn: &mut PgConnection,
    texts: &[Reader],
    functions: &[(i64, String)],
    trail: &Trail,
    entry: &Entry<'_>,
) -> sqlx::Result<(Vec<String>, Vec<String>)> {
    let mut gathered = graph::gather_code(conn, texts, functions).await?;
    let mut unproven: Vec<String> = Vec::new();
    let mut done: BTreeSet<(String, Operation)> = BTreeSet::new();
    let mut readers: Vec<Reader> = Vec::new();
    for _ in 0..6 {
        let fresh: Vec<Reader> = gathered.readers.iter().filter(|r| !readers.contains(r)).cloned().collect();
        if fresh.is_empty() {
            break;
        }
        for reader in &fresh {
            unproven.extend(resolution(reader, entry));
            for fact in facts::read(&reader.text) {
                if let facts::Fact::Outside(what) = fact {
                    unproven.push(format!("{}: reaches outside the database (`{what}`)", reader.name));
                }
            }
        }
        let found = writes::writes(&fresh);
        unproven.extend(found.unproven);
        readers.extend(fresh);
        for (name, operation) in found.targets {
            if !done.insert((name.clone(), operation)) {
                continue;
            }
            if let Some(why) = trail.changed_by(&name, operation) {
                unproven.push(why);
                continue;
            }
            let relations: Vec<(String, bool)> = sqlx::query_as(TARGETS_SQL).bind(&name).fetch_all(&mut *conn).await?;
            for (relation, view) in relations {
                if view && operation != Operation::Insert {
                    unproven.push(format!(
                        "{} `{relation}`, a view: what it changes is its owner's to choose",
                        writes::said(&name, operation)
                    ));
                    continue;
                }
                // Its triggers that fire after the row is written run too (the walk of
                // protections reads those before it only): as functions, with their own.
                let after: Vec<(i64, String)> = sqlx::query_as(AFTER_SQL).bind(&relation).fetch_all(&mut *conn).await?;
                for more in [
                    graph::gather(&mut *conn, &relation, operation.protections(), &[]).await?,
                    graph::gather_code(&mut *conn, &[], &after).await?,
                ] {
                    gathered.readers.extend(more.readers);
                    gathered.unreadable.extend(more.unreadable);
                    gathered.unvetted.extend(more.unvetted);
                    gathered.truncated |= more.truncated;
                }
            }
        }
    }
    unproven.extend(beyond(conn, &gathered).await?);
    unproven.sort();
    unproven.dedup();
    let mut read: Vec<String> = readers.into_iter().map(|r| r.text).collect();
    read.sort();
    read.dedup();
    Ok((unproven, read))
}

/// What the walk could not read, and the volatile built-ins it reaches off [`HARMLESS`].
async fn beyond(conn: &mut PgConnection, gathered: &Gathered) -> sqlx::Result<Vec<String>> {
    let mut out: Vec<String> = gathered
        .unreadable
        .iter()
        .map(|(path, language)| format!("{path}: its code is in {language}, which pgdrill cannot read"))
        .collect();
    if gathered.truncated {
        out.push("the code reaches more functions than pgdrill follows".to_owned());
    }
    let names: Vec<String> = gathered
        .unvetted
        .iter()
        .filter(|u| !u.name.contains(' ') && !HARMLESS.contains(&u.name.as_str()))
        .map(|u| u.name.clone())
        .collect();
    let volatile: Vec<String> = sqlx::query_scalar(VOLATILE_SQL).bind(&names).fetch_all(&mut *conn).await?;
    for u in &gathered.unvetted {
        if volatile.contains(&u.name) {
            out.push(format!(
                "{}: runs `{}`, PostgreSQL's or an extension's and volatile, whose changes pgdrill does not read",
                u.path, u.name
            ));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_trail_changes_by_its_own_changes_and_by_the_cascades_it_follows() {
        let trail = Trail { names: vec!["audit".into()], parents: vec![("members".into(), "d".into())] };
        assert_eq!(trail.changed_by("audit", Operation::Insert), None);
        assert!(trail.changed_by("audit", Operation::Update).unwrap().contains("updates `audit`, the trail"));
        assert!(trail.changed_by("members", Operation::Delete).unwrap().contains("cascading foreign key"));
        assert!(trail.changed_by("members", Operation::Truncate).is_some());
        assert_eq!(trail.changed_by("members", Operation::Update), None);
        assert_eq!(trail.changed_by("notes", Operation::Delete), None);
    }
}
