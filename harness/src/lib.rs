//! pgdrill: proves that a PostgreSQL logical backup restores, and that what it restores is the
//! database the application needs.
//!
//! A drill runs the phases of DESIGN.md, one module each: [`scenario`] (resolve),
//! [`source`] (fetch, verify), [`target`] (provision), [`restore`] (preflight, restore),
//! [`check`] (checks), [`report`] (reports); [`drill`] runs them in order.

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
pub mod report;
pub mod restore;
pub mod scenario;
pub mod secret;
pub mod source;
pub mod target;
pub mod tls;
pub mod units;
