//! A fleet drilled by `pgdrill kube`'s Indexed Job, its controller played under Docker: each
//! index's pods are the pod's shape (`ci/pod/drill`, on the host's network to reach moto on
//! loopback) running the rendered pgdrill container's args and environment, with the rendered
//! ConfigMap's files where the Job mounts them and the Secrets' values where it reads them; an
//! attempt that fails is retried or not as the RENDERED `podFailurePolicy` and
//! `backoffLimitPerIndex` say. The first attempt of the passing scenario's index is killed
//! mid-drill (SIGKILL: 137, counted, retried, nothing uploaded; or SIGTERM: 143, counted,
//! retried, its interrupted reports uploaded and superseded); the failing scenario's index ends
//! 1 and is not retried. The merge of the store then holds exactly the fleet's two verdicts,
//! both shards' evidence verified, and no pod's container or volume is left.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use yaml_rust2::{Yaml, YamlLoader};

use crate::servers::{S3_ACCESS_KEY, S3_SECRET_KEY, S3Server};
use crate::signed::keygen;
use crate::util::{Scratch, containers_labelled, gzip, pg15_dump, root};

const NAMESPACE: &str = "pgdrill-evidence@pgdrill.dev";
const IDENTITY: &str = "drills@example.com";
const BUCKET: &str = "fleet";

/// A variable of pgdrill's container: its value, or the Secret and key it is read from.
enum EnvValue {
    Value(String),
    Secret(String, String),
}

/// What an Indexed Job's controller reads of the rendered objects.
struct Job {
    /// The scenarios' names by index (the Job's annotation).
    names: Vec<String>,
    completions: i64,
    backoff_limit_per_index: i64,
    rules: Vec<Yaml>,
    /// pgdrill's container: its args and its environment (a value, or a Secret's name and key).
    args: Vec<String>,
    env: Vec<(String, EnvValue)>,
    /// Where the pod mounts the ConfigMap and the signing key's Secret, and the files the
    /// ConfigMap rebuilds there (path, text).
    scenarios_dir: String,
    signing_dir: Option<(String, String, String)>,
    files: Vec<(String, String)>,
}

fn read_job(file: &Path) -> Job {
    let text = std::fs::read_to_string(file).unwrap();
    let docs = YamlLoader::load_from_str(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let of_kind = |kind: &str| docs.iter().find(|d| d["kind"].as_str() == Some(kind)).expect(kind).clone();
    let (job, config_map) = (of_kind("Job"), of_kind("ConfigMap"));
    let spec = &job["spec"];
    let pod = &spec["template"]["spec"];
    let drill = pod["containers"].as_vec().unwrap().iter().find(|c| c["name"].as_str() == Some("pgdrill")).unwrap();
    let strings = |y: &Yaml| y.as_vec().unwrap().iter().map(|s| s.as_str().unwrap().to_owned()).collect::<Vec<_>>();
    let env = drill["env"]
        .as_vec()
        .unwrap()
        .iter()
        .map(|e| {
            let name = e["name"].as_str().unwrap().to_owned();
            match e["value"].as_str() {
                Some(value) => (name, EnvValue::Value(value.to_owned())),
                None => {
                    let r = &e["valueFrom"]["secretKeyRef"];
                    (
                        name,
                        EnvValue::Secret(r["name"].as_str().unwrap().to_owned(), r["key"].as_str().unwrap().to_owned()),
                    )
                }
            }
        })
        .collect();
    let mount_of = |volume: &str| {
        drill["volumeMounts"].as_vec().unwrap().iter().find(|m| m["name"].as_str() == Some(volume)).map(|m| {
            assert_eq!(m["readOnly"].as_bool(), Some(true), "{volume} is mounted read-only");
            m["mountPath"].as_str().unwrap().to_owned()
        })
    };
    let volume_of = |name: &str| pod["volumes"].as_vec().unwrap().iter().find(|v| v["name"].as_str() == Some(name));
    let items = &volume_of("scenarios").unwrap()["configMap"]["items"];
    assert!(config_map["binaryData"].is_badvalue(), "these scenarios' files are all text");
    let files = items
        .as_vec()
        .unwrap()
        .iter()
        .map(|i| {
            let text = config_map["data"][i["key"].as_str().unwrap()].as_str().unwrap().to_owned();
            (i["path"].as_str().unwrap().to_owned(), text)
        })
        .collect();
    let signing_dir = mount_of("signing-key").map(|dir| {
        let secret = &volume_of("signing-key").unwrap()["secret"];
        let item = &secret["items"][0];
        (dir, secret["secretName"].as_str().unwrap().to_owned(), item["key"].as_str().unwrap().to_owned())
    });
    Job {
        names: job["metadata"]["annotations"]["pgdrill.dev/scenarios"]
            .as_str()
            .unwrap()
            .split(',')
            .map(Into::into)
            .collect(),
        completions: spec["completions"].as_i64().unwrap(),
        backoff_limit_per_index: spec["backoffLimitPerIndex"].as_i64().unwrap(),
        rules: spec["podFailurePolicy"]["rules"].as_vec().unwrap().clone(),
        args: strings(&drill["args"]),
        env,
        scenarios_dir: mount_of("scenarios").unwrap(),
        signing_dir,
        files,
    }
}

/// What the Job controller does with a failed pod, by its `podFailurePolicy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    FailJob,
    FailIndex,
    Ignore,
    Count,
}

/// The first rule that matches a failed pod whose `pgdrill` container ended `code` (these pods
/// carry no condition: nothing evicted or preempted them), as Kubernetes applies the rules, in
/// order; no rule matching counts the failure against the index's backoff limit.
fn action(rules: &[Yaml], code: i32) -> Action {
    for rule in rules {
        let codes = &rule["onExitCodes"];
        let matches = !codes.is_badvalue() && codes["containerName"].as_str().is_none_or(|c| c == "pgdrill") && {
            let within = codes["values"].as_vec().unwrap().iter().any(|v| v.as_i64() == Some(i64::from(code)));
            match codes["operator"].as_str() {
                Some("In") => within,
                Some("NotIn") => !within,
                other => panic!("an operator Kubernetes does not have: {other:?}"),
            }
        };
        // `onPodConditions`: none of these pods has a condition (no DisruptionTarget).
        if matches {
            return match rule["action"].as_str() {
                Some("FailJob") => Action::FailJob,
                Some("FailIndex") => Action::FailIndex,
                Some("Ignore") => Action::Ignore,
                Some("Count") => Action::Count,
                other => panic!("an action Kubernetes does not have: {other:?}"),
            };
        }
    }
    Action::Count
}

/// How an index ended, and each of its pods' exit codes.
#[derive(Debug, PartialEq, Eq)]
enum Index {
    Succeeded(Vec<i32>),
    Failed(Vec<i32>, Action),
}

/// A test playing the cluster: the Secrets' values, and the folders the pod's mounts show.
struct Cluster<'a> {
    scratch: &'a Scratch,
    job: Job,
    secrets: BTreeMap<(String, String), String>,
    /// Every pod's name, for the check that nothing is left.
    pods: Vec<String>,
}

impl Cluster<'_> {
    /// The ConfigMap's files and the signing key's Secret as the pod's volumes show them.
    fn volumes(&self) -> Vec<String> {
        let dir = self.scratch.path("configmap");
        for (path, text) in &self.job.files {
            self.scratch.write(&format!("configmap/{path}"), text);
        }
        let mut mounts = vec![format!("{}:{}:ro", dir.display(), self.job.scenarios_dir)];
        if let Some((at, secret, key)) = &self.job.signing_dir {
            let value = &self.secrets[&(secret.clone(), key.clone())];
            let file = self.scratch.write("signing/key", value);
            mounts.push(format!("{}:{at}:ro", file.parent().unwrap().display()));
        }
        // Readable by the image's user, as a ConfigMap's (0444) and a Secret's (fsGroup) files are.
        let opened = Command::new("chmod").args(["-R", "a+rX"]).arg(&dir).arg(self.scratch.path("signing")).status();
        assert!(opened.unwrap().success());
        mounts
    }

    /// One pod of index `index`: `ci/pod/drill` with the rendered container's args and
    /// environment; `stop` sends that signal to pgdrill's container once its server runs.
    fn pod(&mut self, index: i64, attempt: usize, stop: Option<&str>) -> Output {
        let name =
            format!("pgdrill-test-retry-{}-{index}-{attempt}-{}", std::process::id(), crate::util::rand_suffix());
        self.pods.push(name.clone());
        let args = &self.job.args;
        let at = args.windows(2).position(|w| w == ["--target", "pod"]).expect("the Job drills on the pod target");
        // ci/pod/drill adds `--target pod` itself.
        let args: Vec<&String> = args[..at].iter().chain(&args[at + 2..]).collect();
        let mut command = Command::new("bash");
        command.arg(root().join("ci/pod/drill")).args(["--name", &name]);
        for mount in self.volumes() {
            command.args(["-v", &mount]);
        }
        for (var, value) in &self.job.env {
            let value = match value {
                EnvValue::Value(value) => value.clone(),
                EnvValue::Secret(secret, key) => self.secrets[&(secret.clone(), key.clone())].clone(),
            };
            // By name only: the value is in ci/pod/drill's environment, never on a command line.
            command.args(["-e", var]).env(var, value);
        }
        command.args(["-e", "JOB_COMPLETION_INDEX"]).env("JOB_COMPLETION_INDEX", index.to_string());
        let mut child = command
            .arg("--")
            .args(args)
            .env("PGDRILL_POD_BINARY", env!("CARGO_BIN_EXE_pgdrill"))
            .env("PGDRILL_POD_NETWORK", "host")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run ci/pod/drill");
        if let Some(signal) = stop {
            wait_for_postgres(&name, &mut child);
            let killed = Command::new("docker").args(["kill", "--signal", signal, &name]).output().unwrap();
            assert!(killed.status.success(), "docker kill: {}", String::from_utf8_lossy(&killed.stderr));
        }
        child.wait_with_output().unwrap()
    }

    /// The controller's loop for one index: pods until one succeeds, or the policy fails the
    /// index, or its failures counted pass `backoffLimitPerIndex`. `stop` the first pod.
    fn run_index(&mut self, index: i64, stop: Option<&str>) -> (Index, Vec<Output>) {
        let (mut codes, mut outputs, mut counted) = (Vec::new(), Vec::new(), 0);
        loop {
            assert!(codes.len() < 6, "an index that never ends: {codes:?}");
            let output = self.pod(index, codes.len(), if codes.is_empty() { stop } else { None });
            let code = output.status.code().expect("ci/pod/drill exits");
            codes.push(code);
            outputs.push(output);
            if code == 0 {
                return (Index::Succeeded(codes), outputs);
            }
            match action(&self.job.rules, code) {
                Action::Ignore => {}
                Action::Count => {
                    counted += 1;
                    if counted > self.job.backoff_limit_per_index {
                        return (Index::Failed(codes, Action::Count), outputs);
                    }
                }
                fail => return (Index::Failed(codes, fail), outputs),
            }
        }
    }
}

/// Waits until a `postgres` process runs in the pod's server container.
fn wait_for_postgres(name: &str, pod: &mut std::process::Child) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let top = Command::new("docker").args(["top", &format!("{name}-server"), "-eo", "pid,args"]).output().unwrap();
        if pod.try_wait().unwrap().is_some() {
            let mut said = String::new();
            pod.stdout.take().unwrap().read_to_string(&mut said).unwrap();
            pod.stderr.take().unwrap().read_to_string(&mut said).unwrap();
            panic!("the pod ended before its server ran: {:?}\n{said}\n{}", pod.try_wait(), text(&top));
        }
        let running = String::from_utf8_lossy(&top.stdout).lines().skip(1).any(|line| {
            let program = line.split_whitespace().nth(1).unwrap_or("");
            program.ends_with("/postgres") || program == "postgres" || program.starts_with("postgres:")
        });
        if running {
            return;
        }
        assert!(Instant::now() < deadline, "no postgres ran in {name}-server: {}", text(&top));
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn text(output: &Output) -> String {
    format!(
        "--- exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn pgdrill(args: &[&str], env: &[(String, String)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pgdrill"))
        .args(args)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .current_dir(root())
        .output()
        .expect("run pgdrill")
}

/// A dump of a ledger of `rows` rows in the store, and a scenario that drills it from there and
/// expects `expect` rows (after a pause, so that the drill is caught with its server running).
fn scenario(scratch: &Scratch, s3: &S3Server, name: &str, rows: u32, expect: u32) -> PathBuf {
    let values: Vec<String> = (1..=rows).map(|n| format!("({n})")).collect();
    let dump = pg15_dump(&format!(
        "CREATE TABLE public.ledger (id integer PRIMARY KEY);\nINSERT INTO public.ledger VALUES {};\n",
        values.join(", ")
    ));
    s3.put(BUCKET, &[(&format!("backups/{name}.sql.gz"), gzip(&dump))]);
    scratch.write(
        &format!("scenarios/{name}.toml"),
        format!(
            "name = \"{name}\"\n[source]\ns3 = \"s3://{BUCKET}/backups/{name}.sql.gz\"\nendpoint = \"{}\"\nregion = \"us-east-1\"\n\
             [[checks.sql]]\nname = \"pause\"\nquery = \"SELECT 1 FROM pg_sleep(2)\"\nexpect = 1\n\
             [[checks.sql]]\nname = \"ledger\"\nquery = \"SELECT count(*) FROM public.ledger\"\nexpect = {expect}\n",
            s3.endpoint
        ),
    )
}

/// The fleet: two scenarios rendered as a Job, each index run as the controller would, the
/// passing one's first pod stopped by `signal` mid-drill; then the merge of the store.
fn a_fleet_with_a_pod_stopped_by(signal: &str, code: i32) {
    let scratch = Scratch::new();
    let s3 = S3Server::start();
    s3.put(BUCKET, &[]);
    let port = s3.endpoint.rsplit(':').next().unwrap().to_owned();
    let (good, bad) = (format!("ledger-{}", std::process::id()), format!("lost-rows-{}", std::process::id()));
    scenario(&scratch, &s3, &good, 3, 3);
    scenario(&scratch, &s3, &bad, 3, 4);
    let (key, public, fingerprint) = keygen(scratch.dir.path(), "signer", "");
    let allowed = scratch.write("allowed_signers", format!("{IDENTITY} namespaces=\"{NAMESPACE}\" {public}\n"));

    let objects = scratch.path("job.yaml");
    let folder = scratch.path("scenarios");
    let mut args = vec!["kube", folder.to_str().unwrap()];
    let egress = format!("127.0.0.1/32:{port}");
    args.extend(["--name", "fleet", "--reports", "s3://fleet/reports/", "--signing-key-secret", "drill-signing"]);
    args.extend(["--allow-egress", &egress, "--secret-env", "AWS_ACCESS_KEY_ID=fleet-s3/id"]);
    args.extend(["--secret-env", "AWS_SECRET_ACCESS_KEY=fleet-s3/secret"]);
    args.extend(["--secret-env", "AWS_ENDPOINT_URL=fleet-s3/endpoint", "-o", objects.to_str().unwrap()]);
    let rendered = pgdrill(&args, &[]);
    assert_eq!(rendered.status.code(), Some(0), "{}", text(&rendered));
    let job = read_job(&objects);
    assert_eq!(job.completions, 2);
    let (good_index, bad_index) = (
        job.names.iter().position(|n| *n == good).unwrap() as i64,
        job.names.iter().position(|n| *n == bad).unwrap() as i64,
    );
    let secrets = BTreeMap::from([
        (("fleet-s3".into(), "id".into()), S3_ACCESS_KEY.to_owned()),
        (("fleet-s3".into(), "secret".into()), S3_SECRET_KEY.to_owned()),
        (("fleet-s3".into(), "endpoint".into()), s3.endpoint.clone()),
        (("drill-signing".into(), "key".into()), std::fs::read_to_string(&key).unwrap()),
    ]);
    let mut cluster = Cluster { scratch: &scratch, job, secrets, pods: Vec::new() };

    let mut outcomes = BTreeMap::new();
    for index in 0..cluster.job.completions {
        let stop = (index == good_index).then_some(signal);
        outcomes.insert(index, cluster.run_index(index, stop));
    }
    let (good_end, good_pods) = &outcomes[&good_index];
    assert_eq!(*good_end, Index::Succeeded(vec![code, 0]), "{}", good_pods.iter().map(text).collect::<String>());
    assert_eq!(action(&cluster.job.rules, code), Action::Count, "the policy retries a pod killed");
    let (bad_end, bad_pods) = &outcomes[&bad_index];
    assert_eq!(
        *bad_end,
        Index::Failed(vec![1], Action::FailIndex),
        "{}",
        bad_pods.iter().map(text).collect::<String>()
    );
    assert!(
        String::from_utf8_lossy(&bad_pods[0].stdout).contains("uploaded: s3://fleet/reports/"),
        "{}",
        text(&bad_pods[0])
    );

    // The merge: one drill failed; both shards' evidence verified; the killed pod's drill is not
    // counted (SIGKILL: it uploaded nothing; SIGTERM: its interrupted reports are superseded).
    let mut env = s3.env();
    env.push(("AWS_ENDPOINT_URL".into(), s3.endpoint.clone()));
    let out = scratch.path("merged");
    let merged = {
        let mut args = vec!["report", "merge", "s3://fleet/reports/", "-o", out.to_str().unwrap(), "--newest"];
        args.extend(["--allowed-signers", allowed.to_str().unwrap()]);
        pgdrill(&args, &env)
    };
    assert_eq!(merged.status.code(), Some(1), "{}", text(&merged));
    let fleet: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("fleet.json")).unwrap()).unwrap();
    assert_eq!((fleet["verdict"].as_str(), fleet["counted"].as_u64()), (Some("fail"), Some(2)), "{fleet:#}");
    let drills = fleet["drills"].as_array().unwrap();
    let counted: BTreeMap<&str, &str> = drills
        .iter()
        .filter(|d| d["counted"] == true)
        .inspect(|d| {
            assert_eq!((d["evidence"].as_str(), d["signer"].as_str()), (Some("verified"), Some(IDENTITY)), "{d:#}");
            assert_eq!(d["key"], fingerprint.as_str());
        })
        .map(|d| (d["scenario"].as_str().unwrap(), d["verdict"].as_str().unwrap()))
        .collect();
    assert_eq!(counted, BTreeMap::from([(good.as_str(), "pass"), (bad.as_str(), "fail")]), "{fleet:#}");
    let others: Vec<&serde_json::Value> = drills.iter().filter(|d| d["counted"] != true).collect();
    if code == 137 {
        assert!(others.is_empty(), "a pod killed uploads nothing: {fleet:#}");
    } else {
        let [interrupted] = &others[..] else { panic!("the interrupted drill, superseded: {fleet:#}") };
        assert_eq!(interrupted["scenario"], good.as_str());
        assert_eq!(interrupted["verdict"], "interrupted", "{interrupted:#}");
        assert!(interrupted["note"].as_str().unwrap().contains("superseded by the newer"), "{interrupted:#}");
    }

    for name in &cluster.pods {
        assert!(containers_labelled("org.pgdrill.pod", name).is_empty(), "{name}'s containers are left");
        let volumes = Command::new("docker")
            .args(["volume", "ls", "-q", "--filter", &format!("label=org.pgdrill.pod={name}")])
            .output()
            .unwrap();
        assert!(volumes.stdout.is_empty(), "{name}'s volumes are left: {}", String::from_utf8_lossy(&volumes.stdout));
    }
    for output in outcomes.values().flat_map(|(_, o)| o).chain([&rendered, &merged]) {
        assert!(!text(output).contains(S3_SECRET_KEY), "the S3 secret was printed");
    }
}

#[test]
fn a_pod_killed_mid_drill_is_retried_by_the_rendered_policy_and_the_merge_holds_the_fleets_verdicts() {
    a_fleet_with_a_pod_stopped_by("KILL", 137);
}

#[test]
fn a_pod_stopped_mid_drill_is_retried_and_its_interrupted_reports_are_superseded_in_the_merge() {
    a_fleet_with_a_pod_stopped_by("TERM", 143);
}
