//! The console: a line per phase as it finishes (a live spinner while it runs, on a terminal),
//! the checks as they are decided, and the verdict. Written to stderr, so stdout stays free for
//! the summary.

use std::collections::{HashMap, HashSet};
use std::io::IsTerminal;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::outcome::Verdict;
use crate::outcome::{DrillRecord, DrillVerdict, Event, Phase, PhaseRecord, PhaseStatus, Reporter};
use crate::units::human_duration;
use crate::units::human_size;

/// The drill on the terminal (stderr): a progress line per phase while it runs, a line per check
/// that did not pass (each check with `--verbose`), the verdict and where the reports are.
pub struct Console {
    multi: MultiProgress,
    bars: HashMap<Phase, ProgressBar>,
    /// Phases already given their line.
    printed: HashSet<Phase>,
    live: bool,
    verbose: bool,
    /// The drill reads the restore in place of checks (`pgdrill init`): its own line says what
    /// it proved, so "no check ran" would be wrong.
    inspecting: bool,
    /// Where lines go instead of stderr (tests read what a user would see).
    captured: Option<Arc<Mutex<String>>>,
    /// With drills run at once (`--jobs`): the drill's name, padded, before each of its lines.
    label: Option<String>,
    /// The widest line printed, in characters: the terminal's width, else `COLUMNS`, else
    /// [`LOG_WIDTH`] in a log.
    width: usize,
    /// A line was cut to `width`: the verdict's line says where it is whole.
    cut: bool,
    /// The scenario could not be resolved: the command says why, once, after the drill.
    unusable: bool,
}

/// The width lines on `term` are fitted to: the terminal's, else `COLUMNS` where it is set (a
/// log read in a terminal of that width), at least 40; none in a log without it.
pub(crate) fn fitted_width(term: &console::Term) -> Option<usize> {
    let terminal = term.is_term().then(|| term.size_checked()).flatten().map(|(_, columns)| usize::from(columns));
    let columns = || std::env::var("COLUMNS").ok().and_then(|c| c.trim().parse::<usize>().ok());
    terminal.or_else(columns).map(|c| c.max(40))
}

/// The widest line printed on `term`: [`fitted_width`], else [`LOG_WIDTH`] in a log.
pub(crate) fn line_width(term: &console::Term) -> usize {
    fitted_width(term).unwrap_or(LOG_WIDTH)
}

/// The widest line in a log (not a terminal): a check that lists thousands of indexes gives
/// a message of tens of thousands of characters, which report.md holds whole.
const LOG_WIDTH: usize = 1000;

/// `line` cut to `width` columns (a wide character takes two), ending `…` where it was cut.
fn cut_to(line: &str, width: usize) -> Option<String> {
    (console::measure_text_width(line) > width)
        .then(|| format!("{} …", console::truncate_str(line, width.saturating_sub(2), "").trim_end()))
}

impl Console {
    /// `verbose`: also print passing checks.
    pub fn new(verbose: bool) -> Self {
        let live = std::io::stderr().is_terminal();
        let target = if live { ProgressDrawTarget::stderr() } else { ProgressDrawTarget::hidden() };
        let width = line_width(&console::Term::stderr());
        Console {
            multi: MultiProgress::with_draw_target(target),
            bars: HashMap::new(),
            printed: HashSet::new(),
            live,
            verbose,
            inspecting: false,
            captured: None,
            label: None,
            width,
            cut: false,
            unusable: false,
        }
    }

    /// For a drill that reads the restore in place of checks (`pgdrill init`).
    pub fn inspecting(mut self) -> Self {
        self.inspecting = true;
        self
    }

    /// A console whose lines are kept in the returned buffer, as they would be printed.
    #[cfg(test)]
    pub(crate) fn capturing(verbose: bool) -> (Self, Arc<Mutex<String>>) {
        let buffer = Arc::new(Mutex::new(String::new()));
        let console = Console {
            multi: MultiProgress::with_draw_target(ProgressDrawTarget::hidden()),
            bars: HashMap::new(),
            printed: HashSet::new(),
            live: false,
            verbose,
            inspecting: false,
            captured: Some(buffer.clone()),
            label: None,
            width: LOG_WIDTH,
            cut: false,
            unusable: false,
        };
        (console, buffer)
    }

    /// One of several drills run at once (`--jobs`): each line starts with `label` (the
    /// drill's name, padded to the longest), and the spinners share `multi` with the others'.
    pub(crate) fn one_of(mut self, label: String, multi: MultiProgress) -> Self {
        self.label = Some(label);
        self.multi = multi;
        self
    }

    fn line(&mut self, text: &str) {
        let prefix = self.label.as_ref().map(|label| format!("{label} ")).unwrap_or_default();
        let lines: Vec<String> = text
            .lines()
            .map(|line| {
                let line = format!("{prefix}{line}");
                let cut = cut_to(&line, self.width);
                self.cut |= cut.is_some();
                cut.unwrap_or(line)
            })
            .collect();
        let text = lines.join("\n");
        let text = text.as_str();
        if let Some(buffer) = &self.captured {
            if let Ok(mut buffer) = buffer.lock() {
                buffer.push_str(text);
                buffer.push('\n');
            }
        } else if self.live {
            let _ = self.multi.println(text);
        } else {
            eprintln!("{text}");
        }
    }
}

fn symbol(status: PhaseStatus) -> &'static str {
    match status {
        PhaseStatus::Passed => "✔",
        PhaseStatus::Failed => "✘",
        PhaseStatus::Skipped => "-",
        PhaseStatus::Interrupted => "⛔",
        PhaseStatus::Running => "…",
    }
}

impl Console {
    /// A spinner for the phase, on a terminal.
    fn phase_started(&mut self, phase: Phase) {
        if self.live {
            let bar = self.multi.add(ProgressBar::new_spinner());
            bar.set_style(
                ProgressStyle::with_template("  {spinner} {prefix:<10} {elapsed:>4} {wide_msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.set_prefix(match &self.label {
                Some(label) => format!("{label} {}", phase.as_str()),
                None => phase.as_str().to_owned(),
            });
            bar.enable_steady_tick(Duration::from_millis(120));
            self.bars.insert(phase, bar);
        }
    }

    /// The phase's line: its status, how long it took, what it found (one line of it each).
    fn phase_finished(&mut self, p: &PhaseRecord) {
        if let Some(bar) = self.bars.remove(&p.phase) {
            bar.finish_and_clear();
            self.multi.remove(&bar);
        }
        self.printed.insert(p.phase);
        if p.phase == Phase::Resolve && p.status == PhaseStatus::Failed && !self.inspecting {
            // The command prints the scenario's error once, pointing into the file.
            self.unusable = true;
            self.line(&format!("  {} {:<10} {:>8}  the scenario is unusable (below)", symbol(p.status), "resolve", ""));
            return;
        }
        let detail = p.error.as_deref().unwrap_or(&p.summary);
        let mut lines = detail.lines();
        let first = lines.next().unwrap_or_default();
        let took = if p.started_at.is_some() { human_duration(p.duration) } else { String::new() };
        let mut text = format!("  {} {:<10} {took:>8}  {first}", symbol(p.status), p.phase.as_str());
        for more in lines {
            text.push_str(&format!("\n                         {more}"));
        }
        self.line(&text);
    }

    /// The phases never reached, the verdict, and the failure or a word on no checks.
    fn finished(&mut self, record: &DrillRecord) {
        for (_, bar) in self.bars.drain() {
            bar.finish_and_clear();
        }
        let never_reached: Vec<_> = record
            .phases
            .iter()
            .filter(|p| p.status == PhaseStatus::Skipped && !self.printed.contains(&p.phase) && !self.unusable)
            .collect();
        for p in never_reached {
            self.line(&format!(
                "  {} {:<10} {:>8}  {}",
                symbol(p.status),
                p.phase.as_str(),
                "",
                p.error.as_deref().unwrap_or("skipped")
            ));
        }
        let verdict = match record.verdict {
            DrillVerdict::Pass => console::style("PASS").green(),
            DrillVerdict::Fail => console::style("FAIL").red(),
            DrillVerdict::Interrupted => console::style("INTERRUPTED").yellow(),
            DrillVerdict::Running => console::style("INCOMPLETE").yellow(),
        }
        .bold()
        .for_stderr();
        let recovery = record.recovery.map(|r| format!(", recovery {}", human_duration(r))).unwrap_or_default();
        self.line(&format!("{verdict}  {} in {}{recovery}", record.scenario.name, human_duration(record.duration)));
        if let Some(failure) = record.failure.as_ref().filter(|_| !self.unusable) {
            self.line(&format!("  {}", failure.lines().next().unwrap_or_default()));
        } else if record.verdict == DrillVerdict::Pass && record.checks.is_empty() && !self.inspecting {
            self.line(&format!("  {}", crate::outcome::NO_CHECKS));
        }
        if self.cut {
            self.line("  (lines ending `…` were cut to the console's width: report.md has them whole)");
        }
    }
}

impl Reporter for Console {
    fn on_event(&mut self, event: &Event, record: &DrillRecord) {
        match event {
            Event::Started(r) => {
                self.line(&format!(
                    "pgdrill {} · drill `{}` ({})",
                    r.runner.pgdrill_version, r.scenario.name, r.scenario.file
                ));
            }
            Event::PhaseStarted { phase, .. } => self.phase_started(*phase),
            Event::Progress { phase, message, done, total } => {
                if let Some(bar) = self.bars.get(phase) {
                    let amount = match (done, total) {
                        (Some(d), Some(t)) if *t > 0 => {
                            format!(" {} / {} ({:.0}%)", human_size(*d), human_size(*t), *d as f64 * 100.0 / *t as f64)
                        }
                        (Some(d), _) => format!(" {}", human_size(*d)),
                        _ => String::new(),
                    };
                    bar.set_message(format!("{message}{amount}"));
                }
            }
            Event::PhaseFinished(p) => self.phase_finished(p),
            Event::Check(c) => {
                if c.verdict != Verdict::Pass || self.verbose {
                    let mark = if c.verdict == Verdict::Pass { "✔" } else { "✘" };
                    let code = if c.code.is_empty() { String::new() } else { format!(" ({})", c.code) };
                    let mut text = format!("      {mark} {}{code}: {}", c.id, c.message);
                    if c.verdict == Verdict::Fail {
                        text.push_str(&format!(
                            "\n          expected: {}\n          actual:   {}",
                            c.expected, c.actual
                        ));
                    }
                    self.line(&text);
                }
            }
            Event::Finished { .. } => self.finished(record),
            Event::Backup(_)
            | Event::Sampled(_)
            | Event::App(_)
            | Event::Migrate(_)
            | Event::Target(_)
            | Event::Preflight(_)
            | Event::Restore(_)
            | Event::Kept(_)
            | Event::Cloned(_)
            | Event::Recovered { .. }
            | Event::RtoPassed
            | Event::ObjectivesJudged => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::OffsetDateTime;

    use crate::outcome::{RunnerInfo, ScenarioInfo};

    fn finished(console: &mut Console) {
        let scenario = ScenarioInfo { name: "app".into(), ..ScenarioInfo::default() };
        let mut record = DrillRecord::new("d".repeat(32), scenario, RunnerInfo::default(), OffsetDateTime::now_utc());
        record.verdict = DrillVerdict::Pass;
        console.on_event(&Event::Finished { at: OffsetDateTime::now_utc(), interrupted: false }, &record);
    }

    #[test]
    fn one_of_several_drills_at_once_labels_each_of_its_lines() {
        let (console, lines) = Console::capturing(false);
        let mut console =
            console.one_of("[app]   ".into(), MultiProgress::with_draw_target(ProgressDrawTarget::hidden()));
        let scenario = ScenarioInfo { name: "app".into(), ..ScenarioInfo::default() };
        let mut record = DrillRecord::new("d".repeat(32), scenario, RunnerInfo::default(), OffsetDateTime::now_utc());
        record.verdict = DrillVerdict::Fail;
        record.failure = Some("restore failed\nsecond line".into());
        console.on_event(&Event::Finished { at: OffsetDateTime::now_utc(), interrupted: false }, &record);
        let text = lines.lock().unwrap().clone();
        assert!(text.lines().all(|line| line.starts_with("[app]    ")), "{text}");
        assert!(text.starts_with("[app]    FAIL  app in "), "{text}");
        let (mut alone, lines) = Console::capturing(false);
        alone.on_event(&Event::Finished { at: OffsetDateTime::now_utc(), interrupted: false }, &record);
        assert!(lines.lock().unwrap().starts_with("FAIL  app in "), "one drill at a time: as before");
    }

    /// A failure listing thousands of indexes is one line of tens of thousands of characters:
    /// the console cuts each line to its width and says where the lines are whole.
    #[test]
    fn no_line_is_wider_than_the_console() {
        let (mut console, lines) = Console::capturing(false);
        console.width = 80;
        let missing: Vec<String> = (0..2880).map(|i| format!("public.index_{i} (hnsw on public.t{i})")).collect();
        let mut result = crate::outcome::CheckResult::build(
            crate::outcome::CheckKind::Indexes,
            "every index in the baseline",
            std::time::Instant::now(),
        )
        .expected("2880 valid, ready and live indexes as in the baseline")
        .verdict(false, format!("missing: {}", missing.join(", ")));
        result.actual = format!("missing: {}", missing.join(", "));
        let record =
            DrillRecord::new("d".repeat(32), ScenarioInfo::default(), RunnerInfo::default(), OffsetDateTime::now_utc());
        console.on_event(&Event::Check(result), &record);
        finished(&mut console);
        let text = lines.lock().unwrap().clone();
        assert!(text.lines().all(|l| l.chars().count() <= 80), "{text}");
        assert!(
            text.contains("      ✘ indexes/every index in the baseline: missing: public.index_0 (hnsw on …"),
            "{text}"
        );
        assert!(text.lines().filter(|l| l.ends_with(" …")).count() >= 2, "{text}");
        assert!(text.contains("cut to the console's width: report.md has them whole"), "{text}");
    }

    /// A wide character (a CJK table's name) takes two columns of the console, not one.
    #[test]
    fn a_line_is_cut_to_columns_not_characters() {
        let line = format!("missing: {}", "表".repeat(50));
        let cut = cut_to(&line, 40).expect("109 columns do not fit in 40");
        assert!((39..=40).contains(&console::measure_text_width(&cut)), "{cut}");
        assert!(cut.ends_with("表 …"), "{cut}");
        assert_eq!(cut_to("表".repeat(20).as_str(), 40), None, "20 wide characters fit in 40 columns");
    }

    #[test]
    fn a_drill_without_checks_says_it_proves_only_the_restore_but_init_does_not() {
        let (mut console, lines) = Console::capturing(false);
        finished(&mut console);
        assert!(lines.lock().unwrap().contains(crate::outcome::NO_CHECKS));
        let (console, lines) = Console::capturing(false);
        let mut console = console.inspecting();
        finished(&mut console);
        let text = lines.lock().unwrap().clone();
        assert!(text.starts_with("PASS  app"), "{text}");
        assert!(!text.contains("No check ran"), "init's checks are its own: {text}");
    }
}
