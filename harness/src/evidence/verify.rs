//! Verifying a drill's report folder as an auditor would, trusting neither the runner nor
//! pgdrill's own reports: the SSH signature over `evidence.intoto.json` against an allowed
//! signers file, every file the statement covers against its sha256, and `MANIFEST.sha256`.
//! Each way it can fail is a [`Finding`] that says what it means.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use ssh_key::{HashAlg, PublicKey, SshSig};

use super::manifest::{self, ManifestError};
use super::sign::NAMESPACE;
use super::statement::{self, SIGNATURE, STATEMENT};
use crate::allowed_signers::{AllowedSigners, Refusal};

/// What to verify against.
#[derive(Debug, Default)]
pub(crate) struct Trust<'a> {
    /// The keys allowed to sign, and the file they were read from; without them nothing proves
    /// who signed.
    pub allowed_signers: Option<(&'a AllowedSigners, &'a Path)>,
    /// The principal the signer must be (`ssh-keygen -Y verify -I`).
    pub identity: Option<&'a str>,
}

/// The signature, when it checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Signed {
    pub fingerprint: String,
    pub algorithm: String,
    /// The allowed signers line that allows the key, and its principals.
    pub allowed_by: Option<(usize, String)>,
}

/// Something wrong with a report folder. Each is a failure, except where [`Finding::is_warning`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Finding {
    /// A file differs from the digest the signed statement (or, unsigned, the manifest) gives.
    Changed { name: String, signed: bool },
    /// A file the statement (or the manifest) covers is not in the folder.
    Missing { name: String, signed: bool },
    /// A file in the folder that nothing covers: it is not evidence.
    Uncovered { name: String },
    /// The statement does not match its signature: edited after signing, or another's signature.
    BadSignature,
    /// The signature's key is not in the allowed signers.
    UnknownKey { fingerprint: String, algorithm: String, file: PathBuf, cert_authorities: Vec<usize> },
    /// The key is allowed, but not as this identity.
    Identity { fingerprint: String, identity: String, principals: String, line: usize },
    /// The signature was made for another purpose than drill evidence.
    SignedForAnotherNamespace { namespace: String },
    /// The allowed signers let the key sign other namespaces only.
    NamespaceNotAllowed { fingerprint: String, namespaces: String, line: usize },
    /// The allowed signers line of the key is not valid now.
    KeyNotValid { fingerprint: String, line: usize, why: String },
    /// Allowed signers were given and the report is not signed.
    Unsigned { statement: bool },
    /// The signature or statement cannot be read.
    Unreadable { name: String, why: String },
    /// The manifest is absent or unreadable (and there is no statement).
    Manifest(String),
    /// An acknowledgement (`acks/`) that does not hold: why.
    Ack { file: String, why: String },
    /// A sampled drill's plan (`plan.json`) whose draw does not re-derive, or is not of the
    /// backup drilled: why.
    Plan { why: String },
}

impl Finding {
    /// A file that is not evidence does not make the evidence wrong: it is reported as a
    /// warning. It fails verification against allowed signers (an auditor's folder should hold
    /// only what is proven), not a check of the digests alone.
    pub(crate) fn is_warning(&self) -> bool {
        matches!(self, Finding::Uncovered { .. })
    }

    /// The finding said of `statement` (a file's name) rather than of a drill's report: a
    /// follower's receipt.
    pub(crate) fn of<'a>(&'a self, statement: &'a str) -> Of<'a> {
        Of { finding: self, statement }
    }

    /// The finding's text, the signed thing called `report` and its statement `statement`.
    fn write(&self, f: &mut std::fmt::Formatter<'_>, report: &str, statement: &str) -> std::fmt::Result {
        match self {
            Finding::Changed { name, signed: true } => write!(f, "{name} was changed after the drill was signed"),
            Finding::Changed { name, signed: false } => {
                write!(f, "`{name}` does not match the manifest: changed after the drill")
            }
            Finding::Missing { name, signed: true } => {
                write!(f, "{name} is missing: the signed statement covers it, and it is not in the folder")
            }
            Finding::Missing { name, signed: false } => {
                write!(f, "{name} is missing: {} lists it, and it is not in the folder", manifest::NAME)
            }
            Finding::Uncovered { name } => write!(
                f,
                "{name} is in the folder but not covered by the drill's statement or manifest: it is not evidence, whoever put it there"
            ),
            Finding::BadSignature => write!(
                f,
                "{statement} does not match its signature: it was changed after it was signed (or the signature is of something else)"
            ),
            Finding::UnknownKey { fingerprint, algorithm, file, cert_authorities } => {
                write!(
                    f,
                    "{report} is signed by key {fingerprint} ({algorithm}), which is not in the allowed signers `{}`: nothing says whose it is",
                    file.display()
                )?;
                if !cert_authorities.is_empty() {
                    let lines: Vec<String> = cert_authorities.iter().map(ToString::to_string).collect();
                    write!(
                        f,
                        " (line {} is a cert-authority: pgdrill verifies signatures by keys, not by certificates, so it does not apply)",
                        lines.join(", ")
                    )?;
                }
                Ok(())
            }
            Finding::Identity { fingerprint, identity, principals, line } => write!(
                f,
                "{report} is signed by key {fingerprint}, which the allowed signers (line {line}) allow for `{principals}`, not for `{identity}`"
            ),
            Finding::SignedForAnotherNamespace { namespace } => write!(
                f,
                "the signature is for namespace `{namespace}`, not `{NAMESPACE}`: it was made for something else than drill evidence"
            ),
            Finding::NamespaceNotAllowed { fingerprint, namespaces, line } => write!(
                f,
                "{report} is signed by key {fingerprint}, which the allowed signers (line {line}) allow only for namespaces `{namespaces}`, not `{NAMESPACE}`"
            ),
            Finding::KeyNotValid { fingerprint, line, why } => {
                write!(
                    f,
                    "{report} is signed by key {fingerprint}, whose allowed signers line {line} does not apply now: {why}"
                )
            }
            Finding::Unsigned { statement: false } => {
                write!(f, "the report is not signed (no {STATEMENT} nor {SIGNATURE}): nothing proves who wrote it")
            }
            Finding::Unsigned { statement: true } => {
                write!(f, "the report is not signed ({SIGNATURE} is missing): nothing proves who wrote {STATEMENT}")
            }
            Finding::Unreadable { name, why } => write!(f, "cannot read {name}: {why}"),
            Finding::Manifest(why) => write!(f, "{why}"),
            Finding::Ack { file, why } => write!(f, "the acknowledgement {file} does not hold: {why}"),
            Finding::Plan { why } => write!(f, "{} does not hold: {why}", crate::outcome::PLAN_FILE),
        }
    }
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.write(f, "the report", STATEMENT)
    }
}

/// A finding said of another signed statement than a drill's, by its name: [`Finding::of`].
pub(crate) struct Of<'a> {
    finding: &'a Finding,
    statement: &'a str,
}

impl std::fmt::Display for Of<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.finding.write(f, self.statement, self.statement)
    }
}

/// What verifying a folder found.
#[derive(Debug, Clone, Default)]
pub(crate) struct Verification {
    /// The signature, when it is there and checks out (against the allowed signers, if given).
    pub signed: Option<Signed>,
    /// The files the signed statement covers, when there is a statement.
    pub statement_files: Option<usize>,
    /// The drill the statement is about: its id, scenario and verdict.
    pub drill: Option<(String, String, String)>,
    /// Or the fleet summary it is about: how many drills it merged, and its verdict.
    pub fleet: Option<(u64, String)>,
    /// The files the manifest lists, when it is there.
    pub manifest_files: Option<usize>,
    pub findings: Vec<Finding>,
    /// The folder holds the scenario's history (`run --out DIR` keeps it there): not evidence
    /// of this drill, appended by each, and said as such rather than as a finding.
    pub history: bool,
    /// Verified against allowed signers: a warning fails too.
    pub strict: bool,
    /// A sampled drill's plan, re-derived: what it proves, in a line.
    pub sample: Option<String>,
}

/// The folder of a drill's acknowledgements (`pgdrill ack`, `super::ack`), checked on their own:
/// not the drill's evidence, each about its record.
pub(crate) const ACKS: &str = "acks";

impl Verification {
    pub(crate) fn passed(&self) -> bool {
        self.findings.iter().all(|f| f.is_warning() && !self.strict)
    }
}

/// Verifies the report folder `dir`. `Err` when it is no folder at all.
pub(crate) fn verify(dir: &Path, trust: &Trust<'_>) -> Result<Verification, std::io::Error> {
    let names = folder_names(dir)?;
    let mut v = Verification { strict: trust.allowed_signers.is_some(), ..Verification::default() };
    let read = |name: &str| std::fs::read(dir.join(name)).ok().filter(|_| names.contains(name));
    let statement_bytes = read(STATEMENT);
    let signature = match read(SIGNATURE) {
        Some(bytes) => check_signature(&bytes, statement_bytes.as_deref(), trust, &mut v),
        None => {
            if trust.allowed_signers.is_some() {
                v.findings.push(Finding::Unsigned { statement: statement_bytes.is_some() });
            }
            false
        }
    };
    let mut covered: BTreeSet<String> = [STATEMENT, SIGNATURE].map(String::from).into();
    if let Some(bytes) = &statement_bytes {
        match std::str::from_utf8(bytes)
            .map_err(|e| e.to_string())
            .and_then(|t| statement::parse(t).map_err(|e| e.to_string()))
        {
            Ok(statement) => {
                v.statement_files = Some(statement.subject.len());
                let p = &statement.predicate;
                let text = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_owned();
                if statement.predicate_type == statement::FLEET_PREDICATE_TYPE {
                    v.fleet = Some((p["drills"].as_u64().unwrap_or_default(), text(&p["verdict"])));
                } else {
                    v.drill = Some((text(&p["drill_id"]), text(&p["scenario"]["name"]), text(&p["verdict"])));
                }
                for s in &statement.subject {
                    covered.insert(s.name.clone());
                    check_file(dir, &names, &s.name, s.sha256().unwrap_or_default(), signature, &mut v.findings);
                }
            }
            Err(why) => v.findings.push(Finding::Unreadable { name: STATEMENT.into(), why }),
        }
    }
    match manifest::entries(dir) {
        Ok(entries) => {
            v.manifest_files = Some(entries.len());
            covered.insert(manifest::NAME.into());
            for (name, want) in &entries {
                covered.insert(name.clone());
                let mut found = Vec::new();
                check_file(dir, &names, name, want, false, &mut found);
                // What the statement already found wrong with a file is said once.
                let known = |f: &Finding| v.findings.iter().any(|g| same_file(f, g));
                found.retain(|f| !known(f));
                v.findings.extend(found);
            }
        }
        Err(ManifestError::Read { .. }) if !names.contains(manifest::NAME) && v.statement_files.is_some() => {
            // Missing, and the statement covers it: said above.
        }
        Err(ManifestError::Read { .. }) if !names.contains(manifest::NAME) => {
            v.findings.push(Finding::Manifest(format!(
                "{} is missing: this is not a pgdrill drill's report folder, or its manifest was removed",
                manifest::NAME
            )))
        }
        Err(e) => v.findings.push(Finding::Manifest(crate::error::error_chain(&e))),
    }
    if names.contains(crate::outcome::PLAN_FILE) {
        match super::plan::check(dir) {
            Ok(line) => v.sample = Some(line),
            Err(e) => v.findings.push(Finding::Plan { why: crate::error::error_chain(&e) }),
        }
    }
    // Acknowledgements are checked on their own (`super::ack`): each about this drill's record.
    covered.insert(ACKS.to_owned());
    for name in names.iter().filter(|n| !covered.contains(*n)) {
        if name == crate::outcome::history::NAME {
            v.history = true;
        } else {
            v.findings.push(Finding::Uncovered { name: name.clone() });
        }
    }
    Ok(v)
}

fn same_file(a: &Finding, b: &Finding) -> bool {
    match (a, b) {
        (Finding::Changed { name: x, .. } | Finding::Missing { name: x, .. }, Finding::Changed { name: y, .. })
        | (Finding::Changed { name: x, .. } | Finding::Missing { name: x, .. }, Finding::Missing { name: y, .. }) => {
            x == y
        }
        _ => false,
    }
}

/// The names of the entries of `dir` (files, and anything else one could add).
fn folder_names(dir: &Path) -> std::io::Result<BTreeSet<String>> {
    let mut names = BTreeSet::new();
    for entry in std::fs::read_dir(dir)? {
        names.insert(entry?.file_name().to_string_lossy().into_owned());
    }
    Ok(names)
}

fn check_file(dir: &Path, names: &BTreeSet<String>, name: &str, want: &str, signed: bool, out: &mut Vec<Finding>) {
    let path = dir.join(name);
    if !names.contains(name) || !path.is_file() {
        out.push(Finding::Missing { name: name.to_owned(), signed });
        return;
    }
    match manifest::sha256_of(&path) {
        Ok(have) if have.eq_ignore_ascii_case(want) => {}
        Ok(_) => out.push(Finding::Changed { name: name.to_owned(), signed }),
        Err(e) => out.push(Finding::Unreadable { name: name.to_owned(), why: e.to_string() }),
    }
}

/// Checks the SSH signature over the statement, and its key against the allowed signers.
/// Whether the statement's content can be taken as signed.
fn check_signature(pem: &[u8], statement: Option<&[u8]>, trust: &Trust<'_>, v: &mut Verification) -> bool {
    let Some(statement) = statement else {
        let finding = match read_signature(pem, SIGNATURE) {
            Ok(_) => Finding::Missing { name: STATEMENT.into(), signed: true },
            Err(unreadable) => unreadable,
        };
        v.findings.push(finding);
        return false;
    };
    match signature(pem, SIGNATURE, statement, trust) {
        Ok(signed) => {
            v.signed = Some(signed);
            true
        }
        Err(finding) => {
            v.findings.push(finding);
            false
        }
    }
}

/// The armored SSH signature `pem` (the file `name`).
fn read_signature(pem: &[u8], name: &str) -> Result<SshSig, Finding> {
    std::str::from_utf8(pem)
        .map_err(|e| e.to_string())
        .and_then(|t| t.parse::<SshSig>().map_err(|e| e.to_string()))
        .map_err(|why| Finding::Unreadable {
            name: name.to_owned(),
            why: format!("it is not an armored SSH signature ({why})"),
        })
}

/// Checks the SSH signature `pem` (the file `name`) of `statement` in pgdrill's namespace, and
/// its key against the allowed signers: who signed, or what is wrong.
pub(crate) fn signature(pem: &[u8], name: &str, statement: &[u8], trust: &Trust<'_>) -> Result<Signed, Finding> {
    let sig = read_signature(pem, name)?;
    let key = PublicKey::from(sig.public_key().clone());
    let fingerprint = key.fingerprint(HashAlg::Sha256).to_string();
    let algorithm = key.algorithm().to_string();
    if sig.namespace() != NAMESPACE {
        return Err(Finding::SignedForAnotherNamespace { namespace: sig.namespace().to_owned() });
    }
    if key.verify(NAMESPACE, statement, &sig).is_err() {
        return Err(Finding::BadSignature);
    }
    let mut signed = Signed { fingerprint: fingerprint.clone(), algorithm: algorithm.clone(), allowed_by: None };
    if let Some((allowed, file)) = trust.allowed_signers {
        let line = allowed.allow(key.key_data(), trust.identity, NAMESPACE, time::OffsetDateTime::now_utc());
        let line = line.map_err(|refusal| match refusal {
            Refusal::UnknownKey { cert_authorities } => {
                Finding::UnknownKey { fingerprint, algorithm, file: file.to_owned(), cert_authorities }
            }
            Refusal::Identity { identity, principals, line } => {
                Finding::Identity { fingerprint, identity, principals, line }
            }
            Refusal::Namespace { namespaces, line } => Finding::NamespaceNotAllowed { fingerprint, namespaces, line },
            Refusal::Expired { line, why } => Finding::KeyNotValid { fingerprint, line, why },
        })?;
        signed.allowed_by = Some((line.line, line.principals.clone()));
    }
    Ok(signed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evidence::sign::{KeyOrigin, Signer};
    use crate::evidence::statement::{PREDICATE_TYPE, STATEMENT_TYPE, Statement, Subject};
    use crate::secret::Secret;

    fn signer(seed: u8) -> Signer {
        let key = ssh_key::PrivateKey::from(ssh_key::private::Ed25519Keypair::from_seed(&[seed; 32]));
        let text = Secret::new(key.to_openssh(ssh_key::LineEnding::LF).unwrap().as_str());
        Signer::parse(&text, None, KeyOrigin::Env).unwrap()
    }

    fn allowed(seed: u8) -> AllowedSigners {
        let key = ssh_key::PrivateKey::from(ssh_key::private::Ed25519Keypair::from_seed(&[seed; 32]));
        AllowedSigners::parse(&format!("drills@example.com {}\n", key.public_key().to_openssh().unwrap())).unwrap()
    }

    /// A report folder of two files and their manifest, signed by the key of `seed`.
    fn folder(seed: u8) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("report.md"), "PASS").unwrap();
        std::fs::write(dir.path().join("drill.json"), "{}").unwrap();
        manifest::write(dir.path(), &["report.md", "drill.json"]).unwrap();
        let subject = ["report.md", "drill.json", manifest::NAME]
            .iter()
            .map(|name| Subject {
                name: (*name).to_owned(),
                digest: [("sha256".to_owned(), manifest::sha256_of(&dir.path().join(name)).unwrap())].into(),
            })
            .collect();
        let statement = Statement {
            type_: STATEMENT_TYPE.into(),
            subject,
            predicate_type: PREDICATE_TYPE.into(),
            predicate: serde_json::json!({"drill_id": "d-1", "scenario": {"name": "plur"}, "verdict": "pass"}),
        };
        let text = statement::render(&statement);
        std::fs::write(dir.path().join(STATEMENT), &text).unwrap();
        std::fs::write(dir.path().join(SIGNATURE), signer(seed).sign(text.as_bytes()).unwrap()).unwrap();
        dir
    }

    fn check(dir: &Path, signers: Option<&AllowedSigners>) -> Verification {
        let file = Path::new("allowed_signers");
        verify(dir, &Trust { allowed_signers: signers.map(|s| (s, file)), identity: None }).unwrap()
    }

    #[test]
    fn a_signed_folder_verifies_and_each_tampering_is_one_finding() {
        let dir = folder(1);
        let good = check(dir.path(), Some(&allowed(1)));
        assert!(good.passed(), "{:?}", good.findings);
        let signed = good.signed.unwrap();
        assert_eq!(
            (signed.fingerprint.as_str(), signed.allowed_by),
            (signer(1).fingerprint(), Some((1, "drills@example.com".into())))
        );
        assert_eq!((good.statement_files, good.manifest_files), (Some(3), Some(2)));
        assert_eq!(good.drill, Some(("d-1".into(), "plur".into(), "pass".into())));

        let stranger = check(dir.path(), Some(&allowed(2)));
        assert!(
            matches!(&stranger.findings[..], [Finding::UnknownKey { fingerprint, .. }] if fingerprint == signer(1).fingerprint()),
            "{:?}",
            stranger.findings
        );
        assert!(stranger.findings[0].to_string().contains("which is not in the allowed signers `allowed_signers`"));

        std::fs::write(dir.path().join("report.md"), "PASS, honestly").unwrap();
        std::fs::write(dir.path().join("notes.txt"), "fine").unwrap();
        let edited = check(dir.path(), Some(&allowed(1)));
        assert_eq!(
            edited.findings,
            [
                Finding::Changed { name: "report.md".into(), signed: true },
                Finding::Uncovered { name: "notes.txt".into() }
            ]
        );
        assert_eq!(edited.findings[0].to_string(), "report.md was changed after the drill was signed");
        assert!(edited.findings[1].is_warning());
    }

    /// `run --out DIR` keeps the scenario's history in DIR: a strict verification still passes,
    /// and says the history is not evidence; any other file there is a finding.
    #[test]
    fn the_history_beside_a_signed_drill_is_said_and_not_evidence() {
        let dir = folder(1);
        std::fs::write(dir.path().join(crate::outcome::history::NAME), "{}\n").unwrap();
        let strict = check(dir.path(), Some(&allowed(1)));
        assert!(strict.passed() && strict.history, "{:?}", strict.findings);
        std::fs::write(dir.path().join("history.jsonl.bak"), "{}\n").unwrap();
        let other = check(dir.path(), Some(&allowed(1)));
        assert!(!other.passed(), "{:?}", other.findings);
        assert_eq!(other.findings, [Finding::Uncovered { name: "history.jsonl.bak".into() }]);
    }

    #[test]
    fn an_unsigned_folder_fails_against_allowed_signers_and_passes_on_digests_alone() {
        let dir = folder(1);
        std::fs::remove_file(dir.path().join(SIGNATURE)).unwrap();
        std::fs::remove_file(dir.path().join(STATEMENT)).unwrap();
        let trusted = check(dir.path(), Some(&allowed(1)));
        assert_eq!(trusted.findings, [Finding::Unsigned { statement: false }]);
        std::fs::write(dir.path().join("notes.txt"), "fine").unwrap();
        let digests = check(dir.path(), None);
        assert!(digests.passed() && digests.signed.is_none(), "{:?}", digests.findings);
        assert_eq!(digests.findings, [Finding::Uncovered { name: "notes.txt".into() }]);
        std::fs::remove_file(dir.path().join("drill.json")).unwrap();
        let missing = check(dir.path(), None);
        assert!(!missing.passed());
        assert_eq!(
            missing.findings,
            [
                Finding::Missing { name: "drill.json".into(), signed: false },
                Finding::Uncovered { name: "notes.txt".into() }
            ]
        );
    }
}
