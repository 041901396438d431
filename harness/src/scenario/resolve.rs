//! A parsed scenario resolved: each section's defaults filled and its values checked (a
//! section of its own in `source`, `target`, `recovery` and `deadlines`), errors placed at the
//! value's span.

use std::path::Path;
use std::sync::Arc;

use super::deadlines;
use super::raw::{self, RawScenario};
use super::recovery::resolve_recovery;
use super::source::resolve_source;
use super::target::resolve_target;
use super::{RecoverySpec, RestoreSpec, RoleSpec, Scenario, SnapshotSpec};
use crate::baseline::Baseline;
use crate::check::{CheckSpec, ResolveContext};
use crate::field::{FieldError, normalize, parse_duration};

fn is_simple_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

pub(super) fn resolve(raw: RawScenario, file: &Path, base: &Path, file_sha256: String) -> Result<Scenario, FieldError> {
    let name = scenario_name(&raw, file)?;
    let tags = tags(&raw)?;

    let deadlines = deadlines::resolve(deadlines::Given {
        fetch: raw.source.get_ref().fetch_timeout.as_ref(),
        verify: raw.source.get_ref().verify_timeout.as_ref(),
        provision: raw.target.provision_timeout.as_ref(),
        preflight: raw.restore.preflight_timeout.as_ref(),
        restore: raw.restore.timeout.as_ref(),
        checks: raw.checks.timeout.as_ref(),
        app: raw.app.as_ref().and_then(|a| a.get_ref().timeout.as_ref()),
    })?;
    let source = resolve_source(&raw.source, base, &name)?;
    let target = resolve_target(raw.target, base).map_err(|e| e.or_span(None))?;
    let restore = resolve_restore(raw.restore, base)?;
    let baseline_file = raw.baseline.as_ref().map(|path| normalize(&base.join(path.get_ref())));
    let baseline = baseline(raw.baseline.as_ref(), base)?;
    let ctx = ResolveContext { base: base.to_owned(), baseline };
    let checks = raw.checks.resolve(&ctx)?;
    let migrate = migrate(raw.migrate, base, &checks)?;
    let app = match raw.app {
        Some(app) => {
            let span = app.span();
            Some(crate::app::Spec::resolve(app.into_inner(), base).map_err(|e| e.or_span(Some(span)))?)
        }
        None => None,
    };
    let mut login = login(raw.login.map(crate::field::Spanned::into_inner).unwrap_or_default(), app.as_ref());
    login.roles = restore.roles.iter().filter(|r| r.login).map(|r| r.name.clone()).collect();
    let mut app = app;
    if let Some(app) = app.as_mut() {
        app.password_env = app.role.as_ref().and_then(|role| login.passwords.get(role).cloned());
    }

    let objectives = raw.objectives.map(objectives).transpose()?.unwrap_or_default();
    let control = raw.control.map(|c| control(&c.fails_in)).transpose()?;

    let recovery = match raw.recovery {
        Some(r) => {
            let span = r.span();
            resolve_recovery(r.into_inner()).map_err(|e| e.or_span(Some(span)))?
        }
        None => RecoverySpec::default(),
    };

    let notify = match raw.notify {
        Some(n) => {
            let span = n.span();
            Some(crate::notify::Spec::resolve(n.into_inner(), base).map_err(|e| e.or_span(Some(span)))?)
        }
        None => None,
    };

    Ok(Scenario {
        notify,
        snapshot: SnapshotSpec { keep: raw.snapshot.keep, reuse: raw.snapshot.reuse },
        deadlines,
        recovery,
        objectives,
        control,
        name,
        description: raw.description,
        tags,
        file: file.to_owned(),
        file_sha256,
        source,
        target,
        restore,
        checks,
        login,
        app,
        migrate,
        baseline_file,
    })
}

/// `[login]`, its role and `application_name` defaulting to what `[app]` logs in with.
/// The phase a negative control fails in: one that judges the backup.
fn control(fails_in: &crate::field::Spanned<String>) -> Result<crate::outcome::Phase, FieldError> {
    use crate::outcome::Phase;
    let judging = [Phase::Verify, Phase::Preflight, Phase::Restore, Phase::Migrate, Phase::Checks, Phase::App];
    judging.into_iter().find(|p| p.as_str() == fails_in.get_ref()).ok_or_else(|| {
        let names: Vec<&str> = judging.iter().map(|p| p.as_str()).collect();
        FieldError::new(
            fails_in.span(),
            format!(
                "`{}` is not a phase a negative control can fail in (one of: {})",
                fails_in.get_ref(),
                names.join(", ")
            ),
        )
    })
}

/// The scenario's `[objectives]`, each a span of time.
fn objectives(raw: raw::RawObjectives) -> Result<crate::objectives::Objectives, FieldError> {
    Ok(crate::objectives::Objectives {
        rto: raw.rto.as_ref().map(parse_duration).transpose()?,
        rpo: raw.rpo.as_ref().map(parse_duration).transpose()?,
        cadence: raw.cadence.as_ref().map(parse_duration).transpose()?,
    })
}

fn login(config: crate::check::login::Config, app: Option<&crate::app::Spec>) -> crate::check::login::Spec {
    let mut spec = crate::check::login::Spec::resolve(config);
    if let Some(app) = app {
        spec.role = spec.role.or_else(|| app.role.clone());
        spec.application_name = spec.application_name.or_else(|| app.application_name());
    }
    spec
}

/// The scenario's name: as given, else the file's; a plain name either way (it names a folder).
fn scenario_name(raw: &RawScenario, file: &Path) -> Result<String, FieldError> {
    Ok(match &raw.name {
        Some(name) => {
            if !is_simple_name(name.get_ref()) {
                return Err(FieldError::new(
                    name.span(),
                    format!("scenario name `{}` must be letters, digits, `-`, `_` and `.`", name.get_ref()),
                )
                .with_help("the name is used as a folder under reports/"));
            }
            name.get_ref().clone()
        }
        None => {
            let stem = file.file_stem().and_then(|s| s.to_str()).unwrap_or("scenario");
            if !is_simple_name(stem) {
                return Err(FieldError::new(0..0, format!("the file name `{stem}` is not a usable scenario name"))
                    .with_help("set `name = \"...\"` (letters, digits, `-`, `_`, `.`)"));
            }
            stem.to_owned()
        }
    })
}

/// The scenario's tags, plain names each.
fn tags(raw: &RawScenario) -> Result<Vec<String>, FieldError> {
    let mut tags = Vec::new();
    for tag in &raw.tags {
        if !is_simple_name(tag.get_ref()) {
            return Err(FieldError::new(
                tag.span(),
                format!("tag `{}` must be letters, digits, `-`, `_` and `.`", tag.get_ref()),
            ));
        }
        tags.push(tag.get_ref().clone());
    }
    Ok(tags)
}

/// The baseline file the scenario compares with, loaded.
fn baseline(path: Option<&crate::field::Spanned<String>>, base: &Path) -> Result<Option<Arc<Baseline>>, FieldError> {
    Ok(match path {
        Some(path) => {
            let resolved = normalize(&base.join(path.get_ref()));
            let baseline = Baseline::load(&resolved).map_err(|e| {
                FieldError::new(path.span(), crate::error::error_chain(&e))
                    .with_help("make one with `pgdrill baseline --dsn URL -o FILE`")
            })?;
            Some(Arc::new(baseline))
        }
        None => None,
    })
}

/// `[migrate]`: without a journal of its own, it reads the schema_version check's.
fn migrate(
    migrate: Option<crate::field::Spanned<crate::migrate::Config>>,
    base: &Path,
    checks: &[CheckSpec],
) -> Result<Option<crate::migrate::Spec>, FieldError> {
    Ok(match migrate {
        Some(m) => {
            let span = m.span();
            let mut spec = crate::migrate::Spec::resolve(m.into_inner(), base).map_err(|e| e.or_span(Some(span)))?;
            // Without a journal of its own, the migration reads the schema_version check's.
            if spec.journal.is_none() {
                spec.journal = checks.iter().find_map(|c| match c {
                    CheckSpec::SchemaVersion(v) => Some((v.journal.table.clone(), v.journal.column.clone())),
                    _ => None,
                });
            }
            Some(spec)
        }
        None => None,
    })
}

fn resolve_restore(raw: raw::RawRestore, base: &Path) -> Result<RestoreSpec, FieldError> {
    let mut roles = Vec::new();
    for role in raw.roles {
        let span = role.span();
        let role = role.into_inner();
        if role.name.is_empty() || role.name.len() > 63 {
            return Err(FieldError::new(span, "a role name must be 1 to 63 characters"));
        }
        if role.name.starts_with("pg_") {
            return Err(FieldError::new(
                span,
                format!("`{}`: names starting with `pg_` are reserved for built-in roles", role.name),
            ));
        }
        roles.push(RoleSpec { name: role.name, login: role.login.unwrap_or(true), member_of: role.member_of });
    }
    let globals = raw.globals.map(|g| normalize(&base.join(g.get_ref())));
    let jobs = match raw.jobs {
        Some(jobs) if !(1..=64).contains(jobs.get_ref()) => {
            return Err(FieldError::new(jobs.span(), "`jobs` must be between 1 and 64"));
        }
        Some(jobs) => *jobs.get_ref() as usize,
        None => std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2).clamp(1, 8),
    };
    Ok(RestoreSpec { roles, globals, jobs, create_missing_roles: false })
}
