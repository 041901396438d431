//! `[notify]`: a drill that fails is heard. After a drill's reports are written, a webhook
//! (Slack, Mattermost, Microsoft Teams, Discord, or any receiver of JSON) is told the verdict,
//! the checks that did not pass and where the report is: on a failure and on the first pass
//! after one (a recovery), or after every drill.
//!
//! ```toml
//! [notify]
//! url_env = "PGDRILL_WEBHOOK_URL"   # the default; or url_file = "/run/secrets/webhook"
//! on = "failure"                    # the default (and recoveries); or "always"
//! format = "generic"                # the default; or "slack", "discord", "teams"
//! # report_url = "{{env.CI_JOB_URL}}/artifacts/file/reports/{{scenario}}/{{folder}}/report.md"
//! ```
//!
//! A webhook's URL is its password (Slack's and Discord's carry their token in the path,
//! Teams workflows a signature in the query), so it is read from the environment or a file
//! only, never written in a scenario; it is masked wherever it could show (see [`send`]). A
//! notification that cannot be sent is a warning: it never changes the drill's verdict.
//!
//! A follower (`pgdrill follow`) tells the same webhook of its faults: each when it is found (a
//! failure) and when it clears (a recovery), as a [`FaultMessage`].
//!
//! A leaf: it knows nothing of drills, reports or followers; the command line hands it a
//! [`Message`], a follower a [`FaultMessage`].

mod body;
mod send;

use std::path::Path;

use schemars::JsonSchema;
use serde::Deserialize;

pub(crate) use body::{FailedCheck, FaultMessage, Message, body};
pub(crate) use send::send;

use crate::field::{FieldError, Spanned, normalize};
use crate::secret::SecretSource;

/// The environment variable a webhook's URL is read from when the scenario names none.
pub(crate) const DEFAULT_URL_ENV: &str = "PGDRILL_WEBHOOK_URL";

/// The webhook a drill is told to: where its URL is read (never the scenario), when, and the
/// shape of the body.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "Notify")]
pub(crate) struct RawNotify {
    /// The environment variable that holds the webhook's URL (default `PGDRILL_WEBHOOK_URL`).
    pub url_env: Option<Spanned<String>>,
    /// A file that holds the webhook's URL (a mounted secret), relative to the scenario file.
    pub url_file: Option<Spanned<String>>,
    /// Refused: a webhook's URL carries its secret token, so it is never written in a scenario.
    #[schemars(skip)]
    pub url: Option<Spanned<toml::Value>>,
    /// When to send: `"failure"` (the default: a drill that did not pass, and the first pass
    /// after one, a recovery) or `"always"` (after every drill). A follower (`pgdrill follow`)
    /// tells each fault when it is found and when it clears, either way, and with `"always"`
    /// also when it starts following.
    #[schemars(extend("enum" = ["failure", "always"]))]
    pub on: Option<Spanned<String>>,
    /// The body's shape: `"generic"` (the default: `text` for Slack, Mattermost and Teams
    /// connectors, `content` for Discord, `pgdrill` for any other receiver), `"slack"`,
    /// `"discord"` or `"teams"` (an Adaptive Card, for Teams workflows).
    #[schemars(extend("enum" = ["generic", "slack", "discord", "teams"]))]
    pub format: Option<Spanned<String>>,
    /// Where readers of the message find the report, when not at its path on this machine (a CI
    /// job's artifacts): a URL with `{{env.NAME}}`, `{{scenario}}`, `{{folder}}` (the report
    /// folder's name) and `{{drill_id}}` filled in.
    pub report_url: Option<Spanned<String>>,
}

/// When a webhook is told about a drill.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum When {
    /// A drill that did not pass, and the first pass after one (a recovery).
    #[default]
    Failure,
    /// After every drill.
    Always,
    /// Never (`--notify never`, a drill run by hand).
    Never,
}

/// The shape of the body: see [`body`] for what each service reads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum Format {
    #[default]
    Generic,
    Slack,
    Discord,
    Teams,
}

/// A resolved `[notify]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Spec {
    /// Where the webhook's URL is read from when the notification is sent.
    pub url: SecretSource,
    pub on: When,
    pub format: Format,
    /// The report's URL, as a template (`report_url`).
    pub report_url: Option<String>,
}

impl Default for Spec {
    /// What `--notify` sends to when the scenario has no `[notify]`: the URL in
    /// `PGDRILL_WEBHOOK_URL`, the generic body.
    fn default() -> Self {
        Spec {
            url: SecretSource::Env(DEFAULT_URL_ENV.to_owned()),
            on: When::Failure,
            format: Format::Generic,
            report_url: None,
        }
    }
}

impl Spec {
    /// Resolves `[notify]`; relative files start at `base` (the scenario's folder).
    pub(crate) fn resolve(raw: RawNotify, base: &Path) -> Result<Spec, FieldError> {
        if let Some(url) = &raw.url {
            return Err(FieldError::new(
                url.span(),
                "a webhook's URL is not written in the scenario: it carries the webhook's secret token, and \
                 scenarios are committed, shown and copied into reports",
            )
            .with_help("put the URL in an environment variable (`url_env`, default PGDRILL_WEBHOOK_URL) or a file (`url_file`)"));
        }
        let url = match (raw.url_env, raw.url_file) {
            (Some(_), Some(file)) => {
                return Err(FieldError::new(file.span(), "give `url_env` or `url_file`, not both"));
            }
            (Some(env), None) => {
                if env.get_ref().is_empty() || env.get_ref().contains(['=', '\0']) {
                    return Err(FieldError::new(env.span(), "`url_env` must name an environment variable"));
                }
                SecretSource::Env(env.into_inner())
            }
            (None, Some(file)) => SecretSource::File(normalize(&base.join(file.get_ref()))),
            (None, None) => SecretSource::Env(DEFAULT_URL_ENV.to_owned()),
        };
        let on = match &raw.on {
            None => When::Failure,
            Some(on) => match on.get_ref().as_str() {
                "failure" => When::Failure,
                "always" => When::Always,
                other => {
                    return Err(FieldError::new(
                        on.span(),
                        format!("`on = \"{other}\"`: say \"failure\" (and recoveries) or \"always\""),
                    ));
                }
            },
        };
        let format = match &raw.format {
            None => Format::Generic,
            Some(format) => match format.get_ref().as_str() {
                "generic" => Format::Generic,
                "slack" => Format::Slack,
                "discord" => Format::Discord,
                "teams" => Format::Teams,
                other => {
                    return Err(FieldError::new(
                        format.span(),
                        format!("unknown format `{other}`: \"generic\", \"slack\", \"discord\" or \"teams\""),
                    ));
                }
            },
        };
        let report_url = match raw.report_url {
            Some(url) => {
                // Every placeholder known, checked with stand-ins for the values.
                let filled = fill(url.get_ref(), &Report::default(), |_| Some(String::new()))
                    .map_err(|e| FieldError::new(url.span(), format!("`report_url`: {e}")))?;
                // A URL, or a variable holding the start of one (a CI job's URL).
                let is_url = ["https://", "http://", "{{env."]
                    .iter()
                    .any(|p| filled.starts_with(p) || url.get_ref().starts_with(p));
                if !is_url {
                    return Err(FieldError::new(url.span(), "`report_url` must be an http(s):// URL"));
                }
                Some(url.into_inner())
            }
            None => None,
        };
        Ok(Spec { url, on, format, report_url })
    }
}

/// What a `report_url` names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Report {
    pub scenario: String,
    /// The report folder's name (`20261122T030000Z`).
    pub folder: String,
    pub drill_id: String,
}

/// Why a `report_url` cannot be filled in.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum FillError {
    /// A `{{` without its `}}`.
    #[error("a `{{{{` is not closed")]
    Unclosed,
    /// `{{env.NAME}}` names a variable that is not set.
    #[error("the environment variable `{var}` is not set")]
    Unset { var: String },
    /// A placeholder `report_url` does not know.
    #[error("unknown placeholder `{{{{{name}}}}}` (scenario, folder, drill_id, env.NAME)")]
    Unknown { name: String },
}

/// `report_url` filled in for `report`, with environment variables from the process's.
pub(crate) fn report_url(template: &str, report: &Report) -> Result<String, FillError> {
    fill(template, report, |name| std::env::var(name).ok())
}

/// `template` with each `{{name}}` replaced: the report's values, and `{{env.NAME}}` from `env`.
fn fill(template: &str, report: &Report, env: impl Fn(&str) -> Option<String>) -> Result<String, FillError> {
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find("}}").ok_or(FillError::Unclosed)?;
        let name = after[..end].trim();
        out.push_str(&match name {
            "scenario" => report.scenario.clone(),
            "folder" => report.folder.clone(),
            "drill_id" => report.drill_id.clone(),
            _ => match name.strip_prefix("env.") {
                Some(var) if !var.is_empty() => env(var).ok_or_else(|| FillError::Unset { var: var.to_owned() })?,
                _ => return Err(FillError::Unknown { name: name.to_owned() }),
            },
        });
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Why a drill's webhook is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// The drill did not pass.
    Failure,
    /// It passed, and the drill of the same scenario before it did not.
    Recovery,
    /// It passed (`on = "always"`).
    Pass,
}

/// Whether a drill is told, and why: `passed` is this drill's outcome, `previous_passed` that of
/// the drill of the same scenario before it, when there was one.
pub(crate) fn decide(on: When, passed: bool, previous_passed: Option<bool>) -> Option<Kind> {
    match (on, passed, previous_passed) {
        (When::Never, _, _) => None,
        (_, false, _) => Some(Kind::Failure),
        (_, true, Some(false)) => Some(Kind::Recovery),
        (When::Always, true, _) => Some(Kind::Pass),
        (When::Failure, true, _) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_is_always_told_a_pass_only_after_a_failure_or_when_asked() {
        use Kind::{Pass, Recovery};
        use When::{Always, Never};
        let (failure, on_failure) = (Some(Kind::Failure), When::Failure);
        assert_eq!(decide(on_failure, false, None), failure);
        assert_eq!(decide(on_failure, false, Some(true)), failure);
        assert_eq!(decide(on_failure, false, Some(false)), failure, "every failure, not only the first");
        assert_eq!(decide(on_failure, true, None), None, "a first pass is no news");
        assert_eq!(decide(on_failure, true, Some(true)), None);
        assert_eq!(decide(on_failure, true, Some(false)), Some(Recovery));
        assert_eq!(decide(Always, true, None), Some(Pass));
        assert_eq!(decide(Always, true, Some(true)), Some(Pass));
        assert_eq!(decide(Always, true, Some(false)), Some(Recovery));
        assert_eq!(decide(Always, false, None), failure);
        assert_eq!(decide(Never, false, Some(true)), None);
        assert_eq!(decide(Never, true, Some(false)), None);
    }

    fn resolve(toml_text: &str) -> Result<Spec, FieldError> {
        let raw: RawNotify = toml::from_str(toml_text).expect("a [notify] table");
        Spec::resolve(raw, Path::new("/etc/pgdrill/scenarios"))
    }

    #[test]
    fn the_url_comes_from_the_environment_or_a_file_never_the_scenario() {
        assert_eq!(resolve("").unwrap(), Spec::default());
        assert_eq!(resolve("url_env = \"HOOK\"").unwrap().url, SecretSource::Env("HOOK".into()));
        assert_eq!(
            resolve("url_file = \"../secrets/hook\"").unwrap().url,
            SecretSource::File("/etc/pgdrill/secrets/hook".into())
        );
        let e = resolve("url = \"https://hooks.slack.com/services/T0/B0/XXXXXXXXXXXXXXXXXXXXXXXX\"").unwrap_err();
        assert!(e.message.contains("carries the webhook's secret token") && e.message.contains("url_env"), "{e:?}");
        assert!(!e.message.contains("XXXXXXXX"), "the error does not repeat the URL: {e:?}");
        assert!(resolve("url_env = \"A\"\nurl_file = \"b\"").unwrap_err().message.contains("not both"));
        assert!(resolve("url_env = \"\"").is_err());
    }

    #[test]
    fn a_report_url_names_the_folder_in_a_ci_jobs_artifacts() {
        let spec =
            resolve("report_url = \"{{env.CI_JOB_URL}}/artifacts/file/reports/{{scenario}}/{{ folder }}/report.md\"");
        let template = spec.unwrap().report_url.unwrap();
        let report = Report { scenario: "plur".into(), folder: "20261122T030000Z".into(), drill_id: "d1".into() };
        let env = |name: &str| (name == "CI_JOB_URL").then(|| "https://gitlab.example/g/p/-/jobs/7".to_owned());
        assert_eq!(
            fill(&template, &report, env).unwrap(),
            "https://gitlab.example/g/p/-/jobs/7/artifacts/file/reports/plur/20261122T030000Z/report.md"
        );
        assert_eq!(
            fill(&template, &report, |_| None).unwrap_err().to_string(),
            "the environment variable `CI_JOB_URL` is not set"
        );
        assert_eq!(
            fill("https://ci.example/{{folder", &report, |_| None).unwrap_err().to_string(),
            "a `{{` is not closed"
        );
        let e = resolve("report_url = \"https://ci.example/{{run}}\"").unwrap_err();
        assert!(e.message.contains("unknown placeholder `{{run}}`"), "{e:?}");
        assert!(resolve("report_url = \"reports/{{folder}}\"").unwrap_err().message.contains("http(s)://"));
        assert!(resolve("report_url = \"https://ci.example/{{drill_id}}\"").is_ok());
    }

    #[test]
    fn when_and_format_are_words() {
        let spec = resolve("on = \"always\"\nformat = \"teams\"").unwrap();
        assert_eq!((spec.on, spec.format), (When::Always, Format::Teams));
        assert_eq!(resolve("format = \"discord\"").unwrap().format, Format::Discord);
        assert_eq!(resolve("format = \"slack\"").unwrap().format, Format::Slack);
        assert!(resolve("on = \"never\"").unwrap_err().message.contains("\"failure\""));
        assert!(resolve("format = \"irc\"").unwrap_err().message.contains("unknown format `irc`"));
        assert!(toml::from_str::<RawNotify>("channel = \"#ops\"").is_err(), "unknown keys are refused");
    }
}
