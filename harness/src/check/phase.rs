//! The checks phase's body: every configured check on the restored database, side by side on a
//! pool, reported in the scenario's order; and its summary.

use futures_util::StreamExt;

use crate::dump::DumpSummary;
use crate::provision::{Target, TargetError};
use crate::secret::Redactor;

use super::{CheckContext, CheckResult, CheckSpec, Verdict};

/// Checks that run side by side on the restored database.
const CHECKS_AT_ONCE: usize = 3;

/// Why the checks phase failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ChecksError {
    /// The restored database did not take a connection.
    #[error(transparent)]
    Target(#[from] TargetError),
    /// Some checks failed or could not run (and the target may have gone away).
    #[error("{}{failed} of {total} checks did not pass", gone.as_ref().map(|g| format!("{g}; ")).unwrap_or_default())]
    NotPassed { failed: usize, total: usize, gone: Option<String> },
}

/// Runs `checks` on `database`, handing each result to `on_result` and telling `on_done` after
/// each check; returns the phase's summary, or why it failed.
/// What the checks read: the restored database, what the dump held, and what the scenario's
/// past drills recorded.
pub(crate) struct Inputs<'a> {
    pub target: &'a Target,
    pub database: &'a str,
    pub dump: &'a DumpSummary,
    pub redactor: &'a Redactor,
    pub trails: &'a crate::fingerprint::Trails,
    pub login: &'a super::login::Spec,
}

pub(crate) async fn run_all(
    checks: &[CheckSpec],
    inputs: Inputs<'_>,
    on_result: &(dyn Fn(CheckResult) + Send + Sync),
    on_done: &(dyn Fn() + Send + Sync),
) -> Result<String, ChecksError> {
    let Inputs { target, database, dump, redactor, trails, login } = inputs;
    let pool = target.pool(database, CHECKS_AT_ONCE as u32 + 1).await?;
    let logins = super::login::Logins { target, database, redactor, spec: login };
    let unqualified: Vec<String> = unique(checks.iter().flat_map(CheckSpec::unqualified));
    let roles = login.application_roles(checks.iter().flat_map(CheckSpec::logins));
    let mut names = super::login::names::Resolutions::resolve(&logins, &roles, &unqualified).await;
    if login.role.is_none() {
        names.add_login_roles(&logins, &pool, &unqualified).await;
    }
    let ctx = CheckContext { pool: &pool, dump, target, database, redactor, trails, login, names: &names };
    let (mut passed, mut total, mut errors) = (0, 0, 0);
    // Each check needs at most two connections at once, so CHECKS_AT_ONCE below the pool's size
    // always progresses.
    // Those that log in as a role come after those that only read, and those that stop the
    // server last (the scenario sorted them so); both run one by one.
    let reading = checks.iter().take_while(|c| !c.offline() && c.logins().is_empty());
    let running = futures_util::stream::iter(reading).map(|spec| run_one(spec, &ctx)).buffered(CHECKS_AT_ONCE);
    let one_by_one = checks.iter().filter(|c| c.offline() || !c.logins().is_empty());
    let one_by_one = futures_util::stream::iter(one_by_one).then(|spec| run_one(spec, &ctx));
    let mut running = running.chain(one_by_one).boxed();
    let mut seen = std::collections::HashMap::new();
    while let Some(results) = running.next().await {
        for mut result in results {
            result.id = unique_id(&mut seen, result.id);
            total += 1;
            match result.verdict {
                Verdict::Pass => passed += 1,
                Verdict::Error => errors += 1,
                _ => {}
            }
            on_result(result);
        }
        on_done();
    }
    drop(running);
    pool.close().await;
    if passed == total {
        return Ok(format!("{passed} of {total} checks passed"));
    }
    let gone = match errors {
        0 => None,
        _ => target.went_away(database).await,
    };
    Err(ChecksError::NotPassed { failed: total - passed, total, gone })
}

/// Each item once, in order.
fn unique(items: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for item in items {
        if !out.contains(&item) {
            out.push(item);
        }
    }
    out
}

/// One check's results, each one's evidence ending with what its kind's PASS rests on
/// ([`crate::outcome::CheckKind::premises`]); a check that produced none is an error, never a
/// silent pass.
async fn run_one(spec: &CheckSpec, ctx: &CheckContext<'_>) -> Vec<CheckResult> {
    let started = std::time::Instant::now();
    let mut results = spec.run(ctx).await;
    if results.is_empty() {
        results.push(CheckResult::build(spec.kind(), spec.label(), started).found(
            crate::outcome::Common::NoResult,
            "the check produced no result: it compared nothing, so it proves nothing",
        ));
    }
    for result in &mut results {
        let rests_on = result.kind.premises_line();
        result.evidence = if result.evidence.is_empty() {
            format!("-- {rests_on}")
        } else {
            format!("{}\n-- {rests_on}", result.evidence)
        };
    }
    results
}

/// `id`, or `id (2)`, `id (3)`... when an earlier result of the drill has it: a scenario may
/// check one object twice (an index's recall at two `ef_search`, a journal in two ways), and
/// JUnit, the history and the report tell results apart by their id.
fn unique_id(seen: &mut std::collections::HashMap<String, u32>, id: String) -> String {
    let count = seen.entry(id.clone()).or_insert(0);
    *count += 1;
    match *count {
        1 => id,
        n => format!("{id} ({n})"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_repeated_id_is_numbered_from_its_second_result() {
        let mut seen = std::collections::HashMap::new();
        let ids: Vec<String> = ["vector_recall/a", "sql/b", "vector_recall/a", "vector_recall/a"]
            .into_iter()
            .map(|id| super::unique_id(&mut seen, id.to_owned()))
            .collect();
        assert_eq!(ids, ["vector_recall/a", "sql/b", "vector_recall/a (2)", "vector_recall/a (3)"]);
    }
}
