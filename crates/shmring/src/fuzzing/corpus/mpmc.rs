//! Replays the `mpmc_ops` fuzz target's seed corpus (`fuzz/corpus/mpmc_ops/`) and any
//! saved crash reproducers (`fuzz/regressions/mpmc_ops/`) through
//! `crate::fuzzing::mpmc_ops` on stable, in plain `cargo test`.
//!
//! The seeds are the programs in `seeds()` below, written by
//! `cargo test -p shmring --lib fuzzing::corpus::mpmc::regenerate_seed_corpus -- --ignored`.

use crate::fuzzing::mpmc_ops;

use super::{check_seeds, replay_corpus, write_seeds};

#[test]
#[cfg_attr(miri, ignore)] // memfd and mmap
fn replay_seed_corpus_and_regressions() {
    replay_corpus("mpmc_ops", mpmc_ops);
}

// Opcodes of `mpmc_ops` (the byte after each is the argument: which end, or for a
// "finish" whether a held claim commits; push and claim opcodes take a third byte, the
// message length modulo slot size + 2, which also seeds its contents).
const TRY_PUSH: u8 = 0;
const PUSH_0: u8 = 1;
const TRY_POP: u8 = 2;
const POP_0: u8 = 3;
const CLAIM_COMMIT: u8 = 4;
const CLAIM_ABORT: u8 = 5;
const TRY_READ: u8 = 6;
const HOLD_CLAIM: u8 = 7;
const HOLD_READ: u8 = 8;
const FINISH: u8 = 9;
const HAMMER: u8 = 10;
const CLONE_P: u8 = 11;
const CLONE_C: u8 = 12;
const DROP_P: u8 = 13;
const DROP_C: u8 = 14;
const CLOSE: u8 = 15;
const HANDOFF: u8 = 16;
const WAIT: u8 = 17;
const STATS: u8 = 18;

/// A program: the queue's parameter bytes (slots - 2, slot size - 1), then operations.
fn program(slots: u8, slot_size: u8, ops: &[&[u8]]) -> Vec<u8> {
    let mut v = vec![slots - 2, slot_size - 1];
    for op in ops {
        v.extend_from_slice(op);
    }
    v
}

/// The seeds: each exercises one part of the protocol, from a state the fuzzer would
/// take long to reach by chance.
fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    let push = |len: u8| [TRY_PUSH, 0, len];
    vec![
        (
            "fill_then_drain",
            program(
                4,
                16,
                &[
                    &push(3),
                    &push(16),
                    &[PUSH_0, 0, 0],
                    &push(9),
                    &push(5), // full
                    &[PUSH_0, 0, 5],
                    &[STATS, 0],
                    &[TRY_POP, 0],
                    &[POP_0, 0],
                    &[TRY_POP, 0],
                    &[TRY_READ, 0],
                    &[TRY_POP, 0], // empty
                    &[POP_0, 0],
                    &[STATS, 0],
                ],
            ),
        ),
        (
            "close_drains_then_closed",
            program(
                2,
                8,
                &[
                    &push(1),
                    &push(2),
                    &[CLOSE, 1],
                    &push(3),
                    &[CLAIM_COMMIT, 0, 3],
                    &[TRY_POP, 0],
                    &[TRY_POP, 0],
                    &[TRY_POP, 0],
                    &[POP_0, 0],
                    &[STATS, 0],
                ],
            ),
        ),
        (
            "aborted_claims_are_skipped",
            program(
                4,
                32,
                &[
                    &[CLAIM_COMMIT, 0, 7],
                    &[CLAIM_ABORT, 0, 8],
                    &[CLAIM_ABORT, 0, 9],
                    &[CLAIM_COMMIT, 0, 10],
                    &push(4), // full: the aborted slots count until skipped
                    &[TRY_POP, 0],
                    &[TRY_READ, 0],
                    &[TRY_POP, 0],
                    &[STATS, 0],
                ],
            ),
        ),
        (
            "held_claim_blocks_the_consumers",
            program(
                4,
                8,
                &[
                    &[CLONE_P, 0],
                    &[HOLD_CLAIM, 0, 5],
                    &push(6),
                    &[TRY_POP, 0],
                    &[POP_0, 0],
                    &[STATS, 0],
                    &[FINISH, 0],
                    &[TRY_POP, 0],
                    &[TRY_POP, 0],
                    &[HOLD_CLAIM, 1, 5],
                    &[FINISH, 1], // aborted
                    &[TRY_POP, 0],
                ],
            ),
        ),
        (
            "held_read_blocks_the_next_lap",
            program(
                2,
                4,
                &[
                    &[CLONE_C, 0],
                    &push(1),
                    &push(2),
                    &[HOLD_READ, 0],
                    &[TRY_POP, 1],
                    &push(3), // full: the held slot
                    &[PUSH_0, 0, 3],
                    &[STATS, 0],
                    &[FINISH, 0],
                    &push(3),
                    &[TRY_POP, 1],
                ],
            ),
        ),
        (
            "closed_while_a_read_is_held",
            program(
                2,
                4,
                &[
                    &[CLONE_C, 0],
                    &push(1),
                    &push(2),
                    &[HOLD_READ, 0],
                    &[TRY_POP, 1],
                    &[CLOSE, 1],
                    &[TRY_POP, 1],
                    &[POP_0, 1],
                    &[FINISH, 0],
                    &[TRY_POP, 1],
                ],
            ),
        ),
        (
            "clones_handoffs_and_drops",
            program(
                8,
                24,
                &[
                    &[CLONE_P, 0],
                    &[CLONE_C, 0],
                    &[HANDOFF, 4], // the consumer's descriptor, back as a consumer
                    &[HANDOFF, 1], // a producer's, as a producer
                    &[HANDOFF, 6], // a consumer's, as a consumer
                    &[STATS, 1],
                    &[TRY_PUSH, 1, 20],
                    &[TRY_PUSH, 0, 21],
                    &[DROP_P, 0],
                    &[TRY_PUSH, 1, 22],
                    &[TRY_POP, 1],
                    &[DROP_C, 0],
                    &[TRY_POP, 1],
                    &[STATS, 1],
                    &[TRY_POP, 1],
                    &[DROP_P, 1],
                    &[STATS, 1],
                ],
            ),
        ),
        (
            "too_large_and_wait_strategies",
            program(
                3,
                1,
                &[
                    &push(2),
                    &[CLAIM_COMMIT, 0, 2],
                    &[WAIT, 2],
                    &push(1),
                    &push(0),
                    &[PUSH_0, 0, 1],
                    &[PUSH_0, 0, 1],
                    &[POP_0, 0],
                    &[WAIT, 0],
                    &[POP_0, 0],
                    &[POP_0, 0],
                    &[POP_0, 0],
                    &[WAIT, 1],
                    &[POP_0, 0],
                ],
            ),
        ),
        (
            "polls_past_the_liveness_checks",
            program(
                2,
                8,
                &[
                    &[CLONE_C, 0],
                    &[HOLD_CLAIM, 0, 3],
                    &[HAMMER, 1], // empty: the claimer is alive
                    &push(4),
                    &[HAMMER, 0], // full
                    &[FINISH, 0],
                    &[HOLD_READ, 0],
                    &push(5),
                    &[HAMMER, 0], // full: the reader is alive
                    &[FINISH, 0],
                    &[HAMMER, 1],
                    &[STATS, 0],
                ],
            ),
        ),
    ]
}

/// Write the seed corpus. Run by hand after a change of the harness's opcodes.
#[test]
#[ignore]
fn regenerate_seed_corpus() {
    write_seeds("mpmc_ops", seeds());
}

/// The seeds on disk are what `regenerate_seed_corpus` writes today.
#[test]
fn seed_corpus_is_current() {
    check_seeds("mpmc_ops", "mpmc", seeds());
}

/// Each seed on its own, so that a failure names it.
#[test]
#[cfg_attr(miri, ignore)] // memfd and mmap
fn every_seed_runs_clean() {
    for (name, data) in seeds() {
        eprintln!("seed {name}");
        mpmc_ops(&data);
    }
}
