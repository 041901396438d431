//! What a container target's server said in its log (its stderr, which Docker keeps): the WAL
//! it could not read, and why its startup process stopped. Read only where pgdrill already
//! judged something went wrong, to give the server's own words.

use crate::provision::Target;

/// The log of the target's container (its server writes to stderr), when it is one.
pub(crate) async fn server_log(target: &Target) -> Option<String> {
    let id = target.info.container.as_deref()?;
    let docker = crate::provision::docker::docker().ok()?;
    crate::provision::container::container_log(&docker, id, None).await.ok()
}

/// What the server's log says of the WAL it could not read (the last such line), as `;
/// PostgreSQL: ...`.
pub(super) fn wal_complaint(log: &str) -> Option<String> {
    const SAYS: [&str; 6] = [
        "in record at",
        "invalid record length",
        "invalid magic number",
        "unexpected pageaddr",
        "contrecord",
        "invalid resource manager",
    ];
    let line = log.lines().rev().find(|l| SAYS.iter().any(|s| l.contains(s)))?;
    let said = line.split_once("LOG:").map_or(line, |(_, rest)| rest).trim();
    Some(format!("; PostgreSQL: {said}"))
}

/// Why the server's startup process stopped, when its log says it did: its own last `FATAL` or
/// `PANIC` line (a client's lost connection is another process's).
pub(crate) fn startup_failure(log: &str) -> Option<String> {
    let exited = log.lines().rev().find_map(|l| {
        let rest = l.split_once("startup process (PID ")?.1;
        let (pid, after) = rest.split_once(')')?;
        after.trim_start().starts_with("exited").then(|| pid.to_owned())
    })?;
    let own = format!("[{exited}]");
    let line = log.lines().rev().find(|l| l.contains(&own) && (l.contains("FATAL:") || l.contains("PANIC:")))?;
    let said = line.split_once("FATAL:").or_else(|| line.split_once("PANIC:")).map_or(line, |(_, rest)| rest);
    Some(said.trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_startup_process_own_last_words_are_told_apart_from_a_lost_client() {
        let log = "\
2026-11-27 19:27:18.646 GMT [11] FATAL:  connection to client lost
2026-11-27 19:27:20.706 GMT [9] LOG:  selected new timeline ID: 2
2026-11-27 19:27:20.706 GMT [9] FATAL:  could not open file \"pg_wal/000000010000000000000037\": No such file or directory
2026-11-27 19:27:20.737 GMT [1] LOG:  startup process (PID 9) exited with exit code 1
2026-11-27 19:27:20.740 GMT [1] LOG:  shutting down due to startup process failure";
        let said = startup_failure(log).unwrap();
        assert_eq!(said, "could not open file \"pg_wal/000000010000000000000037\": No such file or directory");
        assert_eq!(
            startup_failure("2026-11-27 GMT [11] FATAL:  connection to client lost"),
            None,
            "no startup process stopped"
        );
    }
}
