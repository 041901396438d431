//! The drill's pod: the PostgreSQL server's container as a native sidecar (an init container
//! that keeps running, so the pod completes when pgdrill's does), pgdrill's container, the two
//! folders they share, and the Pod Security Standard "restricted" on both and on the pod.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMapVolumeSource, Container, EmptyDirVolumeSource, EnvVar, EnvVarSource, HostAlias, KeyToPath,
    PodSecurityContext, PodSpec, PodTemplateSpec, ResourceRequirements, SeccompProfile, SecretKeySelector,
    SecretVolumeSource, SecurityContext, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use super::contract as c;
use super::folder::Folder;
use super::{Plan, metadata};

/// The pod every index of the Job runs: it drills the scenario its index names.
pub(crate) fn template(plan: &Plan, folder: &Folder) -> PodTemplateSpec {
    let mut meta = metadata(plan, None);
    meta.annotations = Some(super::annotations(folder));
    PodTemplateSpec {
        metadata: Some(meta),
        spec: Some(PodSpec {
            service_account_name: Some(plan.name.clone()),
            automount_service_account_token: Some(false),
            enable_service_links: Some(false),
            share_process_namespace: Some(false),
            host_network: Some(false),
            host_pid: Some(false),
            host_ipc: Some(false),
            restart_policy: Some("Never".into()),
            termination_grace_period_seconds: Some(c::GRACE_SECONDS),
            security_context: Some(PodSecurityContext {
                run_as_non_root: Some(true),
                run_as_user: plan.user.uid(),
                run_as_group: plan.user.gid(),
                fs_group: plan.user.gid(),
                seccomp_profile: Some(runtime_default()),
                ..PodSecurityContext::default()
            }),
            host_aliases: host_aliases(plan),
            active_deadline_seconds: Some(seconds(pod_deadline(plan, folder))),
            image_pull_secrets: plan.cluster.image_pull_secrets(),
            node_selector: (!plan.cluster.node_selector.is_empty()).then(|| plan.cluster.node_selector.clone()),
            tolerations: (!plan.cluster.tolerations.is_empty()).then(|| plan.cluster.tolerations.clone()),
            init_containers: Some(vec![server(plan)]),
            containers: vec![drill(plan, folder)],
            volumes: Some(volumes(plan, folder)),
            ..PodSpec::default()
        }),
    }
}

/// How long a pod may run before the kubelet stops it: `--deadline`, else its longest scenario's
/// phase deadlines and its teardown. A drill that hangs past its own deadlines (a bug, a stuck
/// mount) must not hold the CronJob's next night (`concurrencyPolicy: Forbid`).
pub(crate) fn pod_deadline(plan: &Plan, folder: &Folder) -> std::time::Duration {
    plan.deadline.unwrap_or(folder.deadline)
}

/// Whole seconds, as Kubernetes counts them.
pub(crate) fn seconds(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_secs()).unwrap_or(i64::MAX).max(1)
}

fn runtime_default() -> SeccompProfile {
    SeccompProfile { type_: "RuntimeDefault".into(), ..SeccompProfile::default() }
}

/// What "restricted" asks of each container, as the image's unprivileged user.
fn restricted(plan: &Plan) -> SecurityContext {
    SecurityContext {
        run_as_non_root: Some(true),
        run_as_user: plan.user.uid(),
        run_as_group: plan.user.gid(),
        allow_privilege_escalation: Some(false),
        privileged: Some(false),
        read_only_root_filesystem: Some(true),
        capabilities: Some(Capabilities { drop: Some(vec!["ALL".into()]), ..Capabilities::default() }),
        seccomp_profile: Some(runtime_default()),
        ..SecurityContext::default()
    }
}

/// Limits, and requests equal to them (the pod's memory and CPU are its own); the disk a
/// container's folders may fill, requested so that the pod lands where there is room.
fn resources(memory: &str, cpu: &str, disk: &str) -> ResourceRequirements {
    let quantity = |q: &str| Quantity(q.to_owned());
    let limits = BTreeMap::from([("memory".to_owned(), quantity(memory)), ("cpu".to_owned(), quantity(cpu))]);
    let mut requests = limits.clone();
    requests.insert("ephemeral-storage".into(), quantity(disk));
    ResourceRequirements { limits: Some(limits), requests: Some(requests), ..ResourceRequirements::default() }
}

fn mount(name: &str, path: &str, read_only: bool) -> VolumeMount {
    VolumeMount {
        name: name.into(),
        mount_path: path.into(),
        read_only: read_only.then_some(true),
        ..VolumeMount::default()
    }
}

/// The PostgreSQL server, beside pgdrill: no programs, no environment, no credentials.
fn server(plan: &Plan) -> Container {
    let mut mounts = vec![mount("run", c::RUN_DIR, false), mount("data", c::DATA_DIR, false)];
    mounts.extend(c::HIDDEN_PROGRAMS.iter().map(|path| mount("no-programs", path, true)));
    Container {
        name: c::SERVER_CONTAINER.into(),
        image: Some(plan.image.clone()),
        image_pull_policy: plan.cluster.pull_policy.clone(),
        command: Some(vec![c::PGDRILL.into(), c::POD_SERVER.into()]),
        restart_policy: Some("Always".into()),
        resources: Some(resources(&plan.memory, &plan.cpu, &plan.disk)),
        security_context: Some(restricted(plan)),
        volume_mounts: Some(mounts),
        ..Container::default()
    }
}

/// pgdrill: drills the scenario its index names on the server beside it, holding the
/// credentials.
fn drill(plan: &Plan, folder: &Folder) -> Container {
    let mut args = vec!["run".to_owned()];
    args.extend(folder.scenarios.iter().map(|(_, path)| format!("{}/{}", c::SCENARIOS_DIR, path.display())));
    args.extend(["--target", c::POD_TARGET, "--reports", &plan.reports].map(str::to_owned));
    let count = folder.scenarios.len().to_string();
    args.extend(["--shard-index-env", c::INDEX_ENV, "--shard-count", &count].map(str::to_owned));
    let value = |name: &str, value: &str| EnvVar { name: name.into(), value: Some(value.into()), value_from: None };
    let mut env = vec![value("TMPDIR", c::WORK_DIR), value("HOME", c::WORK_DIR)];
    let mut mounts = vec![
        mount("run", c::RUN_DIR, false),
        mount("data", c::DATA_DIR, false),
        mount("scenarios", c::SCENARIOS_DIR, true),
        mount("work", c::WORK_DIR, false),
    ];
    if plan.signing_key.is_some() {
        env.push(value(super::SIGNING_KEY_FILE_ENV, &format!("{}/{}", c::SIGNING_DIR, c::SIGNING_FILE)));
        mounts.push(mount("signing-key", c::SIGNING_DIR, true));
    }
    env.extend(plan.env.iter().map(|e| value(&e.var, &e.value)));
    env.extend(plan.secret_env.iter().map(|s| EnvVar {
        name: s.var.clone(),
        value: None,
        value_from: Some(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: s.from.secret.clone(),
                key: s.from.key.clone(),
                optional: Some(false),
            }),
            ..EnvVarSource::default()
        }),
    }));
    Container {
        name: c::DRILL_CONTAINER.into(),
        image: Some(plan.image.clone()),
        image_pull_policy: plan.cluster.pull_policy.clone(),
        command: Some(vec![c::PGDRILL.into()]),
        args: Some(args),
        env: Some(env),
        resources: Some(resources(&plan.drill_memory, &plan.drill_cpu, &plan.work_disk)),
        security_context: Some(restricted(plan)),
        volume_mounts: Some(mounts),
        ..Container::default()
    }
}

fn empty_dir(medium: Option<&str>, size: &str) -> EmptyDirVolumeSource {
    EmptyDirVolumeSource {
        medium: medium.map(str::to_owned),
        size_limit: Some(Quantity(size.to_owned())),
        ..EmptyDirVolumeSource::default()
    }
}

fn volumes(plan: &Plan, folder: &Folder) -> Vec<Volume> {
    let volume = |name: &str| Volume { name: name.into(), ..Volume::default() };
    let items = folder
        .keyed()
        .map(|(key, path, _)| KeyToPath { key, path: path.display().to_string(), ..KeyToPath::default() })
        .collect();
    let mut volumes = vec![
        Volume { empty_dir: Some(empty_dir(Some("Memory"), c::RUN_SIZE)), ..volume("run") },
        Volume { empty_dir: Some(empty_dir(None, &plan.disk)), ..volume("data") },
        Volume { empty_dir: Some(empty_dir(None, c::NO_PROGRAMS_SIZE)), ..volume("no-programs") },
        Volume { empty_dir: Some(empty_dir(None, &plan.work_disk)), ..volume("work") },
        Volume {
            config_map: Some(ConfigMapVolumeSource {
                name: super::config_map_name(plan),
                items: Some(items),
                default_mode: Some(0o444),
                ..ConfigMapVolumeSource::default()
            }),
            ..volume("scenarios")
        },
    ];
    if let Some(key) = &plan.signing_key {
        volumes.push(Volume {
            secret: Some(SecretVolumeSource {
                secret_name: Some(key.secret.clone()),
                // Readable by the image's group (fsGroup), as the volume's files are root's.
                items: Some(vec![KeyToPath {
                    key: key.key.clone(),
                    path: c::SIGNING_FILE.into(),
                    mode: Some(0o440),
                    ..KeyToPath::default()
                }]),
                default_mode: Some(0o440),
                ..SecretVolumeSource::default()
            }),
            ..volume("signing-key")
        });
    }
    volumes
}

/// `/etc/hosts` entries, an address's names together, so that no DNS is needed.
fn host_aliases(plan: &Plan) -> Option<Vec<HostAlias>> {
    let mut by_ip: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for alias in &plan.host_aliases {
        by_ip.entry(alias.ip.to_string()).or_default().push(alias.hostname.clone());
    }
    (!by_ip.is_empty())
        .then(|| by_ip.into_iter().map(|(ip, hostnames)| HostAlias { ip, hostnames: Some(hostnames) }).collect())
}
