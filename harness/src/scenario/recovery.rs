//! `[recovery]`: how far a physical backup recovers, and how long it may take.

use std::time::Duration;

use crate::field::{FieldError, parse_duration};
pub(crate) use crate::source::physical::timeline::TimelineChoice;

use super::raw;

/// How far a physical backup recovers, and how long it may take.
#[derive(Debug, Clone)]
pub(crate) struct RecoverySpec {
    pub(crate) target: RecoveryTarget,
    /// Stop just after the target (PostgreSQL's default) or just before it.
    pub(crate) inclusive: bool,
    pub(crate) timeout: Duration,
    /// How much archived WAL `pg_wal` holds ahead of replay, in bytes; `None`: the whole archive
    /// before the server starts.
    pub(crate) wal_window: Option<u64>,
    /// Which timeline recovery follows.
    pub(crate) timeline: TimelineChoice,
    /// Never promoted: the standby replays the archive as it grows (`pgdrill follow`, never a
    /// scenario's key), and each segment given is kept with its digest for the ledger.
    pub(crate) following: bool,
}

/// The archived WAL `pg_wal` holds ahead of replay when the scenario does not say.
pub(crate) const DEFAULT_WAL_WINDOW: u64 = 256 << 20;

impl Default for RecoverySpec {
    fn default() -> Self {
        RecoverySpec {
            target: RecoveryTarget::End,
            inclusive: true,
            timeout: Duration::from_secs(30 * 60),
            wal_window: Some(DEFAULT_WAL_WINDOW),
            timeline: TimelineChoice::Latest,
            following: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub(crate) enum RecoveryTarget {
    /// Every WAL segment the archive holds (the backup's own WAL when there is no archive).
    End,
    /// The end of the backup: as soon as it is consistent.
    Immediate,
    /// `recovery_target_time`.
    Time(time::OffsetDateTime),
    /// `recovery_target_lsn`.
    Lsn(u64),
    /// `recovery_target_xid`.
    Xid(u64),
    /// `recovery_target_name`: a restore point.
    Name(String),
}

impl RecoveryTarget {
    /// The server setting that asks for it, and its value; none for the archive's end.
    pub(crate) fn setting(&self) -> Option<(&'static str, String)> {
        match self {
            RecoveryTarget::End => None,
            RecoveryTarget::Immediate => Some(("recovery_target", "immediate".into())),
            // As PostgreSQL prints a timestamptz, in UTC: its check of this setting refuses the
            // ISO form with `T`.
            RecoveryTarget::Time(at) => Some((
                "recovery_target_time",
                at.to_offset(time::UtcOffset::UTC)
                    .format(time::macros::format_description!(
                        "[year]-[month]-[day] [hour]:[minute]:[second].[subsecond digits:6]+00"
                    ))
                    .unwrap_or_default(),
            )),
            RecoveryTarget::Lsn(lsn) => Some(("recovery_target_lsn", crate::source::physical::wal::format_lsn(*lsn))),
            RecoveryTarget::Xid(xid) => Some(("recovery_target_xid", xid.to_string())),
            RecoveryTarget::Name(name) => Some(("recovery_target_name", name.clone())),
        }
    }
}

impl std::fmt::Display for RecoveryTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self, self.setting()) {
            (RecoveryTarget::End, _) => f.write_str("the end of the WAL archive"),
            (RecoveryTarget::Immediate, _) => f.write_str("the end of the backup (consistency)"),
            (_, Some((name, value))) => write!(f, "{name} {value}"),
            (_, None) => Ok(()),
        }
    }
}

/// `[recovery]`: one target at most, each read as PostgreSQL would take it.
pub(super) fn resolve_recovery(r: raw::RawRecovery) -> Result<RecoverySpec, FieldError> {
    let mut given = Vec::new();
    if let Some(t) = &r.target_time {
        given.push(RecoveryTarget::Time(
            parse_target_time(t.get_ref()).map_err(|e| FieldError::new(t.span(), e.to_string()))?,
        ));
    }
    if let Some(t) = &r.target_lsn {
        let lsn = crate::source::physical::wal::parse_lsn(t.get_ref()).ok_or_else(|| {
            FieldError::new(t.span(), format!("`{}` is not a WAL location such as `0/3000060`", t.get_ref()))
        })?;
        given.push(RecoveryTarget::Lsn(lsn));
    }
    if let Some(t) = &r.target_xid {
        // Transaction ids 0 to 2 are PostgreSQL's own; no transaction of a user has one.
        if *t.get_ref() < 3 || *t.get_ref() > u64::from(u32::MAX) {
            return Err(FieldError::new(
                t.span(),
                format!("{} is not a transaction id (3 to 4294967295)", t.get_ref()),
            ));
        }
        given.push(RecoveryTarget::Xid(*t.get_ref()));
    }
    if let Some(t) = &r.target_name {
        if t.get_ref().is_empty() || t.get_ref().len() > 63 {
            return Err(FieldError::new(t.span(), "a restore point's name has 1 to 63 characters"));
        }
        given.push(RecoveryTarget::Name(t.get_ref().clone()));
    }
    if let Some(t) = &r.target {
        match t.get_ref().as_str() {
            "immediate" => given.push(RecoveryTarget::Immediate),
            other => {
                return Err(FieldError::new(
                    t.span(),
                    format!(
                        "unknown recovery target `{other}`: `immediate`, or one of `target_time`, `target_lsn`, `target_xid`, `target_name`"
                    ),
                ));
            }
        }
    }
    if given.len() > 1 {
        return Err(FieldError::unplaced(
            "give one recovery target: `target_time`, `target_lsn`, `target_xid`, `target_name` or `target = \"immediate\"`, not both",
        ));
    }
    let target = given.pop().unwrap_or(RecoveryTarget::End);
    if r.inclusive.is_some()
        && matches!(target, RecoveryTarget::End | RecoveryTarget::Immediate | RecoveryTarget::Name(_))
    {
        return Err(FieldError::unplaced(
            "`inclusive` applies to `target_time`, `target_lsn` and `target_xid` (PostgreSQL's recovery_target_inclusive)",
        ));
    }
    let timeout = r.timeout.as_ref().map(parse_duration).transpose()?.unwrap_or(Duration::from_secs(30 * 60));
    let wal_window = match &r.wal_window {
        None => Some(DEFAULT_WAL_WINDOW),
        Some(w) if w.get_ref() == "all" => None,
        Some(w) => Some(crate::disk::parse(w.get_ref()).ok_or_else(|| {
            FieldError::new(w.span(), format!("`{}` is not a size such as `256MB` or `1GB`, nor `all`", w.get_ref()))
        })?),
    };
    let timeline = match &r.timeline {
        None => TimelineChoice::Latest,
        Some(t) => match t.get_ref() {
            raw::RawTimeline::Name(name) if name == "latest" => TimelineChoice::Latest,
            raw::RawTimeline::Name(name) if name == "current" => TimelineChoice::Current,
            raw::RawTimeline::Number(n) if (1..=i64::from(u32::MAX)).contains(n) => TimelineChoice::Number(*n as u32),
            _ => {
                return Err(FieldError::new(
                    t.span(),
                    "a timeline is `\"latest\"`, `\"current\"` or a timeline's number (1 or more)",
                ));
            }
        },
    };
    Ok(RecoverySpec { target, inclusive: r.inclusive.unwrap_or(true), timeout, wal_window, timeline, following: false })
}

/// A recovery target time that is not one.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
#[error("`{text}` is not a time with its offset (e.g. `2026-11-22T03:00:00Z` or `2026-11-22 03:00:00+00`)")]
pub(crate) struct TargetTimeError {
    /// The text as written.
    pub(crate) text: String,
    #[source]
    pub(crate) source: time::error::Parse,
}

/// A recovery target time: RFC 3339 (`2026-11-22T03:00:00Z`) or as PostgreSQL prints a
/// timestamptz (`2026-11-22 03:00:00.123456+00`); an offset is required.
pub(crate) fn parse_target_time(text: &str) -> Result<time::OffsetDateTime, TargetTimeError> {
    let mut iso = text.trim().replacen(' ', "T", 1);
    // `+00` or `-05` as PostgreSQL prints whole-hour offsets.
    let tail: Vec<char> = iso.chars().rev().take(3).collect();
    if tail.len() == 3 && tail[0].is_ascii_digit() && tail[1].is_ascii_digit() && matches!(tail[2], '+' | '-') {
        iso.push_str(":00");
    }
    time::OffsetDateTime::parse(&iso, &time::format_description::well_known::Rfc3339)
        .map_err(|source| TargetTimeError { text: text.to_owned(), source })
}
