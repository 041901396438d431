//! Settings the policies compare with a column only where they narrow, beside the tenant's
//! comparison ([`crate::check::loophole::narrowing`]), that the scenario does not set: qs-pro's
//! `app.mid` and `app.user_id` beside `app.tenant_id`. The application sets them; any value of
//! theirs hides rows and never shows more, so the reads need one that lets tenant A's rows
//! through for the tenant's comparison to be proven. It is taken from a row tenant A holds, else
//! made up of the column's type (as the tenants are) and held by the probe rows, and set in the
//! role's session with the scenario's settings. The evidence says which. Before the reads,
//! tenant A's rows are read for one that holds every such value ([`unheld`]): the comparisons are
//! then true on it by what it holds, not by a guess.

use sqlx::PgConnection;

use super::{Doors, FailClosed, Prepared};
use crate::check::Settings;
use crate::check::probe::{self, compared};
use crate::pg::{quote_ident, quote_literal};

/// The scenario's settings, with a value for each setting the policies compare with a column
/// only where it narrows and the scenario does not set (see the module).
pub(super) async fn settings(
    conn: &mut PgConnection,
    table: &str,
    fc: &FailClosed,
    prepared: &Prepared,
    doors: &Doors,
    ran: &mut Vec<String>,
) -> sqlx::Result<Result<Settings, String>> {
    let mut settings = fc.settings.clone();
    let given = |name: &str| fc.settings.0.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.clone());
    let mut wanted: Vec<(&probe::Column, String)> = Vec::new();
    for (column, setting) in compared::pairs(&doors.policies) {
        let narrows = doors.narrowing.iter().any(|n| n.eq_ignore_ascii_case(&setting));
        let Some(c) = prepared.columns.iter().find(|c| c.name.eq_ignore_ascii_case(&column)) else { continue };
        if !narrows || wanted.iter().any(|(_, s)| *s == setting) {
            continue;
        }
        match given(&setting) {
            // The probe rows hold it as the column's type prints it: the comparison is true on
            // them only when the scenario's value is printed so.
            Some(value) => match printed(conn, c, &value).await? {
                Some(p) if p == value => {}
                p => {
                    return Ok(Err(format!(
                        "the scenario's `{setting}` = '{value}' is not a value of `{}` as its type {} prints it{}: the policies compare them, so no row holds it and the reads would prove nothing of the tenant's comparison beside it",
                        c.name,
                        c.sql_type,
                        p.map(|p| format!(" ('{p}')")).unwrap_or_default()
                    )));
                }
            },
            None => wanted.push((c, setting)),
        }
    }
    if wanted.is_empty() {
        return Ok(Ok(settings));
    }
    let held = if prepared.a_rows { of_tenant_a(conn, table, prepared, &wanted, ran).await? } else { None };
    for (i, (column, setting)) in wanted.iter().enumerate() {
        let (value, whence) = match held.as_ref().and_then(|row| row[i].clone()) {
            Some(value) => (Some(value), "taken from a row of tenant A"),
            None => (made_up(conn, column).await?, "made up of its type for the probe rows"),
        };
        if let Some(value) = value {
            ran.push(format!(
                "-- `{setting}`, which the policies compare with `{}` only where it hides rows (beside the tenant's comparison), is not set by the scenario: '{value}', {whence}, as the application sets one",
                column.name
            ));
            settings.0.insert(setting.clone(), value);
        }
    }
    Ok(Ok(settings))
}

/// The values of `wanted`'s columns in one row of tenant A, as text.
async fn of_tenant_a(
    conn: &mut PgConnection,
    table: &str,
    prepared: &Prepared,
    wanted: &[(&probe::Column, String)],
    ran: &mut Vec<String>,
) -> sqlx::Result<Option<Vec<Option<String>>>> {
    let columns: Vec<String> =
        wanted.iter().map(|(c, _)| format!("{}::pg_catalog.text", quote_ident(&c.name))).collect();
    let sql = format!(
        "SELECT ARRAY[{}] FROM {table} WHERE {}::pg_catalog.text OPERATOR(pg_catalog.=) {} LIMIT 1",
        columns.join(", "),
        quote_ident(&prepared.tenant.name),
        quote_literal(&prepared.a)
    );
    ran.push(sql.clone());
    sqlx::query_scalar::<_, Vec<Option<String>>>(&sql).fetch_optional(&mut *conn).await
}

/// A value of `column`'s type, as the type prints it; `None` where pgdrill cannot make one up.
async fn made_up(conn: &mut PgConnection, column: &probe::Column) -> sqlx::Result<Option<String>> {
    let facts = probe::type_facts(conn, column).await?;
    let Some(literal) = probe::tenant_literal(&facts) else { return Ok(None) };
    printed(conn, column, &literal).await
}

/// `value` read as `column`'s type and printed; `None` where it is not a value of it. Read in a
/// transaction rolled back (the type's input function is the backup's to write).
async fn printed(conn: &mut PgConnection, column: &probe::Column, value: &str) -> sqlx::Result<Option<String>> {
    let sql = format!("SELECT ($1::pg_catalog.text)::{}::pg_catalog.text", column.sql_type);
    sqlx::query("BEGIN").execute(&mut *conn).await?;
    let read = sqlx::query_scalar::<_, String>(&sql).bind(value).fetch_one(&mut *conn).await;
    sqlx::query("ROLLBACK").execute(&mut *conn).await?;
    match read {
        Ok(value) => Ok(Some(value)),
        Err(sqlx::Error::Database(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Why no row of tenant A (`rows_a`, the predicate that picks them) holds the value of each
/// setting the policies compare with a column only where it narrows, if none does: the reads
/// would then prove nothing of the tenant's comparison beside them (a trigger that rewrote the
/// probe row's column, say).
pub(super) async fn unheld(
    conn: &mut PgConnection,
    table: &str,
    fc: &FailClosed,
    prepared: &Prepared,
    doors: &Doors,
    rows_a: &str,
    ran: &mut Vec<String>,
) -> sqlx::Result<Option<String>> {
    let mut tests = Vec::new();
    let mut said = Vec::new();
    for (column, setting) in compared::pairs(&doors.policies) {
        if !doors.narrowing.iter().any(|n| n.eq_ignore_ascii_case(&setting)) {
            continue;
        }
        let Some((_, value)) = fc.settings.0.iter().find(|(k, _)| k.eq_ignore_ascii_case(&setting)) else { continue };
        let Some(c) = prepared.columns.iter().find(|c| c.name.eq_ignore_ascii_case(&column)) else { continue };
        let test = format!("{}::pg_catalog.text OPERATOR(pg_catalog.=) {}", quote_ident(&c.name), quote_literal(value));
        if !tests.contains(&test) {
            tests.push(test);
            said.push(format!("`{}` = '{value}'", c.name));
        }
    }
    if tests.is_empty() {
        return Ok(None);
    }
    let sql = format!("SELECT EXISTS (SELECT 1 FROM {table} WHERE ({rows_a}) AND {})", tests.join(" AND "));
    ran.push(sql.clone());
    let held: bool = sqlx::query_scalar(&sql).fetch_one(&mut *conn).await?;
    Ok((!held).then(|| {
        format!(
            "no row of tenant A holds {}, the values the session sets for the comparisons beside the tenant's: the reads would prove nothing of it",
            said.join(", ")
        )
    }))
}
