//! PostgreSQL 17's incremental backups: a source with `summarize_wal` on, backed up by
//! `pg_basebackup` into a chain folder (a full backup in tar format with gzip, an incremental one
//! on it likewise, then two incremental ones on that: `incr2t` in tar format with zstd and
//! `incr2`, the newest, in plain format), rows of its own before each, then the rows around a target time,
//! every segment archived. A chain recovers to the target from its newest backup (members read
//! from the folder, combined by copying) or from the one the scenario names (all of them
//! unpacked by pgdrill, combined by cloning); a member missing, one of another cluster or one
//! unlike its manifest fails in verify, naming it.

use std::path::{Path, PathBuf};
use std::process::Command;

use pgdrill::outcome::{DrillVerdict, Phase, PhaseStatus};

use crate::source_server::{SourceServer, text, wait_archived, wait_for};
use crate::util::Scratch;

/// Rows written before each backup of the chain: (batch, rows).
const BATCHES: [(&str, i64); 3] = [("full", 30), ("incr1", 20), ("incr2", 10)];

struct ChainSource {
    server: SourceServer,
    target_time: String,
    before: i64,
}

impl ChainSource {
    fn chain(&self) -> PathBuf {
        self.server.dir.path().join("chain")
    }

    fn archive(&self) -> PathBuf {
        self.server.dir.path().join("archive")
    }

    fn make() -> Self {
        let image = pgdrill::scenario::project_image(17);
        let server = SourceServer::for_basebackup_with("chain", &image, &["chain", "other"], &["summarize_wal=on"]);
        let basebackup = |args: &[&str]| {
            let common = ["pg_basebackup", "--no-verify-checksums", "-U", "postgres", "-X", "stream", "-c", "fast"];
            server.exec(&[&common[..], args].concat());
        };
        let rows = |i: usize| {
            let (batch, n) = BATCHES[i];
            let sql = format!(
                "INSERT INTO public.ledger (id, batch) SELECT {} + g, '{batch}' FROM generate_series(1, {n}) g",
                100_000 * (i + 1)
            );
            server.psql(&sql).unwrap();
        };
        rows(0);
        basebackup(&["-D", "/chain/full", "-F", "t", "-z"]);
        rows(1);
        basebackup(&["-D", "/chain/incr1", "-F", "t", "-z", "--incremental=/chain/full/backup_manifest"]);
        rows(2);
        basebackup(&["-D", "/chain/incr2t", "-F", "t", "-Z", "zstd", "--incremental=/chain/incr1/backup_manifest"]);
        basebackup(&["-D", "/chain/incr2", "-F", "p", "--incremental=/chain/incr1/backup_manifest"]);
        let before = 40;
        let around = server.write_around_target(before, 25);
        wait_archived(&server.dir.path().join("archive"), &around.last_segment);
        ChainSource { server, target_time: around.target_time, before }
    }

    /// A full backup of another cluster (a fresh `initdb`, another database system) in
    /// `/other/foreign`.
    fn foreign_backup(&self) -> PathBuf {
        let name = &self.server.name;
        self.server.exec(&["initdb", "-D", "/tmp/other", "-A", "trust", "-U", "postgres"]);
        let started = Command::new("docker")
            .args(["exec", "-d", name, "postgres", "-D", "/tmp/other", "-c", "port=5433"])
            .args(["-c", "listen_addresses=", "-c", "unix_socket_directories=/tmp"])
            .output()
            .unwrap();
        assert!(started.status.success(), "{}", text(&started));
        wait_for("the other cluster to start", || {
            Command::new("docker")
                .args(["exec", name, "pg_isready", "-h", "/tmp", "-p", "5433"])
                .status()
                .is_ok_and(|s| s.success())
        });
        self.server.exec(&[
            "pg_basebackup",
            "-h",
            "/tmp",
            "-p",
            "5433",
            "-U",
            "postgres",
            "-D",
            "/other/foreign",
            "-c",
            "fast",
        ]);
        self.server.dir.path().join("other/foreign")
    }
}

/// A scenario recovering the chain in `chain` to the target time (`extra` in `[source]`), with
/// every batch's rows checked.
fn scenario(scratch: &Scratch, source: &ChainSource, chain: &Path, extra: &str) -> PathBuf {
    let mut checks = String::new();
    for (batch, rows) in BATCHES.iter().copied().chain([("before", source.before), ("after", 0)]) {
        checks.push_str(&format!(
            "[[checks.sql]]\nname = \"{batch}\"\nquery = \"SELECT count(*) FROM public.ledger WHERE batch = '{batch}'\"\nexpect = {rows}\n\n"
        ));
    }
    scratch.scenario(
        &format!("chain-{}.toml", crate::util::rand_suffix()),
        &format!(
            "[source]\npath = \"{}\"\nwal_archive = \"{}\"\n{extra}\n\n[target]\ndatabase = \"books\"\n\n[recovery]\ntarget_time = \"{}\"\n\n{checks}",
            chain.display(),
            source.archive().display(),
            source.target_time,
        ),
    )
}

/// A copy of the chain folder without the members `drop` (its files still the source's user's).
fn copy_chain(scratch: &Scratch, source: &ChainSource, name: &str, drop: &[&str]) -> PathBuf {
    let to = scratch.path(name);
    let out = Command::new("cp").arg("-a").arg(source.chain()).arg(&to).output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    for member in drop {
        #[expect(clippy::disallowed_methods, reason = "a test, not async: a backup's folder")]
        std::fs::remove_dir_all(to.join(member)).unwrap();
    }
    to
}

#[test]
fn an_incremental_chain_recovers_to_a_target_and_a_missing_foreign_or_damaged_member_fails_in_verify() {
    let source = ChainSource::make();
    let scratch = Scratch::new();

    // The newest backup's chain: full, incr1, incr2 (plain, read from the folder: copied); kept
    // as a snapshot.
    let store = vec![("PGDRILL_SNAPSHOTS".to_owned(), scratch.path("snapshots").display().to_string())];
    let newest = scenario(&scratch, &source, &source.chain(), "");
    let drill = scratch.drill_env(&newest, &["--snapshot".into()], &store);
    assert_eq!(drill.code, Some(0), "{drill:?}");
    let verify = drill.phase_summary(Phase::Verify);
    assert!(verify.contains("chain of 3 backups: full `full` (base backup (tar, `base.tar.gz`)) then incremental `incr1` (base backup (tar, `base.tar.gz`)), `incr2` (base backup (plain)) (not on this chain: `incr2t`)"), "{verify}");
    assert!(
        verify.contains("pg_verifybackup: each of its 3 backups matches its own manifest; pg_combinebackup;"),
        "{verify}"
    );
    assert!(drill.phase_summary(Phase::Restore).starts_with("recovered to recovery_target_time "), "{drill:?}");
    drill.assert_reports_and_no_leftovers();

    // The one named: every member unpacked here, combined by cloning; another chain than the
    // snapshot's, so recovered.
    let named = scenario(&scratch, &source, &source.chain(), "set = \"incr2t\"");
    let drill = scratch.drill_env(&named, &["--reuse".into()], &store);
    assert_eq!(drill.code, Some(0), "{drill:?}");
    assert!(drill.record().clone_of.is_none(), "another set: {drill:?}");
    let verify = drill.phase_summary(Phase::Verify);
    assert!(verify.contains("`incr2t` (base backup (tar, `base.tar.zst`)) (not on this chain: `incr2`)"), "{verify}");
    assert!(verify.contains("pg_combinebackup --copy-file-range"), "{verify}");

    // The newest again: a clone of the snapshot.
    let clone = scratch.drill_env(&newest, &["--reuse".into()], &store);
    assert_eq!(clone.code, Some(0), "{clone:?}");
    assert!(clone.record().clone_of.is_some(), "{clone:?}");

    // On the pod: pg_verifybackup and pg_combinebackup in pgdrill's container, the combined
    // data directory recovered by the server beside it. (After the clone: the pod's run opens
    // the scratch folder to its containers' user, which changes the snapshot's modes, and a
    // snapshot whose files changed is not used.)
    let drill = scratch.pod_drill_passes(&newest, source.server.dir.path());
    let verify = drill.phase_summary(Phase::Verify);
    assert!(verify.contains("pg_verifybackup: each of its 3 backups matches its own manifest;"), "{verify}");
    assert!(drill.phase_summary(Phase::Restore).starts_with("recovered to recovery_target_time "), "{drill:?}");

    // A member missing: the chain is broken where it was.
    let broken = copy_chain(&scratch, &source, "without-incr1", &["incr1"]);
    let drill = scratch.drill(&scenario(&scratch, &source, &broken, ""));
    drill.assert_failed_cleanly();
    assert_eq!(drill.phase(Phase::Verify), PhaseStatus::Failed, "{drill:?}");
    let error = drill.phase_error(Phase::Verify);
    assert!(error.contains("`incr2` is an incremental backup taken from the backup that started at "), "{error}");
    assert!(error.contains("and no backup in "), "{error}");
    assert!(error.contains("the chain is broken"), "{error}");
    assert_eq!(drill.phase(Phase::Provision), PhaseStatus::Skipped, "no server started: {drill:?}");

    // A backup of another cluster among the members.
    let foreign = source.foreign_backup();
    let mixed = copy_chain(&scratch, &source, "with-foreign", &[]);
    let out = Command::new("cp").arg("-a").arg(&foreign).arg(mixed.join("foreign")).output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let drill = scratch.drill(&scenario(&scratch, &source, &mixed, ""));
    drill.assert_failed_cleanly();
    let error = drill.phase_error(Phase::Verify);
    assert!(error.contains("`foreign` is a backup of database system "), "{error}");
    assert!(error.contains("a chain's folder holds one cluster's backups"), "{error}");

    // A member unlike its own manifest: pg_verifybackup names it before it is combined.
    let damaged = copy_chain(&scratch, &source, "damaged", &[]);
    let version = damaged.join("incr2/PG_VERSION");
    std::fs::write(&version, "17\n\n").unwrap();
    let drill = scratch.drill(&scenario(&scratch, &source, &damaged, ""));
    drill.assert_failed_cleanly();
    let error = drill.phase_error(Phase::Verify);
    assert!(error.contains("pg_verifybackup: `incr2` of the chain does not match its manifest"), "{error}");
    assert!(error.contains("PG_VERSION"), "{error}");

    // A chain as pg_basebackup leaves it when root took it (folders 0700, files 0600, owned by
    // root): the toolbox reads it with read access alone, the chain is not changed in place.
    let private = scratch.path("root-only");
    let out = Command::new("cp").arg("-r").arg(source.chain()).arg(&private).output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    if !crate::util::as_root_keeps_it(&private) {
        return;
    }
    let before = modes(&private);
    let drill = scratch.drill(&scenario(&scratch, &source, &private, ""));
    assert_eq!(drill.record().verdict, DrillVerdict::Pass, "{drill:?}");
    drill.assert_reports_and_no_leftovers();
    assert_eq!(modes(&private), before, "the chain is left as it was");
}

/// Each file of `dir` with its owner and mode.
fn modes(dir: &Path) -> Vec<(PathBuf, u32, u32)> {
    use std::os::unix::fs::MetadataExt;
    let mut out = Vec::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(p) = pending.pop() {
        let meta = std::fs::symlink_metadata(&p).unwrap();
        if meta.is_dir() {
            pending.extend(std::fs::read_dir(&p).unwrap().flatten().map(|e| e.path()));
        }
        out.push((p, meta.uid(), meta.mode()));
    }
    out.sort();
    out
}
