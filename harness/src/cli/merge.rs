//! `pgdrill report merge`: the drills of folders and object store prefixes merged into one
//! folder (or prefix), each drill's evidence verified against allowed signers when given, the
//! merged folder signed when a key is; exits 0 when every drill that counts passed and its
//! evidence holds, 1 when any did not, 2 when there is nothing to merge or the input is unusable.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::{Exit, verify};
use crate::report::merge::{Input, MergeOptions, Merged, merge_inputs};
use crate::secret::Redactor;
use crate::store::{self, Bucket};

/// What `report merge` takes.
#[derive(Debug, clap::Args)]
pub(crate) struct MergeArgs {
    /// Report folders (searched for drill folders), or `s3://bucket/prefix/` of a fleet's
    /// reports (the endpoint and keys from the AWS_* variables).
    #[arg(required = true)]
    dirs: Vec<PathBuf>,
    /// The folder to write junit.xml, summary.md and fleet.json into, or an `s3://` prefix to
    /// upload them to.
    #[arg(short, long, value_name = "DIR")]
    output: PathBuf,
    /// Verify each drill's evidence as `pgdrill verify --allowed-signers` does: a drill whose
    /// evidence is missing, unsigned or does not verify fails the merge, whatever its verdict.
    #[arg(long, value_name = "FILE")]
    allowed_signers: Option<PathBuf>,
    /// Count only each scenario's newest complete drill (a drill retried after a crash leaves
    /// two folders of one scenario).
    #[arg(long)]
    newest: bool,
    /// Sign the merged folder with this OpenSSH private key (else $PGDRILL_SIGNING_KEY_FILE, or
    /// the key's text in $PGDRILL_SIGNING_KEY), for `pgdrill verify` of the merged folder.
    #[arg(long, value_name = "FILE")]
    signing_key: Option<PathBuf>,
}

/// Why the merge's input or output is unusable.
#[derive(Debug, thiserror::Error)]
pub(super) enum StoreIo {
    #[error(transparent)]
    Url(#[from] store::S3UrlError),
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error("cannot make a local folder")]
    Local(#[source] std::io::Error),
}

/// Runs `report merge`.
pub(super) async fn run(args: &MergeArgs) -> ExitCode {
    let signers = match &args.allowed_signers {
        None => None,
        Some(path) => match verify::read_signers(path) {
            Ok(signers) => Some(signers),
            Err(why) => {
                eprintln!("error: cannot read the allowed signers `{}`: {why}", path.display());
                return Exit::Usage.into();
            }
        },
    };
    let signing = verify::signing(args.signing_key.as_deref());
    let redactor = Redactor::new();
    let mut kept = Vec::new();
    let mut inputs = Vec::new();
    for dir in &args.dirs {
        match input(dir, &redactor, &mut kept).await {
            Ok(input) => inputs.push(input),
            Err(e) => {
                eprintln!("error: cannot read {}: {}", dir.display(), crate::secret::error_text(&e));
                return Exit::Usage.into();
            }
        }
    }
    let options = MergeOptions {
        allowed_signers: signers.as_ref().zip(args.allowed_signers.as_deref()),
        newest: args.newest,
        signer: signing.as_ref().and_then(crate::evidence::sign::Signing::signer),
    };
    let exit = write(&inputs, &args.output, &options, &redactor).await.unwrap_or_else(|exit| exit);
    verify::exit_for(signing.as_ref(), exit).into()
}

/// The folder `dir` names: itself, or an `s3://` prefix downloaded into a temporary folder
/// (kept in `kept` until the merge is done).
pub(super) async fn input(
    dir: &Path,
    redactor: &Redactor,
    kept: &mut Vec<tempfile::TempDir>,
) -> Result<Input, StoreIo> {
    let text = dir.to_string_lossy().into_owned();
    if !store::is_url(&text) {
        return Ok(Input { local: dir.to_owned(), shown: text });
    }
    let (bucket, prefix) = store::parse_url(&text)?;
    let bucket = Bucket::from_env(&bucket, redactor)?;
    let local = tempfile::Builder::new().prefix("pgdrill-merge-").tempdir().map_err(StoreIo::Local)?;
    let copied = bucket.download_prefix(&prefix, local.path()).await?;
    outln!("read {copied} objects from {text}");
    let input = Input { local: local.path().to_owned(), shown: bucket.url(prefix.trim_matches('/')) };
    kept.push(local);
    Ok(input)
}

/// Merges into `output` (a folder, or an `s3://` prefix the merged folder is uploaded to) and
/// says how it came out.
async fn write(inputs: &[Input], output: &Path, options: &MergeOptions<'_>, redactor: &Redactor) -> Result<Exit, Exit> {
    let text = output.to_string_lossy().into_owned();
    let remote = store::is_url(&text);
    let staged = match remote {
        true => Some(tempfile::Builder::new().prefix("pgdrill-merged-").tempdir().map_err(|e| {
            eprintln!("error: cannot make a local folder for the merged reports: {e}");
            Exit::Fail
        })?),
        false => None,
    };
    let folder = staged.as_ref().map_or(output, |s| s.path());
    let merged = merge_inputs(inputs, folder, options).map_err(|e| {
        eprintln!("error: {}", crate::secret::error_text(&e));
        Exit::Usage
    })?;
    say(&merged);
    if remote {
        let uploaded = upload(folder, &text, redactor).await;
        match uploaded {
            Ok(files) => outln!("uploaded the merged folder to {text} ({files} files)"),
            Err(e) => {
                let kept = staged.map(tempfile::TempDir::keep);
                eprintln!(
                    "error: cannot upload the merged folder to {text}: {}; it is kept at {}",
                    crate::secret::error_text(&e),
                    kept.map(|k| k.display().to_string()).unwrap_or_default()
                );
                return Err(Exit::Fail);
            }
        }
    }
    Ok(Exit::pass_if(merged.passed_all()))
}

async fn upload(folder: &Path, url: &str, redactor: &Redactor) -> Result<usize, StoreIo> {
    let (bucket, prefix) = store::parse_url(url)?;
    let bucket = Bucket::from_env(&bucket, redactor)?;
    Ok(bucket.upload_folder(folder, prefix.trim_matches('/'), crate::evidence::statement::SIGNATURE).await?)
}

fn say(merged: &Merged) {
    for note in &merged.notes {
        outln!("note: {note}");
    }
    for failing in &merged.failing {
        eprintln!("error: {failing}");
    }
    outln!(
        "merged {} drill{} ({} passed, the evidence of {} holding) into {}, {} and {}",
        merged.drills,
        if merged.drills == 1 { "" } else { "s" },
        merged.passed,
        merged.verified,
        merged.junit.display(),
        merged.markdown.display(),
        merged.fleet.display()
    );
    if let Some(statement) = &merged.evidence {
        outln!("  {} (signed: `pgdrill verify` of the merged folder proves it)", statement.display());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::{DrillRecord, DrillVerdict, RunnerInfo, ScenarioInfo};

    fn drill_json(dir: &Path, name: &str, verdict: DrillVerdict) {
        let info = ScenarioInfo { name: name.into(), ..ScenarioInfo::default() };
        let mut record = DrillRecord::new(name.into(), info, RunnerInfo::default(), time::OffsetDateTime::UNIX_EPOCH);
        record.verdict = verdict;
        let folder = dir.join(name);
        std::fs::create_dir_all(&folder).unwrap();
        std::fs::write(folder.join("drill.json"), serde_json::to_string(&record).unwrap()).unwrap();
    }

    fn args(dirs: &[&Path], output: &Path) -> MergeArgs {
        MergeArgs {
            dirs: dirs.iter().map(|d| d.to_path_buf()).collect(),
            output: output.to_owned(),
            allowed_signers: None,
            newest: false,
            signing_key: None,
        }
    }

    #[tokio::test]
    async fn merging_reports_exits_with_whether_every_drill_passed() {
        let dir = tempfile::tempdir().unwrap();
        let (drills, out) = (dir.path().join("drills"), dir.path().join("merged"));
        assert_eq!(run(&args(&[&drills], &out)).await, ExitCode::from(2), "nothing to merge");
        drill_json(&drills, "orders", DrillVerdict::Pass);
        assert_eq!(run(&args(&[&drills], &out)).await, ExitCode::SUCCESS);
        assert!(out.join("junit.xml").is_file() && out.join("fleet.json").is_file());
        drill_json(&drills, "billing", DrillVerdict::Fail);
        assert_eq!(run(&args(&[&drills], &out)).await, ExitCode::from(1));
        // Against allowed signers, a drill with no evidence fails the merge, and an unreadable
        // allowed signers file is unusable input.
        tokio::fs::remove_dir_all(drills.join("billing")).await.unwrap();
        let signers = dir.path().join("allowed_signers");
        std::fs::write(&signers, "").unwrap();
        let trusted = MergeArgs { allowed_signers: Some(signers.clone()), ..args(&[&drills], &out) };
        assert_eq!(run(&trusted).await, ExitCode::from(1));
        let fleet: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("fleet.json")).unwrap()).unwrap();
        assert_eq!(fleet["drills"][0]["evidence"], "missing", "{fleet}");
        let unreadable = MergeArgs { allowed_signers: Some(dir.path().join("none")), ..args(&[&drills], &out) };
        assert_eq!(run(&unreadable).await, ExitCode::from(2));
    }
}
