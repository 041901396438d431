//! `roles`: a runtime role's floor (what the application needs it to do) and ceiling (what a
//! compromised application must not be able to do), read from the catalogs with
//! `has_*_privilege` and `pg_has_role`.
//!
//! ```toml
//! [[checks.roles]]
//! role = "plur_app"
//! usage = ["public", "org_acme"]                            # floor: USAGE on these schemas
//! tables = { "public.users" = "SELECT, INSERT, UPDATE (name, email)", "public.audit_events" = "SELECT, INSERT" }
//! exact = true                                              # and nothing more on tables there
//! forbidden_schemas = ["org_globex"]                        # ceiling: no access at all there
//! login = false                                             # NOLOGIN (true: it can log in)
//!
//! [[checks.roles]]
//! role = "plur_migrator"
//! accept = [
//!   { attribute = "BYPASSRLS", reason = "the migration role rewrites every tenant's rows" },
//!   { member_of = "pg_read_all_data", reason = "it exports every table before a migration" },
//! ]
//! ```
//!
//! Names fold as PostgreSQL folds them (`Org_Globex` is `org_globex`, `"Org"` is `Org`). The
//! floor also asks for CONNECT on the database; a privilege followed by columns (`UPDATE (name,
//! email)`) is asked on those columns. The ceiling is always checked: not superuser,
//! createrole, createdb, bypassrls or replication; owns no table, view, sequence or schema;
//! CREATE on no schema and not on the database; not a member of pg_read_server_files,
//! pg_write_server_files, pg_execute_server_program, pg_read_all_data, pg_write_all_data or of
//! a role with an elevated attribute. Each failure says what the attribute or membership lets
//! the role do ([`ceiling`]). What a role is a member of counts as its own: it can `SET ROLE`
//! to it, so an object owned by such a role is one it holds every privilege on. A forbidden
//! schema that does not exist while one with a close name does fails with a hint.
//!
//! `accept` also lets a `SECURITY DEFINER` function read a forbidden schema by design (an API
//! function of PostGraphile's kind, `{ through = "app_public.current_user_id()", code = "...",
//! reason = "..." }`), or an elevated owner's definer run what its caller gives it (a retention
//! job's `drop_partition(name)` that checks the name, then quotes it as an identifier: the
//! failure says the caller chooses which object): for the code whose sha256 the failure printed
//! only, so a backup that rewrites the function fails again ([`reach`]).
//!
//! `accept` lets the ceiling pass an attribute or a membership the role has by design, each
//! with a non-empty `reason` that the report shows beside it; an accepted one the role does not
//! have fails (a stale acceptance). It accepts that attribute or membership only: what the role
//! owns, creates or reaches through the membership is still checked (and a superuser, a member
//! of every role, fails those).
//!
//! `exact = true` makes the listed table privileges the whole set: any privilege beyond them on
//! a table, view or foreign table in the schemas the check names (`usage` and the tables')
//! fails, saying how the role holds it ([`exact`]).

use std::collections::BTreeMap;
use std::time::Instant;

use serde::Deserialize;

use super::{CheckContext, CheckError, CheckResult, Kind, OrCheckError, ResolveContext, bind_evidence};
use crate::field::FieldError;
use crate::outcome::CheckKind;
use crate::pg::{QualifiedName, describe_sql_error, fold_ident, quote_ident_if_needed, quote_literal};
pub(crate) use finding::Found;

mod ceiling;
mod exact;
mod finding;
mod grants;
mod reach;

pub(crate) use ceiling::Accepted;
pub(crate) use exact::{Held, held};
pub(crate) use grants::PRIVILEGES;
use grants::{Grant, parse_grants};

pub(crate) const KIND: CheckKind = CheckKind::Roles;

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "RolesCheck")]
pub(crate) struct Config {
    /// The runtime role whose floor and ceiling are checked.
    pub role: String,
    /// CONNECT on the database (default true).
    pub connect: Option<bool>,
    /// Schemas the role needs USAGE on.
    #[serde(default)]
    pub usage: Vec<String>,
    /// Table to the privileges it needs, comma-separated; a privilege followed by columns in
    /// parentheses is needed on those columns (`SELECT, UPDATE (name, email)`).
    #[serde(default)]
    pub tables: BTreeMap<String, String>,
    /// The `tables` privileges are all the role may hold on tables in the schemas the check
    /// names (`usage` and the tables'): any other fails, saying how it is held (default false).
    #[serde(default)]
    pub exact: bool,
    /// Schemas the role must have no access to: no USAGE, and no table or view there it can
    /// read, write or owns, through its memberships too.
    #[serde(default)]
    pub forbidden_schemas: Vec<String>,
    /// Whether the role can log in: `false` asserts NOLOGIN (default: not checked).
    pub login: Option<bool>,
    /// Attributes and memberships the ceiling accepts for this role by design, each with why:
    /// `[{ attribute = "BYPASSRLS", reason = "..." }, { member_of = "pg_read_all_data", reason = "..." }]`.
    /// One the role does not have fails.
    #[serde(default)]
    pub accept: Vec<ceiling::AcceptConfig>,
}

#[derive(Debug, Clone)]
pub(crate) struct Spec {
    /// The role, schema names below as the server stores them (folded).
    pub role: String,
    pub connect: bool,
    pub usage: Vec<String>,
    /// Each table with its schema (`public` when none was written).
    pub tables: Vec<(QualifiedName, Vec<Grant>)>,
    pub exact: bool,
    pub forbidden_schemas: Vec<String>,
    pub login: Option<bool>,
    pub accept: Accepted,
}

/// Attributes read from `pg_roles`.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Attributes {
    pub superuser: bool,
    pub createrole: bool,
    pub createdb: bool,
    pub bypassrls: bool,
    pub replication: bool,
    pub login: bool,
    /// The server's `server_version_num` (what CREATEROLE allows changed in 16).
    pub server_version: i32,
}

/// How many items a message lists before it says how many more there are.
const LISTED: usize = 10;

impl Kind for Spec {
    const KIND: CheckKind = KIND;
    const GATE: bool = true;
    type Config = Config;

    fn resolve(config: Config, _ctx: &ResolveContext) -> Result<Self, FieldError> {
        let mut tables = Vec::new();
        for (table, privileges) in config.tables {
            let name = QualifiedName::parse(&table).map_err(FieldError::unplaced)?;
            let name = QualifiedName::new(name.schema_or_public().to_owned(), name.name);
            tables.push((name, parse_grants(&table, &privileges).map_err(|e| FieldError::unplaced(e.to_string()))?));
        }
        let usage: Vec<String> = config.usage.iter().map(|s| fold_ident(s)).collect();
        if config.exact && tables.is_empty() && usage.is_empty() {
            return Err(FieldError::unplaced(
                "`exact = true` needs `tables` or `usage`: it is exact in the schemas they name, and without them it checks nothing",
            ));
        }
        Ok(Spec {
            role: fold_ident(&config.role),
            connect: config.connect.unwrap_or(true),
            usage,
            tables,
            exact: config.exact,
            forbidden_schemas: config.forbidden_schemas.iter().map(|s| fold_ident(s)).collect(),
            login: config.login,
            accept: Accepted::resolve(config.accept)?,
        })
    }

    fn label(&self) -> String {
        self.role.clone()
    }

    async fn run(&self, ctx: &CheckContext<'_>) -> Result<Vec<CheckResult>, CheckError> {
        let started = Instant::now();
        let role = &self.role;
        let attributes: Option<(bool, bool, bool, bool, bool, bool, i32)> = sqlx::query_as(ATTRIBUTES_SQL)
            .bind(role)
            .fetch_optional(ctx.pool)
            .await
            .or_check(&format!("could not read role `{role}`"))?;
        let Some((superuser, createrole, createdb, bypassrls, replication, login, server_version)) = attributes else {
            let message = crate::names::with_hint(
                ctx.pool,
                crate::names::Object::Role,
                &QualifiedName { schema: None, name: role.clone() },
                format!("role `{role}` does not exist on the restored server"),
            )
            .await;
            return Ok(vec![
                CheckResult::build(KIND, role.clone(), started)
                    .expected("the role exists")
                    .actual("missing")
                    .evidence(bind_evidence(ATTRIBUTES_SQL, &[role]))
                    .found(Found::Missing, message),
            ]);
        };
        let attributes = Attributes { superuser, createrole, createdb, bypassrls, replication, login, server_version };
        Ok(vec![
            self.floor(ctx).await,
            self.exact(ctx).await,
            self.attributes(attributes, started),
            self.login(attributes, started),
            self.ownership(ctx).await,
            self.schema_create(ctx).await,
            self.forbidden(ctx).await,
            self.through_others(ctx).await,
            self.memberships(ctx, server_version).await,
            Some(self.definers(ctx).await),
        ]
        .into_iter()
        .flatten()
        .collect())
    }
}

const ATTRIBUTES_SQL: &str = "SELECT rolsuper, rolcreaterole, rolcreatedb, rolbypassrls, rolreplication, rolcanlogin, \
    current_setting('server_version_num')::int FROM pg_roles WHERE rolname = $1";

/// `items` for a message: all of them up to [`LISTED`], else the first ones and how many more,
/// so that the count is always whole.
pub(crate) fn listed(items: &[String]) -> String {
    if items.len() <= LISTED {
        items.join(", ")
    } else {
        format!("{} (first {LISTED} of {}), and {} more", items[..LISTED].join(", "), items.len(), items.len() - LISTED)
    }
}

impl Spec {
    fn result(&self, what: &str, started: Instant) -> super::CheckResultBuilder {
        CheckResult::build(KIND, format!("{} {what}", self.role), started)
    }

    async fn floor(&self, ctx: &CheckContext<'_>) -> Option<CheckResult> {
        let started = Instant::now();
        let mut needs = Vec::new();
        let mut probes = Vec::new();
        let role = quote_literal(&self.role);
        if self.connect {
            needs.push("CONNECT on the database".to_owned());
            probes.push(format!("has_database_privilege({role}, current_database(), 'CONNECT')"));
        }
        for schema in &self.usage {
            needs.push(format!("USAGE on schema {}", quote_ident_if_needed(schema)));
            // NULL when the schema does not exist.
            probes.push(format!(
                "(SELECT has_schema_privilege({role}, n.oid, 'USAGE') FROM pg_namespace n WHERE n.nspname = {})",
                quote_literal(schema)
            ));
        }
        for (table, grants) in &self.tables {
            let written = quote_literal(&table.sql());
            for grant in grants {
                let p = &grant.privilege;
                if grant.columns.is_empty() {
                    needs.push(format!("{p} on {table}"));
                    probes.push(format!("has_table_privilege({role}, {written}, '{p}')"));
                }
                for column in &grant.columns {
                    needs.push(format!("{p} ({}) on {table}", quote_ident_if_needed(column)));
                    probes.push(format!("has_column_privilege({role}, {written}, {}, '{p}')", quote_literal(column)));
                }
            }
        }
        if needs.is_empty() {
            return None;
        }
        let sql = format!("SELECT ARRAY[{}]", probes.join(", "));
        let result = self.result("floor", started).expected(summarize(&needs)).evidence(sql.clone());
        let held: Vec<Option<bool>> = match sqlx::query_scalar(&sql).fetch_one(ctx.pool).await {
            Ok(h) => h,
            Err(err) => {
                return Some(result.found(
                    Found::CouldNotRead,
                    format!(
                        "could not read the privileges of `{}`: {}",
                        self.role,
                        crate::names::describe_error(ctx.pool, &err).await
                    ),
                ));
            }
        };
        let mut missing = Vec::new();
        for (need, held) in needs.iter().zip(&held) {
            match held {
                Some(true) => {}
                Some(false) => missing.push(need.clone()),
                None => {
                    let written = need.trim_start_matches("USAGE on schema ");
                    let message = format!("{need} (schema {written} does not exist)");
                    let name = QualifiedName { schema: None, name: fold_ident(written) };
                    missing.push(crate::names::with_hint(ctx.pool, crate::names::Object::Schema, &name, message).await);
                }
            }
        }
        Some(if missing.is_empty() {
            result
                .actual("all held")
                .found(Found::FloorHeld, format!("`{}` can do what the application needs", self.role))
        } else {
            let list = listed(&missing);
            result
                .actual(format!("missing: {list}"))
                .found(Found::LacksPrivilege, format!("`{}` lacks {list}", self.role))
        })
    }

    /// `login = false`: the role cannot log in (NOLOGIN); `true`: it can.
    fn login(&self, a: Attributes, started: Instant) -> Option<CheckResult> {
        let want = self.login?;
        let text = |login: bool| if login { "LOGIN" } else { "NOLOGIN" };
        let result = self
            .result("login", started)
            .expected(text(want))
            .actual(text(a.login))
            .evidence(bind_evidence(ATTRIBUTES_SQL, &[&self.role]));
        Some(if a.login == want {
            result.found(Found::LoginAsExpected, format!("`{}` is {}", self.role, text(want)))
        } else if a.login {
            result.found(
                Found::CanLogIn,
                format!(
                    "`{}` can log in (LOGIN), expected NOLOGIN: anyone with its password connects as it",
                    self.role
                ),
            )
        } else {
            result.found(Found::CannotLogIn, format!("`{}` cannot log in (NOLOGIN), expected LOGIN", self.role))
        })
    }

    async fn ownership(&self, ctx: &CheckContext<'_>) -> Option<CheckResult> {
        let started = Instant::now();
        let sql = "SELECT o.what || CASE WHEN o.owner = (SELECT oid FROM pg_roles WHERE rolname = $1) THEN '' \
                   ELSE ' (owner ' || pg_get_userbyid(o.owner)::text || ', a role it is a member of)' END FROM ( \
                   SELECT n.nspname::text || '.' || c.relname::text AS what, c.relowner AS owner FROM pg_class c \
                   JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f') \
                   AND pg_has_role($1, c.relowner, 'MEMBER') \
                   UNION ALL SELECT 'schema ' || nspname::text, nspowner FROM pg_namespace WHERE pg_has_role($1, nspowner, 'MEMBER') \
                   ) o ORDER BY 1";
        let result = self
            .result("ownership", started)
            .expected("owns no table, view, sequence or schema, itself or through a role it is a member of")
            .evidence(bind_evidence(sql, &[&self.role]));
        Some(match sqlx::query_scalar::<_, String>(sql).bind(&self.role).fetch_all(ctx.pool).await {
            Err(err) => result.found(Found::CouldNotRead, describe_sql_error(&err)),
            Ok(owned) if owned.is_empty() => result
                .actual("owns nothing")
                .found(Found::OwnsNothing, format!("`{}` owns no objects it could alter or drop", self.role)),
            Ok(owned) => {
                let list = listed(&owned);
                result
                    .actual(format!("owns {list}"))
                    .found(Found::OwnsObjects, format!("`{}` owns {list}: it can alter or drop them", self.role))
            }
        })
    }

    async fn schema_create(&self, ctx: &CheckContext<'_>) -> Option<CheckResult> {
        let started = Instant::now();
        let sql = "SELECT nspname::text FROM pg_namespace n WHERE nspname NOT IN ('pg_catalog', 'information_schema') AND nspname NOT LIKE 'pg\\_%' \
                   AND EXISTS (SELECT 1 FROM pg_roles r WHERE pg_has_role($1, r.oid, 'MEMBER') AND has_schema_privilege(r.oid, n.oid, 'CREATE')) \
                   UNION ALL SELECT 'the database itself' WHERE EXISTS (SELECT 1 FROM pg_roles r WHERE pg_has_role($1, r.oid, 'MEMBER') \
                   AND has_database_privilege(r.oid, current_database(), 'CREATE')) ORDER BY 1";
        let result = self
            .result("CREATE", started)
            .expected("CREATE on no schema and not on the database")
            .evidence(bind_evidence(sql, &[&self.role]));
        Some(match sqlx::query_scalar::<_, String>(sql).bind(&self.role).fetch_all(ctx.pool).await {
            Err(err) => result.found(Found::CouldNotRead, describe_sql_error(&err)),
            Ok(found) if found.is_empty() => {
                result.actual("none").found(Found::NoDdl, format!("`{}` cannot create objects (no DDL)", self.role))
            }
            Ok(found) => {
                let list = listed(&found);
                result
                    .actual(format!("CREATE on {list}"))
                    .found(Found::CanCreate, format!("`{}` can create objects in {list}", self.role))
            }
        })
    }

    /// No access to the forbidden schemas: no USAGE, and no table it may read or write there,
    /// by its own grants, those of a role it is a member of, or by owning it through one.
    async fn forbidden(&self, ctx: &CheckContext<'_>) -> Option<CheckResult> {
        if self.forbidden_schemas.is_empty() {
            return None;
        }
        let started = Instant::now();
        let sql = "WITH m AS (SELECT r.oid FROM pg_roles r WHERE pg_has_role($1, r.oid, 'MEMBER')) \
                   SELECT n.nspname::text || CASE WHEN c.relname IS NULL THEN ' (USAGE)' ELSE '.' || c.relname::text || \
                   CASE WHEN c.relowner IN (SELECT oid FROM m) THEN ' (owned by ' || pg_get_userbyid(c.relowner)::text || ': every privilege)' ELSE '' END END \
                   FROM pg_namespace n LEFT JOIN pg_class c ON c.relnamespace = n.oid AND c.relkind IN ('r', 'p', 'v', 'm') \
                   AND (c.relowner IN (SELECT oid FROM m) OR EXISTS (SELECT 1 FROM m WHERE has_table_privilege(m.oid, c.oid, 'SELECT') \
                   OR has_table_privilege(m.oid, c.oid, 'INSERT') OR has_table_privilege(m.oid, c.oid, 'UPDATE') OR has_table_privilege(m.oid, c.oid, 'DELETE'))) \
                   WHERE n.nspname = ANY($2) AND (c.relname IS NOT NULL OR EXISTS (SELECT 1 FROM m WHERE has_schema_privilege(m.oid, n.oid, 'USAGE'))) ORDER BY 1";
        let shown: Vec<String> = self.forbidden_schemas.iter().map(|s| quote_ident_if_needed(s)).collect();
        let result = self
            .result("other schemas", started)
            .expected(format!("no access to {}", shown.join(", ")))
            .evidence(bind_evidence(sql, &[&self.role, &format!("{{{}}}", self.forbidden_schemas.join(","))]));
        Some(
            match sqlx::query_scalar::<_, String>(sql)
                .bind(&self.role)
                .bind(&self.forbidden_schemas)
                .fetch_all(ctx.pool)
                .await
            {
                Err(err) => result.found(Found::CouldNotRead, describe_sql_error(&err)),
                Ok(found) if found.is_empty() => {
                    // A forbidden schema that does not exist proves nothing when another name is
                    // close to it: the scenario probably misnamed the one it meant.
                    let mut misnamed = Vec::new();
                    for schema in self.absent_schemas(ctx).await {
                        let written = QualifiedName { schema: None, name: schema.clone() };
                        if let Some(meant) =
                            crate::names::suggest(ctx.pool, crate::names::Object::Schema, &written).await
                        {
                            misnamed.push(format!(
                                "forbidden schema `{}` does not exist, so nothing was checked there (hint: did you mean `{meant}`?)",
                                quote_ident_if_needed(&schema)
                            ));
                        }
                    }
                    if misnamed.is_empty() {
                        result.actual("no access").found(
                            Found::NoForbiddenAccess,
                            format!("`{}` cannot reach {}", self.role, shown.join(", ")),
                        )
                    } else {
                        let text = misnamed.join("; ");
                        result.actual(text.clone()).found(Found::ForbiddenMisnamed, text)
                    }
                }
                Ok(found) => {
                    let list = listed(&found);
                    result
                        .actual(format!("access to {} objects: {list}", found.len()))
                        .found(Found::ReachesForbidden, format!("`{}` reaches into {list}", self.role))
                }
            },
        )
    }

    /// The forbidden schemas the restored database has no schema of that name for (none when
    /// the catalog cannot be read: the check's own query has answered by then).
    async fn absent_schemas(&self, ctx: &CheckContext<'_>) -> Vec<String> {
        sqlx::query_scalar(
            "SELECT s FROM unnest($1::text[]) AS s WHERE NOT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = s)",
        )
        .bind(&self.forbidden_schemas)
        .fetch_all(ctx.pool)
        .await
        .unwrap_or_default()
    }
}

/// A long list of needs, summarized for the expected column.
fn summarize(needs: &[String]) -> String {
    crate::listing::first(needs, 5, ", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn spec(login: Option<bool>) -> Spec {
        Spec {
            role: "plur_app".into(),
            connect: true,
            usage: vec![],
            tables: vec![],
            exact: false,
            forbidden_schemas: vec![],
            login,
            accept: Accepted::default(),
        }
    }

    #[test]
    fn a_role_without_elevated_attributes_passes_and_one_with_them_fails_naming_each() {
        let spec = spec(None);
        let now = Instant::now();
        let clean = spec.attributes(Attributes::default(), now).unwrap();
        assert_eq!(clean.code, "roles.no-elevated-attribute", "{clean:?}");
        let elevated =
            spec.attributes(Attributes { superuser: true, bypassrls: true, ..Attributes::default() }, now).unwrap();
        assert_eq!(elevated.code, "roles.elevated-attribute");
        assert_eq!(elevated.actual, "SUPERUSER, BYPASSRLS");
        assert!(elevated.message.starts_with("`plur_app` has SUPERUSER: it bypasses every permission check"));
        assert!(elevated.message.contains("; `plur_app` has BYPASSRLS: it is exempt"), "{}", elevated.message);
    }

    #[test]
    fn login_false_passes_for_nologin_and_fails_for_a_role_that_can_log_in() {
        let now = Instant::now();
        assert!(spec(None).login(Attributes::default(), now).is_none(), "not asked, not checked");
        let nologin = spec(Some(false)).login(Attributes::default(), now).unwrap();
        assert_eq!(nologin.code, "roles.login-as-expected", "{nologin:?}");
        let can = spec(Some(false)).login(Attributes { login: true, ..Attributes::default() }, now).unwrap();
        assert_eq!(can.code, "roles.can-log-in");
        assert_eq!((can.expected.as_str(), can.actual.as_str()), ("NOLOGIN", "LOGIN"));
        assert!(can.message.contains("`plur_app` can log in (LOGIN), expected NOLOGIN"), "{}", can.message);
    }

    #[test]
    fn a_long_list_says_how_many_there_are_in_all() {
        let items: Vec<String> = (1..=25).map(|i| format!("org_globex.t{i}")).collect();
        let text = listed(&items);
        assert!(text.starts_with("org_globex.t1, org_globex.t2,"), "{text}");
        assert!(text.ends_with("org_globex.t10 (first 10 of 25), and 15 more"), "{text}");
        assert_eq!(listed(&items[..3]), "org_globex.t1, org_globex.t2, org_globex.t3");
    }

    #[test]
    fn names_fold_as_the_server_folds_them() {
        let config = Config {
            role: "Plur_App".into(),
            connect: None,
            usage: vec!["Public".into(), "\"Org\"".into()],
            tables: BTreeMap::from([("Users".to_owned(), "SELECT".to_owned())]),
            exact: false,
            forbidden_schemas: vec!["Org_Globex".into()],
            login: None,
            accept: vec![],
        };
        let ctx = ResolveContext { base: std::path::PathBuf::new(), baseline: None };
        let spec = Spec::resolve(config, &ctx).unwrap();
        assert_eq!(spec.role, "plur_app");
        assert_eq!(spec.usage, ["public", "Org"]);
        assert_eq!(spec.tables[0].0, QualifiedName::new("public", "users"), "a table without a schema is in public");
        assert_eq!(spec.forbidden_schemas, ["org_globex"]);
    }

    #[test]
    fn exact_without_tables_or_usage_is_refused() {
        let config = Config {
            role: "app".into(),
            connect: None,
            usage: vec![],
            tables: BTreeMap::new(),
            exact: true,
            forbidden_schemas: vec![],
            login: None,
            accept: vec![],
        };
        let ctx = ResolveContext { base: std::path::PathBuf::new(), baseline: None };
        let error = Spec::resolve(config, &ctx).unwrap_err().message;
        assert!(error.contains("`exact = true` needs `tables` or `usage`"), "{error}");
    }
}
