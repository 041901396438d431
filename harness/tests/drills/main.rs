//! End-to-end drills: the real `pgdrill` binary against real containers and real pg_dump
//! backups. One test binary, modules by topic; `util` holds the helpers, whose failures print
//! the command, its output and the reports.

mod after_recovery;
mod app;
mod as_tests;
mod bad_input;
mod barman;
mod catalog;
mod chains;
mod ci_files;
mod dump_corpus;
mod encrypted;
mod faults;
mod fingerprints;
mod fixtures;
mod formats;
mod hostile;
mod init;
mod integrity;
mod journals;
mod junit_schema;
mod keep;
mod kinds_a;
mod kinds_b;
mod limits;
mod loopholes;
mod lying;
mod metrics;
mod modes;
mod monitoring;
mod names;
mod notify;
mod objectives;
mod parallel;
mod pgbackrest;
mod physical;
mod probe_rows;
mod red_team;
mod scenario_schema;
mod secrets;
mod seeds;
mod sequences;
mod servers;
mod sessions;
mod signed;
mod skeleton;
mod snapshots;
#[path = "../support/source_server.rs"]
mod source_server;
mod sources;
mod stress;
mod tablespaces;
mod targets;
mod timelines;
mod util;
mod whole_facts;
