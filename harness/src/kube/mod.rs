//! `pgdrill kube`: the Kubernetes objects that drill a fleet of scenarios, one pod per scenario,
//! each pod a PostgreSQL server beside pgdrill (the `pod` target): a ConfigMap carrying the
//! scenarios and the files they read (`folder`), a ServiceAccount and a NetworkPolicy that
//! denies all but an allow-list (`objects`), the pod (`pod`), and an Indexed Job or a CronJob
//! making one, written as YAML (`yaml`); or, with `--follow`, a follower of one scenario's WAL
//! archive in a StatefulSet of that pod (`follower`). What the objects rely on of the image and
//! the pod target is in `contract`; the values of the command line are checked in `values`.

mod cluster;
mod contract;
mod folder;
mod follower;
mod objects;
mod passwords;
mod pod;
mod values;
mod yaml;

use std::collections::BTreeMap;
use std::path::PathBuf;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

pub(crate) use cluster::{Cluster, deadline, key_value, pull_policy, time_zone, toleration};
pub(crate) use contract::{IMAGE_GID, IMAGE_MAJOR, IMAGE_REPOSITORY, IMAGE_UID};
pub(crate) use folder::CONFIG_MAP_LIMIT;
pub(crate) use follower::Follow;
pub(crate) use values::{ClaimMount, Egress, HostAlias, PlainEnv, SecretEnv, SecretKey};
pub(crate) use values::{
    bytes, claim_mount, cpu, egress, host_alias, image, label, plain_env, schedule, secret_env, signing_secret,
};

use crate::scenario::Scenario;
use crate::units::human_size;

/// The variable `pgdrill run` reads its signing key's path from.
const SIGNING_KEY_FILE_ENV: &str = crate::evidence::sign::KEY_FILE_ENV;

/// What the objects are made of: the command line, checked.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    /// Names the Job (or CronJob), its ServiceAccount and NetworkPolicy, and labels its pods.
    pub name: String,
    pub namespace: Option<String>,
    pub image: String,
    /// A CronJob's schedule; without one, a Job that runs once.
    pub schedule: Option<String>,
    pub parallelism: u32,
    /// How many times an index whose drill could not run is retried.
    pub retries: u32,
    /// The server's container.
    pub memory: String,
    pub cpu: String,
    /// pgdrill's container.
    pub drill_memory: String,
    pub drill_cpu: String,
    /// The target's data, and pgdrill's scratch folder (downloads).
    pub disk: String,
    pub work_disk: String,
    /// Where pgdrill writes the reports (`run --reports`).
    pub reports: String,
    pub signing_key: Option<SecretKey>,
    pub secret_env: Vec<SecretEnv>,
    /// Variables whose values are written in the objects (none a credential).
    pub env: Vec<PlainEnv>,
    pub egress: Vec<Egress>,
    pub host_aliases: Vec<HostAlias>,
    /// Whom the containers run as.
    pub user: RunAs,
    /// What the cluster asks beside: pulls, identity, nodes, time zone, a uid it assigns.
    pub cluster: Cluster,
    /// `--deadline`: how long a pod may run; none: from its scenarios' phase deadlines.
    pub deadline: Option<std::time::Duration>,
    /// `--follow`: a follower's StatefulSet instead of the drills' Job.
    pub follow: Option<Follow>,
}

/// Whom the pods' containers run as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RunAs {
    /// The image's `postgres` (or `--uid`/`--gid`): written in every security context.
    Image { uid: i64, gid: i64 },
    /// The uid and groups the platform assigns (OpenShift's `restricted-v2`): none is written,
    /// only that it is not root. The image's files are its root group's (gid 0) for that.
    Platform,
}

impl RunAs {
    pub(crate) fn uid(self) -> Option<i64> {
        match self {
            RunAs::Image { uid, .. } => Some(uid),
            RunAs::Platform => None,
        }
    }

    pub(crate) fn gid(self) -> Option<i64> {
        match self {
            RunAs::Image { gid, .. } => Some(gid),
            RunAs::Platform => None,
        }
    }
}

/// Why the objects cannot be written.
#[derive(Debug, thiserror::Error)]
pub(crate) enum KubeError {
    /// The scenario's backup is a file or folder of this machine.
    #[error(
        "scenario `{scenario}` drills a backup on this machine (`{key}` = `{}`): a drill in a cluster reads its backup from S3 or over HTTPS (`[source] s3` or `url`)",
        path.display()
    )]
    LocalBackup { scenario: String, key: String, path: PathBuf },
    /// The scenario reads a secret from a file, which would have to travel in the ConfigMap.
    #[error(
        "scenario `{scenario}` reads a secret from a file (`{key}` = `{}`): in a cluster, read it from the environment instead (the key's `_env` form) and give the variable from a Secret with --secret-env VAR=SECRET/KEY",
        path.display()
    )]
    SecretFile { scenario: String, key: String, path: PathBuf },
    /// The scenario runs a program beside the drill.
    #[error(
        "scenario `{scenario}` runs `{key}` beside the drill, which a drill in a cluster cannot start (pgdrill's image holds no application): drill it with `pgdrill run` where the application's code is"
    )]
    Program { scenario: String, key: &'static str },
    /// A file a scenario names cannot be read.
    #[error("cannot read `{}`{}", path.display(), named_by(scenario, key))]
    Read {
        path: PathBuf,
        scenario: String,
        key: String,
        #[source]
        source: std::io::Error,
    },
    /// The scenarios and their files outgrow a ConfigMap.
    #[error(
        "the scenarios and the files they read take {} as a ConfigMap, over a ConfigMap's 1 MiB (the largest: {}): select fewer scenarios (--tag), or write one set of objects per group",
        human_size(*size as u64),
        largest.iter().map(|(p, n)| format!("{} ({})", p.display(), human_size(*n as u64))).collect::<Vec<_>>().join(", ")
    )]
    TooBig { size: usize, largest: Vec<(PathBuf, usize)> },
    /// The copy of the folder that proves it whole could not be made.
    #[error("cannot copy the scenarios' folder to load them from it")]
    Copy {
        #[source]
        source: std::io::Error,
    },
    /// A scenario does not load from the folder the ConfigMap carries.
    #[error("scenario `{scenario}` would not load in the pod from the files carried with it: {why}")]
    NotCarried { scenario: String, why: String },
    /// A scenario names a file by a path the pod would not have.
    #[error(
        "scenario `{scenario}` names `{}` (`{key}`) by an absolute path, which the pod would not have: write it relative to the scenario file, and it travels with it",
        path.display()
    )]
    Absolute { scenario: String, key: String, path: PathBuf },
    /// A globals file holds a password written so that it cannot be left out of the ConfigMap.
    #[error(
        "`{}` line {line} (scenario `{scenario}`'s `[restore] globals`) sets a role's password in a form pgdrill cannot leave out of the ConfigMap, which anyone who may list ConfigMaps reads: write it as PASSWORD '...' (pgdrill leaves it out: the drill gives its roles passwords of its own), or remove it",
        path.display()
    )]
    Password { scenario: String, path: PathBuf, line: u64 },
    /// A backup of this machine outside the claim the follower's pod mounts.
    #[error(
        "scenario `{scenario}` reads `{key}` = `{}` from this machine, outside --archive-claim's `{}`: the pod reads a backup from S3, over HTTPS, or from the claim (name it as the pod sees it)",
        path.display(),
        mount.display()
    )]
    NotMounted { scenario: String, key: String, path: PathBuf, mount: PathBuf },
    /// `--follow` with several scenarios.
    #[error(
        "--follow writes the follower of one scenario, and {} were selected ({}): select one (--tag), and write one follower each with its own --name",
        names.len(),
        names.join(", ")
    )]
    FollowOne { names: Vec<String> },
    /// A scenario a follower in a cluster cannot follow.
    #[error("scenario `{scenario}` cannot be followed in a cluster: {why}")]
    NotFollowed { scenario: String, why: String },
    /// An environment variable given twice, or one pgdrill's container sets itself.
    #[error("{flag} {var}: {why}")]
    Env { flag: &'static str, var: String, why: &'static str },
}

fn named_by(scenario: &str, key: &str) -> String {
    match (scenario, key) {
        ("", _) => String::new(),
        (scenario, key) => format!(" (named by `{key}` of scenario `{scenario}`)"),
    }
}

/// What was written.
#[derive(Debug)]
pub(crate) struct Rendered {
    /// The objects, as multi-document YAML.
    pub yaml: String,
    /// The scenarios, by the Job's index.
    pub scenarios: Vec<String>,
    /// The files the ConfigMap carries, and what they take of its 1 MiB.
    pub files: usize,
    pub size: usize,
    /// The globals files whose role passwords were left out, with how many.
    pub passwords: Vec<(PathBuf, usize)>,
}

/// The objects that drill `scenarios` (loaded, selected) as `plan` says.
pub(crate) fn render(plan: &Plan, scenarios: &[Scenario]) -> Result<Rendered, KubeError> {
    check_env(plan)?;
    if let Some(follow) = &plan.follow {
        follower::check(follow, scenarios)?;
    }
    let mounted = plan.follow.as_ref().and_then(|f| f.archive.as_ref()).map(|claim| claim.path.as_path());
    let folder = folder::gather(scenarios, mounted)?;
    let mut text = String::new();
    yaml::push_document(&mut text, &objects::config_map(plan, &folder));
    yaml::push_document(&mut text, &objects::service_account(plan));
    yaml::push_document(&mut text, &objects::network_policy(plan));
    match (&plan.follow, &plan.schedule) {
        (Some(follow), _) => yaml::push_document(&mut text, &follower::stateful_set(plan, follow, &folder)),
        (None, Some(schedule)) => yaml::push_document(&mut text, &objects::cron_job(plan, &folder, schedule)),
        (None, None) => yaml::push_document(&mut text, &objects::job(plan, &folder)),
    }
    Ok(Rendered {
        yaml: text,
        scenarios: folder.scenarios.iter().map(|(name, _)| name.clone()).collect(),
        files: folder.files.len(),
        size: folder.size(),
        passwords: folder.passwords.clone(),
    })
}

/// Each variable once, and none pgdrill's container sets itself.
fn check_env(plan: &Plan) -> Result<(), KubeError> {
    let mut seen = std::collections::BTreeSet::new();
    let given = plan.secret_env.iter().map(|s| ("--secret-env", &s.var));
    for (flag, var) in given.chain(plan.env.iter().map(|e| ("--env", &e.var))) {
        let why = match var.as_str() {
            "TMPDIR" | "HOME" => Some("pgdrill's container sets it (its scratch folder)"),
            contract::INDEX_ENV => Some("the Job's controller sets it (the pod's index)"),
            SIGNING_KEY_FILE_ENV if plan.signing_key.is_some() => Some("--signing-key-secret sets it"),
            var if !seen.insert(var.to_owned()) => Some("given twice"),
            _ => None,
        };
        if let Some(why) = why {
            return Err(KubeError::Env { flag, var: var.clone(), why });
        }
    }
    Ok(())
}

/// An object's name (none for a template's), its namespace and the labels every object carries.
fn metadata(plan: &Plan, name: Option<String>) -> ObjectMeta {
    let mut labels = objects::selector(plan);
    labels.insert(contract::LABEL_MANAGED_BY.into(), "pgdrill".into());
    let component = if plan.follow.is_some() { "follower" } else { "drill" };
    labels.insert(contract::LABEL_COMPONENT.into(), component.into());
    ObjectMeta {
        namespace: name.as_ref().and(plan.namespace.clone()),
        name,
        labels: Some(labels),
        ..ObjectMeta::default()
    }
}

/// The scenarios' names, by the Job's index (the first is index 0).
fn annotations(folder: &folder::Folder) -> BTreeMap<String, String> {
    let names: Vec<&str> = folder.scenarios.iter().map(|(name, _)| name.as_str()).collect();
    BTreeMap::from([(contract::SCENARIOS_ANNOTATION.to_owned(), names.join(","))])
}

fn config_map_name(plan: &Plan) -> String {
    format!("{}-scenarios", plan.name)
}

#[cfg(test)]
mod tests;
