//! What a baseline covers, as SQL the captures share: user schemas (not the system's), objects
//! that no extension owns (the extension recreates those), and which server version (so which
//! catalog columns) a capture reads.

/// SQL: `n` (a pg_namespace alias) is a user schema.
pub(super) const USER_SCHEMA: &str = "n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp\\_%'";

/// SQL: the relation `c` is not part of an extension.
pub(super) const NOT_EXTENSION_MEMBER: &str = "NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')";

/// The server's `server_version_num`: which catalog columns it has.
pub(super) async fn server_version_num<'e>(
    executor: impl sqlx::Executor<'e, Database = sqlx::Postgres>,
) -> sqlx::Result<i32> {
    sqlx::query_scalar("SELECT pg_catalog.current_setting('server_version_num')::pg_catalog.int4")
        .fetch_one(executor)
        .await
}
