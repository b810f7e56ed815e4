//! Runs the whole conformance suite in headless Chromium through
//! `wasm-bindgen-test` (see `scripts/conformance-wasm.sh`), and holds it to
//! the same expected counts as the native run (`tests/vectors.rs`).
#![cfg(target_arch = "wasm32")]

use qpq_conformance::{embedded, run_all, EXPECTED_EXECUTED, EXPECTED_NEGATIVE};
use wasm_bindgen_test::{console_log, wasm_bindgen_test, wasm_bindgen_test_configure};

wasm_bindgen_test_configure!(run_in_browser);

#[wasm_bindgen_test]
fn ietf_mls_vectors_pass_for_the_shipped_suite_in_the_browser() {
    let report = run_all(&embedded());
    console_log!("{report}");
    console_log!(
        "browser: executed={} passed={} other-suite={} negative={}/{}",
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
