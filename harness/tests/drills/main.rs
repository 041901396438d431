//! End-to-end drills: the real `pgdrill` binary against real containers and real pg_dump
//! backups. One test binary, modules by topic; `util` holds the helpers, whose failures print
//! the command, its output and the reports.

mod after_recovery;
mod app;
mod archive_data;
mod as_tests;
mod backup_kind;
mod bad_input;
// The report.html engineer's headless Chromium (tests/support/browser.rs), merged from their branch.
mod barman;
#[path = "../support/browser.rs"]
mod browser;
mod catalog;
mod chains;
mod ci_files;
mod dump_corpus;
mod encrypted;
mod faults;
mod fingerprints;
mod fixtures;
mod fleet_browser;
mod fleet_gate;
mod fleet_retry;
mod fleet_store;
mod formats;
mod hostile;
mod http_base_backup;
mod init;
mod integrity;
mod jobs;
mod journals;
mod junit_schema;
mod keep;
mod kinds_a;
mod kinds_b;
mod kube;
mod limits;
mod loopholes;
mod lying;
mod majors;
mod metrics;
mod modes;
mod monitoring;
mod names;
mod notify;
mod objectives;
mod one_read;
mod one_read_archives;
mod parallel;
mod pgbackrest;
mod pgbackrest_encrypted;
mod physical;
mod physical_snapshots;
mod pod;
mod probe_rows;
mod red_team;
mod report_html;
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
mod watch;
mod whole_facts;
