//! A sampled backup's plan (`plan.json`): which older backup a drill drew from a window of its
//! source's backups (`--sample within=30d`), from what seed and how, so that anyone re-derives the
//! draw and confirms the backup drilled was not cherry-picked. The one place the draw is made:
//! the source draws with [`SamplePlan::draw`], `pgdrill verify` re-derives with
//! [`SamplePlan::check`].
//!
//! The algorithm ([`ALGORITHM`]): the backups in the window are those listed before the newest
//! (in the source's order, oldest first) whose time is at most `within` before the newest's. The
//! seed is the sha256, in hex, of a text naming the scenario, the drill's UTC day, the window and
//! every backup of it with the newest ([`SamplePlan::seed_input`]): a drill run again the same day
//! over the same backups draws the same one, and another list draws anew. The draw is the first 8
//! bytes, big-endian, of the sha256 of `<seed>:pgdrill-sample`, modulo the number of backups in
//! the window: the index of the one drilled, from 0. A seed the operator gave (`--seed`) is
//! recorded as theirs, and only the draw from it can be re-derived.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

/// The algorithm's name and version, the plan's `algorithm`.
pub const ALGORITHM: &str = "pgdrill-sample-v1";

/// The plan's file in a sampled drill's report folder.
pub const PLAN_FILE: &str = "plan.json";

/// What the draw hashes after the seed.
const DRAW_SUFFIX: &str = ":pgdrill-sample";

/// One backup of the source's listing, as the plan names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListedBackup {
    /// Its name in its folder or under its prefix.
    pub name: String,
    /// Its size as listed, in bytes.
    pub size_bytes: u64,
    /// Its time (RFC 3339, UTC, whole seconds): the date in its name when the source's pattern
    /// has `{date}` and it reads as one, else its modification time; none when neither says.
    #[serde(with = "time::serde::rfc3339::option", default)]
    pub time: Option<OffsetDateTime>,
    /// Its ETag, when its store gives one (S3): which version of it was listed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
}

impl ListedBackup {
    /// A backup listed as `name`, `size_bytes` and `time` (kept to the whole second, in UTC).
    pub fn new(name: String, size_bytes: u64, time: Option<OffsetDateTime>) -> Self {
        let time = time.map(|t| t.to_offset(time::UtcOffset::UTC)).and_then(|t| t.replace_nanosecond(0).ok());
        ListedBackup { name, size_bytes, time, etag: None }
    }

    /// Its line in the seed's input: its name as a JSON string, its size, its time, and its
    /// ETag as a JSON string when it has one.
    fn line(&self, what: &str) -> String {
        let quoted = |text: &str| serde_json::to_string(text).expect("a string serializes");
        let time = self.time.map(rfc3339).unwrap_or_else(|| "-".into());
        let etag = self.etag.as_deref().map(|e| format!(" etag {}", quoted(e))).unwrap_or_default();
        format!("{what} {} {} {time}{etag}\n", quoted(&self.name), self.size_bytes)
    }
}

/// Who chose the seed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SeedFrom {
    /// Derived from the plan's own inputs ([`SamplePlan::seed_input`]): nobody chose it.
    Derived,
    /// Given by whoever ran the drill (`--seed`): the draw from it is re-derived, the choice of
    /// the seed is theirs.
    Operator,
}

/// The seed of the draw.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SampleSeed {
    /// `derived` or `operator`.
    pub from: SeedFrom,
    /// The seed: a derived one is the sha256 of `input`, in hex; an operator's as given.
    pub value: String,
    /// The exact text whose sha256 a derived seed is (none for an operator's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<String>,
}

/// Which backup a sampled drill drilled, and why that one: `plan.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SamplePlan {
    /// How the seed was derived and the draw made: [`ALGORITHM`].
    pub algorithm: String,
    /// The scenario's name.
    pub scenario: String,
    /// The drill's UTC day (`2026-11-30`): one draw a day.
    pub day: String,
    /// The window as written (`30d`).
    pub within: String,
    /// The window in seconds: backups at most this much older than the newest are drawn from.
    pub within_seconds: u64,
    /// Where the backups were listed: a folder, or an S3 prefix.
    pub listed_in: String,
    /// How many backups the listing held (those the source's pattern names).
    pub listed: u64,
    /// The newest backup, which the window ends at and which is not drawn.
    pub newest: ListedBackup,
    /// The backups in the window, oldest first: those drawn from.
    pub candidates: Vec<ListedBackup>,
    /// The seed, and who chose it.
    pub seed: SampleSeed,
    /// The draw: the index of the chosen backup in `candidates`, from 0.
    pub index: u64,
    /// The backup drawn, which the drill drilled.
    pub chosen: ListedBackup,
    /// Where it is, as the drill's record names it (`backup.location` in drill.json and the
    /// signed statement).
    pub location: String,
    /// Its sha256, in hex, once the drill read it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

/// What a draw is made from.
#[derive(Debug, Clone)]
pub struct DrawInputs {
    /// The scenario's name.
    pub scenario: String,
    /// The drill's UTC day.
    pub day: time::Date,
    /// The window, as written and as a duration.
    pub within: (String, Duration),
    /// Where the backups were listed.
    pub listed_in: String,
    /// Every backup listed, oldest first, the newest last.
    pub listed: Vec<ListedBackup>,
    /// A seed the operator gave, instead of the derived one.
    pub seed: Option<String>,
}

/// Why a draw cannot be made, or a plan does not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SampleError {
    /// Nothing was listed.
    #[error("no backup is listed in `{listed_in}`: nothing to sample")]
    Nothing {
        /// Where.
        listed_in: String,
    },
    /// The newest backup has no time: no window ends at it.
    #[error(
        "the newest backup, `{name}`, has no time (no date in its name, no modification time): no window ends at it"
    )]
    NewestUntimed {
        /// Its name.
        name: String,
    },
    /// No older backup is in the window.
    #[error(
        "no backup of `{listed_in}` is older than the newest (`{newest}`) by at most {within}: nothing to sample (of {listed} listed)"
    )]
    EmptyWindow {
        /// Where.
        listed_in: String,
        /// The newest's name.
        newest: String,
        /// The window, as written.
        within: String,
        /// How many were listed.
        listed: u64,
    },
    /// The plan does not hold: what differs.
    #[error("{0}")]
    Mismatch(String),
}

impl SamplePlan {
    /// Draws one backup from the window of `inputs` (see the module's documentation).
    pub fn draw(inputs: DrawInputs, location: impl Fn(&str) -> String) -> Result<SamplePlan, SampleError> {
        let listed = inputs.listed.len() as u64;
        let mut older = inputs.listed;
        let newest = older.pop().ok_or_else(|| SampleError::Nothing { listed_in: inputs.listed_in.clone() })?;
        let end = newest.time.ok_or_else(|| SampleError::NewestUntimed { name: newest.name.clone() })?;
        let (within, window) = inputs.within;
        let candidates: Vec<ListedBackup> = older.into_iter().filter(|b| in_window(b, end, window)).collect();
        if candidates.is_empty() {
            return Err(SampleError::EmptyWindow { listed_in: inputs.listed_in, newest: newest.name, within, listed });
        }
        let mut plan = SamplePlan {
            algorithm: ALGORITHM.to_owned(),
            scenario: inputs.scenario,
            day: inputs.day.to_string(),
            within,
            within_seconds: window.as_secs(),
            listed_in: inputs.listed_in,
            listed,
            newest,
            chosen: candidates[0].clone(),
            candidates,
            seed: SampleSeed { from: SeedFrom::Operator, value: String::new(), input: None },
            index: 0,
            location: String::new(),
            sha256: None,
        };
        plan.seed = match inputs.seed {
            Some(value) => SampleSeed { from: SeedFrom::Operator, value, input: None },
            None => {
                let input = plan.seed_input();
                SampleSeed { from: SeedFrom::Derived, value: sha256_hex(input.as_bytes()), input: Some(input) }
            }
        };
        plan.index = draw(&plan.seed.value, plan.candidates.len());
        plan.chosen = plan.candidates[plan.index as usize].clone();
        plan.location = location(&plan.chosen.name);
        Ok(plan)
    }

    /// The text a derived seed is the sha256 of: the algorithm, the scenario, the day, the
    /// window in seconds, the newest backup, then each backup of the window, a line each.
    pub fn seed_input(&self) -> String {
        let mut text = format!(
            "{ALGORITHM}\nscenario {}\nday {}\nwithin {}\n",
            serde_json::to_string(&self.scenario).expect("a string serializes"),
            self.day,
            self.within_seconds
        );
        text.push_str(&self.newest.line("newest"));
        for candidate in &self.candidates {
            text.push_str(&candidate.line("candidate"));
        }
        text
    }

    /// Re-derives the draw from the plan's own inputs: each candidate is in the window, a
    /// derived seed is the sha256 of the input the candidates make, and the seed draws the
    /// backup the plan says was chosen. `Err` names the first thing that differs.
    pub fn check(&self) -> Result<(), SampleError> {
        let wrong = |what: String| Err(SampleError::Mismatch(what));
        if self.algorithm != ALGORITHM {
            return wrong(format!("its algorithm is `{}`, not `{ALGORITHM}`", self.algorithm));
        }
        let Some(end) = self.newest.time else {
            return wrong(format!("its newest backup, `{}`, has no time", self.newest.name));
        };
        let window = Duration::from_secs(self.within_seconds);
        if let Some(out) = self.candidates.iter().find(|c| !in_window(c, end, window)) {
            return wrong(format!(
                "`{}` is not in the window: not older than the newest by at most {} ({} s)",
                out.name, self.within, self.within_seconds
            ));
        }
        if self.candidates.is_empty() {
            return wrong("it lists no candidate".into());
        }
        if self.seed.from == SeedFrom::Derived {
            let input = self.seed_input();
            if self.seed.input.as_deref() != Some(input.as_str()) {
                return wrong("its seed's input is not the text its scenario, day, window and backups make".into());
            }
            let derived = sha256_hex(input.as_bytes());
            if self.seed.value != derived {
                return wrong(format!("its seed is {}, but the sha256 of its input is {derived}", self.seed.value));
            }
        }
        let index = draw(&self.seed.value, self.candidates.len());
        let drawn = &self.candidates[index as usize];
        if self.index != index || self.chosen != *drawn {
            return wrong(format!(
                "it says it drew candidate {} (`{}`), but its seed draws candidate {index} (`{}`) of {}",
                self.index,
                self.chosen.name,
                drawn.name,
                self.candidates.len()
            ));
        }
        Ok(())
    }
}

/// Whether `backup` is older than the window's end by at most `window`.
fn in_window(backup: &ListedBackup, end: OffsetDateTime, window: Duration) -> bool {
    backup.time.is_some_and(|t| t <= end && end - t <= window)
}

/// The index the seed draws among `n` backups: the first 8 bytes of sha256(`<seed>:pgdrill-sample`),
/// big-endian, modulo `n`.
fn draw(seed: &str, n: usize) -> u64 {
    let digest = Sha256::digest(format!("{seed}{DRAW_SUFFIX}").as_bytes());
    let first: [u8; 8] = digest[..8].try_into().expect("a sha256 has 32 bytes");
    u64::from_be_bytes(first) % n.max(1) as u64
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}

/// A plan of a draw among three nightly backups, for tests of what renders or reads one.
#[cfg(test)]
pub(crate) fn example() -> SamplePlan {
    let at = |day: u8| {
        time::Date::from_calendar_date(2026, time::Month::November, day).ok().map(|d| d.midnight().assume_utc())
    };
    let listed = [27, 28, 29, 30].map(|day| ListedBackup::new(format!("plur-2026-11-{day}.sql.gz"), 1000, at(day)));
    let inputs = DrawInputs {
        scenario: "plur".into(),
        day: time::macros::date!(2026 - 11 - 30),
        within: ("30d".into(), Duration::from_secs(30 * 86_400)),
        listed_in: "backups".into(),
        listed: listed.to_vec(),
        seed: None,
    };
    SamplePlan::draw(inputs, |name| format!("backups/{name}")).expect("three backups in the window")
}

#[cfg(test)]
mod tests {
    use time::macros::{date, datetime};

    use super::*;

    fn nightly(days: &[u8]) -> Vec<ListedBackup> {
        days.iter()
            .map(|d| {
                let at = datetime!(2026-11-01 03:00 UTC) + time::Duration::days(i64::from(*d) - 1);
                ListedBackup::new(format!("plur-2026-11-{d:02}.sql.gz"), 1000 + u64::from(*d), Some(at))
            })
            .collect()
    }

    fn inputs(listed: Vec<ListedBackup>, seed: Option<&str>) -> DrawInputs {
        DrawInputs {
            scenario: "plur".into(),
            day: date!(2026 - 11 - 30),
            within: ("7d".into(), Duration::from_secs(7 * 86_400)),
            listed_in: "backups".into(),
            listed,
            seed: seed.map(str::to_owned),
        }
    }

    fn location(name: &str) -> String {
        format!("backups/{name}")
    }

    #[test]
    fn the_window_holds_the_older_backups_at_most_its_length_before_the_newest() {
        // The newest is the 20th: the window reaches back to the 13th, 03:00, included.
        let plan = SamplePlan::draw(inputs(nightly(&[1, 12, 13, 15, 19, 20]), None), location).unwrap();
        let names: Vec<&str> = plan.candidates.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["plur-2026-11-13.sql.gz", "plur-2026-11-15.sql.gz", "plur-2026-11-19.sql.gz"]);
        assert_eq!(plan.newest.name, "plur-2026-11-20.sql.gz");
        assert_eq!((plan.listed, plan.within_seconds), (6, 7 * 86_400));
        assert!(plan.candidates.contains(&plan.chosen));
        assert_eq!(plan.location, format!("backups/{}", plan.chosen.name));
        // Only the newest, or only backups older than the window: nothing to draw.
        let alone = SamplePlan::draw(inputs(nightly(&[1, 20]), None), location).unwrap_err();
        assert_eq!(
            alone.to_string(),
            "no backup of `backups` is older than the newest (`plur-2026-11-20.sql.gz`) by at most 7d: nothing to sample (of 2 listed)"
        );
        assert!(matches!(SamplePlan::draw(inputs(vec![], None), location), Err(SampleError::Nothing { .. })));
        let mut untimed = nightly(&[19, 20]);
        untimed[1].time = None;
        assert!(matches!(SamplePlan::draw(inputs(untimed, None), location), Err(SampleError::NewestUntimed { .. })));
    }

    #[test]
    fn the_same_inputs_draw_the_same_backup_and_the_draw_is_the_documented_one() {
        let listed = nightly(&[14, 15, 16, 17, 18, 19, 20]);
        let plan = SamplePlan::draw(inputs(listed.clone(), None), location).unwrap();
        assert_eq!(plan, SamplePlan::draw(inputs(listed.clone(), None), location).unwrap());
        assert_eq!(plan.seed.from, SeedFrom::Derived);
        let input = plan.seed.input.clone().unwrap();
        assert!(input.starts_with(
            "pgdrill-sample-v1\nscenario \"plur\"\nday 2026-11-30\nwithin 604800\nnewest \"plur-2026-11-20.sql.gz\" 1020 2026-11-20T03:00:00Z\ncandidate \"plur-2026-11-14.sql.gz\" 1014 2026-11-14T03:00:00Z\n"
        ), "{input}");
        assert_eq!(plan.seed.value, sha256_hex(input.as_bytes()));
        // The draw, computed here as the documentation tells an auditor to.
        let digest = Sha256::digest(format!("{}:pgdrill-sample", plan.seed.value).as_bytes());
        let index = u64::from_str_radix(&hex::encode(&digest[..8]), 16).unwrap() % 6;
        assert_eq!(plan.index, index);
        assert_eq!(plan.chosen, plan.candidates[index as usize]);
        plan.check().unwrap();
        // Another day, or another list, is another seed.
        let mut tomorrow = inputs(listed.clone(), None);
        tomorrow.day = date!(2026 - 12 - 01);
        assert_ne!(SamplePlan::draw(tomorrow, location).unwrap().seed.value, plan.seed.value);
        let shorter = SamplePlan::draw(inputs(listed[1..].to_vec(), None), location).unwrap();
        assert_ne!(shorter.seed.value, plan.seed.value);
        // An operator's seed is recorded as theirs, and its draw still re-derives.
        let chosen = SamplePlan::draw(inputs(listed, Some("audit-2026-q4")), location).unwrap();
        assert_eq!(
            (chosen.seed.from, chosen.seed.value.as_str(), chosen.seed.input.as_ref()),
            (SeedFrom::Operator, "audit-2026-q4", None)
        );
        chosen.check().unwrap();
    }

    #[test]
    fn a_plan_whose_chosen_backup_is_not_the_draw_is_refused() {
        let plan = SamplePlan::draw(inputs(nightly(&[14, 15, 16, 17, 18, 19, 20]), None), location).unwrap();
        let other = (plan.index as usize + 1) % plan.candidates.len();
        let mut picked = plan.clone();
        picked.index = other as u64;
        picked.chosen = plan.candidates[other].clone();
        let SampleError::Mismatch(why) = picked.check().unwrap_err() else { panic!("a mismatch") };
        assert_eq!(
            why,
            format!(
                "it says it drew candidate {other} (`{}`), but its seed draws candidate {} (`{}`) of 6",
                plan.candidates[other].name, plan.index, plan.chosen.name
            )
        );
        // A seed edited to draw another: it is no longer its input's sha256.
        let mut reseeded = plan.clone();
        reseeded.seed.value = "0".repeat(64);
        assert!(picked_because(&reseeded).contains("but the sha256 of its input is"));
        // A candidate dropped from the list, the seed left: the input no longer matches.
        let mut dropped = plan.clone();
        dropped.candidates.remove(usize::from(plan.index == 0));
        assert!(picked_because(&dropped).contains("its seed's input is not the text"));
        // A candidate outside the window.
        let mut outside = plan.clone();
        outside.candidates[0].time = Some(datetime!(2026-10-01 03:00 UTC));
        assert!(picked_because(&outside).contains("is not in the window"));
        // Another algorithm.
        let mut other_algorithm = plan;
        other_algorithm.algorithm = "pick-my-favourite".into();
        assert!(picked_because(&other_algorithm).contains("not `pgdrill-sample-v1`"));
    }

    #[test]
    fn an_objects_etag_is_part_of_the_seed() {
        let mut listed = nightly(&[19, 20]);
        let plain = SamplePlan::draw(inputs(listed.clone(), None), location).unwrap();
        listed[0].etag = Some("\"9b2cf535f27731c974343645a3985328\"".into());
        let tagged = SamplePlan::draw(inputs(listed, None), location).unwrap();
        let input = tagged.seed.input.clone().unwrap();
        assert!(
            input.ends_with(
                "candidate \"plur-2026-11-19.sql.gz\" 1019 2026-11-19T03:00:00Z etag \"\\\"9b2cf535f27731c974343645a3985328\\\"\"\n"
            ),
            "{input}"
        );
        assert_ne!(tagged.seed.value, plain.seed.value);
        tagged.check().unwrap();
    }

    fn picked_because(plan: &SamplePlan) -> String {
        plan.check().unwrap_err().to_string()
    }

    #[test]
    fn a_plan_reads_back_as_written() {
        let plan = SamplePlan::draw(inputs(nightly(&[18, 19, 20]), None), location).unwrap();
        let text = serde_json::to_string_pretty(&plan).unwrap();
        let read: SamplePlan = serde_json::from_str(&text).unwrap();
        assert_eq!(read, plan);
        read.check().unwrap();
    }
}
