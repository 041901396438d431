//! Faults: SIGINT and SIGTERM at each phase, the target container killed mid-restore and
//! mid-checks, the database connection cut during a long COPY, and a source dropping the
//! connection mid-download. Each drill ends within seconds with a clear verdict, removes its
//! target and app, and writes reports that say where it stopped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use pgdrill::outcome::{DrillVerdict, Phase, PhaseStatus};
use rstest::rstest;

use crate::servers::{CuttingProxy, HttpServer, S3Server};
use crate::util::{Drill, Scratch, containers_labelled, fixture, fixture_text, gzip};

/// Longest a drill may take to end once told to stop (teardown included).
const ENDS_WITHIN: Duration = Duration::from_secs(20);

/// A `pgdrill run` in the background.
struct Running {
    /// Taken when the drill's output is read.
    child: Option<Child>,
    out: PathBuf,
}

impl Running {
    fn start(scenario: &Path, out: PathBuf) -> Running {
        let child = Command::new(env!("CARGO_BIN_EXE_pgdrill"))
            .arg("run")
            .arg(scenario)
            .arg("--out")
            .arg(&out)
            .current_dir(crate::util::root())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start pgdrill");
        Running { child: Some(child), out }
    }

    /// Waits for `what` while the drill runs; a drill that ended first fails the test with its output.
    fn wait_for(&mut self, what: &str, mut ready: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(90);
        while !ready() {
            if let Ok(Some(_)) = self.child().try_wait() {
                let drill = self.finish_now();
                panic!("the drill ended before {what}\n{drill:?}");
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn signal(&self, signal: &str) {
        let pid = self.child.as_ref().expect("running").id();
        let status = Command::new("kill").args([&format!("-{signal}"), &pid.to_string()]).status();
        assert!(status.unwrap().success(), "kill -{signal}");
    }

    /// Waits for the drill to end; panics if it takes longer than `within`.
    fn finish(mut self, within: Duration) -> Drill {
        let deadline = Instant::now() + within;
        while self.child().try_wait().expect("wait").is_none() {
            if Instant::now() > deadline {
                let _ = self.child().kill();
                let drill = self.finish_now();
                panic!("the drill did not end within {within:?}\n{drill:?}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.finish_now()
    }

    fn child(&mut self) -> &mut Child {
        self.child.as_mut().expect("running")
    }

    fn finish_now(&mut self) -> Drill {
        let output = self.child.take().expect("running").wait_with_output().expect("pgdrill ends");
        Drill::from_output(self.out.clone(), &output)
    }
}

/// The target container of the drill of scenario `name`.
fn target_of(name: &str) -> Option<String> {
    containers_labelled("org.pgdrill.scenario", name).into_iter().next()
}

/// Runs SQL in the drill's target as the superuser, over the container's local socket.
fn target_psql(name: &str, sql: &str) -> String {
    let Some(id) = target_of(name) else { return String::new() };
    let out = Command::new("docker")
        .args(["exec", "-u", "postgres", &id, "psql", "-d", "postgres", "-Atqc", sql])
        .output()
        .expect("docker exec");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Whether a backend of the drill's target is running a statement containing `text`.
fn target_running(name: &str, text: &str) -> bool {
    let sql = format!(
        "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%{text}%' AND pid <> pg_backend_pid() AND state = 'active'"
    );
    target_psql(name, &sql).parse::<u32>().unwrap_or(0) > 0
}

/// Whether a process is gone (or a zombie nobody reaps).
fn gone(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|stat| stat.rsplit_once(") ").is_some_and(|(_, rest)| rest.starts_with('Z')))
        .unwrap_or(true)
}

/// The PLUR fixture with a statement that takes minutes inserted before the users table.
fn slow_dump(scratch: &Scratch) -> &'static str {
    let text = fixture_text("plur.sql.gz");
    let at = text.find("CREATE TABLE public.users (").expect("anchor");
    scratch.write("slow.sql.gz", gzip(&format!("{}SELECT pg_sleep(300);\n{}", &text[..at], &text[at..])));
    "slow.sql.gz"
}

/// A command that starts a long-lived child and writes that child's pid to `marker`.
fn marked_command(marker: &Path) -> String {
    format!("[\"sh\", \"-c\", \"sleep 300 & echo $! > {}; wait\"]", marker.display())
}

fn unique(what: &str) -> String {
    use std::sync::atomic::AtomicUsize;
    static N: AtomicUsize = AtomicUsize::new(0);
    format!("{what}-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

#[rstest]
fn a_signal_at_each_phase_ends_the_drill_within_seconds_and_leaves_nothing(
    #[values(Phase::Fetch, Phase::Provision, Phase::Restore, Phase::Migrate, Phase::Checks, Phase::App)] phase: Phase,
    #[values("INT", "TERM")] signal: &str,
) {
    let scratch = Scratch::new();
    let name = unique(&format!("signal-{phase}-{signal}").to_lowercase());
    let marker = scratch.path("child.pid");
    let http = HttpServer::start(std::fs::read(fixture("plur.sql.gz")).unwrap());
    let source = match phase {
        Phase::Fetch => format!("url = \"{}\"", http.url("/slow.sql.gz")),
        Phase::Restore => format!("path = \"{}\"", slow_dump(&scratch)),
        _ => format!("path = \"{}\"", fixture("plur.sql.gz").display()),
    };
    let rest = match phase {
        Phase::Provision => "[target]\nstartup_timeout = \"120s\"\n".to_owned(),
        Phase::Migrate => {
            format!("[migrate]\ncommand = {}\njournal = \"public.schema_migrations\"\n", marked_command(&marker))
        }
        Phase::Checks => {
            "[[checks.sql]]\nname = \"slow\"\nquery = \"SELECT 1 FROM pg_sleep(300)\"\nexpect = 1\n".into()
        }
        Phase::App => format!(
            "[app]\ncommand = {}\nready = {{ path = \"/health\", timeout = \"300s\" }}\n",
            marked_command(&marker)
        ),
        _ => String::new(),
    };
    let scenario = scratch.scenario(
        "signal.toml",
        &format!("name = \"{name}\"\n[source]\n{source}\n[[restore.roles]]\nname = \"plur_app\"\n{rest}"),
    );
    let mut drill = Running::start(&scenario, scratch.path("reports"));
    match phase {
        Phase::Fetch => drill.wait_for("the download", || http.hits.slow.load(Ordering::SeqCst) > 0),
        Phase::Provision => {
            // A container that never becomes ready holds the drill in provision.
            drill.wait_for("the container, paused", || paused(&name));
        }
        Phase::Restore | Phase::Checks => {
            drill.wait_for("the slow statement", || target_running(&name, "pg_sleep(300)"))
        }
        _ => drill.wait_for("the child process", || std::fs::read_to_string(&marker).is_ok_and(|t| t.ends_with('\n'))),
    }
    let signalled = Instant::now();
    drill.signal(signal);
    let drill = drill.finish(ENDS_WITHIN);
    let took = signalled.elapsed();

    assert_eq!(drill.code, Some(if signal == "INT" { 130 } else { 143 }), "{drill:?}");
    let record = drill.record();
    assert_eq!(record.verdict, DrillVerdict::Interrupted, "{drill:?}");
    assert_eq!(record.failure.as_deref(), Some(format!("interrupted during {phase}").as_str()), "{drill:?}");
    assert_eq!(drill.phase(phase), PhaseStatus::Interrupted, "{drill:?}");
    if phase != Phase::Fetch {
        assert_eq!(drill.phase(Phase::Teardown), PhaseStatus::Passed, "{drill:?}");
    }
    drill.assert_reports_and_no_leftovers();
    assert!(containers_labelled("org.pgdrill.scenario", &name).is_empty(), "a container was left\n{drill:?}");
    if let Ok(pid) = std::fs::read_to_string(&marker) {
        let pid: u32 = pid.trim().parse().unwrap();
        assert!(gone(pid), "the {phase} phase's child process {pid} is still running\n{drill:?}");
    }
    let markdown = drill.report("report.md");
    assert!(
        markdown.contains("INTERRUPTED") && markdown.contains(&format!("interrupted during {phase}")),
        "{markdown}"
    );
    println!("SIG{signal} during {phase}: ended in {:.1} s", took.as_secs_f64());
}

/// Pauses the drill's container as soon as it exists, so that it never becomes ready.
fn paused(name: &str) -> bool {
    let Some(id) = target_of(name) else { return false };
    Command::new("docker")
        .args(["pause", &id])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[rstest]
#[case::mid_restore(Phase::Restore)]
#[case::mid_checks(Phase::Checks)]
fn the_target_container_killed_mid_drill_fails_it_cleanly(#[case] phase: Phase) {
    let scratch = Scratch::new();
    let name = unique(&format!("killed-{phase}"));
    let (source, checks) = match phase {
        Phase::Restore => (slow_dump(&scratch).to_owned(), String::new()),
        _ => (
            fixture("plur.sql.gz").display().to_string(),
            "[[checks.sql]]\nname = \"slow\"\nquery = \"SELECT 1 FROM pg_sleep(300)\"\nexpect = 1\n".to_owned(),
        ),
    };
    let scenario = scratch.scenario(
        "killed.toml",
        &format!("name = \"{name}\"\n[source]\npath = \"{source}\"\n[[restore.roles]]\nname = \"plur_app\"\n{checks}"),
    );
    let mut drill = Running::start(&scenario, scratch.path("reports"));
    drill.wait_for("the slow statement", || target_running(&name, "pg_sleep(300)"));
    let id = target_of(&name).expect("the target container");
    assert!(Command::new("docker").args(["kill", &id]).stdout(Stdio::null()).status().unwrap().success());
    let killed = Instant::now();
    let drill = drill.finish(ENDS_WITHIN);
    println!("target killed during {phase}: the drill ended in {:.1} s", killed.elapsed().as_secs_f64());

    drill.assert_failed_cleanly();
    assert_eq!(drill.code, Some(1), "{drill:?}");
    assert_eq!(drill.record().verdict, DrillVerdict::Fail, "{drill:?}");
    assert_eq!(drill.phase(phase), PhaseStatus::Failed, "{drill:?}");
    assert_eq!(drill.phase(Phase::Teardown), PhaseStatus::Passed, "{drill:?}");
    let error = drill.phase_error(phase);
    assert!(error.contains("the target went away"), "{error}\n{drill:?}");
}

#[test]
fn a_connection_cut_during_a_long_copy_fails_the_restore_at_that_copy() {
    let scratch = Scratch::new();
    let name = unique("copy-cut");
    let mut text = String::from(
        "SET client_encoding = 'UTF8';\nCREATE TABLE public.big (id bigint, payload text);\nCOPY public.big (id, payload) FROM stdin;\n",
    );
    for i in 0..1_000_000u32 {
        use std::fmt::Write;
        let _ = writeln!(text, "{i}\tpayload row {i} of the long copy");
    }
    text.push_str("\\.\n\nCREATE INDEX big_id ON public.big (id);\n");
    scratch.write("big.sql.gz", gzip(&text));
    let scenario = scratch.scenario("cut.toml", &format!("name = \"{name}\"\n[source]\npath = \"big.sql.gz\"\n"));
    let mut drill = Running::start(&scenario, scratch.path("reports"));
    drill.wait_for("the COPY, then its connection cut", || {
        target_psql(
            &name,"SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE query LIKE 'COPY public.big%' AND pid <> pg_backend_pid()",
        )
        .parse::<u32>()
            .unwrap_or(0)
            > 0
    });
    let drill = drill.finish(ENDS_WITHIN);
    drill.assert_failed_cleanly();
    assert_eq!(drill.phase(Phase::Restore), PhaseStatus::Failed, "{drill:?}");
    let error = drill.phase_error(Phase::Restore);
    assert!(error.contains("COPY public.big"), "the error names the COPY: {error}");
    assert!(error.contains("the connection to the target was lost"), "{error}");
    assert!(error.contains("the target still accepts connections: this one was cut"), "{error}");
}

#[test]
fn an_s3_download_that_drops_resumes_and_one_that_keeps_dropping_fails_cleanly() {
    let s3 = S3Server::start();
    let bytes = std::fs::read(fixture("plur.sql.gz")).unwrap();
    s3.put("backups", &[("plur.sql.gz", bytes.clone())]);
    let upstream: u16 = s3.endpoint.rsplit(':').next().unwrap().parse().unwrap();
    let scratch = Scratch::new();
    let scenario = |file: &str, proxy: &CuttingProxy, extra: &str| {
        scratch.scenario(
            file,
            &format!(
                "[source]\ns3 = \"s3://backups/plur.sql.gz\"\nendpoint = \"http://127.0.0.1:{}\"\nregion = \"us-east-1\"\n{extra}\
                 [[restore.roles]]\nname = \"plur_app\"\n[checks.row_counts]\nexpect_from_dump = true\n",
                proxy.port
            ),
        )
    };

    let once = CuttingProxy::start(upstream, bytes.len() / 2, 1);
    let drill = scratch.drill_env(&scenario("once.toml", &once, ""), &[], &s3.env());
    assert_eq!(drill.record().verdict, DrillVerdict::Pass, "{drill:?}");
    assert_eq!(once.cut.load(Ordering::SeqCst), 1, "the download was cut once");
    assert!(drill.phase_summary(Phase::Verify).contains("gzip"), "the resumed file verifies whole: {drill:?}");

    let always = CuttingProxy::start(upstream, 4096, usize::MAX);
    let drill = scratch.drill_env(&scenario("always.toml", &always, "retries = 1\n"), &[], &s3.env());
    drill.assert_failed_cleanly();
    assert_eq!(drill.phase(Phase::Fetch), PhaseStatus::Failed, "{drill:?}");
    assert!(always.cut.load(Ordering::SeqCst) >= 2, "retried once");
    let error = drill.phase_error(Phase::Fetch);
    assert!(error.contains("s3://backups/plur.sql.gz"), "{error}");
    assert!(!drill.all_reports().contains(crate::servers::S3_SECRET_KEY));
}

#[test]
fn an_https_download_that_keeps_dropping_gives_up_after_its_retries() {
    let server = HttpServer::start(std::fs::read(fixture("plur.sql.gz")).unwrap());
    let scratch = Scratch::new();
    let scenario = scratch
        .scenario("drops.toml", &format!("[source]\nurl = \"{}\"\nretries = 2\n", server.url("/always-drops.sql.gz")));
    let drill = scratch.drill(&scenario);
    drill.assert_failed_cleanly();
    assert_eq!(drill.code, Some(3), "the drill could not run, and may when run again\n{drill:?}");
    assert_eq!(server.hits.always_drops.load(Ordering::SeqCst), 3, "one try and two retries");
    let error = drill.phase_error(Phase::Fetch);
    assert!(error.contains("could not be downloaded after 3 attempts"), "{error}");
}

#[test]
fn a_drill_killed_outright_leaves_its_target_and_the_next_drill_removes_it() {
    let scratch = Scratch::new();
    let name = unique("killed-outright");
    let scenario = scratch.scenario(
        "killed.toml",
        &format!(
            "name = \"{name}\"\n[source]\npath = \"{}\"\n[[restore.roles]]\nname = \"plur_app\"\n",
            slow_dump(&scratch)
        ),
    );
    let mut drill = Running::start(&scenario, scratch.path("reports"));
    drill.wait_for("the slow statement", || target_running(&name, "pg_sleep(300)"));
    let folder = private_folder_of(drill.child.as_ref().expect("running").id()).expect("the target's private folder");
    drill.signal("KILL");
    let _ = drill.finish(ENDS_WITHIN);
    // SIGKILL gave pgdrill no chance to remove its target and folder. Any drill that starts
    // next removes them (they name a dead owner): the one below, or one the test run started
    // beside this test, whichever starts first (one did, between the kill and a check here).

    let next = scratch
        .scenario("next.toml", "[source]\npath = \"{fixtures}/plur.sql.gz\"\n[[restore.roles]]\nname = \"plur_app\"\n");
    let drill = scratch.drill(&next);
    assert_eq!(drill.record().verdict, DrillVerdict::Pass, "{drill:?}");
    assert!(target_of(&name).is_none(), "the next drill removed the orphan\n{drill:?}");
    assert!(!folder.exists(), "the next drill removed {}", folder.display());
}

/// The private folder (`pgdrill-*-target` or `pgdrill-local-*` in the temporary folder) of the
/// target of the pgdrill process `pid`.
fn private_folder_of(pid: u32) -> Option<PathBuf> {
    std::fs::read_dir(std::env::temp_dir()).ok()?.flatten().map(|e| e.path()).find(|path| {
        let name = path.file_name().unwrap_or_default().to_string_lossy().into_owned();
        let owner = std::fs::read_to_string(path.join("owner")).unwrap_or_default();
        name.starts_with("pgdrill-") && owner.split('/').nth(1) == Some(pid.to_string().as_str())
    })
}

#[test]
fn a_local_drill_killed_outright_takes_its_server_along_and_the_next_drill_removes_its_folder() {
    let scratch = Scratch::new();
    let local = "[target]\nkind = \"local\"\nbin_dir = \"/usr/lib/postgresql/15/bin\"\n";
    let text = fixture_text("prismeai-pg15.sql.gz");
    let at = text.find("CREATE TABLE").expect("a table");
    scratch.write("slow15.sql.gz", gzip(&format!("{}SELECT pg_sleep(300);\n{}", &text[..at], &text[at..])));
    let roles = "[[restore.roles]]\nname = \"prismeai_app\"\n";
    let scenario = scratch.scenario("killed.toml", &format!("[source]\npath = \"slow15.sql.gz\"\n{local}{roles}"));
    let mut drill = Running::start(&scenario, scratch.path("reports"));
    let pid = drill.child.as_ref().expect("running").id();
    let mut folder = None;
    drill.wait_for("the slow statement", || {
        folder = private_folder_of(pid);
        folder.as_ref().is_some_and(|dir| {
            let out = Command::new("psql")
                .args(["-h", &dir.display().to_string(), "-U", "postgres", "-d", "postgres", "-Atqc"])
                .arg("SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(300)%'")
                .output();
            out.is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "1")
        })
    });
    let folder = folder.expect("the cluster folder");
    let server_running = || {
        std::fs::read_dir("/proc").unwrap().flatten().any(|p| {
            std::fs::read_to_string(p.path().join("cmdline"))
                .is_ok_and(|c| c.contains(&folder.display().to_string()) && !c.contains("psql"))
        })
    };
    assert!(server_running(), "the sandboxed server runs");
    drill.signal("KILL");
    let _ = drill.finish(ENDS_WITHIN);
    let deadline = Instant::now() + Duration::from_secs(10);
    while server_running() {
        assert!(Instant::now() < deadline, "the server outlived the pgdrill that started it");
        std::thread::sleep(Duration::from_millis(100));
    }
    // SIGKILL gave pgdrill no chance to remove its folder. Any drill that starts next removes
    // it (it names a dead owner): the one below, or one the test run started beside this test,
    // whichever starts first.
    let next = scratch
        .scenario("next.toml", &format!("[source]\npath = \"{{fixtures}}/prismeai-pg15.sql.gz\"\n{local}{roles}"));
    let drill = scratch.drill(&next);
    assert_eq!(drill.record().verdict, DrillVerdict::Pass, "{drill:?}");
    assert!(!folder.exists(), "the next drill removed {}", folder.display());
}
