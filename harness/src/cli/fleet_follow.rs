//! `report fleet --follow-state DIR`: the followers whose proof lag the fleet view shows beside
//! each database's last drill. A follower's state is not in its reports: `follow.prom` is
//! rewritten each second where the follower runs, and a report is written once, when it stops.
//! So the view reads the state folders themselves, named on the command line: a follower's
//! (`--state`), or the folder of a fleet of them (the systemd unit keeps each in
//! `/var/lib/pgdrill/follow/<name>`: give `/var/lib/pgdrill/follow`). Each is read with the
//! follower's own reader (`follow::status`), and handed to the view as figures.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use time::OffsetDateTime;

use super::Exit;
use crate::follow::status;
use crate::report::fleet_view::follower::{Bounds, Follower, Said};

/// What followers are held to when the command line says nothing: the follower alerts' own
/// bounds (`PgdrillFollowProofLag`, `PgdrillFollowSilent`), so the page and the alerts agree.
pub(super) const BOUNDS: Bounds = Bounds { max_lag: Duration::from_secs(120), max_age: Duration::from_secs(120) };

/// The followers `report fleet` reads.
#[derive(Debug, clap::Args)]
pub(crate) struct FollowInput {
    /// Show the followers whose state is in DIR beside their databases' drills: a follower's
    /// state folder (its `--state`, holding a follow.prom or a ledger.jsonl), or a folder of
    /// them (each subfolder). Repeat for more. A follower is matched to its database by the
    /// scenario its follow.prom names (else its folder's name).
    #[arg(long, value_name = "DIR")]
    follow_state: Vec<PathBuf>,
    /// A follower whose proof lag is over this is behind.
    #[arg(long, value_name = "DURATION", default_value = "2m", value_parser = humantime::parse_duration)]
    follow_max_lag: Duration,
    /// A follower whose last look at its archive is older than this is not following (its
    /// proof lag unknown).
    #[arg(long, value_name = "DURATION", default_value = "2m", value_parser = humantime::parse_duration)]
    follow_max_age: Duration,
}

impl FollowInput {
    /// The followers, as of `now` (none when no --follow-state was given); a folder that is not
    /// there is unusable input (exit 2).
    pub(super) fn read(&self, now: Option<OffsetDateTime>) -> Result<Option<(Vec<Follower>, Bounds)>, Exit> {
        if self.follow_state.is_empty() {
            return Ok(None);
        }
        let now = now.map_or_else(SystemTime::now, SystemTime::from);
        let mut followers = Vec::new();
        for dir in &self.follow_state {
            let folders = state_folders(dir).map_err(|e| {
                eprintln!("error: cannot read the follower's state folder `{}` (--follow-state): {e}", dir.display());
                Exit::Usage
            })?;
            followers.extend(folders.iter().map(|folder| follower(folder, now)));
        }
        Ok(Some((followers, Bounds { max_lag: self.follow_max_lag, max_age: self.follow_max_age })))
    }
}

/// Whether `dir` is a follower's state folder: it holds what a follower writes.
fn is_state(dir: &Path) -> bool {
    dir.join(crate::follow::status::FOLLOW_PROM).is_file() || dir.join(crate::follow::ledger::NAME).is_file()
}

/// The state folders `dir` names: itself when it is one; else each of its subfolders, by name
/// (hidden ones aside), whether or not a follower wrote there yet: a follower's folder made for
/// it (systemd's `StateDirectory=`) where nothing was written shows as not following (absence
/// is a failure), not as nothing; else itself still, for the same reason.
pub(super) fn state_folders(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    if is_state(dir) {
        return Ok(vec![dir.to_owned()]);
    }
    let hidden = |p: &Path| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.'));
    let mut found: Vec<PathBuf> =
        std::fs::read_dir(dir)?.filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| p.is_dir() && !hidden(p)).collect();
    found.sort();
    if found.is_empty() {
        found.push(dir.to_owned());
    }
    Ok(found)
}

/// The follower whose state is in `dir`, as of `now`.
fn follower(dir: &Path, now: SystemTime) -> Follower {
    let folder_name =
        dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| dir.display().to_string());
    let (scenario, said) = match status::read(dir, now) {
        Ok(s) => {
            let scenario = if s.scenario.is_empty() { folder_name } else { s.scenario };
            let said = Said {
                proof_lag: s.proof_lag,
                look_age: s.look_age,
                faults: s.faults,
                ledger_segments: s.ledger_segments,
            };
            (scenario, Ok(said))
        }
        Err(e) => (folder_name, Err(crate::error::error_chain(&e))),
    };
    let last = match status::last_proven(dir) {
        Ok(last) => last.map(|p| (p.segment, p.replayed_at, p.lsn)),
        Err(_) => None,
    };
    Follower { state: dir.display().to_string(), scenario, said, last }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folder_of_followers_is_each_of_its_subfolders_and_an_empty_one_is_itself() {
        let root = tempfile::tempdir().unwrap();
        for name in ["books", "orders"] {
            std::fs::create_dir(root.path().join(name)).unwrap();
        }
        std::fs::write(root.path().join("books").join(crate::follow::ledger::NAME), "").unwrap();
        std::fs::write(root.path().join("orders").join(status::FOLLOW_PROM), "").unwrap();
        // Made for a follower that has not written yet; a hidden folder is no follower's.
        std::fs::create_dir(root.path().join("billing")).unwrap();
        std::fs::create_dir(root.path().join(".cache")).unwrap();
        let found = state_folders(root.path()).unwrap();
        let names = ["billing", "books", "orders"].map(|n| root.path().join(n));
        assert_eq!(found, names);
        assert_eq!(state_folders(&root.path().join("books")).unwrap(), [root.path().join("books")]);
        assert_eq!(state_folders(&root.path().join("billing")).unwrap(), [root.path().join("billing")]);
        assert!(state_folders(&root.path().join("gone")).is_err());
        // A follower that wrote only its ledger: named by its folder, saying why it says nothing.
        let books = follower(&root.path().join("books"), SystemTime::now());
        assert_eq!(books.scenario, "books");
        let why = books.said.unwrap_err();
        assert!(why.starts_with("no follow.prom in `") && why.contains("no follower has looked"), "{why}");
    }
}
