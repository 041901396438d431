//! Every dump pg_dump and pg_dumpall write drills clean: a corpus database written for these
//! tests (`dump_corpus/corpus.sql`: a table with no columns, quoted names, every common type,
//! generated and identity columns, range, list and enum-hash partitions, inheritance, domains,
//! enums, composite and range types, large objects, views, a materialized view, a rule, a
//! trigger, a policy, comments, an ICU collation, sequences, an unlogged table, pgvector, and an
//! index a failed `CREATE INDEX CONCURRENTLY` left invalid), dumped by the image's pg_dump 17 in
//! each format and with each option that changes the output, and by pg_dumpall. Each dump is
//! drilled with `row_counts` (`expect_from_dump` and the source's baseline, captured through
//! the server's socket) and the `indexes` and `schemas` checks against that baseline; pgdrill's
//! restore of each plain dump is compared with psql's own restore of the same file, schema and
//! rows. One source server holds the corpus, and is the server target of the plain drills.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use pgdrill::Verdict;
use pgdrill::outcome::DrillVerdict;

use crate::util::{Drill, Scratch, root};

const CORPUS: &str = include_str!("dump_corpus/corpus.sql");

/// The source: a container of the project's image with the corpus in database `corpus`,
/// answering on a loopback port (with a password) and on its socket, whose folder is this
/// machine's `sockets`.
struct Source {
    name: String,
    port: u16,
    password: String,
    sockets: tempfile::TempDir,
}

impl Source {
    fn start() -> Self {
        use std::os::unix::fs::PermissionsExt;
        let sockets = tempfile::Builder::new().prefix("pgdrill-corpus-sock-").tempdir().unwrap();
        // The server's own user makes its socket there.
        std::fs::set_permissions(sockets.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        std::fs::write(sockets.path().join("hba.conf"), "local all all trust\nhost all all all scram-sha-256\n")
            .unwrap();
        let name = format!("pgdrill-test-corpus-{}-{}", std::process::id(), crate::util::rand_suffix());
        let status = Command::new("docker")
            .args(["run", "-d", "--rm", "--name", &name, "-p", "127.0.0.1::5432", "-v"])
            .arg(format!("{}:/var/run/postgresql", sockets.path().display()))
            .args([pgdrill::scenario::default_image(), "-c", "listen_addresses=*"])
            .args(["-c", "hba_file=/var/run/postgresql/hba.conf", "-c", "fsync=off"])
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "docker run");
        let out = Command::new("docker").args(["port", &name, "5432/tcp"]).output().unwrap();
        let port = String::from_utf8_lossy(&out.stdout).lines().next().unwrap().rsplit(':').next().unwrap().parse();
        let source = Source { name, port: port.unwrap(), password: format!("corpus-{}", std::process::id()), sockets };
        let deadline = Instant::now() + Duration::from_secs(60);
        while source.psql("postgres", &format!("ALTER ROLE postgres PASSWORD '{}'", source.password)).is_err() {
            assert!(Instant::now() < deadline, "the source did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        source.psql("postgres", "CREATE DATABASE corpus").unwrap();
        source.psql_stdin("corpus", CORPUS.as_bytes()).unwrap();
        // A unique index over duplicates, built concurrently: it fails and stays, invalid.
        let failed = source.psql("corpus", "CREATE UNIQUE INDEX CONCURRENTLY tags_tag ON public.tags (tag)");
        assert!(failed.is_err(), "the index should have failed");
        let valid =
            source.psql("corpus", "SELECT indisvalid FROM pg_index WHERE indexrelid = 'public.tags_tag'::regclass");
        assert_eq!(valid.unwrap().trim(), "f");
        source
    }

    /// The admin URL of the server target (TCP, with the password).
    fn url(&self) -> String {
        format!("postgres://postgres:{}@127.0.0.1:{}/postgres?sslmode=disable", self.password, self.port)
    }

    fn psql(&self, database: &str, sql: &str) -> Result<String, String> {
        let out = Command::new("docker")
            .args(["exec", &self.name, "psql", "-X", "-v", "ON_ERROR_STOP=1", "-U", "postgres", "-d", database])
            .args(["-Atqc", sql])
            .output()
            .unwrap();
        if out.status.success() { Ok(String::from_utf8_lossy(&out.stdout).into_owned()) } else { Err(text(&out)) }
    }

    fn psql_stdin(&self, database: &str, input: &[u8]) -> Result<String, String> {
        use std::io::Write;
        let mut child = Command::new("docker")
            .args([
                "exec",
                "-i",
                &self.name,
                "psql",
                "-X",
                "-v",
                "ON_ERROR_STOP=1",
                "-U",
                "postgres",
                "-q",
                "-d",
                database,
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(input).unwrap();
        let out = child.wait_with_output().unwrap();
        if out.status.success() { Ok(text(&out)) } else { Err(text(&out)) }
    }

    /// A command in the source's container, which must succeed.
    fn exec(&self, args: &[&str]) -> String {
        let out = Command::new("docker").arg("exec").arg(&self.name).args(args).output().unwrap();
        assert!(out.status.success(), "{args:?}: {}", text(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `tool` (pg_dump, pg_dumpall) run in the source's container with `args`, its output
    /// copied to `file` in `scratch`.
    fn dump(&self, scratch: &Scratch, file: &str, tool: &str, args: &[&str]) -> PathBuf {
        let inside = format!("/tmp/{file}");
        let mut all = vec![tool, "-U", "postgres", "-f", &inside];
        all.extend_from_slice(args);
        self.exec(&all);
        let path = scratch.path(file);
        let copied =
            Command::new("docker").arg("cp").arg(format!("{}:{inside}", self.name)).arg(&path).status().unwrap();
        assert!(copied.success(), "docker cp");
        Command::new("chmod").arg("-R").arg("a+rX").arg(&path).status().unwrap();
        path
    }

    /// `pg_dump --schema-only` of `database` without the lines that differ by run (`\restrict`
    /// keys), and its tables' exact row counts and large objects; a hash-partitioned table's
    /// rows counted on its whole tree (an enum hashes by its labels' oids, which each restore
    /// assigns anew: psql's restore spreads the rows otherwise over the partitions too).
    fn contents(&self, database: &str) -> (String, String) {
        let schema = self.exec(&["pg_dump", "-U", "postgres", "--schema-only", database]);
        let schema: Vec<&str> =
            schema.lines().filter(|l| !l.starts_with("\\restrict") && !l.starts_with("\\unrestrict")).collect();
        let rows = self
            .psql(
                database,
                "WITH hashed AS (SELECT partrelid FROM pg_partitioned_table WHERE partstrat = 'h') \
                 SELECT format('%I.%I', n.nspname, c.relname) || ' ' || (xpath('/row/c/text()', query_to_xml(format(\
                 'SELECT count(*) AS c FROM %s %I.%I', CASE c.relkind WHEN 'p' THEN '' ELSE 'ONLY' END, n.nspname, c.relname), \
                 false, true, '')))[1]::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast') \
                 AND ((c.relkind IN ('r', 'm') AND NOT EXISTS (SELECT FROM pg_inherits i JOIN hashed h ON h.partrelid = i.inhparent \
                 WHERE i.inhrelid = c.oid)) OR c.oid IN (SELECT partrelid FROM hashed)) \
                 UNION ALL SELECT 'large objects ' || count(*) FROM pg_largeobject_metadata ORDER BY 1",
            )
            .unwrap();
        (schema.join("\n"), rows)
    }
}

impl Drop for Source {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(["rm", "-f", "-v", &self.name]).stdout(Stdio::null()).status();
    }
}

fn text(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

fn pgdrill(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_pgdrill")).args(args).current_dir(root()).output().expect("run pgdrill")
}

/// The checks every corpus drill runs, against `baseline`.
fn checks(baseline: &Path) -> String {
    format!(
        "baseline = \"{}\"\n[checks.row_counts]\nexpect_from_dump = true\nbaseline = true\n\
         [checks.indexes]\nbaseline = true\n[checks.schemas]\nbaseline = true\n",
        baseline.display()
    )
}

/// Every check of the drill passed; else the failures, each with its message.
fn assert_passed(what: &str, drill: &Drill) {
    let failed: Vec<String> = drill
        .record()
        .checks
        .iter()
        .filter(|c| c.verdict != Verdict::Pass)
        .map(|c| format!("{}: {}", c.id, c.message))
        .collect();
    assert!(drill.record().verdict == DrillVerdict::Pass && failed.is_empty(), "{what}: {failed:#?}\n{drill:?}");
    assert_eq!(drill.code, Some(0), "{what}\n{drill:?}");
}

/// The database a `--keep` drill on a server target kept, from what it printed.
fn kept_database(drill: &Drill) -> String {
    let line = drill.stdout.lines().chain(drill.stderr.lines()).find(|l| l.contains("kept: target"));
    let line = line.unwrap_or_else(|| panic!("nothing kept\n{drill:?}"));
    let after = &line[line.find("database `").unwrap_or_else(|| panic!("{line}")) + 10..];
    after[..after.find('`').unwrap()].to_owned()
}

/// One plain dump drilled on the source's server (kept), restored by psql beside it, and the
/// two compared; both databases dropped after.
fn drill_plain(source: &Source, scratch: &Scratch, baseline: &Path, variant: &str, options: &[&str]) {
    let file = format!("{variant}.sql");
    let mut args = options.to_vec();
    args.push("corpus");
    let dump = source.dump(scratch, &file, "pg_dump", &args);
    let scenario = scratch.scenario(
        &format!("{variant}.toml"),
        &format!(
            "name = \"corpus-{variant}\"\n{}[source]\npath = \"{}\"\ntrusted = \"made by this test\"\n\
             [target]\nkind = \"server\"\nurl_env = \"CORPUS_ADMIN_URL\"\ndatabase = \"corpus_{variant}\"\n",
            checks(baseline),
            dump.display()
        ),
    );
    let env = [
        ("CORPUS_ADMIN_URL".to_owned(), source.url()),
        ("XDG_STATE_HOME".to_owned(), scratch.path("state").display().to_string()),
    ];
    let drill = scratch.drill_env(&scenario, &["--keep".to_owned()], &env);
    assert_passed(variant, &drill);
    let kept = kept_database(&drill);
    let reference = format!("psql_{variant}");
    source.psql("postgres", &format!("CREATE DATABASE {reference}")).unwrap();
    let restored = source.psql_stdin(&reference, &std::fs::read(&dump).unwrap());
    restored.unwrap_or_else(|e| panic!("psql's own restore of {variant}: {e}"));
    let (ours, theirs) = (source.contents(&kept), source.contents(&reference));
    assert!(ours.0 == theirs.0, "{variant}: pgdrill's restore has another schema than psql's");
    assert_eq!(ours.1, theirs.1, "{variant}: pgdrill's restore has other rows than psql's");
    for database in [kept, reference] {
        source.psql("postgres", &format!("DROP DATABASE \"{database}\" WITH (FORCE)")).unwrap();
    }
}

/// The baseline of the source, captured through its socket, in libpq's URI and key=value forms.
fn baselines(source: &Source, scratch: &Scratch) -> PathBuf {
    let sockets = source.sockets.path().display().to_string();
    let mut kept = None;
    for (n, dsn) in
        [format!("postgresql://postgres@/corpus?host={sockets}"), format!("host={sockets} dbname=corpus user=postgres")]
            .iter()
            .enumerate()
    {
        let path = scratch.path(&format!("baseline-{n}.json"));
        let out = pgdrill(&["baseline", "--dsn", dsn, "-o", &path.display().to_string()]);
        assert_eq!(out.status.code(), Some(0), "{dsn}: {}", text(&out));
        assert!(text(&out).contains("public.tags_tag"), "the invalid index is named when capturing: {}", text(&out));
        let baseline: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(baseline["database"], "corpus", "{dsn}");
        kept.get_or_insert(path);
    }
    // A form libpq refuses is still refused, saying why.
    let out = pgdrill(&["baseline", "--dsn", &format!("host={sockets} dbnam=corpus"), "-o", "/dev/null"]);
    assert_ne!(out.status.code(), Some(0));
    assert!(text(&out).contains("invalid connection option \"dbnam\""), "{}", text(&out));
    kept.unwrap()
}

#[test]
fn every_format_and_option_of_pg_dump_drills_clean_and_restores_as_psql_does() {
    let started = Instant::now();
    let scratch = Scratch::new();
    let source = Source::start();
    let baseline = baselines(&source, &scratch);
    let plain: [(&str, &[&str]); 7] = [
        ("plain", &[]),
        ("inserts", &["--inserts"]),
        ("column_inserts", &["--column-inserts", "--rows-per-insert=3"]),
        ("via_root", &["--load-via-partition-root"]),
        ("quoted", &["--quote-all-identifiers"]),
        ("clean", &["--clean", "--if-exists"]),
        ("no_owner", &["--no-owner", "--no-privileges"]),
    ];
    let (source, scratch, baseline) = (&source, &scratch, baseline.as_path());
    std::thread::scope(|s| {
        for chunk in plain.chunks(4) {
            let handles: Vec<_> = chunk
                .iter()
                .map(|&(variant, options)| s.spawn(move || drill_plain(source, scratch, baseline, variant, options)))
                .collect();
            for handle in handles {
                if let Err(panic) = handle.join() {
                    std::panic::resume_unwind(panic);
                }
            }
        }
    });
    eprintln!("corpus: source, baselines and {} plain drills in {:?}", plain.len(), started.elapsed());
}

/// `scenario`'s drill on a container target of its own (the target's pg_restore for an archive).
fn drill_in_container(scratch: &Scratch, baseline: &Path, name: &str, dump: &Path, database: Option<&str>) -> Drill {
    let database = database.map(|d| format!("database = \"{d}\"\n")).unwrap_or_default();
    // The role the corpus grants to: a pg_dumpall file creates it, a dump needs it declared.
    let roles = if name.starts_with("cluster") { "" } else { "[[restore.roles]]\nname = \"corpus_reader\"\n" };
    let scenario = scratch.scenario(
        &format!("{name}.toml"),
        &format!(
            "name = \"corpus-{name}\"\n{}[source]\npath = \"{}\"\n[target]\n{database}{roles}",
            checks(baseline),
            dump.display()
        ),
    );
    scratch.drill(&scenario)
}

/// Drills side by side, each in a thread of its own.
fn side_by_side<'a>(jobs: Vec<Box<dyn FnOnce() + Send + 'a>>) {
    std::thread::scope(|s| {
        let handles: Vec<_> = jobs.into_iter().map(|job| s.spawn(job)).collect();
        for handle in handles {
            if let Err(panic) = handle.join() {
                std::panic::resume_unwind(panic);
            }
        }
    });
}

#[test]
fn archives_of_every_format_drill_clean_and_a_restore_that_lost_rows_fails() {
    let started = Instant::now();
    let scratch = Scratch::new();
    let source = Source::start();
    let baseline = baselines(&source, &scratch);
    let (scratch, baseline) = (&scratch, baseline.as_path());
    let mut jobs: Vec<Box<dyn FnOnce() + Send + '_>> = Vec::new();
    for (variant, file) in [("custom", "corpus.dump"), ("directory", "corpus.dir"), ("tar", "corpus.tar")] {
        let dump = source.dump(scratch, file, "pg_dump", &[&format!("--format={variant}"), "corpus"]);
        jobs.push(Box::new(move || {
            assert_passed(variant, &drill_in_container(scratch, baseline, variant, &dump, Some("corpus")))
        }));
    }
    // Rows lost after the data loaded (by a statement the dump carries): the dump's own counts
    // catch it, a partitioned table's on its whole tree.
    let good = std::fs::read_to_string(source.dump(scratch, "good.sql", "pg_dump", &["corpus"])).unwrap();
    let end = good.find("--\n-- PostgreSQL database dump complete").expect("a complete dump");
    let lost = "DELETE FROM public.tags WHERE id = 1;\nDELETE FROM public.moods WHERE id <= 9;\n\n";
    let broken = scratch.write("lost.sql", format!("{}{lost}{}", &good[..end], &good[end..]));
    jobs.push(Box::new(move || {
        let drill = drill_in_container(scratch, baseline, "lost", &broken, Some("corpus"));
        drill.assert_failed_cleanly();
        let dump = drill.record().checks.iter().find(|c| c.id == "row_counts/every table in the dump");
        let message = &dump.unwrap_or_else(|| panic!("no dump row counts\n{drill:?}")).message;
        assert!(message.contains("public.tags has 11 (dump: 12)"), "{message}");
        assert!(message.contains("public.moods (its whole partition tree) has 81 (dump: 90)"), "{message}");
    }));
    side_by_side(jobs);
    eprintln!("corpus: source, baselines and 4 container drills in {:?}", started.elapsed());
}

#[test]
fn a_pg_dumpall_of_the_whole_cluster_drills_clean() {
    let started = Instant::now();
    let scratch = Scratch::new();
    let source = Source::start();
    let baseline = baselines(&source, &scratch);
    let cluster = source.dump(&scratch, "cluster.sql", "pg_dumpall", &[]);
    let text = std::fs::read_to_string(&cluster).unwrap();
    assert!(text.contains("CREATE ROLE postgres;") && text.contains("CREATE DATABASE corpus"), "{}", &text[..2000]);
    // Rows lost in the corpus database's part: its own counts catch it, not another database's.
    let corpus = text.find("\\connect corpus").expect("the corpus database's part");
    let end = corpus + text[corpus..].find("--\n-- PostgreSQL database dump complete").expect("its end");
    let lost = scratch.write(
        "cluster-lost.sql",
        format!("{}DELETE FROM public.tags WHERE id = 1;\n\n{}", &text[..end], &text[end..]),
    );
    let (scratch, baseline, cluster, lost) = (&scratch, baseline.as_path(), cluster.as_path(), lost.as_path());
    side_by_side(vec![
        // The scenario names the database the checks read...
        Box::new(move || {
            assert_passed("named", &drill_in_container(scratch, baseline, "cluster_named", cluster, Some("corpus")))
        }),
        // ...or, by default, the only database the dump creates.
        Box::new(move || {
            let drill = drill_in_container(scratch, baseline, "cluster_default", cluster, None);
            assert_passed("default", &drill);
            let summary = drill.phase_summary(pgdrill::outcome::Phase::Restore);
            assert!(summary.contains("into database `corpus`"), "{summary}");
        }),
        Box::new(move || {
            let drill = drill_in_container(scratch, baseline, "cluster_lost", lost, None);
            drill.assert_failed_cleanly();
            let dump = drill.record().checks.iter().find(|c| c.id == "row_counts/every table in the dump");
            let message = &dump.unwrap_or_else(|| panic!("no dump row counts\n{drill:?}")).message;
            assert!(
                message.starts_with("1 table does not hold") && message.contains("public.tags has 11 (dump: 12)"),
                "{message}"
            );
        }),
    ]);
    eprintln!("corpus: pg_dumpall drilled twice in {:?}", started.elapsed());
}
