//! The facade every algorithm in shmring uses for atomics, fences and futex calls.
//!
//! Built normally it re-exports `std` atomics and calls the kernel through rustix;
//! built with `--cfg loom` it swaps in loom's models so the same ring and waiter code
//! runs under the model checker. The futex model follows shadow's vasi-sync: a wait
//! checks the word and sleeps on a condition variable under one lock, a wake notifies
//! under the same lock, and timeouts are ignored — so a lost wake-up is a deadlock that
//! loom reports instead of a delay that a timeout would hide.

use std::time::Duration;

/// A `const fn` outside loom, a plain `fn` under it (loom's atomics have no `const`
/// constructors): one body for the constructors of the raw primitives.
macro_rules! const_unless_loom {
    ($(#[$m:meta])* $vis:vis const fn $name:ident($($arg:ident: $ty:ty),* $(,)?) -> $ret:ty $body:block) => {
        #[cfg(not(loom))]
        $(#[$m])*
        $vis const fn $name($($arg: $ty),*) -> $ret $body

        #[cfg(loom)]
        $(#[$m])*
        $vis fn $name($($arg: $ty),*) -> $ret $body
    };
}
pub(crate) use const_unless_loom;

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicU32, AtomicU64, Ordering, fence};
#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{AtomicU32, AtomicU64, Ordering, fence};

/// Hint to the CPU that we are spinning.
#[inline]
pub(crate) fn spin_hint() {
    #[cfg(loom)]
    loom::thread::yield_now();
    #[cfg(not(loom))]
    std::hint::spin_loop();
}

/// The CPU this thread runs on, plus one (0: unknown; always 0 under loom). A hint:
/// the thread may move right after. glibc answers from the thread's rseq area or the
/// vDSO, without a system call.
#[inline]
pub(crate) fn current_cpu() -> u32 {
    #[cfg(loom)]
    return 0;
    #[cfg(not(loom))]
    {
        // SAFETY: sched_getcpu takes no arguments and touches no memory of ours; it
        // returns -1 (errno set) where the kernel cannot tell.
        let cpu = unsafe { libc::sched_getcpu() };
        u32::try_from(cpu).map_or(0, |c| c.wrapping_add(1))
    }
}

/// Give the core to another runnable thread.
#[inline]
pub(crate) fn yield_now() {
    #[cfg(loom)]
    loom::thread::yield_now();
    #[cfg(not(loom))]
    std::thread::yield_now();
}

/// The fast side of a store-load (Dekker) pair: after a store of an index, before the
/// load of the other side's waiting flag.
///
/// With `asymmetric` set, the slow side ([`heavy_fence`]) issues
/// `membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED)`, which runs a full barrier on every CPU
/// executing a registered process; that makes a compiler fence enough here, and keeps
/// the locked instruction or `mfence` off the per-message path. Without it (membarrier
/// unavailable, or disabled at creation), both sides use a SeqCst fence.
#[inline]
pub(crate) fn light_fence(asymmetric: bool) {
    #[cfg(loom)]
    {
        let _ = asymmetric;
        fence(Ordering::SeqCst);
    }
    #[cfg(not(loom))]
    if asymmetric {
        std::sync::atomic::compiler_fence(Ordering::SeqCst);
    } else {
        fence(Ordering::SeqCst);
    }
}

/// The slow side of a store-load pair: after a waiter registers, before it re-checks
/// the condition. See [`light_fence`].
#[inline]
pub(crate) fn heavy_fence(asymmetric: bool) {
    #[cfg(loom)]
    if loom_break::active(loom_break::LoomBreak::HeavyFenceSkipped) {
        return;
    }
    fence(Ordering::SeqCst);
    #[cfg(not(loom))]
    if asymmetric {
        membarrier::global_expedited();
    }
    #[cfg(loom)]
    let _ = asymmetric;
}

/// Deliberate protocol bugs for the `#[should_panic]` models of `loom-tests/`, which
/// prove that each model catches the bug it guards against. Loom builds only; exported
/// (hidden) as `shmring::ring::spsc::loom_break`.
#[cfg(loom)]
pub mod loom_break {
    use super::Ordering;
    use std::cell::Cell;

    /// A protocol step to break on purpose.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    #[non_exhaustive]
    pub enum LoomBreak {
        /// No break: the real protocols.
        None,
        /// The producer publishes a record's stamp with a Relaxed store instead of
        /// Release, so the consumer may read a record that is not yet visible to it.
        StampPublishRelaxed,
        /// An MPMC producer marks a slot FULL with a Relaxed store instead of Release, so
        /// a consumer may read a payload that is not yet visible to it.
        MpmcPublishRelaxed,
        /// An MPMC producer or consumer stores its intent word after its claim CAS on
        /// the position instead of before, so a recoverer can see the position passed
        /// with no live party naming it and rob a live claimer.
        MpmcIntentAfterClaim,
        /// An MPMC recoverer frees a slot whose reader died without first seeing the
        /// dequeue position past it (the slot's message was never taken: it is lost
        /// and the producer overwrites it, or a live consumer reads a freed slot).
        MpmcRecoverUnclaimed,
        /// A sleeper skips the heavy fence between registering as waiting and re-checking
        /// the condition, so the waker may miss the flag while the sleeper misses the data:
        /// a lost wake-up.
        HeavyFenceSkipped,
        /// A semaphore's releaser or an event's setter skips the SeqCst fence between
        /// changing its state word and reading the waiter count, so it may miss a sleeper
        /// that misses the change: a lost wake-up.
        WakerFenceSkipped,
        /// A mutex sleeper goes to sleep without setting the WAITERS bit of the lock
        /// word, so the holder's unlock does not wake it (a lost wake-up).
        MutexWaitersBitSkipped,
        /// A condition waiter registers in the waiter count after releasing the mutex
        /// instead of before: a notifier can see no waiter and skip the wake.
        CondvarCountAfterUnlock,
        /// A seqlock writer skips the Release fence between making the sequence odd and
        /// writing the data words, so a reader may see a new word with the old, even
        /// sequence on both sides of its copy: a torn read that passes the check.
        SeqlockWriterFenceSkipped,
        /// A broadcast publisher stores `tail` Relaxed instead of Release, so a
        /// subscriber may read a record that is not yet visible to it.
        BroadcastTailRelaxed,
        /// An overwrite-policy subscriber does not check `intent` after reading a record,
        /// so it may deliver a record the publisher was overwriting (torn).
        BroadcastNoValidate,
        /// An overwrite-policy publisher skips the Release fence between its intent store
        /// and the record writes, so a subscriber may read new bytes with an old intent.
        BroadcastIntentFenceSkipped,
        /// A broadcast publisher clears the sleepers flag after its wake instead of
        /// before its bump of the futex word, so a subscriber that registers in between
        /// loses its registration and can sleep through the next publish: a lost wake-up.
        BroadcastFlagClearedLate,
    }

    std::thread_local! {
        static BREAK: Cell<LoomBreak> = const { Cell::new(LoomBreak::None) };
    }

    /// Restores the previous break when dropped.
    #[derive(Debug)]
    #[must_use = "the break is undone when the guard drops"]
    pub struct BreakGuard(LoomBreak);

    impl Drop for BreakGuard {
        fn drop(&mut self) {
            BREAK.with(|b| b.set(self.0));
        }
    }

    /// Plant `kind` in every model run on this OS thread until the guard drops. Loom runs
    /// all threads of a model as coroutines on the OS thread that calls `loom::model`, so
    /// the break stays within one test even when tests run in parallel.
    pub fn set(kind: LoomBreak) -> BreakGuard {
        BreakGuard(BREAK.with(|b| b.replace(kind)))
    }

    /// Whether `kind` is planted.
    pub(crate) fn active(kind: LoomBreak) -> bool {
        BREAK.with(|b| b.get()) == kind
    }

    /// `order`, or Relaxed when `kind` is planted.
    pub(crate) fn weaken(kind: LoomBreak, order: Ordering) -> Ordering {
        if active(kind) { Ordering::Relaxed } else { order }
    }
}

#[cfg(not(loom))]
pub(crate) mod membarrier {
    //! `membarrier(2)` with the global expedited command, for asymmetric fences.
    use rustix::thread::{MembarrierCommand, membarrier, membarrier_query};
    use std::sync::OnceLock;

    static REGISTERED: OnceLock<bool> = OnceLock::new();

    /// Register this process for `MEMBARRIER_CMD_GLOBAL_EXPEDITED` (once) and report
    /// whether this process can take part in asymmetric fences.
    pub(crate) fn available() -> bool {
        *REGISTERED.get_or_init(|| {
            if std::env::var_os("SHMRING_NO_MEMBARRIER").is_some() {
                return false;
            }
            let q = membarrier_query();
            q.contains_command(MembarrierCommand::GlobalExpedited)
                && q.contains_command(MembarrierCommand::RegisterGlobalExpedited)
                && membarrier(MembarrierCommand::RegisterGlobalExpedited).is_ok()
        })
    }

    /// Run a full memory barrier on every CPU that executes a registered process.
    pub(crate) fn global_expedited() {
        // The command was probed and registered when the ring was attached; a failure
        // here would mean the kernel lost the capability, which it does not. Fall back
        // to the kernel's slow global barrier rather than continue unsynchronized.
        if membarrier(MembarrierCommand::GlobalExpedited).is_err() {
            let _ = membarrier(MembarrierCommand::Global);
        }
    }
}

/// Whether this process can take part in asymmetric fences (always false under loom,
/// where both sides use SeqCst fences).
pub(crate) fn asymmetric_fences_available() -> bool {
    #[cfg(loom)]
    return false;
    #[cfg(not(loom))]
    membarrier::available()
}

/// Outcome of a futex wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FutexWait {
    /// Woken by a wake, or the word no longer held the expected value.
    Woken,
    /// A signal interrupted the sleep (EINTR).
    #[cfg_attr(loom, allow(dead_code))]
    Interrupted,
    /// The timeout passed.
    TimedOut,
}

/// Sleep while `word == expected`, at most `timeout` (shared, non-private futex).
pub(crate) fn futex_wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) -> FutexWait {
    #[cfg(not(loom))]
    {
        use rustix::io::Errno;
        use rustix::thread::futex;
        let ts = timeout.map(|d| futex::Timespec {
            tv_sec: d.as_secs().min(i64::MAX as u64) as i64,
            tv_nsec: i64::from(d.subsec_nanos()),
        });
        match futex::wait(word, futex::Flags::empty(), expected, ts.as_ref()) {
            Err(Errno::TIMEDOUT) => FutexWait::TimedOut,
            Err(Errno::INTR) => FutexWait::Interrupted,
            // Ok: woken; EAGAIN: the value had changed already. Any other error (EFAULT,
            // EINVAL) cannot happen for a valid, aligned reference: re-check as well.
            _ => FutexWait::Woken,
        }
    }
    #[cfg(loom)]
    {
        let _ = timeout;
        loom_futex::wait(word, expected);
        FutexWait::Woken
    }
}

/// Wake up to `n` waiters sleeping on `word`.
pub(crate) fn futex_wake(word: &AtomicU32, n: u32) {
    #[cfg(not(loom))]
    {
        use rustix::thread::futex;
        let _ = futex::wake(word, futex::Flags::empty(), n);
    }
    #[cfg(loom)]
    {
        let _ = (word, n);
        loom_futex::wake_all();
    }
}

/// Wake one waiter sleeping on `word` and move up to `n` others to sleep on `target`
/// instead (`FUTEX_CMP_REQUEUE`), if `word` still holds `expected`; otherwise wake
/// everyone on `word` (they re-check). Under loom: wake everyone.
pub(crate) fn futex_requeue(word: &AtomicU32, expected: u32, target: &AtomicU32, n: u32) {
    #[cfg(not(loom))]
    {
        use rustix::thread::futex;
        if futex::cmp_requeue(word, futex::Flags::empty(), 1, n, target, expected).is_err() {
            let _ = futex::wake(word, futex::Flags::empty(), i32::MAX as u32);
        }
    }
    #[cfg(loom)]
    {
        let _ = (word, expected, target, n);
        loom_futex::wake_all();
    }
}

#[cfg(loom)]
mod loom_futex {
    //! One lock and one condition variable stand for the kernel's futex hash bucket.
    //! Waking every sleeper on any wake is allowed (futex waits may wake spuriously)
    //! and keeps the model small; what matters is that a wake after the value changed
    //! cannot be missed, and a missing wake leaves the waiter blocked forever.
    use super::{AtomicU32, Ordering};
    use loom::sync::{Condvar, Mutex};

    loom::lazy_static! {
        static ref BUCKET: (Mutex<()>, Condvar) = (Mutex::new(()), Condvar::new());
    }

    pub(super) fn wait(word: &AtomicU32, expected: u32) {
        let (lock, cv) = &*BUCKET;
        let guard = lock.lock().unwrap();
        if word.load(Ordering::SeqCst) == expected {
            drop(cv.wait(guard).unwrap());
        }
    }

    pub(super) fn wake_all() {
        let (lock, cv) = &*BUCKET;
        let _guard = lock.lock().unwrap();
        cv.notify_all();
    }
}
