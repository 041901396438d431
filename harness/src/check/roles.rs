//! `roles`: a runtime role's floor (what the application needs it to do) and ceiling (what a
//! compromised application must not be able to do), read from the catalogs with
//! `has_*_privilege` and `pg_has_role`.
//!
//! ```toml
//! [[checks.roles]]
//! role = "plur_app"
//! usage = ["public", "org_acme"]                            # floor: USAGE on these schemas
//! tables = { "public.users" = "SELECT, INSERT, UPDATE, DELETE", "public.audit_events" = "SELECT, INSERT" }
//! forbidden_schemas = ["org_globex"]                        # ceiling: no access at all there
//! ```
//!
//! The floor also asks for CONNECT on the database. The ceiling is always checked: not
//! superuser, createrole, createdb, bypassrls or replication; owns no table, view, sequence or
//! schema; CREATE on no schema and not on the database; not a member of
//! pg_read_server_files, pg_write_server_files, pg_execute_server_program, pg_read_all_data or
//! pg_write_all_data.

use std::collections::BTreeMap;
use std::time::Instant;

use serde::Deserialize;

use super::{CheckContext, CheckResult, Kind, ResolveContext, bind_evidence};
use crate::field::FieldError;
use crate::pg::{QualifiedName, describe_sql_error, quote_literal};

pub(crate) const KIND: &str = "roles";

const PRIVILEGES: [&str; 7] = ["SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER"];
const DANGEROUS_ROLES: [&str; 5] = [
    "pg_read_server_files",
    "pg_write_server_files",
    "pg_execute_server_program",
    "pg_read_all_data",
    "pg_write_all_data",
];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Config {
    pub role: String,
    /// CONNECT on the database (default true).
    pub connect: Option<bool>,
    #[serde(default)]
    pub usage: Vec<String>,
    /// Table to the privileges it needs, comma-separated.
    #[serde(default)]
    pub tables: BTreeMap<String, String>,
    #[serde(default)]
    pub forbidden_schemas: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Spec {
    pub role: String,
    pub connect: bool,
    pub usage: Vec<String>,
    pub tables: Vec<(QualifiedName, Vec<String>)>,
    pub forbidden_schemas: Vec<String>,
}

impl Kind for Spec {
    const NAME: &'static str = KIND;
    const PROVES: &'static str = "runtime roles can do what they need and nothing more";
    const GATE: bool = true;
    type Config = Config;

    fn resolve(config: Config, _ctx: &ResolveContext) -> Result<Self, FieldError> {
        let mut tables = Vec::new();
        for (table, privileges) in config.tables {
            let name = QualifiedName::parse(&table).map_err(FieldError::unplaced)?;
            let mut list = Vec::new();
            for p in privileges.split(',').map(|p| p.trim().to_ascii_uppercase()).filter(|p| !p.is_empty()) {
                if !PRIVILEGES.contains(&p.as_str()) {
                    return Err(FieldError::unplaced(format!(
                        "`{p}` on `{table}` is not a table privilege ({})",
                        PRIVILEGES.join(", ")
                    )));
                }
                list.push(p);
            }
            tables.push((name, list));
        }
        Ok(Spec {
            role: config.role,
            connect: config.connect.unwrap_or(true),
            usage: config.usage,
            tables,
            forbidden_schemas: config.forbidden_schemas,
        })
    }

    fn label(&self) -> String {
        self.role.clone()
    }

    async fn run(&self, ctx: &CheckContext<'_>) -> Vec<CheckResult> {
        let started = Instant::now();
        let role = &self.role;
        let attributes: Option<(bool, bool, bool, bool, bool)> = match sqlx::query_as(
            "SELECT rolsuper, rolcreaterole, rolcreatedb, rolbypassrls, rolreplication FROM pg_roles WHERE rolname = $1",
        )
        .bind(role)
        .fetch_optional(ctx.pool)
        .await
        {
            Ok(a) => a,
            Err(err) => {
                return vec![CheckResult::build(KIND, role.clone(), started)
                    .error(format!("could not read role `{role}`: {}", describe_sql_error(&err)))];
            }
        };
        let Some(attributes) = attributes else {
            return vec![
                CheckResult::build(KIND, role.clone(), started)
                    .expected("the role exists")
                    .actual("missing")
                    .evidence(format!("SELECT FROM pg_roles WHERE rolname = {}", quote_literal(role)))
                    .verdict(false, format!("role `{role}` does not exist on the restored server")),
            ];
        };
        vec![
            self.floor(ctx).await,
            self.attributes(attributes, started),
            self.ownership(ctx).await,
            self.schema_create(ctx).await,
            self.forbidden(ctx).await,
            self.server_files(ctx).await,
        ]
        .into_iter()
        .flatten()
        .collect()
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
            needs.push(format!("USAGE on schema {schema}"));
            probes.push(format!("has_schema_privilege({role}, {}, 'USAGE')", quote_literal(schema)));
        }
        for (table, privileges) in &self.tables {
            for p in privileges {
                needs.push(format!("{p} on {table}"));
                probes.push(format!("has_table_privilege({role}, {}, '{p}')", quote_literal(&table.sql())));
            }
        }
        if needs.is_empty() {
            return None;
        }
        let sql = format!("SELECT ARRAY[{}]", probes.join(", "));
        let result = self.result("floor", started).expected(summarize(&needs)).evidence(sql.clone());
        let held: Vec<bool> = match sqlx::query_scalar(&sql).fetch_one(ctx.pool).await {
            Ok(h) => h,
            Err(err) => {
                return Some(result.error(format!(
                    "could not read the privileges of `{}`: {}",
                    self.role,
                    describe_sql_error(&err)
                )));
            }
        };
        let missing: Vec<&String> = needs.iter().zip(&held).filter(|(_, ok)| !**ok).map(|(n, _)| n).collect();
        Some(if missing.is_empty() {
            result.actual("all held").verdict(true, format!("`{}` can do what the application needs", self.role))
        } else {
            let list = missing.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ");
            result.actual(format!("missing: {list}")).verdict(false, format!("`{}` lacks {list}", self.role))
        })
    }

    fn attributes(
        &self,
        (sup, createrole, createdb, bypassrls, replication): (bool, bool, bool, bool, bool),
        started: Instant,
    ) -> Option<CheckResult> {
        let held: Vec<&str> = [
            ("SUPERUSER", sup),
            ("CREATEROLE", createrole),
            ("CREATEDB", createdb),
            ("BYPASSRLS", bypassrls),
            ("REPLICATION", replication),
        ]
        .into_iter()
        .filter(|(_, on)| *on)
        .map(|(n, _)| n)
        .collect();
        let result = self
            .result("attributes", started)
            .expected("none of SUPERUSER, CREATEROLE, CREATEDB, BYPASSRLS, REPLICATION")
            .evidence(format!(
                "SELECT rolsuper, rolcreaterole, rolcreatedb, rolbypassrls, rolreplication FROM pg_roles WHERE rolname = {}",
                quote_literal(&self.role)
            ));
        Some(if held.is_empty() {
            result.actual("none").verdict(true, format!("`{}` has no elevated attribute", self.role))
        } else {
            let list = held.join(", ");
            result
                .actual(list.clone())
                .verdict(false, format!("`{}` has {list}: a compromised application would own the server", self.role))
        })
    }

    async fn ownership(&self, ctx: &CheckContext<'_>) -> Option<CheckResult> {
        let started = Instant::now();
        let sql = "SELECT n.nspname::text || '.' || c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                   WHERE c.relowner = (SELECT oid FROM pg_roles WHERE rolname = $1) AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f') \
                   UNION ALL SELECT 'schema ' || nspname::text FROM pg_namespace WHERE nspowner = (SELECT oid FROM pg_roles WHERE rolname = $1) \
                   ORDER BY 1 LIMIT 20";
        let result =
            self.result("ownership", started).expected("owns no table, view, sequence or schema").evidence(sql);
        Some(match sqlx::query_scalar::<_, String>(sql).bind(&self.role).fetch_all(ctx.pool).await {
            Err(err) => result.error(describe_sql_error(&err)),
            Ok(owned) if owned.is_empty() => result
                .actual("owns nothing")
                .verdict(true, format!("`{}` owns no objects it could alter or drop", self.role)),
            Ok(owned) => {
                let list = owned.join(", ");
                result
                    .actual(format!("owns {list}"))
                    .verdict(false, format!("`{}` owns {list}: it can alter or drop them", self.role))
            }
        })
    }

    async fn schema_create(&self, ctx: &CheckContext<'_>) -> Option<CheckResult> {
        let started = Instant::now();
        let sql = "SELECT nspname::text FROM pg_namespace WHERE nspname NOT IN ('pg_catalog', 'information_schema') AND nspname NOT LIKE 'pg\\_%' \
                   AND has_schema_privilege($1, oid, 'CREATE') \
                   UNION ALL SELECT 'the database itself' WHERE has_database_privilege($1, current_database(), 'CREATE') ORDER BY 1";
        let result =
            self.result("CREATE", started).expected("CREATE on no schema and not on the database").evidence(sql);
        Some(match sqlx::query_scalar::<_, String>(sql).bind(&self.role).fetch_all(ctx.pool).await {
            Err(err) => result.error(describe_sql_error(&err)),
            Ok(found) if found.is_empty() => {
                result.actual("none").verdict(true, format!("`{}` cannot create objects (no DDL)", self.role))
            }
            Ok(found) => {
                let list = found.join(", ");
                result
                    .actual(format!("CREATE on {list}"))
                    .verdict(false, format!("`{}` can create objects in {list}", self.role))
            }
        })
    }

    async fn forbidden(&self, ctx: &CheckContext<'_>) -> Option<CheckResult> {
        if self.forbidden_schemas.is_empty() {
            return None;
        }
        let started = Instant::now();
        let sql = "SELECT n.nspname::text || CASE WHEN c.relname IS NULL THEN ' (USAGE)' ELSE '.' || c.relname::text END \
                   FROM pg_namespace n LEFT JOIN pg_class c ON c.relnamespace = n.oid AND c.relkind IN ('r', 'p', 'v', 'm') \
                   AND (has_table_privilege($1, c.oid, 'SELECT') OR has_table_privilege($1, c.oid, 'INSERT') OR has_table_privilege($1, c.oid, 'UPDATE') OR has_table_privilege($1, c.oid, 'DELETE')) \
                   WHERE n.nspname = ANY($2) AND (c.relname IS NOT NULL OR has_schema_privilege($1, n.oid, 'USAGE')) ORDER BY 1";
        let result = self
            .result("other schemas", started)
            .expected(format!("no access to {}", self.forbidden_schemas.join(", ")))
            .evidence(bind_evidence(sql, &[&self.role, &format!("{{{}}}", self.forbidden_schemas.join(","))]));
        Some(
            match sqlx::query_scalar::<_, String>(sql)
                .bind(&self.role)
                .bind(&self.forbidden_schemas)
                .fetch_all(ctx.pool)
                .await
            {
                Err(err) => result.error(describe_sql_error(&err)),
                Ok(found) if found.is_empty() => result
                    .actual("no access")
                    .verdict(true, format!("`{}` cannot reach {}", self.role, self.forbidden_schemas.join(", "))),
                Ok(found) => {
                    let list = found.join(", ");
                    result
                        .actual(format!("access to {list}"))
                        .verdict(false, format!("`{}` reaches into {list}", self.role))
                }
            },
        )
    }

    async fn server_files(&self, ctx: &CheckContext<'_>) -> Option<CheckResult> {
        let started = Instant::now();
        let sql = "SELECT r FROM unnest($2::text[]) AS r WHERE pg_has_role($1, r, 'MEMBER') ORDER BY 1";
        let result = self
            .result("server access", started)
            .expected(format!("member of none of {}", DANGEROUS_ROLES.join(", ")))
            .evidence(bind_evidence(sql, &[&self.role, &format!("{{{}}}", DANGEROUS_ROLES.join(","))]));
        Some(
            match sqlx::query_scalar::<_, String>(sql)
                .bind(&self.role)
                .bind(DANGEROUS_ROLES.map(String::from).to_vec())
                .fetch_all(ctx.pool)
                .await
            {
                Err(err) => result.error(describe_sql_error(&err)),
                Ok(found) if found.is_empty() => result
                    .actual("none")
                    .verdict(true, format!("`{}` cannot read or write server files or all data", self.role)),
                Ok(found) => {
                    let list = found.join(", ");
                    result
                        .actual(format!("member of {list}"))
                        .verdict(false, format!("`{}` is a member of {list}", self.role))
                }
            },
        )
    }
}

/// A long list of needs, summarized for the expected column.
fn summarize(needs: &[String]) -> String {
    if needs.len() <= 6 { needs.join(", ") } else { format!("{}, and {} more", needs[..5].join(", "), needs.len() - 5) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::Verdict;

    #[test]
    fn a_role_without_elevated_attributes_passes_and_one_with_them_fails_naming_each() {
        let spec =
            Spec { role: "plur_app".into(), connect: true, usage: vec![], tables: vec![], forbidden_schemas: vec![] };
        let now = Instant::now();
        let clean = spec.attributes((false, false, false, false, false), now).unwrap();
        assert_eq!(clean.verdict, Verdict::Pass, "{clean:?}");
        let elevated = spec.attributes((true, false, false, true, false), now).unwrap();
        assert_eq!(elevated.verdict, Verdict::Fail);
        assert_eq!(elevated.actual, "SUPERUSER, BYPASSRLS");
        assert!(elevated.message.contains("`plur_app` has SUPERUSER, BYPASSRLS"), "{}", elevated.message);
    }
}
