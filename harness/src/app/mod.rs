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
use crate::template::{BUILTINS, check_template, template_names};

pub(crate) use phase::run;
pub(crate) use process::AppHandle;

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "App")]
pub(crate) struct Config {
    /// The command that starts the app, program first (`["./target/release/shop-api"]`), run
    /// in `workdir`. Give it or `image`, not both.
    pub command: Option<Vec<String>>,
    /// A container image to run the app from instead of `command`, pinned to a tag (not
    /// `latest`); it runs on the host's network.
    pub image: Option<String>,
    /// A command run to its end in `workdir` before the app starts (`["cargo", "build",
    /// "--release"]`).
    pub build: Option<Vec<String>>,
    /// Longest `build` may take (default 10m).
    pub build_timeout: Option<String>,
    /// The folder `command` and `build` run in, relative to the scenario file (default: the
    /// scenario file's folder).
    pub workdir: Option<String>,
    /// Environment variables given to the app, templated: `{{database_url}}`, `{{host}}`,
    /// `{{port}}`, `{{user}}`, `{{password}}`, `{{database}}`, `{{app_port}}`, `{{app_url}}`,
    /// `{{env.NAME}}` (from pgdrill's environment).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// The port the app listens on, on 127.0.0.1 only (`{{app_port}}`; default: a free port
    /// pgdrill picks). An app that also listens beyond loopback fails.
    pub port: Option<u16>,
    /// The role the app logs in as (`{{user}}`, `{{password}}`), with a password made for the
    /// drill or from `[login] passwords` (default: the drill's admin login).
    pub role: Option<String>,
    /// The path pgdrill polls until the app answers 2xx, before the requests.
    pub ready: ReadyConfig,
    /// API calls made in order once the app is ready, each with its assertions; each is a check
    /// (kind `api`) in the reports.
    #[serde(default)]
    pub requests: Vec<request::Config>,
    /// Longest the app phase may take: its build, its boot and its requests (default 1h).
    pub timeout: Option<crate::field::Spanned<String>>,
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "AppReady")]
pub(crate) struct ReadyConfig {
    /// A path on the app, starting with `/` (`/healthz`), polled with GET until it answers 2xx.
    pub path: String,
    /// Longest wait for it to answer 2xx (default 30s).
    pub timeout: Option<String>,
}

/// How the app is started.
#[derive(Debug, Clone)]
pub(crate) enum Launch {
    Command { argv: Vec<String>, workdir: PathBuf },
    Image { image: String, args: Vec<String> },
}

#[derive(Debug, Clone)]
pub(crate) struct Spec {
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

fn duration(text: &Option<String>, default: Duration, what: &str) -> Result<Duration, FieldError> {
    match text {
        Some(t) => humantime::parse_duration(t)
            .map_err(|e| FieldError::unplaced(format!("`{what}` = `{t}` is not a duration: {e}"))),
        None => Ok(default),
    }
}

impl Spec {
    /// The `application_name` the app's sessions give, when its environment says: `PGAPPNAME`,
    /// or `application_name=` in a connection string.
    pub(crate) fn application_name(&self) -> Option<String> {
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
    pub(crate) fn env_names(&self) -> BTreeSet<String> {
        let mut texts: Vec<String> = self.env.values().cloned().collect();
        for r in &self.requests {
            texts.extend(r.template_texts());
        }
        texts.iter().flat_map(|t| template_names(t)).filter_map(|n| n.strip_prefix("env.").map(str::to_owned)).collect()
    }

    pub(crate) fn resolve(config: Config, base: &std::path::Path) -> Result<Self, FieldError> {
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
