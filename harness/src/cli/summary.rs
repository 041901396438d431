//! The summary of `run` and `gate` on stdout: one table of the checks of the drills (with a
//! column naming the drill when there are several, run at once), then each drill's verdict,
//! where its reports are, and how to reach a target it kept.

use tabled::builder::Builder;
use tabled::settings::Style;

use super::verify;
use crate::check::Verdict;
use crate::drill::DrillOutcome;
use crate::units::human_duration;

/// The drills' outcomes on stdout, in the order given: one table of their checks (with a column
/// naming the drill when there are several), then each drill's verdict and where its reports
/// are.
pub(super) fn summarize(outcomes: &[&DrillOutcome]) {
    let several = outcomes.len() > 1;
    let checks: Vec<(&str, &crate::check::CheckResult)> =
        outcomes.iter().flat_map(|o| o.record.checks.iter().map(|c| (o.record.scenario.name.as_str(), c))).collect();
    if !checks.is_empty() {
        let mut builder = Builder::default();
        let head = ["drill", "check", "expected", "actual", "verdict"];
        builder.push_record(if several { &head[..] } else { &head[1..] }.iter().copied());
        for (drill, c) in checks {
            let mark = match c.verdict {
                Verdict::Pass => "pass",
                Verdict::Fail => "FAIL",
                Verdict::Error => "ERROR",
                Verdict::Skipped => "skipped",
            };
            let row = [drill, c.id.as_str(), c.expected.as_str(), c.actual.as_str(), mark];
            builder.push_record(if several { &row[..] } else { &row[1..] }.iter().copied());
        }
        let mut table = builder.build();
        table.with(Style::rounded());
        println!("{table}");
    }
    outcomes.iter().for_each(|outcome| verdict_lines(outcome));
}

/// A drill's verdict, its snapshot, where its reports are and how to reach a kept target.
fn verdict_lines(outcome: &DrillOutcome) {
    let r = &outcome.record;
    if let Some(snapshot) = &outcome.snapshot {
        println!("snapshot: {snapshot}");
    }
    println!(
        "{}: drill `{}` {} in {} ({})",
        r.verdict.as_str().to_uppercase(),
        r.scenario.name,
        if r.verdict == crate::outcome::DrillVerdict::Pass { "passed" } else { "did not pass" },
        human_duration(r.duration),
        r.checks_tally()
    );
    if crate::outcome::could_not_run(r) {
        println!("  it could not run: nothing it found is about the backup, and running it again may pass");
    }
    match &outcome.reports {
        Ok(paths) => {
            println!(
                "reports: {}\n  {}\n  {}\n  {}\n  {}\nhistory: {} (the drills of `{}` this one was compared with)",
                paths.dir.display(),
                paths.markdown.display(),
                paths.html.display(),
                paths.junit.display(),
                paths.json.display(),
                paths.history.display(),
                r.scenario.name
            );
            verify::signed_line(paths, r).into_iter().for_each(|line| println!("{line}"));
        }
        Err(e) => eprintln!("error: {}", crate::error::error_chain(e)),
    }
    if let Some(kept) = &outcome.kept {
        print_kept(kept);
    }
}

/// How to reach a kept target and remove it; the password stays in the connection file.
fn print_kept(kept: &crate::provision::kept::Kept) {
    let i = &kept.info;
    let what = match &i.container {
        Some(container) => format!("container {container}, database `{}`", i.database),
        None => format!("database `{}` on {}", i.database, i.address),
    };
    println!("kept: target `{}` ({what}) is still running", i.name);
    println!(
        "  connect: PGSERVICEFILE={} psql service={}",
        shell_quote(&kept.connection_file.display().to_string()),
        shell_quote(&kept.service)
    );
    println!("  remove:  pgdrill clean {}", shell_quote(&i.name));
}

/// A word as a POSIX shell reads it back: as it is when it is plain, else in single quotes.
fn shell_quote(word: &str) -> String {
    if !word.is_empty() && word.chars().all(|c| c.is_ascii_alphanumeric() || "/._-=:@%+,".contains(c)) {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}
