//! pgdrill: proves that a PostgreSQL logical backup restores, and that what it restores is the
//! database the application needs.
//!
//! A drill runs its phases in order, one crate-private module each: [`scenario`] (resolve),
//! `source` (fetch, verify), `provision` (the throwaway target, a sandbox), `restore`
//! (preflight, restore), `migrate`, `check` (checks, one file per kind), `app`; [`drill`]
//! sequences them and [`outcome`] is what they leave: the record, its events, the one verdict.
//! [`report`] renders the record, `evidence` seals it. The map (the phases, the layers, every
//! top-level module in one line, how to add a check kind, a source or a target):
//! `harness/ARCHITECTURE.md`; every file in one line: `harness/MODULES.md`.
//!
//! The library API is these modules and nothing else:
//!
//! - [`drill`]: [`drill::run`] runs a drill with [`drill::DrillOptions`];
//! - [`scenario`]: [`scenario::Scenario::load`] loads a scenario file, [`scenario::discover`]
//!   a folder of them, [`scenario::json_schema`] the schema they are read with;
//! - [`outcome`]: [`outcome::DrillRecord`], the record a drill leaves (`drill.json`), its checks
//!   ([`CheckResult`], [`Verdict`], [`outcome::CheckKind`]) and history;
//! - [`report`]: the renderers (Markdown, JUnit, JSON, SVG, metrics, console) and `report merge`;
//! - [`baseline`]: [`baseline::Baseline`], a database's facts a drill compares against, its
//!   relations named by [`QualifiedName`] (as the fingerprint file's tables are);
//! - [`fingerprint`]: the content fingerprint file and its trails;
//! - [`dump`]: reads a pg_dump (format, archive header, plain-text splitter);
//! - [`trials`]: [`trials::Drills`] turns a folder of scenarios into libtest-mimic trials for a
//!   `harness = false` test file;
//! - [`cli`]: the `pgdrill` command ([`cli::Cli`], [`cli::run`]);
//! - [`secret`], [`tls`], [`error`]: secrets that never print, the TLS provider, error chains;
//! - [`QualifiedName`]: a relation's name as baselines and fingerprint files keep it.
//!
//! Every other module is crate-private; no type of theirs is reachable from the API (the crate
//! denies `unnameable_types`). Enums that will grow are `#[non_exhaustive]`, and every public
//! item is documented (`missing_docs`).
#![warn(missing_docs)]

pub mod baseline;
pub mod cli;
pub mod drill;
pub mod dump;
pub mod error;
pub mod fingerprint;
pub mod outcome;
pub mod report;
pub mod scenario;
pub mod secret;
pub mod tls;
pub mod trials;

mod allowed_signers;
mod app;
mod budget;
mod catalog;
mod check;
mod conninfo;
mod deadline;
mod disk;
mod evidence;
mod field;
mod follow;
mod init;
mod journal;
mod kube;
mod listing;
mod migrate;
mod names;
mod notify;
mod objectives;
mod pg;
mod program;
mod provision;
mod restore;
mod session;
mod snapshot;
mod source;
mod sqlstate;
mod store;
mod template;
mod tree;
mod units;

pub use outcome::{CheckResult, Verdict};
pub use pg::QualifiedName;

/// Building blocks pgdrill's own tests and benchmarks drive on their own (a throwaway target,
/// one plain restore into it): not a stable API, and nothing of the phases behind it is
/// reachable from here.
#[doc(hidden)]
pub mod internals;
