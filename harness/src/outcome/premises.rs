//! What a PASS of each check kind rests on: the premises that must hold for the database to be
//! what the PASS says, and how the check establishes each. The reference page lists them beside
//! what a PASS proves, and every result's evidence ends with its kind's, so that an auditor reads
//! what was tried, what was read and compared, and what was taken on the scenario's word.

use super::CheckKind;

/// How a check establishes one premise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Established {
    /// Tried: the application's role (or the server) did it, in work that is rolled back.
    Behaviour,
    /// Read from the catalog or the data by pgdrill's own session and compared.
    Reading,
    /// Compared with what the scenario, its baseline, its fingerprint file or the dump gives.
    Comparison,
    /// Judged by PostgreSQL's own program (`pg_amcheck`, `pg_checksums`).
    Program,
    /// Read from the code the backup holds, with pgdrill's allow-list of what cannot tell the
    /// drill's session from the application's.
    Analysis,
    /// Taken on the scenario's word, with the reason it gives (shown in the report).
    Acceptance,
}

impl Established {
    /// How it reads in a sentence: `by behaviour`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Established::Behaviour => "by behaviour",
            Established::Reading => "by reading",
            Established::Comparison => "by comparison",
            Established::Program => "by PostgreSQL's own program",
            Established::Analysis => "by analysis",
            Established::Acceptance => "by acceptance",
        }
    }
}

/// One premise a PASS rests on, and how it is established.
#[derive(Debug, Clone, Copy)]
pub struct Premise {
    /// What must be true.
    pub claim: &'static str,
    /// How the check makes sure of it.
    pub by: Established,
}

/// A premise as a literal (a struct expression, so that the lists below are promoted to
/// `'static`).
macro_rules! premise {
    ($claim:expr, $by:expr $(,)?) => {
        Premise { claim: $claim, by: $by }
    };
}

use Established::{Acceptance, Analysis, Behaviour, Comparison, Program, Reading};

/// Premises every check that reads the catalog shares: the restore's catalog is the one
/// PostgreSQL acts on (a superuser restore can write catalog rows directly).
const CATALOG: Premise = premise!(
    "the catalog rows read are the ones PostgreSQL acts on (the restore phase fails a restore that wrote derived flags directly)",
    Reading,
);

const EXTENSIONS: &[Premise] =
    &[CATALOG, premise!("each extension named is installed at the version named or newer (pg_extension)", Reading)];

const SCHEMA_VERSION: &[Premise] = &[
    premise!(
        "the journal read is the table the application's runner reads: a table, under the name its sessions resolve",
        Reading,
    ),
    premise!("its newest entry is the expected migration, and none is dirty or failed", Comparison),
    premise!(
        "with a migrations folder, each of its migrations is recorded and no other (journals that keep a row per migration; golang-migrate's, Alembic's, Flyway's, Liquibase's and Django's are compared at the newest only)",
        Comparison,
    ),
    premise!(
        "with `baseline = true`, each migration the baseline recorded of the journal is still recorded (newer ones pass)",
        Comparison,
    ),
];

const ROW_COUNTS: &[Premise] = &[
    premise!(
        "the table counted is the one the application's sessions resolve the name to (every login role's, when the scenario names none)",
        Reading,
    ),
    premise!("count(*) of the table equals the dump's, the baseline's or the scenario's count", Comparison),
];

const FINGERPRINTS: &[Premise] = &[
    premise!("the fingerprint file is the source's (its SSH signature, when `allowed_signers` is set)", Comparison),
    premise!("every row of every table named hashes as the source's did, range by range", Comparison),
];

const CANARY: &[Premise] = &[premise!("exactly one row matches, and each of its values is the one named", Comparison)];

const INDEXES: &[Premise] = &[
    CATALOG,
    premise!("each index exists, valid, ready and live, with the parts the baseline or scenario names", Reading),
];

const RLS: &[Premise] = &[
    CATALOG,
    premise!("row security is on (and forced) and the policies named exist as named", Reading),
    premise!(
        "in a session the role opened itself, no tenant reads no rows and one tenant reads only its own",
        Behaviour,
    ),
    premise!(
        "nothing the role can set or call reads the session in a way the drill did not try (read from the code its policies, triggers and login event triggers run; settings tried with the literals that code holds)",
        Analysis,
    ),
    LOOPHOLE_ALLOWED,
    LOOPHOLE_KEYS,
    premise!(
        "a row's own value a policy compares with a constant (`OR visibility = 'public'`, `IN (...)`, a boolean read bare: `OR is_public`) is tried: the probe rows hold the column's first such constant, or the value that makes the boolean's test true (another constant of the same column is not tried)",
        Behaviour,
    ),
    premise!(
        "no policy compares a row's own value with a constant by order or pattern (`OR sent_at < '2020-01-01'`): one made-up value of the probe rows tries no such door",
        Analysis,
    ),
    premise!("a setting only a trusted path can set is not one the role sets", Acceptance),
];

/// The code protections run uses only built-ins of the allow-list (`check/loophole/allowed.rs`).
const LOOPHOLE_ALLOWED: Premise = premise!(
    "every built-in, extension function and catalog view that code uses is on pgdrill's allow-list (immutable; a setting by name; the login's identity or the restored catalog; formatting that follows TimeZone, DateStyle and the like); a function called by name is allowed only when every form of it is",
    Analysis,
);

/// Each setting it reads is compared with literals only (`check/loophole/keys.rs`).
const LOOPHOLE_KEYS: Premise = premise!(
    "each setting that code reads is compared for equality with literals (each tried), or returned to code that is, or read only where it can hide rows and never show more: a SELECT policy where an UPDATE or DELETE reads rows, and in fail-closed reads a conjunct of a policy's top-level AND, beside its tenant comparison, that is a column equal to the setting, or an OR with such a side (the probe rows hold the session's value)",
    Analysis,
);

const APPEND_ONLY: &[Premise] = &[
    premise!("the table is a table, and the role's own INSERT adds a row to it", Behaviour),
    premise!("the role's own UPDATE, DELETE and TRUNCATE are refused on purpose, each column tried", Behaviour,),
    premise!(
        "nothing the role can set or call reads the session in a way the drill did not try (read from the code its triggers, rules, policies and login event triggers run)",
        Analysis,
    ),
    LOOPHOLE_ALLOWED,
    LOOPHOLE_KEYS,
    premise!(
        "no guard decides by the row's own value compared with a constant (`OLD.status = 'draft'`): the drill aims at rows the table holds, not at those the application could write with the key value",
        Analysis,
    ),
    premise!(
        "no code of others the role runs changes the table with their powers (a SECURITY DEFINER function it may call, a definer trigger or a rule on a table it writes, a view over the table it may change, a foreign key of the table with a cascading action on one it may change): read whole, every statement on the allow-list (queries, appends, changes of other tables whose own triggers and rules are read too)",
        Analysis,
    ),
    premise!("code of others that changes the table by design (`accept`, for the sha256 of its code)", Acceptance),
    premise!("with `key`, every row of the previous drill's backup is still there", Comparison),
];

const ROLES: &[Premise] = &[
    CATALOG,
    premise!("the role's privileges and attributes are at least its floor and within its ceiling", Reading),
    premise!("no function it can call reaches a forbidden schema, read from the functions' code", Analysis,),
    premise!("an attribute, membership or definer function it needs by design", Acceptance),
];

const GRAPHS: &[Premise] = &[premise!("each graph answers Cypher with the label counts named", Behaviour)];

const PARTITIONS: &[Premise] = &[
    CATALOG,
    premise!("range partitions cover the window around the drill's month, with a default where named", Reading),
];

const SCHEMAS: &[Premise] = &[
    CATALOG,
    premise!(
        "each schema of the baseline holds its tables, enums and sequences, each behaving as recorded",
        Comparison,
    ),
    premise!("a baseline that records no behaviour is good enough (`older_baseline`, names only)", Acceptance,),
    premise!("no sequence is behind the values its column holds", Reading),
];

const SQL: &[Premise] = &[
    premise!(
        "the statement's answer, in a transaction rolled back (as the role, in a session it opened itself, when one is named)",
        Behaviour,
    ),
    premise!(
        "as a role: nothing the code its statement runs through reads tells the drill's session from the application's (read from its plan's tables' policies, triggers and rules, the functions and views it names, and the login event triggers)",
        Analysis,
    ),
    LOOPHOLE_ALLOWED,
    LOOPHOLE_KEYS,
    premise!("a fact the drill cannot try that the scenario trusts, with its reason", Acceptance),
];

const AMCHECK: &[Premise] = &[premise!("every heap page and btree index is intact, as pg_amcheck judges it", Program)];

const VECTOR_RECALL: &[Premise] =
    &[premise!("searches through the index find the exact scan's neighbours at the recall named", Behaviour,)];

const POINT_IN_TIME: &[Premise] = &[premise!("the change before the target is there, the one after is not", Behaviour)];

const COLLATIONS: &[Premise] =
    &[CATALOG, premise!("each recorded collation version is the target's libraries' own", Reading)];

const CHECKSUMS: &[Premise] = &[premise!("every data page carries the checksum it was written with", Program)];

const TRIGGERS: &[Premise] = &[
    CATALOG,
    premise!("each table has exactly the triggers named, each firing in ordinary sessions of the application", Reading,),
];

const API: &[Premise] =
    &[premise!("the application, on the restored database, answers each request as named", Behaviour)];

const OBJECTIVES: &[Premise] = &[premise!("the drill's measured times are within the objectives set", Comparison)];

impl CheckKind {
    /// What a PASS of this kind rests on, each premise with how it is established.
    pub const fn premises(self) -> &'static [Premise] {
        match self {
            CheckKind::Extensions => EXTENSIONS,
            CheckKind::SchemaVersion => SCHEMA_VERSION,
            CheckKind::RowCounts => ROW_COUNTS,
            CheckKind::Fingerprints => FINGERPRINTS,
            CheckKind::Canary => CANARY,
            CheckKind::Indexes => INDEXES,
            CheckKind::Rls => RLS,
            CheckKind::AppendOnly => APPEND_ONLY,
            CheckKind::Roles => ROLES,
            CheckKind::Graphs => GRAPHS,
            CheckKind::Partitions => PARTITIONS,
            CheckKind::Schemas => SCHEMAS,
            CheckKind::Sql => SQL,
            CheckKind::Amcheck => AMCHECK,
            CheckKind::VectorRecall => VECTOR_RECALL,
            CheckKind::PointInTime => POINT_IN_TIME,
            CheckKind::Collations => COLLATIONS,
            CheckKind::Checksums => CHECKSUMS,
            CheckKind::Triggers => TRIGGERS,
            CheckKind::Api => API,
            CheckKind::Objectives => OBJECTIVES,
        }
    }

    /// The premises in one line, for a result's evidence: `its PASS rests on: ... (by reading);
    /// ...`.
    pub fn premises_line(self) -> String {
        let each: Vec<String> = self.premises().iter().map(|p| format!("{} ({})", p.claim, p.by.as_str())).collect();
        format!("its PASS rests on: {}", each.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_says_what_its_pass_rests_on_and_how() {
        for kind in CheckKind::ALL {
            assert!(!kind.premises().is_empty(), "{kind}");
            assert!(kind.premises_line().starts_with("its PASS rests on: "), "{kind}");
        }
        assert!(CheckKind::Schemas.premises_line().contains("(`older_baseline`, names only) (by acceptance)"));
    }
}
