//! Probe rows inserted by the role's own session, as the application inserts its rows: each
//! row's values made in pgdrill's session first, as literals (the role's session sees the table
//! through its own policies, and a copied row or a made-up value must not depend on them); then,
//! in the role's session, the scenario's settings and the row's tenant set, the INSERT, what it
//! wrote elsewhere (its own statistics), the commit; then the sequences it moved. When the role
//! cannot, nothing is left, and pgdrill's own session inserts them ([`super::insert`]).

use sqlx::PgConnection;

use super::{
    Committed, Elsewhere, Request, SEQUENCES_SQL, TREE_SQL, WRITTEN_ELSEWHERE_SQL, advanced, delete, judge_elsewhere,
    plan_row, voided,
};
use crate::check::login::{self, AppSession, Failure};
use crate::check::probe::{Column, Row};
use crate::pg::{describe_sql_error, quote_ident, quote_literal};

/// Why the role's own session did not insert the probe rows (pgdrill's own session does then).
#[derive(Debug, thiserror::Error)]
pub(super) enum NotByRole {
    /// No row can be planned, or the backup's code voided the rows: why, in words.
    #[error("{why}")]
    Unproven { why: String },
    /// A row's values could not be made as literals in pgdrill's session.
    #[error("its values cannot be made as they are")]
    Values {
        #[source]
        source: sqlx::Error,
    },
    /// A statement of the role's transaction failed.
    #[error("`{user}` cannot insert them itself ({failure})")]
    Refused { user: String, failure: Failure },
    /// The role's INSERT went through and left no row in the table.
    #[error("`{user}`'s INSERT left no row in `{table}`")]
    NoRow { user: String, table: String },
}

impl NotByRole {
    /// Why, as the evidence says it: the database's answer as [`describe_sql_error`] tells it.
    pub(super) fn said(&self) -> String {
        match self {
            NotByRole::Values { source } => format!("{self}: {}", describe_sql_error(source)),
            _ => self.to_string(),
        }
    }
}

/// Inserts and commits `request`'s rows in `writer` (see the module); `Ok(Err(why))` when it
/// cannot.
pub(super) async fn insert(
    conn: &mut PgConnection,
    writer: &AppSession,
    request: &Request<'_>,
    ran: &mut Vec<String>,
) -> sqlx::Result<Result<Committed, NotByRole>> {
    let tree: Vec<i64> = sqlx::query_scalar(TREE_SQL).bind(request.table.sql()).fetch_all(&mut *conn).await?;
    let sequences: Vec<(String, Option<String>)> =
        sqlx::query_as(SEQUENCES_SQL).bind(&tree).fetch_all(&mut *conn).await?;
    let tenants: Vec<Option<&str>> = match request.tenant {
        Some((_, values)) => values.iter().map(|v| Some(v.as_str())).collect(),
        None => vec![None],
    };
    let statements = match statements(conn, request, &tenants, ran).await? {
        Ok(statements) => statements,
        Err(why) => return Ok(Err(why)),
    };
    let user = &writer.identity().user;
    ran.push(format!("-- the probe rows, inserted by `{user}`'s own session as the application inserts rows"));
    let rows = match write(writer, request, &tenants, &statements, &tree, ran).await {
        Ok(Ok(rows)) => rows,
        Ok(Err(why)) => {
            let _ = writer.run("ROLLBACK").await;
            return Ok(Err(why));
        }
        Err(failure) => {
            let _ = writer.run("ROLLBACK").await;
            return Ok(Err(NotByRole::Refused { user: user.clone(), failure }));
        }
    };
    let committed = Committed { table: request.table.clone(), rows, by_role: true, parents: Vec::new() };
    let advanced = advanced(conn, &tree, &sequences).await?;
    if !advanced.is_empty() {
        delete(conn, &committed, ran).await.ok();
        return Ok(Err(NotByRole::Unproven { why: voided(request.table, &advanced.join("; ")) }));
    }
    Ok(Ok(committed))
}

/// Each tenant's INSERT with literal values, made in a transaction of pgdrill's session that is
/// rolled back; `Ok(Err(why))` when no row can be made so.
async fn statements(
    conn: &mut PgConnection,
    request: &Request<'_>,
    tenants: &[Option<&str>],
    ran: &mut Vec<String>,
) -> sqlx::Result<Result<Vec<String>, NotByRole>> {
    let t = request.table.sql();
    sqlx::query("BEGIN").execute(&mut *conn).await?;
    let row = plan_row(conn, request, ran).await?;
    let mut made = row.as_ref().map(|_| Vec::new()).map_err(|why| NotByRole::Unproven { why: why.clone() });
    if let (Ok(row), Ok(statements)) = (&row, &mut made) {
        for tenant in tenants {
            match literal_insert(conn, &t, row, request.columns, *tenant).await {
                Ok(statement) => statements.push(statement),
                Err(source @ sqlx::Error::Database(_)) => {
                    made = Err(NotByRole::Values { source });
                    break;
                }
                Err(e) => return Err(e),
            }
        }
    }
    sqlx::query("ROLLBACK").execute(&mut *conn).await?;
    Ok(made)
}

/// The role's transaction: each row's settings and INSERT, what it wrote elsewhere, the commit.
/// The rows (`tableoid`, `ctid`), or why they are not the probe's (the transaction is left for
/// the caller to roll back).
async fn write(
    writer: &AppSession,
    request: &Request<'_>,
    tenants: &[Option<&str>],
    statements: &[String],
    tree: &[i64],
    ran: &mut Vec<String>,
) -> Result<Result<Vec<(String, String)>, NotByRole>, Failure> {
    let user = &writer.identity().user;
    let mut rows = Vec::new();
    writer.run("BEGIN").await?;
    for (tenant, statement) in tenants.iter().zip(statements) {
        let mut sets: Vec<(&str, &str)> = request.settings.0.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
        if let (Some(setting), Some(value)) = (request.tenant_setting, tenant) {
            sets.push((setting, value));
        }
        for (name, value) in sets {
            let sql = login::set_local_sql(name, value);
            ran.push(sql.clone());
            writer.run(&sql).await?;
        }
        ran.push(statement.clone());
        let answer = writer.run(statement).await?;
        let first = answer.rows.first().cloned().unwrap_or_default();
        if let (Some(Some(oid)), Some(Some(ctid))) = (first.first(), first.get(1)) {
            rows.push((oid.clone(), ctid.clone()));
        }
    }
    let list: Vec<String> = tree.iter().map(i64::to_string).collect();
    let elsewhere_sql =
        WRITTEN_ELSEWHERE_SQL.replace("$1::pg_catalog.int8[]", &format!("'{{{}}}'::pg_catalog.int8[]", list.join(",")));
    let elsewhere = writer.run(&elsewhere_sql).await?;
    if rows.len() != tenants.len() {
        return Ok(Err(NotByRole::NoRow { user: user.clone(), table: request.table.to_string() }));
    }
    let int = |v: Option<&Option<String>>| v.and_then(|v| v.as_deref()).and_then(|v| v.parse().ok()).unwrap_or(0);
    let text = |v: Option<&Option<String>>| v.cloned().flatten().unwrap_or_default();
    let elsewhere: Vec<Elsewhere> = elsewhere
        .rows
        .iter()
        .map(|r| (text(r.first()), text(r.get(1)), int(r.get(2)), int(r.get(3)), int(r.get(4))))
        .collect();
    if let Some(why) = judge_elsewhere(request, &elsewhere, ran) {
        return Ok(Err(NotByRole::Unproven { why }));
    }
    ran.push("COMMIT".into());
    writer.run("COMMIT").await?;
    Ok(Ok(rows))
}

/// The INSERT of one probe row with every value a literal, made in pgdrill's session (`conn`,
/// in a transaction).
async fn literal_insert(
    conn: &mut PgConnection,
    t: &str,
    row: &Row,
    columns: &[Column],
    tenant: Option<&str>,
) -> sqlx::Result<String> {
    let exprs: Vec<String> = row
        .cells
        .iter()
        .map(|c| match tenant {
            Some(value) => c.expr.replace("{tenant}", &quote_literal(value)),
            None => c.expr.clone(),
        })
        .map(|e| format!("({e})::pg_catalog.text"))
        .collect();
    let returning = "RETURNING tableoid::pg_catalog.oid::pg_catalog.text, ctid::pg_catalog.text";
    if exprs.is_empty() {
        return Ok(format!("INSERT INTO {t} DEFAULT VALUES {returning}"));
    }
    let source = if row.copy { format!(" FROM {t} AS src LIMIT 1") } else { String::new() };
    let values: Vec<Option<String>> =
        sqlx::query(&format!("SELECT {}{source}", exprs.join(", "))).fetch_one(&mut *conn).await.map(|r| {
            use sqlx::Row as _;
            (0..exprs.len()).map(|i| r.try_get::<Option<String>, _>(i).ok().flatten()).collect()
        })?;
    let names: Vec<String> = row.cells.iter().map(|c| quote_ident(&c.column)).collect();
    let literals: Vec<String> = row
        .cells
        .iter()
        .zip(values)
        .map(|(cell, value)| match value {
            Some(v) => {
                let ty =
                    columns.iter().find(|c| c.name == cell.column).map_or("pg_catalog.text", |c| c.sql_type.as_str());
                format!("{}::{ty}", quote_literal(&v))
            }
            None => "NULL".to_owned(),
        })
        .collect();
    Ok(format!("INSERT INTO {t} ({}) VALUES ({}) {returning}", names.join(", "), literals.join(", ")))
}
