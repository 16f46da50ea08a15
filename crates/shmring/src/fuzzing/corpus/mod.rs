//! The seed corpora of the fuzz targets (`fuzz/corpus/<target>/`): made here, checked
//! to be current, and replayed with any saved reproducers (`fuzz/regressions/<target>/`)
//! through the targets on stable, in plain `cargo test`.

mod broadcast;
mod frames;
mod mpmc;
mod mpmc_image;
mod net;
mod segment;
mod sync;

use std::path::{Path, PathBuf};

/// `rel` under the repository's root (two levels above this crate).
fn repo_path(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").join(rel)
}

/// The files directly in `d` (none if it does not exist), sorted.
fn files_in(d: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = match std::fs::read_dir(d) {
        Ok(rd) => rd.map(|e| e.unwrap().path()).filter(|p| p.is_file()).collect(),
        Err(_) => Vec::new(),
    };
    v.sort();
    v
}

/// Replay fuzz target `target`'s seed corpus (which must not be empty) and any saved
/// reproducers in `fuzz/regressions/<target>/` through `run`.
fn replay_corpus(target: &str, run: impl Fn(&[u8])) {
    let seeds = files_in(&repo_path(&format!("fuzz/corpus/{target}")));
    assert!(!seeds.is_empty(), "the seed corpus fuzz/corpus/{target} is empty");
    let regressions = files_in(&repo_path(&format!("fuzz/regressions/{target}")));
    for f in seeds.iter().chain(&regressions) {
        let data = std::fs::read(f).unwrap();
        eprintln!("replaying {} ({} bytes)", f.display(), data.len());
        run(&data);
    }
}
