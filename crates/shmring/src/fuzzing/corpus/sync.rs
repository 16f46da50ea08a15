//! Replays the fuzz target's seed corpus (`fuzz/corpus/sync_image/`) and any saved
//! crash reproducers (`fuzz/regressions/sync_image/`) through
//! `crate::fuzzing::sync_image` on stable, in plain `cargo test`.
//!
//! The seeds are images of each state the protocols never reach on their own (see the
//! module docs of `sync::mutex`, `sync::semaphore`, `sync::event`, `sync::condvar`,
//! `sync::barrier` and `value`), made by `regenerate_seed_corpus` below:
//! `cargo test -p shmring --lib fuzzing::corpus::sync::regenerate_seed_corpus -- --ignored`.

use crate::fuzzing::{KINDS, sync_image};

use super::{check_seeds, replay_corpus, write_seeds};

#[test]
#[cfg_attr(miri, ignore)] // memfd and mmap
fn replay_seed_corpus_and_regressions() {
    replay_corpus("sync_image", sync_image);
}

/// An input: kind, call order, then the area's words (little-endian).
fn image(kind: &str, order: u8, words: &[(usize, u64, usize)]) -> Vec<u8> {
    let k = KINDS.iter().position(|&x| x == kind).unwrap() as u8;
    let len = words.iter().map(|&(at, _, w)| at + w).max().unwrap_or(0);
    let mut area = vec![0u8; len];
    for &(at, v, w) in words {
        area[at..at + w].copy_from_slice(&v.to_le_bytes()[..w]);
    }
    let mut v = vec![k, order];
    v.extend(area);
    v
}

/// The seeds: per kind, the impossible states of its words (offsets in its area).
fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    const WAITERS: u64 = 1 << 63;
    let dead = 0x7fff_fffe_0000_0001u64;
    let (u32w, u64w) = (4, 8);
    // The lock word (8 bytes at 0), `seq` (4), `state` (4), `depth` (4) of a RawMutex.
    let lock = |word: u64, state: u64, depth: u64| vec![(0, word, u64w), (12, state, u32w), (16, depth, u32w)];
    let mut v = vec![
        ("mutex_dead_owner", image("mutex", 0, &lock(dead, 0, 0))),
        (
            "mutex_dead_owner_waiters",
            image("mutex", 0x0f, &lock(dead | WAITERS, 0, 0)),
        ),
        ("mutex_tid_zero", image("mutex", 0, &lock(5, 0, 0))),
        ("mutex_waiters_only", image("mutex", 0, &lock(WAITERS, 0, 0))),
        ("mutex_state_garbage", image("mutex", 0, &lock(0, 0xdead_beef, 0))),
        (
            "mutex_all_ones",
            image("mutex", 0, &lock(u64::MAX, u64::from(u32::MAX), 0)),
        ),
        ("rlock_depth_huge", image("rlock", 0, &lock(0, 0, u64::from(u32::MAX)))),
        ("rlock_depth_huge_dead_owner", image("rlock", 1, &lock(dead, 0, 1000))),
        (
            "semaphore_value_max",
            image("semaphore", 0, &[(0, u64::from(u32::MAX), u32w)]),
        ),
        (
            "semaphore_unknown_flags",
            image("semaphore", 0, &[(0, 1, u32w), (12, 2, u32w)]),
        ),
        (
            "semaphore_waiters_max",
            image("semaphore", 0xff, &[(4, u64::from(u32::MAX), u32w)]),
        ),
        (
            "bounded_value_above_bound",
            image("bounded", 0, &[(0, 3, u32w), (8, 2, u32w), (12, 1, u32w)]),
        ),
        (
            "bounded_bound_differs",
            image("bounded", 0, &[(0, 1, u32w), (8, 7, u32w), (12, 1, u32w)]),
        ),
        (
            "bounded_flags_cleared",
            image("bounded", 0, &[(0, 1, u32w), (12, 0, u32w)]),
        ),
        (
            "event_set_garbage_generation",
            image("event", 0, &[(0, 0xffff_ffff, u32w)]),
        ),
        (
            "event_clear_waiters_max",
            image("event", 1, &[(0, 0x1234_5678, u32w), (4, u64::from(u32::MAX), u32w)]),
        ),
        (
            "condition_waiters_max",
            image("condition", 0, &[(4, u64::from(u32::MAX), u32w)]),
        ),
        ("condition_mutex_dead_owner", image("condition", 0, &[(8, dead, u64w)])),
        ("condition_mutex_state_garbage", image("condition", 0, &[(20, 9, u32w)])),
    ];
    // RawBarrier: state (8 at 0: count bits 0..16, generation 16..48, epoch 48..63,
    // BROKEN 63), seq (4 at 8), parties (4 at 12), reset log (at 128), table (at 256).
    let parties = |p: u64| (12, p, u32w);
    v.extend([
        (
            "barrier_count_at_parties",
            image("barrier", 0, &[(0, 2, u64w), parties(2)]),
        ),
        (
            "barrier_count_max",
            image("barrier", 0, &[(0, 0xffff, u64w), parties(2)]),
        ),
        ("barrier_parties_zero", image("barrier", 0, &[parties(0)])),
        ("barrier_parties_differs", image("barrier", 0, &[parties(3)])),
        (
            "barrier_broken_epoch",
            image("barrier", 1, &[(0, WAITERS | (5 << 48), u64w), parties(2)]),
        ),
        (
            "barrier_table_garbage",
            image("barrier", 0, &[parties(2), (256, u64::MAX, u64w)]),
        ),
        (
            "barrier_table_dead_pid",
            image("barrier", 0, &[parties(2), (264, dead, u64w)]),
        ),
        (
            "barrier_reset_log_garbage",
            image("barrier", 0, &[parties(2), (128, u64::MAX, u64w)]),
        ),
    ]);
    // The seqlock: its RawMutex (24 bytes), `seq` (8 at 24), `torn` (4 at 32).
    for (kind, tag) in [("value", 0u8), ("array", 1u8)] {
        let name = |s: &'static str| -> &'static str { Box::leak(format!("{kind}_{s}").into_boxed_str()) };
        v.extend([
            (name("seq_odd_lock_free"), image(kind, tag, &[(24, 7, u64w)])),
            (
                name("seq_odd_dead_writer"),
                image(kind, tag, &[(0, dead, u64w), (24, 7, u64w)]),
            ),
            (
                name("seq_odd_dead_writer_state"),
                image(
                    kind,
                    tag ^ 1,
                    &[(0, dead | WAITERS, u64w), (12, 1, u32w), (24, u64::MAX, u64w)],
                ),
            ),
            (name("torn_garbage"), image(kind, tag, &[(32, 0xabcd, u32w)])),
            (
                name("data_garbage"),
                image(kind, tag ^ 1, &[(128, u64::MAX, u64w), (136, 1, u64w)]),
            ),
        ]);
    }
    v.push(("empty", Vec::new()));
    v.push(("kind_only", vec![200]));
    v
}

/// Write the seed corpus. Run by hand after a layout change.
#[test]
#[ignore]
fn regenerate_seed_corpus() {
    write_seeds("sync_image", seeds());
}

/// The seeds stay in sync with the library: they are what `regenerate_seed_corpus`
/// writes today (a layout change needs a regeneration).
#[test]
#[cfg_attr(miri, ignore)] // memfd and mmap
fn seed_corpus_is_current() {
    check_seeds("sync_image", "sync", seeds());
}
