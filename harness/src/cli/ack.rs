//! `pgdrill ack DIR --by NAME --note TEXT`: acknowledges a drill (an exception looked into and
//! resolved), as a statement in its folder signed with the drills' key (`evidence::ack`). The
//! drill's verdict and files stay as they are; `pgdrill verify` says who acknowledged it.

use std::path::PathBuf;
use std::process::ExitCode;

use time::OffsetDateTime;

use super::Exit;
use crate::evidence::ack;
use crate::evidence::sign::Signer;

/// What `ack` takes.
#[derive(Debug, clap::Args)]
pub(crate) struct AckArgs {
    /// The drill's report folder.
    #[arg(value_name = "DIR")]
    dir: PathBuf,
    /// Who acknowledges it (a name, an e-mail address).
    #[arg(long, value_name = "NAME")]
    by: String,
    /// What was found and done: the exception's resolution, in a sentence or a ticket's link.
    #[arg(long, value_name = "TEXT")]
    note: String,
    /// Sign it with this OpenSSH private key (or PGDRILL_SIGNING_KEY_FILE, PGDRILL_SIGNING_KEY),
    /// as drills are signed. Unsigned, nothing proves who wrote it.
    #[arg(long, value_name = "FILE")]
    signing_key: Option<PathBuf>,
}

/// Runs `ack`: 0 once written, 1 when it cannot be written or signed, 2 on unusable input.
pub(super) fn run(args: &AckArgs) -> ExitCode {
    if args.by.trim().is_empty() || args.note.trim().is_empty() {
        eprintln!("error: --by and --note say who acknowledges the drill and why: neither may be empty");
        return Exit::Usage.into();
    }
    let signer = match Signer::from_env(args.signing_key.as_deref()) {
        Ok(signer) => signer,
        Err(e) => {
            eprintln!("error: {}: nothing was written", crate::error::error_chain(&e));
            return Exit::Fail.into();
        }
    };
    match ack::write(&args.dir, &args.by, &args.note, OffsetDateTime::now_utc(), signer.as_ref()) {
        Ok((file, record)) => {
            let signed = match &signer {
                Some(signer) => format!("signed by key {}", signer.fingerprint()),
                None => "not signed: nothing proves who wrote it (give --signing-key)".to_owned(),
            };
            outln!(
                "acknowledged drill {} of `{}` (its verdict, {}, stays): {}; {signed}",
                record.drill_id,
                record.scenario.name,
                record.verdict.as_str(),
                file.display()
            );
            Exit::Pass.into()
        }
        Err(e) => {
            eprintln!("error: {}", crate::error::error_chain(&e));
            match e {
                ack::AckError::Read { .. } | ack::AckError::Record { .. } => Exit::Usage.into(),
                _ => Exit::Fail.into(),
            }
        }
    }
}
