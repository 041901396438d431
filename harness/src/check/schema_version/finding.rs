//! What `schema_version` finds: a code per result it can give.

crate::outcome::findings! {
    /// What `schema_version` finds.
    pub(crate) enum Found for SchemaVersion {
        AtVersion = Pass "schema-version.at-version"
            "The migration journal's newest entry is the migration the code expects."
            "Nothing.",
        Differs = Fail "schema-version.differs"
            "The journal's newest migration is not the one the code expects: it is older (migrations lost) or newer (the code is behind), or the journal records none."
            "Read which is newer in the message: restore a newer backup, or deploy the code the database was migrated by.",
        NoFailedMigration = Pass "schema-version.no-failed-migration"
            "No migration is recorded as failed, dirty or unfinished."
            "Nothing.",
        FailedMigration = Fail "schema-version.failed-migration"
            "The journal records a migration as failed, dirty or unfinished: it did not complete."
            "Finish or roll back the migration in the source, as its runner says (e.g. `migrate force`).",
        EveryMigration = Pass "schema-version.every-migration"
            "The journal records each of the code's migrations (or the baseline's), and no other."
            "Nothing.",
        MissingMigrations = Fail "schema-version.missing-migrations"
            "The journal lacks migrations of the code (or of the baseline), or records ones that are not the code's."
            "Compare the journal with the migrations folder: the runner applies a missing one again at the next deploy.",
        AnotherJournal = Fail "schema-version.another-journal"
            "The journal's name without a schema resolves, for the application's role, to another table."
            "Name the journal with its schema, or look at the role's `search_path`.",
        NotATable = Fail "schema-version.not-a-table"
            "Something other than a table (a view) has the journal's name: a view can show any version."
            "Find what replaced the journal in the backup.",
        CouldNotRead = Error "schema-version.could-not-read"
            "The migration journal could not be read."
            "Read the database's answer in the message: the table or its columns may be missing.",
    }
}
