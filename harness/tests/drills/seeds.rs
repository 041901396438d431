//! The five seed systems: each scenario drills its bundled backup green, and each broken
//! variant of a backup fails with exactly the findings meant to catch it, by their codes.

use std::collections::BTreeSet;

use pgdrill::Verdict;
use pgdrill::outcome::{Phase, PhaseStatus};
use pgdrill::scenario::Scenario;
use rstest::rstest;

use crate::util::{Scratch, root};

/// Powernode's scenario logs in with its known user; the password comes from the environment.
fn login_env() -> Vec<(String, String)> {
    vec![("POWERNODE_LOGIN_PASSWORD".to_owned(), "drill-login-password".to_owned())]
}

/// Each seed's scenario asks for the check kinds its system needs proven (its README in
/// `../shared/seeds/`). That the scenarios pass is proven by the `scenarios` test target, which
/// drills every file under `scenarios/`.
#[rstest]
#[case::plur("plur", &["extensions", "schema_version", "row_counts", "indexes", "roles", "graphs", "partitions", "schemas"])]
#[case::powernode("powernode", &["extensions", "schema_version", "row_counts", "indexes", "roles", "sql", "schemas", "api"])]
#[case::prismeai("prismeai", &["schema_version", "row_counts", "indexes", "roles", "sql", "schemas"])]
#[case::caracal("caracal", &["schema_version", "row_counts", "rls", "append_only", "partitions", "roles", "schemas"])]
#[case::paperclip("paperclip", &["schema_version", "row_counts", "indexes", "schemas", "roles", "sql"])]
#[case::controlplane("controlplane", &["schema_version", "row_counts", "rls", "append_only", "roles", "schemas"])]
fn seed_scenario_checks_what_its_system_needs(#[case] scenario: &str, #[case] kinds: &[&str]) {
    let loaded = Scenario::load(&root().join(format!("scenarios/{scenario}.toml"))).expect("seed scenario loads");
    let configured: BTreeSet<&str> = loaded.kinds().iter().map(|k| k.as_str()).collect();
    for kind in kinds {
        assert!(configured.contains(kind), "{scenario} configures no {kind} check: {configured:?}");
    }
}

/// A broken variant of a seed's backup (`fixtures/<system>/broken/<variant>.sql` applied before
/// pg_dump), drilled with the seed's own scenario and baseline.
#[rstest]
#[case::plur_app_superuser("plur", "app-superuser", &[
    "roles.elevated-attribute",
    "roles.elevated-membership",
    "roles.owns-objects",
    "roles.can-create",
])]
#[case::plur_graph_broken("plur", "graph-broken", &["graphs.counts-differ", "graphs.wrong-answer"])]
#[case::powernode_hnsw_index_dropped("powernode", "hnsw-index-dropped", &["indexes.missing", "indexes.baseline-differs"])]
#[case::caracal_rls_disabled("caracal", "rls-disabled", &["rls.disabled", "rls.unset-tenant-reads-rows", "rls.baseline-differs"])]
#[case::caracal_rls_not_forced("caracal", "rls-not-forced", &["rls.not-forced", "rls.baseline-differs"])]
#[case::caracal_audit_update_granted("caracal", "audit-update-granted", &["append-only.mutable"])]
#[case::caracal_partition_missing("caracal", "partition-missing", &["partitions.gap"])]
#[case::caracal_dirty_migration("caracal", "dirty-migration", &["schema-version.failed-migration"])]
#[case::controlplane_leaky_policy("controlplane", "leaky-policy", &["rls.unset-tenant-reads-rows", "rls.baseline-differs"])]
#[case::controlplane_audit_update_granted("controlplane", "audit-update-granted", &["append-only.mutable"])]
#[case::paperclip_plugin_schema_lost("paperclip", "plugin-schema-lost", &["schemas.missing"])]
#[case::paperclip_sequence_reset("paperclip", "sequence-reset", &["schemas.sequence-behind"])]
fn broken_variant_fails_on_its_check(#[case] system: &str, #[case] variant: &str, #[case] codes: &[&str]) {
    let scratch = Scratch::new();
    let broken = root().join("fixtures/backups/broken");
    let backup = broken.join(format!("{system}-{variant}.sql.gz"));
    let globals = broken.join(format!("{system}-{variant}.globals.sql"));
    let mut args = vec!["--backup".to_owned(), backup.display().to_string()];
    if globals.is_file() {
        args.extend(["--globals".to_owned(), globals.display().to_string()]);
    }
    let drill = scratch.drill_env(&root().join(format!("scenarios/{system}.toml")), &args, &login_env());
    drill.assert_failed_cleanly();
    let record = drill.record();
    assert_eq!(drill.phase(Phase::Restore), PhaseStatus::Passed, "the broken backup still restores\n{drill:?}");
    let failed: Vec<_> = record.checks.iter().filter(|c| c.verdict != Verdict::Pass).collect();
    assert!(failed.iter().all(|c| c.verdict == Verdict::Fail), "failed, not errored\n{drill:?}");
    let found: BTreeSet<&str> = failed.iter().map(|c| c.code.as_str()).collect();
    assert_eq!(found, codes.iter().copied().collect(), "only these findings\n{drill:?}");
    let markdown = drill.report("report.md");
    assert!(markdown.contains(&format!("(fail, `{}`)", codes[0])), "{markdown}");
}

#[test]
fn a_baseline_captured_from_a_drill_matches_the_one_from_the_source() {
    let scratch = Scratch::new();
    let out = scratch.path("prismeai.json");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_pgdrill"))
        .args(["baseline", "--from-drill", "scenarios/prismeai.toml", "--reports"])
        .arg(scratch.path("reports"))
        .arg("-o")
        .arg(&out)
        .current_dir(root())
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let restored = pgdrill::baseline::Baseline::load(&out).expect("a baseline was written");
    let source = pgdrill::baseline::Baseline::load(&root().join("fixtures/baselines/prismeai.json")).unwrap();
    assert_eq!(restored.row_counts, source.row_counts);
    // The restore's baseline records what makes indexes, tables and sequences behave as the
    // source's did, and agrees with it.
    assert!(restored.indexes.iter().all(|i| i.ready == Some(true) && i.live == Some(true) && i.parts.is_some()));
    assert!(restored.schemas.values().all(|s| s.table_facts.is_some() && s.sequence_facts.is_some()));
    assert_eq!(restored.indexes, source.indexes);
    assert_eq!(restored.schemas, source.schemas);
    assert_eq!(restored.policies, source.policies);
    assert_eq!(restored.migrations, source.migrations);
    assert!(restored.source.contains("drill of scenario `prismeai`"), "{}", restored.source);
}
