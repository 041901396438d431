//! The backup's kind: what a drill drilled beyond its bytes. Its format (pg_dump's custom,
//! directory, tar or plain, pg_dumpall, a base backup in tar or plain format, an incremental
//! chain, a pgBackRest set, a Barman backup), what it holds (a schema and its data, the schema
//! only, the data only), the database it is of, the PostgreSQL major it was taken from, and its
//! encryption (age, OpenPGP, a pgBackRest cipher, none). The history keeps each drill's
//! (`report::history`), and verify compares the backup's kind with the one the scenario's
//! previous drill accepted: a drill proves the backup the scenario was written for, so a backup
//! job that switched format or database, a dump that lost its data or its schema, a cluster of
//! another major or a backup no longer encrypted fails, naming each change, unless the scenario
//! says the change was intended (`[source] changed`). A dump that now holds a schema and its data
//! where it held one of them, or a backup now encrypted (or in another envelope), is no loss:
//! the verify summary says so, and the drill goes on.

use time::OffsetDateTime;

use super::physical::{BaseBackup, Layout};
use super::verify::Verified;
use crate::dump::{Content, Format};
use crate::outcome::BackupKind;
use crate::outcome::history::HistoryEntry;

/// The formats a backup's kind names.
pub(crate) const FORMATS: [&str; 11] = [
    "custom",
    "directory",
    "tar",
    "plain",
    "pg_dumpall",
    "basebackup-tar",
    "basebackup-plain",
    "chain",
    "pgbackrest",
    "barman",
    "barman-cloud",
];

/// The encryptions a backup's kind names (`none`: not encrypted).
pub(crate) const ENCRYPTIONS: [&str; 4] = ["none", "age", "openpgp", "pgbackrest"];

impl BackupKind {
    /// A dump's kind, as verify read it.
    pub(crate) fn of_dump(verified: &Verified) -> BackupKind {
        let summary = &verified.summary;
        let cluster = summary.comments.title.as_deref().is_some_and(|t| t.contains("cluster"));
        let format = match verified.format {
            Format::Plain if cluster => "pg_dumpall",
            format => format.as_str(),
        };
        let database = match (&verified.archive, &summary.databases_created[..]) {
            (Some(header), _) if !header.database.is_empty() => Some(header.database.clone()),
            (None, [one]) if !cluster => Some(one.clone()),
            _ => None,
        };
        let encryption = verified.info.encryption.as_deref().map(|envelope| match envelope.to_ascii_lowercase() {
            e if e.starts_with("age") => "age".to_owned(),
            e if e.starts_with("openpgp") => "openpgp".to_owned(),
            e => e,
        });
        BackupKind {
            format: format.to_owned(),
            content: summary.content().map(|c| c.as_str().to_owned()),
            database,
            major: verified.info.source_version.as_deref().and_then(crate::pg::major_of_version_text),
            encryption,
        }
    }

    /// A physical backup's kind: the whole cluster; `encrypted` when its repository is.
    pub(crate) fn of_physical(backup: &BaseBackup, encrypted: bool) -> BackupKind {
        let format = match (&backup.barman, &backup.layout) {
            (Some(barman), _) if barman.cloud => "barman-cloud",
            (Some(_), _) => "barman",
            (None, Layout::Tar { .. }) => "basebackup-tar",
            (None, Layout::Plain) => "basebackup-plain",
            (None, Layout::PgBackRest(_)) => "pgbackrest",
            (None, Layout::Chain(_)) => "chain",
        };
        BackupKind {
            format: format.to_owned(),
            content: Some(Content::Full.as_str().to_owned()),
            database: None,
            major: Some(backup.major),
            encryption: encrypted.then(|| "pgbackrest".to_owned()),
        }
    }

    /// The value of one part of it, as `[source] changed`'s `to` names it (`none` for no
    /// encryption; an unknown part is empty).
    fn value(&self, part: KindPart) -> Option<String> {
        match part {
            KindPart::Format => Some(self.format.clone()),
            KindPart::Content => self.content.clone(),
            KindPart::Database => self.database.clone(),
            KindPart::Major => self.major.map(|m| m.to_string()),
            KindPart::Encryption => Some(self.encryption.clone().unwrap_or_else(|| "none".to_owned())),
        }
    }
}

/// A part of a backup's kind, as `[source] changed` names it (`what`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KindPart {
    Format,
    Content,
    Database,
    Major,
    Encryption,
}

impl KindPart {
    pub(crate) const ALL: [KindPart; 5] =
        [KindPart::Format, KindPart::Content, KindPart::Database, KindPart::Major, KindPart::Encryption];

    pub(crate) fn name(self) -> &'static str {
        match self {
            KindPart::Format => "format",
            KindPart::Content => "content",
            KindPart::Database => "database",
            KindPart::Major => "major",
            KindPart::Encryption => "encryption",
        }
    }

    pub(crate) fn parse(text: &str) -> Option<KindPart> {
        KindPart::ALL.into_iter().find(|p| p.name() == text)
    }

    /// The values it can take, where they are few (a database's name and a major are not).
    pub(crate) fn values(self) -> Option<&'static [&'static str]> {
        match self {
            KindPart::Format => Some(&FORMATS),
            KindPart::Content => Some(&["full", "schema-only", "data-only"]),
            KindPart::Encryption => Some(&ENCRYPTIONS),
            KindPart::Database | KindPart::Major => None,
        }
    }
}

/// A change of the backup's kind that the scenario says was intended (`[source] changed`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct IntendedChange {
    pub what: KindPart,
    /// Only to this value (`None`: to any).
    pub to: Option<String>,
    /// Why, in the reports.
    pub reason: String,
}

impl IntendedChange {
    fn accepts(&self, change: &Change) -> bool {
        self.what == change.what
            && self.to.as_deref().is_none_or(|to| match change.what {
                KindPart::Database => to == change.to,
                _ => to.eq_ignore_ascii_case(&change.to),
            })
    }
}

/// The kind the scenario's previous drill accepted, and which drill that was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Previous {
    pub drill_id: String,
    pub started_at: OffsetDateTime,
    pub kind: BackupKind,
}

/// One part of a backup's kind that differs from the previous drill's.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Change {
    what: KindPart,
    from: String,
    to: String,
    /// Whether it fails the drill unless the scenario says it was intended.
    alarming: bool,
    /// What it means, for the reader.
    meaning: &'static str,
}

impl Change {
    fn describe(&self) -> String {
        format!("{} {} → {} ({})", self.what.name(), self.from, self.to, self.meaning)
    }
}

/// What differs between the previous kind and this one; a part either does not know is not
/// compared.
fn changes(before: &BackupKind, now: &BackupKind) -> Vec<Change> {
    KindPart::ALL
        .into_iter()
        .filter_map(|what| {
            let (from, to) = (before.value(what)?, now.value(what)?);
            let (alarming, meaning) = judge_part(what, &from, &to)?;
            Some(Change { what, from, to, alarming, meaning })
        })
        .collect()
}

/// Whether a part's change from `from` to `to` fails the drill, and what it means; none when
/// it did not change.
fn judge_part(what: KindPart, from: &str, to: &str) -> Option<(bool, &'static str)> {
    if from == to {
        return None;
    }
    Some(match what {
        KindPart::Format => (true, "another tool or format writes it: is it the backup the scenario was written for?"),
        KindPart::Content => match to {
            "full" => (false, "it holds a schema and its data now: nothing lost"),
            "schema-only" => (true, "the backup no longer holds the data"),
            _ => (true, "the backup no longer holds the schema"),
        },
        KindPart::Database => (true, "a dump of another database"),
        KindPart::Major => match (from.parse::<u32>(), to.parse::<u32>()) {
            (Ok(from), Ok(to)) if to > from => (true, "an upgrade? a backup of a newer major than last time"),
            _ => (true, "an older major than last time: is the backup job reading a server left behind?"),
        },
        KindPart::Encryption => match (from, to) {
            (_, "none") => (true, "a backup that stopped being encrypted lies in the clear wherever its copies go"),
            ("none", _) => (false, "encrypted now: nothing lost"),
            _ => (false, "another envelope, still encrypted: nothing lost"),
        },
    })
}

/// A backup whose kind changed since the scenario's previous drill, in a way the scenario does
/// not say was intended.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the backup changed kind since drill {drill} ({date}): {} (hint: a change that was intended is said in the scenario: `[source] changed = [{{ what = \"{what}\", to = \"{to}\", reason = \"...\" }}]`)",
    changes.join("; ")
)]
pub(crate) struct KindChanged {
    pub drill: String,
    pub date: String,
    /// Each change not accepted, in words.
    pub changes: Vec<String>,
    /// The first of them, for the hint.
    pub what: String,
    pub to: String,
}

/// Compares the backup's kind with the one the scenario's previous drill accepted (none: the
/// first drill, nothing compared): `Ok` with what the verify summary adds (nothing when the kind
/// did not change), or the changes the scenario does not say were intended.
pub(crate) fn judge(
    previous: Option<&Previous>,
    now: &BackupKind,
    intended: &[IntendedChange],
) -> Result<String, KindChanged> {
    let Some(previous) = previous else { return Ok(String::new()) };
    let changes = changes(&previous.kind, now);
    if changes.is_empty() {
        return Ok(String::new());
    }
    let date = previous
        .started_at
        .to_offset(time::UtcOffset::UTC)
        .format(time::macros::format_description!("[year]-[month]-[day] [hour]:[minute] UTC"))
        .unwrap_or_default();
    let said = |change: &Change| intended.iter().find(|i| i.accepts(change));
    let refused: Vec<&Change> = changes.iter().filter(|c| c.alarming && said(c).is_none()).collect();
    if let Some(first) = refused.first() {
        return Err(KindChanged {
            drill: previous.drill_id.clone(),
            date,
            changes: refused.iter().map(|c| c.describe()).collect(),
            what: first.what.name().to_owned(),
            to: first.to.clone(),
        });
    }
    let told: Vec<String> = changes
        .iter()
        .map(|c| match said(c) {
            Some(intended) => {
                format!("{} {} → {}, as the scenario says ({})", c.what.name(), c.from, c.to, intended.reason)
            }
            None => c.describe(),
        })
        .collect();
    Ok(format!("; changed kind since drill {} ({date}): {}", previous.drill_id, told.join("; ")))
}

/// The kind of backup the newest drill in `past` (oldest first) accepted, with that drill.
pub(crate) fn previous_kind(past: &[HistoryEntry]) -> Option<Previous> {
    past.iter().rev().find_map(|entry| {
        Some(Previous {
            drill_id: entry.drill_id.clone(),
            started_at: entry.started_at,
            kind: entry.backup_kind.clone()?,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(format: &str, content: &str, database: &str, major: u32, encryption: Option<&str>) -> BackupKind {
        BackupKind {
            format: format.into(),
            content: Some(content.into()),
            database: Some(database.into()),
            major: Some(major),
            encryption: encryption.map(str::to_owned),
        }
    }

    fn previous(kind: BackupKind) -> Previous {
        Previous { drill_id: "d1".into(), started_at: time::macros::datetime!(2026-11-23 13:01 UTC), kind }
    }

    #[test]
    fn the_first_drill_and_the_same_kind_pass_silently() {
        let custom = kind("custom", "full", "books", 17, Some("age"));
        assert_eq!(judge(None, &custom, &[]), Ok(String::new()));
        assert_eq!(judge(Some(&previous(custom.clone())), &custom, &[]), Ok(String::new()));
        // What either side does not know is not compared.
        let unknown = BackupKind { content: None, database: None, ..custom.clone() };
        assert_eq!(judge(Some(&previous(custom)), &unknown, &[]), Ok(String::new()));
    }

    #[test]
    fn an_alarming_change_fails_naming_each() {
        let before = previous(kind("custom", "full", "books", 17, Some("age")));
        let now = kind("plain", "schema-only", "shop", 15, None);
        let error = judge(Some(&before), &now, &[]).unwrap_err();
        let text = error.to_string();
        assert!(
            text.starts_with(
                "the backup changed kind since drill d1 (2026-11-23 13:01 UTC): format custom → plain (another tool"
            ),
            "{text}"
        );
        for part in [
            "content full → schema-only (the backup no longer holds the data)",
            "database books → shop (a dump of another database)",
            "major 17 → 15 (an older major than last time",
            "encryption age → none (a backup that stopped being encrypted",
        ] {
            assert!(text.contains(part), "{part}: {text}");
        }
        assert!(text.contains("changed = [{ what = \"format\", to = \"plain\", reason = \"...\" }]"), "{text}");
        let data_only = judge(Some(&before), &kind("custom", "data-only", "books", 17, Some("age")), &[]);
        assert!(data_only.unwrap_err().to_string().contains("no longer holds the schema"));
        let upgraded = judge(Some(&before), &kind("custom", "full", "books", 18, Some("age")), &[]);
        assert!(upgraded.unwrap_err().to_string().contains("major 17 → 18 (an upgrade?"));
    }

    #[test]
    fn a_change_the_scenario_intended_passes_with_its_reason() {
        let before = previous(kind("custom", "full", "books", 16, None));
        let now = kind("custom", "full", "books", 17, None);
        let upgrade = |to: Option<&str>| IntendedChange {
            what: KindPart::Major,
            to: to.map(str::to_owned),
            reason: "upgraded on 2026-11-01".into(),
        };
        let said = judge(Some(&before), &now, &[upgrade(Some("17"))]).unwrap();
        assert_eq!(
            said,
            "; changed kind since drill d1 (2026-11-23 13:01 UTC): major 16 → 17, as the scenario says (upgraded on 2026-11-01)"
        );
        assert!(judge(Some(&before), &now, &[upgrade(None)]).is_ok(), "to any value");
        assert!(judge(Some(&before), &now, &[upgrade(Some("18"))]).is_err(), "only to the value it names");
        let format = IntendedChange { what: KindPart::Format, to: None, reason: "r".into() };
        assert!(judge(Some(&before), &now, &[format]).is_err(), "another part");
    }

    #[test]
    fn what_loses_nothing_is_said_and_passes() {
        let before = previous(kind("custom", "schema-only", "books", 17, None));
        let said = judge(Some(&before), &kind("custom", "full", "books", 17, Some("age")), &[]).unwrap();
        assert!(
            said.contains("content schema-only → full (it holds a schema and its data now: nothing lost)"),
            "{said}"
        );
        assert!(said.contains("encryption none → age (encrypted now: nothing lost)"), "{said}");
        let before = previous(kind("custom", "full", "books", 17, Some("age")));
        let said = judge(Some(&before), &kind("custom", "full", "books", 17, Some("openpgp")), &[]).unwrap();
        assert!(said.contains("encryption age → openpgp (another envelope"), "{said}");
    }

    #[test]
    fn parts_and_their_values_are_named() {
        assert_eq!(KindPart::parse("major"), Some(KindPart::Major));
        assert_eq!(KindPart::parse("version"), None);
        assert!(KindPart::Format.values().unwrap().contains(&"pg_dumpall"));
        assert_eq!(KindPart::Database.values(), None);
        let none = BackupKind { format: "plain".into(), ..BackupKind::default() };
        assert_eq!(none.value(KindPart::Encryption).as_deref(), Some("none"));
    }

    /// The next drill compares with the newest kind a verify accepted: not one it refused, nor a
    /// line written before kinds were kept.
    #[test]
    fn the_previous_kind_is_the_newest_verify_accepted() {
        use crate::outcome::PhaseStatus;
        use crate::outcome::history::tests::drilled;
        let accepted = drilled("a", "custom", PhaseStatus::Passed);
        let refused = drilled("b", "plain", PhaseStatus::Failed);
        let mut old = accepted.clone();
        old.backup_kind = None;
        let previous = previous_kind(&[accepted.clone(), refused.clone(), old.clone()]).unwrap();
        assert_eq!(previous.drill_id, accepted.drill_id);
        assert_eq!(previous.kind.format, "custom");
        assert_eq!(previous_kind(&[refused, old]), None);
    }
}
