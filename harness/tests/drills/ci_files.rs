//! The ready CI files in `ci/` (three GitHub Actions workflows, a GitLab CI example): valid YAML,
//! valid against the schemas GitHub and GitLab publish (check-jsonschema's vendored copies),
//! every `pgdrill` command they run accepted by pgdrill's own command line, every nextest target
//! and profile they name defined, every repository path they name present, and every tag they
//! select carried by a scenario.

use std::path::PathBuf;
use std::process::Command;

use clap::Parser;
use pgdrill::cli::Cli;
use yaml_rust2::{Yaml, YamlLoader};

use crate::util::root;

const GITHUB: [&str; 3] =
    ["ci/github/quarterly-drill.yml", "ci/github/pre-migration.yml", "ci/github/release-gate.yml"];
const GITLAB: &str = "ci/gitlab/.gitlab-ci.yml";

/// Every shell script of a CI file: GitHub's `run`, GitLab's `script`, `before_script`, ...
fn scripts(node: &Yaml, out: &mut Vec<String>) {
    match node {
        Yaml::Hash(map) => {
            for (key, value) in map {
                let script_key = matches!(key.as_str(), Some("run" | "script" | "before_script" | "after_script"));
                match value {
                    Yaml::String(text) if script_key => out.push(text.clone()),
                    Yaml::Array(items) if script_key => {
                        out.extend(items.iter().filter_map(|i| i.as_str().map(str::to_owned)))
                    }
                    other => scripts(other, out),
                }
            }
        }
        Yaml::Array(items) => items.iter().for_each(|i| scripts(i, out)),
        _ => {}
    }
}

/// The simple commands of a script: continuation lines joined, split at `&&`, `||`, `;`, `|`,
/// GitHub expressions (`${{ matrix.shard }}`) replaced by a word, `do`/`then` dropped.
fn commands(script: &str) -> Vec<Vec<String>> {
    let mut text = script.replace("\\\n", " ");
    while let Some(start) = text.find("${{") {
        let end = text[start..].find("}}").map(|e| start + e + 2).unwrap_or(text.len());
        text.replace_range(start..end, "1");
    }
    let mut out = Vec::new();
    for line in text.lines() {
        for part in line.split("&&").flat_map(|p| p.split("||")).flat_map(|p| p.split(';')).flat_map(|p| p.split(" | "))
        {
            let Ok(mut words) = shell_words::split(part.trim()) else { continue };
            while words.first().is_some_and(|w| w == "do" || w == "then") {
                words.remove(0);
            }
            if let Some(redirect) = words.iter().position(|w| w.starts_with('>') || w.starts_with("2>")) {
                words.truncate(redirect);
            }
            if !words.is_empty() {
                out.push(words);
            }
        }
    }
    out
}

struct Invocations {
    /// pgdrill's arguments, after the program name.
    pgdrill: Vec<Vec<String>>,
    /// `cargo nextest run` arguments.
    nextest: Vec<Vec<String>>,
}

fn invocations(file: &str) -> (Invocations, String) {
    let text = std::fs::read_to_string(root().join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
    let docs = YamlLoader::load_from_str(&text).unwrap_or_else(|e| panic!("{file} is not valid YAML: {e}"));
    let mut all = Vec::new();
    for doc in &docs {
        scripts(doc, &mut all);
    }
    let mut found = Invocations { pgdrill: Vec::new(), nextest: Vec::new() };
    for words in all.iter().flat_map(|s| commands(s)) {
        match words.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
            ["pgdrill", ..] => found.pgdrill.push(words[1..].to_vec()),
            ["cargo", "run", ..] => {
                let dash = words.iter().position(|w| w == "--").expect("cargo run passes pgdrill's arguments after --");
                found.pgdrill.push(words[dash + 1..].to_vec());
            }
            ["cargo", "nextest", "run", ..] => found.nextest.push(words[3..].to_vec()),
            _ => {}
        }
    }
    (found, text)
}

fn value_of<'a>(args: &'a [String], flag: &str) -> Option<&'a str> {
    args.iter().position(|a| a == flag).and_then(|i| args.get(i + 1)).map(String::as_str)
}

/// Every tag some scenario under `scenarios/` carries.
fn scenario_tags() -> Vec<String> {
    let files = pgdrill::scenario::discover(&[root().join("scenarios")]).expect("scenarios");
    files.iter().flat_map(|f| pgdrill::scenario::Scenario::load(f).expect("scenario loads").tags).collect()
}

fn assert_valid_invocations(file: &str) -> Invocations {
    let (found, text) = invocations(file);
    assert!(!found.pgdrill.is_empty() || !found.nextest.is_empty(), "{file} runs no drill");
    for args in &found.pgdrill {
        let argv = std::iter::once("pgdrill".to_owned()).chain(args.iter().cloned());
        if let Err(e) = Cli::try_parse_from(argv) {
            panic!("{file}: `pgdrill {}` is not a pgdrill command:\n{e}", args.join(" "));
        }
    }
    let manifest = std::fs::read_to_string(root().join("harness/Cargo.toml")).expect("Cargo.toml");
    let nextest = std::fs::read_to_string(root().join(".config/nextest.toml")).expect("nextest.toml");
    for args in &found.nextest {
        let target = value_of(args, "--test").unwrap_or_else(|| panic!("{file}: nextest without --test: {args:?}"));
        assert!(manifest.contains(&format!("name = \"{target}\"")), "{file}: no test target `{target}`");
        if let Some(profile) = value_of(args, "--profile") {
            assert!(nextest.contains(&format!("[profile.{profile}]")), "{file}: no nextest profile `{profile}`");
        }
    }
    // Repository paths the scripts name (`ci/image/TAG`, `scenarios`) exist.
    for (at, _) in text.match_indices(" ci/").chain(text.match_indices("(cat ci/")) {
        let start = text[at..].find("ci/").expect("ci/") + at;
        let path: String = text[start..].chars().take_while(|c| !c.is_whitespace() && !"\")'".contains(*c)).collect();
        assert!(root().join(&path).exists(), "{file} names `{path}`, which does not exist");
    }
    let tags = scenario_tags();
    for args in found.pgdrill.iter().chain(&found.nextest) {
        if let Some(tag) = value_of(args, "--tag") {
            assert!(tags.iter().any(|t| t == tag), "{file}: no scenario is tagged `{tag}`");
        }
    }
    if let Some(line) = text.lines().find(|l| l.contains("PGDRILL_TAGS:")) {
        let tag = line.split(':').nth(1).unwrap_or_default().trim();
        assert!(tags.iter().any(|t| t == tag), "{file}: no scenario is tagged `{tag}`");
    }
    found
}

/// check-jsonschema, with the schemas GitHub Actions and GitLab CI files are written against.
fn assert_schema(schema: &str, files: &[&str]) {
    let have = Command::new("python3").args(["-c", "import check_jsonschema"]).status().expect("python3");
    if !have.success() {
        let install = Command::new("python3")
            .args(["-m", "pip", "install", "--quiet", "check-jsonschema==0.39.0"])
            .status()
            .expect("pip");
        assert!(install.success(), "cannot install check-jsonschema");
    }
    let paths: Vec<PathBuf> = files.iter().map(|f| root().join(f)).collect();
    let output = Command::new("python3")
        .args(["-m", "check_jsonschema", "--builtin-schema", schema])
        .args(&paths)
        .output()
        .expect("check-jsonschema");
    assert!(
        output.status.success(),
        "{files:?} do not match {schema}:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn the_github_workflows_are_valid_and_run_commands_that_exist() {
    assert_schema("vendor.github-workflows", &GITHUB);
    let quarterly = assert_valid_invocations(GITHUB[0]);
    assert!(quarterly.nextest.iter().any(|a| value_of(a, "--partition").is_some()), "the drill is sharded");
    assert!(quarterly.pgdrill.iter().any(|a| a[..2] == ["report", "merge"]), "the shards are merged");
    let text = std::fs::read_to_string(root().join(GITHUB[0])).expect("workflow");
    assert!(text.contains("cron:") && text.contains("GITHUB_STEP_SUMMARY") && text.contains("upload-artifact"));

    let pre = assert_valid_invocations(GITHUB[1]);
    assert!(
        pre.pgdrill.iter().any(|a| a[0] == "run" && value_of(a, "--tag") == Some("pre-migration")),
        "{:?}",
        pre.pgdrill
    );

    let gate = assert_valid_invocations(GITHUB[2]);
    assert!(gate.pgdrill.iter().any(|a| a[0] == "gate"), "{:?}", gate.pgdrill);
}

#[test]
fn the_gitlab_example_is_valid_and_runs_commands_that_exist() {
    assert_schema("vendor.gitlab-ci", &[GITLAB]);
    let found = assert_valid_invocations(GITLAB);
    assert!(found.nextest.iter().any(|a| value_of(a, "--partition").is_some()));
    assert!(found.pgdrill.iter().any(|a| a[0] == "gate"));
    assert!(found.pgdrill.iter().any(|a| a[..2] == ["report", "merge"]));
    let text = std::fs::read_to_string(root().join(GITLAB)).expect("gitlab");
    assert!(text.contains("junit: "), "GitLab loads the JUnit reports");
}

/// The extraction itself: a misspelt subcommand or flag in a workflow is caught.
#[test]
fn a_misspelt_command_in_a_workflow_is_caught() {
    let script = "cargo build --release\npgdrill report merge shards --output merged || echo \"failed=true\" >> \"$GITHUB_OUTPUT\"\n\
                  for dir in shards/*/; do pgdrill report verify \"$dir\"; done\npgdrill gate scenarios --reprots reports\n";
    let found: Vec<Vec<String>> = commands(script).into_iter().filter(|w| w[0] == "pgdrill").collect();
    assert_eq!(found.len(), 3, "{found:?}");
    assert_eq!(found[0], ["pgdrill", "report", "merge", "shards", "--output", "merged"]);
    assert_eq!(found[1], ["pgdrill", "report", "verify", "$dir"]);
    assert!(Cli::try_parse_from(&found[0]).is_ok() && Cli::try_parse_from(&found[1]).is_ok());
    let error = Cli::try_parse_from(&found[2]).expect_err("--reprots is not a flag").to_string();
    assert!(error.contains("--reprots"), "{error}");
}
