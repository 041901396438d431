//! The body a webhook receives. One shape, `generic` (the default), is accepted by the usual
//! chat services and any other receiver of JSON, each reading the key it knows and ignoring
//! the others, as their documentation gives them:
//!
//! - Slack incoming webhooks read `text` (mrkdwn; `<`, `>` and `&` are markup there).
//! - Mattermost incoming webhooks read `text` (Markdown; the Slack-compatible payload).
//! - Microsoft Teams' Office 365 connector ("Incoming Webhook", being retired) reads `text`.
//!   Its successor, a Teams workflow ("Send webhook alerts to a channel" / "post to a channel
//!   when a webhook request is received"), posts only the Adaptive Card of a body
//!   `{"type": "message", "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive",
//!   "content": {...}}]}`: no shared key serves both, hence `format = "teams"`, which sends that.
//! - Discord's execute-webhook reads `content` (at most 2000 characters; a body with neither
//!   `content` nor `embeds` is refused), so `content` is the text cut to fit.
//! - Any other receiver reads `pgdrill`: kind, scenario, verdict, failed_checks (ids), failure,
//!   report, drill_id, started_at.
//!
//! `format = "slack"` sends `text` alone, `"discord"` `content` alone with mentions turned off,
//! for receivers that refuse keys they do not know.
//!
//! Values that come from the restored database (a check's expected and actual values, the
//! failure) are the backup's words, and a backup is hostile until proven otherwise: they are
//! put in code spans, on one line, cut short, with `@`, `<` and `>` made inert, so that they
//! can neither ping a channel (`@everyone`, `<!channel>`) nor make a link.

use serde_json::{Value, json};

use super::{Format, Kind};

/// The most checks a message lists; the report has them all.
const MAX_LISTED: usize = 10;
/// Discord's limit on `content`.
const DISCORD_MAX: usize = 2000;

/// What a webhook is told about a drill.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Message {
    pub kind: Kind,
    pub scenario: String,
    /// `pass`, `fail` or `interrupted`.
    pub verdict: String,
    /// Why the drill failed, in a line.
    pub failure: Option<String>,
    /// The checks that did not pass.
    pub failed: Vec<FailedCheck>,
    /// Where the report is: its `report.md`, or why there is none.
    pub report: String,
    pub drill_id: String,
    /// RFC 3339.
    pub started_at: String,
}

/// A check that did not pass, as a message shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FailedCheck {
    pub id: String,
    /// `fail`, `error` or `skipped`.
    pub verdict: String,
    pub expected: String,
    pub actual: String,
}

/// What a webhook can be told: a drill's outcome ([`Message`]) or a follower's fault
/// ([`FaultMessage`]).
pub(crate) trait Notice {
    /// The first line: what happened.
    fn title(&self) -> String;
    /// The lines after the title.
    fn lines(&self) -> Vec<String>;
    /// The structured part, for receivers that are not chat services.
    fn structured(&self) -> Value;
    /// Whether it tells of a failure (Teams' colour).
    fn is_failure(&self) -> bool;
    /// The whole message as plain text (with code spans).
    fn text(&self) -> String {
        std::iter::once(self.title()).chain(self.lines()).collect::<Vec<_>>().join("\n")
    }
}

impl Notice for Message {
    fn title(&self) -> String {
        match self.kind {
            Kind::Failure => format!(
                "pgdrill: the drill of `{}` did not pass (verdict {})",
                inert(&self.scenario, 80),
                self.verdict.to_uppercase()
            ),
            Kind::Recovery => {
                format!("pgdrill: the drill of `{}` passed again, after a failure", inert(&self.scenario, 80))
            }
            Kind::Pass => format!("pgdrill: the drill of `{}` passed", inert(&self.scenario, 80)),
        }
    }

    fn lines(&self) -> Vec<String> {
        let mut lines = Vec::new();
        if let Some(failure) = &self.failure {
            lines.push(format!("why: `{}`", inert(failure, 300)));
        }
        if !self.failed.is_empty() {
            lines.push(format!("checks that did not pass ({}):", self.failed.len()));
        }
        for check in self.failed.iter().take(MAX_LISTED) {
            lines.push(format!(
                "- `{}` {}: expected `{}`, actual `{}`",
                inert(&check.id, 120),
                check.verdict,
                inert(&check.expected, 80),
                inert(&check.actual, 80)
            ));
        }
        if self.failed.len() > MAX_LISTED {
            lines.push(format!("- and {} more (see the report)", self.failed.len() - MAX_LISTED));
        }
        lines.push(format!("report: {}", self.report));
        lines.push(format!("drill {}, started {}", self.drill_id, self.started_at));
        lines
    }

    fn is_failure(&self) -> bool {
        self.kind == Kind::Failure
    }

    fn structured(&self) -> Value {
        json!({
            "kind": kind_word(self.kind),
            "scenario": self.scenario,
            "verdict": self.verdict,
            "failed_checks": self.failed.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(),
            "failure": self.failure,
            "report": self.report,
            "drill_id": self.drill_id,
            "started_at": self.started_at,
        })
    }
}

fn kind_word(kind: Kind) -> &'static str {
    match kind {
        Kind::Failure => "failure",
        Kind::Recovery => "recovery",
        Kind::Pass => "pass",
    }
}

/// What a webhook is told about a follower (`pgdrill follow`): a fault found (a failure), a
/// fault cleared (a recovery), or, with `on = "always"`, that it follows its archive (a pass).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FaultMessage {
    /// `Failure`: raised; `Recovery`: cleared; `Pass`: the follower follows.
    pub kind: Kind,
    pub scenario: String,
    /// The fault's kind (`gap`, `refused`, ...), none for a pass.
    pub fault: Option<String>,
    /// What the follower said of it: the segment, the LSN, the reason.
    pub text: String,
    /// How long it stood, once cleared.
    pub stood: Option<std::time::Duration>,
    /// The follower's state folder.
    pub state: String,
    /// When, RFC 3339.
    pub at: String,
}

impl Notice for FaultMessage {
    fn title(&self) -> String {
        let scenario = inert(&self.scenario, 80);
        let fault = inert(self.fault.as_deref().unwrap_or_default(), 20);
        match (self.kind, self.stood) {
            (Kind::Failure, _) => format!("pgdrill: the follower of `{scenario}` found a fault: {fault}"),
            (Kind::Recovery, Some(stood)) => {
                format!("pgdrill: the follower of `{scenario}`: the {fault} fault cleared after {} s", stood.as_secs())
            }
            (Kind::Recovery, None) => format!("pgdrill: the follower of `{scenario}`: the {fault} fault cleared"),
            (Kind::Pass, _) => format!("pgdrill: the follower of `{scenario}` follows its archive"),
        }
    }

    fn lines(&self) -> Vec<String> {
        let what = if self.kind == Kind::Recovery { "was" } else { "says" };
        vec![format!("{what}: `{}`", inert(&self.text, 600)), format!("state: {}, at {}", self.state, self.at)]
    }

    fn structured(&self) -> Value {
        json!({
            "kind": kind_word(self.kind),
            "scenario": self.scenario,
            "follower": {
                "fault": self.fault,
                "message": self.text,
                "cleared_after_seconds": self.stood.map(|s| s.as_secs()),
                "state": self.state,
                "at": self.at,
            },
        })
    }

    fn is_failure(&self) -> bool {
        self.kind == Kind::Failure
    }
}

/// The JSON body for `format`.
pub(crate) fn body(format: Format, message: &dyn Notice) -> Value {
    let text = message.text();
    match format {
        Format::Generic => json!({
            "text": text,
            "content": cut(&text, DISCORD_MAX),
            "pgdrill": message.structured(),
        }),
        Format::Slack => json!({ "text": text }),
        Format::Discord => json!({ "content": cut(&text, DISCORD_MAX), "allowed_mentions": { "parse": [] } }),
        Format::Teams => {
            let color = if message.is_failure() { "Attention" } else { "Good" };
            let mut blocks = vec![
                json!({ "type": "TextBlock", "text": message.title(), "weight": "Bolder", "color": color, "wrap": true }),
            ];
            blocks.extend(
                message.lines().into_iter().map(|line| json!({ "type": "TextBlock", "text": line, "wrap": true })),
            );
            json!({
                "type": "message",
                "attachments": [{
                    "contentType": "application/vnd.microsoft.card.adaptive",
                    "contentUrl": null,
                    "content": {
                        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                        "type": "AdaptiveCard",
                        "version": "1.4",
                        "body": blocks,
                    },
                }],
            })
        }
    }
}

/// `text` on one line, at most `max` characters, safe inside a code span in every service's
/// markup: no backtick to close it, no mention, no angle brackets.
fn inert(text: &str, max: usize) -> String {
    let one_line: String = text
        .chars()
        .map(|c| match c {
            '\n' | '\r' | '\t' => ' ',
            '`' => '\'',
            '<' => '‹',
            '>' => '›',
            c => c,
        })
        .collect();
    cut(&one_line, max).replace('@', "@\u{200b}")
}

/// At most `max` characters, `…` ending what was cut.
fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed() -> Message {
        Message {
            kind: Kind::Failure,
            scenario: "plur".into(),
            verdict: "fail".into(),
            failure: Some("2 checks did not pass".into()),
            failed: vec![
                FailedCheck {
                    id: "row_counts/public.users".into(),
                    verdict: "fail".into(),
                    expected: "41".into(),
                    actual: "40".into(),
                },
                FailedCheck {
                    id: "sql/owner".into(),
                    verdict: "fail".into(),
                    expected: "1".into(),
                    actual: "@everyone <!channel> `x` [a](https://evil.example)\nline".into(),
                },
            ],
            report: "/srv/reports/plur/20261122T030000Z/report.md".into(),
            drill_id: "d".repeat(32),
            started_at: "2026-11-22T03:00:00Z".into(),
        }
    }

    #[test]
    fn the_generic_body_serves_chat_services_and_other_receivers() {
        let body = body(Format::Generic, &failed());
        let text = body["text"].as_str().unwrap();
        assert!(text.starts_with("pgdrill: the drill of `plur` did not pass (verdict FAIL)\n"), "{text}");
        assert!(text.contains("- `row_counts/public.users` fail: expected `41`, actual `40`"), "{text}");
        assert!(text.contains("report: /srv/reports/plur/20261122T030000Z/report.md"), "{text}");
        assert_eq!(body["content"], body["text"], "short enough for Discord as it is");
        let p = &body["pgdrill"];
        assert_eq!(p["verdict"], "fail");
        assert_eq!(p["kind"], "failure");
        assert_eq!(p["scenario"], "plur");
        assert_eq!(p["failed_checks"], json!(["row_counts/public.users", "sql/owner"]));
        assert_eq!(p["report"], "/srv/reports/plur/20261122T030000Z/report.md");
        assert_eq!(p["drill_id"], "d".repeat(32));
        assert_eq!(p["started_at"], "2026-11-22T03:00:00Z");
        let keys: Vec<&String> = body.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["content", "pgdrill", "text"]);
    }

    #[test]
    fn what_the_backup_says_can_neither_ping_nor_link() {
        let text = failed().text();
        let line = text.lines().find(|l| l.contains("sql/owner")).unwrap();
        assert_eq!(
            line,
            "- `sql/owner` fail: expected `1`, actual `@\u{200b}everyone ‹!channel› 'x' [a](https://evil.example) line`"
        );
        assert!(!text.contains("@everyone") && !text.contains('<'), "{text}");
    }

    #[test]
    fn a_long_message_is_cut_for_discord_and_lists_ten_checks() {
        let mut message = failed();
        let check = message.failed[0].clone();
        message.failed = (0..40)
            .map(|i| FailedCheck { id: format!("{}{i}", "x".repeat(100)), actual: "y".repeat(200), ..check.clone() })
            .collect();
        let generic = body(Format::Generic, &message);
        let text = generic["text"].as_str().unwrap();
        assert!(text.contains("- and 30 more (see the report)"), "{text}");
        let content = generic["content"].as_str().unwrap();
        assert!(content.chars().count() <= 2000 && content.ends_with('…'), "{}", content.chars().count());
        let discord = body(Format::Discord, &message);
        assert_eq!(discord["content"], generic["content"]);
        assert_eq!(discord["allowed_mentions"], json!({ "parse": [] }));
        assert_eq!(discord.as_object().unwrap().len(), 2);
    }

    #[test]
    fn slack_and_teams_get_their_own_shapes() {
        let message =
            Message { kind: Kind::Recovery, verdict: "pass".into(), failure: None, failed: vec![], ..failed() };
        let slack = body(Format::Slack, &message);
        assert_eq!(slack.as_object().unwrap().len(), 1);
        assert!(slack["text"].as_str().unwrap().starts_with("pgdrill: the drill of `plur` passed again"), "{slack}");
        let teams = body(Format::Teams, &message);
        assert_eq!(teams["type"], "message");
        let attachment = &teams["attachments"][0];
        assert_eq!(attachment["contentType"], "application/vnd.microsoft.card.adaptive");
        let card = &attachment["content"];
        assert_eq!((&card["type"], &card["version"]), (&json!("AdaptiveCard"), &json!("1.4")));
        assert_eq!(card["body"][0]["color"], "Good");
        assert!(card["body"][0]["text"].as_str().unwrap().contains("passed again"));
        let texts: Vec<&str> = card["body"].as_array().unwrap().iter().map(|b| b["text"].as_str().unwrap()).collect();
        assert!(texts.iter().any(|t| t.starts_with("report: /srv/reports/")), "{texts:?}");
    }

    /// A follower's fault names the archive's files: in a code span, inert, on one line.
    #[test]
    fn a_followers_fault_is_told_with_its_kind_and_text_inert() {
        let message = FaultMessage {
            kind: Kind::Failure,
            scenario: "books".into(),
            fault: Some("refused".into()),
            text: "refused: `x` <!channel> @everyone\nsecond line".into(),
            stood: None,
            state: "/var/lib/pgdrill/follow/books".into(),
            at: "2026-11-30T00:24:41Z".into(),
        };
        let body = body(Format::Generic, &message);
        let text = body["text"].as_str().unwrap();
        assert_eq!(
            text,
            "pgdrill: the follower of `books` found a fault: refused\nsays: `refused: 'x' ‹!channel› @\u{200b}everyone second line`\nstate: /var/lib/pgdrill/follow/books, at 2026-11-30T00:24:41Z"
        );
        assert_eq!(body["pgdrill"]["follower"]["fault"], "refused");
        let teams = super::body(Format::Teams, &message);
        assert_eq!(teams["attachments"][0]["content"]["body"][0]["color"], "Attention");
    }
}
