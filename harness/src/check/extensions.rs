//! `extensions`: the extensions the application needs are installed in the restored database,
//! at least at the given versions.
//!
//! ```toml
//! [checks.extensions]
//! vector = "0.8.0"   # installed, version 0.8.0 or newer
//! age = "*"          # installed, any version
//! ```
//!
//! Before the restore, the preflight phase also requires every extension named here to be
//! *available* on the target, so a missing package fails fast instead of halfway through.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::time::Instant;

use super::{CheckContext, CheckError, CheckResult, Kind, OrCheckError, ResolveContext};
use crate::field::FieldError;
use crate::outcome::CheckKind;
use crate::pg::compare_versions;

crate::outcome::findings! {
    /// What `extensions` finds.
    pub(crate) enum Found for Extensions {
        Installed = Pass "extensions.installed"
            "The extension is installed, at least at the version the scenario asks."
            "Nothing.",
        NotInstalled = Fail "extensions.not-installed"
            "The extension is not installed in the restored database: what uses it fails."
            "Install the extension's package on the target (its image), and check that the dump creates it.",
        TooOld = Fail "extensions.too-old"
            "The extension is installed at an older version than the scenario asks."
            "Use a target image with the newer version, then `ALTER EXTENSION ... UPDATE`.",
    }
}

pub(crate) const KIND: CheckKind = CheckKind::Extensions;

const QUERY: &str = "SELECT extname::text, extversion FROM pg_catalog.pg_extension ORDER BY 1";

/// Extension name to the lowest acceptable version, or `*` for any.
pub(crate) type Config = BTreeMap<String, String>;

#[derive(Debug, Clone)]
pub(crate) struct Spec {
    /// Each extension with its minimum version (`None`: any version).
    pub required: Vec<(String, Option<String>)>,
}

impl Kind for Spec {
    const KIND: CheckKind = KIND;
    type Config = Config;

    fn resolve(config: Config, _ctx: &ResolveContext) -> Result<Self, FieldError> {
        if config.is_empty() {
            return Err(FieldError::unplaced("`[checks.extensions]` lists no extension"));
        }
        let required = config
            .into_iter()
            .map(|(name, version)| {
                let version = version.trim();
                let min = (!matches!(version, "" | "*")).then(|| version.to_owned());
                (name, min)
            })
            .collect();
        Ok(Spec { required })
    }

    fn label(&self) -> String {
        let names: Vec<&str> = self.required.iter().map(|(n, _)| n.as_str()).collect();
        names.join(", ")
    }

    fn objects(&self) -> Vec<String> {
        self.required.iter().map(|(name, _)| name.clone()).collect()
    }

    async fn run(&self, ctx: &CheckContext<'_>) -> Result<Vec<CheckResult>, CheckError> {
        let started = Instant::now();
        let installed: BTreeMap<String, String> = sqlx::query_as::<_, (String, String)>(QUERY)
            .fetch_all(ctx.pool)
            .await
            .or_check("could not list extensions")
            .map_err(|e| e.evidence(QUERY))?
            .into_iter()
            .collect();
        Ok(self
            .required
            .iter()
            .map(|(name, min)| {
                let expected = match min {
                    Some(min) => format!("installed, version >= {min}"),
                    None => "installed".to_owned(),
                };
                let result = CheckResult::build(KIND, name.clone(), started).expected(expected).evidence(QUERY);
                match (installed.get(name), min) {
                    (None, _) => result
                        .actual("not installed")
                        .found(Found::NotInstalled, format!("extension `{name}` is not installed")),
                    (Some(version), Some(min)) if compare_versions(version, min) == Ordering::Less => result
                        .actual(version.clone())
                        .found(Found::TooOld, format!("extension `{name}` is at version {version}, older than {min}")),
                    (Some(version), _) => result
                        .actual(version.clone())
                        .found(Found::Installed, format!("extension `{name}` {version} is installed")),
                }
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn star_means_any_version() {
        let ctx = ResolveContext { base: ".".into(), baseline: None };
        let config = [("age".to_owned(), "*".to_owned()), ("vector".to_owned(), "0.8.0".to_owned())].into();
        let spec = Spec::resolve(config, &ctx).unwrap();
        assert_eq!(spec.required, vec![("age".into(), None), ("vector".into(), Some("0.8.0".into()))]);
        let empty = Spec::resolve(Config::new(), &ctx).unwrap_err();
        assert_eq!(empty.message, "`[checks.extensions]` lists no extension");
    }
}
