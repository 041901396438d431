//! Helpers for end-to-end drills: a scratch folder per test, backups derived from the bundled
//! fixture, running the `pgdrill` binary, and reading what it left behind.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use pgdrill::outcome::{DrillRecord, Phase, PhaseStatus};

/// The workspace root.
pub(crate) fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root").to_owned()
}

/// A bundled fixture backup.
pub(crate) fn fixture(name: &str) -> PathBuf {
    root().join("fixtures/backups").join(name)
}

/// The decompressed text of a gzipped fixture.
pub(crate) fn fixture_text(name: &str) -> String {
    let mut text = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(fixture(name)).expect("fixture exists"))
        .read_to_string(&mut text)
        .expect("fixture decompresses");
    text
}

pub(crate) fn gzip(text: &str) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(text.as_bytes()).expect("gzip");
    encoder.finish().expect("gzip")
}

/// The sandboxes: a container, and local binaries in bubblewrap.
pub(crate) const CONTAINER: &str = "[target]\n";
pub(crate) const LOCAL: &str = "[target]\nkind = \"local\"\nbin_dir = \"/usr/lib/postgresql/15/bin\"\n";
/// A container target's scenario drilled on the pod target instead, in the pod's shape under
/// Docker (`ci/pod/drill`: pgdrill's image as two containers, `run --target pod`).
pub(crate) const POD: &str = "[target]\n# drilled on the pod\n";

/// A plain dump as pg_dump 15 writes it around `body` (so that the PostgreSQL 15 local binaries
/// and the 17 container both take it): for the corpora of hostile and lying backups.
pub(crate) fn pg15_dump(body: &str) -> String {
    format!(
        "--\n-- PostgreSQL database dump\n--\n\n-- Dumped from database version 15.8\n-- Dumped by pg_dump version 15.8\n\n\
         SET statement_timeout = 0;\nSET client_encoding = 'UTF8';\nSET standard_conforming_strings = on;\n\
         SELECT pg_catalog.set_config('search_path', '', false);\nSET check_function_bodies = false;\n\
         SET client_min_messages = warning;\nSET row_security = off;\n\n{body}\n\n\
         --\n-- PostgreSQL database dump complete\n--\n\n"
    )
}

/// A scratch folder for one test: backups and scenarios written into it, reports under it.
pub(crate) struct Scratch {
    pub dir: tempfile::TempDir,
}

impl Scratch {
    pub(crate) fn new() -> Self {
        Scratch { dir: tempfile::Builder::new().prefix("pgdrill-test-").tempdir().expect("temp dir") }
    }

    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes a file, making the folders its name leads through.
    pub(crate) fn write(&self, name: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
        let path = self.path(name);
        std::fs::create_dir_all(path.parent().expect("a file has a folder")).expect("make scratch folder");
        std::fs::write(&path, bytes).expect("write scratch file");
        path
    }

    /// Writes a scenario; `{fixtures}` in it stands for the bundled backups folder.
    pub(crate) fn scenario(&self, name: &str, text: &str) -> PathBuf {
        let text = text.replace("{fixtures}", &root().join("fixtures/backups").display().to_string());
        self.write(name, text)
    }

    /// Runs `pgdrill run` on a scenario, writing reports into this scratch folder.
    pub(crate) fn drill(&self, scenario: &Path) -> Drill {
        self.drill_with(scenario, &[])
    }

    /// Runs `pgdrill run` on a scenario with more arguments.
    pub(crate) fn drill_with(&self, scenario: &Path, args: &[String]) -> Drill {
        self.drill_env(scenario, args, &[])
    }

    /// `args`, with the scratch folder's one history for every drill in it (`--out` alone would
    /// keep each drill's in its own folder) unless they name one.
    fn shared_history(&self, args: &[String]) -> Vec<String> {
        let mut args = args.to_vec();
        if !args.iter().any(|a| a == "--history") {
            args.extend(["--history".to_owned(), self.path("history.jsonl").display().to_string()]);
        }
        args
    }

    /// Runs `pgdrill run` on a scenario with more arguments and environment variables; the
    /// drills of one scratch folder share a history ([`Scratch::shared_history`]).
    pub(crate) fn drill_env(&self, scenario: &Path, args: &[String], env: &[(String, String)]) -> Drill {
        let args = &self.shared_history(args)[..];
        if std::fs::read_to_string(scenario).is_ok_and(|text| text.contains(POD)) {
            return self.pod_drill(scenario, args, env);
        }
        let out = self.path(&format!("reports-{}", rand_suffix()));
        let output = Command::new(pgdrill_bin())
            .arg("run")
            .arg(scenario)
            .arg("--out")
            .arg(&out)
            .args(args)
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .current_dir(root())
            .output()
            .expect("run pgdrill");
        Drill::from_output(out, &output)
    }
}

impl Scratch {
    /// Drills `scenario` on the pod target, in the pod's shape under Docker: this build of
    /// pgdrill mounted over the image's, the scratch folder at its own path in pgdrill's
    /// container (never in the server's), `env` passed to pgdrill.
    pub(crate) fn pod_drill(&self, scenario: &Path, args: &[String], env: &[(String, String)]) -> Drill {
        self.pod_drill_with(scenario, args, env, &[])
    }

    /// A physical backup's drill on the pod that passes: [`Scratch::pod_drill_with`] reading the
    /// source's folder `source` (opened to the image's user, mounted read-only at its own path),
    /// checked to have passed on a pod target.
    pub(crate) fn pod_drill_passes(&self, scenario: &Path, source: &Path) -> Drill {
        let dir = source.display().to_string();
        let opened = Command::new("chmod").args(["-R", "a+rX", &dir]).status().unwrap();
        assert!(opened.success(), "chmod {dir}");
        let drill = self.pod_drill_with(scenario, &[], &[], &[format!("{dir}:{dir}:ro")]);
        assert_eq!(drill.code, Some(0), "{drill:?}");
        assert_eq!(drill.record().target.as_ref().map(|t| t.kind.as_str()), Some("pod"));
        drill
    }

    /// As [`Scratch::pod_drill`], with more folders mounted in pgdrill's container (`HOST:PATH[:ro]`).
    pub(crate) fn pod_drill_with(
        &self,
        scenario: &Path,
        args: &[String],
        env: &[(String, String)],
        mounts: &[String],
    ) -> Drill {
        let out = self.path(&format!("reports-{}", rand_suffix()));
        let (mut command, name) = self.pod_command(env, mounts);
        let output =
            command.arg("run").arg(scenario).arg("--out").arg(&out).args(args).output().expect("run ci/pod/drill");
        assert_pod_gone(&name);
        Drill::from_output(out, &output)
    }

    /// `ci/pod/drill` up to its `--`, pgdrill's arguments to follow, and the pod's name (its
    /// pgdrill container's): this build of pgdrill mounted over the image's, the scratch folder
    /// at its own path in pgdrill's container (opened to the image's `postgres`, who reads the
    /// scenario and writes reports), `env` passed to pgdrill, `mounts` (`HOST:PATH[:ro]`) too.
    pub(crate) fn pod_command(&self, env: &[(String, String)], mounts: &[String]) -> (Command, String) {
        let opened = Command::new("chmod").arg("-R").arg("a+rwX").arg(self.dir.path()).status().unwrap();
        assert!(opened.success());
        let dir = self.dir.path().display().to_string();
        let name = format!("pgdrill-test-pod-{}-{}", std::process::id(), rand_suffix());
        let mut command = Command::new("bash");
        command.arg(root().join("ci/pod/drill")).args(["--name", &name, "-v", &format!("{dir}:{dir}")]);
        for (key, _) in env {
            command.args(["-e", key]);
        }
        for mount in mounts {
            command.args(["-v", mount]);
        }
        command
            .arg("--")
            .env("PGDRILL_POD_BINARY", pgdrill_bin())
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        (command, name)
    }
}

/// The pgdrill the drills run: this build's, or PGDRILL_TEST_BIN's (another build: an older
/// pgdrill, to see what a corpus did before a change).
pub(crate) fn pgdrill_bin() -> String {
    std::env::var("PGDRILL_TEST_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_pgdrill").to_owned())
}

/// Nothing of the pod `name` is left: neither its containers nor its volumes.
pub(crate) fn assert_pod_gone(name: &str) {
    let left = containers_labelled("org.pgdrill.pod", name);
    assert!(left.is_empty(), "the pod's containers are left: {left:?}");
    let volumes = Command::new("docker")
        .args(["volume", "ls", "-q", "--filter", &format!("label=org.pgdrill.pod={name}")])
        .output()
        .unwrap();
    assert!(volumes.stdout.is_empty(), "the pod's volumes are left: {}", String::from_utf8_lossy(&volumes.stdout));
}

/// A suffix unique within this test process (names of reports folders, containers).
/// Makes `dir` as root keeps a backup it took (folders 0700, files 0600, owned by root), when
/// Runs `script` in a container of the project's image of PostgreSQL `major`, with no network,
/// after starting a server of its own (`PGHOST`/`PGUSER` set, database `postgres`), `out`
/// mounted at `/out` for what it writes (pg_dump's archives, say), which it leaves readable.
pub(crate) fn with_server_in_image(major: u32, out: &Path, script: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(out).unwrap();
    std::fs::set_permissions(out, std::fs::Permissions::from_mode(0o777)).unwrap();
    let whole = format!(
        "set -e\nexport PGHOST=/tmp PGUSER=postgres\n\
         initdb -D /tmp/data -U postgres -A trust -E UTF8 --no-sync >/dev/null\n\
         pg_ctl -D /tmp/data -o \"-k /tmp -c listen_addresses=\" -w -l /tmp/log start >/dev/null\n\
         {script}\nchmod a+r /out/*\n"
    );
    let image = pgdrill::scenario::project_image(major);
    let path = format!("PATH=/usr/lib/postgresql/{major}/bin:/usr/bin:/bin");
    let made = Command::new("docker")
        .args(["run", "--rm", "--network", "none", "-e", &path, "-v"])
        .arg(format!("{}:/out", out.display()))
        .args(["--entrypoint", "sh", &image, "-c", &whole])
        .output()
        .expect("docker run");
    assert!(made.status.success(), "running the script: {}", String::from_utf8_lossy(&made.stderr));
}

/// the tests run as root; returns whether they do (else nothing is changed).
pub(crate) fn as_root_keeps_it(dir: &Path) -> bool {
    if std::os::unix::fs::MetadataExt::uid(&std::fs::metadata("/proc/self").unwrap()) != 0 {
        return false;
    }
    let out = Command::new("sh")
        .arg("-c")
        .arg("chown -R 0:0 \"$1\" && find \"$1\" -type d -exec chmod 0700 {} + && find \"$1\" -type f -exec chmod 0600 {} +")
        .arg("sh")
        .arg(dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    true
}

pub(crate) fn rand_suffix() -> String {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    N.fetch_add(1, Ordering::Relaxed).to_string()
}

/// What one `pgdrill run` did.
pub(crate) struct Drill {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub out: PathBuf,
    pub record: Option<DrillRecord>,
}

impl std::fmt::Debug for Drill {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "pgdrill exited {:?}\n--- stdout\n{}\n--- stderr\n{}\n--- report.md\n{}",
            self.code,
            self.stdout,
            self.stderr,
            std::fs::read_to_string(self.out.join("report.md")).unwrap_or_else(|e| format!("(none: {e})"))
        )
    }
}

impl Drill {
    /// What a finished `pgdrill run --out OUT` left.
    pub(crate) fn from_output(out: PathBuf, output: &std::process::Output) -> Self {
        let record =
            std::fs::read_to_string(out.join("drill.json")).ok().and_then(|text| serde_json::from_str(&text).ok());
        Drill {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            out,
            record,
        }
    }

    pub(crate) fn record(&self) -> &DrillRecord {
        self.record.as_ref().unwrap_or_else(|| panic!("no readable drill.json\n{self:?}"))
    }

    pub(crate) fn phase(&self, phase: Phase) -> PhaseStatus {
        self.record().phase(phase).map(|p| p.status).unwrap_or_else(|| panic!("no {phase} phase\n{self:?}"))
    }

    pub(crate) fn phase_summary(&self, phase: Phase) -> String {
        self.record().phase(phase).map(|p| p.summary.clone()).unwrap_or_default()
    }

    /// Every report file, concatenated, for secret scans.
    pub(crate) fn all_reports(&self) -> String {
        ["junit.xml", "report.md", "report.html", "drill.json", "record.json", "metrics.prom"]
            .iter()
            .map(|f| self.report(f))
            .collect::<Vec<_>>()
            .join("\n")
    }

    pub(crate) fn phase_error(&self, phase: Phase) -> String {
        self.record().phase(phase).and_then(|p| p.error.clone()).unwrap_or_default()
    }

    pub(crate) fn report(&self, name: &str) -> String {
        std::fs::read_to_string(self.out.join(name)).unwrap_or_else(|e| panic!("no {name}: {e}\n{self:?}"))
    }

    /// The checks for a drill that did not pass: a non-zero exit, all three reports written,
    /// and no container of this drill left.
    /// Its junit.xml (failures, errors, skipped phases) is valid against the JUnit schema.
    pub(crate) fn assert_failed_cleanly(&self) {
        assert!(matches!(self.code, Some(c) if c != 0), "expected a non-zero exit\n{self:?}");
        self.assert_reports_and_no_leftovers();
        crate::junit_schema::assert_valid(&self.out.join("junit.xml"));
    }

    pub(crate) fn assert_reports_and_no_leftovers(&self) {
        for name in ["junit.xml", "report.md", "report.html", "drill.json"] {
            assert!(self.out.join(name).is_file(), "{name} was not written\n{self:?}");
        }
        let left = containers_of(&self.record().drill_id);
        assert!(left.is_empty(), "containers left behind: {left:?}\n{self:?}");
    }
}

/// Containers (running or not) labelled with a drill's id.
pub(crate) fn containers_of(drill_id: &str) -> Vec<String> {
    containers_labelled("org.pgdrill.drill", drill_id)
}

/// Containers (running or not) with label `key=value`.
pub(crate) fn containers_labelled(key: &str, value: &str) -> Vec<String> {
    let output = Command::new("docker")
        .args(["ps", "-aq", "--filter", &format!("label={key}={value}")])
        .output()
        .expect("docker ps");
    String::from_utf8_lossy(&output.stdout).split_whitespace().map(str::to_owned).collect()
}

/// Every file under `dir`, at any depth.
pub(crate) fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(folder) = pending.pop() {
        for entry in std::fs::read_dir(&folder).into_iter().flatten().flatten() {
            match entry.file_type() {
                Ok(kind) if kind.is_dir() => pending.push(entry.path()),
                Ok(kind) if kind.is_file() => files.push(entry.path()),
                _ => {}
            }
        }
    }
    files.sort();
    files
}

/// A lying backup did not fool `drill`: it did not pass, it restored, and a check that did not
/// pass says what the backup did (`says`), in drill.json and in report.md.
pub(crate) fn assert_not_fooled(name: &str, says: &str, drill: &Drill) {
    use pgdrill::Verdict;
    use pgdrill::outcome::DrillVerdict;
    assert_ne!(drill.record().verdict, DrillVerdict::Pass, "{name}: the backup fooled the drill\n{drill:?}");
    drill.assert_failed_cleanly();
    assert_eq!(drill.phase(Phase::Restore), PhaseStatus::Passed, "{name}: the lie restores\n{drill:?}");
    let said = drill
        .record()
        .checks
        .iter()
        .find(|c| c.verdict != Verdict::Pass && c.message.contains(says))
        .unwrap_or_else(|| panic!("{name}: no check that did not pass says `{says}`\n{drill:?}"));
    assert!(drill.report("report.md").contains(says), "{name}: report.md says it: {said:?}");
}
