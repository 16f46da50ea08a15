//! Segments and ring ends: names, exclusive create, open errors, kinds, corrupted
//! headers, indices and records, attach conflicts, close and timeouts.

use crate::common;

use common::*;
use shmring::Error;
use shmring::ring::spsc::{self, Consumer, Producer, RingOptions};
use shmring::shm::{self, Segment, SegmentKind, SegmentOptions};
use shmring::{RecvError, SendError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

fn shm_path(name: &str) -> String {
    format!("/dev/shm/{name}")
}

/// Overwrite bytes at `offset` of the named segment's file, as a hostile peer would.
fn poke(name: &str, offset: u64, bytes: &[u8]) {
    let mut f = std::fs::OpenOptions::new().write(true).open(shm_path(name)).unwrap();
    f.seek(SeekFrom::Start(offset)).unwrap();
    f.write_all(bytes).unwrap();
}

fn peek_u64(name: &str, offset: u64) -> u64 {
    let mut f = std::fs::File::open(shm_path(name)).unwrap();
    f.seek(SeekFrom::Start(offset)).unwrap();
    let mut b = [0u8; 8];
    f.read_exact(&mut b).unwrap();
    u64::from_le_bytes(b)
}

// Offsets in an SPSC segment: 128-byte header, then the control block's lines.
const TAIL: u64 = 128;
const HEAD: u64 = 256;
const DATA: u64 = 128 + 640;

#[test]
fn bad_names_are_rejected() {
    for bad in ["", "a/b", "../x", ".x", &"n".repeat(201)] {
        for r in [
            Producer::create(bad, 4096).map(drop),
            Consumer::open(bad).map(drop),
            shm::unlink(bad),
        ] {
            assert!(matches!(r, Err(Error::InvalidName { .. })), "{bad:?}: {r:?}");
        }
    }
}

#[test]
fn create_is_exclusive_and_open_of_missing_fails() {
    let name = unique_name("excl");
    let _tx = Producer::create(&name, 4096).unwrap();
    assert!(matches!(
        Producer::create(&name, 4096),
        Err(Error::AlreadyExists { .. })
    ));
    assert!(matches!(
        Consumer::create(&name, 4096),
        Err(Error::AlreadyExists { .. })
    ));
    let missing = unique_name("missing");
    assert!(matches!(Consumer::open(&missing), Err(Error::NotFound { .. })));
    assert!(matches!(shm::unlink(&missing), Err(Error::NotFound { .. })));
}

#[test]
fn creator_unlinks_on_drop_unless_kept() {
    let name = unique_name("unlink");
    let tx = Producer::create(&name, 4096).unwrap();
    assert!(std::path::Path::new(&shm_path(&name)).exists());
    drop(tx);
    assert!(!std::path::Path::new(&shm_path(&name)).exists());

    let kept = unique_name("keep");
    let opts = RingOptions::new().segment(SegmentOptions::new().keep(true));
    drop(Producer::create_with(&kept, 4096, &opts).unwrap());
    assert!(std::path::Path::new(&shm_path(&kept)).exists());
    shm::unlink(&kept).unwrap();
    assert!(!std::path::Path::new(&shm_path(&kept)).exists());
}

#[test]
fn mode_defaults_to_0600_and_is_configurable() {
    let a = unique_name("mode");
    let _ta = Producer::create(&a, 4096).unwrap();
    let m = std::fs::metadata(shm_path(&a)).unwrap().permissions().mode() & 0o777;
    assert_eq!(m, 0o600);
    let b = unique_name("mode");
    let opts = RingOptions::new().segment(SegmentOptions::new().mode(0o640).prefault(true));
    let _tb = Producer::create_with(&b, 4096, &opts).unwrap();
    let m = std::fs::metadata(shm_path(&b)).unwrap().permissions().mode() & 0o777;
    assert_eq!(m, 0o640);
}

#[test]
fn lock_in_ram_maps_or_reports_the_limit() {
    let name = unique_name("mlock");
    let opts = RingOptions::new().segment(SegmentOptions::new().lock_in_ram(true).prefault(true));
    match Producer::create_with(&name, 1 << 16, &opts) {
        Ok(mut tx) => tx.send(b"x").unwrap(),
        // A small RLIMIT_MEMLOCK is reported as an mlock error, not a crash.
        Err(Error::Io { op, .. }) => assert_eq!(op, "mlock"),
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn open_of_another_kind_is_wrong_kind() {
    let name = unique_name("kind");
    let mut seg = Segment::create(&name, SegmentKind::Raw, [0; 8], 4096, &SegmentOptions::new()).unwrap();
    seg.publish_ready();
    let r = Consumer::open(&name);
    assert!(
        matches!(r, Err(Error::WrongKind { expected: "spsc", ref found, .. }) if found == "raw"),
        "{r:?}"
    );
}

#[test]
fn corrupted_headers_are_clear_errors() {
    let opts = RingOptions::new().segment(SegmentOptions::new().open_timeout(Duration::from_millis(50)));
    let cases: [(u64, &[u8], &str); 5] = [
        (0, b"NOTSHMRG", "magic"),
        (8, &7u32.to_le_bytes(), "version"),
        (12, &55u32.to_le_bytes(), "kind"),
        (16, &1u64.to_le_bytes(), "size"),
        (64, &100u64.to_le_bytes(), "capacity"),
    ];
    for (off, bytes, what) in cases {
        let name = unique_name("hdr");
        let _tx = Producer::create(&name, 4096).unwrap();
        poke(&name, off, bytes);
        let r = Consumer::open_with(&name, &opts);
        let ok = match what {
            "version" => matches!(r, Err(Error::IncompatibleVersion { found: 7, .. })),
            "kind" => matches!(r, Err(Error::WrongKind { .. })),
            _ => matches!(r, Err(Error::Corrupted { .. })),
        };
        assert!(ok, "{what}: {r:?}");
    }
}

#[test]
fn foreign_or_unready_files_are_rejected_without_hanging() {
    let _dog = Watchdog::new("unready open", Duration::from_secs(20));
    let opts = RingOptions::new().segment(SegmentOptions::new().open_timeout(Duration::from_millis(100)));
    // Not a shmring file at all.
    let foreign = unique_name("foreign");
    std::fs::write(shm_path(&foreign), vec![0xAB; 8192]).unwrap();
    let r = Consumer::open_with(&foreign, &opts);
    assert!(matches!(r, Err(Error::Corrupted { .. })), "{r:?}");
    std::fs::remove_file(shm_path(&foreign)).unwrap();
    // Zeros (a creator that died before writing the header), and a file too short for
    // a header: NotReady after the open timeout.
    for len in [8192, 10] {
        let unready = unique_name("unready");
        std::fs::write(shm_path(&unready), vec![0; len]).unwrap();
        let r = Consumer::open_with(&unready, &opts);
        assert!(matches!(r, Err(Error::NotReady { .. })), "{r:?}");
        std::fs::remove_file(shm_path(&unready)).unwrap();
    }
}

#[test]
fn garbage_indices_and_records_are_corrupted_not_ub() {
    let _dog = Watchdog::new("garbage indices", Duration::from_secs(20));
    // A tail beyond head + capacity: the message that is really there is delivered,
    // then the consumer's periodic cross-check of tail reports the corruption.
    let name = unique_name("tail");
    let mut tx = Producer::create(&name, 4096).unwrap();
    let mut rx = Consumer::open(&name).unwrap();
    tx.send(b"hello").unwrap();
    poke(&name, TAIL, &(1u64 << 40).to_le_bytes());
    assert_eq!(rx.try_recv().unwrap(), b"hello");
    let r = (0..5000).map(|_| rx.try_recv()).find(|r| *r != Err(RecvError::Empty));
    assert!(matches!(r, Some(Err(RecvError::Corrupted(_)))), "{r:?}");
    assert!(matches!(
        rx.recv_timeout(Duration::from_secs(1)),
        Err(RecvError::Corrupted(_))
    ));
    drop((tx, rx));

    // A record length larger than the ring, and an unknown record type.
    for header in [header_word(0, 1, u32::MAX as u64), header_word(0, 3, 5)] {
        let name = unique_name("rec");
        let mut tx = Producer::create(&name, 4096).unwrap();
        let mut rx = Consumer::open(&name).unwrap();
        tx.send(b"hello").unwrap();
        poke(&name, DATA, &header.to_le_bytes());
        assert!(matches!(
            rx.recv_timeout(Duration::from_secs(1)),
            Err(RecvError::Corrupted(_))
        ));
        assert!(matches!(
            rx.read_timeout(Duration::from_secs(1)),
            Err(RecvError::Corrupted(_))
        ));
    }

    // A head the consumer could never have reached: the producer refuses to trust it
    // once it needs to re-read it.
    let name = unique_name("head");
    let mut tx = Producer::create(&name, 256).unwrap();
    let _rx = Consumer::open(&name).unwrap();
    poke(&name, HEAD, &(1u64 << 50).to_le_bytes());
    let r = (0..100).map(|_| tx.try_send(&[0; 40])).find(|r| r.is_err());
    assert!(matches!(r, Some(Err(SendError::Corrupted(_)))), "{r:?}");

    // Garbage indices found at open time.
    let name = unique_name("openidx");
    let opts = RingOptions::new().segment(SegmentOptions::new().keep(true));
    drop(Producer::create_with(&name, 4096, &opts).unwrap());
    poke(&name, TAIL, &12345u64.to_le_bytes());
    assert!(matches!(Consumer::open(&name), Err(Error::Corrupted { .. })));
    assert_eq!(peek_u64(&name, TAIL), 12345, "the poke reached the shared tail");
    shm::unlink(&name).unwrap();
}

#[test]
fn second_producer_or_consumer_is_refused() {
    let name = unique_name("second");
    let _tx = Producer::create(&name, 4096).unwrap();
    let _rx = Consumer::open(&name).unwrap();
    assert!(matches!(
        Producer::open(&name),
        Err(Error::AlreadyAttached { role: "producer", .. })
    ));
    assert!(matches!(
        Consumer::open(&name),
        Err(Error::AlreadyAttached { role: "consumer", .. })
    ));
}

#[test]
fn closed_end_cannot_be_reattached_and_peer_sees_disconnected() {
    let name = unique_name("closed");
    let mut tx = Producer::create(&name, 4096).unwrap();
    let rx = Consumer::open(&name).unwrap();
    drop(rx);
    assert_eq!(tx.send(b"x"), Err(SendError::Disconnected));
    assert!(matches!(
        Consumer::open(&name),
        Err(Error::EndClosed { role: "consumer", .. })
    ));
}

#[test]
fn producer_drop_drains_then_disconnects() {
    let (mut tx, mut rx) = spsc::channel(4096).unwrap();
    tx.send(b"a").unwrap();
    tx.send_deferred(b"b").unwrap(); // published by drop
    drop(tx);
    assert_eq!(rx.recv().unwrap(), b"a");
    assert_eq!(rx.recv().unwrap(), b"b");
    assert_eq!(rx.recv(), Err(RecvError::Disconnected));
    assert_eq!(rx.try_recv(), Err(RecvError::Disconnected));
}

#[test]
fn too_large_and_timeouts() {
    let _dog = Watchdog::new("timeouts", Duration::from_secs(20));
    let (mut tx, mut rx) = spsc::channel(4096).unwrap();
    let max = tx.max_message_len();
    assert_eq!(max, 4096 / 2 - 32);
    assert_eq!(
        tx.send(&vec![0; max + 1]),
        Err(SendError::MessageTooLarge { len: max + 1, max })
    );
    assert!(matches!(tx.try_claim(max + 1), Err(SendError::MessageTooLarge { .. })));
    assert_eq!(rx.try_recv(), Err(RecvError::Empty));
    assert_eq!(rx.recv_timeout(Duration::from_millis(30)), Err(RecvError::Timeout));
    // Fill with maximal messages and what still fits after them; the next send times out.
    tx.send(&vec![1; max]).unwrap();
    tx.send(&vec![2; max]).unwrap();
    while tx.try_send(b"x").is_ok() {}
    assert_eq!(tx.try_send(b"x"), Err(SendError::Full));
    assert_eq!(
        tx.send_timeout(b"x", Duration::from_millis(30)),
        Err(SendError::Timeout)
    );
    assert_eq!(rx.recv().unwrap(), vec![1; max]);
    tx.send_timeout(b"x", Duration::from_millis(30)).unwrap();
}

#[test]
fn wrapping_keeps_every_size_intact() {
    let (mut tx, mut rx) = spsc::channel(256).unwrap();
    let mut scratch = Vec::new();
    let mut buf = [0u8; 200];
    for seq in 0..20_000u64 {
        let len = msg_len(9, seq, tx.max_message_len());
        fill_msg(seq, &mut buf[..len]);
        tx.send(&buf[..len]).unwrap();
        let got = rx.recv().unwrap();
        check_msg(9, seq, tx.max_message_len(), &got, &mut scratch).unwrap();
    }
    let s = rx.stats();
    assert_eq!((s.sent, s.received), (20_000, 20_000));
    assert_eq!(s.head, s.tail);
}

#[test]
fn aborted_claim_sends_nothing_and_batches_publish_together() {
    let (mut tx, mut rx) = spsc::channel(1024).unwrap();
    {
        let mut g = tx.claim(10).unwrap();
        g.fill(1);
        // dropped: aborted
    }
    assert_eq!(rx.try_recv(), Err(RecvError::Empty));
    for i in 0..3u8 {
        let mut g = tx.claim(1).unwrap();
        g[0] = i;
        g.commit_deferred();
    }
    // Deferred commits are readable by a polling consumer at once; tail (and the
    // wake-up of a sleeping consumer) waits for the flush.
    let tail_before = rx.stats().tail;
    let mut got = Vec::new();
    assert_eq!(rx.try_drain(10, |m| got.push(m[0])).unwrap(), 3);
    assert_eq!(got, [0, 1, 2]);
    assert_eq!(rx.stats().tail, tail_before);
    tx.flush();
    assert_eq!(rx.stats().tail, rx.stats().head);
}

#[test]
fn anonymous_segments_are_sealed() {
    let seg = Segment::anonymous(SegmentKind::Raw, [0; 8], 4096, &SegmentOptions::new()).unwrap();
    let fd = seg.into_fd();
    assert!(rustix::fs::ftruncate(&fd, 0).is_err(), "shrink must be refused");
    assert!(rustix::fs::ftruncate(&fd, 1 << 20).is_err(), "grow must be refused");
}

#[test]
fn threads_over_heap_memory() {
    let (mut tx, mut rx) = spsc::local_channel(1024, shmring::WaitStrategy::Blocking).unwrap();
    let t = std::thread::spawn(move || {
        for i in 0..100_000u32 {
            tx.send(&i.to_le_bytes()).unwrap();
        }
    });
    for i in 0..100_000u32 {
        assert_eq!(rx.recv().unwrap(), i.to_le_bytes());
    }
    t.join().unwrap();
    assert_eq!(rx.recv(), Err(RecvError::Disconnected));
}

/// A grant's payload may hold anything, including words that look like the stamps of
/// records to come; once it is aborted, shorter records written in its place must not
/// leave such a word where the consumer looks for the next stamp.
#[test]
fn aborted_grant_payload_never_reads_as_a_record() {
    let (mut tx, mut rx) = spsc::channel(1024).unwrap();
    tx.send(b"first").unwrap();
    assert_eq!(rx.recv().unwrap(), b"first");
    let base = rx.stats().head; // where the aborted claim starts
    {
        let mut g = tx.claim(300).unwrap();
        // Every 8-byte word: a valid-looking header of a 1-byte message for the header
        // slot it would be in.
        for (i, w) in g.chunks_mut(8).enumerate() {
            let at = base + 8 + 8 * i as u64; // ring position of this word
            let word = header_word(at, 1, 1);
            w.copy_from_slice(&word.to_le_bytes()[..w.len()]);
        }
    }
    for m in [&b"a"[..], b"bb", b"ccc"] {
        tx.send(m).unwrap();
    }
    assert_eq!(rx.try_recv().unwrap(), b"a");
    assert_eq!(rx.try_recv().unwrap(), b"bb");
    assert_eq!(rx.try_recv().unwrap(), b"ccc");
    assert_eq!(rx.try_recv(), Err(RecvError::Empty));
    // And the ring goes on working through wraps afterwards.
    for i in 0..1000u32 {
        tx.send(&i.to_le_bytes()).unwrap();
        assert_eq!(rx.recv().unwrap(), i.to_le_bytes());
    }
}

/// The header word of a record of `kind` (1: message, 2: padding) and `len` bytes
/// published at ring position `pos` (layout version 3, see `shmring::ring::record`): bit
/// 63 set, the position's tag (`pos / 8` modulo 2^29) in bits 62..34, the kind in bits
/// 33..32, the length in bits 31..0.
fn header_word(pos: u64, kind: u64, len: u64) -> u64 {
    (((1 << 29) | ((pos >> 3) & ((1 << 29) - 1))) << 34) | (kind << 32) | len
}

/// Stamp `pos` (the record header slot at ring position `pos`, ring of `cap` bytes) as a
/// published message of `len` bytes, as a hostile peer forging a record would.
fn forge_record(name: &str, cap: u64, pos: u64, len: u32) {
    let off = DATA + (pos % cap);
    poke(name, off, &header_word(pos, 1, len as u64).to_le_bytes());
}

#[test]
fn forged_records_are_reported_not_lost() {
    let _dog = Watchdog::new("forged records", Duration::from_secs(20));
    // A record forged where the producer writes next: the consumer takes it (stale bytes,
    // indistinguishable), and the producer's next send reports the forgery rather than
    // writing a message the consumer has already gone past (a silent loss before).
    let name = unique_name("forged-tail");
    let mut tx = Producer::create(&name, 4096).unwrap();
    let mut rx = Consumer::open(&name).unwrap();
    tx.send(b"a").unwrap();
    assert_eq!(rx.recv().unwrap(), b"a");
    forge_record(&name, 4096, 16, 5);
    assert_eq!(rx.try_recv().unwrap().len(), 5, "the forged record is taken");
    assert!(matches!(tx.send(b"b"), Err(SendError::Corrupted(_))));
    // ... and keeps reporting it; the consumer, past the producer's last record when
    // the producer closes, reports it too instead of a quiet Disconnected.
    assert!(matches!(tx.send(b"c"), Err(SendError::Corrupted(_))));
    drop(tx);
    assert!(
        matches!(rx.recv(), Err(RecvError::Corrupted(_))),
        "closed producer behind"
    );

    // A record at the consumer's position whose header no longer parses: the consumer
    // reports it on every try, so the space the producer waits for never comes; the
    // producer's wait reports it at its liveness check instead of waiting for ever
    // (it timed out before, and a blocking send never returned).
    let name = unique_name("bad-header");
    let mut tx = Producer::create(&name, 256).unwrap();
    let mut rx = Consumer::open(&name).unwrap();
    while tx.try_send(&[1; 40]).is_ok() {}
    poke(&name, DATA, &header_word(0, 0, 40).to_le_bytes()); // stamp kept, type 0
    assert!(matches!(rx.try_recv(), Err(RecvError::Corrupted(_))));
    assert!(matches!(
        tx.send_timeout(&[1; 40], Duration::from_secs(2)),
        Err(SendError::Corrupted(_))
    ));
    assert!(matches!(tx.send(&[1; 40]), Err(SendError::Corrupted(_))));

    // A producer whose final tail is past a record the consumer never found: reported
    // once the producer is gone, not a quiet Disconnected.
    let name = unique_name("erased-stamp");
    let mut tx = Producer::create(&name, 4096).unwrap();
    let mut rx = Consumer::open(&name).unwrap();
    tx.send(b"first").unwrap();
    tx.send(b"second").unwrap();
    assert_eq!(rx.recv().unwrap(), b"first");
    poke(&name, DATA + 16, &0u64.to_le_bytes()); // erase the second's stamp
    drop(tx);
    assert!(matches!(rx.recv(), Err(RecvError::Corrupted(_))));
}

/// A ring larger than its record header can describe is refused before anything is
/// mapped: the SPSC ring's 32-bit lengths and 4 GiB position tags, the broadcast ring's
/// 32-bit lengths (both allowed 1 TiB before layout version 3 and cut longer lengths).
#[test]
fn rings_larger_than_their_headers_describe_are_refused() {
    use shmring::ring::broadcast::{self, Policy};
    let too_big = spsc::MAX_CAPACITY * 2;
    match spsc::channel(too_big) {
        Err(shmring::Error::InvalidArgument(m)) => assert!(m.contains("exceeds"), "{m}"),
        other => panic!("an SPSC ring of {too_big} bytes: {:?}", other.map(|_| ())),
    }
    let too_big = broadcast::MAX_CAPACITY * 2;
    match broadcast::channel(too_big, 1, Policy::Lossless) {
        Err(shmring::Error::InvalidArgument(m)) => assert!(m.contains("exceeds"), "{m}"),
        other => panic!("a broadcast ring of {too_big} bytes: {:?}", other.map(|_| ())),
    }
    // The largest messages of the largest rings still have lengths that fit 32 bits.
    assert!(spsc::max_message_len(spsc::MAX_CAPACITY) < u32::MAX as usize);
    assert!(broadcast::max_message_len(broadcast::MAX_CAPACITY) < u32::MAX as usize);
}
