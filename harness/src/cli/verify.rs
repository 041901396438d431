//! `pgdrill verify DIR` (also `pgdrill report verify DIR`): what an auditor runs on a drill's
//! report folder, and the signing key `run` and `gate` take.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::Exit;
use crate::allowed_signers::{AllowedSigners, ParseError};
use crate::evidence::sign::{NAMESPACE, Signing};
use crate::evidence::statement::{SIGNATURE, STATEMENT};
use crate::evidence::verify::{Finding, Trust, Verification, verify};

/// What `verify` takes.
#[derive(Debug, clap::Args)]
pub(crate) struct VerifyArgs {
    /// A drill's report folder.
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
    let verification = match verify(&args.dir, &trust) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("error: cannot read the report folder `{}`: {e}", args.dir.display());
            return Exit::Usage.into();
        }
    };
    say(&args.dir, &verification, allowed.is_some());
    Exit::pass_if(verification.passed()).into()
}

fn say(dir: &Path, v: &Verification, trusted: bool) {
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

/// The signing `run` and `gate` were asked for; says at once when its key cannot be used (the
/// drills still run, their reports unsigned and saying why).
pub(super) fn signing(flag: Option<&Path>) -> Option<Signing> {
    let signing = Signing::from_env(flag);
    if let Some(Signing::Broken(why)) = &signing {
        eprintln!("error: {why}: the drills run, and their reports are not signed");
    }
    signing
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
