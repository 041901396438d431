//! `--sample within=30d` (`[source] sample = { within = "30d" }`): the drill's backup drawn from
//! the older backups of a folder or an S3 prefix within a window before the newest, as AWS
//! Backup's restore testing samples recovery points, by the plan the record keeps and anyone can
//! re-derive ([`crate::outcome::SamplePlan`]).

use std::time::Duration;

use time::Date;

use super::newest::{Candidate, NamePattern};
use crate::outcome::{DrawInputs, ListedBackup, SampleError, SamplePlan};

/// Why a source cannot be sampled: it is not a folder of backups.
pub(crate) const NOT_A_FOLDER: &str = "`sample` draws among the backups of a folder or an S3 prefix (`[source] dir`, or `s3` ending in `/`): this source names one backup";

/// Whether a drill of `location` can be sampled: it names several backups (a folder, an S3
/// prefix).
pub(crate) fn samples(location: &super::SourceLocation) -> bool {
    match location {
        super::SourceLocation::Newest { .. } => true,
        super::SourceLocation::S3(s3) => s3.is_prefix(),
        super::SourceLocation::File(_) | super::SourceLocation::Url(_) => false,
    }
}

/// How the drill samples its backup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SampleSpec {
    /// The window as written (`30d`) and as a duration: backups at most this much older than
    /// the newest are drawn from.
    pub within: (String, Duration),
    /// A seed the operator chose (`--seed`), recorded as theirs; else it is derived.
    pub seed: Option<String>,
    /// The scenario's name, part of the seed.
    pub scenario: String,
    /// The drill's UTC day, part of the seed: one draw a day.
    pub day: Date,
}

/// Why `--sample` or `--seed` is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum SampleArgError {
    #[error("`{0}` is not `within=DURATION` (e.g. `within=30d`)")]
    Form(String),
    #[error("`{text}` is not a duration: {why}")]
    Duration { text: String, why: String },
    #[error("the window is empty: give a duration over zero (e.g. `within=30d`)")]
    Zero,
    #[error("a seed is 1 to 128 printable ASCII characters without spaces")]
    Seed,
}

/// `within=30d`, as `--sample` takes it: the window as written and as a duration.
pub(crate) fn parse_arg(text: &str) -> Result<(String, Duration), SampleArgError> {
    let Some(("within", duration)) = text.split_once('=').map(|(k, v)| (k.trim(), v.trim())) else {
        return Err(SampleArgError::Form(text.to_owned()));
    };
    parse_within(duration)
}

/// A window's length (`30d`, `2w`, `36h`).
pub(crate) fn parse_within(text: &str) -> Result<(String, Duration), SampleArgError> {
    let window = humantime::parse_duration(text)
        .map_err(|e| SampleArgError::Duration { text: text.to_owned(), why: e.to_string() })?;
    if window.is_zero() {
        return Err(SampleArgError::Zero);
    }
    Ok((text.to_owned(), window))
}

/// An operator's seed (`--seed`): printable, without spaces, so that it is one word in the plan
/// and in the documentation's one-liner.
pub(crate) fn parse_seed(text: &str) -> Result<String, SampleArgError> {
    match !text.is_empty() && text.len() <= 128 && text.bytes().all(|b| b.is_ascii_graphic()) {
        true => Ok(text.to_owned()),
        false => Err(SampleArgError::Seed),
    }
}

/// A backup as the plan lists it: its time is the date in its name when `pattern` has `{date}`
/// and it reads as one, else its modification time.
fn listed(candidate: &Candidate, pattern: Option<&NamePattern>) -> ListedBackup {
    let named = pattern.filter(|p| p.has_date()).and(candidate.date.as_deref()).and_then(super::taken::from_digits);
    let mut listed = ListedBackup::new(candidate.name.clone(), candidate.size, named.or(candidate.modified));
    listed.etag = candidate.etag.clone();
    listed
}

/// The backup `spec` draws among `sorted` (oldest first, the newest last: `newest::sorted`),
/// with the one before it (for the size sanity check) and the plan of the draw. `location` is
/// where a backup of that name is, as the record names it.
pub(crate) fn pick(
    mut sorted: Vec<Candidate>,
    pattern: Option<&NamePattern>,
    spec: &SampleSpec,
    listed_in: String,
    location: impl Fn(&str) -> String,
) -> Result<(Candidate, Option<Candidate>, SamplePlan), SampleError> {
    let inputs = DrawInputs {
        scenario: spec.scenario.clone(),
        day: spec.day,
        within: spec.within.clone(),
        listed_in,
        listed: sorted.iter().map(|c| listed(c, pattern)).collect(),
        seed: spec.seed.clone(),
    };
    let plan = SamplePlan::draw(inputs, location)?;
    let at = sorted.iter().position(|c| c.name == plan.chosen.name).expect("the plan draws a listed backup");
    let previous = at.checked_sub(1).map(|i| sorted[i].clone());
    let chosen = sorted.swap_remove(at);
    Ok((chosen, previous, plan))
}

#[cfg(test)]
mod tests {
    use time::macros::{date, datetime};

    use super::*;

    #[test]
    fn the_window_and_the_seed_as_the_command_line_gives_them() {
        assert_eq!(parse_arg("within=30d"), Ok(("30d".into(), Duration::from_secs(30 * 86_400))));
        assert_eq!(parse_arg("within = 2w").map(|w| w.1), Ok(Duration::from_secs(14 * 86_400)));
        assert_eq!(parse_arg("30d").unwrap_err().to_string(), "`30d` is not `within=DURATION` (e.g. `within=30d`)");
        assert!(matches!(parse_arg("within=soon"), Err(SampleArgError::Duration { .. })));
        assert_eq!(parse_arg("within=0s"), Err(SampleArgError::Zero));
        assert_eq!(parse_seed("audit-2026-q4"), Ok("audit-2026-q4".into()));
        assert_eq!(parse_seed("two words"), Err(SampleArgError::Seed));
        assert_eq!(parse_seed(""), Err(SampleArgError::Seed));
    }

    #[test]
    fn a_folder_is_drawn_from_by_the_dates_in_its_names() {
        let candidate = |name: &str, size: u64| Candidate {
            name: name.into(),
            size,
            // Copied the same minute: the names' dates are the backups' times.
            modified: Some(datetime!(2026-11-30 09:00 UTC)),
            date: None,
            etag: None,
        };
        let pattern = NamePattern::parse("plur-{date}.sql.gz").unwrap();
        let files = vec![
            candidate("plur-2026-10-01.sql.gz", 10),
            candidate("plur-2026-11-27.sql.gz", 27),
            candidate("plur-2026-11-28.sql.gz", 28),
            candidate("plur-2026-11-29.sql.gz", 29),
            candidate("plur-2026-11-30.sql.gz", 30),
        ];
        let sorted = super::super::newest::sorted(files, Some(&pattern));
        let spec = SampleSpec {
            within: parse_within("30d").unwrap(),
            seed: None,
            scenario: "plur".into(),
            day: date!(2026 - 11 - 30),
        };
        let (chosen, previous, plan) =
            pick(sorted, Some(&pattern), &spec, "backups".into(), |n| format!("backups/{n}")).unwrap();
        let names: Vec<&str> = plan.candidates.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["plur-2026-11-27.sql.gz", "plur-2026-11-28.sql.gz", "plur-2026-11-29.sql.gz"]);
        assert_eq!(plan.newest.time, Some(datetime!(2026-11-30 00:00 UTC)));
        assert_eq!(chosen.name, plan.chosen.name);
        assert_eq!(plan.location, format!("backups/{}", chosen.name));
        // The one before it in the folder, whatever the window: the size check's.
        let before = ["plur-2026-10-01.sql.gz", "plur-2026-11-27.sql.gz", "plur-2026-11-28.sql.gz"];
        assert_eq!(previous.unwrap().name, before[plan.index as usize]);
        plan.check().unwrap();
    }
}
