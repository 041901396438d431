//! Migration journals: where each migration tool pgdrill knows records what it applied, the SQL
//! that reads its newest and its failed migrations (this file), what it records of a migration
//! and when two forms name one migration (`records`), the code's migrations (`code`) as a folder
//! or plan holds them (`folder`, `plans`), and which journals a database holds (`detect`). A leaf: the
//! schema-version check, `init`, baselines and pre-migration drills read them.

mod code;
mod detect;
pub(crate) mod folder;
mod plans;
mod records;

pub(crate) use detect::{Found, detect};
pub(crate) use records::{Expected, Records, Standing, judge, standing};

use crate::pg::{QualifiedName, quote_ident, quote_literal};

/// The migration tools pgdrill knows the journal of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Preset {
    Rails,
    GolangMigrate,
    Drizzle,
    Sqlx,
    Flyway,
    Goose,
    Dbmate,
    Prisma,
    Django,
    Alembic,
    Liquibase,
    Knex,
    Typeorm,
    Sequelize,
    EntityFramework,
    Atlas,
    Sqitch,
}

/// How a journal's rows are ordered, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Order {
    /// By an SQL expression, sorted descending.
    By(String),
    /// Every row is a current head (Alembic): all of them, sorted, are the version.
    Heads,
    /// By an SQL expression, except that the code's changelog orders the migrations when it is
    /// known (Liquibase moves a changeset it re-runs to the newest `orderexecuted`).
    Changelog(String),
}

/// Rows of a journal that record a failed, dirty or unfinished migration.
#[derive(Debug, Clone)]
pub(crate) struct Failure {
    /// SQL condition on a row of the table as `journal`; `{table}` stands for the table and
    /// `{lock}` for Knex's lock table beside it.
    pub condition: String,
    /// What such a row is, after "records migration X as".
    pub about: String,
}

/// Where and how a migration tool records what it applied.
#[derive(Debug, Clone)]
pub(crate) struct Journal {
    pub table: QualifiedName,
    /// The column holding the version.
    pub column: String,
    /// SQL read as the version instead of the column (Liquibase's `filename::id::author`).
    pub value: Option<String>,
    pub order: Order,
    pub failure: Option<Failure>,
    /// Rows to consider at all, of the table as `journal`; `{table}` in it stands for the table.
    pub filter: Option<String>,
    /// Only the rows of one app (Django) or project (sqitch): (column, value).
    pub scope: Option<(String, String)>,
    /// Which migrations it keeps a row of.
    pub kept: Kept,
}

/// Which migrations a journal keeps a row of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kept {
    /// Only the newest (golang-migrate, Alembic), or what pgdrill reads as such (Flyway's
    /// baseline, Liquibase's contexts, Django's squashes).
    Newest,
    /// A row per migration applied, so the code's migrations can each be looked for; `own`:
    /// the condition that leaves out the rows that are the runner's own (goose's version 0).
    Each { own: Option<&'static str> },
}

impl Journal {
    /// How a baseline names the journal of `preset`: its table, the preset, and its scope.
    pub(crate) fn key(&self, preset: Preset) -> String {
        match &self.scope {
            Some((column, value)) => format!("{} ({}, {column} {value})", self.table, preset.as_str()),
            None => format!("{} ({})", self.table, preset.as_str()),
        }
    }

    fn value_sql(&self) -> String {
        self.value.clone().unwrap_or_else(|| format!("journal.{}", quote_ident(&self.column)))
    }

    /// `{table}` and `{lock}` of a condition, spelled out.
    fn expand(&self, text: &str) -> String {
        let lock = QualifiedName::new(self.table.schema_or_public(), format!("{}_lock", self.table.name));
        text.replace("{table}", &self.table.sql()).replace("{lock}", &lock.sql())
    }

    fn scope_sql(&self) -> Option<String> {
        self.scope.as_ref().map(|(column, value)| format!("journal.{} = {}", quote_ident(column), quote_literal(value)))
    }

    fn rows_sql(&self, conditions: &[Option<String>]) -> String {
        let conditions: Vec<String> = conditions.iter().flatten().map(|c| format!("({})", self.expand(c))).collect();
        let mut sql = format!(" FROM {} AS journal", self.table.sql());
        if !conditions.is_empty() {
            sql.push_str(&format!(" WHERE {}", conditions.join(" AND ")));
        }
        sql
    }

    /// SQL for the newest version (for Alembic, every head, space-separated).
    pub(crate) fn newest_sql(&self) -> String {
        let from = self.rows_sql(&[self.filter.clone(), self.scope_sql()]);
        match &self.order {
            Order::By(order) | Order::Changelog(order) => {
                format!("SELECT ({})::text{from} ORDER BY {order} DESC NULLS LAST LIMIT 1", self.value_sql())
            }
            Order::Heads => {
                let value = format!("({})::text", self.value_sql());
                format!("SELECT string_agg({value}, ' ' ORDER BY {value}){from}")
            }
        }
    }

    /// SQL for every version recorded, newest first: what the code's changelog orders.
    pub(crate) fn recorded_sql(&self) -> String {
        self.versions_sql(None, "DESC NULLS LAST")
    }

    /// SQL for every migration recorded, oldest first, without the runner's own rows: what the
    /// code's migrations are each looked for in (`None`: the journal keeps only the newest).
    pub(crate) fn each_sql(&self) -> Option<String> {
        match self.kept {
            Kept::Newest => None,
            Kept::Each { own } => Some(self.versions_sql(own.map(str::to_owned), "NULLS FIRST")),
        }
    }

    /// SQL for the versions of the journal's rows (and of `extra`'s), in its order `direction`.
    fn versions_sql(&self, extra: Option<String>, direction: &str) -> String {
        let from = self.rows_sql(&[self.filter.clone(), self.scope_sql(), extra]);
        let order = match &self.order {
            Order::By(order) | Order::Changelog(order) => format!("{order} {direction}"),
            Order::Heads => "1".to_owned(),
        };
        format!("SELECT ({})::text{from} ORDER BY {order}", self.value_sql())
    }

    /// SQL listing up to five failed or dirty versions.
    pub(crate) fn failed_sql(&self, failure: &Failure) -> String {
        let from = self.rows_sql(&[Some(failure.condition.clone()), self.scope_sql()]);
        let order = match &self.order {
            Order::By(order) | Order::Changelog(order) => format!("{order} DESC"),
            Order::Heads => "1".to_owned(),
        };
        format!("SELECT ({})::text{from} ORDER BY {order} LIMIT 5", self.value_sql())
    }

    /// What a failed row is, its lock table spelled out.
    pub(crate) fn failure_about(&self, failure: &Failure) -> String {
        let lock = QualifiedName::new(self.table.schema_or_public(), format!("{}_lock", self.table.name));
        failure.about.replace("{lock}", &lock.to_string())
    }
}

/// goose appends a row per step; its older versions record a rollback as a later row with
/// `is_applied` false (newer ones delete the row): the current version is the newest whose own
/// latest row is applied.
const GOOSE_CURRENT: &str = "journal.is_applied AND NOT EXISTS (SELECT 1 FROM {table} AS later \
     WHERE later.version_id = journal.version_id AND later.id > journal.id)";

/// Prisma: a row whose migration did not finish, or was marked rolled back, and was not applied
/// again since (a re-applied migration gets a new row).
const PRISMA_FAILED: &str = "(journal.finished_at IS NULL OR journal.rolled_back_at IS NOT NULL) \
     AND NOT EXISTS (SELECT 1 FROM {table} AS later WHERE later.migration_name = journal.migration_name \
     AND later.finished_at IS NOT NULL AND later.rolled_back_at IS NULL)";

/// Atlas: an error recorded, or fewer statements applied than the file holds, unless the
/// revision was marked resolved (type bit 4).
const ATLAS_FAILED: &str =
    "(coalesce(journal.error, '') <> '' OR journal.applied < journal.total) AND (journal.type & 4) = 0";

/// Knex frees its lock when a migration fails; a lock still held is a run that never finished
/// (killed, or without transactions, half done): its latest batch is suspect.
const KNEX_UNFINISHED: &str = "journal.batch = (SELECT max(batch) FROM {table}) \
     AND EXISTS (SELECT 1 FROM {lock} WHERE is_locked <> 0)";

impl Preset {
    /// In the order `init` proposes them; of presets sharing a table, the first that fits it
    /// claims it (golang-migrate's `dirty`, dbmate's lone `varchar(128)`, else Rails).
    pub(crate) const ALL: [Preset; 17] = [
        Preset::GolangMigrate,
        Preset::Dbmate,
        Preset::Rails,
        Preset::Drizzle,
        Preset::Sqlx,
        Preset::Flyway,
        Preset::Goose,
        Preset::Prisma,
        Preset::Django,
        Preset::Alembic,
        Preset::Liquibase,
        Preset::Knex,
        Preset::Typeorm,
        Preset::Sequelize,
        Preset::EntityFramework,
        Preset::Atlas,
        Preset::Sqitch,
    ];

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Preset::Rails => "rails",
            Preset::GolangMigrate => "golang-migrate",
            Preset::Drizzle => "drizzle",
            Preset::Sqlx => "sqlx",
            Preset::Flyway => "flyway",
            Preset::Goose => "goose",
            Preset::Dbmate => "dbmate",
            Preset::Prisma => "prisma",
            Preset::Django => "django",
            Preset::Alembic => "alembic",
            Preset::Liquibase => "liquibase",
            Preset::Knex => "knex",
            Preset::Typeorm => "typeorm",
            Preset::Sequelize => "sequelize",
            Preset::EntityFramework => "entity-framework",
            Preset::Atlas => "atlas",
            Preset::Sqitch => "sqitch",
        }
    }

    pub(crate) fn parse(name: &str) -> Option<Preset> {
        Preset::ALL.into_iter().find(|p| p.as_str() == name)
    }

    /// What the tool records of each migration.
    pub(crate) fn records(self) -> Records {
        match self {
            Preset::Rails | Preset::GolangMigrate | Preset::Sqlx | Preset::Goose | Preset::Dbmate | Preset::Atlas => {
                Records::Number
            }
            Preset::Prisma | Preset::Django | Preset::EntityFramework => Records::Stem,
            Preset::Knex | Preset::Sequelize => Records::Name,
            Preset::Drizzle => Records::DrizzleWhen,
            Preset::Flyway => Records::FlywayVersion,
            Preset::Typeorm => Records::TypeormClass,
            Preset::Alembic => Records::AlembicRevision,
            Preset::Liquibase => Records::LiquibaseChangeset,
            Preset::Sqitch => Records::SqitchChange,
        }
    }

    /// The column that splits the journal into independent histories: Django's `app`, sqitch's
    /// `project`.
    pub(crate) fn scope_column(self) -> Option<&'static str> {
        match self {
            Preset::Django => Some("app"),
            Preset::Sqitch => Some("project"),
            _ => None,
        }
    }

    /// Columns the tool's table has besides the version's, which tell it from another's.
    pub(crate) fn signature(self) -> &'static [&'static str] {
        match self {
            Preset::GolangMigrate => &["dirty"],
            Preset::Sqlx | Preset::Flyway => &["success"],
            Preset::Goose => &["is_applied", "id"],
            Preset::Prisma => &["finished_at", "rolled_back_at", "started_at"],
            Preset::Django => &["app", "applied"],
            Preset::Liquibase => &["author", "filename", "orderexecuted", "exectype"],
            Preset::Knex => &["batch", "migration_time"],
            Preset::Typeorm => &["timestamp", "id"],
            Preset::EntityFramework => &["ProductVersion"],
            Preset::Atlas => &["applied", "total", "error"],
            Preset::Sqitch => &["project", "committed_at", "change_id"],
            Preset::Rails | Preset::Dbmate | Preset::Drizzle | Preset::Alembic | Preset::Sequelize => &[],
        }
    }

    /// Whether the tool's journal keeps a row for each migration it applied, and which of its
    /// rows are its own. golang-migrate and Alembic keep the newest only; Flyway's baselines,
    /// Liquibase's contexts and Django's squashed migrations leave out migrations the tool
    /// counts as applied: their journals are compared at the newest only.
    fn kept(self) -> Kept {
        match self {
            Preset::GolangMigrate | Preset::Alembic | Preset::Flyway | Preset::Liquibase | Preset::Django => {
                Kept::Newest
            }
            Preset::Goose => Kept::Each { own: Some("journal.version_id <> 0") },
            _ => Kept::Each { own: None },
        }
    }

    pub(crate) fn journal(self) -> Journal {
        let by = |o: &str| Order::By(o.to_owned());
        let failed =
            |condition: &str, about: &str| Some(Failure { condition: condition.to_owned(), about: about.to_owned() });
        let (schema, table, column, order, failure, filter) = match self {
            Preset::Rails | Preset::Dbmate => ("public", "schema_migrations", "version", by("version"), None, None),
            Preset::GolangMigrate => {
                ("public", "schema_migrations", "version", by("version"), failed("journal.dirty", "dirty"), None)
            }
            Preset::Drizzle => ("drizzle", "__drizzle_migrations", "created_at", by("created_at"), None, None),
            Preset::Sqlx => {
                ("public", "_sqlx_migrations", "version", by("version"), failed("NOT journal.success", "failed"), None)
            }
            Preset::Flyway => (
                "public",
                "flyway_schema_history",
                "version",
                by("installed_rank"),
                failed("NOT journal.success", "failed"),
                Some("journal.version IS NOT NULL"),
            ),
            Preset::Goose => ("public", "goose_db_version", "version_id", by("id"), None, Some(GOOSE_CURRENT)),
            Preset::Prisma => (
                "public",
                "_prisma_migrations",
                "migration_name",
                by("migration_name"),
                failed(PRISMA_FAILED, "failed or rolled back, and not applied since"),
                Some("journal.finished_at IS NOT NULL AND journal.rolled_back_at IS NULL"),
            ),
            Preset::Django => ("public", "django_migrations", "name", by("name"), None, None),
            Preset::Alembic => ("public", "alembic_version", "version_num", Order::Heads, None, None),
            Preset::Liquibase => {
                ("public", "databasechangelog", "id", Order::Changelog("orderexecuted".into()), None, None)
            }
            Preset::Knex => (
                "public",
                "knex_migrations",
                "name",
                by("name"),
                failed(KNEX_UNFINISHED, "part of a run that never finished (`{lock}` is still locked)"),
                None,
            ),
            Preset::Typeorm => ("public", "migrations", "name", by("\"timestamp\""), None, None),
            Preset::Sequelize => ("public", "SequelizeMeta", "name", by("name"), None, None),
            Preset::EntityFramework => {
                ("public", "__EFMigrationsHistory", "MigrationId", by("\"MigrationId\""), None, None)
            }
            Preset::Atlas => (
                "atlas_schema_revisions",
                "atlas_schema_revisions",
                "version",
                by("version"),
                failed(ATLAS_FAILED, "failed or partly applied"),
                // Atlas keeps its own identifiers in a row `.atlas_cloud_identifiers`.
                Some("journal.version NOT LIKE '.%'"),
            ),
            Preset::Sqitch => ("sqitch", "changes", "change", by("committed_at"), None, None),
        };
        Journal {
            table: QualifiedName::new(schema, table),
            column: column.to_owned(),
            value: (self == Preset::Liquibase)
                .then(|| "journal.filename || '::' || journal.id || '::' || journal.author".to_owned()),
            order,
            failure,
            filter: filter.map(str::to_owned),
            scope: None,
            kept: self.kept(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Order, Preset};

    #[test]
    fn goose_reads_the_newest_version_whose_own_latest_row_is_applied() {
        let mut journal = Preset::Goose.journal();
        journal.table = crate::pg::QualifiedName::new("ops", "goose_versions");
        assert_eq!(
            journal.newest_sql(),
            "SELECT (journal.\"version_id\")::text FROM \"ops\".\"goose_versions\" AS journal WHERE (journal.is_applied AND NOT EXISTS \
             (SELECT 1 FROM \"ops\".\"goose_versions\" AS later WHERE later.version_id = journal.version_id AND later.id > journal.id)) \
             ORDER BY id DESC NULLS LAST LIMIT 1"
        );
        assert_eq!(
            super::folder::of_file(Preset::Goose.records(), "00012_add_zones.sql").map(|f| f.1).as_deref(),
            Some("00012")
        );
    }

    #[test]
    fn each_preset_reads_its_own_journal() {
        for preset in Preset::ALL {
            assert_eq!(Preset::parse(preset.as_str()), Some(preset));
            let journal = preset.journal();
            assert!(journal.newest_sql().starts_with("SELECT "), "{preset:?}");
        }
        let mut django = Preset::Django.journal();
        django.scope = Some(("app".into(), "orders".into()));
        assert_eq!(
            django.newest_sql(),
            "SELECT (journal.\"name\")::text FROM \"public\".\"django_migrations\" AS journal \
             WHERE (journal.\"app\" = 'orders') ORDER BY name DESC NULLS LAST LIMIT 1"
        );
        let alembic = Preset::Alembic.journal();
        assert_eq!(alembic.order, Order::Heads);
        assert_eq!(
            alembic.newest_sql(),
            "SELECT string_agg((journal.\"version_num\")::text, ' ' ORDER BY (journal.\"version_num\")::text) \
             FROM \"public\".\"alembic_version\" AS journal"
        );
        let liquibase = Preset::Liquibase.journal();
        assert!(liquibase.recorded_sql().starts_with("SELECT (journal.filename || '::' || journal.id"));
        assert!(liquibase.recorded_sql().ends_with("ORDER BY orderexecuted DESC NULLS LAST"));
        let knex = Preset::Knex.journal();
        let failure = knex.failure.clone().unwrap();
        assert!(knex.failed_sql(&failure).contains("EXISTS (SELECT 1 FROM \"public\".\"knex_migrations_lock\" WHERE"));
        assert_eq!(
            knex.failure_about(&failure),
            "part of a run that never finished (`public.knex_migrations_lock` is still locked)"
        );
        let sequelize = Preset::Sequelize.journal();
        assert_eq!(sequelize.table.to_string(), "public.\"SequelizeMeta\"");
        let prisma = Preset::Prisma.journal();
        assert!(
            prisma.newest_sql().contains("WHERE (journal.finished_at IS NOT NULL AND journal.rolled_back_at IS NULL)")
        );
    }
}
