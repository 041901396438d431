//! `pgdrill report period --from --to`: the period report an auditor samples (`report::period`),
//! over a fleet's report folders (or `s3://` prefix) and its inventory: period.html,
//! period.json and OSCAL Assessment Results, sealed and, with a key, signed.

use std::path::PathBuf;
use std::process::ExitCode;

use time::{Date, OffsetDateTime, Time};

use super::fleet::{FleetInput, read, read_inventory, signers};
use super::period_follow::{self, Against};
use super::{Exit, verify};
use crate::evidence::verify::Trust;
use crate::report::period;

/// What `report period` takes.
#[derive(Debug, clap::Args)]
pub(crate) struct PeriodArgs {
    #[command(flatten)]
    input: FleetInput,
    /// The databases that must be drilled (TOML, `[[database]]` entries, each with its
    /// `cadence`, else its scenario's `[objectives] cadence`).
    #[arg(long, value_name = "FILE")]
    inventory: PathBuf,
    /// The period's first day (`2026-01-01`, from 00:00 UTC) or time (RFC 3339).
    #[arg(long, value_name = "DATE", value_parser = parse_from)]
    from: OffsetDateTime,
    /// The period's last day (`2026-06-30`, until its end) or the time it ends (RFC 3339).
    #[arg(long, value_name = "DATE", value_parser = parse_to)]
    to: OffsetDateTime,
    /// The folder to write period.html, period.json and assessment-results.json into.
    #[arg(short, long, value_name = "DIR")]
    out: PathBuf,
    /// Without --allowed-signers, count evidence no one vouches for (its files must still match
    /// their digests). Without either, every drill's evidence is an exception: not checked.
    #[arg(long, conflicts_with = "allowed_signers")]
    unsigned_ok: bool,
    /// The state folder of a follower of a listed database (or a folder of them; repeat for
    /// more): its segments proven in the period, their proof lag, and whether its signed
    /// receipts hold.
    #[arg(long, value_name = "DIR")]
    follow_state: Vec<PathBuf>,
    /// Sign the report with this OpenSSH private key (or PGDRILL_SIGNING_KEY_FILE,
    /// PGDRILL_SIGNING_KEY), as a fleet summary is signed.
    #[arg(long, value_name = "FILE")]
    signing_key: Option<PathBuf>,
}

fn parse_day(text: &str) -> Result<Date, time::error::Parse> {
    Date::parse(text, time::macros::format_description!("[year]-[month]-[day]"))
}

fn parse_from(text: &str) -> Result<OffsetDateTime, time::error::Parse> {
    match parse_day(text) {
        Ok(day) => Ok(day.with_time(Time::MIDNIGHT).assume_utc()),
        Err(_) => super::fleet::parse_now(text),
    }
}

fn parse_to(text: &str) -> Result<OffsetDateTime, time::error::Parse> {
    match parse_day(text) {
        Ok(day) => Ok(day.with_time(Time::MIDNIGHT).assume_utc() + time::Duration::DAY),
        Err(_) => super::fleet::parse_now(text),
    }
}

/// Runs `report period`: 0 once written (whatever it found: `report audit` is the gate), 1 when
/// it cannot be signed, 2 on unusable input.
pub(super) async fn run(args: &PeriodArgs) -> ExitCode {
    if args.from >= args.to {
        eprintln!("error: the period from --from to --to is empty: --to must come after --from");
        return Exit::Usage.into();
    }
    let signing = verify::signing(args.signing_key.as_deref());
    if matches!(signing, Some(crate::evidence::sign::Signing::Broken(_))) {
        return Exit::Fail.into();
    }
    let inventory = match read_inventory(&args.inventory) {
        Ok(inventory) => inventory,
        Err(exit) => return exit.into(),
    };
    let signers = match signers(&args.input) {
        Ok(signers) => signers,
        Err(exit) => return exit.into(),
    };
    let fleet = match read(&args.input, signers.as_ref(), Some(&inventory), args.unsigned_ok, None).await {
        Ok(fleet) => fleet,
        Err(exit) => return exit.into(),
    };
    let trust = Trust { allowed_signers: signers.as_ref().zip(args.input.allowed_signers.as_deref()), identity: None };
    let against = Against { from: args.from, to: args.to, trust, unsigned_ok: args.unsigned_ok };
    let followed = match period_follow::read(&args.follow_state, &against) {
        Ok(followed) => followed,
        Err(exit) => return exit.into(),
    };
    let span = period::Span { from: args.from, to: args.to, followed };
    let judged = period::judge(&fleet, span, signers.as_ref());
    let signer = signing.as_ref().and_then(crate::evidence::sign::Signing::signer);
    match period::write(&judged, &args.out, signer) {
        Ok(files) => files.iter().for_each(|f| outln!("wrote {}", f.display())),
        Err(e) => {
            eprintln!("error: {}", crate::secret::error_text(&e));
            return Exit::Usage.into();
        }
    }
    for (db, e) in judged.exceptions() {
        let how = if e.resolved() { "resolved" } else { "unresolved" };
        outln!("exception ({how}): `{}`: {}", db.name, e.what);
    }
    let (all, resolved) = judged.exception_counts();
    outln!(
        "{} databases from {} to {}: {all} exceptions, {resolved} resolved{}",
        judged.databases.len(),
        args.from.date(),
        (args.to - time::Duration::NANOSECOND).date(),
        if signers.is_none() { " (no allowed signers: no acknowledgement was checked, none resolves)" } else { "" }
    );
    Exit::Pass.into()
}
