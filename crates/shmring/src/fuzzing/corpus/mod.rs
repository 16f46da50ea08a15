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

/// Write `seeds` as fuzz target `target`'s seed corpus (each under 4 KiB): the body of
/// every `regenerate_seed_corpus`, run by hand after a layout or format change.
fn write_seeds(target: &str, seeds: Vec<(&'static str, Vec<u8>)>) {
    let d = repo_path(&format!("fuzz/corpus/{target}"));
    std::fs::create_dir_all(&d).unwrap();
    for (name, img) in seeds {
        assert!(img.len() < 4096, "{name} is {} bytes", img.len());
        std::fs::write(d.join(name), img).unwrap();
    }
}

/// Check that the seed files of `target` on disk are `seeds`, what
/// `fuzzing::corpus::<module>::regenerate_seed_corpus` writes today (a layout change
/// needs a regeneration): the body of every `seed_corpus_is_current`.
fn check_seeds(target: &str, module: &str, seeds: Vec<(&'static str, Vec<u8>)>) {
    let d = repo_path(&format!("fuzz/corpus/{target}"));
    for (name, img) in seeds {
        let on_disk = std::fs::read(d.join(name)).unwrap_or_default();
        assert!(
            on_disk == img,
            "fuzz/corpus/{target}/{name} is stale: \
             cargo test -p shmring --lib fuzzing::corpus::{module}::regenerate_seed_corpus -- --ignored"
        );
    }
}
