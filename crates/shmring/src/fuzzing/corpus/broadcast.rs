//! Replays the fuzz target's seed corpus (`fuzz/corpus/broadcast_image/`) and any saved
//! crash reproducers through `crate::fuzzing::broadcast_image` on stable.
//!
//! The seeds are made by `regenerate_seed_corpus` below:
//! `cargo test -p shmring --lib fuzzing::corpus::broadcast::regenerate_seed_corpus -- --ignored`.

use crate::broadcast::Policy;
use crate::fuzzing::broadcast::at;
use crate::fuzzing::{broadcast_image, broadcast_valid_image};

use super::{check_seeds, replay_corpus, write_seeds};

#[test]
#[cfg_attr(miri, ignore)] // memfd and mmap
fn replay_seed_corpus_and_regressions() {
    replay_corpus("broadcast_image", broadcast_image);
}

/// The seeds: valid images of both policies (padding at the wrap, a lapped ring) and
/// images broken in one word each. Each is under 4 KiB.
fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    let lossless = broadcast_valid_image(
        256,
        Policy::Lossless,
        &[&[0xEE; 100], &[0xEF; 50]],
        &[b"hello", b"wrapped!!"],
    );
    let overwrite = broadcast_valid_image(
        256,
        Policy::Overwrite,
        &[],
        &[&[1; 60], &[2; 60], &[3; 60], &[4; 60], b"five"],
    );
    let set = |base: &Vec<u8>, off: usize, v: u64| {
        let mut img = base.clone();
        img[off..off + 8].copy_from_slice(&v.to_le_bytes());
        img
    };
    let rec = at::records(4);
    vec![
        ("valid_lossless_wrap", lossless.clone()),
        ("valid_overwrite_lapped", overwrite.clone()),
        ("valid_empty", broadcast_valid_image(256, Policy::Lossless, &[], &[])),
        ("tail_misaligned", set(&lossless, at::tail(), 13)),
        ("tail_far_ahead", set(&lossless, at::tail(), 1 << 40)),
        ("oldest_past_tail", set(&lossless, at::oldest(), 1 << 20)),
        ("intent_huge", set(&overwrite, at::intent(), u64::MAX)),
        ("last_garbage", set(&lossless, at::last(), 12345)),
        ("publisher_state_garbage", set(&lossless, at::publisher_state(), 77)),
        ("slot_active_cursor_garbage", {
            let img = set(&lossless, at::slot(1), 0x101);
            set(&img, at::slot(1) + 8, 0xdead_beef)
        }),
        ("record_type_unknown", set(&lossless, rec, 0x0000_0007_0000_0005)),
        ("record_len_huge", set(&lossless, rec, 0x0000_0001_ffff_fff0)),
        ("record_stamp_cleared", set(&lossless, rec + 8, 0)),
        ("record_seq_garbage", set(&lossless, rec + 16, 999)),
        ("truncated", lossless[..700].to_vec()),
        ("header_only", lossless[..128].to_vec()),
        ("empty", Vec::new()),
    ]
}

/// Write the seed corpus. Run by hand after a layout change.
#[test]
#[ignore]
fn regenerate_seed_corpus() {
    write_seeds("broadcast_image", seeds());
}

/// The seeds stay in sync with the library (a layout change needs a regeneration).
#[test]
#[cfg_attr(miri, ignore)] // memfd and mmap
fn seed_corpus_is_current() {
    check_seeds("broadcast_image", "broadcast", seeds());
}
