//! The two tenants fail-closed reads use: the scenario's, else two the table holds, else made up
//! for the tenant column's type.

use super::FailClosed;
use crate::check::bind_evidence;
use crate::check::probe::{self, Column, TypeFacts};
use crate::pg::quote_ident;

/// Two tenants the table holds rows of (none, one or two), as the column's type prints them.
pub(super) async fn held_tenants(
    conn: &mut sqlx::PgConnection,
    t: &str,
    tenant: &Column,
    ran: &mut Vec<String>,
) -> sqlx::Result<Vec<String>> {
    let column = quote_ident(&tenant.name);
    let first = format!("SELECT {column}::pg_catalog.text FROM {t} WHERE {column} IS NOT NULL LIMIT 1");
    ran.push(first.clone());
    let Some(a) = sqlx::query_scalar::<_, String>(&first).fetch_optional(&mut *conn).await? else {
        return Ok(Vec::new());
    };
    let second = format!(
        "SELECT {column}::pg_catalog.text FROM {t} WHERE {column} IS NOT NULL AND {column}::pg_catalog.text OPERATOR(pg_catalog.<>) $1 LIMIT 1"
    );
    ran.push(bind_evidence(&second, &[&a]));
    let b = sqlx::query_scalar::<_, String>(&second).bind(&a).fetch_optional(&mut *conn).await?;
    Ok(std::iter::once(a).chain(b).collect())
}

/// Whether the table holds a row of `value`.
pub(super) async fn held_any(
    conn: &mut sqlx::PgConnection,
    t: &str,
    tenant: &Column,
    value: &str,
) -> sqlx::Result<bool> {
    let column = quote_ident(&tenant.name);
    let sql = format!("SELECT EXISTS (SELECT 1 FROM {t} WHERE {column}::pg_catalog.text OPERATOR(pg_catalog.=) $1)");
    sqlx::query_scalar(&sql).bind(value).fetch_one(&mut *conn).await
}

/// No tenant value can be made up for the tenant column's type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("pgdrill cannot make up tenants for `{column}` of type {sql_type} (hint: give `value` and `other_value`)")]
pub(super) struct NoTenants {
    column: String,
    sql_type: String,
}

/// Two tenants' values for the tenant column: as the scenario wrote them, else two the table
/// holds (`held`), else made up for its type (then read as the column's type by [`prepare`]).
pub(super) fn tenant_values(
    column: &Column,
    facts: &TypeFacts,
    fc: &FailClosed,
    held: &[String],
) -> Result<(String, String), NoTenants> {
    let made_up = || {
        probe::tenant_literal(facts)
            .ok_or_else(|| NoTenants { column: column.name.clone(), sql_type: column.sql_type.clone() })
    };
    let mut spare = held.iter().filter(|h| Some(*h) != fc.value.as_ref() && Some(*h) != fc.other_value.as_ref());
    let a = match &fc.value {
        Some(v) => v.clone(),
        None => match spare.next() {
            Some(v) => v.clone(),
            None => made_up()?,
        },
    };
    let b = match &fc.other_value {
        Some(v) => v.clone(),
        None => match spare.next() {
            Some(v) => v.clone(),
            None => made_up()?,
        },
    };
    Ok((a, b))
}
