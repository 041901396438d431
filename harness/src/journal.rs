//! Migration journals: where each migration tool pgdrill knows (Rails, golang-migrate, Drizzle,
//! sqlx, Flyway) records what it applied, and the SQL that reads its newest and its failed
//! versions. A leaf: the schema-version check, baselines and pre-migration drills read them.

use crate::pg::{QualifiedName, quote_ident};

/// The migration tools pgdrill knows the journal of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Preset {
    Rails,
    GolangMigrate,
    Drizzle,
    Sqlx,
    Flyway,
}

/// Where and how a migration tool records what it applied.
#[derive(Debug, Clone)]
pub struct Journal {
    pub table: QualifiedName,
    pub column: String,
    pub order_by: String,
    /// Rows that record a failed or dirty migration.
    pub failed_when: Option<String>,
    /// Rows to consider at all.
    pub filter: Option<String>,
}

impl Journal {
    /// SQL for the newest version.
    pub fn newest_sql(&self) -> String {
        format!(
            "SELECT ({})::text FROM {}{} ORDER BY {} DESC NULLS LAST LIMIT 1",
            quote_ident(&self.column),
            self.table.sql(),
            self.filter.as_ref().map(|f| format!(" WHERE {f}")).unwrap_or_default(),
            self.order_by
        )
    }

    /// SQL listing up to five failed or dirty versions.
    pub fn failed_sql(&self, condition: &str) -> String {
        format!(
            "SELECT ({})::text FROM {} WHERE {condition} ORDER BY {} DESC LIMIT 5",
            quote_ident(&self.column),
            self.table.sql(),
            self.order_by
        )
    }
}

impl Preset {
    pub(crate) const ALL: [Preset; 5] =
        [Preset::GolangMigrate, Preset::Rails, Preset::Drizzle, Preset::Sqlx, Preset::Flyway];

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Preset::Rails => "rails",
            Preset::GolangMigrate => "golang-migrate",
            Preset::Drizzle => "drizzle",
            Preset::Sqlx => "sqlx",
            Preset::Flyway => "flyway",
        }
    }

    pub(crate) fn parse(name: &str) -> Option<Preset> {
        Preset::ALL.into_iter().find(|p| p.as_str() == name)
    }

    pub(crate) fn journal(self) -> Journal {
        let (schema, table, column, order_by, failed_when, filter) = match self {
            Preset::Rails => ("public", "schema_migrations", "version", "version", None, None),
            Preset::GolangMigrate => ("public", "schema_migrations", "version", "version", Some("dirty"), None),
            Preset::Drizzle => ("drizzle", "__drizzle_migrations", "created_at", "created_at", None, None),
            Preset::Sqlx => ("public", "_sqlx_migrations", "version", "version", Some("NOT success"), None),
            Preset::Flyway => (
                "public",
                "flyway_schema_history",
                "version",
                "installed_rank",
                Some("NOT success"),
                Some("version IS NOT NULL"),
            ),
        };
        Journal {
            table: QualifiedName::new(schema, table),
            column: column.to_owned(),
            order_by: order_by.to_owned(),
            failed_when: failed_when.map(str::to_owned),
            filter: filter.map(str::to_owned),
        }
    }
}
