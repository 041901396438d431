//! Restore once, drill many: `run --snapshot` keeps a passing drill's restore as a snapshot,
//! `run --reuse` clones it instead of restoring (and says whose restore it is), a clone's
//! writes reach neither the snapshot nor the next clone, a snapshot is served for its own
//! restore only and never once its files changed, and a failing drill keeps none.
//!
//! Each test has a store of its own (`PGDRILL_SNAPSHOTS`).

use std::path::{Path, PathBuf};
use std::process::Command;

use pgdrill::outcome::{DrillVerdict, Phase, PhaseStatus};

use crate::util::{Drill, Scratch, root};

struct Store {
    scratch: Scratch,
    dir: PathBuf,
}

impl Store {
    fn new() -> Store {
        let scratch = Scratch::new();
        let dir = scratch.path("snapshots");
        Store { scratch, dir }
    }

    fn env(&self) -> Vec<(String, String)> {
        vec![("PGDRILL_SNAPSHOTS".into(), self.dir.display().to_string())]
    }

    /// PLUR's backup with its `users` row count (40 passes), and `extra` TOML.
    fn scenario(&self, name: &str, users: u32, extra: &str) -> PathBuf {
        self.scratch.scenario(
            &format!("{name}.toml"),
            &format!(
                "name = \"{name}\"\n[source]\npath = \"{{fixtures}}/plur.sql.gz\"\n[restore]\nglobals = \"{{fixtures}}/plur.globals.sql\"\n{extra}\n[checks.row_counts]\ntables = {{ \"public.users\" = {users} }}\n"
            ),
        )
    }

    fn drill(&self, scenario: &Path, args: &[&str]) -> Drill {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        self.scratch.drill_env(scenario, &args, &self.env())
    }

    fn snapshots(&self, args: &[&str]) -> (bool, String) {
        let output = Command::new(env!("CARGO_BIN_EXE_pgdrill"))
            .arg("snapshots")
            .args(args)
            .envs(self.env())
            .current_dir(root())
            .output()
            .expect("run pgdrill snapshots");
        let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
        (output.status.success(), text)
    }

    /// A folder of PLUR's pending migrations and `013-*.sql` holding `sql`.
    fn migrations(&self, name: &str, sql: &str) -> PathBuf {
        let dir = self.scratch.path(name);
        std::fs::create_dir_all(&dir).unwrap();
        for entry in std::fs::read_dir(root().join("fixtures/plur/pending-migrations")).unwrap().flatten() {
            std::fs::copy(entry.path(), dir.join(entry.file_name())).unwrap();
        }
        std::fs::write(dir.join("013-this-drill.sql"), sql).unwrap();
        dir
    }

    /// The snapshots' folders in the store.
    fn ids(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else { return Vec::new() };
        entries
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| !n.starts_with('.'))
            .collect()
    }
}

fn passed(drill: &Drill) {
    assert_eq!(drill.code, Some(0), "{drill:?}");
    assert_eq!(drill.record().verdict, DrillVerdict::Pass, "{drill:?}");
    drill.assert_reports_and_no_leftovers();
}

#[test]
fn a_kept_snapshot_is_cloned_instead_of_restored_and_a_clones_writes_stay_its_own() {
    let store = Store::new();
    let plain = store.scenario("plur", 40, "");

    // A failing drill keeps nothing.
    let wrong = store.scenario("plur-wrong", 41, "");
    let failed = store.drill(&wrong, &["--snapshot"]);
    failed.assert_failed_cleanly();
    assert!(failed.stdout.contains("no snapshot kept: the drill did not pass"), "{failed:?}");
    assert!(store.ids().is_empty(), "{:?}", store.ids());

    // The first drill restores and keeps its restore.
    let first = store.drill(&plain, &["--snapshot", "--reuse"]);
    passed(&first);
    assert_eq!(first.phase(Phase::Restore), PhaseStatus::Passed, "{first:?}");
    assert_eq!(first.phase(Phase::Snapshot), PhaseStatus::Passed, "{first:?}");
    let summary = first.phase_summary(Phase::Snapshot);
    // The project's images initialise their clusters with data checksums: the copy is read whole.
    assert!(summary.contains("every checksum matches"), "{summary}");
    assert!(first.record().clone_of.is_none());
    let ids = store.ids();
    assert_eq!(ids.len(), 1, "{first:?}");
    assert!(first.stdout.contains(&format!("kept snapshot {}", ids[0])), "{first:?}");
    let kept = store.dir.join(&ids[0]);
    for proof in ["drill.json", "report.md", "snapshot.json"] {
        assert!(kept.join(proof).is_file(), "the snapshot carries {proof}");
    }
    let (ok, listed) = store.snapshots(&["list"]);
    assert!(ok && listed.contains(&ids[0]) && listed.contains("plur"), "{listed}");

    // Migrations that write, on a clone.
    let migrations = store.migrations(
        "migrations",
        "UPDATE public.users SET email = 'changed-' || email;\nCREATE TABLE public.written_by_a_clone (x int);\n",
    );
    let migrating = store.scenario(
        "plur-migrating",
        40,
        &format!(
            "[migrate]\ndir = \"{}\"\njournal = \"public.schema_migrations\"\n\
             record = \"INSERT INTO public.schema_migrations (version, name, applied_at) VALUES ({{{{version}}}}, {{{{name}}}}, now())\"\n\
             [objectives]\nrto = \"1h\"\n\
             [[checks.sql]]\nname = \"clone_wrote\"\nquery = \"SELECT count(*) FROM public.users WHERE email LIKE 'changed-%'\"\nexpect = 40\n",
            migrations.display()
        ),
    );
    let clone = store.drill(&migrating, &["--reuse"]);
    passed(&clone);
    let of = clone.record().clone_of.clone().unwrap_or_else(|| panic!("not a clone\n{clone:?}"));
    assert_eq!(of.drill_id, first.record().drill_id);
    assert_eq!(of.snapshot, ids[0]);
    assert_eq!(Some(of.backup_sha256.as_str()), first.record().backup.as_ref().map(|b| b.sha256.as_str()));
    for phase in [Phase::Preflight, Phase::Restore] {
        assert_eq!(clone.phase(phase), PhaseStatus::Skipped, "{clone:?}");
        assert!(clone.phase_error(phase).contains(&format!("a clone of snapshot {}", ids[0])), "{clone:?}");
    }
    assert_eq!(clone.phase(Phase::Migrate), PhaseStatus::Passed, "{clone:?}");
    let verify = clone.phase_summary(Phase::Verify);
    assert!(verify.contains("this very file") && verify.contains("read whole before"), "not read again: {verify}");
    assert!(clone.record().recovery.is_none(), "a clone measures no recovery");
    let layer = clone.record().target.as_ref().and_then(|t| t.data_layer.clone()).unwrap_or_default();
    assert!(layer.contains("overlay") || layer.contains("reflinks"), "{layer}");
    let report = clone.report("report.md");
    assert!(report.contains("## A clone, not a restore"), "{report}");
    assert!(report.contains(&first.record().drill_id), "the report names the drill that restored it\n{report}");
    assert!(!clone.record().checks.iter().any(|c| c.id.contains("rto")), "the RTO is the restoring drill's");
    assert!(report.contains("not judged here: the database is a clone"), "{report}");
    let written = of.layer_bytes.unwrap_or_default();
    assert!(written > 0, "the clone's own layer holds what it wrote\n{clone:?}");
    let snapshot_size = crate::util::files_under(&store.dir.join(&ids[0]).join("data"))
        .iter()
        .map(|f| std::fs::metadata(f).map(|m| m.len()).unwrap_or_default())
        .sum::<u64>();
    assert!(written < snapshot_size, "a clone takes less than a copy: {written} of {snapshot_size}");

    // The next clone sees none of that: the snapshot is as it was made.
    let again = store.drill(&plain, &["--reuse"]);
    passed(&again);
    assert_eq!(again.record().clone_of.as_ref().map(|c| c.snapshot.clone()), Some(ids[0].clone()), "{again:?}");
    let unchanged = store.scratch.scenario(
        "plur-unchanged.toml",
        "[source]\npath = \"{fixtures}/plur.sql.gz\"\n[restore]\nglobals = \"{fixtures}/plur.globals.sql\"\n\
         [[checks.sql]]\nname = \"no_clone_writes\"\nquery = \"SELECT count(*) FROM public.users WHERE email LIKE 'changed-%'\"\nexpect = 0\n\
         [[checks.sql]]\nname = \"no_clone_table\"\nquery = \"SELECT count(*) FROM pg_catalog.pg_class WHERE relname = 'written_by_a_clone'\"\nexpect = 0\n",
    );
    let clean = store.drill(&unchanged, &["--reuse"]);
    passed(&clean);
    assert!(clean.record().clone_of.is_some(), "{clean:?}");

    // Another restore (another database name) is not served this snapshot.
    let elsewhere = store.scenario("plur-elsewhere", 40, "[target]\ndatabase = \"elsewhere\"");
    let restored = store.drill(&elsewhere, &["--reuse"]);
    passed(&restored);
    assert!(restored.record().clone_of.is_none(), "{restored:?}");
    assert_eq!(restored.phase(Phase::Restore), PhaseStatus::Passed);

    // A snapshot written to since it was made is not served: the drill restores.
    let file = std::fs::read_dir(kept.join("data/global"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.file_name().is_some_and(|n| n == "pg_filenode.map"))
        .expect("global/pg_filenode.map");
    let bytes = std::fs::read(&file).unwrap();
    std::fs::write(&file, &bytes).unwrap();
    let tampered = store.drill(&plain, &["--reuse"]);
    passed(&tampered);
    assert!(tampered.record().clone_of.is_none(), "{tampered:?}");
    assert!(tampered.stderr.contains("changed since drill"), "{tampered:?}");

    let (ok, removed) = store.snapshots(&["remove", &ids[0]]);
    assert!(ok && removed.contains(&format!("removed snapshot {}", ids[0])), "{removed}");
    assert!(store.ids().is_empty());
}

/// Twenty gates at once on one machine, each on its own clone of one snapshot (their scenarios
/// ask for it: `[snapshot] reuse = true`): each writes a
/// table of its own and sees no other's; afterwards the snapshot is as it was made (a last
/// clone sees none of their tables) and no clone's volume or folder is left.
#[test]
fn twenty_clones_side_by_side_see_only_their_own_writes() {
    const CLONES: usize = 20;
    let store = Store::new();
    let plain = store.scenario("plur", 40, "");
    let first = store.drill(&plain, &["--snapshot"]);
    passed(&first);
    let fingerprint_before = snapshot_files(&store);

    let scenarios: Vec<PathBuf> = (0..CLONES)
        .map(|i| {
            let migrations = store.migrations(
                &format!("migrations-{i}"),
                &format!("CREATE TABLE public.clone_{i} (x int);\nINSERT INTO public.clone_{i} VALUES ({i});\nUPDATE public.users SET display_name = 'clone {i}' WHERE id % {CLONES} = {i};\n"),
            );
            store.scenario(
                &format!("gate-{i}"),
                40,
                &format!(
                    "[snapshot]\nreuse = true\n[migrate]\ndir = \"{}\"\njournal = \"public.schema_migrations\"\n\
                     record = \"INSERT INTO public.schema_migrations (version, name, applied_at) VALUES ({{{{version}}}}, {{{{name}}}}, now())\"\n\
                     [[checks.sql]]\nname = \"only_mine\"\nquery = \"SELECT string_agg(relname, ',') FROM pg_catalog.pg_class WHERE relname LIKE 'clone\\\\_%' AND relkind = 'r'\"\nexpect = \"clone_{i}\"\n\
                     [[checks.sql]]\nname = \"my_updates_only\"\nquery = \"SELECT string_agg(DISTINCT display_name, ',') FROM public.users WHERE display_name LIKE 'clone %'\"\nexpect = \"clone {i}\"\n",
                    migrations.display(),
                ),
            )
        })
        .collect();
    let drills: Vec<Drill> = std::thread::scope(|scope| {
        let running: Vec<_> = scenarios.iter().map(|scenario| scope.spawn(|| store.drill(scenario, &[]))).collect();
        running.into_iter().map(|d| d.join().expect("a drill thread")).collect()
    });
    for drill in &drills {
        passed(drill);
        assert!(drill.record().clone_of.is_some(), "{drill:?}");
    }
    assert_eq!(snapshot_files(&store), fingerprint_before, "no clone wrote into the snapshot");
    let unchanged = store.scratch.scenario(
        "after.toml",
        "[source]\npath = \"{fixtures}/plur.sql.gz\"\n[restore]\nglobals = \"{fixtures}/plur.globals.sql\"\n\
         [[checks.sql]]\nname = \"no_clone_tables\"\nquery = \"SELECT count(*) FROM pg_catalog.pg_class WHERE relname LIKE 'clone\\\\_%'\"\nexpect = 0\n\
         [[checks.sql]]\nname = \"no_clone_updates\"\nquery = \"SELECT count(*) FROM public.users WHERE display_name LIKE 'clone %'\"\nexpect = 0\n",
    );
    let after = store.drill(&unchanged, &["--reuse"]);
    passed(&after);
    assert!(after.record().clone_of.is_some(), "{after:?}");
    let volumes =
        Command::new("docker").args(["volume", "ls", "-q", "--filter", "name=pgdrill-data-"]).output().unwrap();
    let ids: Vec<String> = drills.iter().map(|d| d.record().drill_id.chars().take(12).collect()).collect();
    let left: Vec<&str> = String::from_utf8_lossy(&volumes.stdout)
        .lines()
        .filter(|v| ids.iter().any(|id| v.ends_with(id.as_str())))
        .map(|_| "a data volume")
        .collect();
    assert!(left.is_empty(), "data volumes left: {left:?}");
}

/// Each file of the store's one snapshot with its size and modification time.
fn snapshot_files(store: &Store) -> Vec<(PathBuf, u64, std::time::SystemTime)> {
    let ids = store.ids();
    assert_eq!(ids.len(), 1, "{ids:?}");
    let mut files: Vec<_> = crate::util::files_under(&store.dir.join(&ids[0]).join("data"))
        .into_iter()
        .map(|f| {
            let meta = std::fs::metadata(&f).unwrap();
            (f, meta.len(), meta.modified().unwrap())
        })
        .collect();
    files.sort();
    files
}

/// An XFS file system with reflinks in a file, loop-mounted for one test; unmounted on drop.
struct Xfs {
    mount: PathBuf,
}

impl Xfs {
    fn new(scratch: &Scratch) -> Xfs {
        let image = scratch.path("xfs.img");
        let mount = scratch.path("xfs");
        std::fs::create_dir_all(&mount).unwrap();
        let sh = |script: &str| {
            let out = Command::new("sh").arg("-c").arg(script).output().unwrap();
            assert!(
                out.status.success(),
                "{script}: {} (this test needs root, loop devices and xfsprogs, which .ci/run installs)",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        sh(&format!(
            "truncate -s 2G '{0}' && mkfs.xfs -q -m reflink=1 '{0}' && mount -o loop '{0}' '{1}' && mkdir -m 1777 '{1}/tmp'",
            image.display(),
            mount.display()
        ));
        Xfs { mount }
    }
}

impl Drop for Xfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.mount).status();
    }
}

/// Where the store's file system shares blocks (XFS with reflinks) and the targets' private
/// folders are on it (TMPDIR), a clone is a reflinked copy: it takes disk for the blocks it
/// writes, not for the tables it reads.
#[test]
fn a_clone_where_the_file_system_shares_blocks_takes_disk_for_its_writes_only() {
    let store = Store::new();
    let xfs = Xfs::new(&store.scratch);
    let env = vec![
        ("PGDRILL_SNAPSHOTS".to_owned(), xfs.mount.join("snapshots").display().to_string()),
        ("TMPDIR".to_owned(), xfs.mount.join("tmp").display().to_string()),
    ];
    let plain = store.scenario("plur", 40, "");
    let drill = |args: &[&str]| {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        store.scratch.drill_env(&plain, &args, &env)
    };
    let first = drill(&["--snapshot"]);
    passed(&first);
    let clone = drill(&["--reuse"]);
    passed(&clone);
    let layer = clone.record().target.as_ref().and_then(|t| t.data_layer.clone()).unwrap_or_default();
    assert!(layer.starts_with("reflinks"), "{layer}\n{clone:?}");
    let snapshot: u64 = crate::util::files_under(&xfs.mount.join("snapshots"))
        .iter()
        .map(|f| std::fs::metadata(f).map(|m| m.len()).unwrap_or_default())
        .sum();
    let written = clone.record().clone_of.as_ref().and_then(|c| c.layer_bytes).expect("measured");
    // Every table was read by the checks; only what the server wrote (its WAL, hint bits) is new.
    assert!(written * 10 < snapshot, "the clone took {written} bytes of a {snapshot}-byte snapshot\n{clone:?}");
    let left: Vec<_> = std::fs::read_dir(xfs.mount.join("tmp")).unwrap().flatten().map(|e| e.path()).collect();
    assert!(left.is_empty(), "the clone's folder is removed: {left:?}");
}

/// The `checksums` check stops a clone's server and reads its data with pg_checksums, through
/// the clone's overlay, as it does a restore's (PostgreSQL 18's clusters have data checksums).
#[test]
fn pg_checksums_reads_a_clone_as_it_reads_a_restore() {
    let store = Store::new();
    let scenario = store.scenario("plur-18", 40, "[target]\nversion = 18\n[checks.checksums]");
    let first = store.drill(&scenario, &["--snapshot"]);
    passed(&first);
    assert!(first.phase_summary(Phase::Snapshot).contains("every checksum matches"), "{first:?}");
    let clone = store.drill(&scenario, &["--reuse"]);
    passed(&clone);
    assert!(clone.record().clone_of.is_some(), "{clone:?}");
    let checksums = clone.record().checks.iter().find(|c| c.kind.as_str() == "checksums").expect("the checksums check");
    assert!(checksums.actual.contains("no bad checksum"), "{checksums:?}");
}
