//! Each migration, not only the newest: the journal records every migration of the code's
//! folders and no other (`<journal>: every migration`), and still records every migration the
//! scenario's baseline recorded (`<journal>: every migration of the baseline`). A journal with
//! a hole has the right newest entry, and its runner applies the missing migration again at the
//! next deploy.

use std::time::Instant;

use super::{CheckContext, CheckResult, Found, KIND, Kind, Spec};
use crate::journal::Records;
use crate::names;
use crate::outcome::CheckResultBuilder;

impl Spec {
    /// Every migration of the code's folder is in the journal, and the journal holds none the
    /// code lacks.
    pub(super) async fn every(&self, ctx: &CheckContext<'_>, history: &[String], query: &str) -> CheckResult {
        let table = &self.journal.table;
        let result = CheckResult::build(KIND, format!("{}: every migration", self.label()), Instant::now())
            .expected(format!("each of the code's {} migrations recorded, and no other", history.len()))
            .evidence(query.to_owned());
        let recorded = match self.recorded(ctx, query).await {
            Ok(recorded) => recorded,
            Err(err) => return self.unread(ctx, result, err).await,
        };
        let (missing, extra) = holes(self.records, history, &recorded);
        let actual = format!("{} recorded, {} missing, {} not the code's", recorded.len(), missing.len(), extra.len());
        let message = match (missing.is_empty(), extra.is_empty()) {
            (true, true) => format!("`{table}` records each of the code's {} migrations, and no other", history.len()),
            (false, _) => format!(
                "`{table}` lacks {} of the code's migrations: {}{} (the runner applies them again at the next deploy, over a database that may hold them)",
                missing.len(),
                listed(&missing),
                if extra.is_empty() {
                    String::new()
                } else {
                    format!("; and records {} the code does not have: {}", migrations(extra.len()), listed(&extra))
                }
            ),
            (true, false) => format!(
                "`{table}` records {} the code does not have: {} (another branch's, or the code is older than the database)",
                migrations(extra.len()),
                listed(&extra)
            ),
        };
        let found =
            if missing.is_empty() && extra.is_empty() { Found::EveryMigration } else { Found::MissingMigrations };
        result.actual(actual).found(found, message)
    }

    /// Every migration the baseline recorded of this journal is still in it; newer ones pass
    /// (a release added them).
    pub(super) async fn kept(&self, ctx: &CheckContext<'_>, before: &[String], query: &str) -> CheckResult {
        let table = &self.journal.table;
        let result =
            CheckResult::build(KIND, format!("{}: every migration of the baseline", self.label()), Instant::now())
                .expected(format!("each of the {} migrations the baseline recorded", before.len()))
                .evidence(query.to_owned());
        let recorded = match self.recorded(ctx, query).await {
            Ok(recorded) => recorded,
            Err(err) => return self.unread(ctx, result, err).await,
        };
        let missing: Vec<&str> = before.iter().filter(|b| !recorded.contains(b)).map(String::as_str).collect();
        let newer = recorded.iter().filter(|r| !before.contains(r)).count();
        let since = match newer {
            0 => String::new(),
            n => format!(", and {} since", migrations(n)),
        };
        let actual = format!("{} recorded, {} of the baseline's missing", recorded.len(), missing.len());
        let message = if missing.is_empty() {
            format!("`{table}` records each of the {} migrations the baseline recorded{since}", before.len())
        } else {
            format!(
                "`{table}` lacks {} of the {} migrations the baseline recorded: {} (the runner applies them again at the next deploy, over a database that may hold them)",
                missing.len(),
                before.len(),
                listed(&missing)
            )
        };
        result
            .actual(actual)
            .found(if missing.is_empty() { Found::EveryMigration } else { Found::MissingMigrations }, message)
    }

    /// Every migration the journal records, oldest first.
    async fn recorded(&self, ctx: &CheckContext<'_>, query: &str) -> Result<Vec<String>, sqlx::Error> {
        let rows = sqlx::query_scalar::<_, Option<String>>(query).fetch_all(ctx.pool).await?;
        Ok(rows.into_iter().flatten().collect())
    }

    /// The result of a journal that could not be read.
    async fn unread(&self, ctx: &CheckContext<'_>, result: CheckResultBuilder, err: sqlx::Error) -> CheckResult {
        let why = names::describe_error(ctx.pool, &err).await;
        result
            .found(Found::CouldNotRead, format!("could not read the migration journal `{}`: {why}", self.journal.table))
    }
}

/// The code's migrations (`history`) the journal's `recorded` lacks, and the recorded ones the
/// code does not have, each in its own order.
fn holes<'a>(records: Records, history: &'a [String], recorded: &'a [String]) -> (Vec<&'a str>, Vec<&'a str>) {
    let same = |r: &str, h: &str| crate::journal::standing(records, r, h) == crate::journal::Standing::Same;
    let missing = history.iter().filter(|h| !recorded.iter().any(|r| same(r, h))).map(String::as_str).collect();
    let extra = recorded.iter().filter(|r| !history.iter().any(|h| same(r, h))).map(String::as_str).collect();
    (missing, extra)
}

/// `1 migration`, `2 migrations`.
fn migrations(n: usize) -> String {
    format!("{n} migration{}", if n == 1 { "" } else { "s" })
}

/// Up to ten names, and how many more.
fn listed(names: &[&str]) -> String {
    let shown = names.iter().take(10).copied().collect::<Vec<_>>().join(", ");
    match names.len() {
        n if n > 10 => format!("{shown} and {} more", n - 10),
        _ => shown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hole_in_the_journal_and_a_migration_the_code_lacks_are_named() {
        let history: Vec<String> = ["20230101000000_users.rb", "20230201000000_orders.rb", "20230301000000_refunds.rb"]
            .map(String::from)
            .to_vec();
        let recorded: Vec<String> = ["20230101000000", "20230301000000", "20230215000000"].map(String::from).to_vec();
        let (missing, extra) = holes(Records::Number, &history, &recorded);
        assert_eq!((missing, extra), (vec!["20230201000000_orders.rb"], vec!["20230215000000"]));
        let whole: Vec<String> = ["20230101000000", "20230201000000", "20230301000000"].map(String::from).to_vec();
        assert_eq!(holes(Records::Number, &history, &whole), (vec![], vec![]));
        let many: Vec<&str> = (0..12).map(|_| "x").collect();
        assert!(listed(&many).ends_with("x and 2 more"));
    }
}
