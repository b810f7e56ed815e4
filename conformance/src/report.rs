//! What a run found: per-file counts, negative-case counts, failures.

use std::fmt;

use crate::{error::CheckError, files::VectorFile};

/// One check that did not pass.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// Index of the vector in its file, if the failure concerns one vector.
    pub index: Option<usize>,
    /// What went wrong.
    pub error: CheckError,
}

/// Counts for one vector file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileReport {
    /// Which file.
    pub file: VectorFile,
    /// Vectors in the file.
    pub total: usize,
    /// Vectors that were run.
    pub executed: usize,
    /// Vectors that were run and passed.
    pub passed: usize,
    /// Vectors for a cipher suite other than the shipped one, not run.
    pub other_suite: usize,
    /// Set when the file holds no vector for the shipped suite: its vectors
    /// for this (provider-supported) suite were run instead.
    pub substitute_suite: Option<u16>,
    /// Failures, including vectors that could not be run.
    pub failures: Vec<Failure>,
}

/// Counts for one kind of negative case.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NegativeReport {
    /// A short name of the kind of tampering.
    pub name: &'static str,
    /// Tampered inputs tried.
    pub executed: usize,
    /// Tampered inputs rejected with an error, as required.
    pub rejected: usize,
    /// Tampered inputs accepted, or set-up steps that failed.
    pub failures: Vec<Failure>,
}

/// The result of [`crate::run_all`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    /// One entry per vector file, in [`VectorFile::ALL`] order.
    pub files: Vec<FileReport>,
    /// One entry per kind of negative case.
    pub negatives: Vec<NegativeReport>,
}

impl Report {
    /// Vectors run, over all files.
    pub fn executed(&self) -> usize {
        self.files.iter().map(|f| f.executed).sum()
    }

    /// Vectors passed, over all files.
    pub fn passed(&self) -> usize {
        self.files.iter().map(|f| f.passed).sum()
    }

    /// Vectors skipped because they are for another suite.
    pub fn other_suite(&self) -> usize {
        self.files.iter().map(|f| f.other_suite).sum()
    }

    /// Negative cases tried.
    pub fn negatives_executed(&self) -> usize {
        self.negatives.iter().map(|n| n.executed).sum()
    }

    /// Negative cases rejected as required.
    pub fn negatives_rejected(&self) -> usize {
        self.negatives.iter().map(|n| n.rejected).sum()
    }

    /// Every failure, labelled with its file or negative-case kind.
    pub fn failures(&self) -> Vec<(String, &Failure)> {
        let files = self.files.iter().flat_map(|f| {
            f.failures
                .iter()
                .map(move |x| (f.file.name().to_string(), x))
        });
        let negatives = self.negatives.iter().flat_map(|n| {
            n.failures
                .iter()
                .map(move |x| (format!("negative: {}", n.name), x))
        });
        files.chain(negatives).collect()
    }

    /// Compares the counts with [`crate::EXPECTED`], [`crate::EXPECTED_EXECUTED`]
    /// and [`crate::EXPECTED_NEGATIVE`], and requires every executed vector
    /// and negative case to have passed. Returns what differs.
    pub fn check_expected(&self) -> Result<(), String> {
        let mut problems = Vec::new();
        if self.files.len() != crate::EXPECTED.len() {
            problems.push(format!(
                "{} files reported, {} expected",
                self.files.len(),
                crate::EXPECTED.len()
            ));
        }
        for (file, executed, other) in crate::EXPECTED {
            match self.files.iter().find(|f| f.file == file) {
                None => problems.push(format!("{}: not reported", file.name())),
                Some(f) => {
                    if f.executed == 0 {
                        problems.push(format!("{}: no vector executed", file.name()));
                    }
                    if (f.executed, f.other_suite) != (executed, other) {
                        problems.push(format!(
                            "{}: executed {} / other suite {}, expected {executed} / {other}",
                            file.name(),
                            f.executed,
                            f.other_suite
                        ));
                    }
                    if f.passed != f.executed {
                        problems.push(format!(
                            "{}: {} of {} passed",
                            file.name(),
                            f.passed,
                            f.executed
                        ));
                    }
                }
            }
        }
        if self.executed() != crate::EXPECTED_EXECUTED {
            problems.push(format!(
                "{} vectors executed, {} expected",
                self.executed(),
                crate::EXPECTED_EXECUTED
            ));
        }
        if self.negatives_executed() != crate::EXPECTED_NEGATIVE {
            problems.push(format!(
                "{} negative cases executed, {} expected",
                self.negatives_executed(),
                crate::EXPECTED_NEGATIVE
            ));
        }
        if self.negatives_rejected() != self.negatives_executed() {
            problems.push(format!(
                "{} of {} negative cases rejected",
                self.negatives_rejected(),
                self.negatives_executed()
            ));
        }
        for (what, x) in self.failures() {
            problems.push(format!("{what} #{:?}: {}", x.index, x.error));
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("\n"))
        }
    }

    /// Whether every executed vector and negative case passed.
    pub fn is_clean(&self) -> bool {
        self.failures().is_empty()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{:<38} {:>6} {:>9} {:>7} {:>12}  note",
            "vector file", "total", "executed", "passed", "other-suite"
        )?;
        for r in &self.files {
            let note = match r.substitute_suite {
                Some(s) => format!("no suite-3 vectors; ran suite {s}"),
                None => String::new(),
            };
            writeln!(
                f,
                "{:<38} {:>6} {:>9} {:>7} {:>12}  {note}",
                r.file.name(),
                r.total,
                r.executed,
                r.passed,
                r.other_suite
            )?;
        }
        writeln!(
            f,
            "{:<38} {:>6} {:>9} {:>7} {:>12}",
            "all files",
            self.files.iter().map(|r| r.total).sum::<usize>(),
            self.executed(),
            self.passed(),
            self.other_suite()
        )?;
        writeln!(f)?;
        writeln!(
            f,
            "{:<80} {:>9} {:>9}",
            "negative case", "executed", "rejected"
        )?;
        for n in &self.negatives {
            writeln!(f, "{:<80} {:>9} {:>9}", n.name, n.executed, n.rejected)?;
        }
        writeln!(
            f,
            "{:<80} {:>9} {:>9}",
            "all negative cases",
            self.negatives_executed(),
            self.negatives_rejected()
        )?;
        for (what, x) in self.failures() {
            match x.index {
                Some(i) => writeln!(f, "FAILED {what} #{i}: {}", x.error)?,
                None => writeln!(f, "FAILED {what}: {}", x.error)?,
            }
        }
        Ok(())
    }
}
