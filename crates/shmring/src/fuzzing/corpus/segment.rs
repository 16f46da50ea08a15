//! Replays the fuzz target's seed corpus (`fuzz/corpus/segment_image/`) and any saved
//! crash reproducers (`fuzz/regressions/segment_image/`) through
//! `crate::fuzzing::segment_image` on stable, in plain `cargo test`.
//!
//! The seeds are made by `regenerate_seed_corpus` below:
//! `cargo test -p shmring --lib fuzzing::corpus::segment::regenerate_seed_corpus -- --ignored`.

use crate::fuzzing::{Field, patch, segment_image, valid_image};

use super::{check_seeds, replay_corpus, write_seeds};

#[test]
#[cfg_attr(miri, ignore)] // memfd and mmap
fn replay_seed_corpus_and_regressions() {
    replay_corpus("segment_image", segment_image);
}

/// The seeds: valid images (records, padding at the wrap, several capacities, each end
/// state) and images broken in one field each. Each is under 4 KiB.
fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    // Records (layout version 3): 8-byte header, 8-byte alignment; each commit also
    // reserves the next record's 8-byte header slot.
    let wrap64 = valid_image(128, &[&[0xEE; 32], &[0xEF; 32], &[0xED; 8]], &[b"hello", b"wrapped!!"]);
    let five_256 = valid_image(256, &[&[1; 96], &[2; 80]], &[b"abcde", &[3; 20], b"", &[4; 50]]);
    let big_1024 = valid_image(1024, &[], &[b"x", &[5; 100], &[6; 400], b"seven!!"]);
    let mut v = vec![
        ("valid_128_padding_at_wrap", wrap64.clone()),
        ("valid_256_padding_and_empty_message", five_256.clone()),
        ("valid_1024_four_messages", big_1024.clone()),
        ("valid_128_empty", valid_image(128, &[], &[])),
        (
            "valid_128_full",
            valid_image(128, &[], &[&[8; 32], &[9; 32], &[10; 32]]),
        ),
    ];
    let with = |name: &'static str, base: &Vec<u8>, edits: &[(Field, u64)]| {
        let mut img = base.clone();
        for &(f, x) in edits {
            patch(&mut img, f, x);
        }
        (name, img)
    };
    // The first pending record of `wrap64` is at ring offset 96 (the data region starts
    // at 768; head 96, tail 152), the padding record at 112.
    use crate::ring::spsc::header;
    let record = |base: &Vec<u8>, off: usize, word: u64| {
        let mut img = base.clone();
        img[768 + off..768 + off + 8].copy_from_slice(&word.to_le_bytes());
        img
    };
    v.extend([
        with("producer_closed", &wrap64, &[(Field::ProducerState, 2)]),
        with(
            "both_vacant",
            &wrap64,
            &[(Field::ProducerState, 0), (Field::ConsumerState, 0)],
        ),
        with("consumer_attached", &wrap64, &[(Field::ConsumerState, 1)]),
        with("role_state_garbage", &wrap64, &[(Field::ConsumerState, 77)]),
        // A producer role state the table does not have: judged by its (free) lock.
        with("producer_state_unknown", &wrap64, &[(Field::ProducerState, 9)]),
        with("tail_unaligned", &wrap64, &[(Field::Tail, 97)]),
        with("tail_behind_head", &wrap64, &[(Field::Tail, 48)]),
        with("wrong_magic", &wrap64, &[(Field::Magic, 0x0123_4567_89ab_cdef)]),
        with("wrong_version", &wrap64, &[(Field::Version, 2)]),
        with("wrong_kind", &wrap64, &[(Field::Kind, 9)]),
        with("not_ready", &wrap64, &[(Field::InitState, 1)]),
        with("init_state_garbage", &wrap64, &[(Field::InitState, 9)]),
        with("size_mismatch", &wrap64, &[(Field::TotalSize, 4096)]),
        with("area_offset_wrong", &wrap64, &[(Field::AreaOffset, 256)]),
        with("unknown_flags", &wrap64, &[(Field::Flags, 0x80)]),
        with("capacity_not_power_of_two", &wrap64, &[(Field::Capacity, 96)]),
        with("message_limit_wrong", &wrap64, &[(Field::MaxMessage, 64)]),
        with("tail_beyond_capacity", &wrap64, &[(Field::Tail, 96 + 144)]),
        with("head_unaligned", &wrap64, &[(Field::Head, 33)]),
        with("head_after_tail", &wrap64, &[(Field::Head, 152 + 16)]),
        with(
            "indices_near_2_64",
            &wrap64,
            &[(Field::Head, u64::MAX - 7), (Field::Tail, u64::MAX - 7)],
        ),
        ("record_len_huge", record(&wrap64, 96, header(96, 1, 0xffff_fff0))),
        ("record_len_past_limit", record(&wrap64, 96, header(96, 1, 33))),
        ("record_type_unknown", record(&wrap64, 96, header(96, 3, 5))),
        ("padding_len_wrong", record(&wrap64, 112, header(112, 2, 16))),
        ("message_across_end", record(&wrap64, 112, header(112, 1, 16))),
        ("stamp_cleared", record(&wrap64, 96, 0)),
        ("stamp_from_another_lap", record(&wrap64, 96, header(96 + 128, 1, 5))),
        ("truncated", big_1024[..500].to_vec()),
        ("header_only", wrap64[..128].to_vec()),
        ("empty", Vec::new()),
    ]);
    v
}

/// Write the seed corpus. Run by hand after a layout change.
#[test]
#[ignore]
fn regenerate_seed_corpus() {
    write_seeds("segment_image", seeds());
}

/// The seeds stay in sync with the library: they are what `regenerate_seed_corpus`
/// writes today (a layout change needs a regeneration).
#[test]
#[cfg_attr(miri, ignore)] // memfd and mmap
fn seed_corpus_is_current() {
    check_seeds("segment_image", "segment", seeds());
}
