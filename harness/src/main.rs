//! The `pgdrill` command.

use std::process::ExitCode;

fn main() -> ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_from_env("PGDRILL_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,sqlx=error"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(|| pgdrill::secret::LogWriter).without_time().init();
    pgdrill::cli::run()
}
