//! The monitoring shipped in `monitoring/`, checked by Prometheus' own promtool: the alerting
//! rules load (`promtool check rules`) and fire when they should (`promtool test rules`, on
//! series shaped like metrics.prom's and follow.prom's), and every query of the Grafana dashboard
//! is valid PromQL (checked as recording rules). That every metric they read is one metrics.prom
//! or follow.prom writes is a unit test of `report::metrics` and of `follow::metrics`.
//!
//! promtool comes from Debian's `prometheus` package, unpacked by `.ci/run`. Without it the test
//! fails, unless PGDRILL_SKIP_PROMTOOL is set (then it says why it skipped).

use std::path::PathBuf;
use std::process::Command;

use crate::util::{Scratch, root};

/// `$PROMTOOL`, else `promtool` on the PATH.
fn promtool() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("PROMTOOL") {
        return Some(PathBuf::from(path));
    }
    std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .map(|dir| dir.join("promtool"))
        .find(|path| path.is_file())
}

fn run(promtool: &PathBuf, args: &[&str]) -> String {
    let output = Command::new(promtool).args(args).current_dir(root()).output().expect("run promtool");
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "promtool {}:\n{text}", args.join(" "));
    text
}

#[test]
fn the_alerting_rules_load_fire_when_they_should_and_the_dashboard_queries_parse() {
    let Some(promtool) = promtool() else {
        if std::env::var_os("PGDRILL_SKIP_PROMTOOL").is_some() {
            eprintln!("skipped: promtool is not installed and PGDRILL_SKIP_PROMTOOL is set");
            return;
        }
        panic!(
            "promtool is not installed: .ci/run unpacks it from Debian's prometheus package \
             (apt-get download prometheus && dpkg -x prometheus_*.deb DIR), or set PROMTOOL=/path/to/promtool; \
             PGDRILL_SKIP_PROMTOOL=1 skips this test"
        );
    };
    let checked = run(&promtool, &["check", "rules", "monitoring/pgdrill.rules.yml"]);
    assert!(checked.contains("SUCCESS: 18 rules found"), "{checked}");
    runbooks_are_pages_and_every_rule_waits();
    let tested = run(&promtool, &["test", "rules", "monitoring/pgdrill.rules.test.yml"]);
    assert!(tested.contains("SUCCESS"), "{tested}");

    // The dashboard's queries, as recording rules (the dashboard's variable as any value).
    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root().join("monitoring/grafana-dashboard.json")).unwrap())
            .expect("the dashboard is JSON");
    let exprs: Vec<String> = dashboard["panels"]
        .as_array()
        .expect("panels")
        .iter()
        .flat_map(|panel| panel["targets"].as_array().cloned().unwrap_or_default())
        .map(|target| target["expr"].as_str().expect("each target has a query").replace("$scenario", ".*"))
        .collect();
    assert!(exprs.len() >= 8, "{exprs:?}");
    let rules: String = exprs
        .iter()
        .enumerate()
        .map(|(i, expr)| {
            format!("      - record: dashboard:query{i}\n        expr: {}\n", serde_json::to_string(expr).unwrap())
        })
        .collect();
    let scratch = Scratch::new();
    let file = scratch.write("dashboard.rules.yml", format!("groups:\n  - name: dashboard\n    rules:\n{rules}"));
    let checked = run(&promtool, &["check", "rules", &file.display().to_string()]);
    assert!(checked.contains(&format!("SUCCESS: {} rules found", exprs.len())), "{checked}");
}

/// Every rule waits (`for:`) and links its runbook, a page of the guide that exists (or a
/// section of one); every alert has a unit test.
fn runbooks_are_pages_and_every_rule_waits() {
    let rules = std::fs::read_to_string(root().join("monitoring/pgdrill.rules.yml")).unwrap();
    let tests = std::fs::read_to_string(root().join("monitoring/pgdrill.rules.test.yml")).unwrap();
    let blocks: Vec<&str> = rules.split("- alert: ").skip(1).collect();
    assert_eq!(blocks.len(), 18, "{rules}");
    let page = "https://github.com/pgdrill/pgdrill/blob/main/";
    for block in blocks {
        let name = block.lines().next().unwrap().trim();
        assert!(block.contains("\n        for: "), "{name} has no `for:`");
        let url = block.split("runbook_url: \"").nth(1).and_then(|rest| rest.split('"').next());
        let path = url.and_then(|u| u.strip_prefix(page)).unwrap_or_else(|| panic!("{name}: no runbook under {page}"));
        // A section of the page, by a label (`#{{ $labels.kind }}`): `follow::metrics`' unit
        // tests check the page has one for each value.
        let path = path.split('#').next().unwrap_or(path);
        assert!(root().join(path).is_file(), "{name}: its runbook {path} is not a page of the guide");
        let summary = std::fs::read_to_string(root().join("docs/src/SUMMARY.md")).unwrap();
        assert!(summary.contains(path.trim_start_matches("docs/src/")), "{name}: {path} is not in SUMMARY.md");
        assert!(tests.contains(&format!("alertname: {name}\n")), "{name} has no unit test");
    }
}
