//! A fleet's reports in an object store (moto on loopback): drills with `--reports s3://...`
//! upload their whole folders (which verify once downloaded) and append to their scenario's
//! history there; `report merge` of the prefix keeps each scenario's newest drill, verifies every
//! shard against allowed signers and signs its own summary, and fails on a shard edited in the
//! store, signed by a stranger, unsigned or incomplete. An upload that fails keeps the reports
//! and fails the command; a drill stopped by SIGTERM still uploads its reports.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};

use crate::servers::{S3_SECRET_KEY, S3Server};
use crate::signed::keygen;
use crate::util::{Scratch, containers_labelled, pg15_dump, root};

const NAMESPACE: &str = "pgdrill-evidence@pgdrill.dev";
const IDENTITY: &str = "drills@example.com";
const BUCKET: &str = "fleet";

/// The files every drill folder holds, signed.
const FILES: [&str; 14] = [
    "MANIFEST.sha256",
    "backup-age.svg",
    "drill.json",
    "evidence.intoto.json",
    "evidence.intoto.json.sig",
    "junit.xml",
    "metrics.prom",
    "record.json",
    "recovery.svg",
    "report.html",
    "report.md",
    "test-result.intoto.json",
    "test-result.intoto.json.sig",
    "timeline.svg",
];

fn block_on<T>(future: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(future)
}

fn bucket(s3: &S3Server) -> object_store::aws::AmazonS3 {
    pgdrill::tls::install();
    object_store::aws::AmazonS3Builder::new()
        .with_bucket_name(BUCKET)
        .with_region("us-east-1")
        .with_endpoint(&s3.endpoint)
        .with_allow_http(true)
        .with_access_key_id(crate::servers::S3_ACCESS_KEY)
        .with_secret_access_key(S3_SECRET_KEY)
        .build()
        .unwrap()
}

/// Every object under `prefix`, by key.
fn objects(s3: &S3Server, prefix: &str) -> BTreeMap<String, Vec<u8>> {
    let store = bucket(s3);
    block_on(async {
        use futures_util::StreamExt;
        let metas: Vec<_> = store.list(Some(&ObjectPath::from(prefix))).collect().await;
        let mut found = BTreeMap::new();
        for meta in metas {
            let meta = meta.unwrap();
            let bytes = store.get(&meta.location).await.unwrap().bytes().await.unwrap();
            found.insert(meta.location.to_string(), bytes.to_vec());
        }
        found
    })
}

/// The object `key`.
fn get(s3: &S3Server, key: &str) -> Vec<u8> {
    let store = bucket(s3);
    block_on(async { store.get(&ObjectPath::from(key)).await.unwrap().bytes().await.unwrap().to_vec() })
}

fn put(s3: &S3Server, key: &str, bytes: Vec<u8>) {
    let store = bucket(s3);
    block_on(async { store.put(&ObjectPath::from(key), bytes.into()).await.unwrap() });
}

/// The drill folders under `prefix/scenario/`, oldest first: their keys (`.../<time>`).
fn folders(s3: &S3Server, prefix: &str, scenario: &str) -> Vec<String> {
    let mut found: Vec<String> = objects(s3, &format!("{prefix}/{scenario}"))
        .keys()
        .filter_map(|k| k.strip_suffix("/drill.json").map(str::to_owned))
        .collect();
    found.sort();
    found
}

/// Copies the objects of a drill folder into a local folder.
fn download(s3: &S3Server, folder: &str, into: &Path) -> PathBuf {
    std::fs::create_dir_all(into).unwrap();
    for (key, bytes) in objects(s3, folder) {
        std::fs::write(into.join(key.rsplit('/').next().unwrap()), bytes).unwrap();
    }
    into.to_owned()
}

/// The environment of a drill or merge reporting to `s3` (the endpoint is plain HTTP on
/// loopback, which an `http://` endpoint allows by itself), signing with `key` when given.
fn env(s3: &S3Server, key: Option<&Path>) -> Vec<(String, String)> {
    let mut env = s3.env();
    env.push(("AWS_ENDPOINT_URL".into(), s3.endpoint.clone()));
    if let Some(key) = key {
        env.push(("PGDRILL_SIGNING_KEY".into(), std::fs::read_to_string(key).unwrap()));
    }
    env
}

fn pgdrill(args: &[&str], env: &[(String, String)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pgdrill"))
        .args(args)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .current_dir(root())
        .output()
        .expect("run pgdrill")
}

fn text(output: &Output) -> String {
    format!("--- exit {:?}\n--- stdout\n{}\n--- stderr\n{}", output.status.code(), stdout(output), stderr(output))
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A small scenario named `name`: a table of `rows` rows, counted by a check (`extra` more).
fn scenario(scratch: &Scratch, name: &str, rows: u32, extra: &str) -> PathBuf {
    let values: Vec<String> = (1..=rows).map(|n| format!("({n})")).collect();
    scratch.write(
        &format!("{name}.sql"),
        pg15_dump(&format!(
            "CREATE TABLE public.ledger (id integer PRIMARY KEY);\nINSERT INTO public.ledger VALUES {};\n",
            values.join(", ")
        )),
    );
    scratch.scenario(
        &format!("{name}.toml"),
        &format!(
            "name = \"{name}\"\n[source]\npath = \"{name}.sql\"\n[target]\n\
             [[checks.sql]]\nname = \"ledger\"\nquery = \"SELECT count(*) FROM public.ledger\"\nexpect = {rows}\n{extra}"
        ),
    )
}

fn drill(scenario: &Path, reports: &str, env: &[(String, String)]) -> Output {
    pgdrill(&["run", scenario.to_str().unwrap(), "--reports", reports], env)
}

fn merge(args: &[&str], env: &[(String, String)]) -> Output {
    pgdrill(&[&["report", "merge"], args].concat(), env)
}

fn json(bytes: &[u8]) -> serde_json::Value {
    serde_json::from_slice(bytes).expect("JSON")
}

/// A name no other test's drill has (container labels carry it).
fn unique(what: &str) -> String {
    format!("fleet-{what}-{}", std::process::id())
}

#[test]
fn drills_report_to_an_object_store_and_their_merge_verifies_every_shard() {
    let scratch = Scratch::new();
    let s3 = S3Server::start();
    s3.put(BUCKET, &[]);
    let (key, public, fingerprint) = keygen(scratch.dir.path(), "signer", "");
    let allowed = scratch.write("allowed_signers", format!("{IDENTITY} namespaces=\"{NAMESPACE}\" {public}\n"));
    let allowed = allowed.to_str().unwrap();
    let env = env(&s3, Some(&key));
    let (orders, billing) = (unique("orders"), unique("billing"));
    let orders_file = scenario(&scratch, &orders, 3, "");
    let billing_file = scenario(&scratch, &billing, 2, "");

    let first = drill(&orders_file, "s3://fleet/drills/", &env);
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    assert!(stdout(&first).contains(&format!("uploaded: s3://fleet/drills/{orders}/")), "{}", text(&first));
    let drilled = drill(&billing_file, "s3://fleet/drills", &env);
    assert_eq!(drilled.status.code(), Some(0), "{}", text(&drilled));

    // Each drill's whole folder is in the store, and its history names it there.
    for name in [&orders, &billing] {
        let found = folders(&s3, "drills", name);
        let [folder] = &found[..] else { panic!("one folder of {name}: {:?}", objects(&s3, "drills").keys()) };
        let mut names: Vec<String> =
            objects(&s3, folder).keys().map(|k| k.rsplit('/').next().unwrap().into()).collect();
        names.sort();
        assert_eq!(names, FILES, "{folder}");
        let history = String::from_utf8(get(&s3, &format!("drills/{name}/history.jsonl"))).unwrap();
        assert_eq!(history.lines().count(), 1, "{history}");
        assert_eq!(json(history.as_bytes())["report_dir"], format!("s3://fleet/{folder}/"), "{history}");
    }
    // A folder downloaded verifies as the drill signed it: bytes unchanged.
    let first_folder = folders(&s3, "drills", &orders).remove(0);
    let local = download(&s3, &first_folder, &scratch.path("downloaded"));
    let verified = pgdrill(&["verify", local.to_str().unwrap(), "--allowed-signers", allowed], &[]);
    assert_eq!(verified.status.code(), Some(0), "{}", text(&verified));
    let first_id = json(&std::fs::read(local.join("drill.json")).unwrap())["drill_id"].as_str().unwrap().to_owned();

    // A second drill of orders reads the history from the store and compares with the first.
    let second = drill(&orders_file, "s3://fleet/drills/", &env);
    assert_eq!(second.status.code(), Some(0), "{}", text(&second));
    let orders_folders = folders(&s3, "drills", &orders);
    assert_eq!(orders_folders.len(), 2, "{orders_folders:?}");
    let report = String::from_utf8(get(&s3, &format!("{}/report.md", orders_folders[1]))).unwrap();
    assert!(
        report.contains(&format!("(`{first_id}`)")) && !report.contains("first drill of this scenario"),
        "{report}"
    );
    let history = String::from_utf8(get(&s3, &format!("drills/{orders}/history.jsonl"))).unwrap();
    assert_eq!(history.lines().count(), 2, "{history}");

    // The fleet's merge: each scenario's newest drill, every shard verified, the summary signed.
    let out = scratch.path("merged");
    let out_arg = out.to_str().unwrap();
    let merged = merge(&["s3://fleet/drills/", "-o", out_arg, "--newest", "--allowed-signers", allowed], &env);
    assert_eq!(merged.status.code(), Some(0), "{}", text(&merged));
    let fleet = json(&std::fs::read(out.join("fleet.json")).unwrap());
    assert_eq!((fleet["verdict"].as_str(), fleet["counted"].as_u64()), (Some("pass"), Some(2)), "{fleet:#}");
    let drills = fleet["drills"].as_array().unwrap();
    assert_eq!(drills.len(), 3, "{fleet:#}");
    for counted in drills.iter().filter(|d| d["counted"] == true) {
        assert_eq!((counted["evidence"].as_str(), counted["signer"].as_str()), (Some("verified"), Some(IDENTITY)));
        assert_eq!(counted["key"], fingerprint.as_str());
    }
    let superseded = drills.iter().find(|d| d["counted"] == false).expect("the first orders drill");
    assert_eq!(superseded["folder"], format!("s3://fleet/{first_folder}/"));
    assert!(superseded["note"].as_str().unwrap().contains("superseded by the newer"), "{superseded}");
    let summary = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(
        summary.starts_with("# Restore drills: PASS")
            && summary.contains(&format!("✅ verified, signed by `{IDENTITY}`")),
        "{summary}"
    );
    let fleet_verified = pgdrill(&["verify", out_arg, "--allowed-signers", allowed], &[]);
    assert_eq!(fleet_verified.status.code(), Some(0), "{}", text(&fleet_verified));
    assert!(stdout(&fleet_verified).contains("a fleet summary of 2 drills, verdict pass"), "{}", text(&fleet_verified));
    let ssh = Command::new("ssh-keygen")
        .args(["-Y", "verify", "-f", allowed, "-I", IDENTITY, "-n", NAMESPACE, "-s"])
        .arg(out.join("evidence.intoto.json.sig"))
        .stdin(std::fs::File::open(out.join("evidence.intoto.json")).unwrap())
        .output()
        .unwrap();
    assert!(ssh.status.success(), "ssh-keygen -Y verify of the fleet summary: {}", text(&ssh));

    // A partial upload (no drill.json) beside a newer complete drill: set aside, said.
    let partial = format!("drills/{billing}/20000101T000000Z");
    put(&s3, &format!("{partial}/junit.xml"), b"<testsuites/>".to_vec());
    let merged = merge(&["s3://fleet/drills/", "-o", out_arg, "--newest", "--allowed-signers", allowed], &env);
    assert_eq!(merged.status.code(), Some(0), "{}", text(&merged));
    assert!(stdout(&merged).contains(&format!("s3://fleet/{partial}/ is incomplete")), "{}", text(&merged));

    // One byte of a shard's report.md changed in the store: the merge fails, naming the shard.
    let billing_folder = folders(&s3, "drills", &billing).remove(0);
    let report_key = format!("{billing_folder}/report.md");
    let original = get(&s3, &report_key);
    let mut edited = original.clone();
    edited[0] ^= 1;
    put(&s3, &report_key, edited);
    let merged = merge(&["s3://fleet/drills/", "-o", out_arg, "--newest", "--allowed-signers", allowed], &env);
    assert_eq!(merged.status.code(), Some(1), "{}", text(&merged));
    assert!(
        stderr(&merged).contains(&format!("drill of `{billing}` in s3://fleet/{billing_folder}/: evidence does not verify: report.md was changed after the drill was signed")),
        "{}",
        text(&merged)
    );
    assert!(std::fs::read_to_string(out.join("summary.md")).unwrap().contains("❌ does not verify"));
    put(&s3, &report_key, original);

    // A scenario of which only a partial upload is there fails the merge.
    put(&s3, "drills/ghost/20260101T000000Z/report.md", b"# partial".to_vec());
    let merged = merge(&["s3://fleet/drills/", "-o", out_arg, "--newest", "--allowed-signers", allowed], &env);
    assert_eq!(merged.status.code(), Some(1), "{}", text(&merged));
    assert!(
        stderr(&merged)
            .contains("drill of `ghost` in s3://fleet/drills/ghost/20260101T000000Z/ did not pass: incomplete"),
        "{}",
        text(&merged)
    );

    // No secret in any object or message.
    let key_text = std::fs::read_to_string(&key).unwrap();
    let body: Vec<&str> = key_text.lines().filter(|l| !l.starts_with("-----")).collect();
    for (name, bytes) in objects(&s3, "drills") {
        let content = String::from_utf8_lossy(&bytes);
        assert!(!content.contains(S3_SECRET_KEY) && !body.iter().any(|l| content.contains(l)), "a secret in {name}");
    }
    for output in [&first, &second, &merged] {
        assert!(!text(output).contains(S3_SECRET_KEY) && !body.iter().any(|l| text(output).contains(l)));
    }
}

#[test]
fn a_shard_signed_by_a_stranger_or_not_signed_fails_the_merge() {
    let scratch = Scratch::new();
    let s3 = S3Server::start();
    s3.put(BUCKET, &[]);
    let (_, public, _) = keygen(scratch.dir.path(), "signer", "");
    let (stranger_key, _, stranger) = keygen(scratch.dir.path(), "stranger", "");
    let allowed = scratch.write("allowed_signers", format!("{IDENTITY} namespaces=\"{NAMESPACE}\" {public}\n"));
    let allowed = allowed.to_str().unwrap();
    let name = unique("audit");
    let file = scenario(&scratch, &name, 2, "");
    let out = scratch.path("merged");
    let out_arg = out.to_str().unwrap();

    // A bucket that is not there: said before any drill runs.
    let missing = drill(&file, "s3://nobucket/reports/", &env(&s3, None));
    assert_eq!(missing.status.code(), Some(1), "{}", text(&missing));
    assert!(
        stderr(&missing).contains("error: cannot write the reports to s3://nobucket/reports/"),
        "{}",
        text(&missing)
    );
    assert!(stderr(&missing).contains("no drill runs") && !stdout(&missing).contains("drill `"), "{}", text(&missing));

    let signed = drill(&file, "s3://fleet/stranger/", &env(&s3, Some(&stranger_key)));
    assert_eq!(signed.status.code(), Some(0), "{}", text(&signed));
    let merged = merge(&["s3://fleet/stranger/", "-o", out_arg, "--allowed-signers", allowed], &env(&s3, None));
    assert_eq!(merged.status.code(), Some(1), "{}", text(&merged));
    let folder = folders(&s3, "stranger", &name).remove(0);
    assert!(
        stderr(&merged).contains(&format!("drill of `{name}` in s3://fleet/{folder}/: evidence does not verify: the report is signed by key {stranger} (ssh-ed25519), which is not in the allowed signers")),
        "{}",
        text(&merged)
    );

    // Unsigned, to a store told to take no conditional write: the history is written over, said.
    let mut plain = env(&s3, None);
    plain.push(("AWS_CONDITIONAL_PUT".into(), "disabled".into()));
    let unsigned = drill(&file, "s3://fleet/unsigned/", &plain);
    assert_eq!(unsigned.status.code(), Some(0), "{}", text(&unsigned));
    assert!(
        stderr(&unsigned).contains("written over without checking that no other drill wrote it meanwhile"),
        "{}",
        text(&unsigned)
    );
    assert_eq!(String::from_utf8(get(&s3, &format!("unsigned/{name}/history.jsonl"))).unwrap().lines().count(), 1);
    let merged = merge(&["s3://fleet/unsigned/", "-o", out_arg, "--allowed-signers", allowed], &env(&s3, None));
    assert_eq!(merged.status.code(), Some(1), "{}", text(&merged));
    assert!(stderr(&merged).contains("evidence unsigned: nothing proves who wrote it"), "{}", text(&merged));
    // Without allowed signers the merge checks no signer, and says so.
    let merged = merge(&["s3://fleet/unsigned/", "-o", out_arg], &env(&s3, None));
    assert_eq!(merged.status.code(), Some(0), "{}", text(&merged));
    let summary = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(summary.contains("not checked against allowed signers"), "{summary}");
    // The merged folder may go to the store too.
    let uploaded = merge(&["s3://fleet/unsigned/", "-o", "s3://fleet/merged/"], &env(&s3, None));
    assert_eq!(uploaded.status.code(), Some(0), "{}", text(&uploaded));
    let keys: Vec<String> = objects(&s3, "merged").into_keys().collect();
    assert_eq!(keys, ["merged/MANIFEST.sha256", "merged/fleet.json", "merged/junit.xml", "merged/summary.md"]);
}

/// A `pgdrill run` in the background, its temporary folder `tmp`.
fn start(scenario: &Path, reports: &str, env: &[(String, String)], tmp: &Path) -> Child {
    std::fs::create_dir_all(tmp).unwrap();
    Command::new(env!("CARGO_BIN_EXE_pgdrill"))
        .args(["run", scenario.to_str().unwrap(), "--reports", reports])
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env("TMPDIR", tmp)
        .current_dir(root())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start pgdrill")
}

/// Waits until the drill has read its scenario's history from the store into `tmp` and its
/// target container is up.
fn wait_for_drill(child: &mut Child, tmp: &Path, scenario: &str) {
    let deadline = Instant::now() + Duration::from_secs(120);
    let read = || {
        std::fs::read_dir(tmp)
            .into_iter()
            .flatten()
            .flatten()
            .any(|e| e.path().join(scenario).join("history.jsonl").is_file())
    };
    let started = || !containers_labelled("org.pgdrill.scenario", scenario).is_empty();
    while !read() || !started() {
        assert!(child.try_wait().unwrap().is_none(), "the drill ended first");
        assert!(Instant::now() < deadline, "the drill did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_failed_upload_keeps_the_reports_and_a_drill_stopped_by_sigterm_uploads_its_own() {
    let scratch = Scratch::new();
    let name = unique("slow");
    let slow = scenario(
        &scratch,
        &name,
        2,
        "[[checks.sql]]\nname = \"slow\"\nquery = \"SELECT 1 FROM pg_sleep(300)\"\nexpect = 1\n",
    );
    let s3 = S3Server::start();
    s3.put(BUCKET, &[]);
    let tmp = scratch.path("tmp");
    let mut child = start(&slow, "s3://fleet/interrupted/", &env(&s3, None), &tmp);
    wait_for_drill(&mut child, &tmp, &name);
    std::thread::sleep(Duration::from_secs(2));
    assert!(Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap().success());
    let stopped = child.wait_with_output().unwrap();
    assert_eq!(stopped.status.code(), Some(143), "{}", text(&stopped));
    let found = folders(&s3, "interrupted", &name);
    let [folder] = &found[..] else { panic!("{}", text(&stopped)) };
    let record = json(&get(&s3, &format!("{folder}/drill.json")));
    assert_eq!(record["verdict"], "interrupted", "{record:#}");
    assert!(stdout(&stopped).contains(&format!("uploaded: s3://fleet/{folder}/")), "{}", text(&stopped));

    // The store gone while the drill runs: the verdict stands, the command fails, the reports stay.
    let passing = scenario(&scratch, &unique("lost"), 2, "");
    let gone = S3Server::start();
    gone.put(BUCKET, &[]);
    let tmp = scratch.path("tmp-lost");
    let mut child = start(&passing, "s3://fleet/lost/", &env(&gone, None), &tmp);
    wait_for_drill(&mut child, &tmp, &unique("lost"));
    drop(gone);
    let lost = child.wait_with_output().unwrap();
    assert_eq!(lost.status.code(), Some(1), "{}", text(&lost));
    assert!(stdout(&lost).contains("PASS: drill"), "the verdict stands: {}", text(&lost));
    assert!(stderr(&lost).contains("error: cannot upload the reports to s3://fleet/lost/"), "{}", text(&lost));
    let kept = stderr(&lost)
        .lines()
        .find_map(|l| l.split_once("its reports are kept at ").map(|(_, p)| PathBuf::from(p.trim())))
        .unwrap_or_else(|| panic!("no kept path: {}", text(&lost)));
    assert!(kept.join("report.md").is_file() && kept.join("drill.json").is_file(), "{}", kept.display());
    assert!(!text(&lost).contains(S3_SECRET_KEY));
}
