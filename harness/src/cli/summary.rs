//! The summary of `run` and `gate` on stdout: one table of the checks of the drills (with a
//! column naming the drill when there are several, run at once), then each drill's verdict,
//! where its reports are, and how to reach a target it kept.

use tabled::builder::Builder;
use tabled::settings::peaker::PriorityMax;
use tabled::settings::{Style, Width};

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
                Verdict::Pass => console::style("pass").green(),
                Verdict::Fail => console::style("FAIL").red().bold(),
                Verdict::Error => console::style("ERROR").red().bold(),
                Verdict::Skipped => console::style("skipped").yellow(),
            }
            .to_string();
            let row = [drill, c.id.as_str(), c.expected.as_str(), c.actual.as_str(), mark.as_str()];
            builder.push_record(if several { &row[..] } else { &row[1..] }.iter().copied());
        }
        let mut table = builder.build();
        table.with(Style::rounded());
        if let Some(width) = width() {
            // The widest columns (the messages) wrap first, at word boundaries.
            table.with(Width::wrap(width).keep_words(true).priority(PriorityMax::right()));
        }
        outln!("{table}");
    }
    outcomes.iter().for_each(|outcome| verdict_lines(outcome));
}

/// The width the table fits: the terminal's, or `COLUMNS` where stdout is no terminal; none in
/// a log (a CI log keeps each row on one line).
fn width() -> Option<usize> {
    crate::report::console::fitted_width(&console::Term::stdout())
}

/// What a run of several drills came to, said last (as nextest's "N tests run" line).
#[derive(Debug, Default)]
pub(super) struct Totals {
    passed: usize,
    failed: usize,
    could_not_run: usize,
    interrupted: usize,
    unusable: usize,
}

impl Totals {
    pub(super) fn add(&mut self, outcome: &DrillOutcome) {
        use crate::outcome::DrillVerdict;
        let r = &outcome.record;
        let count = match () {
            _ if outcome.scenario_error.is_some() => &mut self.unusable,
            _ if r.verdict == DrillVerdict::Pass => &mut self.passed,
            _ if r.verdict == DrillVerdict::Interrupted => &mut self.interrupted,
            _ if crate::outcome::could_not_run(r) => &mut self.could_not_run,
            _ => &mut self.failed,
        };
        *count += 1;
    }

    /// `3 drills run: 2 passed, 1 failed`; `None` for one drill (its verdict line says it).
    pub(super) fn line(&self) -> Option<String> {
        let total = self.passed + self.failed + self.could_not_run + self.interrupted + self.unusable;
        let parts = [
            (self.passed, console::style("passed").green()),
            (self.failed, console::style("failed").red().bold()),
            (self.could_not_run, console::style("could not run").yellow()),
            (self.interrupted, console::style("interrupted").yellow()),
            (self.unusable, console::style("had an unusable scenario").red().bold()),
        ];
        let said: Vec<String> = parts.iter().filter(|(n, _)| *n > 0).map(|(n, word)| format!("{n} {word}")).collect();
        (total > 1).then(|| format!("{total} drills run: {}", said.join(", ")))
    }
}

/// A drill's verdict, its snapshot, where its reports are and how to reach a kept target.
fn verdict_lines(outcome: &DrillOutcome) {
    let r = &outcome.record;
    if let Some(snapshot) = &outcome.snapshot {
        outln!("snapshot: {snapshot}");
    }
    let verdict = r.verdict.as_str().to_uppercase();
    let verdict = match r.verdict {
        crate::outcome::DrillVerdict::Pass => console::style(verdict).green().bold(),
        _ => console::style(verdict).red().bold(),
    };
    outln!(
        "{}: drill `{}` {} in {} ({})",
        verdict,
        r.scenario.name,
        if r.verdict == crate::outcome::DrillVerdict::Pass { "passed" } else { "did not pass" },
        human_duration(r.duration),
        r.checks_tally()
    );
    if crate::outcome::could_not_run(r) {
        outln!("  it could not run: nothing it found is about the backup, and running it again may pass");
    }
    if let (Some(fails_in), Some(held)) = (r.scenario.control, crate::outcome::control_held(r)) {
        let fails_in = fails_in.as_str();
        match held {
            true => outln!("  a negative control: it failed in {fails_in}, where it must (the control holds)"),
            false => outln!(
                "  a negative control: it must fail in {fails_in}, and did not: {} (the control is broken)",
                console::style("BROKEN").red().bold()
            ),
        }
    }
    match &outcome.reports {
        Ok(paths) => {
            outln!(
                "reports: {}\n  {}\n  {}\n  {}\n  {}\nhistory: {} (the drills of `{}` this one was compared with)",
                paths.dir.display(),
                paths.markdown.display(),
                paths.html.display(),
                paths.junit.display(),
                paths.json.display(),
                paths.history.display(),
                r.scenario.name
            );
            verify::signed_line(paths, r).into_iter().for_each(|line| outln!("{line}"));
        }
        Err(e) => eprintln!("error: {}", crate::secret::error_text(e)),
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
    outln!("kept: target `{}` ({what}) is still running", i.name);
    outln!(
        "  connect: PGSERVICEFILE={} psql service={}",
        shell_quote(&kept.connection_file.display().to_string()),
        shell_quote(&kept.service)
    );
    outln!("  remove:  pgdrill clean {}", shell_quote(&i.name));
}

/// A word as a POSIX shell reads it back: as it is when it is plain, else in single quotes.
fn shell_quote(word: &str) -> String {
    if !word.is_empty() && word.chars().all(|c| c.is_ascii_alphanumeric() || "/._-=:@%+,".contains(c)) {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}
