//! Migration journals: where each migration tool pgdrill knows (Rails, golang-migrate, Drizzle,
//! sqlx, Flyway, goose) records what it applied, and the SQL that reads its newest and its failed
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
    Goose,
}

/// What a journal row records of the migration file it applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Records {
    /// The file's leading number: `0003` of `0003_add_zones.up.sql` (Rails, golang-migrate, sqlx,
    /// goose, which stores it as a number: `3`).
    Number,
    /// The file's name without `.up.sql`, `.sql` or its extension: `0003_add_zones`.
    Stem,
    /// The whole file name: `0003_add_zones.up.sql`.
    Name,
    /// Flyway's version: `1.10` of `V1_10__more.sql`.
    FlywayVersion,
    /// Drizzle's `when` of the last entry of `meta/_journal.json`.
    DrizzleWhen,
}

impl Records {
    /// What a scenario may write as `records`.
    pub(crate) const CHOICES: [Records; 3] = [Records::Number, Records::Stem, Records::Name];

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Records::Number => "number",
            Records::Stem => "stem",
            Records::Name => "name",
            Records::FlywayVersion => "flyway version",
            Records::DrizzleWhen => "drizzle when",
        }
    }

    pub(crate) fn parse(name: &str) -> Option<Records> {
        Records::CHOICES.into_iter().find(|r| r.as_str() == name)
    }

    /// The file's number, by which migration files are ordered, and what the journal records of
    /// it; None for a file that is not a migration (`README.md`, a `.down.sql`).
    pub(crate) fn of_file(self, file: &str) -> Option<(String, String)> {
        if file.ends_with(".down.sql") {
            return None;
        }
        if self == Records::FlywayVersion {
            let version = file.strip_prefix('V')?.split_once("__")?.0.replace('_', ".");
            return Some((version.clone(), version));
        }
        let number: String = file.chars().take_while(char::is_ascii_digit).collect();
        if number.is_empty() {
            return None;
        }
        let stem = || {
            file.strip_suffix(".up.sql")
                .or_else(|| file.strip_suffix(".sql"))
                .or_else(|| file.rsplit_once('.').map(|(stem, _)| stem))
                .unwrap_or(file)
                .to_owned()
        };
        let recorded = match self {
            Records::Stem => stem(),
            Records::Name => file.to_owned(),
            _ => number.clone(),
        };
        Some((number, recorded))
    }
}

/// Where and how a migration tool records what it applied.
#[derive(Debug, Clone)]
pub struct Journal {
    pub table: QualifiedName,
    pub column: String,
    pub order_by: String,
    /// Rows that record a failed or dirty migration.
    pub failed_when: Option<String>,
    /// Rows to consider at all, of the table as `journal`; `{table}` in it stands for the table.
    pub filter: Option<String>,
}

impl Journal {
    /// SQL for the newest version.
    pub fn newest_sql(&self) -> String {
        format!(
            "SELECT ({})::text FROM {} AS journal{} ORDER BY {} DESC NULLS LAST LIMIT 1",
            quote_ident(&self.column),
            self.table.sql(),
            self.filter
                .as_ref()
                .map(|f| format!(" WHERE {}", f.replace("{table}", &self.table.sql())))
                .unwrap_or_default(),
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

const GOOSE_CURRENT: &str = "is_applied AND NOT EXISTS (SELECT 1 FROM {table} AS later \
     WHERE later.version_id = journal.version_id AND later.id > journal.id)";

impl Preset {
    pub(crate) const ALL: [Preset; 6] =
        [Preset::GolangMigrate, Preset::Rails, Preset::Drizzle, Preset::Sqlx, Preset::Flyway, Preset::Goose];

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Preset::Rails => "rails",
            Preset::GolangMigrate => "golang-migrate",
            Preset::Drizzle => "drizzle",
            Preset::Sqlx => "sqlx",
            Preset::Flyway => "flyway",
            Preset::Goose => "goose",
        }
    }

    pub(crate) fn parse(name: &str) -> Option<Preset> {
        Preset::ALL.into_iter().find(|p| p.as_str() == name)
    }

    /// What the tool records of each migration file.
    pub(crate) fn records(self) -> Records {
        match self {
            Preset::Rails | Preset::GolangMigrate | Preset::Sqlx | Preset::Goose => Records::Number,
            Preset::Drizzle => Records::DrizzleWhen,
            Preset::Flyway => Records::FlywayVersion,
        }
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
            // goose appends a row per step; its older versions record a rollback as a later row
            // with `is_applied` false (newer ones delete the row): the current version is the
            // newest whose own latest row is applied.
            Preset::Goose => ("public", "goose_db_version", "version_id", "id", None, Some(GOOSE_CURRENT)),
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

#[cfg(test)]
mod tests {
    use super::{Preset, Records};

    #[test]
    fn goose_reads_the_newest_version_whose_own_latest_row_is_applied() {
        let mut journal = Preset::Goose.journal();
        journal.table = crate::pg::QualifiedName::new("ops", "goose_versions");
        assert_eq!(
            journal.newest_sql(),
            "SELECT (\"version_id\")::text FROM \"ops\".\"goose_versions\" AS journal WHERE is_applied AND NOT EXISTS \
             (SELECT 1 FROM \"ops\".\"goose_versions\" AS later WHERE later.version_id = journal.version_id AND later.id > journal.id) \
             ORDER BY id DESC NULLS LAST LIMIT 1"
        );
        assert_eq!(Preset::Goose.records().of_file("00012_add_zones.sql").map(|f| f.1).as_deref(), Some("00012"));
    }

    #[test]
    fn each_runner_records_its_own_form_of_a_file() {
        let file = "0003_add_zones.up.sql";
        let of = |r: Records, f: &str| r.of_file(f).map(|(_, recorded)| recorded);
        assert_eq!(of(Records::Number, file).as_deref(), Some("0003"));
        assert_eq!(of(Records::Stem, file).as_deref(), Some("0003_add_zones"));
        assert_eq!(of(Records::Name, file).as_deref(), Some(file));
        assert_eq!(of(Records::Stem, "20260518020000_create_users.rb").as_deref(), Some("20260518020000_create_users"));
        assert_eq!(of(Records::Stem, "010-audit.sql").as_deref(), Some("010-audit"));
        assert_eq!(of(Records::FlywayVersion, "V1_10__more.sql").as_deref(), Some("1.10"));
        assert_eq!(of(Records::Stem, "0003_add_zones.down.sql"), None);
        assert_eq!(of(Records::Number, "README.md"), None);
        assert_eq!(Records::parse("stem"), Some(Records::Stem));
        assert_eq!(Records::parse("flyway version"), None, "a preset's own form is not a choice");
    }
}
