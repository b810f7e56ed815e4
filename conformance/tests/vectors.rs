//! Runs the whole conformance suite natively and holds it to the same
//! expected counts as the browser run (`tests/browser.rs`).
#![cfg(not(target_arch = "wasm32"))]

use qpq_conformance::{
    embedded, run_all, run_file, CheckError, VectorFile, EXPECTED_EXECUTED, EXPECTED_NEGATIVE,
};

#[test]
fn ietf_mls_vectors_pass_for_the_shipped_suite() {
    let report = run_all(&embedded());
    println!("{report}");
    println!(
        "native: executed={} passed={} other-suite={} negative={}/{}",
        report.executed(),
        report.passed(),
        report.other_suite(),
        report.negatives_rejected(),
        report.negatives_executed()
    );
    for f in &report.files {
        assert!(f.executed > 0, "{} executed no vector", f.file.name());
    }
    assert_eq!(report.executed(), EXPECTED_EXECUTED);
    assert_eq!(report.negatives_executed(), EXPECTED_NEGATIVE);
    if let Err(problems) = report.check_expected() {
        panic!("conformance run differs from the expected one:\n{problems}");
    }
}

#[test]
fn a_changed_vector_file_is_refused_before_it_runs() {
    let mut tampered = embedded().get(VectorFile::TreeMath).to_vec();
    tampered.extend_from_slice(b" ");
    let files = embedded().with(VectorFile::TreeMath, &tampered);
    let report = run_file(&files, VectorFile::TreeMath);
    assert_eq!(report.executed, 0);
    assert!(matches!(
        report.failures.as_slice(),
        [f] if f.index.is_none() && matches!(&f.error, CheckError::Mismatch(m) if m.contains("pinned SHA-256"))
    ));
}

#[test]
fn a_rewritten_sha256sums_does_not_unpin_the_files() {
    let sums = String::from_utf8(embedded().sha256sums.to_vec()).expect("SHA256SUMS is text");
    let forged = sums.replacen("27f0", "0000", 1);
    let files = qpq_conformance::VectorFiles {
        sha256sums: forged.as_bytes(),
        ..embedded()
    };
    let report = run_file(&files, VectorFile::TreeMath);
    assert_eq!(report.executed, 0);
    assert_eq!(report.failures.len(), 1);
}
