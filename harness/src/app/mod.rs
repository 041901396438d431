//! The app phase: boot the application against the restored database and call its API, as a
//! restore runbook does ("start the app, check /api/v1/health, log in with a known user").
//!
//! ```toml
//! [app]
//! build = ["cargo", "build", "-q", "-p", "pgdrill-fixture-app"]   # optional, before starting
//! command = ["cargo", "run", "-q", "-p", "pgdrill-fixture-app"]   # or: image = "repo:tag"
//! env = { DATABASE_URL = "{{database_url}}", PORT = "{{app_port}}" }
//! role = "powernode_app"          # connect as this role (given a fresh password), not as the superuser
//! ready = { path = "/api/v1/health", timeout = "60s" }
//!
//! [[app.requests]]
//! name = "login"
//! method = "POST"
//! path = "/api/v1/auth/login"
//! json = { email = "admin@powernode.example", password = "{{env.POWERNODE_LOGIN_PASSWORD}}" }
//! expect_status = 200
//! expect_json = [{ pointer = "/token", exists = true }]
//! max_latency = "2s"
//! capture = { token = "/token" }  # usable as {{token}} in later requests
//! ```
//!
//! Templates: `{{database_url}}`, `{{host}}`, `{{port}}`, `{{user}}`, `{{password}}`,
//! `{{database}}`, `{{app_port}}`, `{{app_url}}`, `{{env.NAME}}` (from pgdrill's environment), and
//! values captured by earlier requests. Captured values and passwords are secrets: they are
//! redacted from every report. The app runs in its own process group (or container) and is
//! stopped after the requests, also when the drill fails or is interrupted.

pub(crate) mod phase;
pub(crate) mod process;
pub(crate) mod request;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::field::FieldError;

pub(crate) use phase::run;
pub(crate) use process::{AppHandle, AppInfo};

/// The values templates may use: how a program logs in to the restored database, and the app's
/// port.
pub(crate) fn template_values(
    login: &crate::provision::ProgramLogin,
    database: &str,
    app_port: Option<u16>,
) -> BTreeMap<String, String> {
    let mut values: BTreeMap<String, String> = [
        (
            "database_url",
            format!(
                "postgres://{}:{}@{}:{}/{database}?sslmode={}",
                login.user,
                login.password.expose(),
                login.host,
                login.port,
                login.ssl_mode
            ),
        ),
        ("host", login.host.clone()),
        ("port", login.port.to_string()),
        ("user", login.user.clone()),
        ("password", login.password.expose().to_owned()),
        ("database", database.to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    if let Some(port) = app_port {
        values.insert("app_port".into(), port.to_string());
        values.insert("app_url".into(), format!("http://127.0.0.1:{port}"));
    }
    values
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "App")]
pub struct Config {
    pub command: Option<Vec<String>>,
    pub image: Option<String>,
    pub build: Option<Vec<String>>,
    pub build_timeout: Option<String>,
    pub workdir: Option<String>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    pub port: Option<u16>,
    pub role: Option<String>,
    pub ready: ReadyConfig,
    #[serde(default)]
    pub requests: Vec<request::Config>,
    /// Longest the app phase may take: its build, its boot and its requests (default 1h).
    pub timeout: Option<crate::field::Spanned<String>>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "AppReady")]
pub struct ReadyConfig {
    pub path: String,
    pub timeout: Option<String>,
}

/// How the app is started.
#[derive(Debug, Clone)]
pub enum Launch {
    Command { argv: Vec<String>, workdir: PathBuf },
    Image { image: String, args: Vec<String> },
}

#[derive(Debug, Clone)]
pub struct Spec {
    pub launch: Launch,
    pub build: Option<(Vec<String>, PathBuf, Duration)>,
    pub env: BTreeMap<String, String>,
    pub port: Option<u16>,
    pub role: Option<String>,
    /// The environment variable holding its role's password (`[login] passwords`), for a
    /// shared server's own role.
    pub password_env: Option<String>,
    pub ready_path: String,
    pub ready_timeout: Duration,
    pub requests: Vec<request::Spec>,
}

/// Names every template may use.
pub(crate) const BUILTINS: [&str; 8] =
    ["database_url", "host", "port", "user", "password", "database", "app_port", "app_url"];

fn duration(text: &Option<String>, default: Duration, what: &str) -> Result<Duration, FieldError> {
    match text {
        Some(t) => humantime::parse_duration(t)
            .map_err(|e| FieldError::unplaced(format!("`{what}` = `{t}` is not a duration: {e}"))),
        None => Ok(default),
    }
}

/// Checks a template's `{{names}}` against what will be known when it is rendered.
pub(crate) fn check_template(text: &str, known: &BTreeSet<String>, what: &str) -> Result<(), FieldError> {
    for name in template_names(text) {
        if !(known.contains(&name) || name.strip_prefix("env.").is_some_and(|v| !v.is_empty())) {
            return Err(FieldError::unplaced(format!(
                "{what} uses `{{{{{name}}}}}`, which is not known there (known: {}, env.NAME, and values captured by earlier requests)",
                known.iter().cloned().collect::<Vec<_>>().join(", ")
            )));
        }
    }
    Ok(())
}

fn template_names(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else { break };
        out.push(after[..end].trim().to_owned());
        rest = &after[end + 2..];
    }
    out
}

/// Renders `{{name}}` placeholders from `values` and the environment.
pub(crate) fn render(text: &str, values: &BTreeMap<String, String>) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            out.push_str(&rest[start..]);
            return Ok(out);
        };
        let name = after[..end].trim();
        let value = match name.strip_prefix("env.") {
            Some(var) => std::env::var(var).map_err(|_| format!("the environment variable `{var}` is not set"))?,
            None => values.get(name).cloned().ok_or_else(|| format!("`{{{{{name}}}}}` has no value yet"))?,
        };
        out.push_str(&value);
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

impl Spec {
    /// The `application_name` the app's sessions give, when its environment says: `PGAPPNAME`,
    /// or `application_name=` in a connection string.
    pub fn application_name(&self) -> Option<String> {
        if let Some(name) = self.env.get("PGAPPNAME").filter(|v| !v.contains("{{")) {
            return Some(name.clone());
        }
        self.env.values().find_map(|value| {
            let (_, rest) = value.split_once("application_name=")?;
            let name: String = rest.chars().take_while(|c| !matches!(c, '&' | ' ' | '\'' | '"')).collect();
            (!name.is_empty() && !name.contains("{{")).then(|| crate::secret::percent_decode(&name))
        })
    }

    /// The environment variables the app's templates read: their values are secrets.
    pub fn env_names(&self) -> BTreeSet<String> {
        let mut texts: Vec<String> = self.env.values().cloned().collect();
        for r in &self.requests {
            texts.extend(r.template_texts());
        }
        texts.iter().flat_map(|t| template_names(t)).filter_map(|n| n.strip_prefix("env.").map(str::to_owned)).collect()
    }

    pub fn resolve(config: Config, base: &std::path::Path) -> Result<Self, FieldError> {
        let workdir = crate::field::normalize(&base.join(config.workdir.as_deref().unwrap_or(".")));
        let launch = match (config.command, config.image) {
            (Some(argv), None) if !argv.is_empty() => Launch::Command { argv, workdir: workdir.clone() },
            (None, Some(image)) => {
                if image.ends_with(":latest") || !image.contains(':') {
                    return Err(FieldError::unplaced(format!("app image `{image}` has no pinned tag")));
                }
                Launch::Image { image, args: Vec::new() }
            }
            _ => {
                return Err(FieldError::unplaced(
                    "`[app]` needs exactly one of `command` (a non-empty list) and `image`",
                ));
            }
        };
        let build = match config.build {
            Some(argv) if argv.is_empty() => return Err(FieldError::unplaced("`app.build` is an empty command")),
            Some(argv) => {
                Some((argv, workdir, duration(&config.build_timeout, Duration::from_secs(600), "build_timeout")?))
            }
            None => None,
        };
        let ready_timeout = duration(&config.ready.timeout, Duration::from_secs(30), "ready.timeout")?;
        if !config.ready.path.starts_with('/') {
            return Err(FieldError::unplaced("`app.ready.path` must start with `/`"));
        }
        let mut known: BTreeSet<String> = BUILTINS.iter().map(|s| s.to_string()).collect();
        for (key, value) in &config.env {
            check_template(value, &known, &format!("app.env.{key}"))?;
        }
        let mut requests = Vec::new();
        let mut names = BTreeSet::new();
        for request in config.requests {
            if !names.insert(request.name.clone()) {
                return Err(FieldError::unplaced(format!("two app requests are named `{}`", request.name)));
            }
            let spec = request::Spec::resolve(request, &known)?;
            known.extend(spec.capture.keys().cloned());
            requests.push(spec);
        }
        Ok(Spec {
            launch,
            build,
            env: config.env,
            port: config.port,
            role: config.role,
            password_env: None,
            ready_path: config.ready.path,
            ready_timeout,
            requests,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates() {
        let values: BTreeMap<String, String> = [("app_port".to_owned(), "8080".to_owned())].into();
        assert_eq!(render("http://127.0.0.1:{{app_port}}/x", &values).unwrap(), "http://127.0.0.1:8080/x");
        assert!(render("{{token}}", &values).is_err());
        let known: BTreeSet<String> = ["app_port".to_owned()].into();
        assert!(check_template("{{ app_port }} {{env.X}}", &known, "t").is_ok());
        assert!(check_template("{{tokn}}", &known, "t").unwrap_err().message.contains("`{{tokn}}`"));
    }
}
