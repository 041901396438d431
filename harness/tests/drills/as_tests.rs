//! Drills as tests: the `scenarios` test target run by nextest itself, as CI runs it, on a folder
//! of small scenarios (two that pass, one that fails), and its result read back: the trials it
//! lists, the filters, the tags, and a run split over two partitions whose merged reports give
//! the verdicts of a single run. And a user's own repository, a crate of its own that depends on
//! pgdrill by path, whose `tests/drills.rs` is the three lines the docs show
//! (docs/src/guide/ci.md), read from that page.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::util::{Scratch, root};

/// The trials of the scratch folder, in the order the target lists them.
const TRIALS: [&str; 3] = ["drill::fail_c", "drill::nested::pass_b", "drill::pass_a"];

/// Three scenarios on the PLUR fixture backup: `pass-a` (tag quarterly), `nested/pass-b` (tag
/// roles), `fail-c` (a row count the backup does not have).
fn scenarios(scratch: &Scratch) -> PathBuf {
    let dir = scratch.path("scenarios");
    std::fs::create_dir_all(dir.join("nested")).expect("scenario folder");
    let scenario = |tag: &str, count: u32| {
        format!(
            "tags = [\"{tag}\"]\n[source]\npath = \"{{fixtures}}/plur.sql.gz\"\n[restore]\nglobals = \"{{fixtures}}/plur.globals.sql\"\n\
             [checks.row_counts.tables]\n\"public.schema_migrations\" = {count}\n"
        )
    };
    scratch.scenario("scenarios/pass-a.toml", &scenario("quarterly", 10));
    scratch.scenario("scenarios/nested/pass-b.toml", &scenario("roles", 10));
    scratch.scenario("scenarios/fail-c.toml", &scenario("quarterly", 11));
    std::fs::write(dir.join("notes.txt"), "not a scenario").expect("write");
    dir
}

/// `cargo <args>` in the workspace, outside this test's cargo environment (its variables would
/// make cargo rebuild everything), with the scenarios folder and reports folder given.
fn cargo(args: &[&str], env: &[(&str, &Path)]) -> Output {
    cargo_in(&root(), args, env)
}

/// `cargo <args>` in the crate at `dir`, as [`cargo`] does.
fn cargo_in(dir: &Path, args: &[&str], env: &[(&str, &Path)]) -> Output {
    let mut command = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        let inherited = key.starts_with("CARGO_") && key != "CARGO_HOME" && key != "CARGO_TARGET_DIR";
        if inherited || key.starts_with("NEXTEST") || key.starts_with("__NEXTEST") || key == "OUT_DIR" {
            command.env_remove(key.as_ref());
        }
    }
    command.args(args).envs(env.iter().copied()).current_dir(dir);
    command.output().expect("run cargo")
}

fn text(output: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// `cargo nextest run` on the scenarios target: the trials it ran and how each ended.
fn nextest_run(extra: &[&str], env: &[(&str, &Path)]) -> (BTreeMap<String, String>, Output) {
    let mut args = vec!["nextest", "run", "--workspace", "--test", "scenarios", "--no-fail-fast"];
    args.extend_from_slice(extra);
    let output = cargo(&args, env);
    let mut outcomes = BTreeMap::new();
    for line in String::from_utf8_lossy(&output.stderr).lines() {
        let line = line.trim_start();
        let Some((status, rest)) = line.split_once(' ') else { continue };
        if matches!(status, "PASS" | "FAIL")
            && let Some(name) = rest.split_once("pgdrill::scenarios ").map(|(_, name)| name.trim())
        {
            outcomes.insert(name.to_owned(), status.to_owned());
        }
    }
    (outcomes, output)
}

fn pgdrill(args: &[&OsStr]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pgdrill")).args(args).current_dir(root()).output().expect("run pgdrill")
}

/// `| `scenario` | ✅ pass |` rows of a merged summary.md, as (scenario, verdict).
fn verdicts(summary: &str) -> Vec<(String, String)> {
    summary
        .lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            (cells.len() > 3 && cells[1].starts_with('`')).then(|| (cells[1].to_owned(), cells[2].to_owned()))
        })
        .collect()
}

#[test]
fn the_target_lists_one_trial_per_scenario_sorted_and_filters_work() {
    let scratch = Scratch::new();
    let dir = scenarios(&scratch);
    let env = [("PGDRILL_SCENARIOS", dir.as_path())];

    // nextest's list, as JSON: every scenario, named by its path.
    let listed = cargo(&["nextest", "list", "--workspace", "--test", "scenarios", "--message-format", "json"], &env);
    assert!(listed.status.success(), "{}", text(&listed));
    let json: serde_json::Value = serde_json::from_slice(&listed.stdout).expect("nextest list JSON");
    let suite = &json["rust-suites"]["pgdrill::scenarios"];
    let names: Vec<&str> = suite["testcases"].as_object().expect("testcases").keys().map(String::as_str).collect();
    assert_eq!(names, TRIALS, "{}", text(&listed));

    // The binary's own list (what `cargo test` shows) is sorted.
    let binary = suite["binary-path"].as_str().expect("binary path");
    let own = Command::new(binary).args(["--list", "--format", "terse"]).env("PGDRILL_SCENARIOS", &dir).output();
    let own = own.expect("run the scenarios binary");
    let own_names: Vec<String> = String::from_utf8_lossy(&own.stdout)
        .lines()
        .filter_map(|l| l.strip_suffix(": test"))
        .map(str::to_owned)
        .collect();
    assert_eq!(own_names, TRIALS, "{}", text(&own));

    // `cargo test` runs the same target; a name filter narrows it.
    let cargo_test = cargo(&["test", "--workspace", "--test", "scenarios", "--", "--list", "pass"], &env);
    assert!(cargo_test.status.success(), "{}", text(&cargo_test));
    let stdout = String::from_utf8_lossy(&cargo_test.stdout);
    assert!(stdout.contains("drill::pass_a: test") && stdout.contains("drill::nested::pass_b: test"), "{stdout}");
    assert!(!stdout.contains("fail_c"), "{stdout}");

    // nextest's filter expressions, as the docs show them (docs/src/guide/ci.md).
    let filtered = cargo(&["nextest", "list", "--workspace", "--test", "scenarios", "-E", "test(/nested/)"], &env);
    let stdout = String::from_utf8_lossy(&filtered.stdout);
    assert!(stdout.contains("drill::nested::pass_b") && !stdout.contains("drill::pass_a"), "{}", text(&filtered));

    // No scenario at all is an error, not an empty green run.
    let empty = scratch.path("empty");
    std::fs::create_dir_all(&empty).expect("empty folder");
    let none =
        cargo(&["nextest", "list", "--workspace", "--test", "scenarios"], &[("PGDRILL_SCENARIOS", empty.as_path())]);
    assert!(!none.status.success(), "{}", text(&none));
    assert!(String::from_utf8_lossy(&none.stderr).contains("no scenario (*.toml) under"), "{}", text(&none));
}

#[test]
fn two_partitions_merged_give_the_verdicts_of_one_run() {
    let scratch = Scratch::new();
    let dir = scenarios(&scratch);
    let (single_dir, shard1_dir, shard2_dir) = (scratch.path("single"), scratch.path("shard1"), scratch.path("shard2"));

    // The single run and the two shards run side by side, as they would on three CI machines.
    let (single, shard1, shard2) = std::thread::scope(|s| {
        let spawn = |reports: PathBuf, extra: &'static [&'static str]| {
            let dir = dir.clone();
            s.spawn(move || nextest_run(extra, &[("PGDRILL_SCENARIOS", dir.as_path()), ("PGDRILL_REPORTS", &reports)]))
        };
        let single = spawn(single_dir.clone(), &[]);
        let shard1 = spawn(shard1_dir.clone(), &["--partition", "count:1/2"]);
        let shard2 = spawn(shard2_dir.clone(), &["--partition", "count:2/2"]);
        (single.join().expect("single"), shard1.join().expect("shard 1"), shard2.join().expect("shard 2"))
    });

    // One run: two pass, one fails, and the failure says what was expected and what was found.
    let expected: BTreeMap<String, String> =
        [("drill::fail_c", "FAIL"), ("drill::nested::pass_b", "PASS"), ("drill::pass_a", "PASS")]
            .into_iter()
            .map(|(n, s)| (n.to_owned(), s.to_owned()))
            .collect();
    assert_eq!(single.0, expected, "{}", text(&single.1));
    assert!(!single.1.status.success(), "a failing drill must fail the run\n{}", text(&single.1));
    let output = text(&single.1);
    assert!(
        output.contains("fail row_counts/public.schema_migrations: expected 11, actual 10")
            && output.contains("`public.schema_migrations` has 10 rows, expected 11 (1 fewer)"),
        "the failing trial must print which check failed, expected against actual\n{output}"
    );

    // The shards split the trials between them, and each decides them as the single run did.
    let mut union = shard1.0.clone();
    for (name, status) in &shard2.0 {
        assert!(union.insert(name.clone(), status.clone()).is_none(), "{name} ran in both shards");
    }
    assert!(!shard1.0.is_empty() && !shard2.0.is_empty(), "{}\n{}", text(&shard1.1), text(&shard2.1));
    assert_eq!(union, expected, "{}\n{}", text(&shard1.1), text(&shard2.1));

    // Merging the shards' reports gives the verdicts of merging the single run's.
    let merged = scratch.path("merged");
    let merged_single = scratch.path("merged-single");
    let merge = |dirs: &[&Path], output: &Path| {
        let mut args: Vec<&OsStr> = vec![OsStr::new("report"), OsStr::new("merge")];
        args.extend(dirs.iter().map(|d| d.as_os_str()));
        args.extend([OsStr::new("--output"), output.as_os_str()]);
        pgdrill(&args)
    };
    let from_shards = merge(&[&shard1_dir, &shard2_dir], &merged);
    assert_eq!(from_shards.status.code(), Some(1), "a merged failure is a failure\n{}", text(&from_shards));
    let from_single = merge(&[&single_dir], &merged_single);
    assert_eq!(from_single.status.code(), Some(1), "{}", text(&from_single));
    let shards_summary = std::fs::read_to_string(merged.join("summary.md")).expect("summary.md");
    let single_summary = std::fs::read_to_string(merged_single.join("summary.md")).expect("summary.md");
    let shard_verdicts = verdicts(&shards_summary);
    assert_eq!(
        shard_verdicts,
        [("`fail-c`", "❌ fail"), ("`pass-a`", "✅ pass"), ("`pass-b`", "✅ pass")]
            .map(|(a, b)| (a.to_owned(), b.to_owned()))
            .to_vec(),
        "{shards_summary}"
    );
    assert_eq!(shard_verdicts, verdicts(&single_summary), "{shards_summary}\n{single_summary}");
    assert!(shards_summary.starts_with("# Restore drills: FAIL\n\n2 of 3 drills passed."), "{shards_summary}");

    let junit = std::fs::read_to_string(merged.join("junit.xml")).expect("junit.xml");
    assert_eq!(junit.matches("<testsuite ").count(), 3, "{junit}");
    assert!(junit.contains("<failure") && junit.contains("expected 11"), "{junit}");
    crate::junit_schema::assert_valid(&merged.join("junit.xml"));
}

#[test]
fn tags_select_the_trials_that_run() {
    let scratch = Scratch::new();
    let dir = scenarios(&scratch);
    let reports = scratch.path("reports");
    let env = [
        ("PGDRILL_SCENARIOS", dir.as_path()),
        ("PGDRILL_REPORTS", reports.as_path()),
        ("PGDRILL_TAGS", Path::new("roles")),
    ];
    let (outcomes, output) = nextest_run(&[], &env);
    assert!(output.status.success(), "{}", text(&output));
    assert_eq!(outcomes.into_iter().collect::<Vec<_>>(), [("drill::nested::pass_b".to_owned(), "PASS".to_owned())]);
    assert!(String::from_utf8_lossy(&output.stderr).contains("2 skipped"), "{}", text(&output));
}

/// The target folder this test binary was built in (`<target>/debug/deps/drills-...`).
fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary");
    exe.ancestors().nth(3).expect("target folder").to_owned()
}

#[test]
fn a_repository_of_its_own_drills_with_the_library_entry_point() {
    let scratch = Scratch::new();
    let repo = scratch.path("acme");
    std::fs::create_dir_all(repo.join("tests")).expect("tests folder");
    std::fs::create_dir_all(repo.join("src")).expect("src folder");
    std::fs::create_dir_all(repo.join("scenarios/nightly")).expect("scenarios folder");
    // The workspace's profiles (debug info, optimised crates) and its lock file, so that the
    // build shares this workspace's compiled dependencies (only the crate and pgdrill itself are
    // compiled): with another profile every dependency is compiled again.
    let manifest = std::fs::read_to_string(root().join("Cargo.toml")).expect("Cargo.toml");
    let profile = &manifest[manifest.find("[profile.dev]").expect("the workspace's profile")..];
    std::fs::write(
        repo.join("Cargo.toml"),
        format!(
            "[package]\nname = \"acme-drills\"\nversion = \"0.0.0\"\nedition = \"2024\"\npublish = false\n\n\
             [dev-dependencies]\npgdrill = {{ path = {:?} }}\n\n[[test]]\nname = \"drills\"\nharness = false\n\n\
             [workspace]\n\n{profile}",
            root().join("harness")
        ),
    )
    .expect("Cargo.toml");
    std::fs::copy(root().join("Cargo.lock"), repo.join("Cargo.lock")).expect("Cargo.lock");
    std::fs::write(repo.join("src/lib.rs"), "").expect("lib.rs");
    // The docs' three lines, as docs/src/guide/ci.md shows them.
    std::fs::write(repo.join("tests/drills.rs"), docs_drills_rs()).expect("drills.rs");
    let suffix = crate::util::rand_suffix();
    let fixtures = root().join("fixtures/backups");
    let scenario = |name: &str, count: u32| {
        format!(
            "name = \"acme-{name}-{suffix}\"\n[source]\npath = \"{}/plur.sql.gz\"\n[restore]\nglobals = \"{}/plur.globals.sql\"\n\
             [checks.row_counts.tables]\n\"public.schema_migrations\" = {count}\n",
            fixtures.display(),
            fixtures.display()
        )
    };
    std::fs::write(repo.join("scenarios/orders.toml"), scenario("orders", 10)).expect("scenario");
    std::fs::write(repo.join("scenarios/nightly/billing-eu.toml"), scenario("billing", 11)).expect("scenario");

    let target = target_dir();
    let env = [("CARGO_TARGET_DIR", target.as_path())];
    let run = cargo_in(&repo, &["nextest", "run", "--no-fail-fast"], &env);
    let stderr = String::from_utf8_lossy(&run.stderr);
    let outcomes: BTreeMap<&str, &str> = stderr
        .lines()
        .filter_map(|line| {
            let (status, rest) = line.trim_start().split_once(' ')?;
            let name = rest.split_once("acme-drills::drills ")?.1.trim();
            matches!(status, "PASS" | "FAIL").then_some((name, status))
        })
        .collect();
    assert_eq!(
        outcomes,
        BTreeMap::from([("drill::nightly::billing_eu", "FAIL"), ("drill::orders", "PASS")]),
        "{}",
        text(&run)
    );
    assert!(!run.status.success(), "a failing drill fails the user's test run\n{}", text(&run));
    assert!(stderr.contains("expected 11, actual 10"), "the failure says what was found\n{}", text(&run));

    // The reports went to the build's target folder, where the user's CI finds them.
    let reports = target.join("pgdrill-reports");
    for name in ["orders", "billing"] {
        let dir = reports.join(format!("acme-{name}-{suffix}"));
        let drills: Vec<_> = std::fs::read_dir(&dir).map(|d| d.flatten().collect()).unwrap_or_default();
        assert!(drills.iter().any(|d| d.path().join("drill.json").is_file()), "no report in {}", dir.display());
        #[expect(clippy::disallowed_methods, reason = "a test, not async: the reports of two drills")]
        std::fs::remove_dir_all(&dir).expect("remove the reports");
    }

    // nextest's filters and partitions work on the user's trials as on pgdrill's own.
    let listed = cargo_in(&repo, &["nextest", "list", "-E", "test(/nightly/)"], &env);
    let stdout = String::from_utf8_lossy(&listed.stdout);
    assert!(stdout.contains("drill::nightly::billing_eu") && !stdout.contains("drill::orders"), "{}", text(&listed));
}

/// The `tests/drills.rs` docs/src/guide/ci.md tells a user to write: its ```rust block.
fn docs_drills_rs() -> String {
    let page = std::fs::read_to_string(root().join("docs/src/guide/ci.md")).expect("docs/src/guide/ci.md");
    let start = page.find("```rust\n").expect("the page's rust block") + "```rust\n".len();
    let end = start + page[start..].find("```").expect("its end");
    let lines: Vec<&str> = page[start..end].lines().collect();
    let indent = lines.iter().map(|l| l.len() - l.trim_start().len()).min().unwrap_or(0);
    let text: Vec<&str> = lines.iter().map(|l| &l[indent.min(l.len())..]).collect();
    assert!(text.concat().contains("pgdrill::trials::Drills::new"), "the page's rust block: {text:?}");
    text.join("\n").trim_end().to_owned() + "\n"
}
