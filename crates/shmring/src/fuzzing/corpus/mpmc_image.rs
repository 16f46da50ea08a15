//! Replays the `mpmc_image` fuzz target's seed corpus (`fuzz/corpus/mpmc_image/`) and
//! any saved crash reproducers (`fuzz/regressions/mpmc_image/`) through
//! `crate::fuzzing::mpmc_image` on stable, in plain `cargo test`, and checks that each
//! seed holding an impossible state (see the "Impossible states" of
//! [`crate::ring::mpmc`]) is reported as such by a waiting pop or push.
//!
//! The seeds are made by `regenerate_seed_corpus` below:
//! `cargo test -p shmring --lib fuzzing::corpus::mpmc_image::regenerate_seed_corpus -- --ignored`.

use crate::fuzzing::mpmc_image::wait_results;
use crate::fuzzing::{MpmcField, mpmc_image, mpmc_patch, valid_mpmc_image};
use crate::ring::mpmc::slot::{EMPTY, FULL, LOST, Owner, READING, encode};
use crate::ring::mpmc::{PopError, PushError};

use super::{replay_corpus, repo_path as dir};

#[test]
#[cfg_attr(miri, ignore)] // memfd and mmap
fn replay_seed_corpus_and_regressions() {
    replay_corpus("mpmc_image", mpmc_image);
}

/// What a waiting pop and push must report on a seed (`None`: anything documented).
#[derive(Debug, Clone, Copy)]
struct Expect {
    pop_corrupted: bool,
    push_corrupted: bool,
}

const ANY: Expect = Expect {
    pop_corrupted: false,
    push_corrupted: false,
};

/// The seeds: valid images, and images patched into each impossible state (and the
/// repaired ones). The 4-slot base images: `empty` has both positions at 4 (every slot
/// EMPTY at lap 1), `one` has the dequeue position at 5 and one message queued (slot 1,
/// lap 1, FULL), `full` has four messages queued (positions 4 and 8).
fn seeds() -> Vec<(&'static str, Vec<u8>, Expect)> {
    let empty = valid_mpmc_image(4, 0);
    let one = valid_mpmc_image(4, 1);
    let full = valid_mpmc_image(4, 4);
    let with = |base: &Vec<u8>, edits: &[(MpmcField, u64)]| {
        let mut img = base.clone();
        for &(f, x) in edits {
            mpmc_patch(&mut img, f, x);
        }
        img
    };
    let both = Expect {
        pop_corrupted: true,
        push_corrupted: true,
    };
    let pop = Expect {
        pop_corrupted: true,
        push_corrupted: false,
    };
    let push = Expect {
        pop_corrupted: false,
        push_corrupted: true,
    };
    let forged = Owner {
        idx: 200,
        generation: 3,
    };
    vec![
        ("valid_empty", empty.clone(), ANY),
        ("valid_one_queued", one.clone(), ANY),
        ("valid_full", full.clone(), ANY),
        // The issue-16 wedge (the slot at the positions back a lap, FULL): with claims
        // on the positions this is a dead reader's claim (no live intent names it),
        // recovered by either side (counted lost), no longer reported.
        (
            "c1_p2_prev_lap_full",
            with(&empty, &[(MpmcField::Seq(0), encode(0, Owner::NONE, FULL))]),
            ANY,
        ),
        // C1 and P1: back a lap, EMPTY.
        (
            "c1_p1_prev_lap_empty",
            with(&empty, &[(MpmcField::Seq(0), encode(0, Owner::NONE, EMPTY))]),
            both,
        ),
        // LOST a lap back (a dead reader of a lost message): recovered.
        (
            "c1_p2_prev_lap_writing",
            with(
                &empty,
                &[(MpmcField::Seq(0), encode(0, Owner { idx: 1, generation: 1 }, LOST))],
            ),
            ANY,
        ),
        // Formerly C2: the enqueue position past an EMPTY slot is a producer's claim;
        // with no live intent naming it, recovered as lost (`Lost`).
        ("c2_enq_past_empty_slot", with(&empty, &[(MpmcField::Enq, 5)]), ANY),
        // A forged intent of a party that is not attached: ignored (the claim above
        // is recovered all the same).
        (
            "intent_of_a_free_party",
            with(&empty, &[(MpmcField::Enq, 5), (MpmcField::Intent(3), 4)]),
            ANY,
        ),
        // C3: the dequeue position past the enqueue position's unclaimed slot.
        ("c3_deq_past_unclaimed", with(&empty, &[(MpmcField::Deq, 6)]), pop),
        // P1 at the enqueue position (the consumer first takes the queued message).
        (
            "p1_enq_slot_prev_lap_empty",
            with(&one, &[(MpmcField::Seq(1), encode(0, Owner::NONE, EMPTY))]),
            push,
        ),
        // A lap nobody can be at.
        (
            "lap_out_of_step",
            with(&empty, &[(MpmcField::Seq(0), encode(7, Owner::NONE, FULL))]),
            both,
        ),
        // Repaired: a slot a lap ahead of both positions (they are moved on).
        (
            "slot_a_lap_ahead",
            with(&empty, &[(MpmcField::Seq(0), encode(2, Owner::NONE, EMPTY))]),
            ANY,
        ),
        // A published length above the slot size (dropped, counted lost).
        ("len_above_slot_size", with(&one, &[(MpmcField::Len(0), 17)]), pop),
        // Repaired: claims of owners that are not live parties (out of range, dead).
        (
            "writing_owner_out_of_range",
            with(&one, &[(MpmcField::Seq(0), encode(1, forged, LOST))]),
            ANY,
        ),
        (
            "reading_owner_dead",
            with(
                &full,
                &[(MpmcField::Seq(0), encode(1, Owner { idx: 5, generation: 9 }, READING))],
            ),
            ANY,
        ),
        (
            "party_role_garbage",
            with(
                &full,
                &[(MpmcField::Role(0), 7), (MpmcField::Generation(0), 0xffff_ffff)],
            ),
            ANY,
        ),
        // The wedge on a closed queue: consumers see Closed.
        (
            "closed_wedge",
            with(
                &empty,
                &[
                    (MpmcField::Seq(0), encode(0, Owner::NONE, FULL)),
                    (MpmcField::Closed, 1),
                ],
            ),
            ANY,
        ),
        (
            "positions_near_2_64",
            with(
                &empty,
                &[(MpmcField::Enq, u64::MAX - 1), (MpmcField::Deq, u64::MAX - 1)],
            ),
            ANY,
        ),
        (
            "positions_apart",
            with(&empty, &[(MpmcField::Enq, 1 << 40), (MpmcField::Deq, 3)]),
            ANY,
        ),
        ("truncated", full[..1000].to_vec(), ANY),
        ("header_only", full[..128].to_vec(), ANY),
        ("empty", Vec::new(), ANY),
    ]
}

/// Write the seed corpus. Run by hand after a layout change.
#[test]
#[ignore]
fn regenerate_seed_corpus() {
    let d = dir("fuzz/corpus/mpmc_image");
    std::fs::create_dir_all(&d).unwrap();
    for (name, img, _) in seeds() {
        assert!(img.len() < 16384, "{name} is {} bytes", img.len());
        std::fs::write(d.join(name), img).unwrap();
    }
}

/// The seeds stay in sync with the library (a layout change needs a regeneration).
#[test]
#[cfg_attr(miri, ignore)] // memfd and mmap
fn seed_corpus_is_current() {
    let d = dir("fuzz/corpus/mpmc_image");
    for (name, img, _) in seeds() {
        let on_disk = std::fs::read(d.join(name)).unwrap_or_default();
        assert!(
            on_disk == img,
            "fuzz/corpus/mpmc_image/{name} is stale: \
             cargo test -p shmring --lib fuzzing::corpus::mpmc_image::regenerate_seed_corpus -- --ignored"
        );
    }
}

/// Each seed with an impossible state is reported by a waiting pop or push within
/// its timeout (the escapes of the ring's waits), never a plain `Timeout`.
#[test]
#[cfg_attr(miri, ignore)] // memfd and mmap
fn impossible_states_are_reported() {
    for (name, img, want) in seeds() {
        let Some((popped, pushed)) = wait_results(&img) else {
            assert!(!want.pop_corrupted && !want.push_corrupted, "{name}: did not open");
            continue;
        };
        if want.pop_corrupted {
            assert!(
                matches!(popped, Err(PopError::Corrupted(_))),
                "{name}: pop gave {popped:?}"
            );
        }
        if want.push_corrupted {
            assert!(
                matches!(pushed, Err(PushError::Corrupted(_))),
                "{name}: push gave {pushed:?}"
            );
        }
    }
}
