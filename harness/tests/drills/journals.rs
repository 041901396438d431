//! Migration journals as their runners write them, on a real restore: goose's
//! `goose_db_version`, where an older goose records a rollback as a later row with `is_applied`
//! false, so the current version is not simply the newest row; and one backup holding the
//! journal of each other runner, checked against migrations folders written as each runner
//! lays them out: in `public` each journal at its folder's newest migration (it passes), in
//! `bad` one behind, failed or unfinished (it fails, saying which and why).

use pgdrill::{CheckResult, Verdict};

use crate::util::Scratch;

/// Migrations 1 to 3 applied, then 3 rolled back: goose is at 2.
const GOOSE: &str = "CREATE TABLE public.goose_db_version (id serial PRIMARY KEY, version_id bigint NOT NULL, \
        is_applied boolean NOT NULL, tstamp timestamp DEFAULT now());\n\
    INSERT INTO public.goose_db_version (version_id, is_applied) VALUES (0, true), (1, true), (2, true), (3, true), (3, false);\n";

#[test]
fn goose_preset_reads_the_current_version_past_a_rolled_back_one() {
    let scratch = Scratch::new();
    scratch.write("goose.sql", GOOSE);
    scratch.write("migrations/00001_users.sql", "-- +goose Up\nSELECT 1;\n");
    scratch.write("migrations/00002_zones.sql", "-- +goose Up\nSELECT 1;\n");
    let scenario = scratch.scenario(
        "goose.toml",
        "[source]\npath = \"goose.sql\"\n\
         [[checks.schema_version]]\npreset = \"goose\"\nexpected_from = \"migrations\"\n\
         [[checks.schema_version]]\npreset = \"goose\"\nexpected = \"3\"\n",
    );
    let drill = scratch.drill(&scenario);
    assert_eq!(drill.code, Some(1), "{drill:?}");
    let checks = &drill.record().checks;
    let from_folder = &checks[0];
    assert_eq!(from_folder.code, "schema-version.at-version", "{from_folder:?}");
    assert_eq!(from_folder.actual, "2");
    assert!(from_folder.expected.starts_with("00002 (newest file of "), "{}", from_folder.expected);
    let every = &checks[1];
    assert_eq!(
        (every.verdict, every.message.as_str()),
        (Verdict::Pass, "`public.goose_db_version` records each of the code's 2 migrations, and no other"),
        "version 0 is goose's own row; 3 was rolled back"
    );
    let ahead = &checks[2];
    assert_eq!(ahead.code, "schema-version.differs", "{ahead:?}");
    assert_eq!(
        ahead.message,
        "newest migration in `public.goose_db_version` is 2, expected 3: the code's 3 is newer, so the database is \
         behind the code"
    );
}

/// Each runner's journal as it creates it: in `public` at the newest migration of the folders
/// [`write_migrations`] writes; in `bad` one behind, failed, rolled back or unfinished.
pub(crate) const JOURNALS: &str = r#"
CREATE SCHEMA bad;
CREATE SCHEMA stems;

-- dbmate
CREATE TABLE public.schema_migrations (version varchar(128) PRIMARY KEY);
INSERT INTO public.schema_migrations VALUES ('20230101000000'), ('20230201000000');
-- Rails, a journal with a hole: the newest is there, an older one is not
CREATE SCHEMA holes;
CREATE TABLE holes.schema_migrations (version varchar PRIMARY KEY);
INSERT INTO holes.schema_migrations VALUES ('20230201000000');
-- Rails with an engine that appends its own db/migrate
CREATE TABLE holes.engines (version varchar PRIMARY KEY);
INSERT INTO holes.engines VALUES ('20230101000000'), ('20230115000000'), ('20230201000000');

-- a plain runner recording each `NNNN_name.up.sql` file's stem
CREATE TABLE stems.schema_migrations (version text PRIMARY KEY);
INSERT INTO stems.schema_migrations VALUES ('0001_tenants'), ('0002_api_keys');
CREATE TABLE bad.schema_migrations (version text PRIMARY KEY);
INSERT INTO bad.schema_migrations VALUES ('0001_tenants'), ('0002_api_tokens');

-- Prisma: `orders` failed, was marked rolled back, and was applied again (a new row)
CREATE TABLE public._prisma_migrations (id varchar(36) PRIMARY KEY, checksum varchar(64) NOT NULL,
    finished_at timestamptz, migration_name varchar(255) NOT NULL, logs text, rolled_back_at timestamptz,
    started_at timestamptz NOT NULL DEFAULT now(), applied_steps_count integer NOT NULL DEFAULT 0);
INSERT INTO public._prisma_migrations VALUES
    ('a', 'c1', '2023-01-01', '20230101000000_init', NULL, NULL, '2023-01-01', 1),
    ('b', 'c2', NULL, '20230301000000_orders', 'relation exists', '2023-03-02', '2023-03-01', 0),
    ('c', 'c2', '2023-03-03', '20230301000000_orders', NULL, NULL, '2023-03-03', 1);
CREATE TABLE bad._prisma_migrations (LIKE public._prisma_migrations INCLUDING ALL);
INSERT INTO bad._prisma_migrations VALUES
    ('a', 'c1', '2023-01-01', '20230101000000_init', NULL, NULL, '2023-01-01', 1),
    ('b', 'c2', NULL, '20230301000000_orders', 'relation exists', NULL, '2023-03-01', 0);

-- Django: two apps; `orders` at 0002
CREATE TABLE public.django_migrations (id bigserial PRIMARY KEY, app varchar(255) NOT NULL,
    name varchar(255) NOT NULL, applied timestamptz NOT NULL);
INSERT INTO public.django_migrations (app, name, applied) VALUES
    ('contenttypes', '0001_initial', '2023-01-01'), ('orders', '0001_initial', '2023-01-01'),
    ('contenttypes', '0002_remove_content_type_name', '2023-01-01'), ('orders', '0002_refunds', '2023-02-01');
CREATE TABLE bad.django_migrations (LIKE public.django_migrations INCLUDING ALL);
INSERT INTO bad.django_migrations (app, name, applied) VALUES ('orders', '0001_initial', '2023-01-01');

-- Alembic: the one head
CREATE TABLE public.alembic_version (version_num varchar(32) NOT NULL, CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num));
INSERT INTO public.alembic_version VALUES ('27c6a30d7c24');
CREATE TABLE bad.alembic_version (LIKE public.alembic_version INCLUDING ALL);
INSERT INTO bad.alembic_version VALUES ('ae1027a6acf');

-- Liquibase: changeset 2 runs on change and was re-run last (RERAN, the newest orderexecuted)
CREATE TABLE public.databasechangelog (id varchar(255) NOT NULL, author varchar(255) NOT NULL,
    filename varchar(255) NOT NULL, dateexecuted timestamp NOT NULL, orderexecuted integer NOT NULL,
    exectype varchar(10) NOT NULL, md5sum varchar(35), description varchar(255), comments varchar(255),
    tag varchar(255), liquibase varchar(20), contexts varchar(255), labels varchar(255), deployment_id varchar(10));
INSERT INTO public.databasechangelog (id, author, filename, dateexecuted, orderexecuted, exectype) VALUES
    ('1', 'ann', 'db/changelog/db.changelog-master.xml', '2023-01-01', 1, 'EXECUTED'),
    ('2', 'ann', 'db/changelog/changes/010-views.sql', '2023-03-01', 4, 'RERAN'),
    ('3', 'bob', 'db/changelog/changes/010-views.sql', '2023-01-01', 3, 'EXECUTED');
CREATE TABLE bad.databasechangelog (LIKE public.databasechangelog INCLUDING ALL);
INSERT INTO bad.databasechangelog SELECT * FROM public.databasechangelog WHERE id <> '3';

-- Knex; in `bad`, a run that never finished: the lock still held
CREATE TABLE public.knex_migrations (id serial PRIMARY KEY, name varchar(255), batch integer, migration_time timestamptz);
CREATE TABLE public.knex_migrations_lock (index serial PRIMARY KEY, is_locked integer);
INSERT INTO public.knex_migrations (name, batch, migration_time) VALUES
    ('20230101000000_users.js', 1, '2023-01-01'), ('20230201000000_orders.js', 2, '2023-02-01');
INSERT INTO public.knex_migrations_lock (is_locked) VALUES (0);
CREATE TABLE bad.knex_migrations (LIKE public.knex_migrations INCLUDING ALL);
CREATE TABLE bad.knex_migrations_lock (LIKE public.knex_migrations_lock INCLUDING ALL);
INSERT INTO bad.knex_migrations SELECT * FROM public.knex_migrations;
INSERT INTO bad.knex_migrations_lock VALUES (1, 1);

-- TypeORM
CREATE TABLE public.migrations (id serial PRIMARY KEY, "timestamp" bigint NOT NULL, name varchar NOT NULL);
INSERT INTO public.migrations ("timestamp", name) VALUES
    (1680000000000, 'AddUsers1680000000000'), (1690000000000, 'CreateOrders1690000000000');

-- Sequelize
CREATE TABLE public."SequelizeMeta" (name varchar(255) NOT NULL UNIQUE PRIMARY KEY);
INSERT INTO public."SequelizeMeta" VALUES ('20230101000000-create-user.js'), ('20230201000000-create-order.js');

-- Entity Framework
CREATE TABLE public."__EFMigrationsHistory" ("MigrationId" varchar(150) NOT NULL, "ProductVersion" varchar(32) NOT NULL,
    CONSTRAINT "PK___EFMigrationsHistory" PRIMARY KEY ("MigrationId"));
INSERT INTO public."__EFMigrationsHistory" VALUES ('20230101000000_Init', '8.0.0'), ('20230301000000_AddOrders', '8.0.0');

-- Atlas, with its identifiers row; in `bad`, the newest revision stopped after one of its three statements
CREATE SCHEMA atlas_schema_revisions;
CREATE TABLE atlas_schema_revisions.atlas_schema_revisions ("version" character varying NOT NULL,
    "description" character varying NOT NULL, "type" bigint NOT NULL DEFAULT 2, "applied" bigint NOT NULL DEFAULT 0,
    "total" bigint NOT NULL DEFAULT 0, "executed_at" timestamptz NOT NULL, "execution_time" bigint NOT NULL,
    "error" text NULL, "error_stmt" text NULL, "hash" character varying NOT NULL, "partial_hashes" jsonb NULL,
    "operator_version" character varying NOT NULL, PRIMARY KEY ("version"));
INSERT INTO atlas_schema_revisions.atlas_schema_revisions VALUES
    ('.atlas_cloud_identifiers', '', 0, 0, 0, '2023-01-01', 0, NULL, NULL, '', NULL, 'Atlas CLI v0.21.1'),
    ('20230101000000', 'init', 2, 2, 2, '2023-01-01', 10, '', NULL, 'h1', NULL, 'Atlas CLI v0.21.1'),
    ('20230201000000', 'orders', 2, 3, 3, '2023-02-01', 10, NULL, NULL, 'h2', NULL, 'Atlas CLI v0.21.1');
CREATE TABLE bad.atlas_schema_revisions (LIKE atlas_schema_revisions.atlas_schema_revisions INCLUDING ALL);
INSERT INTO bad.atlas_schema_revisions SELECT * FROM atlas_schema_revisions.atlas_schema_revisions;
UPDATE bad.atlas_schema_revisions SET applied = 1, error = 'column "total" does not exist', error_stmt = 'ALTER TABLE orders ...'
    WHERE version = '20230201000000';

-- sqitch: project flipr at `orders`; another project's change deployed after it
CREATE SCHEMA sqitch;
CREATE TABLE sqitch.changes (change_id text PRIMARY KEY, script_hash text, change text NOT NULL, project text NOT NULL,
    note text NOT NULL DEFAULT '', committed_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    committer_name text NOT NULL, committer_email text NOT NULL, planned_at timestamptz NOT NULL,
    planner_name text NOT NULL, planner_email text NOT NULL);
INSERT INTO sqitch.changes (change_id, change, project, committed_at, committer_name, committer_email, planned_at, planner_name, planner_email) VALUES
    ('c1', 'users', 'flipr', '2023-01-01', 'ann', 'ann@example.com', '2023-01-01', 'ann', 'ann@example.com'),
    ('c2', 'orders', 'flipr', '2023-02-01', 'ann', 'ann@example.com', '2023-02-01', 'ann', 'ann@example.com'),
    ('c3', 'invoices', 'billing', '2023-03-01', 'ann', 'ann@example.com', '2023-03-01', 'ann', 'ann@example.com');
"#;

/// The migrations each runner's code ships, as it lays them out.
fn write_migrations(scratch: &Scratch) {
    let files: &[(&str, &str)] = &[
        ("dbmate/20230101000000_users.sql", "-- migrate:up\n"),
        ("dbmate/20230201000000_orders.sql", "-- migrate:up\n"),
        ("engine/db/migrate/20230115000000_billing.rb", "class Billing < ActiveRecord::Migration[7.1]\nend\n"),
        ("stems/0001_tenants.up.sql", ""),
        ("stems/0001_tenants.down.sql", ""),
        ("stems/0002_api_keys.up.sql", ""),
        ("stems/0002_api_keys.down.sql", ""),
        ("prisma/migrations/20230101000000_init/migration.sql", ""),
        ("prisma/migrations/20230301000000_orders/migration.sql", ""),
        ("prisma/migrations/migration_lock.toml", "provider = \"postgresql\"\n"),
        ("shop/orders/migrations/__init__.py", ""),
        ("shop/orders/migrations/0001_initial.py", ""),
        ("shop/orders/migrations/0002_refunds.py", ""),
        ("alembic/env.py", ""),
        ("alembic/versions/1975ea83b712_users.py", "revision = '1975ea83b712'\ndown_revision = None\n"),
        (
            "alembic/versions/ae1027a6acf_orders.py",
            "revision: str = 'ae1027a6acf'\ndown_revision: Union[str, None] = '1975ea83b712'\n",
        ),
        ("alembic/versions/27c6a30d7c24_audit.py", "revision = \"27c6a30d7c24\"\ndown_revision = \"ae1027a6acf\"\n"),
        (
            "db/changelog/db.changelog-master.xml",
            "<databaseChangeLog>\n  <changeSet id=\"1\" author=\"ann\"><sql>SELECT 1</sql></changeSet>\n  \
             <include file=\"db/changelog/changes/010-views.sql\"/>\n</databaseChangeLog>\n",
        ),
        (
            "db/changelog/changes/010-views.sql",
            "--liquibase formatted sql\n--changeset ann:2 runOnChange:true\nSELECT 1;\n--changeset bob:3\nSELECT 1;\n",
        ),
        ("knex/migrations/20230101000000_users.js", ""),
        ("knex/migrations/20230201000000_orders.js", ""),
        ("typeorm/1680000000000-add-users.ts", "export class AddUsers1680000000000 implements MigrationInterface {}\n"),
        (
            "typeorm/1690000000000-orders.ts",
            "export class CreateOrders1690000000000 implements MigrationInterface {}\n",
        ),
        ("sequelize/20230101000000-create-user.js", ""),
        ("sequelize/20230201000000-create-order.js", ""),
        ("ef/Migrations/20230101000000_Init.cs", ""),
        ("ef/Migrations/20230101000000_Init.Designer.cs", ""),
        ("ef/Migrations/20230301000000_AddOrders.cs", ""),
        ("ef/Migrations/20230301000000_AddOrders.Designer.cs", ""),
        ("ef/Migrations/ShopContextModelSnapshot.cs", ""),
        ("atlas/20230101000000_init.sql", ""),
        ("atlas/20230201000000_orders.sql", ""),
        ("atlas/atlas.sum", "h1:abc=\n"),
        (
            "sqitch/released/sqitch.plan",
            "%syntax-version=1.0.0\n%project=flipr\n\nusers 2023-01-01T00:00:00Z Ann <ann@example.com>\norders [users] 2023-02-01T00:00:00Z Ann <ann@example.com>\n",
        ),
        (
            "sqitch/next/sqitch.plan",
            "%project=flipr\nusers 2023-01-01T00:00:00Z Ann <a@b>\norders 2023-02-01T00:00:00Z Ann <a@b>\n@v1 2023-02-02T00:00:00Z Ann <a@b>\naudit [orders] 2023-04-01T00:00:00Z Ann <a@b>\n",
        ),
    ];
    for (name, text) in files {
        scratch.write(name, text);
    }
}

/// Each check: its TOML, then what each of its results must be (verdict, and a piece of its
/// message).
const CASES: &[(&str, &[(Verdict, &str)])] = &[
    (
        "preset = \"dbmate\"\nexpected_from = \"dbmate\"",
        &[
            (Verdict::Pass, "is 20230201000000"),
            (Verdict::Pass, "records each of the code's 2 migrations, and no other"),
        ],
    ),
    (
        "preset = \"rails\"\ntable = \"holes.schema_migrations\"\nexpected_from = \"dbmate\"",
        &[
            (Verdict::Pass, "is 20230201000000"),
            (Verdict::Fail, "`holes.schema_migrations` lacks 1 of the code's migrations: 20230101000000_users.sql ("),
        ],
    ),
    (
        "preset = \"rails\"\ntable = \"holes.engines\"\nexpected_from = [\"dbmate\", \"engine/db/migrate\"]",
        &[
            (Verdict::Pass, "is 20230201000000"),
            (Verdict::Pass, "records each of the code's 3 migrations, and no other"),
        ],
    ),
    (
        "preset = \"rails\"\ntable = \"holes.engines\"\nexpected_from = \"dbmate\"",
        &[
            (Verdict::Pass, "is 20230201000000"),
            (Verdict::Fail, "records 1 migration the code does not have: 20230115000000 (another branch's"),
        ],
    ),
    // The same migration whatever form each names it in; a different one with the same number is not.
    (
        "table = \"stems.schema_migrations\"\nexpected_from = \"stems\"",
        &[(Verdict::Pass, "is 0002_api_keys, the code's 0002")],
    ),
    (
        "table = \"stems.schema_migrations\"\nexpected_from = \"stems\"\nrecords = \"stem\"",
        &[(Verdict::Pass, "is 0002_api_keys")],
    ),
    (
        "table = \"bad.schema_migrations\"\nexpected_from = \"stems\"",
        &[(
            Verdict::Fail,
            "is 0002_api_tokens, expected 0002: two different migrations numbered 0002, the journal's 0002_api_tokens \
             and the code's 0002_api_keys.up.sql, neither newer",
        )],
    ),
    (
        "preset = \"prisma\"\nexpected_from = \"prisma/migrations\"",
        &[
            (Verdict::Pass, "is 20230301000000_orders"),
            (Verdict::Pass, ""),
            (Verdict::Pass, "records each of the code's 2 migrations, and no other"),
        ],
    ),
    (
        "preset = \"prisma\"\ntable = \"bad._prisma_migrations\"\nexpected_from = \"prisma/migrations\"",
        &[
            (
                Verdict::Fail,
                "the code's 20230301000000_orders is newer, so the database is behind the code by 1 migration",
            ),
            (Verdict::Fail, "records migration 20230301000000_orders as failed or rolled back, and not applied since"),
            (Verdict::Fail, "lacks 1 of the code's migrations: 20230301000000_orders (the runner applies them again"),
        ],
    ),
    (
        "preset = \"django\"\nexpected_from = \"shop/orders/migrations\"",
        &[(Verdict::Pass, "(app orders) is 0002_refunds")],
    ),
    (
        "preset = \"django\"\ntable = \"bad.django_migrations\"\napp = \"orders\"\nexpected_from = \"shop/orders/migrations\"",
        &[(Verdict::Fail, "is 0001_initial, expected 0002_refunds: the code's 0002_refunds is newer")],
    ),
    ("preset = \"alembic\"\nexpected_from = \"alembic\"", &[(Verdict::Pass, "is 27c6a30d7c24")]),
    (
        "preset = \"alembic\"\ntable = \"bad.alembic_version\"\nexpected_from = \"alembic\"",
        &[(
            Verdict::Fail,
            "is ae1027a6acf, expected 27c6a30d7c24: the code's 27c6a30d7c24 is newer, so the database is behind the code by 1 migration",
        )],
    ),
    (
        "preset = \"liquibase\"\nexpected_from = \"db/changelog/db.changelog-master.xml\"",
        &[(Verdict::Pass, "is db/changelog/changes/010-views.sql::3::bob, the code's 010-views.sql::3::bob")],
    ),
    (
        "preset = \"liquibase\"\ntable = \"bad.databasechangelog\"\nexpected_from = \"db/changelog\"",
        &[(Verdict::Fail, "behind the code by 1 migration")],
    ),
    (
        "preset = \"knex\"\nexpected_from = \"knex/migrations\"",
        &[
            (Verdict::Pass, "is 20230201000000_orders.js"),
            (Verdict::Pass, ""),
            (Verdict::Pass, "records each of the code's 2 migrations, and no other"),
        ],
    ),
    (
        "preset = \"knex\"\ntable = \"bad.knex_migrations\"\nexpected_from = \"knex/migrations\"",
        &[
            (Verdict::Pass, "is 20230201000000_orders.js"),
            (
                Verdict::Fail,
                "records migration 20230201000000_orders.js as part of a run that never finished (`bad.knex_migrations_lock` is still locked)",
            ),
            (Verdict::Pass, "records each of the code's 2 migrations, and no other"),
        ],
    ),
    (
        "preset = \"typeorm\"\nexpected_from = \"typeorm\"",
        &[
            (Verdict::Pass, "is CreateOrders1690000000000"),
            (Verdict::Pass, "records each of the code's 2 migrations, and no other"),
        ],
    ),
    (
        "preset = \"sequelize\"\nexpected_from = \"sequelize\"",
        &[
            (Verdict::Pass, "is 20230201000000-create-order.js"),
            (Verdict::Pass, "records each of the code's 2 migrations, and no other"),
        ],
    ),
    (
        "preset = \"entity-framework\"\nexpected_from = \"ef/Migrations\"",
        &[
            (Verdict::Pass, "is 20230301000000_AddOrders"),
            (Verdict::Pass, "records each of the code's 2 migrations, and no other"),
        ],
    ),
    (
        "preset = \"atlas\"\nexpected_from = \"atlas\"",
        &[
            (Verdict::Pass, "is 20230201000000"),
            (Verdict::Pass, ""),
            (Verdict::Pass, "records each of the code's 2 migrations, and no other"),
        ],
    ),
    (
        "preset = \"atlas\"\ntable = \"bad.atlas_schema_revisions\"\nexpected_from = \"atlas\"",
        &[
            (Verdict::Pass, "is 20230201000000"),
            (Verdict::Fail, "records migration 20230201000000 as failed or partly applied"),
            (Verdict::Pass, "records each of the code's 2 migrations, and no other"),
        ],
    ),
    (
        "preset = \"sqitch\"\nexpected_from = \"sqitch/released\"",
        &[
            (Verdict::Pass, "(project flipr) is orders"),
            (Verdict::Pass, "records each of the code's 2 migrations, and no other"),
        ],
    ),
    (
        "preset = \"sqitch\"\nexpected_from = \"sqitch/next/sqitch.plan\"",
        &[
            (
                Verdict::Fail,
                "is orders, expected audit: the code's audit is newer, so the database is behind the code by 1 migration",
            ),
            (Verdict::Fail, "lacks 1 of the code's migrations: audit ("),
        ],
    ),
];

/// The journals of twelve runners in one backup, each checked against its migrations: the
/// good ones pass, the behind, failed and unfinished ones fail saying so.
#[test]
fn each_runners_journal_passes_at_its_newest_migration_and_fails_behind_or_failed() {
    let scratch = Scratch::new();
    scratch.write("journals.sql", JOURNALS);
    write_migrations(&scratch);
    let mut scenario = String::from("[source]\npath = \"journals.sql\"\n");
    for (check, _) in CASES {
        scenario.push_str(&format!("[[checks.schema_version]]\n{check}\n"));
    }
    let drill = scratch.drill(&scratch.scenario("journals.toml", &scenario));
    assert_eq!(drill.code, Some(1), "{drill:?}");
    let mut results: std::slice::Iter<'_, CheckResult> = drill.record().checks.iter();
    for (check, expected) in CASES {
        for (verdict, message) in *expected {
            let result = results.next().unwrap_or_else(|| panic!("no result for\n{check}"));
            assert_eq!(result.verdict, *verdict, "{check}\n{result:#?}");
            assert!(result.message.contains(message), "{check}\n{result:#?}");
        }
    }
    assert!(results.next().is_none(), "a result no case expects");
}
