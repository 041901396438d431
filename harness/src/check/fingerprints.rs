//! `fingerprints`: every table holds the very rows the source held when the backup was taken,
//! value for value, not only as many.
//!
//! ```toml
//! [checks.fingerprints]
//! file = "backups/plur.fingerprint.json"   # `pgdrill fingerprint` on the source, in the
//!                                          # backup's snapshot (`--dump`, or `--snapshot ID`)
//! tables = ["public.engrams"]              # only these (default: every table of the file)
//! allowed_signers = "keys/allowed_signers" # the file must carry an SSH signature (FILE.sig) by
//! identity = "dba@example.com"             # one of these keys (`pgdrill fingerprint` signs it)
//! ```
//!
//! A fingerprint file kept beside the backup is only as trustworthy as the bucket: whoever can
//! rewrite the backup can rewrite it too. With `allowed_signers`, the file must carry a signature
//! by a key kept elsewhere, checked as `ssh-keygen -Y verify` checks it (namespace
//! `pgdrill-fingerprint@pgdrill.dev`); one missing, by another key or over another file fails
//! `fingerprints/signature`.
//!
//! Each table of the file is fingerprinted again on the restore ([`crate::fingerprint`]): the
//! same columns, the same key ranges, the same pinned settings; a table whose rows or digest
//! differ fails, naming each key range that differs. A table that is missing, is a view now, or
//! lost a column fails; a query that cannot run errs. A file that fingerprints only a sample of a
//! table's key ranges is compared on that sample, and the result says so.

use std::time::Instant;

use serde::Deserialize;

use super::{CheckContext, CheckError, CheckResult, Kind, ResolveContext};
use crate::field::{FieldError, Spanned};
use crate::fingerprint::{
    self, Described, FingerprintError, FingerprintFile, RangeFingerprint, Readers, TableFingerprint,
};
use crate::outcome::CheckKind;
use crate::pg::QualifiedName;

crate::outcome::findings! {
    /// What `fingerprints` finds.
    pub(crate) enum Found for Fingerprints {
        Same = Pass "fingerprints.same"
            "The table holds the same rows as the source when the backup was taken, value for value (in the ranges read, for a sampled table)."
            "Nothing.",
        Differs = Fail "fingerprints.differs"
            "The table's content differs from the source's in the backup's snapshot: rows were lost, added or changed."
            "Read the key ranges the message names, and compare them with the source.",
        NotComparable = Fail "fingerprints.not-comparable"
            "The table cannot be compared with its fingerprint: it is missing, a view now, or a column was lost or retyped."
            "Find what changed the table's shape between the source and the restore.",
        Signed = Pass "fingerprints.signed"
            "The fingerprint file is signed by a key of the allowed signers."
            "Nothing.",
        NotSigned = Fail "fingerprints.not-signed"
            "The fingerprint file is not proven to come from an allowed signer: whoever wrote it could have written any digest."
            "Sign the file with `pgdrill fingerprint --sign`, with a key of the allowed signers.",
        CouldNotRead = Error "fingerprints.could-not-read"
            "The table could not be read to fingerprint it."
            "Read the database's answer in the message.",
    }
}

pub(crate) const KIND: CheckKind = CheckKind::Fingerprints;

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "FingerprintsCheck")]
pub(crate) struct Config {
    /// The fingerprint file `pgdrill fingerprint` wrote on the source, in the backup's snapshot.
    pub file: Spanned<String>,
    /// Compare only these tables (default: every table the file fingerprints).
    #[serde(default)]
    pub tables: Option<Spanned<Vec<String>>>,
    /// An OpenSSH allowed signers file: the fingerprint file must carry a signature (FILE.sig)
    /// by one of its keys.
    #[serde(default)]
    pub allowed_signers: Option<Spanned<String>>,
    /// The principal the signer must be (`-I` of `ssh-keygen -Y verify`).
    #[serde(default)]
    pub identity: Option<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct Spec {
    pub file: std::path::PathBuf,
    /// The allowed signers file, when the scenario names one.
    pub allowed_signers: Option<std::path::PathBuf>,
    pub tables: Vec<TableFingerprint>,
    /// With `allowed_signers`: who signed the file, or why it is not proven to come from them.
    pub signed: Option<Result<String, String>>,
}

impl Kind for Spec {
    const KIND: CheckKind = KIND;
    type Config = Config;

    fn resolve(config: Config, ctx: &ResolveContext) -> Result<Self, FieldError> {
        let path = ctx.base.join(config.file.get_ref());
        let bytes = std::fs::read(&path)
            .map_err(|e| FieldError::new(config.file.span(), format!("cannot read `{}`: {e}", path.display())))?;
        let file = FingerprintFile::parse(&bytes, &path)
            .map_err(|e| FieldError::new(config.file.span(), crate::error::error_chain(&e)))?;
        let signed = match &config.allowed_signers {
            None => None,
            Some(list) => {
                let list_path = ctx.base.join(list.get_ref());
                let text = std::fs::read_to_string(&list_path).map_err(|e| {
                    FieldError::new(
                        list.span(),
                        format!("cannot read the allowed signers `{}`: {e}", list_path.display()),
                    )
                })?;
                let signers = crate::allowed_signers::AllowedSigners::parse(&text).map_err(|e| {
                    FieldError::new(
                        list.span(),
                        format!("`{}` is not an allowed signers file: {e}", list_path.display()),
                    )
                })?;
                let sig_path = fingerprint::signature_path(&path);
                Some(match std::fs::read_to_string(&sig_path) {
                    Err(_) => {
                        Err(format!("the fingerprint file has no signature: `{}` is missing", sig_path.display()))
                    }
                    Ok(pem) => crate::allowed_signers::verify_detached(
                        &signers,
                        config.identity.as_deref(),
                        fingerprint::SIGNATURE_NAMESPACE,
                        &bytes,
                        &pem,
                    )
                    .map_err(|e| e.to_string()),
                })
            }
        };
        let tables = match config.tables {
            None => file.tables,
            Some(wanted) => {
                let span = wanted.span();
                let mut chosen = Vec::new();
                for name in wanted.into_inner() {
                    let parsed = QualifiedName::parse(&name).map_err(|m| FieldError::new(span.clone(), m))?;
                    let found = file.tables.iter().find(|t| t.table == parsed).ok_or_else(|| {
                        FieldError::new(
                            span.clone(),
                            format!("`{name}` is not in the fingerprint file `{}`", path.display()),
                        )
                    })?;
                    chosen.push(found.clone());
                }
                if chosen.is_empty() {
                    return Err(FieldError::new(
                        span,
                        "`tables` is empty: a comparison with nothing passes on any restore",
                    ));
                }
                chosen
            }
        };
        let allowed_signers = config.allowed_signers.as_ref().map(|list| ctx.base.join(list.get_ref()));
        Ok(Spec { file: path, allowed_signers, tables, signed })
    }

    fn label(&self) -> String {
        self.tables.iter().map(|t| t.table.to_string()).collect::<Vec<_>>().join(", ")
    }

    /// The fingerprint file; with allowed signers, they and the file's signature (when there).
    fn files(&self) -> Vec<std::path::PathBuf> {
        let signature = fingerprint::signature_path(&self.file);
        let mut files = vec![self.file.clone()];
        if let Some(list) = &self.allowed_signers {
            files.push(list.clone());
            if signature.exists() {
                files.push(signature);
            }
        }
        files
    }

    fn objects(&self) -> Vec<String> {
        self.signed
            .iter()
            .map(|_| "signature".to_owned())
            .chain(self.tables.iter().map(|t| t.table.to_string()))
            .collect()
    }

    async fn run(&self, ctx: &CheckContext<'_>) -> Result<Vec<CheckResult>, CheckError> {
        let mut tx = fingerprint::begin(ctx.pool).await.map_err(|e| CheckError::new(e.to_string()))?;
        let mut results = Vec::new();
        if let Some(signed) = &self.signed {
            let build = CheckResult::build(KIND, "signature", Instant::now())
                .expected("signed by a key of the allowed signers")
                .evidence(format!(
                    "ssh-keygen -Y verify -f ALLOWED_SIGNERS -I IDENTITY -n {} -s {} < {}",
                    fingerprint::SIGNATURE_NAMESPACE,
                    fingerprint::signature_path(&self.file).display(),
                    self.file.display()
                ));
            results.push(match signed {
                Ok(by) => {
                    build.actual(by.clone()).found(Found::Signed, format!("the fingerprint file is signed by {by}"))
                }
                Err(why) => build.actual("not proven").found(
                    Found::NotSigned,
                    format!("the fingerprint file is not proven to come from an allowed signer: {why}"),
                ),
            });
        }
        let options = (*ctx.pool.connect_options()).clone();
        let mut readers = Readers::new(&mut tx, options, None, 0, fingerprint::MEMORY)
            .await
            .map_err(|e| CheckError::new(crate::error::error_chain(&e)))?;
        for expected in &self.tables {
            results.push(compare(&mut tx, &mut readers, expected, Instant::now()).await);
        }
        readers.close().await;
        // Only read: nothing to keep.
        let _ = tx.rollback().await;
        Ok(results)
    }
}

/// One table of the file against the restore.
async fn compare(
    conn: &mut sqlx::PgConnection,
    readers: &mut Readers,
    expected: &TableFingerprint,
    started: Instant,
) -> CheckResult {
    let table = &expected.table;
    let build = || CheckResult::build(KIND, table.to_string(), started).expected(expected.summary());
    let columns: Vec<String> = expected.columns.iter().map(|c| c.name.clone()).collect();
    let described = match fingerprint::describe(conn, table, Some(&columns), expected.key.as_deref()).await {
        Ok(d) => d,
        Err(e @ FingerprintError::Sql { .. }) => return build().found(Found::CouldNotRead, e.to_string()),
        Err(e) => return build().actual("not comparable").found(Found::NotComparable, e.to_string()),
    };
    let evidence = evidence(&described, expected);
    let build = || build().evidence(evidence.clone());
    if let Some(changed) = expected.columns.iter().zip(&described.columns).find(|(e, f)| e.type_name != f.type_name) {
        let e = FingerprintError::ColumnType {
            table: expected.table.to_string(),
            column: changed.0.name.clone(),
            expected: changed.0.type_name.clone(),
            found: changed.1.type_name.clone(),
        };
        return build().actual("not comparable").found(Found::NotComparable, e.to_string());
    }
    let spans: Vec<fingerprint::Span> = expected.ranges.iter().map(|r| (r.after.clone(), r.upto.clone())).collect();
    let found = match readers.fingerprint(conn, &described, &spans, expected.row_text).await {
        Ok(found) => found,
        Err(e) => return build().found(Found::CouldNotRead, crate::error::error_chain(&e)),
    };
    let actual = TableFingerprint::new(
        expected.table.clone(),
        described.columns.clone(),
        expected.row_text,
        expected.key.clone(),
        found,
        expected.sampled_of,
    );
    let differing: Vec<(&RangeFingerprint, &RangeFingerprint)> =
        expected.ranges.iter().zip(&actual.ranges).filter(|(e, a)| !e.same_as(a)).collect();
    let sample = match expected.sampled_of {
        Some(of) => format!(" (a sample: {} of {of} key ranges)", expected.ranges.len()),
        None => String::new(),
    };
    let build = build().actual(actual.summary());
    if differing.is_empty() {
        return build.found(
            Found::Same,
            format!("`{}` holds the same {} rows, value for value{sample}", expected.table, actual.rows),
        );
    }
    let key = expected.key.as_deref();
    let named: Vec<String> = differing.iter().take(5).map(|(e, a)| describe_difference(e, a, key)).collect();
    let more = if differing.len() > 5 { format!(", and {} more ranges", differing.len() - 5) } else { String::new() };
    build.found(
        Found::Differs,
        format!(
            "`{}`'s content differs from the source's when the backup was taken{sample}: {}{more}",
            expected.table,
            named.join("; ")
        ),
    )
}

/// One range that differs: its rows, and whether only values changed.
fn describe_difference(expected: &RangeFingerprint, actual: &RangeFingerprint, key: Option<&str>) -> String {
    let what = if expected.rows == actual.rows {
        format!("{} rows as before, other values", actual.rows)
    } else {
        format!("{} rows, the source held {}", actual.rows, expected.rows)
    };
    format!("{}: {what}", expected.describe(key))
}

/// The query that computes it, with the settings, as a reader can run it again.
fn evidence(described: &Described, expected: &TableFingerprint) -> String {
    let first = expected.ranges.first();
    let sql = described.range_sql(
        first.is_some_and(|r| r.after.is_some()),
        first.is_some_and(|r| r.upto.is_some()),
        expected.row_text,
    );
    let more = if expected.ranges.len() > 1 {
        format!("\n-- once per key range ({} ranges), $1 and $2 its bounds", expected.ranges.len())
    } else {
        String::new()
    };
    format!("{}\n{};\n{sql}{more}", fingerprint::HOW, fingerprint::settings_sql())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evidence::sign::{KeyOrigin, Signer};
    use crate::secret::Secret;

    /// A v1 file, written before v2 and signed then, is read as it is: its signature still
    /// holds, and its table is a name.
    #[test]
    fn a_signed_v1_file_still_verifies() {
        let dir = tempfile::tempdir().unwrap();
        let key = ssh_key::PrivateKey::from(ssh_key::private::Ed25519Keypair::from_seed(&[7; 32]));
        let text = Secret::new(key.to_openssh(ssh_key::LineEnding::LF).unwrap().as_str());
        let signer = Signer::parse(&text, None, KeyOrigin::Env).unwrap();
        let file = dir.path().join("shop.fingerprint.json");
        let bytes = crate::fingerprint::tests::file_text("pgdrill.fingerprint.v1", r#"public.\"Track\""#);
        std::fs::write(&file, &bytes).unwrap();
        let pem = signer.sign_in(fingerprint::SIGNATURE_NAMESPACE, bytes.as_bytes()).unwrap();
        std::fs::write(fingerprint::signature_path(&file), pem).unwrap();
        let signers = format!("dba@example.com {}\n", key.public_key().to_openssh().unwrap());
        std::fs::write(dir.path().join("allowed_signers"), signers).unwrap();
        let config: Config = toml::from_str(
            "file = \"shop.fingerprint.json\"\nallowed_signers = \"allowed_signers\"\nidentity = \"dba@example.com\"\n\
             tables = ['public.\"Track\"']\n",
        )
        .unwrap();
        let ctx = ResolveContext { base: dir.path().to_owned(), baseline: None };
        let spec = Spec::resolve(config, &ctx).unwrap();
        let signed = spec.signed.clone().expect("a signature was asked for");
        assert!(signed.as_ref().is_ok_and(|by| by.starts_with(signer.fingerprint())), "{signed:?}");
        assert_eq!(std::fs::read_to_string(&file).unwrap(), bytes, "read, not written again");
        assert_eq!(spec.tables[0].table, QualifiedName::new("public", "Track"));
        assert_eq!(spec.objects(), ["signature", "public.\"Track\""]);
    }
}
