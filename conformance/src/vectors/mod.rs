//! One module per vector file, each with a `check` for a single vector, and
//! the loop that picks which vectors to run.

pub(crate) mod crypto_basics;
pub(crate) mod deserialization;
pub(crate) mod json;
pub(crate) mod key_schedule;
pub(crate) mod message_protection;
pub(crate) mod messages;
pub(crate) mod passive_client;
pub(crate) mod psk_secret;
pub(crate) mod secret_tree;
pub(crate) mod transcript_hashes;
pub(crate) mod tree_math;
pub(crate) mod tree_operations;
pub(crate) mod tree_validation;
pub(crate) mod treekem;
pub(crate) mod welcome;

use serde_json::Value;

use crate::{
    error::CheckError,
    files::{VectorFile, VectorFiles},
    pin,
    report::{Failure, FileReport},
    rfc::crypto::Suite,
    SHIPPED_SUITE,
};

type Check = fn(&Value) -> Result<(), CheckError>;

fn check_for(file: VectorFile) -> Check {
    match file {
        VectorFile::TreeMath => tree_math::check,
        VectorFile::CryptoBasics => crypto_basics::check,
        VectorFile::SecretTree => secret_tree::check,
        VectorFile::MessageProtection => message_protection::check,
        VectorFile::KeySchedule => key_schedule::check,
        VectorFile::PskSecret => psk_secret::check,
        VectorFile::TranscriptHashes => transcript_hashes::check,
        VectorFile::Welcome => welcome::check,
        VectorFile::TreeOperations => tree_operations::check,
        VectorFile::TreeValidation => tree_validation::check,
        VectorFile::TreeKem => treekem::check,
        VectorFile::Messages => messages::check,
        VectorFile::Deserialization => deserialization::check,
        VectorFile::PassiveClientWelcome
        | VectorFile::PassiveClientHandlingCommit
        | VectorFile::PassiveClientRandom => passive_client::check,
    }
}

fn suite_field(v: &Value) -> Option<u64> {
    v.get("cipher_suite").and_then(Value::as_u64)
}

/// The vectors of a file that the run covers, with the suite-selection rule:
/// vectors without a suite and vectors for the shipped suite always run;
/// a file with no vector for the shipped suite runs its vectors for suites
/// the provider supports instead (reported as `substitute_suite`); every
/// other vector counts as "other suite".
pub(crate) struct Selection {
    pub(crate) vectors: Vec<Value>,
    pub(crate) run: Vec<usize>,
    pub(crate) other_suite: usize,
    pub(crate) substitute_suite: Option<u16>,
}

pub(crate) fn select(files: &VectorFiles<'_>, file: VectorFile) -> Result<Selection, CheckError> {
    pin::check(files, file)?;
    let vectors: Vec<Value> =
        serde_json::from_slice(files.get(file)).map_err(|e| CheckError::Json(e.to_string()))?;
    let shipped = u64::from(SHIPPED_SUITE);
    let has_shipped = vectors.iter().any(|v| suite_field(v) == Some(shipped));
    let mut sel = Selection {
        run: Vec::new(),
        other_suite: 0,
        substitute_suite: None,
        vectors: Vec::new(),
    };
    for (i, v) in vectors.iter().enumerate() {
        match suite_field(v) {
            None => sel.run.push(i),
            Some(s) if s == shipped => sel.run.push(i),
            Some(s) if !has_shipped && u16::try_from(s).is_ok_and(|s| Suite::new(s).is_ok()) => {
                sel.substitute_suite = u16::try_from(s).ok();
                sel.run.push(i);
            }
            Some(_) => sel.other_suite += 1,
        }
    }
    sel.vectors = vectors;
    Ok(sel)
}

/// Runs every selected vector of one file.
pub(crate) fn run_file(files: &VectorFiles<'_>, file: VectorFile) -> FileReport {
    let mut report = FileReport {
        file,
        total: 0,
        executed: 0,
        passed: 0,
        other_suite: 0,
        substitute_suite: None,
        failures: Vec::new(),
    };
    let sel = match select(files, file) {
        Ok(sel) => sel,
        Err(error) => {
            report.failures.push(Failure { index: None, error });
            return report;
        }
    };
    report.total = sel.vectors.len();
    report.other_suite = sel.other_suite;
    report.substitute_suite = sel.substitute_suite;
    let check = check_for(file);
    for i in sel.run {
        report.executed += 1;
        match check(&sel.vectors[i]) {
            Ok(()) => report.passed += 1,
            Err(error) => report.failures.push(Failure {
                index: Some(i),
                error,
            }),
        }
    }
    report
}
