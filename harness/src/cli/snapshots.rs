//! `pgdrill snapshots`: list the store's snapshots, remove some.

use std::process::ExitCode;

use clap::Subcommand;
use tabled::builder::Builder;
use tabled::settings::Style;

use super::Exit;
use crate::snapshot::Store;
use crate::units::human_size;

#[derive(Debug, Subcommand)]
pub(crate) enum SnapshotsCommand {
    /// List the snapshots, most recently used first (the default).
    List,
    /// Remove snapshots by id (or a prefix of four characters or more), or all that no drill
    /// is using.
    Remove {
        #[arg(required_unless_present = "all")]
        ids: Vec<String>,
        #[arg(long, conflicts_with = "ids")]
        all: bool,
    },
}

pub(super) async fn run(command: Option<SnapshotsCommand>) -> ExitCode {
    let store = match Store::open() {
        Ok(store) => store,
        Err(e) => {
            eprintln!("error: {e}");
            return Exit::Usage.into();
        }
    };
    match command.unwrap_or(SnapshotsCommand::List) {
        SnapshotsCommand::List => list(&store),
        SnapshotsCommand::Remove { ids, all } => remove(&store, ids, all).await,
    }
}

fn list(store: &Store) -> ExitCode {
    let listed = match store.list() {
        Ok(listed) => listed,
        Err(e) => {
            eprintln!("error: {e}");
            return Exit::Fail.into();
        }
    };
    let total: u64 = listed.iter().map(|l| l.meta.size_bytes).sum();
    outln!(
        "{} snapshot{} in {}: {} of its budget of {}",
        listed.len(),
        if listed.len() == 1 { "" } else { "s" },
        store.dir.display(),
        human_size(total),
        human_size(store.budget)
    );
    if listed.is_empty() {
        return Exit::Pass.into();
    }
    let mut table = Builder::default();
    table.push_record(["id", "scenario", "proved by drill", "made", "last used", "size", "backup sha256", "in use"]);
    let when = |t: time::OffsetDateTime| {
        t.format(&time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]Z")).unwrap_or_default()
    };
    for l in &listed {
        table.push_record([
            l.meta.id.clone(),
            l.meta.scenario.clone(),
            l.meta.drill_id.chars().take(12).collect(),
            when(l.meta.made_at),
            when(l.last_used),
            human_size(l.meta.size_bytes),
            l.meta.key.backup_sha256.chars().take(16).collect(),
            if l.in_use { "yes" } else { "" }.into(),
        ]);
    }
    let mut table = table.build();
    table.with(Style::rounded());
    outln!("{table}");
    Exit::Pass.into()
}

async fn remove(store: &Store, ids: Vec<String>, all: bool) -> ExitCode {
    let ids = if all {
        match store.list() {
            Ok(listed) => listed.into_iter().filter(|l| !l.in_use).map(|l| l.meta.id).collect(),
            Err(e) => {
                eprintln!("error: {e}");
                return Exit::Fail.into();
            }
        }
    } else {
        ids
    };
    let mut failed = false;
    for id in ids {
        match store.remove(&id).await {
            Ok(removed) => outln!("removed snapshot {removed}"),
            Err(e) => {
                eprintln!("error: {e}");
                failed = true;
            }
        }
    }
    Exit::pass_if(!failed).into()
}
