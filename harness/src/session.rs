//! pgdrill's own sessions on a restored database: what they pin so that the backup cannot change
//! what pgdrill's queries mean.
//!
//! A backup decides a lot about the sessions that later connect to its database: `ALTER
//! DATABASE ... SET` and `ALTER ROLE ... SET` give every session a `search_path` (where a table,
//! a function or an operator with the name pgdrill wrote could stand in for the real one), a
//! `role` to switch to, a read-only default, timeouts, `row_security = off`, a
//! `session_replication_role` that silences triggers, `gin_fuzzy_search_limit` that trims index
//! scans; a PostgreSQL 17 login event trigger runs code as a session starts. Settings sent in
//! the startup packet outrank all of those (PostgreSQL applies the client's own over the
//! database's and the role's), so every connection pgdrill opens for itself carries [`pins`]:
//! `search_path = pg_catalog, pg_temp` (nothing in another schema can stand in for a built-in,
//! and no temporary object for a table), event triggers off, and the settings that change what
//! a read returns set to PostgreSQL's defaults. What a scenario's own SQL sees is decided by the
//! checks' application window (`check::as_app`), not here.
//!
//! The restore itself and the release's migrations connect with the database as it is
//! ([`raw`]): they run the backup's and the release's SQL as the application would.

/// What the pins depend on, read once from the target when it is fresh (before a backup has
/// touched it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Pins {
    /// `server_version_num`.
    pub version_num: u32,
    /// Whether pgdrill's role is a superuser: only then can it pin the settings that need one.
    pub superuser: bool,
}

impl Default for Pins {
    /// Until the target was read: only what every role may pin on any supported version.
    fn default() -> Self {
        Pins { version_num: 0, superuser: false }
    }
}

/// Reads the pins' inputs on a connection that already pins what any role may.
pub(crate) const READ_SQL: &str = "SELECT pg_catalog.current_setting('server_version_num')::pg_catalog.int4, r.rolsuper \
     FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) pg_catalog.\"current_user\"()";

/// Whether `restrict_nonsystem_relation_kind` exists on `version_num` (17, and the minor releases
/// of August 2024 back to 12).
pub(crate) fn has_restrict(version_num: u32) -> bool {
    match version_num / 10000 {
        0..=11 => false,
        12 => version_num >= 120020,
        13 => version_num >= 130016,
        14 => version_num >= 140013,
        15 => version_num >= 150008,
        16 => version_num >= 160004,
        _ => true,
    }
}

/// The settings pgdrill's own sessions pin, as `(name, value)`, for logging in as `user`.
pub(crate) fn pins(pins: Pins, user: &str) -> Vec<(&'static str, String)> {
    let mut set: Vec<(&'static str, String)> = vec![
        // Names resolve to the built-ins; a temporary object never shadows a table.
        ("search_path", "pg_catalog,pg_temp".into()),
        // Neither the database nor the role switches who pgdrill is.
        ("session_authorization", user.into()),
        ("role", "none".into()),
        // What a read returns, and whether it runs to its end, is PostgreSQL's default.
        ("statement_timeout", "0".into()),
        ("lock_timeout", "0".into()),
        ("idle_in_transaction_session_timeout", "0".into()),
        ("default_transaction_isolation", "read committed".into()),
        ("default_transaction_read_only", "off".into()),
        ("default_transaction_deferrable", "off".into()),
        ("row_security", "on".into()),
        ("standard_conforming_strings", "on".into()),
        ("transform_null_equals", "off".into()),
        ("quote_all_identifiers", "off".into()),
        ("array_nulls", "on".into()),
        ("bytea_output", "hex".into()),
        ("IntervalStyle", "postgres".into()),
        ("lc_monetary", "C".into()),
        ("lc_numeric", "C".into()),
        ("lc_time", "C".into()),
        ("gin_fuzzy_search_limit", "0".into()),
        ("exit_on_error", "off".into()),
        ("local_preload_libraries", String::new()),
    ];
    if has_restrict(pins.version_num) {
        // A view or a foreign table never runs where pgdrill reads a table.
        set.push(("restrict_nonsystem_relation_kind", "view,foreign-table".into()));
    }
    if pins.version_num >= 170000 {
        set.push(("transaction_timeout", "0".into()));
    }
    if pins.superuser {
        set.extend([
            ("session_preload_libraries", String::new()),
            ("session_replication_role", "origin".into()),
            ("lc_messages", "C".into()),
            ("zero_damaged_pages", "off".into()),
            ("ignore_checksum_failure", "off".into()),
            ("track_counts", "on".into()),
            ("allow_system_table_mods", "off".into()),
        ]);
        if pins.version_num >= 170000 {
            // A login event trigger runs nothing in pgdrill's sessions.
            set.push(("event_triggers", "off".into()));
        }
    }
    set
}

/// `options` with the pins `pins` allows for the user it logs in as, in its startup packet.
pub(crate) fn pinned(options: sqlx::postgres::PgConnectOptions, pins: Pins) -> sqlx::postgres::PgConnectOptions {
    let set = self::pins(pins, options.get_username());
    options.options(set.iter().map(|(name, value)| (*name, escape(value))))
}

/// `value` as one word of the startup packet's `options`.
fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if c == '\\' || c.is_whitespace() {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// How the reports list the pins: `name = value`, one per setting.
pub(crate) fn shown(pins: &[(&'static str, String)]) -> Vec<String> {
    pins.iter()
        .filter(|(name, _)| *name != "session_authorization")
        .map(|(name, value)| format!("{name} = '{value}'"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn superuser_pins_need_a_superuser() {
        let plain = pins(Pins { version_num: 170004, superuser: false }, "app");
        assert!(plain.iter().all(|(n, _)| *n != "event_triggers" && *n != "session_replication_role"));
        assert!(plain.iter().any(|(n, v)| *n == "search_path" && v == "pg_catalog,pg_temp"));
        let superuser = pins(Pins { version_num: 170004, superuser: true }, "postgres");
        assert!(superuser.iter().any(|(n, v)| *n == "event_triggers" && v == "off"));
        let old = pins(Pins { version_num: 160003, superuser: true }, "postgres");
        assert!(old.iter().all(|(n, _)| *n != "event_triggers" && *n != "restrict_nonsystem_relation_kind"));
        assert!(has_restrict(150008) && !has_restrict(150007) && has_restrict(180000));
    }

    #[test]
    fn values_are_escaped_for_the_startup_packet() {
        assert_eq!(escape("my user\\x"), "my\\ user\\\\x");
        assert_eq!(escape("read committed"), "read\\ committed");
        assert_eq!(escape(""), "");
    }
}
