//! Embeds the migrations (`migrations/sqlite`, `migrations/postgres`) into the binary: writes
//! `$OUT_DIR/migrations.rs` with each file's name and text, in version order, for
//! `storage/migrations.rs`. (sqlx's `migrate!` macro does the same at the price of compiling
//! both database drivers a second time, for the macro.)

use std::fmt::Write as _;
use std::path::Path;
use std::{env, fs};

fn main() {
    println!("cargo:rerun-if-changed=migrations");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
    let mut out = String::new();
    for (name, dir) in [("SQLITE", "sqlite"), ("POSTGRES", "postgres")] {
        let dir = root.join(dir);
        println!("cargo:rerun-if-changed={}", dir.display());
        let mut files: Vec<_> = fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
            .map(|e| e.expect("a directory entry").path())
            .filter(|p| p.extension().is_some_and(|x| x == "sql"))
            .collect();
        files.sort();
        writeln!(out, "pub(super) const {name}: &[(&str, &str)] = &[").unwrap();
        for f in files {
            let file = f.file_name().and_then(|n| n.to_str()).expect("a UTF-8 file name");
            writeln!(out, "    ({file:?}, include_str!({:?})),", f.display().to_string()).unwrap();
        }
        writeln!(out, "];").unwrap();
    }
    fs::write(Path::new(&env::var("OUT_DIR").expect("OUT_DIR")).join("migrations.rs"), out).expect("writing migrations.rs");
}
