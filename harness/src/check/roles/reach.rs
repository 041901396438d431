//! What a role reaches through code others own. A privilege check of the role's own grants
//! misses two doors the backup can open:
//! - a `SECURITY DEFINER` function owned by a superuser (or a role with an elevated attribute)
//!   that the role may execute runs as its owner: when it runs SQL built at run time (`EXECUTE`
//!   of its argument) or code pgdrill cannot read, the role can do whatever its owner can (an
//!   `ALTER ROLE app SUPERUSER` through `run_maintenance(text)`);
//! - a view the role may read, or a `SECURITY DEFINER` function it may execute, that reads a
//!   forbidden schema hands the role that schema's rows: a view runs with its owner's
//!   privileges, as a definer function does. A view's reads are its dependencies; a definer's
//!   are judged from its code ([`Definer::reads`]) when its owner may use the schema: it names
//!   the schema anywhere (its pinned `search_path` included, the schema quoted or not), or its
//!   names resolve in its caller's `search_path` (none pinned), or it runs what its caller gives
//!   it or code pgdrill cannot read.
//!
//! Both fail the ceiling, naming the object and how the role reaches it. What the functions'
//! code does is read by [`crate::check::loophole::facts`].

use std::time::Instant;

use super::{Found, Spec};
use crate::check::accept::code_digest;
use crate::check::loophole::facts::{self, Fact};
use crate::check::{CheckContext, CheckResult, bind_evidence};
use crate::pg::describe_sql_error;

/// `SECURITY DEFINER` functions the role `$1` may execute whose owner is a superuser or has an
/// elevated attribute, outside `pg_catalog` and extensions: name, owner, language, definition,
/// number of arguments, source and settings (what an acceptance's `code` digests).
const DEFINERS_SQL: &str = "SELECT p.oid::pg_catalog.regprocedure::pg_catalog.text, o.rolname::pg_catalog.text, l.lanname::pg_catalog.text, \
       CASE WHEN p.prokind OPERATOR(pg_catalog.=) ANY ('{f,p}'::pg_catalog.\"char\"[]) THEN pg_catalog.pg_get_functiondef(p.oid) ELSE '' END, \
       p.pronargs::pg_catalog.int4, p.prosrc, COALESCE(pg_catalog.array_to_string(p.proconfig, E'\\n'), '') \
  FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_roles o ON o.oid OPERATOR(pg_catalog.=) p.proowner \
  JOIN pg_catalog.pg_language l ON l.oid OPERATOR(pg_catalog.=) p.prolang \
  JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) p.pronamespace \
 WHERE p.prosecdef AND (o.rolsuper OR o.rolbypassrls OR o.rolcreaterole OR o.rolreplication) \
   AND n.nspname OPERATOR(pg_catalog.<>) ALL ('{pg_catalog,information_schema}'::pg_catalog.name[]) \
   AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend e WHERE e.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_proc'::pg_catalog.regclass \
                   AND e.objid OPERATOR(pg_catalog.=) p.oid AND e.deptype OPERATOR(pg_catalog.=) 'e') \
   AND pg_catalog.has_function_privilege($1, p.oid, 'EXECUTE') AND pg_catalog.has_schema_privilege($1, n.oid, 'USAGE') \
   AND p.prorettype OPERATOR(pg_catalog.<>) ALL (ARRAY['pg_catalog.trigger'::pg_catalog.regtype, 'pg_catalog.event_trigger'::pg_catalog.regtype]::pg_catalog.oid[]) \
 ORDER BY 1";

/// Views the role `$1` may read that depend on a relation in one of the schemas `$2`, outside
/// those schemas: the view, and the relations it reads there.
const VIEWS_SQL: &str = "SELECT v.oid::pg_catalog.regclass::pg_catalog.text, \
       pg_catalog.string_agg(DISTINCT t.oid::pg_catalog.regclass::pg_catalog.text, ', ') \
  FROM pg_catalog.pg_class v JOIN pg_catalog.pg_namespace vn ON vn.oid OPERATOR(pg_catalog.=) v.relnamespace \
  JOIN pg_catalog.pg_rewrite r ON r.ev_class OPERATOR(pg_catalog.=) v.oid \
  JOIN pg_catalog.pg_depend d ON d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_rewrite'::pg_catalog.regclass AND d.objid OPERATOR(pg_catalog.=) r.oid \
       AND d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass \
  JOIN pg_catalog.pg_class t ON t.oid OPERATOR(pg_catalog.=) d.refobjid AND t.oid OPERATOR(pg_catalog.<>) v.oid \
  JOIN pg_catalog.pg_namespace tn ON tn.oid OPERATOR(pg_catalog.=) t.relnamespace \
 WHERE v.relkind OPERATOR(pg_catalog.=) ANY ('{v,m}'::pg_catalog.\"char\"[]) \
   AND tn.nspname::pg_catalog.text OPERATOR(pg_catalog.=) ANY ($2::pg_catalog.text[]) \
   AND vn.nspname::pg_catalog.text OPERATOR(pg_catalog.<>) ALL ($2::pg_catalog.text[]) \
   AND pg_catalog.has_table_privilege($1, v.oid, 'SELECT') AND pg_catalog.has_schema_privilege($1, vn.oid, 'USAGE') \
 GROUP BY 1 ORDER BY 1";

/// `SECURITY DEFINER` functions the role `$1` may execute whose owner is not it: name, owner,
/// language, definition (with its `SET` lines), whether it pins its `search_path`, its source
/// and settings, whether an extension installed it, and which of the schemas `$2` its owner may
/// use (so the function may read, whatever the role may).
const ALL_DEFINERS_SQL: &str = "SELECT p.oid::pg_catalog.regprocedure::pg_catalog.text, o.rolname::pg_catalog.text, l.lanname::pg_catalog.text, \
       CASE WHEN p.prokind OPERATOR(pg_catalog.=) ANY ('{f,p}'::pg_catalog.\"char\"[]) THEN pg_catalog.pg_get_functiondef(p.oid) ELSE '' END, \
       p.pronargs::pg_catalog.int4, \
       EXISTS (SELECT FROM pg_catalog.unnest(p.proconfig) c WHERE c OPERATOR(pg_catalog.~~) 'search\\_path=%'), \
       p.prosrc, COALESCE(pg_catalog.array_to_string(p.proconfig, E'\\n'), ''), \
       EXISTS (SELECT FROM pg_catalog.pg_depend e WHERE e.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_proc'::pg_catalog.regclass \
               AND e.objid OPERATOR(pg_catalog.=) p.oid AND e.deptype OPERATOR(pg_catalog.=) 'e'), \
       ARRAY(SELECT s.nspname::pg_catalog.text FROM pg_catalog.pg_namespace s \
              WHERE s.nspname::pg_catalog.text OPERATOR(pg_catalog.=) ANY ($2::pg_catalog.text[]) \
                AND pg_catalog.has_schema_privilege(p.proowner, s.oid, 'USAGE') ORDER BY 1) \
  FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_roles o ON o.oid OPERATOR(pg_catalog.=) p.proowner \
  JOIN pg_catalog.pg_language l ON l.oid OPERATOR(pg_catalog.=) p.prolang \
  JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) p.pronamespace \
 WHERE p.prosecdef AND n.nspname OPERATOR(pg_catalog.<>) ALL ('{pg_catalog,information_schema}'::pg_catalog.name[]) \
   AND NOT pg_catalog.pg_has_role($1, p.proowner, 'MEMBER') \
   AND pg_catalog.has_function_privilege($1, p.oid, 'EXECUTE') AND pg_catalog.has_schema_privilege($1, n.oid, 'USAGE') \
   AND p.prorettype OPERATOR(pg_catalog.<>) ALL (ARRAY['pg_catalog.trigger'::pg_catalog.regtype, 'pg_catalog.event_trigger'::pg_catalog.regtype]::pg_catalog.oid[]) \
 ORDER BY 1";

/// A row of [`DEFINERS_SQL`].
type ElevatedRow = (String, String, String, String, i32, String, String);

/// One definer function as [`ALL_DEFINERS_SQL`] reads it.
struct Definer {
    function: String,
    owner: String,
    language: String,
    definition: String,
    arguments: i32,
    pinned: bool,
    /// An extension's own (its code in C is the extension's, as everywhere else).
    extension: bool,
    /// The forbidden schemas its owner may use.
    reachable: Vec<String>,
    /// The sha256 (hex) of its language, settings and source: what an acceptance holds for.
    code: String,
}

/// A row of [`ALL_DEFINERS_SQL`].
type DefinerRow = (String, String, String, String, i32, bool, String, String, bool, Vec<String>);

impl From<DefinerRow> for Definer {
    fn from(
        (function, owner, language, definition, arguments, pinned, source, config, extension, reachable): DefinerRow,
    ) -> Self {
        let code = code_digest(&language, &config, &source);
        Definer { function, owner, language, definition, arguments, pinned, extension, reachable, code }
    }
}

impl Definer {
    /// How the function hands the role `schema` (one its owner may use), if it can: it names
    /// the schema anywhere in its definition, its search_path included (quoted or not, in a
    /// string it runs or not); or its names resolve in its caller's search_path, which the
    /// caller sets to anything; or it runs code pgdrill cannot read, or SQL built at run time
    /// from what its caller gives it.
    fn reads(&self, schema: &str) -> Option<String> {
        if names(&self.definition, schema) {
            return Some(format!("names `{schema}`"));
        }
        if !matches!(self.language.as_str(), "sql" | "plpgsql") {
            if self.extension {
                return None;
            }
            return Some(format!("may read `{schema}`: its code is in {}, which pgdrill cannot read", self.language));
        }
        if !self.pinned {
            return Some(format!(
                "may read `{schema}`: its search_path is not pinned (no `SET search_path`), so its unqualified names resolve in its caller's, which any session sets to `{schema}`"
            ));
        }
        runs_anything(&self.language, &self.definition, self.arguments).map(|why| format!("may read `{schema}`: {why}"))
    }
}

/// Whether `definition` names `schema` as a word, case, double quotes and comments aside.
fn names(definition: &str, schema: &str) -> bool {
    let text = facts::without_comments(definition).to_lowercase().replace('"', "");
    let wanted = schema.to_lowercase();
    let word = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$');
    text.match_indices(&wanted)
        .any(|(at, _)| !word(text[..at].chars().next_back()) && !word(text[at + wanted.len()..].chars().next()))
}

/// Why a definer function's code hands its owner's powers over, if it does: code pgdrill cannot
/// read, or SQL built at run time from what its caller gives it (its arguments, or a setting
/// the caller's session sets); a definer with no argument that reads no such setting runs SQL
/// the caller does not choose.
fn runs_anything(language: &str, definition: &str, arguments: i32) -> Option<String> {
    if !matches!(language, "sql" | "plpgsql") {
        return Some(format!("its code is in {language}, which pgdrill cannot read"));
    }
    let read = facts::read(definition);
    let given = arguments > 0
        || read
            .iter()
            .any(|f| matches!(f, Fact::ComputedSetting) || matches!(f, Fact::Setting(name) if name.contains('.')));
    read.into_iter().find_map(|f| match f {
        // A quoted identifier (`%I`): the caller chooses which object the statement acts on,
        // not what statement runs.
        Fact::Dynamic(start) if given && start.to_lowercase().contains("%i") && !start.to_lowercase().contains("%s") => {
            Some(format!(
                "it runs SQL built at run time in which its caller chooses an identifier (`EXECUTE {start}`): which object it acts on, with its owner's powers"
            ))
        }
        Fact::Dynamic(start) if given => Some(format!("it runs SQL built at run time (`EXECUTE {start}`)")),
        _ => None,
    })
}

impl Spec {
    /// `SECURITY DEFINER` functions of elevated owners the role may call whose code can do
    /// anything (see the module).
    pub(super) async fn definers(&self, ctx: &CheckContext<'_>) -> CheckResult {
        let started = Instant::now();
        let result = self
            .result("functions it runs as others", started)
            .expected("no SECURITY DEFINER function of a superuser or an elevated role that runs SQL of the caller's choosing")
            .evidence(bind_evidence(DEFINERS_SQL, &[&self.role]));
        let rows: Vec<ElevatedRow> = match sqlx::query_as(DEFINERS_SQL).bind(&self.role).fetch_all(ctx.pool).await {
            Ok(rows) => rows,
            Err(err) => return result.found(Found::CouldNotRead, describe_sql_error(&err)),
        };
        let (mut doors, mut accepted) = (Vec::new(), Vec::new());
        for (function, owner, language, definition, arguments, source, config) in &rows {
            let Some(why) = runs_anything(language, definition, *arguments) else { continue };
            let code = code_digest(language, config, source);
            match self.accept.doors.iter().find(|d| d.function == *function) {
                Some(door) if door.code == code => {
                    accepted.push(format!("`{function}`, which {why}: accepted, {}", door.reason));
                }
                Some(door) => doors.push(format!(
                    "`{function}`, SECURITY DEFINER owned by `{owner}`: {why}; accepted for other code (sha256 {}), its code is now sha256 {code}: the function was rewritten",
                    door.code
                )),
                None => doors.push(format!(
                    "`{function}`, SECURITY DEFINER owned by `{owner}`, which `{}` may execute: {why} (if its code is the API by design, accept it after review: `accept = [{{ through = \"{function}\", code = \"{code}\", reason = \"...\" }}]`)",
                    self.role
                )),
            }
        }
        if doors.is_empty() {
            let actual = if accepted.is_empty() { "none".to_owned() } else { accepted.join("; ") };
            return result.actual(actual).found(
                Found::NoDefinerDoor,
                format!(
                    "`{}` runs no function of an elevated role that does whatever its caller says{}",
                    self.role,
                    if accepted.is_empty() {
                        String::new()
                    } else {
                        format!(" but those accepted: {}", accepted.join("; "))
                    }
                ),
            );
        }
        result.actual(doors.join("; ")).found(
            Found::DefinerDoor,
            format!(
                "`{}` can run SQL of its choosing with another role's powers: {}",
                self.role,
                crate::listing::first(&doors, 3, "; ")
            ),
        )
    }

    /// Views and definer functions that read a forbidden schema for the role (see the module).
    pub(super) async fn through_others(&self, ctx: &CheckContext<'_>) -> Option<CheckResult> {
        if self.forbidden_schemas.is_empty() {
            return None;
        }
        let started = Instant::now();
        let schemas = format!("{{{}}}", self.forbidden_schemas.join(","));
        let result = self
            .result("forbidden schemas through views and functions", started)
            .expected("no view or SECURITY DEFINER function it may use reads a forbidden schema")
            .evidence(format!(
                "{}\n{}",
                bind_evidence(VIEWS_SQL, &[&self.role, &schemas]),
                bind_evidence(ALL_DEFINERS_SQL, &[&self.role, &schemas])
            ));
        let views: Vec<(String, String)> =
            match sqlx::query_as(VIEWS_SQL).bind(&self.role).bind(&self.forbidden_schemas).fetch_all(ctx.pool).await {
                Ok(rows) => rows,
                Err(err) => return Some(result.found(Found::CouldNotRead, describe_sql_error(&err))),
            };
        let rows: Vec<DefinerRow> = match sqlx::query_as(ALL_DEFINERS_SQL)
            .bind(&self.role)
            .bind(&self.forbidden_schemas)
            .fetch_all(ctx.pool)
            .await
        {
            Ok(rows) => rows,
            Err(err) => return Some(result.found(Found::CouldNotRead, describe_sql_error(&err))),
        };
        let definers: Vec<Definer> = rows.into_iter().map(Definer::from).collect();
        let views = views.iter().map(|(view, read)| format!("through `{view}`, which reads {read}")).collect();
        let (doors, accepted, unaccepted) = self.doors(views, &definers);
        let result = match accepted.is_empty() {
            true => result,
            false => result.expected(format!(
                "no view or SECURITY DEFINER function it may use reads a forbidden schema, but {}",
                self.accept
                    .doors
                    .iter()
                    .map(|d| format!("`{}` (accepted: {})", d.function, d.reason))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        };
        Some(if doors.is_empty() {
            let actual = if accepted.is_empty() { "none".to_owned() } else { accepted.join("; ") };
            result.actual(actual).found(
                Found::NoForbiddenPath,
                format!("no view or function hands `{}` a forbidden schema but those accepted", self.role),
            )
        } else {
            let hint = unaccepted.map(|d| {
                format!(
                    " (hint: one there by design is accepted with its code: `accept = [{{ through = \"{}\", code = \"{}\", reason = \"...\" }}]`)",
                    d.function, d.code
                )
            });
            result.actual(doors.join("; ")).found(
                Found::ForbiddenPath,
                format!(
                    "`{}` reads forbidden schemas {}{}",
                    self.role,
                    crate::listing::first(&doors, 3, "; "),
                    hint.unwrap_or_default()
                ),
            )
        })
    }

    /// The ways into a forbidden schema the check fails (`views`, then the definer functions
    /// that read one and are not accepted for their code, then acceptances nothing needs), and
    /// those accepted.
    fn doors<'a>(
        &self,
        mut doors: Vec<String>,
        definers: &'a [Definer],
    ) -> (Vec<String>, Vec<String>, Option<&'a Definer>) {
        let (mut accepted, mut unaccepted) = (Vec::new(), None);
        let mut used = std::collections::HashSet::new();
        for definer in definers {
            let Some(how) = definer.reachable.iter().find_map(|schema| definer.reads(schema)) else { continue };
            let acceptance = self.accept.doors.iter().find(|d| d.function == definer.function);
            match acceptance {
                Some(door) if door.code == definer.code => {
                    accepted.push(format!("through `{}`, which {how}: accepted, {}", definer.function, door.reason));
                }
                Some(door) => doors.push(format!(
                    "through `{}` (SECURITY DEFINER, owned by `{}`), which {how}: accepted for other code (sha256 {}), its code is now sha256 {}: the function was rewritten",
                    definer.function, definer.owner, door.code, definer.code
                )),
                None => {
                    unaccepted = unaccepted.or(Some(definer));
                    doors.push(format!(
                        "through `{}` (SECURITY DEFINER, owned by `{}`, code {}), which {how}",
                        definer.function, definer.owner, definer.code
                    ))
                }
            }
            used.extend(acceptance.map(|d| d.function.as_str()));
        }
        // An acceptance of a definer that runs what its caller gives it is the other check's
        // ([`Spec::definers`]): used there.
        let runs_given = |f: &str| {
            definers.iter().any(|d| d.function == f && runs_anything(&d.language, &d.definition, d.arguments).is_some())
        };
        for door in self.accept.doors.iter().filter(|d| !used.contains(d.function.as_str()) && !runs_given(&d.function))
        {
            doors.push(format!(
                "the scenario accepts `{}`, which hands `{}` no forbidden schema (or does not exist): drop the acceptance (one nothing needs lets a door come back unnoticed)",
                door.function, self.role
            ));
        }
        (doors, accepted, unaccepted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn definer(language: &str, pinned: bool, definition: &str) -> Definer {
        let (function, owner) = ("public.f()".to_owned(), "owner".to_owned());
        let (language, definition) = (language.to_owned(), definition.to_owned());
        let (reachable, code) = (vec!["tenant_b".into()], "c".repeat(64));
        Definer { function, owner, language, definition, arguments: 1, pinned, extension: false, reachable, code }
    }

    #[test]
    fn a_definer_reads_a_schema_it_names_however_it_names_it() {
        for named in [
            "SELECT * FROM tenant_b.contracts",
            "SELECT * FROM \"tenant_b\".contracts",
            "SELECT * FROM TENANT_B . contracts",
            " SET search_path TO 'tenant_b', 'pg_catalog'\nAS $$ SELECT * FROM contracts $$",
            "BEGIN EXECUTE 'SELECT * FROM tenant_b.contracts'; END",
        ] {
            assert!(names(named, "tenant_b"), "{named}");
            assert_eq!(definer("sql", true, named).reads("tenant_b").as_deref(), Some("names `tenant_b`"));
        }
        let commented = "SELECT 1 -- never tenant_b\n/* nor tenant_b.contracts */";
        for other in ["SELECT * FROM tenant_bb.contracts", "SELECT * FROM my_tenant_b.x", "SELECT 1", commented] {
            assert!(!names(other, "tenant_b"), "{other}");
        }
    }

    #[test]
    fn a_definer_that_names_nothing_may_still_read_a_schema_its_owner_uses() {
        let body = "BEGIN RETURN (SELECT sum(value) FROM contracts); END";
        assert_eq!(definer("plpgsql", true, body).reads("tenant_b"), None, "pinned, reading what it names");
        let unpinned = definer("plpgsql", false, body).reads("tenant_b").unwrap();
        assert!(unpinned.contains("search_path is not pinned"), "{unpinned}");
        let c = definer("c", true, "").reads("tenant_b").unwrap();
        assert!(c.contains("its code is in c"), "{c}");
        assert_eq!(Definer { extension: true, ..definer("c", true, "") }.reads("tenant_b"), None, "an extension's own");
        let dynamic = definer("plpgsql", true, "BEGIN EXECUTE query; END").reads("tenant_b").unwrap();
        assert!(dynamic.contains("SQL built at run time"), "{dynamic}");
    }

    #[test]
    fn a_definer_that_executes_what_it_is_given_does_anything() {
        let run = "CREATE FUNCTION public.run_maintenance(command text) RETURNS void LANGUAGE plpgsql SECURITY DEFINER AS $$ BEGIN EXECUTE command; END $$";
        assert!(runs_anything("plpgsql", run, 1).is_some_and(|w| w.contains("SQL built at run time")));
        let fixed = "BEGIN DELETE FROM public.sessions WHERE expires_at < now(); END";
        assert_eq!(runs_anything("plpgsql", fixed, 0), None);
        assert!(runs_anything("plperlu", "", 0).is_some_and(|w| w.contains("plperlu")));
        // A partition made each month: built at run time, from nothing its caller gives.
        let monthly = "DECLARE part text := 'events_' || to_char(now(), 'YYYY_MM'); BEGIN EXECUTE format('CREATE TABLE IF NOT EXISTS %I PARTITION OF public.events DEFAULT', part); END";
        assert_eq!(runs_anything("plpgsql", monthly, 0), None);
        let from_setting = "BEGIN EXECUTE current_setting('app.maintenance_sql'); END";
        assert!(runs_anything("plpgsql", from_setting, 0).is_some());
        let identifier = "BEGIN EXECUTE pg_catalog.format('DROP TABLE public.%I', name); END";
        assert!(
            runs_anything("plpgsql", identifier, 1).is_some_and(|w| w.contains("its caller chooses an identifier")),
            "the caller chooses which table, not what statement"
        );
    }
}
