//! An audit trail only grows: with `key` set, the drill fingerprints the table by ranges of that
//! key ([`crate::fingerprint`]) and the history keeps them; the next drill of the scenario
//! fingerprints the same ranges of its own restore, and every one must hold the same rows with
//! the same values. A row deleted, changed or slipped in among the old ones fails, naming its
//! range; rows past the last range are new, and become the next range.
//!
//! The ranges are kept only when the comparison passed (or when there was nothing yet to compare
//! with), so a trail that was cut once keeps failing against the last one proven whole.

use std::time::Instant;

use super::{Found, KIND, Spec};
use crate::check::{CheckContext, CheckResult};
use crate::fingerprint::{
    self, Described, FingerprintError, RangeFingerprint, Readers, RowText, TableFingerprint, Trail,
};

/// Ranges the first drill splits the table into.
const FIRST_RANGES: u32 = 16;

/// What the trail part of the check found.
pub(super) enum Outcome {
    /// Nothing to compare with yet: the ranges to keep.
    First(TableFingerprint),
    /// The comparison with the previous drill's ranges.
    Compared(CheckResult),
    /// It could not run.
    Error(CheckResult),
}

pub(super) async fn check(spec: &Spec, ctx: &CheckContext<'_>, key: &str, started: Instant) -> Outcome {
    let object = format!("{} rows of the previous backups", spec.table);
    // A trail recorded empty holds no row to find again: comparing with it would pass on
    // anything, so this drill records ranges as a first one does.
    let previous = ctx.trails.get(&spec.table).filter(|p| !p.fingerprint.ranges.is_empty());
    let build = || {
        let expected = match previous {
            Some(p) => format!(
                "the {} rows with {} the drill `{}` recorded, unchanged",
                p.fingerprint.rows,
                key_span(&p.fingerprint),
                p.drill_id
            ),
            None => "nothing to compare with yet".into(),
        };
        CheckResult::build(KIND, object.clone(), started).expected(expected)
    };
    match measure(spec, ctx, key, previous).await {
        // A column the recorded trail hashed is gone, or the key changed: the trail is not what
        // was recorded.
        Err(e) if previous.is_some() && !matches!(e, FingerprintError::Sql { .. } | FingerprintError::Read { .. }) => {
            Outcome::Compared(
                build()
                    .actual("not comparable")
                    .found(Found::TrailChanged, format!("the trail of `{}` cannot be compared: {e}", spec.table)),
            )
        }
        Err(e) => Outcome::Error(build().found(
            Found::CouldNotRead,
            format!("cannot fingerprint the trail of `{}`: {}", spec.table, crate::error::error_chain(&e)),
        )),
        Ok((described, now)) => match previous {
            None => Outcome::First(now),
            Some(p) => Outcome::Compared(compare(build().evidence(evidence(&described, now.row_text)), p, now)),
        },
    }
}

/// The ranges of the previous trail again, and one more for the rows past its end; or, the
/// first time, the table in [`FIRST_RANGES`] ranges.
async fn measure(
    spec: &Spec,
    ctx: &CheckContext<'_>,
    key: &str,
    previous: Option<&Trail>,
) -> Result<(Described, TableFingerprint), FingerprintError> {
    let mut tx = fingerprint::begin(ctx.pool).await?;
    let columns: Option<Vec<String>> = previous.map(|p| p.fingerprint.columns.iter().map(|c| c.name.clone()).collect());
    let described = fingerprint::describe(&mut tx, &spec.table, columns.as_deref(), Some(key)).await?;
    let mut spans: Vec<fingerprint::Span> = match previous {
        Some(p) => p.fingerprint.ranges.iter().map(|r| (r.after.clone(), r.upto.clone())).collect(),
        None => fingerprint::spans(&fingerprint::bounds(&mut tx, &described, FIRST_RANGES).await?, false),
    };
    // The rows past the recorded end: read with the recorded ranges, in the same pass.
    if let Some(p) = previous {
        spans.push((p.fingerprint.ranges.last().and_then(|r| r.upto.clone()), None));
    }
    let options = (*ctx.pool.connect_options()).clone();
    let mut readers = Readers::new(&mut tx, options, None, 0, fingerprint::MEMORY).await?;
    // A trail recorded before v3 is read as it was hashed; a new one hashes each row's COPY line.
    let row_text = previous.map_or(RowText::Copy, |p| p.fingerprint.row_text);
    let found = readers.fingerprint(&mut tx, &described, &spans, row_text).await;
    readers.close().await;
    let mut ranges = found?;
    if previous.is_some()
        && let Some(past_end) = ranges.pop()
        && past_end.rows > 0
    {
        // The new range, closed at the last key.
        let upto = fingerprint::last_key(&mut tx, &described).await?;
        ranges.push(RangeFingerprint { upto, ..past_end });
    }
    let _ = tx.rollback().await;
    let now = TableFingerprint::new(
        spec.table.clone(),
        described.columns.clone(),
        row_text,
        Some(described.key.as_ref().map(|k| k.name.clone()).unwrap_or_else(|| key.to_owned())),
        ranges,
        None,
    );
    Ok((described, now))
}

/// The previous ranges against this restore's; the trail to keep when they all hold.
fn compare(build: crate::outcome::CheckResultBuilder, previous: &Trail, now: TableFingerprint) -> CheckResult {
    let old = &previous.fingerprint;
    let key = old.key.as_deref();
    let differing: Vec<String> = old
        .ranges
        .iter()
        .zip(&now.ranges)
        .filter(|(before, after)| !before.same_as(after))
        .map(|(before, after)| difference(before, after, key))
        .collect();
    let added = now.ranges.len().saturating_sub(old.ranges.len());
    let new_rows: u64 = now.ranges[old.ranges.len().min(now.ranges.len())..].iter().map(|r| r.rows).sum();
    let kept_rows: u64 = now.ranges.iter().take(old.ranges.len()).map(|r| r.rows).sum();
    let actual = format!("{kept_rows} rows in the recorded ranges, {new_rows} new in {added} new range(s)");
    let build = build.actual(actual);
    if differing.is_empty() {
        let mut result = build.found(
            Found::TrailKept,
            format!(
                "every row of `{}` the drill `{}` recorded is here, unchanged ({} ranges), and {new_rows} rows were appended since",
                now.table,
                previous.drill_id,
                old.ranges.len()
            ),
        );
        result.trail = Some(now);
        return result;
    }
    build.found(
        Found::TrailChanged,
        format!(
            "`{}` is not the trail the drill `{}` recorded: rows were deleted, changed or inserted among the old ones: {}",
            now.table,
            previous.drill_id,
            differing.join("; ")
        ),
    )
}

fn difference(before: &RangeFingerprint, after: &RangeFingerprint, key: Option<&str>) -> String {
    let what = match after.rows.cmp(&before.rows) {
        std::cmp::Ordering::Less => format!("{} of its {} rows are gone", before.rows - after.rows, before.rows),
        std::cmp::Ordering::Greater => format!("{} rows more than its {}", after.rows - before.rows, before.rows),
        std::cmp::Ordering::Equal => format!("its {} rows hold other values", before.rows),
    };
    format!("{}: {what}", before.describe(key))
}

/// `id <= 4096` for the span the ranges cover.
fn key_span(trail: &TableFingerprint) -> String {
    let key = trail.key.as_deref().unwrap_or("key");
    match trail.ranges.last().and_then(|r| r.upto.as_deref()) {
        Some(end) => format!("{key} <= {end}"),
        None => format!("any {key}"),
    }
}

/// How a range is fingerprinted, as a reader can run it again.
fn evidence(described: &Described, row_text: RowText) -> String {
    format!(
        "{}\n{};\n{}\n-- once per key range, $1 and $2 its bounds",
        fingerprint::HOW,
        fingerprint::settings_sql(),
        described.range_sql(true, true, row_text)
    )
}
