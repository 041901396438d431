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
//! it: each is resolved in a session it opened itself ([`Resolutions::add_login_roles`]), and a name that any
//! of them resolves elsewhere fails until the scenario names the role.

use std::collections::BTreeMap;

use super::Logins;
use crate::pg::{QualifiedName, quote_ident, quote_literal};

/// The login roles of the backup, other than the drill's own.
const LOGIN_ROLES: &str = "SELECT r.rolname::pg_catalog.text FROM pg_catalog.pg_roles r \
     WHERE r.rolcanlogin AND r.rolname OPERATOR(pg_catalog.<>) CURRENT_USER ORDER BY r.rolname";

/// How many login roles [`Resolutions::add_login_roles`] resolves names for; past that, the
/// rest are named as not resolved.
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
            for (name, resolved) in names.iter().zip(resolve_in(&session, names).await) {
                found.entry(name.clone()).or_default().push((role.clone(), resolved));
            }
            session.close().await;
        }
        Resolutions { found, login_roles: false }
    }

    /// Adds how every login role of the backup that `self` has not resolved resolves `names`,
    /// each in a session it opened itself as [`Resolutions::resolve`] does: what PostgreSQL
    /// applies at its login (the role's, the database's and the role-in-database settings, a
    /// login event trigger) and the schemas it may use decide what it finds. For a scenario that
    /// does not name the application's role. A role that cannot log in (a shared server's, whose
    /// password the scenario does not give) is recorded as not resolved.
    pub(crate) async fn add_login_roles(&mut self, logins: &Logins<'_>, pool: &sqlx::PgPool, names: &[String]) {
        if names.is_empty() {
            return;
        }
        self.login_roles = true;
        let roles: Vec<String> = match sqlx::query_scalar(LOGIN_ROLES).fetch_all(pool).await {
            Ok(roles) => roles,
            Err(e) => {
                let why = format!("its login roles could not be listed: {}", crate::pg::describe_sql_error(&e));
                return self.add("the backup's login roles", names, &Err(why));
            }
        };
        let already: Vec<String> = self.found.values().flatten().map(|(role, _)| role.clone()).collect();
        for (index, role) in roles.into_iter().filter(|role| !already.contains(role)).enumerate() {
            if index == LOGIN_ROLES_RESOLVED {
                let why = format!("only the first {LOGIN_ROLES_RESOLVED} login roles are resolved");
                return self.add("the backup's other login roles", names, &Err(why));
            }
            match logins.open_as(&role, false).await {
                Ok(session) => {
                    for (name, resolved) in names.iter().zip(resolve_in(&session, names).await) {
                        self.found.entry(name.clone()).or_default().push((role.clone(), resolved));
                    }
                    session.close().await;
                }
                Err(e) => self.add(&role, names, &Err(crate::error::error_chain(&e))),
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

/// What `session` finds under each of `names` (`to_regclass` of the name quoted), or why it
/// could not look.
async fn resolve_in(session: &super::AppSession, names: &[String]) -> Vec<Result<Option<QualifiedName>, String>> {
    let mut found = Vec::with_capacity(names.len());
    for name in names {
        let sql = format!(
            "SELECT n.nspname::pg_catalog.text, c.relname::pg_catalog.text FROM pg_catalog.pg_class c \
             JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace \
             WHERE c.oid OPERATOR(pg_catalog.=) pg_catalog.to_regclass({})",
            quote_literal(&quote_ident(name))
        );
        found.push(match session.run(&sql).await {
            Ok(answer) => Ok(answer.rows.first().and_then(|r| match (r.first(), r.get(1)) {
                (Some(Some(schema)), Some(Some(table))) => Some(QualifiedName::new(schema, table)),
                _ => None,
            })),
            Err(failure) => Err(failure.describe()),
        });
    }
    found
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
