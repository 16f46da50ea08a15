//! [`RawSeqLock`]: a sequence lock whose writers serialize on a robust [`RawMutex`], so
//! that a writer killed in the middle of a write is recovered instead of stalling every
//! reader. See the [module docs](crate::value) for the protocol, its source and the
//! state table of the sequence word.

use crate::primitive::{self, AtomicU32, AtomicU64, Ordering, fence};
use crate::sync::RawMutex;
use std::fmt;
use std::marker::PhantomData;

/// Optimistic read attempts with a growing spin between them (1, 2, 4, ... 64 pause
/// hints), then attempts separated by a yield, before a reader falls back to taking the
/// writer lock (which sleeps while a live writer holds it and recovers a dead one).
/// Under loom, a single retry: every spin is another scheduling point to explore, and
/// the fallback path must be reachable within the preemption bound.
#[cfg(not(loom))]
const READ_SPINS: u32 = 12;
#[cfg(not(loom))]
const READ_YIELDS: u32 = 20;
#[cfg(loom)]
const READ_SPINS: u32 = 2;
#[cfg(loom)]
const READ_YIELDS: u32 = 0;

/// A read of data that a writer killed in the middle of a write left partly written: the
/// value holds some words of the interrupted write and the rest of the previous one.
/// It stays flagged until a write that replaces all of the protected data.
///
/// ```
/// use shmring::value::{Torn, Value};
/// let v = Value::anonymous([0u64; 2])?;
/// match v.load_checked() {
///     Ok(x) => assert_eq!(x, [0, 0]),
///     Err(Torn(words)) => eprintln!("a writer died mid-store, leaving {words:?}"),
/// }
/// # Ok::<(), shmring::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Torn<R>(pub R);

impl<R> Torn<R> {
    /// The words as they are (a mix of two writes).
    pub fn into_inner(self) -> R {
        self.0
    }
}

impl<R> fmt::Display for Torn<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a writer died in the middle of a write: the value may mix two writes")
    }
}

impl<R: fmt::Debug> std::error::Error for Torn<R> {}

/// A process-shared sequence lock without data: 40 bytes that may live anywhere in
/// shared memory (all-zero bytes are a valid, unlocked, even lock). It protects data
/// that you keep beside it as atomic words, read and written only inside
/// [`RawSeqLock::read`] and [`SeqWriteGuard::write`] closures with `Relaxed` atomic
/// accesses.
///
/// Readers never write shared memory on their fast path and never block a writer;
/// writers serialize on the embedded robust lock. A reader that keeps failing
/// (a writer is stalled or dead inside its write) takes the lock itself: it sleeps while
/// a live writer holds it and recovers a dead one, flagging the data [`Torn`].
///
/// ```
/// use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
/// use shmring::value::RawSeqLock;
///
/// let lock = RawSeqLock::new();
/// let words = [AtomicU64::new(0), AtomicU64::new(0)];
/// lock.write_lock().write_all(|| {
///     words[0].store(7, Relaxed);
///     words[1].store(7, Relaxed);
/// });
/// let pair = lock.read(|| (words[0].load(Relaxed), words[1].load(Relaxed)));
/// assert_eq!(pair, Ok((7, 7)));
/// ```
#[repr(C)]
#[derive(Debug)]
pub struct RawSeqLock {
    /// Serializes writers; a dead holder is recovered by the next locker.
    lock: RawMutex,
    /// The sequence: odd while a write section is open (see the state table).
    seq: AtomicU64,
    /// 0: the data is whole; anything else: a writer died inside a write section.
    torn: AtomicU32,
    _reserved: AtomicU32,
}

#[cfg(not(loom))]
const _: () = assert!(std::mem::size_of::<RawSeqLock>() == 40);

impl Default for RawSeqLock {
    fn default() -> Self {
        Self::new()
    }
}

impl RawSeqLock {
    crate::primitive::const_unless_loom! {
        /// An unlocked lock with an even sequence and whole data.
        pub const fn new() -> Self {
            RawSeqLock {
                lock: RawMutex::new(),
                seq: AtomicU64::new(0),
                torn: AtomicU32::new(0),
                _reserved: AtomicU32::new(0),
            }
        }
    }

    /// Read the protected data with `copy`, which must load it with atomic loads only
    /// (`Relaxed` is enough) and may run several times. Returns what the last run of
    /// `copy` saw, which is the data of one complete write (never a mix of two), or
    /// `Err(Torn)` if the data is flagged torn by a writer that died mid-write.
    ///
    /// Never blocks a writer on the fast path. After about 30 failed attempts (a writer
    /// is inside its write section all that time) it takes the writer lock, see the
    /// [type docs](RawSeqLock).
    pub fn read<R>(&self, mut copy: impl FnMut() -> R) -> Result<R, Torn<R>> {
        for attempt in 0..READ_SPINS + READ_YIELDS {
            // Acquire: pairs with the Release store that closes a write section (and
            // with the one that closes a repair): once we see its even value, every
            // data word and the torn flag of that section are visible to `copy`.
            let s1 = self.seq.load(Ordering::Acquire);
            if s1 & 1 == 0 {
                let r = copy();
                // Relaxed: part of the snapshot, validated by the re-check like the data.
                let torn = self.torn.load(Ordering::Relaxed) != 0;
                // Acquire fence: pairs with the Release fence after the odd store in
                // `SeqWriteGuard::section` (Boehm 2012, fig. 6): if `copy` read any word
                // written after that fence, the odd store happens-before the re-check
                // below, which then cannot see `s1` again.
                fence(Ordering::Acquire);
                // Relaxed: ordered after our loads by the fence above.
                let s2 = self.seq.load(Ordering::Relaxed);
                if s1 == s2 {
                    return if torn { Err(Torn(r)) } else { Ok(r) };
                }
            }
            if attempt < READ_SPINS {
                for _ in 0..1u32 << attempt.min(6) {
                    primitive::spin_hint();
                }
            } else {
                primitive::yield_now();
            }
        }
        self.read_locked(copy)
    }

    /// The slow path of `read`: read under the writer lock, where no write section can
    /// be open (every writer holds the lock).
    #[cold]
    #[inline(never)]
    fn read_locked<R>(&self, mut copy: impl FnMut() -> R) -> Result<R, Torn<R>> {
        if self.lock.is_owned_by_current_thread() {
            // This thread holds the lock (a guard it keeps around this read): no section
            // is open, so an odd sequence is a corruption. Repair it and read.
            self.repair();
            return self.finish_locked_read(copy());
        }
        let guard = self.write_lock();
        let r = copy();
        drop(guard);
        self.finish_locked_read(r)
    }

    fn finish_locked_read<R>(&self, r: R) -> Result<R, Torn<R>> {
        // Relaxed: written only under the lock, which we held while `copy` ran (or hold).
        if self.torn.load(Ordering::Relaxed) != 0 {
            Err(Torn(r))
        } else {
            Ok(r)
        }
    }

    /// Take the writer lock, sleeping while another writer holds it. A writer that died
    /// holding it is recovered here: if it died inside a write section (odd sequence),
    /// the data is flagged [`Torn`] and the sequence made even again, so readers stop
    /// waiting for it. The lock's own consistency state is cleared: the torn flag is
    /// what records the damage.
    pub fn write_lock(&self) -> SeqWriteGuard<'_> {
        // Ok or OwnerDied: either way we hold the lock; `repair` handles the latter.
        let _ = self.lock.lock();
        self.repair();
        SeqWriteGuard {
            sl: self,
            _not_send: PhantomData,
        }
    }

    /// With the lock held: close a section left open by a dead writer (or opened by a
    /// corrupting peer), and clear the lock's inconsistent state.
    fn repair(&self) {
        // Relaxed: only lock holders write `seq` (a faulty peer aside), and we hold it.
        let s = self.seq.load(Ordering::Relaxed);
        if s & 1 != 0 {
            // Relaxed: published by the Release store below.
            self.torn.store(1, Ordering::Relaxed);
            // Release: pairs with the Acquire load of `s1` in `read`, so a reader that
            // sees the even value also sees the torn flag.
            self.seq.store(s.wrapping_add(1), Ordering::Release);
        }
        if !self.lock.is_consistent() {
            self.lock.mark_consistent();
        }
    }

    /// Whether the data is flagged torn (a snapshot; [`RawSeqLock::read`] reports it
    /// consistently with the data it returns).
    pub fn is_torn(&self) -> bool {
        // Relaxed: an advisory snapshot.
        self.torn.load(Ordering::Relaxed) != 0
    }

    /// Whether some thread holds the writer lock (a snapshot).
    pub fn is_write_locked(&self) -> bool {
        self.lock.is_locked()
    }

    /// The current sequence (a snapshot; odd while a write section is open).
    pub fn sequence(&self) -> u64 {
        // Relaxed: an advisory snapshot.
        self.seq.load(Ordering::Relaxed)
    }
}

/// The writer lock of a [`RawSeqLock`], held; released when dropped. Not `Send`: the
/// lock records the locking thread.
///
/// ```
/// use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
/// use shmring::value::RawSeqLock;
///
/// let lock = RawSeqLock::new();
/// let words = [AtomicU64::new(1), AtomicU64::new(2)];
/// let mut g = lock.write_lock();
/// g.write(|| words[0].store(3, Relaxed)); // one section: readers retry meanwhile
/// g.write(|| words[1].store(4, Relaxed)); // another
/// drop(g);
/// assert_eq!(lock.sequence(), 4);
/// ```
pub struct SeqWriteGuard<'a> {
    sl: &'a RawSeqLock,
    _not_send: PhantomData<*const ()>,
}

impl fmt::Debug for SeqWriteGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SeqWriteGuard")
            .field("seq", &self.sl.sequence())
            .finish()
    }
}

impl SeqWriteGuard<'_> {
    /// One write section: `f` stores the protected data with atomic stores (`Relaxed`
    /// is enough). Readers retry while it runs. If the data was flagged torn it stays
    /// so: use [`SeqWriteGuard::write_all`] when `f` replaces all of it.
    pub fn write<R>(&mut self, f: impl FnOnce() -> R) -> R {
        self.section(false, f)
    }

    /// A write section that replaces all of the protected data, clearing the torn flag.
    pub fn write_all<R>(&mut self, f: impl FnOnce() -> R) -> R {
        self.section(true, f)
    }

    fn section<R>(&mut self, whole: bool, f: impl FnOnce() -> R) -> R {
        let sl = self.sl;
        // Relaxed: we hold the lock; only lock holders write `seq`. It is even unless a
        // faulty peer changed it since we locked: `| 1` opens a section either way.
        let s = sl.seq.load(Ordering::Relaxed);
        let odd = s | 1;
        // Relaxed: ordered before the data stores by the fence below.
        sl.seq.store(odd, Ordering::Relaxed);
        // Release fence: pairs with the Acquire fence in `read` (Boehm 2012, fig. 6).
        #[cfg(loom)]
        let planted = primitive::loom_break::active(primitive::loom_break::LoomBreak::SeqlockWriterFenceSkipped);
        #[cfg(not(loom))]
        let planted = false;
        if !planted {
            fence(Ordering::Release);
        }
        let r = f();
        if whole {
            // Relaxed: published by the Release store below.
            sl.torn.store(0, Ordering::Relaxed);
        } else if s & 1 != 0 {
            // The section was open before ours (corruption): what it wrote is unknown.
            // Relaxed: published by the Release store below.
            sl.torn.store(1, Ordering::Relaxed);
        }
        // Release: pairs with the Acquire load of `s1` in `read`: a reader that sees the
        // even value sees every store of `f`.
        sl.seq.store(odd.wrapping_add(1), Ordering::Release);
        r
    }

    /// Test hook: open a write section, run `f`, and leave the section open and the lock
    /// held — what a writer killed in the middle of a write leaves behind. The calling
    /// thread must then exit or be killed, or readers wait for it.
    #[doc(hidden)]
    pub fn abandon_in_section(mut self, f: impl FnOnce()) {
        self.section_open(f);
        // The lock stays held by this thread; the sequence stays odd.
        std::mem::forget(self);
    }

    fn section_open(&mut self, f: impl FnOnce()) {
        let sl = self.sl;
        // Relaxed (both): as in `section`.
        let s = sl.seq.load(Ordering::Relaxed);
        sl.seq.store(s | 1, Ordering::Relaxed);
        // Release fence: as in `section`.
        fence(Ordering::Release);
        f();
    }
}

impl Drop for SeqWriteGuard<'_> {
    fn drop(&mut self) {
        // SAFETY: the guard exists only while this thread holds the lock, and no write
        // section outlives the call that opened it.
        unsafe { self.sl.lock.unlock() };
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::Ordering::Relaxed;

    struct Cell {
        sl: RawSeqLock,
        words: [AtomicU64; 4],
    }

    fn cell() -> Arc<Cell> {
        Arc::new(Cell {
            sl: RawSeqLock::new(),
            words: Default::default(),
        })
    }

    fn read(c: &Cell) -> Result<[u64; 4], Torn<[u64; 4]>> {
        c.sl.read(|| std::array::from_fn(|i| c.words[i].load(Relaxed)))
    }

    fn write(c: &Cell, v: u64) {
        c.sl.write_lock().write_all(|| {
            for w in &c.words {
                w.store(v, Relaxed);
            }
        });
    }

    #[test]
    fn readers_never_see_a_mix_between_threads() {
        let c = cell();
        let w = {
            let c = c.clone();
            std::thread::spawn(move || {
                for v in 1..=20_000 {
                    write(&c, v);
                }
            })
        };
        let mut last = 0;
        while !w.is_finished() {
            let v = read(&c).expect("nobody died");
            assert!(v.iter().all(|x| *x == v[0]), "torn read {v:?}");
            assert!(v[0] >= last, "went backwards");
            last = v[0];
        }
        w.join().unwrap();
        assert_eq!(read(&c).unwrap(), [20_000; 4]);
        assert_eq!(c.sl.sequence(), 40_000);
    }

    #[test]
    fn a_writer_dead_mid_section_is_recovered_and_flagged() {
        let c = cell();
        write(&c, 1);
        let c2 = c.clone();
        // A thread that exits inside a write section: a dead owner of the lock.
        std::thread::spawn(move || {
            c2.sl.write_lock().abandon_in_section(|| c2.words[0].store(2, Relaxed));
        })
        .join()
        .unwrap();
        assert_eq!(c.sl.sequence() & 1, 1);
        assert!(c.sl.is_write_locked());
        let t = std::time::Instant::now();
        assert_eq!(read(&c), Err(Torn([2, 1, 1, 1])));
        assert!(t.elapsed() < std::time::Duration::from_secs(5));
        assert_eq!(c.sl.sequence() & 1, 0);
        assert!(!c.sl.is_write_locked());
        // Flagged until a whole write.
        assert!(c.sl.is_torn());
        assert_eq!(read(&c), Err(Torn([2, 1, 1, 1])));
        c.sl.write_lock().write(|| c.words[1].store(3, Relaxed));
        assert!(read(&c).is_err(), "a partial write does not clear the flag");
        write(&c, 4);
        assert_eq!(read(&c), Ok([4; 4]));
    }

    #[test]
    fn odd_sequence_under_own_lock_is_repaired() {
        let c = cell();
        let g = c.sl.write_lock();
        // A faulty peer opens a section while we hold the lock.
        c.sl.seq.store(5, Relaxed);
        assert_eq!(read(&c), Err(Torn([0; 4])));
        assert_eq!(c.sl.sequence(), 6);
        drop(g);
        // A section that starts on an odd sequence still ends even.
        c.sl.seq.store(7, Relaxed);
        c.sl.torn.store(0, Relaxed);
        let mut g = c.sl.write_lock();
        assert_eq!(c.sl.sequence(), 8, "repaired at lock time");
        c.sl.seq.store(9, Relaxed);
        g.write(|| ());
        drop(g);
        assert_eq!(c.sl.sequence(), 10);
        assert!(c.sl.is_torn());
    }
}
