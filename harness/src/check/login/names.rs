//! Names as the application resolves them. A scenario that writes `orders` (a `row_counts`
//! table) or a preset that reads `schema_migrations` (as its runner writes it, unqualified) means
//! what the application's sessions find under that name: the first match along their
//! `search_path`, which is `"$user", public` unless the role's or the database's settings say
//! otherwise. A backup can put a table in a schema named after the application's role (or set the
//! role's `search_path`) so that pgdrill's `public.orders` and the application's `orders` are two
//! tables. So before the checks run, each unqualified name is resolved with `to_regclass` in a
//! session each application role opened itself ([`super::Logins`]); a check that reads another
//! object than one of those sessions finds fails naming both.

use std::collections::BTreeMap;

use super::Logins;
use crate::pg::{QualifiedName, quote_literal};

/// What one role's session found under a name (`None`: nothing), or why it could not look.
type Found = (String, Result<Option<QualifiedName>, String>);

/// How each application role's own session resolves each name.
#[derive(Debug, Clone, Default)]
pub(crate) struct Resolutions {
    /// By the name as written (`orders`): each role's [`Found`].
    found: BTreeMap<String, Vec<Found>>,
}

impl Resolutions {
    /// Resolves `names` (unqualified) in a session of each of `roles`.
    pub(crate) async fn resolve(logins: &Logins<'_>, roles: &[String], names: &[String]) -> Resolutions {
        let mut found: BTreeMap<String, Vec<Found>> = BTreeMap::new();
        if names.is_empty() {
            return Resolutions { found };
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
        Resolutions { found }
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
        (!others.is_empty()).then(|| {
            format!(
                "`{written}` is not `{read}` for the application: {} (its `search_path`: a schema named after the role, `\"$user\"`, or the role's or database's setting), and the check read `{read}` (hint: write the name with its schema)",
                others.join("; ")
            )
        })
    }
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
        let resolutions = Resolutions { found };
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
