//! `junit.xml`: a test suite per scenario, a test case per phase and per check, so CI systems
//! show a drill like a test run.

use junit_report::{Report, TestCase, TestSuite};

use crate::outcome::Verdict;
use crate::outcome::{DrillRecord, PhaseStatus};

/// Whole milliseconds: the JUnit schema Jenkins and Maven use (`SUREFIRE_TIME`) allows at most
/// three decimals in a `time` (see [`three_decimals`] for the suite's sum).
fn duration(d: std::time::Duration) -> time::Duration {
    time::Duration::milliseconds(i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// One drill as a JUnit document.
pub fn render(record: &DrillRecord) -> String {
    render_all(&[record])
}

/// Several drills (merged CI shards) as one JUnit document: a test suite each.
pub fn render_all(records: &[&DrillRecord]) -> String {
    render_suites(records.iter().map(|record| suite(record)).collect())
}

/// Test suites (a drill's, with what `report merge` adds to it) as one JUnit document.
pub(crate) fn render_suites(suites: Vec<TestSuite>) -> String {
    let mut report = Report::new();
    for suite in suites {
        report.add_testsuite(suite);
    }
    let mut out = Vec::new();
    if let Err(e) = report.write_xml(&mut out) {
        return format!("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<!-- cannot render: {e} -->\n<testsuites/>\n");
    }
    let mut text = String::from_utf8_lossy(&three_decimals(&out)).into_owned();
    text.push('\n');
    text
}

/// junit-report writes a suite's `time` as the f64 sum of its cases' seconds, which can print
/// as `5.8629999999999995` for cases of whole milliseconds; the JUnit schema rejects that. This
/// rewrites the `time` attribute of every `testsuite` and `testcase` with three decimals, and
/// leaves everything else (messages, CDATA) byte for byte.
fn three_decimals(xml: &[u8]) -> Vec<u8> {
    use quick_xml::events::{BytesStart, Event};
    use quick_xml::{Reader, Writer};

    fn fixed(tag: &BytesStart<'_>) -> BytesStart<'static> {
        let mut out = tag.to_owned();
        out.clear_attributes();
        for attr in tag.attributes().flatten() {
            let seconds = (attr.key.as_ref() == b"time")
                .then(|| std::str::from_utf8(&attr.value).ok()?.parse::<f64>().ok())
                .flatten();
            match seconds {
                Some(seconds) => out.push_attribute(("time", format!("{seconds:.3}").as_str())),
                None => out.push_attribute(attr),
            }
        }
        out
    }

    let mut reader = Reader::from_reader(xml);
    let mut writer = Writer::new(Vec::with_capacity(xml.len()));
    loop {
        let event = match reader.read_event() {
            Ok(Event::Eof) => return writer.into_inner(),
            Ok(Event::Start(tag)) if matches!(tag.name().as_ref(), b"testsuite" | b"testcase") => {
                Event::Start(fixed(&tag))
            }
            Ok(Event::Empty(tag)) if matches!(tag.name().as_ref(), b"testsuite" | b"testcase") => {
                Event::Empty(fixed(&tag))
            }
            Ok(event) => event,
            // junit-report wrote it, so this does not happen; keep its text rather than lose it.
            Err(_) => return xml.to_vec(),
        };
        if writer.write_event(event).is_err() {
            return xml.to_vec();
        }
    }
}

/// A drill's test suite: a test case per phase and per check.
pub fn suite(record: &DrillRecord) -> TestSuite {
    let scenario = &record.scenario.name;
    let mut suite = TestSuite::new(scenario);
    suite.set_timestamp(record.started_at.replace_nanosecond(0).unwrap_or(record.started_at));

    for phase in &record.phases {
        let name = format!("phase {}", phase.phase);
        let time = duration(phase.duration);
        let message = phase.error.clone().unwrap_or_default();
        let mut case = match phase.status {
            PhaseStatus::Passed | PhaseStatus::Running => TestCase::success(&name, time),
            PhaseStatus::Failed => TestCase::failure(&name, time, "phase failed", &message),
            PhaseStatus::Interrupted => TestCase::error(&name, time, "interrupted", &message),
            PhaseStatus::Skipped => TestCase::skipped_with_cause(&name, "skipped", &message),
        };
        case.set_classname(&format!("pgdrill.{scenario}.phases"));
        if !phase.summary.is_empty() {
            case.set_system_out(&phase.summary);
        }
        suite.add_testcase(case);
    }

    for check in &record.checks {
        let time = duration(check.duration);
        // The finding's code is the failure's type, as a test framework names an exception's
        // class (a record from before codes says what the verdict is).
        let code = |uncoded: &'static str| if check.code.is_empty() { uncoded } else { check.code.as_str() };
        let mut case = match check.verdict {
            Verdict::Pass => TestCase::success(&check.id, time),
            Verdict::Fail => TestCase::failure(&check.id, time, code("check failed"), &check.message),
            Verdict::Error => TestCase::error(&check.id, time, code("check could not run"), &check.message),
            Verdict::Skipped => TestCase::skipped_with_cause(&check.id, code("skipped"), &check.message),
        };
        case.set_classname(&format!("pgdrill.{scenario}.checks.{}", check.kind));
        case.set_system_out(&format!(
            "{}\ncode:     {}\nexpected: {}\nactual:   {}\nevidence: {}",
            check.message, check.code, check.expected, check.actual, check.evidence
        ));
        suite.add_testcase(case);
    }

    suite.set_system_out(&format!(
        "pgdrill {} drill {} of scenario {} ({}): {}{}",
        record.runner.pgdrill_version,
        record.drill_id,
        scenario,
        record.scenario.file,
        record.verdict.as_str(),
        record.failure.as_ref().map(|f| format!(" - {f}")).unwrap_or_default()
    ));

    suite
}

#[cfg(test)]
mod tests {
    use super::three_decimals;

    #[test]
    fn times_get_three_decimals_and_nothing_else_changes() {
        let xml = r#"<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="a" time="5.8629999999999995"><testcase name="b &amp; c" time="0.1"><failure message="took time=&quot;9.87654&quot;"/><system-out><![CDATA[time="1.23456" <testcase time="2.5">]]></system-out></testcase><testcase name="d" time="0"/></testsuite></testsuites>"#;
        let out = String::from_utf8(three_decimals(xml.as_bytes())).unwrap();
        assert_eq!(
            out,
            r#"<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="a" time="5.863"><testcase name="b &amp; c" time="0.100"><failure message="took time=&quot;9.87654&quot;"/><system-out><![CDATA[time="1.23456" <testcase time="2.5">]]></system-out></testcase><testcase name="d" time="0.000"/></testsuite></testsuites>"#
        );
    }
}
