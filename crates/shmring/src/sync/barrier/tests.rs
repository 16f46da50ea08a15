//! Tests of the raw barrier. Relaxed throughout: planted values are written before the code under test reads
//! them (or are garbage on purpose), and the counters are ordered by the barrier.
use super::*;
use std::sync::Arc;

#[test]
fn timeout_breaks_for_everyone_and_reset_recovers() {
    let b = Arc::new(RawBarrier::new(3));
    let b2 = b.clone();
    let other = std::thread::spawn(move || b2.wait());
    crate::sync::wait::spin_until("one waiting party", || b.n_waiting() == 1);
    let t = Instant::now();
    assert_eq!(b.wait_timeout(Duration::from_millis(30)), Err(BarrierError::Timeout));
    assert!(t.elapsed() >= Duration::from_millis(30));
    assert_eq!(other.join().unwrap(), Err(BarrierError::Broken));
    assert!(b.is_broken());
    assert_eq!(b.n_waiting(), 0);
    assert_eq!(b.wait(), Err(BarrierError::Broken));
    assert_eq!(b.wait_timeout(Duration::ZERO), Err(BarrierError::Broken));
    b.reset();
    assert!(!b.is_broken());
    // A round works again; a huge timeout is no timeout.
    let ts: Vec<_> = (0..2)
        .map(|_| {
            let b = b.clone();
            std::thread::spawn(move || b.wait_timeout(Duration::MAX).unwrap())
        })
        .collect();
    let mine = b.wait().unwrap();
    let mut idx: Vec<u32> = ts.into_iter().map(|t| t.join().unwrap().index).collect();
    idx.push(mine.index);
    idx.sort();
    assert_eq!(idx, [0, 1, 2]);
}

#[test]
fn zero_timeout_of_the_last_arrival_still_releases() {
    let b = Arc::new(RawBarrier::new(2));
    let b2 = b.clone();
    let other = std::thread::spawn(move || b2.wait());
    crate::sync::wait::spin_until("one waiting party", || b.n_waiting() == 1);
    let r = b.wait_timeout(Duration::ZERO).unwrap();
    assert!(r.is_leader());
    assert_eq!(r.index, 1);
    assert_eq!(other.join().unwrap().unwrap().index, 0);
}

#[test]
fn abort_and_reset_break_current_waiters() {
    for reset in [false, true] {
        let b = Arc::new(RawBarrier::new(3));
        let ws: Vec<_> = (0..2)
            .map(|_| {
                let b = b.clone();
                std::thread::spawn(move || b.wait())
            })
            .collect();
        crate::sync::wait::spin_until("two waiting parties", || b.n_waiting() == 2);
        if reset {
            b.reset();
            assert!(!b.is_broken());
        } else {
            b.abort();
            assert!(b.is_broken());
            assert_eq!(b.wait(), Err(BarrierError::Broken));
        }
        for w in ws {
            assert_eq!(w.join().unwrap(), Err(BarrierError::Broken));
        }
    }
}

#[test]
fn outcome_is_decided_by_the_first_event() {
    let b = RawBarrier::new(2);
    let my = pack(3, 10, 0); // arrived first in epoch 3, generation 10
    let waiting = pack(3, 10, 1);
    assert_eq!(b.round(my, waiting, 2), Round::Waiting);
    assert_eq!(b.round(my, waiting | BROKEN, 2), Round::Broken);
    // Released, then broken in the next generation: still released.
    assert_eq!(b.round(my, pack(3, 11, 0) | BROKEN, 2), Round::Released);
    // Reset before any release.
    assert_eq!(b.round(my, pack(4, 10, 0), 2), Round::Broken);
    assert_eq!(b.round(my, pack(5, 10, 1), 2), Round::Broken);
    // Released, then reset (reset 4 ended generation 11): released.
    b.reset_log[4].store(4 << 32 | 11, Ordering::Relaxed);
    assert_eq!(b.round(my, pack(4, 11, 0), 2), Round::Released);
    // Reset (ending generation 10), then a round without us: broken.
    b.reset_log[4].store(4 << 32 | 10, Ordering::Relaxed);
    assert_eq!(b.round(my, pack(4, 11, 0), 2), Round::Broken);
    // The entry is missing (stale tag): conservatively broken.
    b.reset_log[4].store(12 << 32 | 11, Ordering::Relaxed);
    assert_eq!(b.round(my, pack(4, 11, 0), 2), Round::Broken);
    // Corruption within the round.
    assert!(matches!(b.round(my, pack(3, 10, 2), 2), Round::Corrupted(_)));
    assert!(matches!(b.round(my, pack(3, 10, 0), 2), Round::Corrupted(_)));
}

#[test]
fn release_then_reset_before_the_waiter_looks_is_ok() {
    let b = RawBarrier::new(2);
    let my = b.state.load(Ordering::Relaxed);
    // Arrive by hand, as a waiter that has not yet looked.
    b.state.store(my + 1, Ordering::Relaxed);
    let leader = b.wait().unwrap();
    assert!(leader.is_leader());
    b.reset();
    assert_eq!(b.round(my, b.state.load(Ordering::Relaxed), 2), Round::Released);
    // ... and a later round completed by others does not change it.
    let b = Arc::new(b);
    let b2 = b.clone();
    let t = std::thread::spawn(move || b2.wait().unwrap());
    b.wait().unwrap();
    t.join().unwrap();
    assert_eq!(b.round(my, b.state.load(Ordering::Relaxed), 2), Round::Released);
}

#[test]
fn corrupted_words_give_errors() {
    let b = RawBarrier::new(3);
    // Count >= parties.
    b.state.store(pack(0, 0, 3), Ordering::Relaxed);
    assert!(matches!(b.wait(), Err(BarrierError::Corrupted(_))));
    assert!(b.is_broken());
    b.reset();
    assert_eq!(b.n_waiting(), 0);
    // Parties 0 and huge.
    for p in [0, MAX_PARTIES + 1, u32::MAX] {
        b.parties.store(p, Ordering::Relaxed);
        assert!(matches!(
            b.wait_timeout(Duration::from_secs(5)),
            Err(BarrierError::Corrupted(_))
        ));
        b.reset();
    }
    b.parties.store(1, Ordering::Relaxed);
    assert!(b.wait().unwrap().is_leader());
    // A count that goes backwards under a waiter.
    let b = Arc::new(RawBarrier::new(3));
    let b2 = b.clone();
    let w = std::thread::spawn(move || b2.wait_timeout(Duration::from_secs(10)));
    crate::sync::wait::spin_until("one waiting party", || b.n_waiting() == 1);
    b.state.fetch_sub(1, Ordering::Relaxed);
    b.wake_all();
    assert!(matches!(w.join().unwrap(), Err(BarrierError::Corrupted(_))));
    assert!(b.is_broken());
    // Unregistering a garbage slot index does nothing.
    b.unregister_slot(usize::MAX);
}

#[test]
fn dead_or_garbage_table_entries_break_sleepers() {
    // A process id that cannot exist (pid 0x7fff_fff0): dead.
    let dead = 0x7fff_fff0u64 << 32 | 1;
    for (entry, want) in [
        (dead, BarrierError::Broken),
        (u64::MAX, BarrierError::Corrupted("party table entry")),
    ] {
        let b = RawBarrier::new(2);
        let _me = b.register().unwrap();
        b.table[5].store(entry, Ordering::Relaxed);
        let t = Instant::now();
        assert_eq!(b.wait_timeout(Duration::from_secs(20)), Err(want));
        eprintln!("table entry {entry:#x}: {want:?} after {:?}", t.elapsed());
        assert!(b.is_broken());
        assert_eq!(b.table[5].load(Ordering::Relaxed), 0, "the entry is freed");
        b.reset();
        assert!(!b.is_broken());
    }
    // Reset frees a dead slot without breaking.
    let b = RawBarrier::new(1);
    b.table[7].store(dead, Ordering::Relaxed);
    b.reset();
    assert_eq!(b.table[7].load(Ordering::Relaxed), 0);
    assert!(!b.is_broken());
}

#[test]
fn raw_barrier_in_place_init() {
    // SAFETY: all-zero bytes are a valid RawBarrier (atomics and integers).
    let b: RawBarrier = unsafe { std::mem::zeroed() };
    assert!(matches!(b.wait(), Err(BarrierError::Corrupted(_))));
    b.init(1).unwrap();
    assert!(b.wait().unwrap().is_leader());
    assert!(format!("{b:?}").contains("parties: 1"));
}
