//! In-process tests of the queues (the cross-process ones are in
//! `tests/queue_process.rs`).

use super::record::{self, MAX_REF_RECORD, Reference};
use super::*;
use crate::ring::mpmc::Producer;
use std::time::Duration;

fn unique(tag: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "shmring-unit-queue-{tag}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Side segments of the queue with `prefix` still in /dev/shm.
fn leftovers(prefix: &str) -> Vec<String> {
    std::fs::read_dir("/dev/shm")
        .map(|rd| {
            rd.filter_map(|e| e.ok()?.file_name().into_string().ok())
                .filter(|n| n.starts_with(prefix))
                .collect()
        })
        .unwrap_or_default()
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

#[test]
fn typed_and_bytes_inline_and_large() {
    let mut q: Queue<Vec<u8>> = Queue::new(8).unwrap();
    assert_eq!(q.capacity(), 8);
    assert_eq!(q.slot_size(), DEFAULT_SLOT_SIZE);
    assert!(q.empty() && !q.full());
    // Lengths around the inline limit, for bytes and for encoded values.
    for len in [0, 1, 510, 511, 512, 513, 4096, 1 << 20] {
        let msg = pattern(len, len as u8);
        q.put_bytes(&msg).unwrap();
        assert_eq!(q.qsize(), 1);
        assert_eq!(q.get_bytes().unwrap(), msg, "bytes of {len}");
        q.put(&msg).unwrap();
        assert_eq!(q.get().unwrap(), msg, "value of {len}");
    }
    let st = q.stats();
    assert_eq!(st.pushed, st.popped);
    assert!(leftovers(q.side_segment_prefix()).is_empty());
}

#[test]
fn nowait_timeout_close() {
    let mut q: Queue<u32> = Queue::new(2).unwrap();
    assert!(matches!(q.get_nowait(), Err(GetError::Empty)));
    assert!(matches!(
        q.get_timeout(Duration::from_millis(5)),
        Err(GetError::Timeout)
    ));
    q.put_nowait(&1).unwrap();
    q.put_timeout(&2, Duration::from_millis(5)).unwrap();
    assert!(q.full());
    assert!(matches!(q.put_nowait(&3), Err(PutError::Full)));
    assert!(matches!(
        q.put_timeout(&3, Duration::from_millis(5)),
        Err(PutError::Timeout)
    ));
    // A large message into a full queue: refused, and no side segment stays behind.
    let big = pattern(10_000, 1);
    assert!(matches!(q.put_bytes_nowait(&big), Err(PutError::Full)));
    assert!(matches!(
        q.put_bytes_timeout(&big, Duration::from_millis(5)),
        Err(PutError::Timeout)
    ));
    assert!(leftovers(q.side_segment_prefix()).is_empty());
    q.close();
    assert!(q.is_closed());
    assert!(matches!(q.put(&4), Err(PutError::Closed)));
    assert!(matches!(q.put_bytes(&big), Err(PutError::Closed)));
    assert_eq!(q.get().unwrap(), 1);
    assert_eq!(q.get_nowait().unwrap(), 2);
    assert!(matches!(q.get(), Err(GetError::Closed)));
    assert!(matches!(q.get_nowait(), Err(GetError::Closed)));
}

#[test]
fn limits_and_config() {
    assert!(Queue::<u8>::with_config(4, &QueueConfig::new().slot_size(64)).is_err());
    let cfg = QueueConfig::new().slot_size(128).max_message_size(1000);
    let mut q: Queue<Vec<u8>> = Queue::with_config(4, &cfg).unwrap();
    assert_eq!(q.slot_size(), 128);
    assert!(matches!(
        q.put_bytes(&[0; 1001]),
        Err(PutError::MessageTooLarge { len: 1001, max: 1000 })
    ));
    // Encoded length counts (a Vec<u8> of 999 bytes encodes to 1001).
    assert!(matches!(q.put(&vec![0; 999]), Err(PutError::MessageTooLarge { .. })));
    q.put_bytes(&[5; 1000]).unwrap();
    assert_eq!(q.get_bytes().unwrap(), vec![5; 1000]);
    // The limit holds for a value that fits a slot too (encoded in one pass there).
    let mut q: Queue<Vec<u8>> = Queue::with_config(4, &QueueConfig::new().slot_size(128).max_message_size(50)).unwrap();
    assert!(matches!(
        q.put(&vec![1u8; 60]),
        Err(PutError::MessageTooLarge { len: 61, max: 50 })
    ));
    q.put(&vec![2u8; 49]).unwrap();
    assert_eq!(q.get().unwrap(), vec![2u8; 49]);
    // maxsize rounding and the unbounded default.
    assert_eq!(Queue::<u8>::new(3).unwrap().capacity(), 4);
    assert_eq!(Queue::<u8>::new(1).unwrap().capacity(), 2);
    assert_eq!(SimpleQueue::<u8>::new().unwrap().as_queue().capacity(), UNBOUNDED_SLOTS);
    // A consumer with a smaller limit than the producer refuses the reference and
    // removes its segment.
    let name = unique("limit");
    let mut big = Queue::<u8>::create(&name, 4).unwrap();
    let mut small = Queue::<u8>::open_with(&name, &QueueConfig::new().max_message_size(2000)).unwrap();
    big.put_bytes(&pattern(3000, 2)).unwrap();
    assert!(matches!(
        small.get_bytes(),
        Err(GetError::BadReference(BadReference::TooLarge { len: 3000, max: 2000 }))
    ));
    assert!(leftovers(big.side_segment_prefix()).is_empty());
}

#[test]
fn named_queue_ids_agree_and_codec_errors() {
    let name = unique("named");
    let mut a: Queue<String> = Queue::create(&name, 16).unwrap();
    let mut b: Queue<String> = Queue::open(&name).unwrap();
    assert_eq!(a.side_segment_prefix(), b.side_segment_prefix());
    assert_eq!(a.name(), Some(name.as_str()));
    let long = "x".repeat(5000);
    a.put(&long).unwrap();
    assert_eq!(b.get().unwrap(), long);
    // Bytes that are no String.
    a.put_bytes(&[0xff, 0xff]).unwrap();
    assert!(matches!(b.get(), Err(GetError::Codec(_))));
    // Handed by descriptor: same queue, same id.
    let mut c: Queue<String> = Queue::from_fd(b.try_clone().unwrap().into_fd()).unwrap();
    assert_eq!(c.side_segment_prefix(), a.side_segment_prefix());
    a.put(&"via fd".to_string()).unwrap();
    assert_eq!(c.get().unwrap(), "via fd");
    drop((a, b, c));
    assert!(Queue::<String>::open(&name).is_err(), "the creator removed the name");
}

/// Push a raw record into the queue's ring, as a hostile peer would.
fn push_raw(p: &mut Producer, rec: &[u8]) {
    p.push(rec).unwrap();
}

fn reference(name: &str, len: u64, checksum: u64) -> Vec<u8> {
    let mut out = [0u8; MAX_REF_RECORD];
    let n = record::encode_reference(&Reference { name, len, checksum }, &mut out);
    out[..n].to_vec()
}

#[test]
fn hostile_records_are_errors() {
    let name = unique("hostile");
    let mut q: Queue<u32> = Queue::create(&name, 64).unwrap();
    let mut evil = Producer::open(&name).unwrap();
    let prefix = q.side_segment_prefix().to_owned();
    // A segment outside the prefix that must survive.
    let victim = unique("victim");
    let _victim = crate::shm::Segment::create(
        &victim,
        crate::shm::SegmentKind::Raw,
        [0; 8],
        4096,
        &crate::shm::SegmentOptions::new(),
    )
    .unwrap();
    let bad = |e: GetError| match e {
        GetError::BadReference(b) => b,
        other => panic!("expected a bad reference, got {other:?}"),
    };
    push_raw(&mut evil, &[]);
    assert_eq!(bad(q.get().unwrap_err()), BadReference::Truncated { len: 0 });
    push_raw(&mut evil, &[7, 1, 2]);
    assert_eq!(bad(q.get().unwrap_err()), BadReference::UnknownKind(7));
    push_raw(&mut evil, &reference(&victim, 4096, 0));
    assert_eq!(bad(q.get().unwrap_err()), BadReference::ForeignName);
    push_raw(&mut evil, &reference(&format!("{prefix}1-../x"), 10, 0));
    assert_eq!(bad(q.get().unwrap_err()), BadReference::ForeignName);
    push_raw(&mut evil, &reference(&format!("{prefix}1-999999"), 10, 0));
    assert_eq!(bad(q.get().unwrap_err()), BadReference::Missing);
    push_raw(&mut evil, &reference(&format!("{prefix}1-1"), u64::MAX, 0));
    assert!(matches!(bad(q.get().unwrap_err()), BadReference::TooLarge { .. }));
    // A segment in the prefix whose size disagrees with the record: removed.
    let liar = format!("{prefix}1-2");
    let (sum, len) = (record::checksum(&[1; 100]), 100);
    let mut seg = crate::shm::Segment::create(
        &liar,
        crate::shm::SegmentKind::Raw,
        [super::side::SIDE_TAG, len, sum, 0, 0, 0, 0, 0],
        50,
        &crate::shm::SegmentOptions::new().keep(true),
    )
    .unwrap();
    seg.publish_ready();
    drop(seg);
    push_raw(&mut evil, &reference(&liar, len, sum));
    assert_eq!(bad(q.get().unwrap_err()), BadReference::Mismatch);
    // A segment whose header agrees with the record but whose bytes do not.
    let forged = format!("{prefix}1-3");
    let mut seg = crate::shm::Segment::create(
        &forged,
        crate::shm::SegmentKind::Raw,
        [super::side::SIDE_TAG, len, sum, q.engine().id(), 0, 0, 0, 0],
        100,
        &crate::shm::SegmentOptions::new().keep(true),
    )
    .unwrap();
    seg.publish_ready();
    drop(seg);
    push_raw(&mut evil, &reference(&forged, len, sum));
    assert_eq!(bad(q.get().unwrap_err()), BadReference::Checksum);
    // A real side segment with a wrong checksum in the record: the header disagrees.
    let mut p2: Queue<u32> = Queue::open(&name).unwrap();
    p2.put_bytes(&pattern(2000, 9)).unwrap();
    let rec = evil_steal(&mut q);
    let Ok(record::Record::Reference(r)) = record::parse(&rec, &prefix, u64::MAX) else {
        panic!("expected a reference record")
    };
    push_raw(&mut evil, &reference(r.name, r.len, r.checksum ^ 1));
    assert_eq!(bad(q.get().unwrap_err()), BadReference::Mismatch);
    // Everything still works, and nothing in the prefix is left; the victim is intact.
    q.put(&42).unwrap();
    assert_eq!(q.get().unwrap(), 42);
    assert!(leftovers(&prefix).is_empty(), "{:?}", leftovers(&prefix));
    assert!(std::path::Path::new("/dev/shm").join(&victim).exists());
}

/// Pop the next raw record without processing it (the test plays a consumer that
/// reads the record itself).
fn evil_steal(q: &mut Queue<u32>) -> Vec<u8> {
    let mut c = crate::ring::mpmc::Consumer::open(q.name().unwrap()).unwrap();
    c.pop().unwrap()
}

#[test]
fn joinable_counts() {
    let mut q: JoinableQueue<u32> = JoinableQueue::new(8).unwrap();
    assert_eq!(q.task_done(), Err(TaskDoneError::TooOften));
    assert_eq!(q.join_timeout(Duration::ZERO), Ok(()));
    q.put(&1).unwrap();
    q.put_bytes(&pattern(3000, 3)).unwrap();
    assert_eq!(q.unfinished_tasks(), 2);
    // A failed put is not counted.
    q.close();
    assert!(matches!(q.put(&3), Err(PutError::Closed)));
    assert_eq!(q.unfinished_tasks(), 2);
    assert_eq!(
        q.join_timeout(Duration::from_millis(5)),
        Err(JoinError::Timeout { unfinished: 2 })
    );
    assert_eq!(q.get().unwrap(), 1);
    q.task_done().unwrap();
    // Bytes that are no u32: a codec error, marked done by get itself.
    assert!(matches!(q.get(), Err(GetError::Codec(_))));
    assert_eq!(q.unfinished_tasks(), 0);
    q.join().unwrap();
    assert_eq!(q.task_done(), Err(TaskDoneError::TooOften));
    assert_eq!(q.unfinished_tasks(), 0);
}

#[test]
fn joinable_named_and_fds_tie_together() {
    let name = unique("join");
    let mut a: JoinableQueue<u32> = JoinableQueue::create(&name, 8).unwrap();
    let b: JoinableQueue<u32> = JoinableQueue::open(&name).unwrap();
    a.put(&7).unwrap();
    assert_eq!(b.unfinished_tasks(), 1);
    let (qfd, tfd) = a.try_clone().unwrap().into_fds().unwrap();
    let mut c: JoinableQueue<u32> = JoinableQueue::from_fds(qfd, tfd).unwrap();
    assert_eq!(c.get().unwrap(), 7);
    c.task_done().unwrap();
    b.join().unwrap();
    // A counter from another queue is refused.
    let other: JoinableQueue<u32> = JoinableQueue::new(2).unwrap();
    let (_, foreign) = other.into_fds().unwrap();
    let (qfd, _) = a.try_clone().unwrap().into_fds().unwrap();
    assert!(JoinableQueue::<u32>::from_fds(qfd, foreign).is_err());
    drop((a, b, c));
    assert!(!std::path::Path::new("/dev/shm").join(format!("{name}.tasks")).exists());
}
