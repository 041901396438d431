//! Preflight: before a byte is restored, the target must be able to take the dump: a major
//! version at least the dump's, every extension the dump or the scenario needs available,
//! every role the dump names present (after creating the scenario's roles), and every setting
//! the dump sets known to the server.

use crate::outcome::PreflightReport;
use std::collections::{BTreeMap, BTreeSet};

use sqlx::postgres::PgConnection;
use sqlx::{Connection, Executor};

use std::path::Path;
use std::sync::atomic::AtomicBool;

use super::plain;
use crate::dump::DumpSummary;
use crate::pg::{major_of_version_num, major_of_version_text, quote_ident};
use crate::provision::Target;
use crate::scenario::{RestoreSpec, RoleSpec};
use crate::secret::Redactor;
use crate::source::{Backup, verify};

#[derive(Debug, thiserror::Error)]
pub(crate) enum PreflightError {
    /// A query of the target failed.
    #[error("cannot query the target")]
    Query(#[source] sqlx::Error),
    /// The database the restore goes into exists already (a server target's, not this drill's).
    #[error("database `{database}` already exists on the server")]
    DatabaseExists { database: String },
    /// The dump comes from a newer major version than the target runs.
    #[error(
        "the dump comes from PostgreSQL {dump_version}, newer than the target's PostgreSQL {target_version} (hint: restore onto a target of major version {dump_major} or newer)"
    )]
    NewerDump { dump_version: String, dump_major: u32, target_version: String },
    /// A dump that creates databases cannot go onto a shared server.
    #[error("the dump creates database{} {} itself (pg_dump -C or pg_dumpall): restore it onto a container or local target, not onto a shared server", if names.len() == 1 { "" } else { "s" }, names.join(", "))]
    CreatesDatabases { names: Vec<String> },
    /// Extensions the dump or scenario needs are not installable on the target.
    #[error("extension{} not available on the target (PostgreSQL {target_version}{image}): {} (hint: install their packages where the target's PostgreSQL runs: into its image, or beside the server or the local binaries)", if missing.len() == 1 { "" } else { "s" }, missing.join(", "))]
    MissingExtensions { missing: Vec<String>, target_version: String, image: String },
    /// Roles the dump names do not exist on the target.
    #[error("role{} named by the dump do{} not exist on the target: {} (hint: declare them under [[restore.roles]] in the scenario, or restore a globals file first)", if missing.len() == 1 { "" } else { "s" }, if missing.len() == 1 { "es" } else { "" }, missing.join(", "))]
    MissingRoles { missing: Vec<String> },
    /// The dump sets settings the target's server does not know.
    #[error("the dump sets {} that PostgreSQL {target_version} does not know (the dump was written by {dumped_by}): {}", if names.len() == 1 { "a setting" } else { "settings" }, names.join(", "))]
    UnknownSettings { names: Vec<String>, target_version: String, dumped_by: String },
    /// The target's roles could not be listed around the globals file's.
    #[error("globals file `{path}`: cannot list the target's roles")]
    Globals {
        path: String,
        #[source]
        source: sqlx::Error,
    },
    /// The globals file cannot be read.
    #[error("globals file `{path}`: cannot read it")]
    GlobalsUnreadable {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// The globals file's verification could not run to its end.
    #[error("globals file `{path}`")]
    GlobalsTask {
        path: String,
        #[source]
        source: tokio::task::JoinError,
    },
    /// The globals file does not verify, as a backup would not (the verify phase's error,
    /// boxed: its type is the crate's own).
    #[error("globals file `{path}`")]
    GlobalsInvalid {
        path: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The globals file could not be applied.
    #[error("globals file `{path}`")]
    GlobalsRestore {
        path: String,
        #[source]
        source: Box<super::RestoreError>,
    },
    /// Creating a scenario role failed.
    #[error("cannot create role `{role}`")]
    CreateRole {
        role: String,
        #[source]
        source: sqlx::Error,
    },
}

/// Runs the preflight checks, creating the scenario's roles on the way.
pub(crate) async fn preflight(
    target: &Target,
    summary: &DumpSummary,
    required_extensions: &[String],
    restore: &RestoreSpec,
    redactor: &Redactor,
) -> Result<PreflightReport, PreflightError> {
    let query_err = PreflightError::Query;
    let mut conn =
        PgConnection::connect_with(&target.connect_options(&target.maintenance_db)).await.map_err(query_err)?;
    let (server_version, server_version_num) = server_version(&mut conn, summary).await?;
    if target.database_suffix.is_some() && !summary.databases_created.is_empty() {
        return Err(PreflightError::CreatesDatabases { names: summary.databases_created.clone() });
    }
    let extensions = extensions(target, &mut conn, summary, required_extensions, &server_version).await?;
    let roles_created = roles(target, &mut conn, summary, restore, redactor).await?;
    let known: BTreeSet<String> = sqlx::query_scalar::<_, String>("SELECT name::text FROM pg_settings")
        .fetch_all(&mut conn)
        .await
        .map_err(query_err)?
        .into_iter()
        .collect();
    let unknown: Vec<String> = summary.settings.iter().filter(|s| !known.contains(*s)).cloned().collect();
    if !unknown.is_empty() {
        return Err(PreflightError::UnknownSettings {
            names: unknown,
            target_version: server_version,
            dumped_by: summary.comments.dumped_by.clone().unwrap_or_else(|| "an unknown pg_dump".into()),
        });
    }
    conn.close().await.ok();
    Ok(PreflightReport { server_version, server_version_num, extensions, roles_created })
}

/// The server's version (as it shows it, and its number), no older a major than the dump's.
async fn server_version(conn: &mut PgConnection, summary: &DumpSummary) -> Result<(String, u32), PreflightError> {
    let (server_version, num): (String, String) =
        sqlx::query_as("SELECT current_setting('server_version'), current_setting('server_version_num')")
            .fetch_one(&mut *conn)
            .await
            .map_err(PreflightError::Query)?;
    let server_version_num: u32 = num.parse().unwrap_or(0);
    let target_major = major_of_version_num(server_version_num);
    if let Some(dump_version) = &summary.comments.source_version
        && let Some(dump_major) = major_of_version_text(dump_version)
        && dump_major > target_major
    {
        return Err(PreflightError::NewerDump {
            dump_version: dump_version.clone(),
            dump_major,
            target_version: server_version,
        });
    }
    Ok((server_version, server_version_num))
}

/// The extensions the dump and the scenario need, each available on the target, with the
/// version `CREATE EXTENSION` installs.
async fn extensions(
    target: &Target,
    conn: &mut PgConnection,
    summary: &DumpSummary,
    required_extensions: &[String],
    server_version: &str,
) -> Result<BTreeMap<String, String>, PreflightError> {
    let available: BTreeMap<String, String> = sqlx::query_as::<_, (String, Option<String>)>(
        "SELECT name::text, default_version FROM pg_available_extensions",
    )
    .fetch_all(&mut *conn)
    .await
    .map_err(PreflightError::Query)?
    .into_iter()
    .map(|(name, version)| (name, version.unwrap_or_default()))
    .collect();
    let needed: BTreeSet<String> = summary.extensions.iter().chain(required_extensions).cloned().collect();
    let missing: Vec<String> = needed.iter().filter(|n| !available.contains_key(*n)).cloned().collect();
    if !missing.is_empty() {
        let image = target.info.lacks().map(|l| format!(", whose image carries no {l}")).unwrap_or_default();
        let target_version = server_version.to_owned();
        return Err(PreflightError::MissingExtensions { missing, target_version, image });
    }
    Ok(needed.iter().map(|n| (n.clone(), available[n].clone())).collect())
}

/// Creates the scenario's roles and applies its globals file, then checks that every role the
/// dump names exists (creating the missing ones when the scenario says so); returns the roles
/// created.
async fn roles(
    target: &Target,
    conn: &mut PgConnection,
    summary: &DumpSummary,
    restore: &RestoreSpec,
    redactor: &Redactor,
) -> Result<Vec<String>, PreflightError> {
    let mut roles_created = create_roles(target, conn, &restore.roles).await?;
    if let Some(globals) = restore.globals.as_deref() {
        for role in apply_globals(target, globals, redactor).await? {
            target.note_created(None, Some(&role));
            roles_created.push(role);
        }
    }
    let existing: BTreeSet<String> = sqlx::query_scalar::<_, String>("SELECT rolname::text FROM pg_roles")
        .fetch_all(&mut *conn)
        .await
        .map_err(PreflightError::Query)?
        .into_iter()
        .collect();
    let missing: Vec<String> = summary.roles_needed().into_iter().filter(|r| !existing.contains(r)).collect();
    if !missing.is_empty() && restore.create_missing_roles {
        let specs: Vec<RoleSpec> =
            missing.into_iter().map(|name| RoleSpec { name, login: true, member_of: Vec::new() }).collect();
        roles_created.extend(create_roles(target, conn, &specs).await?);
    } else if !missing.is_empty() {
        return Err(PreflightError::MissingRoles { missing });
    }
    Ok(roles_created)
}

/// Verifies a `pg_dumpall --globals-only` file like any backup, then applies it; returns the
/// roles it creates.
async fn apply_globals(target: &Target, path: &Path, redactor: &Redactor) -> Result<Vec<String>, PreflightError> {
    let shown = path.display().to_string();
    let fail = |source: sqlx::Error| PreflightError::Globals { path: shown.clone(), source };
    let meta =
        std::fs::metadata(path).map_err(|source| PreflightError::GlobalsUnreadable { path: shown.clone(), source })?;
    let backup = Backup {
        location: shown.clone(),
        path: path.to_owned(),
        size: meta.len(),
        modified: None,
        previous: None,
        wal_archive: None,
        keys: Vec::new(),
        remote: None,
    };
    tokio::task::spawn_blocking(move || verify::verify(&backup, None, &|_| {}, &AtomicBool::new(false)))
        .await
        .map_err(|source| PreflightError::GlobalsTask { path: shown.clone(), source })?
        .map_err(|source| PreflightError::GlobalsInvalid { path: shown.clone(), source: Box::new(source) })?;
    let before = role_names(target).await.map_err(fail)?;
    let protect = if target.database_suffix.is_some() { before.clone() } else { Vec::new() };
    plain::restore_globals(target, path, redactor, &protect)
        .await
        .map_err(|source| PreflightError::GlobalsRestore { path: shown.clone(), source: Box::new(source) })?;
    let after = role_names(target).await.map_err(fail)?;
    // Only the roles this drill made are its to drop later, whatever the file says.
    Ok(after.into_iter().filter(|r| !before.contains(r)).collect())
}

async fn role_names(target: &Target) -> Result<Vec<String>, sqlx::Error> {
    let mut conn = PgConnection::connect_with(&target.connect_options(&target.maintenance_db)).await?;
    let names: Vec<String> = sqlx::query_scalar("SELECT rolname::text FROM pg_roles").fetch_all(&mut conn).await?;
    conn.close().await.ok();
    Ok(names)
}

/// Creates the scenario's roles that do not exist yet; returns the names created.
async fn create_roles(
    target: &Target,
    conn: &mut PgConnection,
    roles: &[RoleSpec],
) -> Result<Vec<String>, PreflightError> {
    let mut created = Vec::new();
    for role in roles {
        let exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)")
            .bind(&role.name)
            .fetch_one(&mut *conn)
            .await
            .map_err(|source| PreflightError::CreateRole { role: role.name.clone(), source })?;
        if exists {
            continue;
        }
        let mut sql =
            format!("CREATE ROLE {} {}", quote_ident(&role.name), if role.login { "LOGIN" } else { "NOLOGIN" });
        if !role.member_of.is_empty() {
            let groups: Vec<String> = role.member_of.iter().map(|g| quote_ident(g)).collect();
            sql.push_str(&format!(" IN ROLE {}", groups.join(", ")));
        }
        conn.execute(sqlx::raw_sql(&sql))
            .await
            .map_err(|source| PreflightError::CreateRole { role: role.name.clone(), source })?;
        created.push(role.name.clone());
        target.note_created(None, Some(&role.name));
    }
    Ok(created)
}

/// Creates the database the restore goes into (when the dump does not create its own).
pub(crate) async fn create_database(target: &Target, database: &str) -> Result<(), PreflightError> {
    let query_err = PreflightError::Query;
    let mut conn =
        PgConnection::connect_with(&target.connect_options(&target.maintenance_db)).await.map_err(query_err)?;
    let exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
        .bind(database)
        .fetch_one(&mut conn)
        .await
        .map_err(query_err)?;
    if exists && target.database_suffix.is_some() {
        // A shared server: never restore into (and later drop) a database the drill did not make.
        return Err(PreflightError::DatabaseExists { database: database.to_owned() });
    }
    if !exists {
        let sql = format!("CREATE DATABASE {}", quote_ident(database));
        conn.execute(sqlx::raw_sql(&sql)).await.map_err(query_err)?;
        target.note_created(Some(database), None);
    }
    conn.close().await.ok();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::error_chain;

    #[test]
    fn a_dump_newer_than_the_target_names_the_major_to_restore_onto() {
        let error =
            PreflightError::NewerDump { dump_version: "17.2".into(), dump_major: 17, target_version: "16.6".into() };
        assert_eq!(
            error.to_string(),
            "the dump comes from PostgreSQL 17.2, newer than the target's PostgreSQL 16.6 (hint: restore onto a target of major version 17 or newer)"
        );
    }

    /// What the target lacks is listed, in the singular or the plural as it is.
    #[test]
    fn what_the_target_lacks_is_counted_in_its_message() {
        let databases =
            |names: &[&str]| PreflightError::CreatesDatabases { names: names.iter().map(|n| n.to_string()).collect() };
        assert_eq!(
            databases(&["orders"]).to_string(),
            "the dump creates database orders itself (pg_dump -C or pg_dumpall): restore it onto a container or local target, not onto a shared server"
        );
        assert!(
            databases(&["orders", "billing"])
                .to_string()
                .starts_with("the dump creates databases orders, billing itself")
        );

        let extensions = |missing: &[&str], image: &str| PreflightError::MissingExtensions {
            missing: missing.iter().map(|n| n.to_string()).collect(),
            target_version: "17.2".into(),
            image: image.into(),
        };
        assert_eq!(
            extensions(&["vector"], ", whose image carries no pgvector").to_string(),
            "extension not available on the target (PostgreSQL 17.2, whose image carries no pgvector): vector (hint: install their packages where the target's PostgreSQL runs: into its image, or beside the server or the local binaries)"
        );
        assert!(
            extensions(&["age", "vector"], "")
                .to_string()
                .starts_with("extensions not available on the target (PostgreSQL 17.2): age, vector (hint: ")
        );

        let roles = |missing: &[&str]| PreflightError::MissingRoles {
            missing: missing.iter().map(|n| n.to_string()).collect(),
        };
        assert_eq!(
            roles(&["app"]).to_string(),
            "role named by the dump does not exist on the target: app (hint: declare them under [[restore.roles]] in the scenario, or restore a globals file first)"
        );
        assert!(
            roles(&["app", "auditor"])
                .to_string()
                .starts_with("roles named by the dump do not exist on the target: app, auditor (hint: ")
        );

        let settings = |names: &[&str]| PreflightError::UnknownSettings {
            names: names.iter().map(|n| n.to_string()).collect(),
            target_version: "15.8".into(),
            dumped_by: "pg_dump 17.2".into(),
        };
        assert_eq!(
            settings(&["transaction_timeout"]).to_string(),
            "the dump sets a setting that PostgreSQL 15.8 does not know (the dump was written by pg_dump 17.2): transaction_timeout"
        );
        assert!(
            settings(&["a", "b"]).to_string().starts_with("the dump sets settings that PostgreSQL 15.8 does not know")
        );
    }

    fn target() -> Target {
        Target {
            host: "/nonexistent/socket".into(),
            port: 5432,
            user: "postgres".into(),
            password: None,
            maintenance_db: "postgres".into(),
            ssl_mode: sqlx::postgres::PgSslMode::Disable,
            ssl_root_cert: None,
            tcp_relay: None,
            info: Default::default(),
            tools: crate::provision::tools::Tools::Unavailable { reason: "none".into() },
            database_suffix: None,
            created: Default::default(),
            programs: crate::provision::Programs::bridged("d1"),
            offline: None,
            disk: None,
            pins: Default::default(),
            logins: Default::default(),
        }
    }

    /// A globals file is untrusted input like the backup: it is read whole and verified before
    /// anything of it reaches the target.
    #[tokio::test]
    async fn a_globals_file_that_does_not_verify_never_reaches_the_target() {
        let dir = tempfile::tempdir().unwrap();
        let (target, redactor) = (target(), Redactor::new());
        let missing = dir.path().join("globals.sql");
        let error = apply_globals(&target, &missing, &redactor).await.unwrap_err();
        assert!(matches!(error, PreflightError::GlobalsUnreadable { .. }), "{error:?}");
        assert_eq!(error.to_string(), format!("globals file `{}`: cannot read it", missing.display()));

        std::fs::write(&missing, "").unwrap();
        let empty = apply_globals(&target, &missing, &redactor).await.unwrap_err();
        assert_eq!(error_chain(&empty), format!("globals file `{}`: the backup is empty (0 bytes)", missing.display()));

        let shell = "--\n-- PostgreSQL database cluster dump\n--\n\nCREATE ROLE app;\n\\! id\n";
        std::fs::write(&missing, shell).unwrap();
        let refused = error_chain(&apply_globals(&target, &missing, &redactor).await.unwrap_err());
        assert!(refused.contains(": dump line 6: the meta-command `\\!` is refused"), "{refused}");
    }
}
