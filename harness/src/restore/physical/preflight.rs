//! The preflight of a physical backup's recovery, before its server starts: a recovery target
//! earlier than the base backup's end cannot be reached. The database is consistent only once
//! recovery has replayed the backup's WAL to its end; PostgreSQL refuses a stop before that
//! when it finds one, and when it finds none (the target's records lie before the WAL it
//! replays) it stops later, at a database newer than the target, and would be reported as
//! recovered to it. Pure: the backup's end is read by `source::physical`.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::scenario::RecoveryTarget;
use crate::source::physical::BackupEnd;
use crate::source::physical::wal::format_lsn;

/// A target the backup cannot reach.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct TooEarly(pub String);

fn shown(at: OffsetDateTime) -> String {
    at.format(&Rfc3339).unwrap_or_else(|_| at.to_string())
}

/// Whether `target` can be reached from a backup ending at `end` (`oldest_active_xid` from its
/// pg_control); the preflight's summary, or why not with what to do.
pub(crate) fn judge(
    target: &RecoveryTarget,
    end: &BackupEnd,
    oldest_active_xid: Option<u32>,
) -> Result<String, TooEarly> {
    let which = match &end.set {
        Some((label, sets, true)) if *sets > 1 => {
            format!("pgBackRest set {label}, the oldest of the stanza's {sets} sets")
        }
        Some((label, _, _)) => format!("pgBackRest set {label}"),
        None => "the base backup".to_owned(),
    };
    let hint = "hint: use an older backup taken before the target, or a later target";
    let refuse = |what: String| {
        Err(TooEarly(format!(
            "{target} is before the end of {which}, {what}: recovery reaches a consistent database only there, later than the target ({hint})"
        )))
    };
    let end_words = match (&end.time, &end.lsn) {
        (Some((at, from)), _) => format!("which ended at {} ({from})", shown(*at)),
        (None, Some((lsn, from))) => format!("which ended at {} ({from})", format_lsn(*lsn)),
        (None, None) => "whose end pgdrill could not read".to_owned(),
    };
    match target {
        RecoveryTarget::Time(at) => {
            if let Some((end_at, from)) = &end.time {
                if at < end_at {
                    return refuse(format!("at {} ({from})", shown(*end_at)));
                }
            } else if let Some(started) = end.started
                && *at < started
            {
                return refuse(format!(
                    "which started at {} (backup_label's START TIME) and ended later{}",
                    shown(started),
                    end.unread_time
                        .as_ref()
                        .map(|t| format!(" (at {t}, a zone pgdrill does not read)"))
                        .unwrap_or_default()
                ));
            }
        }
        RecoveryTarget::Lsn(lsn) => {
            if let Some((end_lsn, from)) = &end.lsn
                && lsn < end_lsn
            {
                return refuse(format!("at {} ({from})", format_lsn(*end_lsn)));
            }
        }
        RecoveryTarget::Xid(xid) => {
            // recovery_target_xid is a 32-bit transaction id: an epoch is not part of it.
            let xid = (*xid & 0xFFFF_FFFF) as u32;
            if let Some(oldest) = oldest_active_xid
                && xid >= 3
                && xid < oldest
                && oldest - xid < 1 << 31
            {
                return Err(TooEarly(format!(
                    "{target} had ended before the end of {which}: its pg_control's checkpoint, written before that end, has every transaction before {oldest} ended, so the transaction's commit lies before the point where the backup is consistent ({hint})"
                )));
            }
        }
        RecoveryTarget::End | RecoveryTarget::Immediate | RecoveryTarget::Name(_) => {}
    }
    Ok(match target {
        RecoveryTarget::End | RecoveryTarget::Immediate => format!("recovers to {target}; {which} {end_words}"),
        RecoveryTarget::Name(_) => format!(
            "{target}: where a restore point lies is known only once recovery finds it (the server's log says); {which} {end_words}"
        ),
        _ => format!("{target} is not before the end of {which}, {end_words}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn end() -> BackupEnd {
        BackupEnd {
            lsn: Some((0x200_0158, "`backup_manifest`'s WAL-Ranges".into())),
            time: Some((datetime!(2026-11-23 13:00:01 UTC), "STOP TIME in ...backup".into())),
            unread_time: None,
            started: Some(datetime!(2026-11-23 12:59:58 UTC)),
            set: None,
        }
    }

    #[test]
    fn a_time_before_the_backups_end_is_refused_naming_both() {
        let early = RecoveryTarget::Time(datetime!(2026-11-23 13:00:00.5 UTC));
        let error = judge(&early, &end(), None).unwrap_err().0;
        assert!(error.starts_with("recovery_target_time 2026-11-23 13:00:00.500000+00 is before the end of the base backup, at 2026-11-23T13:00:01Z (STOP TIME"), "{error}");
        assert!(error.contains("use an older backup taken before the target"), "{error}");
        // The same instant written with an offset is the same time: after the end, it passes.
        let later = RecoveryTarget::Time(datetime!(2026-11-23 14:00:02 +01:00));
        let ok = judge(&later, &end(), None).unwrap();
        assert!(ok.contains("is not before the end of the base backup, which ended at 2026-11-23T13:00:01Z"), "{ok}");
        // An offset that puts an apparently later clock time before the end.
        let behind = RecoveryTarget::Time(datetime!(2026-11-23 13:00:30 +00:30));
        assert!(judge(&behind, &end(), None).is_err());
        // No end time: only a target before the start is known too early.
        let unknown = BackupEnd { time: None, unread_time: Some("2026-11-23 14:00:01 CET".into()), ..end() };
        let error = judge(&RecoveryTarget::Time(datetime!(2026-11-23 12:00 UTC)), &unknown, None).unwrap_err().0;
        assert!(error.contains("which started at 2026-11-23T12:59:58Z (backup_label's START TIME) and ended later (at 2026-11-23 14:00:01 CET"), "{error}");
        assert!(judge(&early, &unknown, None).is_ok(), "between start and end, PostgreSQL itself refuses");
    }

    #[test]
    fn an_lsn_or_a_transaction_before_the_backups_end_is_refused() {
        let error = judge(&RecoveryTarget::Lsn(0x100_0000), &end(), None).unwrap_err().0;
        assert!(error.contains("recovery_target_lsn 0/1000000 is before the end of the base backup, at 0/2000158 (`backup_manifest`'s WAL-Ranges)"), "{error}");
        assert!(judge(&RecoveryTarget::Lsn(0x200_0158), &end(), None).is_ok());
        let error = judge(&RecoveryTarget::Xid(700), &end(), Some(745)).unwrap_err().0;
        assert!(error.contains("recovery_target_xid 700 had ended before the end of the base backup"), "{error}");
        assert!(judge(&RecoveryTarget::Xid(745), &end(), Some(745)).is_ok());
        assert!(judge(&RecoveryTarget::Xid((1 << 32) + 800), &end(), Some(745)).is_ok(), "an epoch is not part of it");
        assert!(judge(&RecoveryTarget::Xid(700), &end(), None).is_ok());
        assert!(
            judge(&RecoveryTarget::Name("p".into()), &end(), None)
                .unwrap()
                .contains("known only once recovery finds it")
        );
    }

    #[test]
    fn a_pgbackrest_target_before_every_sets_end_names_the_oldest_set() {
        let set = BackupEnd { set: Some(("20261120-010000F".into(), 3, true)), ..end() };
        let error = judge(&RecoveryTarget::Time(datetime!(2026-11-20 00:00 UTC)), &set, None).unwrap_err().0;
        assert!(error.contains("before the end of pgBackRest set 20261120-010000F, the oldest of the stanza's 3 sets, at 2026-11-23T13:00:01Z"), "{error}");
    }
}
