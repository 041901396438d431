//! The `pgdrill` command.

use std::process::ExitCode;

use pgdrill::cli;

fn main() -> ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_from_env("PGDRILL_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,sqlx=error"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(|| pgdrill::secret::LogWriter).without_time().init();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(cli::EXIT_FAIL);
        }
    };
    runtime.block_on(cli::main())
}
