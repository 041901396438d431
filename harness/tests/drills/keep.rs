//! `pgdrill run --keep` and `pgdrill clean`: a kept target stays a sandbox reachable on loopback
//! through the connection file (0600, outside the reports), with no password on the console or
//! in the reports; `--keep=on-failure` keeps only a failed drill's; `pgdrill clean` removes kept
//! targets and what drills killed outright left, and nothing without pgdrill's labels.
//!
//! Each test keeps its targets in a state folder of its own (`XDG_STATE_HOME`), so `pgdrill
//! clean` without a name sees only them (and orphans), and removes them even when it fails.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use pgdrill::outcome::DrillVerdict;

use crate::util::{Drill, Scratch, containers_labelled, containers_of, fixture_text, gzip, root};

/// A scratch folder with a state folder of its own; on drop, `pgdrill clean` removes every
/// target kept in it.
struct Keeping {
    scratch: Scratch,
    state: PathBuf,
}

impl Keeping {
    fn new() -> Keeping {
        let scratch = Scratch::new();
        let state = scratch.path("state");
        Keeping { scratch, state }
    }

    /// A scenario of PLUR's backup; `users` is the row count the check expects (40 passes).
    fn scenario(&self, name: &str, users: u32) -> PathBuf {
        self.scratch.scenario(
            &format!("{name}.toml"),
            &format!(
                "name = \"{name}\"\n[source]\npath = \"{{fixtures}}/plur.sql.gz\"\n[restore]\nglobals = \"{{fixtures}}/plur.globals.sql\"\n[checks.row_counts]\ntables = {{ \"public.users\" = {users} }}\n"
            ),
        )
    }

    fn env(&self) -> Vec<(String, String)> {
        vec![("XDG_STATE_HOME".into(), self.state.display().to_string())]
    }

    fn drill(&self, scenario: &Path, keep: &str) -> Drill {
        self.scratch.drill_env(scenario, &[keep.to_owned()], &self.env())
    }

    fn clean(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_pgdrill"))
            .arg("clean")
            .args(args)
            .env("XDG_STATE_HOME", &self.state)
            .current_dir(root())
            .output()
            .expect("run pgdrill clean")
    }

    fn kept_dir(&self) -> PathBuf {
        self.state.join("pgdrill/kept")
    }

    /// The names of the targets recorded in this state folder.
    fn recorded(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(self.kept_dir()) else { return Vec::new() };
        let mut names: Vec<String> = entries
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.strip_suffix(".json").map(str::to_owned))
            .collect();
        names.sort();
        names
    }
}

impl Drop for Keeping {
    fn drop(&mut self) {
        for name in self.recorded() {
            let _ = self.clean(&[&name]);
            for id in containers_labelled("org.pgdrill.kept.name", &name) {
                let _ = Command::new("docker").args(["rm", "-f", "-v", &id]).stdout(Stdio::null()).status();
            }
        }
    }
}

/// A container with no pgdrill label of its own (from pgdrill's image, named like pgdrill's
/// containers), removed on drop.
struct Unrelated(String);

impl Unrelated {
    fn start() -> Unrelated {
        let name = format!("pgdrill-unrelated-{}", std::process::id());
        let image = std::fs::read_to_string(root().join("ci/image/TAG")).expect("ci/image/TAG");
        let status = Command::new("docker")
            .args(["run", "-d", "--name", &name, "--entrypoint", "/usr/bin/sleep", image.trim(), "600"])
            .stdout(Stdio::null())
            .status()
            .expect("docker run");
        assert!(status.success(), "cannot start the unrelated container");
        Unrelated(name)
    }

    fn exists(&self) -> bool {
        let out = Command::new("docker").args(["ps", "-aq", "--filter", &format!("name=^{}$", self.0)]).output();
        out.is_ok_and(|o| !o.stdout.is_empty())
    }
}

impl Drop for Unrelated {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .args(["rm", "-f", "-v", &self.0])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// The connection file and service the console named: `PGSERVICEFILE=FILE psql service=NAME`.
fn connect_line(drill: &Drill) -> (PathBuf, String) {
    let line = drill
        .stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("connect: PGSERVICEFILE="))
        .unwrap_or_else(|| panic!("no connect line\n{drill:?}"));
    let (file, service) = line.split_once(" psql service=").expect("file and service");
    (PathBuf::from(file), service.to_owned())
}

/// Runs a query through the connection file's service with the machine's psql.
fn psql(file: &Path, service: &str, sql: &str) -> Output {
    Command::new("psql")
        .env("PGSERVICEFILE", file)
        .env_remove("PGPASSWORD")
        .args([&format!("service={service}"), "-w", "-Atqc", sql])
        .output()
        .expect("psql")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

fn password_in(file: &Path) -> String {
    let text = std::fs::read_to_string(file).expect("the connection file");
    text.lines().find_map(|l| l.strip_prefix("password=")).expect("a password line").to_owned()
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).expect("exists").permissions().mode() & 0o777
}

fn inspect(container: &str, format: &str) -> String {
    let out = Command::new("docker").args(["inspect", container, "--format", format]).output().expect("docker");
    stdout(&out)
}

fn forwarder_runs(socket_dir: &str) -> bool {
    let Ok(entries) = std::fs::read_dir("/proc") else { return false };
    entries.flatten().any(|e| {
        let cmdline = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline);
        cmdline.contains("__forward") && cmdline.contains(socket_dir)
    })
}

#[test]
fn a_kept_target_is_a_sandbox_reachable_through_its_connection_file_until_clean_removes_it() {
    let keeping = Keeping::new();
    let unrelated = Unrelated::start();
    let drill = keeping.drill(&keeping.scenario("kept", 40), "--keep");
    assert_eq!(drill.code, Some(0), "{drill:?}");
    let record = drill.record();
    let kept = record.kept.as_ref().unwrap_or_else(|| panic!("not kept\n{drill:?}"));
    let short: String = record.drill_id.chars().take(8).collect();
    assert_eq!(kept.name, format!("kept-{short}"));
    assert!(drill.stdout.contains(&format!("remove:  pgdrill clean {}", kept.name)), "{drill:?}");

    // The connection file: the user's alone, in a folder of the user's alone, not with the reports.
    let (file, service) = connect_line(&drill);
    assert_eq!(service, kept.name);
    assert_eq!(file, keeping.kept_dir().join(format!("{}.conf", kept.name)));
    assert_eq!(mode(&file), 0o600, "{}", file.display());
    assert_eq!(mode(&keeping.kept_dir()), 0o700);
    assert!(!file.starts_with(&drill.out));
    let password = password_in(&file);
    assert_eq!(password.len(), 32);
    for (what, text) in [("stdout", &drill.stdout), ("stderr", &drill.stderr)] {
        assert!(!text.contains(&password), "the password is on {what}\n{drill:?}");
    }
    assert!(!drill.all_reports().contains(&password), "the password is in the reports");
    let json = std::fs::read_to_string(keeping.kept_dir().join(format!("{}.json", kept.name))).expect("record");
    assert!(!json.contains(&password), "the record holds no password: {json}");
    assert!(drill.report("report.md").contains(&format!("`pgdrill clean {}` removes it", kept.name)));
    assert!(drill.phase_summary(pgdrill::outcome::Phase::Teardown).starts_with("kept container"), "{drill:?}");

    // Reachable on loopback, as the role made for it: the restored rows are there.
    assert!(kept.address.starts_with("127.0.0.1:"), "{kept:?}");
    let counted = psql(&file, &service, "SELECT count(*) FROM public.users");
    assert_eq!(stdout(&counted), "40", "{}", String::from_utf8_lossy(&counted.stderr));
    // The trusted superuser is refused on that port; the socket service reaches it as that one.
    let port = kept.address.rsplit(':').next().expect("port");
    let refused = Command::new("psql")
        .args(["-h", "127.0.0.1", "-p", port, "-U", "postgres", "-w", "-d", "postgres", "-Atqc", "SELECT 1"])
        .output()
        .expect("psql");
    assert!(!refused.status.success() && String::from_utf8_lossy(&refused.stderr).contains("may not connect"));
    let socket = psql(&file, &format!("{service}-socket"), "SELECT current_user");
    assert_eq!(stdout(&socket), "postgres", "{}", String::from_utf8_lossy(&socket.stderr));

    // Still a sandbox, and no longer the drill's: CI's leftover check does not count it.
    let container = kept.container.clone().expect("a container");
    assert_eq!(inspect(&container, "{{.HostConfig.NetworkMode}} {{.HostConfig.ReadonlyRootfs}}"), "none true");
    assert_eq!(inspect(&container, "{{index .Config.Labels \"org.pgdrill.kept.name\"}}"), kept.name);
    assert!(containers_of(&record.drill_id).is_empty(), "still labelled with the drill");
    assert!(containers_labelled("org.pgdrill.owner", &record.drill_id).is_empty());
    let socket_dir = inspect(
        &container,
        "{{range .HostConfig.Mounts}}{{if eq .Target \"/var/run/postgresql\"}}{{.Source}}{{end}}{{end}}",
    );
    assert!(forwarder_runs(&socket_dir), "no forwarder for {socket_dir}");

    // A dry run lists it and removes nothing.
    let listed = keeping.clean(&["--dry-run"]);
    assert!(listed.status.success() && stdout(&listed).contains(&format!("would remove kept target `{}`", kept.name)));
    assert_eq!(containers_labelled("org.pgdrill.kept.name", &kept.name).len(), 1);

    // `pgdrill clean` removes it, its folder, its forwarder and its files; not the other container.
    let cleaned = keeping.clean(&[]);
    assert!(cleaned.status.success(), "{cleaned:?}");
    assert!(stdout(&cleaned).contains(&format!("removed kept target `{}`", kept.name)), "{cleaned:?}");
    assert!(containers_labelled("org.pgdrill.kept.name", &kept.name).is_empty());
    assert!(!file.exists() && keeping.recorded().is_empty());
    assert!(!Path::new(&socket_dir).exists(), "{socket_dir} is left");
    let deadline = Instant::now() + Duration::from_secs(5);
    while forwarder_runs(&socket_dir) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!forwarder_runs(&socket_dir), "the forwarder still runs");
    assert!(unrelated.exists(), "pgdrill clean removed a container without pgdrill's labels");
}

/// `pgdrill clean` run again and again beside a drill that is keeping its target (as another
/// user's, or another test's, may be): the container made again before its record is written is
/// not a stray whose record is gone, nor its folder a kept target's left behind.
#[test]
fn a_clean_beside_a_drill_leaves_the_target_it_is_keeping() {
    let keeping = Keeping::new();
    let other = Keeping::new();
    let scenario = keeping.scenario("kept-raced", 40);
    let drill = std::thread::scope(|s| {
        let drilling = s.spawn(|| keeping.drill(&scenario, "--keep"));
        let mut cleans = 0;
        while !drilling.is_finished() {
            let cleaned = other.clean(&[]);
            assert!(!stdout(&cleaned).contains("kept-raced"), "{cleaned:?}");
            cleans += 1;
        }
        assert!(cleans > 1, "no clean ran beside the drill");
        drilling.join().expect("the drill's thread")
    });
    assert_eq!(drill.code, Some(0), "{drill:?}");
    let kept = drill.record().kept.clone().unwrap_or_else(|| panic!("not kept\n{drill:?}"));
    let (file, service) = connect_line(&drill);
    let counted = psql(&file, &service, "SELECT count(*) FROM public.users");
    assert_eq!(stdout(&counted), "40", "{}", String::from_utf8_lossy(&counted.stderr));
    assert_eq!(containers_labelled("org.pgdrill.kept.name", &kept.name).len(), 1);
}

#[test]
fn keep_on_failure_keeps_only_a_failed_drills_target() {
    let keeping = Keeping::new();
    let passing = keeping.drill(&keeping.scenario("kept-pass", 40), "--keep=on-failure");
    assert_eq!(passing.code, Some(0), "{passing:?}");
    assert!(passing.record().kept.is_none() && !passing.stdout.contains("kept:"), "{passing:?}");
    passing.assert_reports_and_no_leftovers();
    assert!(keeping.recorded().is_empty());

    let failing = keeping.drill(&keeping.scenario("kept-fail", 41), "--keep=on-failure");
    assert_eq!(failing.code, Some(1), "{failing:?}");
    assert_eq!(failing.record().verdict, DrillVerdict::Fail);
    let kept = failing.record().kept.clone().unwrap_or_else(|| panic!("not kept\n{failing:?}"));
    assert_eq!(keeping.recorded(), vec![kept.name.clone()]);
    let (file, service) = connect_line(&failing);
    let counted = psql(&file, &service, "SELECT count(*) FROM public.users");
    assert_eq!(stdout(&counted), "40", "the failed check's table, as restored");
    assert!(!failing.stdout.contains(&password_in(&file)) && !failing.stderr.contains(&password_in(&file)));

    let cleaned = keeping.clean(&[&kept.name]);
    assert!(cleaned.status.success(), "{cleaned:?}");
    assert!(containers_labelled("org.pgdrill.kept.name", &kept.name).is_empty());
    assert!(!file.exists());
    let again = keeping.clean(&[&kept.name]);
    assert_eq!(again.status.code(), Some(1), "{again:?}");
    let error = String::from_utf8_lossy(&again.stderr);
    assert!(error.contains(&format!("no kept target is named `{}`", kept.name)), "{error}");
}

#[test]
fn clean_removes_the_target_of_a_drill_killed_outright() {
    let keeping = Keeping::new();
    let name = format!("orphan-{}", std::process::id());
    let text = fixture_text("plur.sql.gz");
    let at = text.find("CREATE TABLE public.users (").expect("anchor");
    keeping.scratch.write("slow.sql.gz", gzip(&format!("{}SELECT pg_sleep(300);\n{}", &text[..at], &text[at..])));
    let scenario = keeping.scratch.scenario(
        "orphan.toml",
        &format!("name = \"{name}\"\n[source]\npath = \"slow.sql.gz\"\n[[restore.roles]]\nname = \"plur_app\"\n"),
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_pgdrill"))
        .arg("run")
        .arg(&scenario)
        .arg("--out")
        .arg(keeping.scratch.path("reports"))
        .env("XDG_STATE_HOME", &keeping.state)
        .current_dir(root())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start pgdrill");
    let sleeping = || {
        let Some(id) = containers_labelled("org.pgdrill.scenario", &name).into_iter().next() else { return false };
        let sql = "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(300)%'";
        let out = Command::new("docker")
            .args(["exec", "-u", "postgres", &id, "psql", "-d", "postgres", "-Atqc", sql])
            .output();
        out.is_ok_and(|o| stdout(&o) == "1")
    };
    let deadline = Instant::now() + Duration::from_secs(90);
    while !sleeping() {
        if Instant::now() > deadline || child.try_wait().expect("wait").is_some() {
            let _ = child.kill();
            panic!("the drill did not reach its slow statement");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let containers = containers_labelled("org.pgdrill.scenario", &name);
    let container_name = inspect(&containers[0], "{{.Name}}").trim_start_matches('/').to_owned();
    let pid = child.id().to_string();
    let folder = std::fs::read_dir(std::env::temp_dir())
        .expect("temp dir")
        .flatten()
        .map(|e| e.path())
        .find(|p| std::fs::read_to_string(p.join("owner")).is_ok_and(|o| o.split('/').nth(1) == Some(pid.as_str())))
        .expect("the target's private folder");
    child.kill().expect("SIGKILL");
    child.wait().expect("reaped");
    let listed = keeping.clean(&["--dry-run"]);
    assert!(listed.status.success(), "{listed:?}");
    // A drill the test run started beside this one may have removed the orphan already.
    if !containers_labelled("org.pgdrill.scenario", &name).is_empty() {
        let text = stdout(&listed);
        assert!(
            text.contains(&format!("would remove container {container_name}, left by a drill whose process is gone")),
            "{text}"
        );
    }
    let cleaned = keeping.clean(&[]);
    assert!(cleaned.status.success(), "{cleaned:?}");
    assert!(containers_labelled("org.pgdrill.scenario", &name).is_empty(), "{cleaned:?}");
    assert!(!folder.exists(), "{} is left", folder.display());
    // The data directory's volume (its noexec overlay) goes with them.
    let short = folder
        .file_name()
        .unwrap()
        .to_string_lossy()
        .trim_start_matches("pgdrill-")
        .trim_end_matches("-target")
        .to_owned();
    let volumes =
        Command::new("docker").args(["volume", "ls", "-q", "--filter", &format!("name=pgdrill-data-{short}")]).output();
    assert_eq!(stdout(&volumes.expect("docker volume ls")), "", "the data volume is left");
}

#[test]
fn a_kept_server_target_keeps_its_database_until_clean_drops_it_as_the_scenarios_admin() {
    let server = crate::servers::PgServer::start();
    let keeping = Keeping::new();
    let scenario = keeping.scratch.scenario(
        "server.toml",
        "[source]\npath = \"{fixtures}/prismeai.sql.gz\"\ntrusted = \"a fixture of this repository\"\n[target]\nkind = \"server\"\nurl_env = \"DRILL_ADMIN_URL\"\ndatabase = \"prismeai\"\n[[restore.roles]]\nname = \"prismeai_app\"\n",
    );
    let admin = ("DRILL_ADMIN_URL".to_owned(), server.url("require"));
    let env = [keeping.env(), vec![admin.clone()]].concat();
    let drill = keeping.scratch.drill_env(&scenario, &["--keep".into()], &env);
    assert_eq!(drill.code, Some(0), "{drill:?}");
    let kept = drill.record().kept.clone().unwrap_or_else(|| panic!("not kept\n{drill:?}"));
    let database = drill.record().restore.as_ref().expect("restored").database.clone();
    assert_eq!((kept.kind.as_str(), kept.database.as_str()), ("server", database.as_str()));
    let exists = |db: &str| server.psql(&format!("SELECT count(*) FROM pg_database WHERE datname = '{db}'")).unwrap();
    assert_eq!(exists(&database).trim(), "1", "the database is kept");

    // The connection file names the server and the database, not the admin's password.
    let (file, service) = connect_line(&drill);
    assert_eq!(mode(&file), 0o600);
    let text = std::fs::read_to_string(&file).expect("the connection file");
    assert!(!text.contains("password=") && !text.contains(&server.password), "{text}");
    assert!(!drill.stdout.contains(&server.password) && !drill.stderr.contains(&server.password));
    let counted = Command::new("psql")
        .env("PGSERVICEFILE", &file)
        .env("PGPASSWORD", &server.password)
        .args([&format!("service={service}"), "-w", "-Atqc", "SELECT current_database()"])
        .output()
        .expect("psql");
    assert_eq!(stdout(&counted), database, "{}", String::from_utf8_lossy(&counted.stderr));

    // Without the admin's connection string, clean says what it needs and drops nothing.
    let refused = keeping.clean(&[&kept.name]);
    assert_eq!(refused.status.code(), Some(1), "{refused:?}");
    assert!(String::from_utf8_lossy(&refused.stderr).contains("`DRILL_ADMIN_URL` is not set"), "{refused:?}");
    assert_eq!(exists(&database).trim(), "1");
    assert_eq!(keeping.recorded(), vec![kept.name.clone()]);

    let cleaned = Command::new(env!("CARGO_BIN_EXE_pgdrill"))
        .args(["clean", &kept.name])
        .env("XDG_STATE_HOME", &keeping.state)
        .env(&admin.0, &admin.1)
        .output()
        .expect("pgdrill clean");
    assert!(cleaned.status.success(), "{cleaned:?}");
    assert_eq!(exists(&database).trim(), "0", "clean dropped the database");
    let roles = server.psql("SELECT count(*) FROM pg_roles WHERE rolname = 'prismeai_app'").unwrap();
    assert_eq!(roles.trim(), "0", "and the role the drill made");
    assert!(keeping.recorded().is_empty() && !file.exists());
}
