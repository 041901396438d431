//! The app phase's body: build and boot the application on the restored database, wait until it
//! answers, make its requests, stop it. The drill reports what this returns.

use crate::error::error_chain;
use crate::outcome::AppInfo;
use crate::outcome::{CheckResult, Verdict};
use crate::provision::{Target, TargetError};
use crate::secret::Redactor;
use crate::units::human_duration;

use super::process::{self, AppHandle, ProcessError};
use super::{Launch, Spec};
use crate::template::{TemplateError, render, template_values};

/// Why the app phase failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum AppError {
    /// The build, the app's start or its stop failed.
    #[error(transparent)]
    Process {
        #[from]
        source: ProcessError,
    },
    /// The programs' login or port on the target could not be made.
    #[error(transparent)]
    Target {
        #[from]
        source: TargetError,
    },
    /// A value of the app's environment cannot be rendered.
    #[error(transparent)]
    Render {
        #[from]
        source: TemplateError,
    },
    /// No free loopback port for the app.
    #[error("cannot find a free port for the app")]
    Port {
        #[source]
        source: std::io::Error,
    },
    /// No HTTP client (its TLS configuration).
    #[error("cannot make an HTTP client")]
    Client {
        #[source]
        source: reqwest::Error,
    },
    /// The app never answered on its ready path, or listens beyond loopback.
    #[error("{}; its last output:\n{last_lines}", error_chain(.why))]
    NotReady { why: ProcessError, last_lines: String },
    /// Some of the app's requests did not get the answer the scenario expects.
    #[error("{failed} of {total} API checks did not pass; the app's last output:\n{last_lines}")]
    Requests { failed: usize, total: usize, last_lines: String },
}

/// What the app phase needs from the drill.
pub(crate) struct Run<'a> {
    pub target: &'a Target,
    pub database: &'a str,
    pub spec: &'a Spec,
    pub drill_id: &'a str,
    pub redactor: &'a Redactor,
    /// Where the running app is kept, so that the drill stops it if it is interrupted.
    pub slot: &'a mut Option<AppHandle>,
    pub progress: &'a (dyn Fn(&str) + Send + Sync),
    /// Each request's result, as it comes.
    pub on_result: &'a (dyn Fn(CheckResult) + Send + Sync),
}

/// Runs the app phase: what was launched (when anything was), and the phase's summary or why it
/// failed.
pub(crate) async fn run(run: Run<'_>) -> (Option<AppInfo>, Result<String, AppError>) {
    let Run { target, database, spec, drill_id, redactor, slot, progress, on_result } = run;
    if let Some((argv, workdir, timeout)) = &spec.build {
        progress(&format!("building: {}", argv.join(" ")));
        if let Err(e) = crate::program::run_to_end(argv, workdir, &[], *timeout, redactor).await {
            return (None, Err(ProcessError::from(e).into()));
        }
    }
    let launched = match launch(target, database, spec, drill_id, redactor).await {
        Ok(launched) => launched,
        Err(e) => return (None, Err(e)),
    };
    let (handle, app_port, mut values) = launched;
    let app_url = format!("http://127.0.0.1:{app_port}");
    let launched = handle.launched.clone();
    let handle = slot.insert(handle);
    crate::tls::install();
    let client = match reqwest::Client::builder().build() {
        Ok(client) => client,
        Err(source) => return (None, Err(AppError::Client { source })),
    };
    progress(&format!("waiting for {app_url}{}", spec.ready_path));
    let ready = handle.wait_ready(&client, &format!("{app_url}{}", spec.ready_path), spec.ready_timeout).await;
    let ready = ready.and_then(|took| match process::reachable_beyond_loopback(app_port) {
        Some(addr) => Err(ProcessError::Exposed { address: addr.to_string() }),
        None => Ok(took),
    });
    let mut failures = 0;
    if ready.is_ok() {
        for request in &spec.requests {
            let result = request.run(&client, &app_url, &mut values, redactor).await;
            if result.verdict != Verdict::Pass {
                failures += 1;
            }
            on_result(result);
        }
    }
    let tail = handle.output_tail(30, redactor).await;
    let stopped = handle.stop().await;
    *slot = None;
    let info = AppInfo { launched, url: app_url.clone(), output_tail: tail.clone() };
    let last_lines =
        if tail.is_empty() { "(no output)".to_owned() } else { tail[tail.len().saturating_sub(10)..].join("\n") };
    let result = match ready {
        Err(why) => Err(AppError::NotReady { why, last_lines }),
        Ok(_) if failures > 0 => Err(AppError::Requests { failed: failures, total: spec.requests.len(), last_lines }),
        Ok(ready_in) => Ok(format!(
            "ready in {} at {app_url}; {} API checks passed; {}",
            human_duration(ready_in),
            spec.requests.len(),
            stopped.unwrap_or_else(|e| error_chain(&e))
        )),
    };
    (Some(info), result)
}

/// Starts the app: its login (its own role with a fresh password when the scenario names one),
/// its port and environment. Returns the running app, its port and the template values.
async fn launch(
    target: &Target,
    database: &str,
    spec: &Spec,
    drill_id: &str,
    redactor: &Redactor,
) -> Result<(AppHandle, u16, std::collections::BTreeMap<String, String>), AppError> {
    let role = match &spec.role {
        Some(role) => {
            let given =
                spec.password_env.as_ref().and_then(|var| std::env::var(var).ok()).map(crate::secret::Secret::new);
            let login = target.role_login(database, role, given, redactor).await?;
            // A role of the drill's own, NOLOGIN in the backup, can log in for the app; a shared
            // server's own role is left as it is.
            if login.nologin && login.origin == crate::provision::logins::PasswordOrigin::Made {
                target.grant_login(database, role).await?;
            }
            Some((role.clone(), login.password))
        }
        None => None,
    };
    let login = target.program_login(role, redactor).await?;
    let app_port = match spec.port {
        Some(port) => port,
        None => std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .map_err(|source| AppError::Port { source })?,
    };
    let values = template_values(&login, database, Some(app_port));
    let mut env = Vec::new();
    for (key, template) in &spec.env {
        env.push((key.clone(), render(template, &values)?));
    }
    let handle = match &spec.launch {
        Launch::Command { argv, workdir } => AppHandle::spawn(argv, workdir, &env)?,
        Launch::Image { image, args } => AppHandle::container(image, args, &env, drill_id).await?,
    };
    Ok((handle, app_port, values))
}
