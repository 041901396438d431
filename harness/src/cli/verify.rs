//! `pgdrill verify PATH` (also `pgdrill report verify PATH`): what an auditor runs on a drill's
//! report folder or a follower's receipts, and the signing key `run`, `gate` and `follow` take.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::Exit;
use crate::allowed_signers::{AllowedSigners, ParseError};
use crate::evidence::ack::{self, Ack};
use crate::evidence::receipts::{self, Found, Verified};
use crate::evidence::sign::{NAMESPACE, Signer, Signing};
use crate::evidence::statement::{SIGNATURE, STATEMENT};
use crate::evidence::verify::{Finding, Signed, Trust, Verification, verify};

/// What `verify` takes.
#[derive(Debug, clap::Args)]
pub(crate) struct VerifyArgs {
    /// A drill's report folder; or a follower's receipts: a receipt
    /// (STATE/receipts/receipt-*.intoto.json), their folder, or the state folder.
    #[arg(value_name = "PATH")]
    dir: PathBuf,
    /// OpenSSH allowed signers (`principals [namespaces="..."] keytype base64-key`, as for
    /// `ssh-keygen -Y verify -f`): the keys trusted to sign drill evidence. Without it only the
    /// files' digests are checked, which proves nothing about who wrote them.
    #[arg(long, value_name = "FILE")]
    allowed_signers: Option<PathBuf>,
    /// The principal the signer must be in the allowed signers (`ssh-keygen -Y verify -I`).
    #[arg(long, value_name = "NAME", requires = "allowed_signers")]
    identity: Option<String>,
}

/// Why the allowed signers cannot be read.
#[derive(Debug, thiserror::Error)]
pub(super) enum SignersError {
    /// The file cannot be read.
    #[error(transparent)]
    Read {
        #[from]
        source: std::io::Error,
    },
    /// A line of it is not an allowed signer.
    #[error(transparent)]
    Parse {
        #[from]
        source: ParseError,
    },
}

pub(super) fn read_signers(path: &Path) -> Result<AllowedSigners, SignersError> {
    Ok(AllowedSigners::parse(&std::fs::read_to_string(path)?)?)
}

/// Verifies a report folder: exits 0 when everything holds, 1 when anything does not (each
/// finding said), 2 when the folder or the allowed signers cannot be read.
pub(super) fn run(args: &VerifyArgs) -> ExitCode {
    let allowed = match &args.allowed_signers {
        None => None,
        Some(path) => match read_signers(path) {
            Ok(signers) => Some((signers, path.as_path())),
            Err(why) => {
                eprintln!("error: cannot read the allowed signers `{}`: {why}", path.display());
                return Exit::Usage.into();
            }
        },
    };
    let trust = Trust { allowed_signers: allowed.as_ref().map(|(s, p)| (s, *p)), identity: args.identity.as_deref() };
    // Not a follower's receipts (nor readable): a drill's report folder, which says why not.
    if let Ok(Some(found)) = receipts::find(&args.dir) {
        return verify_receipts(&args.dir, &found, &trust);
    }
    let mut verification = match verify(&args.dir, &trust) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("error: cannot read the report folder `{}`: {e}", args.dir.display());
            return Exit::Usage.into();
        }
    };
    // The drill's acknowledgements, each about its record (`pgdrill ack`).
    let (acks, found) = ack::verify_all(&args.dir, &trust);
    verification.findings.extend(found);
    say(&args.dir, &verification, &acks, allowed.is_some());
    Exit::pass_if(verification.passed()).into()
}

fn say(dir: &Path, v: &Verification, acks: &[Ack], trusted: bool) {
    for finding in &v.findings {
        let kind = if finding.is_warning() { "warning" } else { "error" };
        eprintln!("{kind}: {finding}");
    }
    let about = match (&v.drill, &v.fleet) {
        (Some((id, scenario, verdict)), _) => format!(": drill {id} of scenario `{scenario}`, verdict {verdict}"),
        (None, Some((drills, verdict))) => {
            format!(": a fleet summary of {drills} drill{}, verdict {verdict}", if *drills == 1 { "" } else { "s" })
        }
        (None, None) => String::new(),
    };
    let status = if v.passed() { "ok" } else { "note" };
    match (&v.signed, v.statement_files) {
        (Some(signed), Some(files)) => {
            if v.passed() {
                outln!("ok: the {files} files {STATEMENT} covers in {} are as signed{about}", dir.display());
            }
            match &signed.allowed_by {
                Some((line, principals)) => outln!(
                    "{status}: {STATEMENT} is signed by key {} ({}), allowed for `{principals}` (allowed signers line {line})",
                    signed.fingerprint,
                    signed.algorithm
                ),
                None => outln!(
                    "note: {STATEMENT} is signed by key {} ({}), which nothing here vouches for: pass --allowed-signers to prove whose it is",
                    signed.fingerprint,
                    signed.algorithm
                ),
            }
        }
        (None, _) if !trusted && !v.findings.iter().any(|f| matches!(f, Finding::BadSignature)) => {
            if let (Some(files), true) = (v.manifest_files, v.passed()) {
                outln!("ok: {files} files in {} match {}", dir.display(), crate::evidence::manifest::NAME);
            }
            outln!(
                "note: the report is not signed ({SIGNATURE}), so nothing proves who wrote it: a digest anyone can recompute shows only that the files match each other"
            );
        }
        _ => {}
    }
    if let Some(sample) = &v.sample {
        outln!("{status}: {sample}");
    }
    for ack in acks {
        let signed = match &ack.signed {
            Some(signed) => format!("signed by key {}", signed.fingerprint),
            None => "not signed".to_owned(),
        };
        outln!("acknowledged: {} by {} at {} ({signed}): {}", ack.file, ack.by, ack.at, ack.note);
    }
    if v.history {
        outln!(
            "note: {} in the folder is the scenario's history of drills, which each drill appends to: it is not evidence of this one, and not verified",
            crate::outcome::history::NAME
        );
    }
    if !v.passed() {
        let failing = v.findings.iter().filter(|f| v.strict || !f.is_warning()).count();
        eprintln!(
            "FAIL: {} is not proven evidence ({failing} finding{})",
            dir.display(),
            if failing == 1 { "" } else { "s" }
        );
    }
}

/// Verifies a follower's receipts: exits 0 when each holds, 1 when any does not (each finding
/// said), 2 when the ledger beside them cannot be read.
fn verify_receipts(path: &Path, found: &Found, trust: &Trust<'_>) -> ExitCode {
    let verified = match receipts::verify(found, trust) {
        Ok(v) => v,
        Err(e) => {
            let ledger = found.ledger.as_deref().unwrap_or(path);
            eprintln!("error: cannot read the ledger `{}`: {e}", ledger.display());
            return Exit::Usage.into();
        }
    };
    say_receipts(path, found, &verified);
    Exit::pass_if(verified.passed()).into()
}

fn say_receipts(path: &Path, found: &Found, v: &Verified) {
    for finding in &v.findings {
        eprintln!("error: {finding}");
    }
    let failed = |name: &str| v.findings.iter().any(|f| f.receipt() == Some(name));
    let (mut unvouched, mut unsigned) = (None, 0);
    for checked in v.receipts.iter().filter(|c| !failed(&c.name)) {
        let Some(p) = &checked.predicate else { continue };
        let segments = match (p.segments, &p.first_segment, &p.last_segment) {
            (1, Some(one), _) => format!("1 segment, {}", one.segment),
            (n, Some(first), Some(last)) => format!("{n} segments, {} to {}", first.segment, last.segment),
            _ => "no segment".into(),
        };
        let against = if found.ledger.is_some() { "as the ledger holds them" } else { "the ledger not checked" };
        let signed = match &checked.signed {
            Some(Signed { fingerprint, allowed_by: Some((line, principals)), .. }) => {
                format!("signed by key {fingerprint}, allowed for `{principals}` (allowed signers line {line})")
            }
            Some(Signed { fingerprint, .. }) => {
                unvouched = Some(fingerprint.clone());
                format!("signed by key {fingerprint}")
            }
            None => {
                unsigned += 1;
                "not signed".into()
            }
        };
        outln!(
            "ok: {}: ledger {} of `{}` ({segments}; proof lag at most {} s), {against}; {signed}",
            checked.name,
            receipts::lines(p.first_seq, p.last_seq),
            p.scenario,
            p.proof_lag_max_seconds
        );
    }
    let last = v.receipts.iter().filter_map(|c| c.predicate.as_ref()).map(|p| p.last_seq).max();
    if let (Some(last), Some(_), true) = (last, &found.folder, v.passed()) {
        let n = v.receipts.len();
        outln!(
            "ok: {n} receipt{} in {} cover {} lines 1-{last}, each line once",
            if n == 1 { "" } else { "s" },
            path.display(),
            receipts::LEDGER
        );
    }
    if found.ledger.is_none() {
        outln!("note: no {} beside the receipts: the lines they cover were not checked", receipts::LEDGER);
    }
    if let Some((first, last)) = v.after_last {
        let (after, come) = (receipts::lines(first, last), if first == last { "comes" } else { "come" });
        outln!("note: {} {after} {come} after the last receipt: no receipt covers them yet", receipts::LEDGER);
    }
    if let Some(key) = unvouched {
        outln!(
            "note: the receipts are signed by key {key}, which nothing here vouches for: pass --allowed-signers to prove whose it is"
        );
    }
    if unsigned > 0 {
        outln!(
            "note: {unsigned} receipt{} not signed ({}), so nothing proves who wrote {}",
            if unsigned == 1 { " is" } else { "s are" },
            receipts::signature_name("receipt-….intoto.json"),
            if unsigned == 1 { "it" } else { "them" }
        );
    }
    if !v.passed() {
        let n = v.findings.len();
        eprintln!("FAIL: {} is not proven evidence ({n} finding{})", path.display(), if n == 1 { "" } else { "s" });
    }
}

/// The signing `run` and `gate` were asked for; says at once when its key cannot be used (the
/// drills still run, their reports unsigned and saying why).
pub(super) fn signing(flag: Option<&Path>) -> Option<Signing> {
    let signing = Signing::from_env(flag);
    if let Some(Signing::Broken(why)) = &signing {
        eprintln!("error: {why}: the drills run, and their reports are not signed");
    }
    signing
}

/// The key `follow` signs its receipts and its report with, as both want it; `None` (said) when
/// the key it names cannot be used: a follower runs for weeks, and does not start to write
/// receipts unsigned for want of a key it was given.
pub(super) fn follow_signing(flag: Option<&Path>) -> Option<(Option<Signer>, Option<Signing>)> {
    match Signing::from_env(flag) {
        None => Some((None, None)),
        Some(Signing::Key(signer)) => Some((Some((*signer).clone()), Some(Signing::Key(signer)))),
        Some(Signing::Broken(why)) => {
            eprintln!("error: {why}: the follower does not start (its receipts would not be signed)");
            None
        }
    }
}

/// How `run` ends when its signing key could not be used: as for an unusable command line.
pub(super) fn exit_for(signing: Option<&Signing>, worst: Exit) -> Exit {
    match signing {
        Some(Signing::Broken(why)) => {
            eprintln!("error: the reports are not signed: {why}");
            worst.max(Exit::Usage)
        }
        _ => worst,
    }
}

/// The line `run` prints about a signed drill's evidence.
pub(super) fn signed_line(paths: &crate::report::ReportPaths, record: &crate::outcome::DrillRecord) -> Option<String> {
    let evidence = paths.evidence.as_ref()?;
    let key = record.signature.as_ref()?.signed_by.as_deref()?;
    Some(format!("  {} (signed by {key}, namespace {NAMESPACE})", evidence.display()))
}
