//! Loom models of the seqlock of `shmring::value` (`RawSeqLock`, module docs of
//! `shmring::value`): a reader running beside a writer never accepts a copy that mixes
//! two writes, whether it succeeds optimistically or falls back to the writer lock. A
//! planted bug — the writer's Release fence between the odd store and the data stores
//! skipped — is caught: Boehm's fence pair is what makes the re-check see the odd
//! sequence.

mod common;

use loom::sync::Arc;
use loom::sync::atomic::{AtomicU64, Ordering::Relaxed};
use loom::thread;
use shmring::ring::spsc::loom_break::{self, LoomBreak};
use shmring::value::RawSeqLock;
use std::mem::ManuallyDrop;

/// Two protected words; every write stores the same value in both, so a read that
/// returns two different words is torn.
struct Shared {
    sl: RawSeqLock,
    words: [AtomicU64; 2],
}

/// Run `f` on a loom thread that hands its handle back, dropped by the main thread after
/// joining (as in `mutex.rs`: a loom `Arc` dropped during a teardown would abort).
fn spawn(s: &Arc<Shared>, f: impl FnOnce(&Shared) + 'static) -> thread::JoinHandle<ManuallyDrop<Arc<Shared>>> {
    let s = ManuallyDrop::new(s.clone());
    thread::spawn(move || {
        f(&s);
        s
    })
}

fn join(t: thread::JoinHandle<ManuallyDrop<Arc<Shared>>>) {
    drop(ManuallyDrop::into_inner(t.join().unwrap()));
}

fn write(s: &Shared, v: u64) {
    s.sl.write_lock().write_all(|| {
        for w in &s.words {
            w.store(v, Relaxed);
        }
    });
}

fn read(s: &Shared) -> (u64, u64) {
    s.sl.read(|| (s.words[0].load(Relaxed), s.words[1].load(Relaxed)))
        .expect("no writer dies in the model")
}

/// A writer stores 1 then 2; a reader reads twice. Every accepted read is whole, and
/// the reads never go backwards.
fn model() {
    let s = ManuallyDrop::new(Arc::new(Shared {
        sl: RawSeqLock::new(),
        words: [AtomicU64::new(0), AtomicU64::new(0)],
    }));
    let writer = spawn(&s, |s| {
        write(s, 1);
        write(s, 2);
    });
    let reader = spawn(&s, |s| {
        let (a, b) = read(s);
        assert_eq!(a, b, "torn read");
        let (c, d) = read(s);
        assert_eq!(c, d, "torn read");
        assert!(c >= a, "went backwards: {a} then {c}");
    });
    join(writer);
    join(reader);
    assert_eq!(read(&s), (2, 2));
    assert_eq!(s.sl.sequence(), 4);
    drop(ManuallyDrop::into_inner(s));
}

#[test]
fn seqlock_reader_never_accepts_a_torn_copy() {
    common::check("seqlock_reader_never_accepts_a_torn_copy", model);
}

/// The writer skips its Release fence: the reader can see a new first word with the old
/// (even) sequence on both sides of its copy, and accepts a torn value.
#[test]
#[should_panic(expected = "torn read")]
fn seqlock_model_catches_missing_writer_fence() {
    let _bug = loom_break::set(LoomBreak::SeqlockWriterFenceSkipped);
    common::check("seqlock_model_catches_missing_writer_fence", model);
}
