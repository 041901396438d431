//! A hostile backup reaches nothing. A corpus of dumps whose SQL tries, as the restore's role,
//! what a superuser can do: run programs (`COPY ... PROGRAM` built at run time in `DO` blocks and
//! functions, a fork bomb), load an untrusted language, read and write this machine's files,
//! export a large object to a file, change the server's configuration, exhaust memory, reach a
//! listener this test opens on the machine's loopback, and load native code of its own (a
//! library compiled here from `fixtures/hostile/native.c`, written into the data directory and
//! loaded with `CREATE FUNCTION ... LANGUAGE C`). Each case is drilled on every kind of target:
//! a container, local binaries and a pod (sandboxes), a server whose admin role is a superuser
//! (refused: the scenario does not trust its backup) and one whose role has no power over the
//! server's machine. Each ends refused or contained, proven from inside (the sandbox as the server
//! sees it, the error PostgreSQL gave) and from outside (no file on this machine, no connection to
//! the listener, nothing left running; for native code, the sandbox's data directory watched
//! from this machine: the library was written there, and none of its code ran), with the drill's
//! verdict and message saying what the dump tried.

use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use pgdrill::outcome::{DrillVerdict, Phase, PhaseStatus};
use rstest::rstest;

use crate::servers::PgServer;
use crate::util::{CONTAINER, Drill, LOCAL, POD, Scratch};
use crate::watch::{Seen, Watch};

/// What every case's dump holds around its hostile part: a table with two rows, in what pg_dump
/// 15 writes.
fn dump(body: &str) -> String {
    crate::util::pg15_dump(&format!(
        "--\n-- Name: accounts; Type: TABLE; Schema: public; Owner: -\n--\n\n\
         CREATE TABLE public.accounts (id integer PRIMARY KEY, email text NOT NULL);\n\n\
         COPY public.accounts (id, email) FROM stdin;\n1\tada@example.org\n2\tgrace@example.org\n\\.\n\n\
         --\n-- Name: hostile; Type: SQL; Schema: -; Owner: -\n--\n\n{body}"
    ))
}

/// A listener on this machine's loopback that counts who reaches it.
struct Listener {
    port: u16,
    reached: Arc<AtomicUsize>,
}

impl Listener {
    fn open() -> Listener {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let reached = Arc::new(AtomicUsize::new(0));
        let count = reached.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                count.fetch_add(1, Ordering::SeqCst);
                drop(stream);
            }
        });
        Listener { port, reached }
    }
}

/// What a case needs from its surroundings.
struct Setting {
    scratch: Scratch,
    /// A file no case may create on this machine.
    marker: PathBuf,
    /// A file of this machine no case may read.
    secret_file: PathBuf,
    listener: Listener,
    /// The start of the names the native code's markers would have, and its library's.
    native: String,
}

const SECRET: &str = "hostile-corpus-secret-7f3a9c";

impl Setting {
    fn new() -> Setting {
        let scratch = Scratch::new();
        let marker = scratch.path("pwned");
        let secret_file = scratch.write("secret.txt", SECRET);
        let native = format!("pgdrill-native-{:08x}", rand::random::<u32>());
        Setting { scratch, marker, secret_file, listener: Listener::open(), native }
    }

    /// The file name the native code's library is written under.
    fn library(&self) -> String {
        format!("{}.so", self.native)
    }

    /// The native code, compiled here for PostgreSQL `major` (`fixtures/hostile/native.c`), as
    /// hex for a bytea literal.
    fn native_hex(&self, major: u32) -> String {
        let out = self.scratch.path(&format!("native-{major}.so"));
        let source = crate::util::root().join("fixtures/hostile/native.c");
        let built = std::process::Command::new("cc")
            .args(["-shared", "-fPIC", "-O2", "-s"])
            .arg(format!("-DPG_MAJOR={major}"))
            .arg(format!("-DMARKER=\"{}\"", self.native))
            .arg("-o")
            .arg(&out)
            .arg(&source)
            .output()
            .expect("run cc (a C compiler: Rust links with it)");
        assert!(built.status.success(), "cc: {}", String::from_utf8_lossy(&built.stderr));
        std::fs::read(&out).unwrap().iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The markers the native code leaves where it runs: mapped by the loader, then `_PG_init`.
    fn native_markers(&self) -> [String; 2] {
        [format!("{}-mapped", self.native), format!("{}-pg-init", self.native)]
    }
}

/// The cases: name, the dump's hostile SQL, and (for a scenario) more lines; native code is
/// compiled for PostgreSQL `major`.
fn case(name: &str, s: &Setting, major: u32) -> (String, &'static str) {
    let marker = s.marker.display();
    let body = match name {
        "copy to program in a DO block" => format!(
            "DO $$ BEGIN EXECUTE 'COPY (SELECT 1) TO PROGRAM ' || quote_literal('id > {marker}; hostname >> {marker}'); END $$;"
        ),
        "copy from program in a function" => format!(
            "CREATE FUNCTION public.pwn() RETURNS void LANGUAGE plpgsql AS $$ BEGIN\n\
             CREATE TEMP TABLE out (line text);\n\
             EXECUTE format('COPY out FROM PROGRAM %L', 'cat /etc/passwd; touch {marker}');\nEND $$;\nSELECT public.pwn();"
        ),
        "a fork bomb" => {
            "DO $$ BEGIN EXECUTE 'COPY (SELECT 1) TO PROGRAM ' || quote_literal(':(){ :|:& };:'); END $$;".to_owned()
        }
        "an untrusted language" => {
            "CREATE EXTENSION IF NOT EXISTS plperlu;\nCREATE FUNCTION public.pwn() RETURNS text LANGUAGE plperlu AS $$ `id` $$;"
                .to_owned()
        }
        "a read of this machine's files" => format!(
            "CREATE TABLE public.stolen AS SELECT pg_read_file('{}') AS content;",
            s.secret_file.display()
        ),
        "a read of the server's environment" => {
            "CREATE TABLE public.stolen AS SELECT encode(pg_read_binary_file('/proc/1/environ'), 'escape') AS content \
             UNION ALL SELECT encode(pg_read_binary_file('/proc/self/environ'), 'escape');"
                .to_owned()
        }
        "a write of this machine's files" => format!("COPY (SELECT 'pwned') TO '{marker}';"),
        "a write outside the data directory" => "COPY (SELECT 'pwned') TO '/etc/pgdrill-pwned';".to_owned(),
        "a large object exported to a file" => {
            format!("SELECT lo_from_bytea(4242, convert_to('pwned', 'UTF8'));\nSELECT lo_export(4242, '{marker}');")
        }
        "ALTER SYSTEM with archive and restore commands" => format!(
            "ALTER SYSTEM SET archive_command = 'touch {marker}';\nALTER SYSTEM SET restore_command = 'touch {marker}';\nSELECT pg_reload_conf();"
        ),
        "a memory hog" => "DO $$ DECLARE a text[] := '{}'; BEGIN\n  FOR i IN 1..96 LOOP a := a || repeat('x', 32 * 1024 * 1024); END LOOP;\n  RAISE NOTICE '%', array_length(a, 1);\nEND $$;".to_owned(),
        "a connection to this machine's loopback" => format!(
            "CREATE EXTENSION IF NOT EXISTS dblink WITH SCHEMA public;\n\
             SELECT public.dblink_connect('host=127.0.0.1 port={} dbname=x user=x password=x connect_timeout=3');",
            s.listener.port
        ),
        // Written where the server must write (its data directory), then loaded: the library's
        // constructor and its `_PG_init` would run at load, before the function is ever called.
        "native code the backup wrote" => format!(
            "SELECT pg_catalog.lo_from_bytea(4243, '\\x{}'::bytea);\n\
             DO $$ BEGIN PERFORM pg_catalog.lo_export(4243, pg_catalog.current_setting('data_directory') || '/{library}'); END $$;\n\
             DO $$ BEGIN EXECUTE pg_catalog.format('CREATE FUNCTION public.f() RETURNS void AS %L, %L LANGUAGE C', \
             pg_catalog.current_setting('data_directory') || '/{library}', 'f'); END $$;\n\
             SELECT public.f();",
            s.native_hex(major),
            library = s.library()
        ),
        other => panic!("no case {other}"),
    };
    let extra = match name {
        "a read of the server's environment" => {
            "[[checks.sql]]\nname = \"no secret in the server's environment\"\n\
             query = \"SELECT count(*) FROM public.stolen WHERE content LIKE '%hostile-corpus-secret%' OR content ~* 'password|token|secret'\"\nexpect = 0\n"
        }
        // Small enough that the hog meets the limit quickly.
        "a memory hog" => "memory = \"1GB\"\n",
        _ => "",
    };
    (body, extra)
}

const CASES: [&str; 13] = [
    "copy to program in a DO block",
    "copy from program in a function",
    "a fork bomb",
    "an untrusted language",
    "a read of this machine's files",
    "a read of the server's environment",
    "a write of this machine's files",
    "a write outside the data directory",
    "a large object exported to a file",
    "ALTER SYSTEM with archive and restore commands",
    "a memory hog",
    "a connection to this machine's loopback",
    "native code the backup wrote",
];

/// How a case ends on a target: the phase that fails (none: the drill passes, its SQL held)
/// and what its error says.
fn expected(name: &str, restricted_server: bool) -> (Option<Phase>, &'static str) {
    let refused = "only a superuser may do";
    match name {
        "copy to program in a DO block" | "copy from program in a function" | "a fork bomb" => {
            (Some(Phase::Restore), if restricted_server { refused } else { "run a program on the target" })
        }
        // A server's drill reads the dump whole before its restore: preflight finds the
        // extension missing; a sandbox's reads it once, and the restore reaches it past the rows.
        "an untrusted language" if restricted_server => (Some(Phase::Preflight), "plperlu"),
        "an untrusted language" => (Some(Phase::Restore), "extension \"plperlu\" is not available"),
        "a read of this machine's files" => {
            (Some(Phase::Restore), if restricted_server { refused } else { "read a file of the machine" })
        }
        "a read of the server's environment" if restricted_server => (Some(Phase::Restore), refused),
        "a read of the server's environment" => (None, ""),
        "a write of this machine's files"
        | "a write outside the data directory"
        | "a large object exported to a file" => {
            (Some(Phase::Restore), if restricted_server { refused } else { "write a file" })
        }
        "ALTER SYSTEM with archive and restore commands" if restricted_server => (Some(Phase::Restore), refused),
        "ALTER SYSTEM with archive and restore commands" => (Some(Phase::Restore), "ALTER SYSTEM"),
        "a memory hog" => (Some(Phase::Restore), "more memory than"),
        "a connection to this machine's loopback" if restricted_server => (Some(Phase::Restore), refused),
        "a connection to this machine's loopback" => (Some(Phase::Restore), "network connection"),
        // `lo_export` needs pg_write_server_files.
        "native code the backup wrote" if restricted_server => (Some(Phase::Restore), refused),
        "native code the backup wrote" => (Some(Phase::Restore), "load native code it wrote"),
        other => panic!("no case {other}"),
    }
}

/// Drills case `name` with a `[target]` section; returns the drill.
fn drill_case(s: &Setting, name: &str, target: &str, env: &[(String, String)]) -> Drill {
    // The local target runs Debian's PostgreSQL 15; the others the project's 17.
    let (body, extra) = case(name, s, if target == LOCAL { 15 } else { 17 });
    let backup = s.scratch.write("hostile.sql", dump(&body));
    // The memory limit is the sandbox's; a server has only its own (the test server's is 1 GB
    // per process).
    let (target_extra, checks) = match (extra.starts_with("memory"), target.contains("server")) {
        (true, true) => ("", ""),
        (true, false) => (extra, ""),
        (false, _) => ("", extra),
    };
    let scenario = s.scratch.scenario(
        "hostile.toml",
        &format!("name = \"hostile\"\n[source]\npath = \"{}\"\n{target}{target_extra}{checks}", backup.display()),
    );
    let mut env = env.to_vec();
    env.push(("PGDRILL_TEST_HOSTILE_SECRET".into(), SECRET.into()));
    s.scratch.drill_env(&scenario, &[], &env)
}

/// The case ended as expected, said what the dump tried, and nothing reached this machine.
fn assert_held(s: &Setting, name: &str, drill: &Drill, restricted_server: bool) {
    let (phase, says) = expected(name, restricted_server);
    match phase {
        Some(phase) => {
            drill.assert_failed_cleanly();
            assert_eq!(drill.phase(phase), PhaseStatus::Failed, "{name}: {drill:?}");
            let error = drill.phase_error(phase);
            assert!(error.contains(says), "{name}: the error says `{says}`: {error}\n{drill:?}");
            assert!(drill.report("report.md").contains(says), "{name}: report.md says it");
        }
        None => {
            assert_eq!(drill.record().verdict, DrillVerdict::Pass, "{name}: {drill:?}");
            drill.assert_reports_and_no_leftovers();
        }
    }
    assert!(!s.marker.exists(), "{name}: the dump wrote `{}` on this machine", s.marker.display());
    assert_eq!(s.listener.reached.load(Ordering::SeqCst), 0, "{name}: the dump reached this machine's loopback");
    let reports = drill.all_reports();
    assert!(!reports.contains(SECRET), "{name}: a secret of this machine reached the reports");
}

/// What the sandbox looked like from inside, as the drill recorded it.
fn assert_sandboxed(name: &str, drill: &Drill) {
    let Some(isolation) = drill.record().target.as_ref().and_then(|t| t.isolation.clone()) else {
        // A case refused before the target started has nothing to show.
        assert_eq!(drill.phase(Phase::Provision), PhaseStatus::Failed, "{name}: {drill:?}");
        return;
    };
    assert!(isolation.contained, "{name}: {isolation:?}");
    let seen = isolation.observed.expect("a sandbox is looked at from inside");
    assert_eq!(seen.interfaces, ["lo"], "{name}: no interface but loopback");
    assert_eq!(seen.routes, 0, "{name}: no route");
    assert!(seen.cap_eff.chars().all(|c| c == '0'), "{name}: CapEff {}", seen.cap_eff);
    assert!(seen.no_new_privs && !seen.shell && seen.uid != 0, "{name}: {seen:?}");
    // Every folder the server writes is noexec, or refused its write: none it can load from.
    assert!(!seen.noexec.is_empty() && seen.exec_writable.is_empty(), "{name}: {seen:?}");
    let report = drill.report("report.md");
    assert!(report.contains("## Isolation") && report.contains("interfaces: lo; routes: 0"), "{name}: {report}");
    assert!(report.contains("; noexec: /"), "{name}: the reports say which folders are noexec");
}

/// Where the sandbox's data directory is on this machine, for a watch from outside: the env a
/// drill on `target` is given so that it is there.
fn watched(s: &Setting, target: &str) -> (PathBuf, Vec<(String, String)>) {
    use std::os::unix::fs::PermissionsExt;
    let dir = s.scratch.path(if target == POD { "layers" } else { "tmp" });
    std::fs::create_dir(&dir).unwrap();
    // The local target's server (`postgres`) passes through to its folder.
    for open in [s.scratch.dir.path(), dir.as_path()] {
        std::fs::set_permissions(open, std::fs::Permissions::from_mode(0o711)).unwrap();
    }
    let var = if target == POD { "PGDRILL_POD_LAYERS" } else { "TMPDIR" };
    (dir.clone(), vec![(var.to_owned(), dir.display().to_string())])
}

/// The native code was written where the server runs (the watch saw its library made), and none
/// of it ran there (no marker).
fn assert_never_ran(s: &Setting, name: &str, seen: &Seen, drill: &Drill) {
    assert!(!seen.overflowed, "{name}: the watch lost events");
    assert!(
        seen.names.contains(&s.library()),
        "{name}: the library was written in the watched data directory: {seen:?}; the drill: {drill:?}"
    );
    for marker in s.native_markers() {
        assert!(!seen.names.contains(&marker), "{name}: the backup's native code ran: `{marker}` was made");
    }
}

/// No process still runs with the drill's local cluster folder in its command line.
fn no_process_of(dir: &Path) -> bool {
    let needle = dir.display().to_string();
    std::fs::read_dir("/proc").unwrap().flatten().all(|entry| {
        let mut cmdline = Vec::new();
        let _ = std::fs::File::open(entry.path().join("cmdline")).and_then(|mut f| f.read_to_end(&mut cmdline));
        !String::from_utf8_lossy(&cmdline).replace('\0', " ").contains(&needle)
    })
}

#[rstest]
#[case::copy_to_program_in_a_do_block("copy to program in a DO block")]
#[case::copy_from_program_in_a_function("copy from program in a function")]
#[case::fork_bomb("a fork bomb")]
#[case::untrusted_language("an untrusted language")]
#[case::read_of_this_machines_files("a read of this machine's files")]
#[case::read_of_the_servers_environment("a read of the server's environment")]
#[case::write_of_this_machines_files("a write of this machine's files")]
#[case::write_outside_the_data_directory("a write outside the data directory")]
#[case::large_object_exported_to_a_file("a large object exported to a file")]
#[case::alter_system("ALTER SYSTEM with archive and restore commands")]
#[case::memory_hog("a memory hog")]
#[case::connection_to_this_machines_loopback("a connection to this machine's loopback")]
#[case::native_code_the_backup_wrote("native code the backup wrote")]
fn on_a_sandbox(#[case] name: &str, #[values(CONTAINER, LOCAL, POD)] target: &str) {
    let s = Setting::new();
    let (drill, tmp) = if name == "native code the backup wrote" {
        let (dir, env) = watched(&s, target);
        let watch = Watch::start(&dir);
        let drill = drill_case(&s, name, target, &env);
        assert_never_ran(&s, name, &watch.stop(), &drill);
        (drill, dir)
    } else {
        (drill_case(&s, name, target, &[]), std::env::temp_dir())
    };
    assert_held(&s, name, &drill, false);
    assert_sandboxed(name, &drill);
    let id = &drill.record().drill_id;
    let folder = match target {
        CONTAINER => tmp.join(format!("pgdrill-{}-target", &id[..12])),
        // The pod's folders are its volumes, removed with its containers by ci/pod/drill.
        // (`Scratch::pod_drill` checks that nothing of the pod is left.)
        POD => return,
        _ => tmp.join(format!("pgdrill-local-{id}")),
    };
    assert!(!folder.exists(), "{name}: the target's private folder is removed");
    assert!(no_process_of(&folder), "{name}: a process of the sandbox is left");
}

#[test]
fn local_binaries_without_bubblewrap_refuse_an_untrusted_backup() {
    let s = Setting::new();
    // No bubblewrap on this PATH.
    let env = [("PATH".to_owned(), "/nonexistent".to_owned())];
    let drill = drill_case(&s, "copy to program in a DO block", LOCAL, &env);
    drill.assert_failed_cleanly();
    assert_eq!(drill.phase(Phase::Provision), PhaseStatus::Failed, "{drill:?}");
    let error = drill.phase_error(Phase::Provision);
    assert!(
        error.contains("a local target without bubblewrap is not a sandbox") && error.contains("trusted"),
        "{error}"
    );
    assert_eq!(drill.phase(Phase::Restore), PhaseStatus::Skipped);
}

#[test]
fn on_a_server_whose_admin_is_a_superuser_every_case_is_refused_unless_trusted() {
    let server = PgServer::start();
    let env = [("DRILL_ADMIN_URL".to_owned(), server.url("require"))];
    let target = "[target]\nkind = \"server\"\nurl_env = \"DRILL_ADMIN_URL\"\ndatabase = \"hostile\"\n";
    for name in CASES {
        let s = Setting::new();
        let drill = drill_case(&s, name, target, &env);
        drill.assert_failed_cleanly();
        assert_eq!(drill.phase(Phase::Provision), PhaseStatus::Failed, "{name}: {drill:?}");
        let error = drill.phase_error(Phase::Provision);
        assert!(error.contains("is not a sandbox: `postgres` is a superuser"), "{name}: {error}");
        assert!(error.contains("[source] trusted"), "{name}: {error}");
        assert!(!s.marker.exists() && s.listener.reached.load(Ordering::SeqCst) == 0, "{name}");
    }
    let databases = server.psql("SELECT count(*) FROM pg_database WHERE datname LIKE 'hostile%'").unwrap();
    assert_eq!(databases.trim(), "0", "nothing was created on the server");
}

#[test]
fn on_a_server_whose_role_has_no_power_over_its_machine_every_case_is_refused_by_privileges() {
    let server = PgServer::start();
    server.psql("CREATE ROLE drill_admin LOGIN CREATEDB PASSWORD 'drill-admin-pw'").unwrap();
    let url = server.url("require").replacen(&format!("postgres:{}", server.password), "drill_admin:drill-admin-pw", 1);
    let env = [("DRILL_ADMIN_URL".to_owned(), url)];
    let target = "[target]\nkind = \"server\"\nurl_env = \"DRILL_ADMIN_URL\"\ndatabase = \"hostile\"\n";
    for name in CASES {
        let s = Setting::new();
        let drill = drill_case(&s, name, target, &env);
        assert_held(&s, name, &drill, true);
        let isolation = drill.record().target.as_ref().and_then(|t| t.isolation.clone()).expect("isolation");
        assert!(isolation.contained && isolation.user.contains("neither a superuser"), "{name}: {isolation:?}");
    }
    let left = server.psql("SELECT count(*) FROM pg_database WHERE datname LIKE 'hostile%'").unwrap();
    assert_eq!(left.trim(), "0", "every drill's database is dropped");
}

/// A container target's configuration, read from Docker while its drill runs (once the engine
/// has finished creating it: it lists a container it cannot yet inspect while mounting its data
/// volume).
fn inspect(container: &str) -> serde_json::Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let out = std::process::Command::new("docker").args(["inspect", container]).output().unwrap();
        let all: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        if out.status.success() && !all[0].is_null() {
            return all[0].clone();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "cannot inspect {container}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn two_container_targets_seen_from_outside_have_no_network_no_privilege_and_no_secret() {
    let scratch = Scratch::new();
    let mut running = Vec::new();
    for n in 0..2 {
        let name = format!("sandbox-{}-{n}", std::process::id());
        let scenario = scratch.scenario(
            &format!("{name}.toml"),
            &format!(
                "name = \"{name}\"\n[source]\npath = \"{{fixtures}}/plur.sql.gz\"\n[[restore.roles]]\nname = \"plur_app\"\n\
                 [[checks.sql]]\nname = \"hold\"\nquery = \"SELECT 1 FROM pg_sleep(3)\"\nexpect = 1\n"
            ),
        );
        let out = scratch.path(&format!("reports-{n}"));
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_pgdrill"))
            .args(["run", scenario.to_str().unwrap(), "--out", out.to_str().unwrap()])
            .env("PGDRILL_TEST_HOSTILE_SECRET", SECRET)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        running.push((name, out, child));
    }
    let mut folders = Vec::new();
    for (name, _, _) in &running {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        let id = loop {
            if let Some(id) = crate::util::containers_labelled("org.pgdrill.scenario", name).into_iter().next() {
                break id;
            }
            assert!(std::time::Instant::now() < deadline, "no target for {name}");
            std::thread::sleep(std::time::Duration::from_millis(50));
        };
        let c = inspect(&id);
        let host = &c["HostConfig"];
        assert_eq!(host["NetworkMode"], "none", "{name}: no network");
        assert!(host["PortBindings"].as_object().is_none_or(|p| p.is_empty()), "{name}: no published port");
        assert_eq!(host["CapDrop"], serde_json::json!(["ALL"]), "{name}: every capability dropped");
        assert!(host["SecurityOpt"].to_string().contains("no-new-privileges"), "{name}");
        assert_eq!(host["ReadonlyRootfs"], true, "{name}: a read-only root");
        assert!(host["Memory"].as_i64().unwrap() > 0 && host["PidsLimit"].as_i64().unwrap() > 0, "{name}: limits");
        assert!(host["Ulimits"].to_string().contains("\"data\""), "{name}: a memory limit per process");
        let user = c["Config"]["User"].as_str().unwrap();
        assert!(!user.is_empty() && !user.starts_with("0") && !user.starts_with("root"), "{name}: never root: {user}");
        for var in c["Config"]["Env"].as_array().unwrap() {
            let var = var.as_str().unwrap();
            let key = var.split('=').next().unwrap();
            assert!(
                ["PATH", "PGDATA", "LANG", "HOSTNAME", "HOME"].contains(&key),
                "{name}: `{key}` in the environment"
            );
        }
        assert!(!c["Config"].to_string().contains(SECRET), "{name}: no secret in its configuration");
        // Mounts: the drill's private folder (its socket folder bound, its data under an overlay
        // volume mounted noexec) and nothing else of this machine.
        let mounts = c["Mounts"].as_array().unwrap();
        let short = &c["Config"]["Labels"]["org.pgdrill.drill"].as_str().unwrap()[..12];
        let folder = std::env::temp_dir().join(format!("pgdrill-{short}-target"));
        assert_eq!(mounts.len(), 2, "{name}: {mounts:?}");
        for mount in mounts {
            match mount["Type"].as_str() {
                Some("bind") => {
                    let source = mount["Source"].as_str().unwrap_or_default();
                    assert!(Path::new(source).starts_with(&folder), "{name}: {source} outside {}", folder.display());
                }
                Some("volume") => {
                    assert_eq!(mount["Name"], format!("pgdrill-data-{short}"), "{name}: {mount}");
                    let out = std::process::Command::new("docker")
                        .args(["volume", "inspect", "--format", "{{json .Options}}", &format!("pgdrill-data-{short}")])
                        .output()
                        .unwrap();
                    let options: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
                    let o = options["o"].as_str().unwrap_or_default();
                    assert_eq!(options["type"], "overlay", "{name}: {options}");
                    let upper = format!("upperdir={}/data,", folder.display());
                    assert!(o.contains(&upper) && o.split(',').any(|f| f == "noexec"), "{name}: {o}");
                }
                other => panic!("{name}: a mount of type {other:?}: {mount}"),
            }
        }
        folders.push(folder);
    }
    assert_ne!(folders[0], folders[1], "each drill has its own folder");
    for (name, out, child) in running {
        let output = child.wait_with_output().unwrap();
        let drill = Drill::from_output(out, &output);
        assert_eq!(drill.record().verdict, DrillVerdict::Pass, "{name}: {drill:?}");
        assert_sandboxed(&name, &drill);
        drill.assert_reports_and_no_leftovers();
    }
    for folder in folders {
        assert!(!folder.exists(), "{} is removed", folder.display());
    }
}
