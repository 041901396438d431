//! pgdrill: proves that a PostgreSQL logical backup restores, and that what it restores is the
//! database the application needs.
//!
//! A drill runs its phases in order, one module each: [`scenario`] (resolve), [`source`] (fetch,
//! verify), [`provision`] (the throwaway target, a sandbox), [`restore`] (preflight, restore),
//! [`migrate`], [`check`] (checks, one file per kind), [`app`], [`report`] (reports); [`drill`]
//! sequences them. Helpers they share are leaf modules that import no phase: [`error`],
//! [`field`], [`units`], [`pg`], [`journal`], [`outcome`], [`secret`], [`tls`], [`dump`]. The
//! map, and how to add a check kind, a source or a target: `harness/ARCHITECTURE.md`.

pub mod app;
pub mod baseline;
pub mod check;
pub mod cli;
pub mod drill;
pub mod dump;
pub mod error;
pub mod field;
pub mod journal;
pub mod migrate;
pub mod outcome;
pub mod pg;
pub mod provision;
pub mod report;
pub mod restore;
pub mod scenario;
pub mod secret;
pub mod source;
pub mod tls;
pub mod units;
