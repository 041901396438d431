//! Names as the application resolves them. A scenario that writes `orders` (a `row_counts`
//! table) or a preset that reads `schema_migrations` (as its runner writes it, unqualified) means
//! what the application's sessions find under that name: the first match along their
//! `search_path`, which is `"$user", public` unless the role's or the database's settings say
//! otherwise. A backup can put a table in a schema named after the application's role (or set the
//! role's `search_path`) so that pgdrill's `public.orders` and the application's `orders` are two
//! tables. So before the checks run, each unqualified name is resolved with `to_regclass` in a
//! session each application role opened itself ([`super::Logins`]); a check that reads another
//! object than one of those sessions finds fails naming both.
//!
//! Where the scenario does not name the application's role, any login role of the backup may be
//! it: each is resolved as its login would be ([`Resolutions::by_settings`]), and a name that any
//! of them resolves elsewhere fails until the scenario names the role.

use std::collections::BTreeMap;

use super::Logins;
use crate::pg::{QualifiedName, quote_ident, quote_literal};

/// The `search_path` each login role of the backup gets at login, other than the drill's own:
/// its role-in-database setting, else its role setting, else the database's, else the server's
/// (its configuration file's, else PostgreSQL's default).
const LOGIN_SEARCH_PATHS: &str = "WITH s AS (\
     SELECT d.setdatabase, d.setrole, pg_catalog.substr(c, 13) AS path \
     FROM pg_catalog.pg_db_role_setting d, pg_catalog.unnest(d.setconfig) AS c \
     WHERE c OPERATOR(pg_catalog.~~) 'search\\_path=%' AND d.setdatabase OPERATOR(pg_catalog.=) ANY (ARRAY[0::pg_catalog.oid, \
       (SELECT oid FROM pg_catalog.pg_database WHERE datname OPERATOR(pg_catalog.=) pg_catalog.current_database())])) \
     SELECT r.rolname::pg_catalog.text, COALESCE(\
       (SELECT path FROM s WHERE s.setrole OPERATOR(pg_catalog.=) r.oid AND s.setdatabase OPERATOR(pg_catalog.<>) 0), \
       (SELECT path FROM s WHERE s.setrole OPERATOR(pg_catalog.=) r.oid AND s.setdatabase OPERATOR(pg_catalog.=) 0), \
       (SELECT path FROM s WHERE s.setrole OPERATOR(pg_catalog.=) 0 AND s.setdatabase OPERATOR(pg_catalog.<>) 0), \
       (SELECT f.setting FROM pg_catalog.pg_file_settings f WHERE f.name OPERATOR(pg_catalog.=) 'search_path' AND f.applied \
          ORDER BY f.seqno DESC LIMIT 1), \
       (SELECT boot_val FROM pg_catalog.pg_settings WHERE name OPERATOR(pg_catalog.=) 'search_path')) \
     FROM pg_catalog.pg_roles r WHERE r.rolcanlogin AND r.rolname OPERATOR(pg_catalog.<>) CURRENT_USER \
     ORDER BY r.rolname";

/// How many login roles [`Resolutions::by_settings`] resolves names for; past that, the rest
/// are named as not resolved.
const LOGIN_ROLES_RESOLVED: usize = 200;

/// What one role's session found under a name (`None`: nothing), or why it could not look.
type Found = (String, Result<Option<QualifiedName>, String>);

/// How each application role's own session resolves each name.
#[derive(Debug, Clone, Default)]
pub(crate) struct Resolutions {
    /// By the name as written (`orders`): each role's [`Found`].
    found: BTreeMap<String, Vec<Found>>,
    /// Whether the backup's login roles were added because the scenario names no application
    /// role ([`Resolutions::add_login_roles`]).
    login_roles: bool,
}

impl Resolutions {
    /// Resolves `names` (unqualified) in a session of each of `roles`.
    pub(crate) async fn resolve(logins: &Logins<'_>, roles: &[String], names: &[String]) -> Resolutions {
        let mut found: BTreeMap<String, Vec<Found>> = BTreeMap::new();
        if names.is_empty() {
            return Resolutions { found, login_roles: false };
        }
        for role in roles {
            // With `[login] via` the application reaches each role from its login; else a role that
            // cannot log in is not how it resolves names.
            let opened =
                if logins.spec.via.is_some() { logins.open(role).await } else { logins.open_as(role, false).await };
            let session = match opened {
                Ok(session) => session,
                Err(e) => {
                    // A role that cannot log in (NOLOGIN, its password unknown) resolves nothing
                    // for the application; a probe that needs it says why.
                    let why = crate::error::error_chain(&e);
                    for name in names {
                        found.entry(name.clone()).or_default().push((role.clone(), Err(why.clone())));
                    }
                    continue;
                }
            };
            for name in names {
                let sql = format!(
                    "SELECT n.nspname::pg_catalog.text, c.relname::pg_catalog.text FROM pg_catalog.pg_class c \
                     JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace \
                     WHERE c.oid OPERATOR(pg_catalog.=) pg_catalog.to_regclass({})",
                    quote_literal(&crate::pg::quote_ident(name))
                );
                let resolved = match session.run(&sql).await {
                    Ok(answer) => Ok(answer.rows.first().and_then(|r| match (r.first(), r.get(1)) {
                        (Some(Some(schema)), Some(Some(table))) => Some(QualifiedName::new(schema, table)),
                        _ => None,
                    })),
                    Err(failure) => Err(failure.describe()),
                };
                found.entry(name.clone()).or_default().push((role.clone(), resolved));
            }
            session.close().await;
        }
        Resolutions { found, login_roles: false }
    }

    /// Adds how every login role of the backup that `self` has not resolved would resolve
    /// `names` at its login, read from the settings PostgreSQL applies then (the role's, the
    /// database's, the role-in-database `search_path`), in pgdrill's session switched to the role
    /// in a transaction that is rolled back: what a role's session finds also depends on the
    /// schemas it may use and on `"$user"`, which the switch gives. For a scenario that does not
    /// name the application's role.
    pub(crate) async fn add_login_roles(&mut self, pool: &sqlx::PgPool, names: &[String]) {
        if names.is_empty() {
            return;
        }
        self.login_roles = true;
        let roles: Vec<(String, String)> = match sqlx::query_as(LOGIN_SEARCH_PATHS).fetch_all(pool).await {
            Ok(roles) => roles,
            Err(e) => {
                let why = format!("its login roles could not be listed: {}", crate::pg::describe_sql_error(&e));
                return self.add("the backup's login roles", names, &Err(why));
            }
        };
        let already: Vec<String> = self.found.values().flatten().map(|(role, _)| role.clone()).collect();
        for (index, (role, path)) in roles.into_iter().filter(|(role, _)| !already.contains(role)).enumerate() {
            if index == LOGIN_ROLES_RESOLVED {
                let why = format!("only the first {LOGIN_ROLES_RESOLVED} login roles are resolved");
                return self.add("the backup's other login roles", names, &Err(why));
            }
            match resolve_as(pool, &role, &path, names).await {
                Ok(found) => {
                    for (name, resolved) in names.iter().zip(found) {
                        self.found.entry(name.clone()).or_default().push((role.clone(), Ok(resolved)));
                    }
                }
                Err(e) => self.add(&role, names, &Err(crate::pg::describe_sql_error(&e))),
            }
        }
    }

    fn add(&mut self, role: &str, names: &[String], found: &Result<Option<QualifiedName>, String>) {
        for name in names {
            self.found.entry(name.clone()).or_default().push((role.to_owned(), found.clone()));
        }
    }

    /// Why reading `read` for the name `written` is not reading what the application reads: a
    /// role's session resolves `written` to another object. `None` when every session that
    /// found something found `read`.
    pub(crate) fn elsewhere(&self, written: &str, read: &QualifiedName) -> Option<String> {
        let others: Vec<String> = self
            .found
            .get(written)?
            .iter()
            .filter_map(|(role, found)| match found {
                Ok(Some(other)) if other != read => Some(format!("`{role}`'s own session resolves it to `{other}`")),
                _ => None,
            })
            .collect();
        let or_name_the_role = if self.login_roles {
            ", or name the application's role in `[login] role`: no role is named, so every login role of the backup may be it"
        } else {
            ""
        };
        (!others.is_empty()).then(|| {
            format!(
                "`{written}` is not `{read}` for the application: {} (its `search_path`: a schema named after the role, `\"$user\"`, or the role's or database's setting), and the check read `{read}` (hint: write the name with its schema{or_name_the_role})",
                others.join("; ")
            )
        })
    }
}

/// What `role` finds under each of `names` with `search_path` set to `path`, in pgdrill's
/// session switched to it, in a transaction that is rolled back.
async fn resolve_as(
    pool: &sqlx::PgPool,
    role: &str,
    path: &str,
    names: &[String],
) -> Result<Vec<Option<QualifiedName>>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query(&format!("SET LOCAL ROLE {}", quote_ident(role))).execute(&mut *tx).await?;
    sqlx::query("SELECT pg_catalog.set_config('search_path', $1, true)").bind(path).execute(&mut *tx).await?;
    let quoted: Vec<String> = names.iter().map(|n| quote_ident(n)).collect();
    let rows: Vec<(Option<String>, Option<String>)> = sqlx::query_as(
        "SELECT n.nspname::pg_catalog.text, c.relname::pg_catalog.text \
         FROM pg_catalog.unnest($1::pg_catalog.text[]) WITH ORDINALITY AS w(name, i) \
         LEFT JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) pg_catalog.to_regclass(w.name) \
         LEFT JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace ORDER BY w.i",
    )
    .bind(&quoted)
    .fetch_all(&mut *tx)
    .await?;
    tx.rollback().await?;
    Ok(rows
        .into_iter()
        .map(|row| match row {
            (Some(schema), Some(table)) => Some(QualifiedName::new(&schema, &table)),
            _ => None,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_another_session_resolves_elsewhere_is_named_with_both_objects() {
        let mut found = BTreeMap::new();
        found.insert(
            "orders".to_owned(),
            vec![
                ("app".to_owned(), Ok(Some(QualifiedName::new("app", "orders")))),
                ("reports".to_owned(), Ok(Some(QualifiedName::new("public", "orders")))),
                ("gone".to_owned(), Err("cannot log in".to_owned())),
            ],
        );
        let resolutions = Resolutions { found, login_roles: false };
        let public = QualifiedName::new("public", "orders");
        let message = resolutions.elsewhere("orders", &public).expect("app reads another table");
        assert!(
            message.starts_with(
                "`orders` is not `public.orders` for the application: `app`'s own session resolves it to `app.orders`"
            ),
            "{message}"
        );
        assert_eq!(
            resolutions.elsewhere("orders", &QualifiedName::new("app", "orders")).map(|m| m.contains("`reports`")),
            Some(true)
        );
        assert_eq!(resolutions.elsewhere("customers", &public), None);
    }
}
