//! pgdrill: proves that a PostgreSQL logical backup restores, and that what it restores is the
//! database the application needs.
//!
//! A drill runs its phases in order, one module each: [`scenario`] (resolve), `source` (fetch,
//! verify), `provision` (the throwaway target, a sandbox), `restore` (preflight, restore),
//! `migrate`, `check` (checks, one file per kind), `app`, [`report`] (reports); [`drill`]
//! sequences them. Helpers they share are leaf modules that import no phase: [`error`],
//! `field`, `units`, `pg`, `names`, `journal`, `outcome`, [`secret`], [`tls`], [`dump`]. The
//! map, and how to add a check kind, a source or a target: `harness/ARCHITECTURE.md`.
//!
//! As a library: [`drill::run`] runs a drill, [`scenario::Scenario::load`] loads a scenario,
//! [`crate::outcome::DrillRecord`] reads a drill's record (`drill.json`), [`baseline::Baseline`] a
//! baseline; [`dump`] reads a pg_dump; [`trials::Drills`] turns a folder of scenarios into
//! tests (libtest-mimic trials) for a `harness = false` test file. The phases themselves are crate-private.

pub mod allowed_signers;
pub mod baseline;
pub mod cli;
pub mod drill;
pub mod dump;
pub mod error;
pub mod evidence;
pub mod report;
pub mod scenario;
pub mod secret;
pub mod tls;
pub mod trials;

mod app;
mod catalog;
mod check;
pub mod conninfo;
pub mod deadline;
pub mod disk;
mod field;
pub mod fingerprint;
mod init;
mod journal;
mod listing;
mod migrate;
mod names;
pub mod notify;
pub mod objectives;
pub mod outcome;
mod pg;
mod program;
mod provision;
mod restore;
mod session;
mod snapshot;
mod source;
mod sqlstate;
mod template;
mod tree;
mod units;

pub use outcome::{CheckResult, Verdict};

/// Building blocks pgdrill's own tests and benchmarks drive on their own (a target, one
/// restore into it): not a stable API.
#[doc(hidden)]
pub mod internals {
    pub mod provision {
        pub use crate::provision::{ProvisionContext, Target, start};
    }
    pub mod restore {
        pub use crate::restore::RestoreError;
        pub mod plain {
            pub use crate::restore::plain::{restore, restore_globals};
        }
        pub mod preflight {
            pub use crate::restore::preflight::create_database;
        }
    }
}
