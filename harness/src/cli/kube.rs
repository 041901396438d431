//! `pgdrill kube SCENARIOS...`: the Kubernetes objects that drill a selection of scenarios in a
//! cluster, one pod each (or, with `--follow`, follow one scenario's archive), written as YAML
//! for `kubectl apply -f`.

use std::path::PathBuf;
use std::process::ExitCode;

use super::{Exit, render};
use crate::kube::{self, Egress, HostAlias, PlainEnv, Plan, SecretEnv, SecretKey};
use crate::scenario::{Scenario, discover, selected};

/// What `kube` takes.
#[derive(Debug, clap::Args)]
pub(crate) struct KubeArgs {
    /// Scenario files, or folders of them.
    #[arg(required = true)]
    scenarios: Vec<PathBuf>,
    /// Names the Job (or CronJob), its ServiceAccount, NetworkPolicy and ConfigMap
    /// (NAME-scenarios), and labels its pods.
    #[arg(long, default_value = "pgdrill", value_parser = |s: &str| kube::label(s, 52))]
    name: String,
    /// The namespace of every object [default: kubectl's].
    #[arg(long, value_parser = |s: &str| kube::label(s, 63))]
    namespace: Option<String>,
    /// pgdrill's image (pgdrill and PostgreSQL of one major, with pgvector and AGE)
    /// [default: pgdrill/pgdrill:<this version>-pg17].
    #[arg(long, value_name = "IMAGE", value_parser = kube::image)]
    image: Option<String>,
    /// Drill on this cron schedule (a CronJob), instead of once (a Job).
    #[arg(long, value_name = "CRON", value_parser = kube::schedule)]
    schedule: Option<String>,
    /// How many scenarios are drilled at once.
    #[arg(long, value_name = "P", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    parallelism: u32,
    /// How many times a drill that could not run (exit code 3, or its pod killed) is run again.
    #[arg(long, value_name = "R", default_value_t = 2)]
    retries: u32,
    /// The PostgreSQL server's memory (its limit and request).
    #[arg(long, value_name = "SIZE", default_value = "4Gi", value_parser = kube::bytes)]
    memory: String,
    /// The PostgreSQL server's CPUs (its limit and request).
    #[arg(long, value_name = "CPUS", default_value = "2", value_parser = kube::cpu)]
    cpu: String,
    /// pgdrill's own memory (it reads, decompresses and restores the backup).
    #[arg(long, value_name = "SIZE", default_value = "1Gi", value_parser = kube::bytes)]
    drill_memory: String,
    /// pgdrill's own CPUs.
    #[arg(long, value_name = "CPUS", default_value = "1", value_parser = kube::cpu)]
    drill_cpu: String,
    /// The target's data folder on the node (an emptyDir's size limit).
    #[arg(long, value_name = "SIZE", default_value = "20Gi", value_parser = kube::bytes)]
    disk: String,
    /// pgdrill's scratch folder on the node, which holds the downloaded backup.
    #[arg(long, value_name = "SIZE", default_value = "20Gi", value_parser = kube::bytes)]
    work_disk: String,
    /// Where each pod writes its reports (`run --reports`): an object store prefix
    /// (s3://bucket/prefix/); a path is inside the pod, gone with it.
    #[arg(long, value_name = "DEST")]
    reports: Option<String>,
    /// Sign the evidence with the OpenSSH private key in this Secret (SECRET, its key `key`, or
    /// SECRET/KEY), mounted read-only.
    #[arg(long, value_name = "SECRET[/KEY]", value_parser = kube::signing_secret)]
    signing_key_secret: Option<SecretKey>,
    /// Give pgdrill's container the variable VAR from key KEY of Secret SECRET (backup
    /// credentials, the webhook's URL). Repeat for each.
    #[arg(long = "secret-env", value_name = "VAR=SECRET/KEY", value_parser = kube::secret_env)]
    secret_env: Vec<SecretEnv>,
    /// Give pgdrill's container the variable VAR with VALUE, written in the objects (the
    /// store's AWS_REGION or AWS_ENDPOINT_URL; never a credential: those go by --secret-env).
    /// Repeat for each.
    #[arg(long = "env", value_name = "VAR=VALUE", value_parser = kube::plain_env)]
    env: Vec<PlainEnv>,
    /// Let the pods reach this network on this port (the object store, the backups' server);
    /// none: no egress at all. Repeat for each; `/udp` after the port for UDP.
    #[arg(long = "allow-egress", value_name = "CIDR:PORT", value_parser = kube::egress)]
    allow_egress: Vec<Egress>,
    /// Resolve HOSTNAME to IP in the pods' /etc/hosts, so that no DNS egress is needed. Repeat
    /// for each.
    #[arg(long = "host-alias", value_name = "IP=HOSTNAME", value_parser = kube::host_alias)]
    host_alias: Vec<HostAlias>,
    /// Only scenarios with one of these tags (repeat, or separate with commas).
    #[arg(long = "tag", value_name = "TAG", value_delimiter = ',')]
    tags: Vec<String>,
    /// The image user's uid and gid (its `postgres`).
    #[arg(long, value_name = "UID", default_value_t = kube::IMAGE_UID, value_parser = clap::value_parser!(i64).range(1..))]
    uid: i64,
    /// The image user's gid (its `postgres` group).
    #[arg(long, value_name = "GID", default_value_t = kube::IMAGE_GID, value_parser = clap::value_parser!(i64).range(1..))]
    gid: i64,
    /// Leave the uid and groups to the platform, which assigns them (OpenShift's
    /// `restricted-v2`): no runAsUser, runAsGroup or fsGroup is written.
    #[arg(long, conflicts_with_all = ["uid", "gid"])]
    platform_uid: bool,
    /// Pull the image with the credentials in this Secret (type kubernetes.io/dockerconfigjson,
    /// made by `kubectl create secret docker-registry`). Repeat for each.
    #[arg(long = "image-pull-secret", value_name = "SECRET", value_parser = |s: &str| kube::label(s, 253))]
    image_pull_secrets: Vec<String>,
    /// When the kubelet pulls the image: Always, IfNotPresent or Never [default: Kubernetes'
    /// own, IfNotPresent for a tag other than `latest`].
    #[arg(long, value_name = "POLICY", value_parser = kube::pull_policy)]
    image_pull_policy: Option<String>,
    /// An annotation of the pods' ServiceAccount, to map it to a cloud identity that may read
    /// the backups: eks.amazonaws.com/role-arn=ARN (IRSA), iam.gke.io/gcp-service-account=EMAIL
    /// (Workload Identity). Repeat for each.
    #[arg(long = "service-account-annotation", value_name = "KEY=VALUE", value_parser = kube::key_value)]
    service_account_annotations: Vec<(String, String)>,
    /// The time zone --schedule is read in (an IANA name: Europe/Paris) [default: the
    /// controller's, UTC on most clusters].
    #[arg(long, value_name = "ZONE", value_parser = kube::time_zone, requires = "schedule")]
    time_zone: Option<String>,
    /// Run the pods only on nodes with this label. Repeat for each.
    #[arg(long = "node-selector", value_name = "KEY=VALUE", value_parser = kube::key_value)]
    node_selector: Vec<(String, String)>,
    /// Let the pods run on nodes with this taint (KEY[=VALUE]:EFFECT, e.g.
    /// dedicated=drills:NoSchedule). Repeat for each.
    #[arg(long = "toleration", value_name = "TAINT", value_parser = kube::toleration)]
    tolerations: Vec<k8s_openapi::api::core::v1::Toleration>,
    /// How long a pod may run before Kubernetes stops it (`activeDeadlineSeconds`), e.g. 8h
    /// [default: its longest scenario's phase deadlines added up, and 15 minutes].
    #[arg(long, value_name = "DURATION", value_parser = kube::deadline)]
    deadline: Option<std::time::Duration>,
    /// Write a follower of the scenario (one only) instead of drills: `pgdrill follow` in a
    /// StatefulSet of one pod, its ledger on a claim of its own, ready while its proof lag is
    /// within --max-lag (`pgdrill follow-status`).
    #[arg(long, conflicts_with_all = ["schedule", "parallelism", "retries", "deadline", "reports", "signing_key_secret"])]
    follow: bool,
    /// The follower's state claim (its ledger, follow.prom and reports): its size.
    #[arg(long, value_name = "SIZE", default_value = "1Gi", value_parser = kube::bytes, requires = "follow")]
    state_size: String,
    /// The follower's pod is ready while its proof lag is at most this.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = humantime::parse_duration, requires = "follow")]
    max_lag: std::time::Duration,
    /// The follower's `--gap-after` [default: pgdrill follow's].
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration, requires = "follow")]
    gap_after: Option<std::time::Duration>,
    /// Mount this PersistentVolumeClaim read-only at PATH in the follower's pod: the volume the
    /// source's archive_command writes (and a base backup in a folder), PATH the folder the
    /// scenario names it by.
    #[arg(long, value_name = "CLAIM:PATH", value_parser = kube::claim_mount, requires = "follow")]
    archive_claim: Option<kube::ClaimMount>,
    /// The follower writes markers on the source at this connection string (`pgdrill follow
    /// --marker-dsn`): let its address out with --allow-egress, and give its password with
    /// --secret-env PGPASSWORD=SECRET/KEY (never in the string: the objects are not secret).
    #[arg(long, value_name = "DSN", requires = "follow")]
    marker_dsn: Option<String>,
    /// Write the objects to FILE instead of stdout.
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
}

/// Where reports go when `--reports` is not given: pgdrill's scratch folder in the pod.
const REPORTS_IN_POD: &str = "/tmp/pgdrill-reports";

impl KubeArgs {
    fn plan(&self) -> Plan {
        Plan {
            name: self.name.clone(),
            namespace: self.namespace.clone(),
            image: self.image.clone().unwrap_or_else(|| {
                format!("{}:{}-pg{}", kube::IMAGE_REPOSITORY, env!("CARGO_PKG_VERSION"), kube::IMAGE_MAJOR)
            }),
            schedule: self.schedule.clone(),
            parallelism: self.parallelism,
            retries: self.retries,
            memory: self.memory.clone(),
            cpu: self.cpu.clone(),
            drill_memory: self.drill_memory.clone(),
            drill_cpu: self.drill_cpu.clone(),
            disk: self.disk.clone(),
            work_disk: self.work_disk.clone(),
            reports: self.reports.clone().unwrap_or_else(|| REPORTS_IN_POD.to_owned()),
            signing_key: self.signing_key_secret.clone(),
            secret_env: self.secret_env.clone(),
            env: self.env.clone(),
            egress: self.allow_egress.clone(),
            host_aliases: self.host_alias.clone(),
            user: if self.platform_uid {
                kube::RunAs::Platform
            } else {
                kube::RunAs::Image { uid: self.uid, gid: self.gid }
            },
            cluster: kube::Cluster {
                pull_secrets: self.image_pull_secrets.clone(),
                pull_policy: self.image_pull_policy.clone(),
                account_annotations: self.service_account_annotations.iter().cloned().collect(),
                time_zone: self.time_zone.clone(),
                node_selector: self.node_selector.iter().cloned().collect(),
                tolerations: self.tolerations.clone(),
            },
            deadline: self.deadline,
            follow: self.follow.then(|| kube::Follow {
                state_size: self.state_size.clone(),
                max_lag: self.max_lag,
                gap_after: self.gap_after,
                archive: self.archive_claim.clone(),
                marker_dsn: self.marker_dsn.clone(),
            }),
        }
    }
}

/// Why the follower's `--marker-dsn` cannot go into the objects: it does not read, or holds a
/// password (the objects are no secret: --secret-env PGPASSWORD gives it).
fn marker_dsn_problem(dsn: &str) -> Option<String> {
    match crate::conninfo::keywords(dsn) {
        Err(e) => Some(format!("cannot be read: {e}")),
        Ok(pairs) if pairs.iter().any(|(k, _)| k == "password" || k == "sslpassword") => Some(
            "holds a password, and the objects are no secret: give it with --secret-env PGPASSWORD=SECRET/KEY".into(),
        ),
        Ok(_) => None,
    }
}

/// Writes the objects: 0 when written, 2 when a scenario or the command line cannot make them,
/// 1 when they cannot be written out.
pub(super) fn run(args: &KubeArgs) -> ExitCode {
    let scenarios = match selection(&args.scenarios, &args.tags) {
        Ok(scenarios) => scenarios,
        Err(exit) => return exit.into(),
    };
    if let Some(problem) = args.marker_dsn.as_deref().and_then(marker_dsn_problem) {
        eprintln!("error: --marker-dsn {problem}");
        return Exit::Usage.into();
    }
    let plan = args.plan();
    let rendered = match kube::render(&plan, &scenarios) {
        Ok(rendered) => rendered,
        Err(e) => {
            eprintln!("error: {}", crate::secret::error_text(&e));
            return Exit::Usage.into();
        }
    };
    if plan.follow.is_none() && (args.reports.is_none() || !plan.reports.contains("://")) {
        eprintln!(
            "warning: the reports go to `{}` inside each pod, and are gone with it (give --reports s3://bucket/prefix/)",
            plan.reports
        );
    }
    if plan.egress.is_empty() {
        eprintln!("note: no --allow-egress: the pods reach nothing, not even a backup in S3 or over HTTPS");
    }
    for (file, count) in &rendered.passwords {
        eprintln!(
            "note: {count} role password{} of {} left out of the ConfigMap, which anyone who may list ConfigMaps reads (the drill gives its roles passwords of its own)",
            if *count == 1 { "" } else { "s" },
            file.display()
        );
    }
    let written = match &args.output {
        Some(path) => std::fs::write(path, &rendered.yaml).map_err(|e| (path.display().to_string(), e)),
        None => {
            use std::io::Write;
            std::io::stdout().write_all(rendered.yaml.as_bytes()).map_err(|e| ("stdout".to_owned(), e))
        }
    };
    if let Err((to, e)) = written {
        eprintln!("error: cannot write the objects to {to}: {e}");
        return Exit::Fail.into();
    }
    let what = match &plan.follow {
        Some(follow) => format!(
            "a follower of scenario {} (StatefulSet {}, its state on a claim of {}, ready while its proof lag is at most {})",
            rendered.scenarios.join(", "),
            plan.name,
            follow.state_size,
            humantime::format_duration(follow.max_lag)
        ),
        None => format!(
            "{} scenario{} by index ({})",
            rendered.scenarios.len(),
            if rendered.scenarios.len() == 1 { "" } else { "s" },
            rendered.scenarios.iter().enumerate().map(|(n, s)| format!("{n}: {s}")).collect::<Vec<_>>().join(", ")
        ),
    };
    eprintln!(
        "pgdrill: {what}, {} file{} in ConfigMap {}-scenarios ({} of its {})",
        rendered.files,
        if rendered.files == 1 { "" } else { "s" },
        plan.name,
        crate::units::human_size(rendered.size as u64),
        crate::units::human_size(kube::CONFIG_MAP_LIMIT as u64),
    );
    Exit::Pass.into()
}

/// The scenarios of `paths` that `tags` select, loaded; or how pgdrill ends (said).
fn selection(paths: &[PathBuf], tags: &[String]) -> Result<Vec<Scenario>, Exit> {
    let files = match discover(paths) {
        Ok(files) if !files.is_empty() => files,
        Ok(_) => {
            eprintln!("error: no scenario (*.toml) in the paths given");
            return Err(Exit::Usage);
        }
        Err(e) => {
            eprintln!("error: cannot read scenarios: {e}");
            return Err(Exit::Usage);
        }
    };
    let mut scenarios = Vec::new();
    let mut unusable = false;
    for file in &files {
        match Scenario::load(file) {
            Ok(s) if selected(&s.tags, tags) => scenarios.push(s),
            Ok(_) => {}
            Err(e) => {
                unusable = true;
                eprintln!("{}", render(&e));
            }
        }
    }
    if unusable {
        return Err(Exit::Usage);
    }
    if scenarios.is_empty() {
        eprintln!("error: no scenario matched (tags: {})", tags.join(", "));
        return Err(Exit::Usage);
    }
    Ok(scenarios)
}
