//! Parent rows: what a probe row's foreign keys need. A probe row is one the application could
//! write, so its foreign keys are enforced; on a young deployment the tables they reference
//! may hold no row yet (no tenant signed up, no customer), and a probe row made of values alone
//! would break them, proving nothing either way. So before the probe rows, pgdrill inserts and
//! commits, in its own session, a row in each table a required (NOT NULL, no default) foreign
//! key of one column references that holds no row; for the tenant column a row of each tenant
//! the referenced table lacks (its key the tenant), and for a column given a value (by the
//! scenario's `probe`, or the setting a policy compares it with) a row of that key when the
//! referenced table lacks one. Each such row is made as a probe row
//! is ([`super::plan_row`], [`super::insert_one`]: its own foreign keys' parents first, a CHECK
//! of one column tried with its values, no constraint set aside). What the backup's code writes
//! elsewhere meanwhile is judged as for the probe rows. They are removed after the probe rows.

use sqlx::PgConnection;

use super::{Committed, Request, TREE_SQL, WRITTEN_ELSEWHERE_SQL, insert_one, judge_elsewhere, plan_row};
use crate::check::probe::{Column, Given, Hint, columns};
use crate::pg::{QualifiedName, quote_ident_if_needed};

/// How deep parents of parents are made (a table's parent's parent's ...).
const MAX_DEPTH: usize = 4;

/// A row a foreign key of the probed table (or of a parent) needs in `table`: with `key` set to
/// `value` (the tenant), or any row.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Need {
    table: String,
    key: String,
    value: Option<String>,
    /// The column whose foreign key needs it, as a message names it (`public.orders.tenant_id`).
    by: String,
}

/// Inserts and commits the parent rows `request`'s probe rows need (see the module), on `conn`
/// outside any transaction; `Ok(Err(why))` when one cannot be made or the backup's code voided
/// it (nothing is left behind then).
pub(super) async fn insert(
    conn: &mut PgConnection,
    request: &Request<'_>,
    ran: &mut Vec<String>,
) -> sqlx::Result<Result<Vec<Committed>, String>> {
    let needs = needs(conn, &request.table.to_string(), request.columns, request.tenant, request.given).await?;
    if needs.is_empty() {
        return Ok(Ok(Vec::new()));
    }
    ran.push("BEGIN -- parent rows the probe rows' foreign keys need, committed, removed after the probe rows".into());
    sqlx::query("BEGIN").execute(&mut *conn).await?;
    let mut made: Vec<Committed> = Vec::new();
    for need in needs {
        if let Err(why) = make(conn, request, &need, 0, &mut made, ran).await? {
            ran.push("ROLLBACK".into());
            sqlx::query("ROLLBACK").execute(&mut *conn).await?;
            return Ok(Err(why));
        }
    }
    let mut own: Vec<i64> = Vec::new();
    for parent in &made {
        own.extend(sqlx::query_scalar::<_, i64>(TREE_SQL).bind(parent.table.sql()).fetch_all(&mut *conn).await?);
    }
    let elsewhere = sqlx::query_as(WRITTEN_ELSEWHERE_SQL).bind(&own).fetch_all(&mut *conn).await?;
    if let Some(why) = judge_elsewhere(request, &elsewhere, ran) {
        ran.push("ROLLBACK".into());
        sqlx::query("ROLLBACK").execute(&mut *conn).await?;
        return Ok(Err(why));
    }
    ran.push("COMMIT".into());
    sqlx::query("COMMIT").execute(&mut *conn).await?;
    Ok(Ok(made))
}

/// The rows `columns` (of table `table`) need: see the module. `tenant`: the tenant column and
/// its values.
async fn needs(
    conn: &mut PgConnection,
    table: &str,
    columns: &[Column],
    tenant: Option<(&str, &[String])>,
    given: &Given,
) -> sqlx::Result<Vec<Need>> {
    let mut needs = Vec::new();
    for column in columns {
        let Some((parent, key)) = &column.references else { continue };
        let by = format!("{table}.{}", quote_ident_if_needed(&column.name));
        // The tenant's values, or the value given for the column: the parent must hold it.
        let given_value = given.0.iter().find(|g| g.column == column.name).map(|g| std::slice::from_ref(&g.value));
        match tenant.filter(|(name, _)| *name == column.name).map(|(_, values)| values).or(given_value) {
            Some(values) => {
                for value in values {
                    let sql = format!(
                        "SELECT EXISTS (SELECT 1 FROM {parent} WHERE {key}::pg_catalog.text OPERATOR(pg_catalog.=) $1)"
                    );
                    if !sqlx::query_scalar::<_, bool>(&sql).bind(value).fetch_one(&mut *conn).await? {
                        let value = Some(value.clone());
                        needs.push(Need { table: parent.clone(), key: key.clone(), value, by: by.clone() });
                    }
                }
            }
            None if column.not_null && !column.has_default => {
                let sql = format!("SELECT EXISTS (SELECT 1 FROM {parent})");
                if !sqlx::query_scalar::<_, bool>(&sql).fetch_one(&mut *conn).await? {
                    needs.push(Need { table: parent.clone(), key: key.clone(), value: None, by });
                }
            }
            None => {}
        }
    }
    Ok(needs)
}

/// Makes the row `need` asks for, its own parents first, and pushes it on `made`.
async fn make(
    conn: &mut PgConnection,
    request: &Request<'_>,
    need: &Need,
    depth: usize,
    made: &mut Vec<Committed>,
    ran: &mut Vec<String>,
) -> sqlx::Result<Result<(), String>> {
    let cannot = |why: &str| {
        format!(
            "no probe row can be made for `{}`: its foreign key {} needs a row in {}, which holds none, and {why}",
            request.table, need.by, need.table
        )
    };
    if depth == MAX_DEPTH {
        return Ok(Err(cannot(&format!("its parents run deeper than {MAX_DEPTH} tables"))));
    }
    let Ok(table) = QualifiedName::parse(&need.table) else {
        return Ok(Err(cannot("its name cannot be read")));
    };
    if made.iter().any(|m| m.table == table) && need.value.is_none() {
        return Ok(Ok(()));
    }
    // pgdrill's own reading, with its own `search_path` (the last parent's INSERT set the
    // application's for the transaction).
    sqlx::query("SELECT pg_catalog.set_config('search_path', 'pg_catalog, pg_temp', true)").execute(&mut *conn).await?;
    let parent_columns = columns(conn, &table.sql(), ran).await?;
    let given = request.probe.for_table(&table);
    // A tenant's row: its key is the tenant, as the probed table's tenant column is.
    let key = crate::pg::fold_ident(&need.key);
    let value: Vec<String> = need.value.iter().cloned().collect();
    let tenant = need.value.as_ref().map(|_| (key.as_str(), value.as_slice()));
    for grand in needs(conn, &table.to_string(), &parent_columns, tenant, &given).await? {
        if grand.table == need.table {
            return Ok(Err(cannot("its own foreign key to itself is required (a first row needs itself)")));
        }
        if let Err(why) = Box::pin(make(conn, request, &grand, depth + 1, made, ran)).await? {
            return Ok(Err(why));
        }
    }
    let parent = Request {
        table: &table,
        columns: &parent_columns,
        tenant,
        tenant_setting: None,
        settings: request.settings,
        given: &given,
        hint: Hint { within: request.hint.within, per_table: true },
        probe: request.probe,
        writer: None,
        decides: request.decides,
    };
    let mut row = match plan_row(conn, &parent, ran).await? {
        Ok(row) => row,
        Err(why) => return Ok(Err(cannot(&why))),
    };
    let mut rows = Vec::new();
    if let Err(why) = insert_one(conn, &parent, &mut row, need.value.as_deref(), &mut rows, ran).await? {
        return Ok(Err(cannot(&why)));
    }
    made.push(Committed { table, rows, by_role: false, parents: Vec::new() });
    Ok(Ok(()))
}
