//! `pgdrill report fleet` (the fleet view: `fleet.html` and `fleet-status.json`) and
//! `pgdrill report audit` (the evidence gate: every database an inventory lists must have a
//! passing, recent drill whose evidence holds; what is missing on stdout, in `gaps.md` and
//! `gaps.json`). Both read drill folders, local or `s3://`, as `report merge` does.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use time::OffsetDateTime;

use super::{Exit, merge, verify};
use crate::allowed_signers::AllowedSigners;
use crate::report::fleet_view::{self, By, FleetOptions, Inventory, inventory};
use crate::scenario::Scenario;
use crate::secret::Redactor;

/// What both commands read.
#[derive(Debug, clap::Args)]
pub(crate) struct FleetInput {
    /// Report folders (searched for drill folders), or `s3://bucket/prefix/` of a fleet's
    /// reports (the endpoint and keys from the AWS_* variables).
    #[arg(required = true)]
    pub(super) dirs: Vec<PathBuf>,
    /// How old a database's last passing drill may be (`92d`, `36h`, `2w`) when the inventory
    /// gives it none [default: the RPO its drill record states].
    #[arg(long, value_name = "AGE", value_parser = inventory::parse_age)]
    pub(super) max_age: Option<Duration>,
    /// Verify each drill's evidence as `pgdrill verify --allowed-signers` does.
    #[arg(long, value_name = "FILE")]
    pub(super) allowed_signers: Option<PathBuf>,
    /// Judge the fleet as of this time (RFC 3339), not now: for tests.
    #[arg(long, value_name = "TIME", hide = true, value_parser = parse_now)]
    pub(super) now: Option<OffsetDateTime>,
}

/// What `report fleet` takes.
#[derive(Debug, clap::Args)]
pub(crate) struct FleetArgs {
    #[command(flatten)]
    input: FleetInput,
    /// The folder to write fleet.html and fleet-status.json into.
    #[arg(short, long, value_name = "DIR")]
    out: PathBuf,
    /// The databases that must be drilled (TOML, `[[database]]` entries): each is shown, a
    /// database with no drill as never verified.
    #[arg(long, value_name = "FILE")]
    inventory: Option<PathBuf>,
    #[command(flatten)]
    follow: super::fleet_follow::FollowInput,
}

/// What `report audit` takes.
#[derive(Debug, clap::Args)]
pub(crate) struct AuditArgs {
    #[command(flatten)]
    input: FleetInput,
    /// The databases that must be drilled (TOML, `[[database]]` entries).
    #[arg(long, value_name = "FILE")]
    inventory: PathBuf,
    /// Also write gaps.md, gaps.json, fleet.html and fleet-status.json into this folder.
    #[arg(short, long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Without --allowed-signers, pass evidence no one vouches for (its files must still match
    /// their digests). Without either, the gate does not pass: signatures were not checked.
    #[arg(long, conflicts_with = "allowed_signers")]
    unsigned_ok: bool,
    /// With --follow-state, a follower of a listed database that is not following, faulted or
    /// behind is a gap of that database.
    #[command(flatten)]
    follow: super::fleet_follow::FollowInput,
}

pub(super) fn parse_now(text: &str) -> Result<OffsetDateTime, time::error::Parse> {
    OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
}

/// Runs `report fleet`: exits 0 once the page is written (whatever the fleet's state), 2 when
/// the input is unusable.
pub(super) async fn run_view(args: &FleetArgs) -> ExitCode {
    let inventory = match args.inventory.as_deref().map(read_inventory).transpose() {
        Ok(inventory) => inventory,
        Err(exit) => return exit.into(),
    };
    let follow = match args.follow.read(args.input.now) {
        Ok(follow) => follow,
        Err(exit) => return exit.into(),
    };
    let signers = match signers(&args.input) {
        Ok(signers) => signers,
        Err(exit) => return exit.into(),
    };
    let fleet = match read(&args.input, signers.as_ref(), inventory.as_ref(), false, follow).await {
        Ok(fleet) => fleet,
        Err(exit) => return exit.into(),
    };
    match fleet_view::write(&fleet, &args.out, false) {
        Ok(written) => {
            say_states(&fleet);
            for file in &written.files {
                outln!("wrote {}", file.display());
            }
            Exit::Pass.into()
        }
        Err(e) => {
            eprintln!("error: {}", crate::secret::error_text(&e));
            Exit::Usage.into()
        }
    }
}

/// Runs `report audit`: exits 0 when every database the inventory lists is proven, 1 when any
/// has a gap, 2 when the input is unusable.
pub(super) async fn run_audit(args: &AuditArgs) -> ExitCode {
    let inventory = match read_inventory(&args.inventory) {
        Ok(inventory) => inventory,
        Err(exit) => return exit.into(),
    };
    let follow = match args.follow.read(args.input.now) {
        Ok(follow) => follow,
        Err(exit) => return exit.into(),
    };
    let signers = match signers(&args.input) {
        Ok(signers) => signers,
        Err(exit) => return exit.into(),
    };
    let fleet = match read(&args.input, signers.as_ref(), Some(&inventory), args.unsigned_ok, follow).await {
        Ok(fleet) => fleet,
        Err(exit) => return exit.into(),
    };
    if let Some(out) = &args.out {
        match fleet_view::write(&fleet, out, true) {
            Ok(written) => written.files.iter().for_each(|f| outln!("wrote {}", f.display())),
            Err(e) => {
                eprintln!("error: {}", crate::secret::error_text(&e));
                return Exit::Usage.into();
            }
        }
    }
    let gaps = fleet_view::gap_lines(&fleet);
    for gap in &gaps {
        outln!("gap: {gap}");
    }
    let (listed, file) = (inventory.0.databases.len(), inventory.0.path.display());
    match gaps.len() {
        0 => {
            outln!("proven: each of the {listed} databases in {file} has a passing, recent drill whose evidence holds")
        }
        n => outln!("not proven: {n} gap{} in the {listed} databases of {file}", if n == 1 { "" } else { "s" }),
    }
    Exit::pass_if(gaps.is_empty()).into()
}

/// The inventory, its scenario files' names read with the scenario parser.
pub(super) fn read_inventory(path: &Path) -> Result<(Inventory, Vec<Option<String>>), Exit> {
    let inventory = inventory::read(path).map_err(|e| {
        eprintln!("error: {}", crate::secret::error_text(&e));
        Exit::Usage
    })?;
    let mut names = Vec::new();
    for wanted in &inventory.databases {
        names.push(match &wanted.by {
            By::ScenarioFile(file) => match Scenario::load(file) {
                Ok(scenario) => Some(scenario.name),
                Err(e) => {
                    eprintln!(
                        "error: {}: the scenario file of `{}`: {}",
                        wanted.at,
                        wanted.name,
                        crate::secret::error_text(&e)
                    );
                    return Err(Exit::Usage);
                }
            },
            _ => None,
        });
    }
    Ok((inventory, names))
}

/// The allowed signers `--allowed-signers` names, read.
pub(super) fn signers(input: &FleetInput) -> Result<Option<AllowedSigners>, Exit> {
    let Some(path) = &input.allowed_signers else { return Ok(None) };
    let signers = verify::read_signers(path).map_err(|why| {
        eprintln!("error: cannot read the allowed signers `{}`: {why}", path.display());
        Exit::Usage
    })?;
    Ok(Some(signers))
}

/// Reads the fleet: the inputs (an `s3://` prefix downloaded first), judged against `signers`.
pub(super) async fn read(
    input: &FleetInput,
    signers: Option<&AllowedSigners>,
    inventory: Option<&(Inventory, Vec<Option<String>>)>,
    unsigned_ok: bool,
    follow: Option<(Vec<fleet_view::Follower>, fleet_view::Bounds)>,
) -> Result<fleet_view::Fleet, Exit> {
    let redactor = Redactor::new();
    let mut kept = Vec::new();
    let mut inputs = Vec::new();
    for dir in &input.dirs {
        let read = merge::input(dir, &redactor, &mut kept).await.map_err(|e| {
            eprintln!("error: cannot read {}: {}", dir.display(), crate::secret::error_text(&e));
            Exit::Usage
        })?;
        inputs.push(read);
    }
    let options = FleetOptions {
        allowed_signers: signers.zip(input.allowed_signers.as_deref()),
        max_age: input.max_age,
        inventory: inventory.map(|(i, names)| (i, names.clone())),
        unsigned_ok,
        now: input.now.unwrap_or_else(OffsetDateTime::now_utc),
        follow,
    };
    fleet_view::read(&inputs, &options).map_err(|e| {
        eprintln!("error: {}", crate::secret::error_text(&e));
        Exit::Usage
    })
}

fn say_states(fleet: &fleet_view::Fleet) {
    for subject in &fleet.subjects {
        let last = subject.last().map_or("no drill".to_owned(), |d| format!("last drill {} in {}", d.verdict, d.shown));
        outln!("{}: {} ({last})", subject.name, subject.state.as_str());
        for follower in &subject.followers {
            let bounds = fleet.follow.unwrap_or(super::fleet_follow::BOUNDS);
            let (standing, says) = follower.judge(&bounds);
            outln!("{}: follower `{}` {}: {says}", subject.name, follower.state, standing.as_str());
        }
    }
    let counts: Vec<String> = fleet_view::State::ALL
        .iter()
        .map(|&state| (fleet.count(state), state))
        .filter(|(count, _)| *count > 0)
        .map(|(count, state)| format!("{count} {}", state.as_str()))
        .collect();
    let databases = fleet.subjects.len();
    outln!("{databases} {}: {}", if databases == 1 { "database" } else { "databases" }, counts.join(", "));
}
