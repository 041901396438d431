//! The `pgdrill` command.

use std::process::ExitCode;

fn main() -> ExitCode {
    // Colours only on a terminal: a log captured by CI or a file stays plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let log = || tracing_subscriber::fmt().with_writer(|| pgdrill::secret::LogWriter).with_ansi(ansi);
    match tracing_subscriber::EnvFilter::try_from_env("PGDRILL_LOG") {
        // Asked for: each line with the seconds since pgdrill started, to time a drill's steps.
        Ok(filter) => log().with_env_filter(filter).with_timer(tracing_subscriber::fmt::time::uptime()).init(),
        Err(_) => log().with_env_filter(tracing_subscriber::EnvFilter::new("warn,sqlx=error")).without_time().init(),
    }
    pgdrill::cli::run()
}
