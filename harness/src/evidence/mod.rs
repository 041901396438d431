//! The evidence over a drill's reports: the manifest of their digests (`MANIFEST.sha256`), the
//! in-toto statement of what was drilled (`statement`), its SSH signature (`sign`), a sampled
//! drill's plan re-derived (`plan`), and the verification an auditor runs on a reports folder
//! (`verify`); and a follower's receipts over its ledger, verified the same way (`receipts`).
//! Reads the record; renders no report.

pub(crate) mod ack;
pub(crate) mod manifest;
pub(crate) mod plan;
pub(crate) mod receipts;
pub(crate) mod sign;
pub(crate) mod statement;
pub(crate) mod test_result;
pub(crate) mod verify;
