//! Scenario files: which backup to drill, on which throwaway target, with which checks.
//!
//! ```toml
//! name = "plur"                          # default: the file's name
//! description = "PLUR Enterprise nightly dump"
//! tags = ["quarterly", "roles"]
//!
//! [source]
//! path = "../fixtures/backups/plur.sql.gz"   # relative to this file
//! # sha256 = "..."                           # the backup must have this digest
//! # trusted = "why"                          # only then on a target that is not a sandbox
//!
//! [target]                               # a throwaway container (the default kind)
//! database = "plur_enterprise"           # default "pgdrill"
//! # image = "pgdrill/postgres:17-r1"     # default: the project's image
//! # startup_timeout = "60s"
//! # settings = { work_mem = "64MB" }     # over pgdrill's throwaway tuning
//! # memory = "8GB"                       # the sandbox's limit (default: 3/4 of the machine's)
//! # processes = 512                      # the sandbox's limit
//!
//! [[restore.roles]]                      # created before the restore
//! name = "plur_app"
//!
//! [checks.extensions]
//! vector = "0.8.0"
//!
//! [[checks.schema_version]]
//! expected = "010"
//!
//! [checks.row_counts]
//! expect_from_dump = true
//! tables = { "public.users" = 12 }
//! ```
//!
//! Loading is parse, then resolve: the raw form ([`raw`]) mirrors the file and rejects unknown
//! keys; resolving fills defaults and checks values. Every error names `file:line:col`.

mod deadlines;
mod discover;
mod error;
pub mod raw;
mod recovery;
mod source;
mod target;

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

pub use crate::provision::spec::{
    ContainerSpec, DEFAULT_IMAGE, IMAGE_MAJORS, LocalSpec, ServerSpec, TargetKind, TargetSpec, default_image,
    project_image, project_image_major,
};
pub use deadlines::Deadlines;
pub use discover::{discover, selected};
pub use error::{InvalidScenario, ScenarioError};
use recovery::resolve_recovery;
pub use recovery::{RecoverySpec, RecoveryTarget, TargetTimeError, TimelineChoice, parse_target_time};

use crate::field::{FieldError, normalize, parse_duration};
use raw::RawScenario;

/// Where the scenario format's JSON Schema is published, as a scenario's `#:schema` line names it.
pub const SCHEMA_URL: &str = "https://github.com/pgdrill/pgdrill/raw/main/schema/scenario.schema.json";

/// The JSON Schema of the scenario format, made from the types the loader reads a scenario
/// with, so that it cannot drift from them: for editors (taplo, Even Better TOML) and
/// validators. `pgdrill schema` prints it; `schema/scenario.schema.json` is it, checked in.
pub fn json_schema() -> serde_json::Value {
    let settings = schemars::generate::SchemaSettings::draft2020_12()
        .with(|s| s.transforms.push(Box::new(schemars::transform::RecursiveTransform(without_null))));
    let mut schema = settings.into_generator().into_root_schema_for::<RawScenario>();
    schema.insert("$id".into(), SCHEMA_URL.into());
    schema.insert("title".into(), "pgdrill scenario".into());
    schema.insert(
        "description".into(),
        "A restore drill: the backup, the throwaway target, the checks and the objectives (pgdrill's README).".into(),
    );
    schema.to_value()
}

/// TOML has no null: an optional key is one that may be left out, not one that may be null, so
/// the `null` schemars gives every `Option` is taken out again.
fn without_null(schema: &mut schemars::Schema) {
    let Some(object) = schema.as_object_mut() else { return };
    if let Some(serde_json::Value::Array(types)) = object.get_mut("type") {
        types.retain(|t| t != "null");
        if let [only] = types.as_slice() {
            let only = only.clone();
            object.insert("type".into(), only);
        }
    }
    if let Some(serde_json::Value::Array(any_of)) = object.get_mut("anyOf") {
        any_of.retain(|s| s.get("type").is_none_or(|t| t != "null"));
        if let [only] = any_of.as_slice()
            && let Some(only) = only.as_object().cloned()
        {
            object.remove("anyOf");
            for (key, value) in only {
                object.entry(key).or_insert(value);
            }
        }
    }
}

use std::sync::Arc;

use crate::baseline::Baseline;
use crate::check::{CheckSpec, ResolveContext};
use crate::source::{SourceLocation, SourceSpec};
use source::resolve_source;
use target::resolve_target;

/// A resolved scenario, ready to drill.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub name: String,
    pub description: Option<String>,
    pub tags: Vec<String>,
    /// The scenario file, as given.
    pub file: PathBuf,
    /// sha256 of the scenario file's bytes, recorded in the reports.
    pub file_sha256: String,
    pub source: SourceSpec,
    pub target: TargetSpec,
    pub restore: RestoreSpec,
    pub checks: Vec<CheckSpec>,
    /// The baseline the checks compare with, when the scenario names one.
    pub baseline: Option<PathBuf>,
    /// How the application logs in (`[login]`, its defaults from `[app]`).
    pub login: crate::check::login::Spec,
    /// The application booted against the restored database.
    pub app: Option<crate::app::Spec>,
    /// Migrations applied after the restore.
    pub migrate: Option<crate::migrate::Spec>,
    /// The recovery objectives each drill is judged against.
    pub objectives: crate::objectives::Objectives,
    /// How far a physical backup recovers.
    pub recovery: RecoverySpec,
    /// How long each phase may take.
    pub deadlines: Deadlines,
    /// Whether the drill keeps its restore as a snapshot, or starts from a clone of one.
    pub snapshot: SnapshotSpec,
    /// The webhook told about the drill (`[notify]`).
    pub notify: Option<crate::notify::Spec>,
}

/// The scenario's `[snapshot]`: what `--snapshot` and `--reuse` ask on the command line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SnapshotSpec {
    pub keep: bool,
    pub reuse: bool,
}

#[derive(Debug, Clone, Default)]
pub struct RestoreSpec {
    pub roles: Vec<RoleSpec>,
    /// A `pg_dumpall --globals-only` file applied before the dump.
    pub globals: Option<PathBuf>,
    /// Parallel jobs for pg_restore (custom and directory archives).
    pub jobs: usize,
    /// Create the roles the dump names that neither the scenario nor its globals create (as
    /// `LOGIN` roles, like `[[restore.roles]]`), instead of failing preflight: `pgdrill init`,
    /// which learns them from the restore. Never set by a scenario file.
    pub create_missing_roles: bool,
}

/// A role created on the target before the restore.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleSpec {
    pub name: String,
    pub login: bool,
    pub member_of: Vec<String>,
}

impl Scenario {
    /// Reads, parses and resolves a scenario file.
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        Self::load_with(path, false)
    }

    /// Loads a scenario to capture a baseline from its restore: its checks (and the baseline
    /// they may compare with, which may not exist yet) are left out.
    pub fn load_without_checks(path: &Path) -> Result<Scenario, ScenarioError> {
        Self::load_with(path, true)
    }

    fn load_with(path: &Path, without_checks: bool) -> Result<Scenario, ScenarioError> {
        let bytes = std::fs::read(path).map_err(|source| ScenarioError::Read { path: path.to_owned(), source })?;
        Self::parse_with(bytes, path, without_checks)
    }

    /// Parses and resolves a scenario's text as if read from `path` (relative paths in it start
    /// at its folder; files it names are not read until the drill needs them).
    pub fn parse(bytes: &[u8], path: &Path) -> Result<Scenario, ScenarioError> {
        Self::parse_with(bytes.to_vec(), path, false)
    }

    fn parse_with(bytes: Vec<u8>, path: &Path, without_checks: bool) -> Result<Scenario, ScenarioError> {
        let shown = path.display().to_string();
        let text = String::from_utf8(bytes.clone()).map_err(|e| {
            let at = e.utf8_error().valid_up_to();
            ScenarioError::invalid(
                &shown,
                &String::from_utf8_lossy(&bytes),
                FieldError::new(at..at + 1, "the file is not valid UTF-8"),
            )
        })?;
        let mut raw: RawScenario = toml::from_str(&text).map_err(|e| {
            let error = FieldError { span: e.span(), message: e.message().trim_end().to_owned() };
            ScenarioError::invalid(&shown, &text, error)
        })?;
        if without_checks {
            raw.baseline = None;
            raw.checks = Default::default();
            raw.app = None;
            raw.migrate = None;
            raw.objectives = None;
        }
        let base = path.parent().unwrap_or(Path::new("."));
        let file_sha256 = hex::encode(Sha256::digest(text.as_bytes()));
        // A webhook URL written where it must not be is a secret: the snippet an error shows
        // masks it (byte for byte, so that lines and columns stay right).
        let secrets: Vec<_> =
            raw.notify.as_ref().and_then(|n| n.get_ref().url.as_ref()).map(|u| u.span()).into_iter().collect();
        resolve(raw, path, base, file_sha256).map_err(|e| ScenarioError::invalid(&shown, &masked(&text, &secrets), e))
    }

    /// The extensions the scenario's `extensions` check requires.
    pub fn required_extensions(&self) -> Vec<String> {
        self.checks
            .iter()
            .filter_map(|c| match c {
                CheckSpec::Extensions(spec) => Some(spec.required.iter().map(|(n, _)| n.clone())),
                _ => None,
            })
            .flatten()
            .collect()
    }

    /// Drills `backup` instead of the scenario's own source (for a file at hand, or a broken
    /// variant of the usual backup).
    pub fn override_backup(&mut self, backup: &Path) {
        self.source = SourceSpec {
            location: SourceLocation::File(backup.to_owned()),
            expected_sha256: None,
            ..self.source.clone()
        };
    }

    /// Which set of a pgBackRest repository the drill restores: the one `[source] set` names,
    /// else the newest that finished before a `[recovery] target_time`, else the newest.
    pub(crate) fn set_choice(&self) -> crate::source::physical::pgbackrest::Choice<'_> {
        crate::source::physical::pgbackrest::Choice {
            stanza: self.source.stanza.as_deref(),
            set: self.source.set.as_deref(),
            before: match self.recovery.target {
                RecoveryTarget::Time(at) => Some(at),
                _ => None,
            },
        }
    }

    pub fn has_tag(&self, tag: &str) -> bool {
        self.tags.iter().any(|t| t == tag)
    }
}

/// `text` with the characters of each span replaced by as many bytes of `*`.
fn masked(text: &str, spans: &[std::ops::Range<usize>]) -> String {
    text.char_indices()
        .map(|(i, c)| if spans.iter().any(|s| s.contains(&i)) { "*".repeat(c.len_utf8()) } else { c.to_string() })
        .collect()
}

fn is_simple_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

fn resolve(raw: RawScenario, file: &Path, base: &Path, file_sha256: String) -> Result<Scenario, FieldError> {
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
    let source = resolve_source(&raw.source, base)?;
    let target = resolve_target(raw.target, base).map_err(|e| e.or_span(None))?;
    let restore = resolve_restore(raw.restore, base)?;
    let (baseline_path, baseline) = baseline(raw.baseline.as_ref(), base)?;
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

    let objectives = match raw.objectives {
        Some(o) => crate::objectives::Objectives {
            rto: o.rto.as_ref().map(parse_duration).transpose()?,
            rpo: o.rpo.as_ref().map(parse_duration).transpose()?,
        },
        None => Default::default(),
    };

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
        name,
        description: raw.description,
        tags,
        file: file.to_owned(),
        file_sha256,
        source,
        target,
        restore,
        checks,
        baseline: baseline_path,
        login,
        app,
        migrate,
    })
}

/// `[login]`, its role and `application_name` defaulting to what `[app]` logs in with.
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
fn baseline(
    path: Option<&crate::field::Spanned<String>>,
    base: &Path,
) -> Result<(Option<PathBuf>, Option<Arc<Baseline>>), FieldError> {
    Ok(match path {
        Some(path) => {
            let resolved = normalize(&base.join(path.get_ref()));
            let baseline = Baseline::load(&resolved).map_err(|e| {
                FieldError::new(path.span(), crate::error::error_chain(&e))
                    .with_help("make one with `pgdrill baseline --dsn URL -o FILE`")
            })?;
            (Some(resolved), Some(Arc::new(baseline)))
        }
        None => (None, None),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::SecretSource;
    use std::time::Duration;

    #[expect(clippy::disallowed_methods, reason = "a test's own small folder")]
    fn load_text(text: &str) -> Result<Scenario, ScenarioError> {
        let dir = std::env::temp_dir().join(format!("pgdrill-scenario-{}", rand::random::<u64>()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("demo.toml");
        std::fs::write(&path, text).unwrap();
        let result = Scenario::load(&path);
        std::fs::remove_dir_all(&dir).ok();
        result
    }

    fn error_of(text: &str) -> InvalidScenario {
        match load_text(text) {
            Err(ScenarioError::Invalid(e)) => *e,
            other => panic!("expected an invalid scenario, got {other:?}"),
        }
    }

    #[test]
    fn minimal_scenario_gets_defaults() {
        let s = load_text("[source]\npath = \"b.sql.gz\"\n").unwrap();
        assert_eq!(s.name, "demo");
        assert_eq!(s.target.database, "pgdrill");
        let TargetKind::Container(c) = &s.target.kind else { panic!("a container target") };
        assert_eq!((c.image.as_deref(), c.version), (None, None));
        assert_eq!(c.startup_timeout, Duration::from_secs(60));
        assert!(s.checks.is_empty());
        assert_eq!(s.file_sha256.len(), 64);
    }

    #[test]
    fn a_recovery_target_is_a_time_with_its_offset_or_immediate() {
        let at = |text: &str| parse_target_time(text).map(|t| t.unix_timestamp_nanos()).map_err(|e| e.to_string());
        let expected = time::macros::datetime!(2026-11-22 03:00:00.5 UTC).unix_timestamp_nanos();
        assert_eq!(at("2026-11-22T03:00:00.5Z"), Ok(expected));
        assert_eq!(at("2026-11-22 03:00:00.500000+00"), Ok(expected), "as PostgreSQL prints it");
        assert_eq!(at("2026-11-22 04:00:00.5+01:00"), Ok(expected));
        assert!(at("2026-11-22 03:00:00").is_err(), "no offset: which zone?");
        let s = load_text("[source]\npath = \"b\"\n[recovery]\ntarget = \"immediate\"\n").unwrap();
        assert_eq!(s.recovery.target, RecoveryTarget::Immediate);
        let e = error_of("[source]\npath = \"b\"\n[recovery]\ntarget = \"latest\"\n");
        assert!(e.to_string().contains("unknown recovery target `latest`"), "{e}");
        let e = error_of(
            "[source]\npath = \"b\"\n[recovery]\ntarget = \"immediate\"\ntarget_time = \"2026-11-22T03:00:00Z\"\n",
        );
        assert!(e.to_string().contains("not both"), "{e}");
    }

    #[test]
    fn a_recovery_target_may_be_an_lsn_a_transaction_or_a_restore_point() {
        let target =
            |toml: &str| load_text(&format!("[source]\npath = \"b\"\n[recovery]\n{toml}\n")).map(|s| s.recovery);
        let lsn = target("target_lsn = \"0/3000060\"\ninclusive = false").unwrap();
        assert_eq!((lsn.target.clone(), lsn.inclusive), (RecoveryTarget::Lsn(0x300_0060), false));
        assert_eq!(lsn.target.setting(), Some(("recovery_target_lsn", "0/3000060".to_owned())));
        assert_eq!(target("target_xid = 771").unwrap().target, RecoveryTarget::Xid(771));
        let name = target("target_name = \"before-migration\"").unwrap();
        assert_eq!(name.target.to_string(), "recovery_target_name before-migration");
        for (toml, message) in [
            ("target_lsn = \"3000060\"", "is not a WAL location"),
            ("target_xid = 2", "is not a transaction id"),
            ("target_name = \"\"", "1 to 63 characters"),
            ("target_lsn = \"0/1\"\ntarget_xid = 800", "give one recovery target"),
            ("target = \"immediate\"\ninclusive = true", "`inclusive` applies to"),
        ] {
            let e = error_of(&format!("[source]\npath = \"b\"\n[recovery]\n{toml}\n"));
            assert!(e.to_string().contains(message), "{toml}: {e}");
        }
    }

    #[test]
    fn a_container_target_may_pin_a_major_pgdrill_builds() {
        let s = load_text("[source]\npath = \"b.sql.gz\"\n[target]\nversion = 18\n").unwrap();
        let TargetKind::Container(c) = &s.target.kind else { panic!("a container target") };
        assert_eq!(c.version, Some(18));
        let e = error_of("[source]\npath = \"b.sql.gz\"\n[target]\nversion = 16\n");
        assert!(e.to_string().contains("pgdrill builds images of PostgreSQL 15, 17 and 18 only, not 16"), "{e}");
        let e = error_of("[source]\npath = \"b.sql.gz\"\n[target]\nversion = 18\nimage = \"x/y:18-a\"\n");
        assert!(e.to_string().contains("give `image` or `version`, not both"), "{e}");
        let e = error_of("[source]\npath = \"b.sql.gz\"\n[target]\nkind = \"local\"\nversion = 18\n");
        assert!(e.to_string().contains("`version` is for container targets"), "{e}");
    }

    #[test]
    fn every_phase_has_a_deadline_and_the_target_a_disk_limit() {
        let s = load_text("[source]\npath = \"b\"\n").unwrap();
        assert_eq!(s.deadlines, Deadlines::default());
        assert_eq!(s.deadlines.restore.limit, Duration::from_secs(12 * 3600));
        assert_eq!(s.deadlines.checks.limit, Duration::from_secs(2 * 3600));
        let TargetKind::Container(c) = &s.target.kind else { panic!("a container target") };
        assert_eq!(c.disk, None, "the default is decided where the data lives");
        let s = load_text(
            "[source]\npath = \"b\"\nfetch_timeout = \"5m\"\nverify_timeout = \"6m\"\n\
             [target]\nprovision_timeout = \"7m\"\ndisk = \"20GB\"\n\
             [restore]\npreflight_timeout = \"8m\"\ntimeout = \"9m\"\n\
             [checks]\ntimeout = \"10m\"\n[checks.row_counts.tables]\nt = 1\n",
        )
        .unwrap();
        let d = s.deadlines;
        let minutes: Vec<u64> = [d.fetch, d.verify, d.provision, d.preflight, d.restore, d.checks]
            .iter()
            .map(|d| d.limit.as_secs() / 60)
            .collect();
        assert_eq!(minutes, [5, 6, 7, 8, 9, 10]);
        assert_eq!(s.checks.len(), 1, "`timeout` is not a check kind");
        let TargetKind::Container(c) = &s.target.kind else { panic!("a container target") };
        assert_eq!(c.disk.as_ref().map(|d| (d.bytes, d.shown.as_str())), Some((20 << 30, "20GB")));
        let local = load_text("[source]\npath = \"b\"\n[target]\nkind = \"local\"\ndisk = \"64MB\"\n").unwrap();
        let TargetKind::Local(l) = &local.target.kind else { panic!("a local target") };
        assert_eq!(l.disk.as_ref().map(|d| d.bytes), Some(64 << 20));
        for (toml, message) in [
            ("[target]\ndisk = \"10MB\"", "is not a size of at least 64MB"),
            ("[target]\ndisk = \"much\"", "is not a size of at least 64MB"),
            (
                "[target]\nkind = \"server\"\nurl_env = \"U\"\ndisk = \"1GB\"",
                "`disk` is for container and local targets",
            ),
            ("[restore]\ntimeout = \"forever\"", "is not a duration"),
            ("[checks]\ntimeout = \"0s\"", "`[checks] timeout` must be longer than 0s"),
        ] {
            let e = error_of(&format!("[source]\npath = \"b\"\n{toml}\n"));
            assert!(e.to_string().contains(message), "{toml}: {e}");
        }
    }

    #[test]
    fn source_secrets_come_from_the_environment_or_a_file() {
        let s = load_text("[source]\nurl_env = \"BACKUP_URL\"\ntoken_file = \"secrets/token\"\n").unwrap();
        let SourceLocation::Url(http) = &s.source.location else { panic!("a URL source") };
        assert_eq!(http.url, SecretSource::Env("BACKUP_URL".into()));
        assert!(matches!(&http.token, Some(SecretSource::File(p)) if p.ends_with("secrets/token")));
        let e = error_of("[source]\nurl = \"https://h/b.sql.gz\"\nurl_file = \"u\"\n");
        assert!(e.message.contains("`url` and `url_file` give the same url twice"), "{e}");
        let e = error_of("[source]\npath = \"b.sql.gz\"\ntoken_env = \"T\"\n");
        assert!(e.message.contains("a token is only sent to an http(s):// source"), "{e}");
        let e = error_of("[source]\nurl = \"ftp://h/b.sql.gz\"\n");
        assert!(e.message.contains("is not an http(s):// URL"), "{e}");
    }

    #[test]
    fn unknown_key_names_line_and_column() {
        let e = error_of("[source]\npath = \"b.sql\"\n\n[target]\n  imaeg = \"x:1\"\n");
        assert_eq!((e.line, e.column), (5, 3), "{e}");
        assert!(e.message.contains("unknown field `imaeg`"), "{e}");
        assert!(e.to_string().ends_with(&format!(":5:3: {}", e.message)));
    }

    #[test]
    fn wrong_type_names_line_and_column() {
        let e = error_of("[source]\npath = 42\n");
        assert_eq!((e.line, e.column), (2, 8), "{e}");
        assert!(e.message.contains("invalid type"), "{e}");
    }

    #[test]
    fn missing_source_is_an_error() {
        let e = error_of("name = \"x\"\n");
        assert!(e.message.contains("missing field `source`"), "{e}");
        assert_eq!(e.line, 1);
    }

    #[test]
    fn unknown_check_kind_is_an_error() {
        let e = error_of("[source]\npath = \"b\"\n[checks.row_cuonts]\ntables = {}\n");
        assert!(e.message.contains("unknown field `row_cuonts`"), "{e}");
        assert_eq!(e.line, 3);
    }

    #[test]
    fn bad_values_point_at_themselves() {
        let e = error_of("[source]\npath = \"b\"\n[target]\nstartup_timeout = \"soon\"\n");
        assert_eq!((e.line, e.column), (4, 19), "{e}");
        let e = error_of("[source]\npath = \"b\"\n[target]\nimage = \"postgres:latest\"\n");
        assert!(e.message.contains("no pinned tag"), "{e}");
        let e = error_of("[source]\npath = \"b\"\n\n[[checks.row_counts]]\ntolerance = 1\n");
        assert_eq!(e.line, 4, "{e}");
        assert!(e.message.contains("needs `tables`"), "{e}");
        let e = error_of("[source]\npath = \"b\"\n[checks.row_counts]\ntolerance = \"much\"\ntables = { t = 1 }\n");
        assert_eq!((e.line, e.column), (4, 13), "{e}");
    }

    #[test]
    fn paths_are_normalized() {
        assert_eq!(normalize(Path::new("scenarios/../fixtures/b.sql.gz")), PathBuf::from("fixtures/b.sql.gz"));
        assert_eq!(normalize(Path::new("./../x/./y")), PathBuf::from("../x/y"));
        assert_eq!(normalize(Path::new("/a/b/../../..")), PathBuf::from("/.."));
    }

    #[test]
    fn a_malformed_baseline_is_a_scenario_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("base.json"), "{\n  \"schema\": \"pgdrill.baseline.v1\",\n  oops\n}").unwrap();
        let path = dir.path().join("s.toml");
        std::fs::write(&path, "baseline = \"base.json\"\n[source]\npath = \"b\"\n").unwrap();
        let Err(ScenarioError::Invalid(e)) = Scenario::load(&path) else { panic!("expected an error") };
        assert_eq!((e.line, e.column), (1, 12), "{e}");
        assert!(e.message.contains("is not a pgdrill baseline") && e.message.contains("line 3"), "{e}");

        std::fs::write(&path, "[source]\npath = \"b\"\n[checks.indexes]\nbaseline = true\n").unwrap();
        let Err(ScenarioError::Invalid(e)) = Scenario::load(&path) else { panic!("expected an error") };
        assert!(e.message.contains("the scenario names none"), "{e}");
        assert_eq!(e.line, 3);
    }

    #[test]
    fn checks_one_or_many() {
        let s = load_text(
            "[source]\npath = \"b\"\n[checks.extensions]\nvector = \"0.8.0\"\n\
             [[checks.schema_version]]\nexpected = \"010\"\n[[checks.schema_version]]\ntable = \"drizzle.m\"\nexpected = 3\n\
             [checks.row_counts.tables]\npublic.users = 12\n",
        )
        .unwrap();
        let kinds: Vec<&str> = s.checks.iter().map(|c| c.kind()).collect();
        assert_eq!(kinds, ["extensions", "schema_version", "schema_version", "row_counts"]);
        assert_eq!(s.required_extensions(), ["vector"]);
    }

    #[test]
    fn checks_keep_the_order_of_the_file() {
        let s = load_text(
            "[source]\npath = \"b\"\n[[checks.sql]]\nname = \"first\"\nquery = \"SELECT 1\"\nexpect = 1\n\
             [checks.row_counts.tables]\npublic.users = 12\n[checks.extensions]\nvector = \"0.8.0\"\n",
        )
        .unwrap();
        let kinds: Vec<&str> = s.checks.iter().map(|c| c.kind()).collect();
        assert_eq!(kinds, ["sql", "row_counts", "extensions"]);
    }

    #[test]
    fn every_kind_has_a_purpose_and_the_gate_drills_roles_rls_and_audit() {
        for kind in crate::check::KINDS {
            assert!(crate::check::purpose(kind).is_some_and(|p| !p.is_empty()), "{kind}");
        }
        assert_eq!(crate::check::gate_kinds(), ["rls", "append_only", "roles"]);
    }
}
