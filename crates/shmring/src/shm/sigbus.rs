//! Containment of `SIGBUS` on named segments: a peer that truncates the file under our
//! mapping must produce an error, never kill this process.
//!
//! A named segment is a plain file in `/dev/shm` that anyone with write access can
//! `ftruncate`. An access to a page of a mapping that now lies beyond the end of the file
//! raises `SIGBUS`, whose default action kills the process. Anonymous segments are memfds
//! sealed against shrinking and growing, so they are never registered here.
//!
//! # Design
//!
//! - A process-wide `SIGBUS` handler, installed once (before the first named mapping is
//!   made), with `SA_SIGINFO | SA_ONSTACK`.
//! - A fixed table of [`SLOTS`] slots `(state, start, len, fd, poisoned)`, one per live
//!   named mapping, read by the handler without locks or allocation. A slot's `start` and
//!   `len` are published like a seqlock: the handler reads them between two loads of the
//!   slot's state word and ignores the slot if the word changed.
//! - When the faulting address (`si_addr`) lies in a registered mapping, the handler maps
//!   anonymous zero pages over the whole mapping (`mmap(MAP_FIXED | MAP_PRIVATE |
//!   MAP_ANONYMOUS)`, a system call, so async-signal-safe), sets the slot's poison flag
//!   and returns: the faulting access is re-executed against the zero page and completes.
//!   The mapping is no longer shared with anyone; [`Segment::is_poisoned`] says so, and
//!   the structures' liveness ticks and `open` turn it into an error.
//! - Truncating to half leaves the first pages valid and growing faults nowhere, so the
//!   waits also compare the file's size (`fstat` of the slot's descriptor, at most every
//!   liveness interval) with the mapping's, and detach the mapping the same way when
//!   they differ ([`check_at`], [`Segment::check_resized`]).
//! - Any other `SIGBUS` goes to the handler that was installed before ours (if it was a
//!   function), or gets the default action: the handler resets the disposition to
//!   `SIG_DFL` and re-raises, so the process dies of `SIGBUS` as it would have without
//!   shmring.
//!
//! # Limits
//!
//! - A handler installed for `SIGBUS` after ours, which does not chain to the previous
//!   one, disables the containment (signal-hook-registry does chain).
//! - At most [`SLOTS`] named mappings are protected at once; further ones work but are
//!   not protected (a truncation by a peer kills the process, as before).
//! - The zero pages are private: a poisoned mapping no longer exchanges anything with its
//!   peers; what was written in it is lost.
//! - A `fork`ed child inherits the handler, the table and the mappings (`MAP_SHARED`
//!   ones stay shared), so the containment keeps working in the child.
//!
//! See `docs/design-notes.md` ("A peer that resizes a named segment") for where each
//! object reports it.
//!
//! [`Segment::is_poisoned`]: super::Segment::is_poisoned
//! [`Segment::check_resized`]: super::Segment::check_resized

use std::num::NonZeroU16;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicPtr, AtomicU64, AtomicUsize, Ordering, fence};
use std::sync::{Once, OnceLock};
use std::time::{Duration, Instant};

/// The `Corrupted` message of ring, queue and barrier calls on a poisoned segment.
pub const RESIZED: &str = "a peer resized the segment under this mapping (now detached: private zero pages)";

/// How many named mappings can be protected at once.
pub const SLOTS: usize = 4096;

/// Slot states: the low two bits of a slot's state word; the rest is a generation count
/// that changes at every transition, so a reader sees any rewrite of `start`/`len`.
const FREE: u64 = 0;
const WRITING: u64 = 1;
const LIVE: u64 = 2;
const TAG: u64 = 3;

struct Slot {
    state: AtomicU64,
    start: AtomicUsize,
    len: AtomicUsize,
    /// The descriptor the range was mapped from (owned by the Segment, which closes it
    /// only after dropping its Registration): for the size checks of [`check_at`].
    fd: AtomicI32,
    poisoned: AtomicBool,
    /// When [`Registration::check_size_every`] last ran `fstat` (ns since [`epoch_ns`]'s
    /// origin; 0: never).
    last_size_check: AtomicU64,
}

#[allow(clippy::declare_interior_mutable_const)] // only used to initialize TABLE
const EMPTY_SLOT: Slot = Slot {
    state: AtomicU64::new(FREE),
    start: AtomicUsize::new(0),
    len: AtomicUsize::new(0),
    fd: AtomicI32::new(0), // all-zero: the table lives in .bss
    poisoned: AtomicBool::new(false),
    last_size_check: AtomicU64::new(0),
};

static TABLE: [Slot; SLOTS] = [EMPTY_SLOT; SLOTS];
/// The `SIGBUS` action in place before ours (leaked; null until installed).
static PREVIOUS: AtomicPtr<libc::sigaction> = AtomicPtr::new(std::ptr::null_mut());
static INSTALL: Once = Once::new();
/// How many faults the handler contained (for diagnostics and tests).
static CONTAINED: AtomicU64 = AtomicU64::new(0);
/// Whether installing the handler succeeded.
static INSTALLED: AtomicBool = AtomicBool::new(false);

/// A registered mapping: unregisters on drop. Drop it *before* unmapping the range.
#[derive(Debug)]
pub(crate) struct Registration {
    /// The slot's index plus one (so that `Option<Registration>` costs no space in a
    /// `Segment`).
    slot1: NonZeroU16,
}

impl Registration {
    /// Whether the handler (or [`Registration::check_size`]) replaced this mapping with
    /// zero pages.
    #[inline]
    pub(crate) fn is_poisoned(&self) -> bool {
        // Relaxed: a flag; the zero pages themselves are visible through the page
        // tables, not through this store.
        TABLE[self.slot()].poisoned.load(Ordering::Relaxed)
    }

    fn slot(&self) -> usize {
        usize::from(self.slot1.get()) - 1
    }

    /// [`Registration::is_poisoned`], after checking the file's size (one `fstat`): a
    /// file whose size is no longer the mapping's was resized by a peer, and the mapping
    /// is poisoned now, before any access faults. For liveness ticks.
    pub(crate) fn check_size(&self) -> bool {
        check_slot(self.slot())
    }

    /// [`Registration::check_size`] at most once per `interval`; in between, the poison
    /// flag and a clock read.
    pub(crate) fn check_size_every(&self, interval: Duration) -> bool {
        let s = &TABLE[self.slot()];
        if self.is_poisoned() {
            return true;
        }
        let now = epoch_ns();
        // Relaxed (both): a throttle; two threads that both pass it only cost an fstat.
        let last = s.last_size_check.load(Ordering::Relaxed);
        if last != 0 && now.saturating_sub(last) < interval.as_nanos() as u64 {
            return false;
        }
        s.last_size_check.store(now.max(1), Ordering::Relaxed);
        self.check_size()
    }
}

/// Nanoseconds since the first call in this process (a monotonic clock).
fn epoch_ns() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    EPOCH.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

/// Poisoned, or the file no longer has the mapping's size (then poison it now).
fn check_slot(i: usize) -> bool {
    let s = &TABLE[i];
    // Relaxed: see Registration::is_poisoned.
    if s.poisoned.load(Ordering::Relaxed) {
        return true;
    }
    // Relaxed (all three): written before the slot went LIVE, which the caller's owner
    // of the slot (this process's Segment) happened after.
    let (fd, start, len) = (
        s.fd.load(Ordering::Relaxed),
        s.start.load(Ordering::Relaxed),
        s.len.load(Ordering::Relaxed),
    );
    // SAFETY: all-zero is a valid `stat`; `fd` is open while the slot is LIVE (the
    // Segment closes it after unregistering), and fstat only writes `st`.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    if unsafe { libc::fstat(fd, &mut st) } != 0 {
        return false;
    }
    if st.st_size as u64 == len as u64 {
        return false;
    }
    poison(s, start, len)
}

/// Map private zero pages over `[start, start + len)` and set the slot's poison flag.
/// Async-signal-safe (one system call and atomic stores).
fn poison(s: &Slot, start: usize, len: usize) -> bool {
    // SAFETY: [start, start+len) is a live mapping of ours (registered, unregistered only
    // before its munmap); replacing it with private zero pages keeps every pointer into
    // it valid. mmap is a system call: async-signal-safe.
    let r = unsafe {
        libc::mmap(
            start as *mut libc::c_void,
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_FIXED | libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if r == libc::MAP_FAILED {
        return false;
    }
    // Relaxed: a flag read on the liveness ticks.
    s.poisoned.store(true, Ordering::Relaxed);
    true
}

impl Drop for Registration {
    fn drop(&mut self) {
        let s = &TABLE[self.slot()];
        // Relaxed: only this registration writes the slot until it is FREE again.
        let st = s.state.load(Ordering::Relaxed);
        // Release: pairs with the Acquire load of a new claimer's CAS (register).
        s.state.store(((st >> 2) + 1) << 2 | FREE, Ordering::Release);
    }
}

/// Install the handler (once per process) and register `[start, start + len)`. `None`
/// when the handler could not be installed or the table is full: the mapping then works
/// unprotected.
pub(crate) fn register(fd: i32, start: *mut u8, len: usize) -> Option<Registration> {
    INSTALL.call_once(install);
    // Relaxed: set inside call_once, which synchronizes with this thread.
    if !INSTALLED.load(Ordering::Relaxed) || len == 0 {
        return None;
    }
    for (i, s) in TABLE.iter().enumerate() {
        // Relaxed: a hint; the CAS decides.
        let st = s.state.load(Ordering::Relaxed);
        if st & TAG != FREE {
            continue;
        }
        let generation = st >> 2;
        // Acquire: pairs with the Release store of FREE in Registration::drop, so the
        // previous owner is done with the slot.
        if s.state
            .compare_exchange(
                st,
                (generation + 1) << 2 | WRITING,
                Ordering::Acquire,
                Ordering::Relaxed,
            )
            .is_err()
        {
            continue;
        }
        s.start.store(start as usize, Ordering::Relaxed);
        s.len.store(len, Ordering::Relaxed);
        s.fd.store(fd, Ordering::Relaxed);
        s.poisoned.store(false, Ordering::Relaxed);
        s.last_size_check.store(0, Ordering::Relaxed);
        // Release: pairs with the Acquire load of the state in `find` (the handler), so
        // a reader that sees LIVE sees start, len and poisoned above.
        s.state.store((generation + 2) << 2 | LIVE, Ordering::Release);
        let slot1 = NonZeroU16::new(u16::try_from(i + 1).ok()?)?;
        return Some(Registration { slot1 });
    }
    None
}

/// Whether `addr` lies in a registered mapping that is poisoned or whose file no longer
/// has the mapping's size (which poisons it now): a scan of the table and an `fstat`.
/// For liveness ticks (at most every [`LIVENESS_INTERVAL`](crate::sync::LIVENESS_INTERVAL))
/// of objects that know an address in their segment but not the segment.
pub fn check_at(addr: *const u8) -> bool {
    find(addr as usize).is_some_and(check_slot)
}

/// The slot of the live mapping that contains `addr`. Async-signal-safe: atomics only.
fn find(addr: usize) -> Option<usize> {
    for (i, s) in TABLE.iter().enumerate() {
        // Acquire: pairs with the Release store of LIVE in `register`.
        let st = s.state.load(Ordering::Acquire);
        if st & TAG != LIVE {
            continue;
        }
        let start = s.start.load(Ordering::Relaxed);
        let len = s.len.load(Ordering::Relaxed);
        // Acquire fence: orders the two loads above before the re-check of the state
        // (seqlock reader), pairing with the Release of the next transition.
        fence(Ordering::Acquire);
        if s.state.load(Ordering::Relaxed) != st {
            continue;
        }
        if addr >= start && addr - start < len {
            return Some(i);
        }
    }
    None
}

fn install() {
    // SAFETY: `sigaction` is a plain C struct for which all-zero is a valid value.
    let mut act: libc::sigaction = unsafe { std::mem::zeroed() };
    act.sa_sigaction = handler as *const () as usize;
    act.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK | libc::SA_RESTART;
    // SAFETY: `act.sa_mask` is a valid sigset_t to initialize.
    unsafe { libc::sigemptyset(&mut act.sa_mask) };
    // SAFETY: as above.
    let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers are valid `sigaction` structs for the duration of the call;
    // `handler` is async-signal-safe (see its comments).
    if unsafe { libc::sigaction(libc::SIGBUS, &act, &mut old) } != 0 {
        return;
    }
    // Release: pairs with the Acquire load in `pass_on`. Until this store, a foreign
    // SIGBUS gets the default action.
    PREVIOUS.store(Box::into_raw(Box::new(old)), Ordering::Release);
    // Relaxed: read after call_once returns, which orders it.
    INSTALLED.store(true, Ordering::Relaxed);
}

/// Whether the containment handler is installed in this process (it is once a named
/// segment has been mapped).
pub fn handler_installed() -> bool {
    // Relaxed: a flag for display and tests.
    INSTALLED.load(Ordering::Relaxed)
}

/// How many SIGBUS faults on shmring mappings the handler contained in this process.
pub fn contained_faults() -> u64 {
    // Relaxed: a counter.
    CONTAINED.load(Ordering::Relaxed)
}

extern "C" fn handler(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo for an SA_SIGINFO handler; `si_addr` is
    // meaningful for SIGBUS raised by a fault (for a kill() it is some value that lies
    // in no mapping, or in one, which then is poisoned harmlessly).
    let addr = unsafe { (*info).si_addr() } as usize;
    // Only faults (si_code > 0) are contained; a SIGBUS sent by kill/sigqueue keeps its
    // meaning.
    // SAFETY: as above.
    let code = unsafe { (*info).si_code };
    if code > 0
        && let Some(i) = find(addr)
    {
        let s = &TABLE[i];
        // Relaxed (both): `find` validated them against the slot's state word.
        let (start, len) = (s.start.load(Ordering::Relaxed), s.len.load(Ordering::Relaxed));
        if poison(s, start, len) {
            // Relaxed: a counter.
            CONTAINED.fetch_add(1, Ordering::Relaxed);
            return;
        }
    }
    pass_on(sig, info, ctx);
}

/// Hand a SIGBUS that is not ours to the previous handler, or die of it.
fn pass_on(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // Acquire: pairs with the Release store in `install`.
    let prev = PREVIOUS.load(Ordering::Acquire);
    if !prev.is_null() {
        // SAFETY: `prev` was leaked by `install` and is never freed.
        let prev = unsafe { &*prev };
        let h = prev.sa_sigaction;
        if h != libc::SIG_DFL && h != libc::SIG_IGN {
            if prev.sa_flags & libc::SA_SIGINFO != 0 {
                let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
                    // SAFETY: an SA_SIGINFO handler has this signature; we pass on what
                    // the kernel gave us.
                    unsafe { std::mem::transmute(h) };
                f(sig, info, ctx);
            } else {
                // SAFETY: a plain handler has this signature.
                let f: extern "C" fn(libc::c_int) = unsafe { std::mem::transmute(h) };
                f(sig);
            }
            return;
        }
    }
    // The default action: restore it and re-raise. The signal is blocked while we run,
    // so it is delivered when the handler returns (and a fault re-faults anyway).
    // SAFETY: all-zero is a valid sigaction; sigaction and raise are async-signal-safe.
    unsafe {
        let mut dfl: libc::sigaction = std::mem::zeroed();
        dfl.sa_sigaction = libc::SIG_DFL;
        libc::sigemptyset(&mut dfl.sa_mask);
        libc::sigaction(libc::SIGBUS, &dfl, std::ptr::null_mut());
        libc::raise(libc::SIGBUS);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn register_find_unregister() {
        let buf = vec![0u8; 4096];
        let p = buf.as_ptr() as *mut u8;
        let r = register(-1, p, 4096).expect("a slot");
        assert!(handler_installed());
        assert!(find(p as usize + 10).is_some());
        assert!(find(p as usize + 4096).is_none());
        assert!(!r.is_poisoned());
        let slot = r.slot();
        drop(r);
        assert!(find(p as usize + 10).is_none_or(|i| i != slot));
    }
}
