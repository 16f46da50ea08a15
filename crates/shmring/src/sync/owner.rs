//! Who holds a lock, and whether that holder is still alive.
//!
//! A robust lock must tell a dead holder from a slow one. shmring records the holder as
//! an [`Owner`] word: the kernel thread id (TID) and the low 32 bits of that thread's
//! start time in clock ticks since boot (`/proc/TID/stat`, field 22). The pair names one
//! thread for the life of the machine: a recycled TID belongs to a thread that started
//! later. A holder is judged dead when `/proc/TID` is gone, is a zombie, or started at
//! another time. The check reads `/proc` (a few µs), so waits run it only every
//! [`LIVENESS_INTERVAL`], never on a fast path.
//!
//! # Why not the kernel's robust-futex list
//!
//! `set_robust_list(2)` keeps one list head per thread, and glibc already owns it for
//! its robust `pthread_mutex_t`s: replacing it would break them, and joining glibc's
//! list would tie our layout to glibc's private `pthread_mutex_t` offsets. A liveness
//! word costs nothing on the fast path (the owner word is installed by the lock's own
//! compare-and-swap) and also works for a lock embedded in any mapping, where the
//! open-file-description locks of [`crate::shm::liveness`] (which need the segment's
//! file) cannot be used.
//!
//! # Limits
//!
//! All parties must share a pid namespace (TIDs are per namespace): segments created by
//! the named and anonymous constructors record the creator's pid namespace and refuse to
//! open from another one. A thread that exits normally while holding a lock (a leaked
//! guard) is dead like a killed one, so its lock is recovered the same way.

/// A thread identity packed in 63 bits: `tid << 32 | (start_ticks & 0xffff_ffff)`.
/// Bit 63 is never set (TIDs are below 2^31), so lock words can use it as a flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Owner(pub(crate) u64);

impl Owner {
    /// Identity of the calling thread (cached per thread).
    #[inline]
    pub(crate) fn current() -> Owner {
        imp::current()
    }

    /// Identity of the calling process: its pid and its start time (for parties of a
    /// barrier, whose liveness is per process).
    pub(crate) fn current_process() -> Owner {
        imp::current_process()
    }

    /// The thread (or process) id part.
    #[cfg_attr(loom, allow(dead_code))]
    pub(crate) fn tid(self) -> u32 {
        (self.0 >> 32) as u32 & 0x7fff_ffff
    }

    /// Whether the thread this word names is certainly gone. `false` when it is alive,
    /// or when liveness cannot be read (no `/proc`): a live holder must never be
    /// declared dead.
    pub(crate) fn is_dead(self) -> bool {
        imp::is_dead(self)
    }
}

#[cfg(not(loom))]
mod imp {
    use super::Owner;
    use std::cell::Cell;
    use std::sync::Once;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn pack(tid: u32, start: u64) -> Owner {
        Owner((u64::from(tid & 0x7fff_ffff) << 32) | (start & 0xffff_ffff))
    }

    /// State letter and start time (fields 3 and 22) of `/proc/<path>/stat`.
    fn stat(path: &str) -> Option<(u8, u64)> {
        let stat = std::fs::read_to_string(path).ok()?;
        // The command name (field 2) may hold spaces and parentheses: count from the
        // last ')'.
        let rest = &stat[stat.rfind(')')? + 1..];
        let mut fields = rest.split_whitespace();
        let state = *fields.next()?.as_bytes().first()?;
        let start = fields.nth(18)?.parse().ok()?;
        Some((state, start))
    }

    /// Bumped in the child after every `fork`: a forked child's only thread inherits the
    /// parent thread's cached identity, which names another thread.
    static FORK_GEN: AtomicU32 = AtomicU32::new(0);

    pub(super) extern "C" fn after_fork_in_child() {
        // Relaxed: read by this same (only) thread of the child.
        FORK_GEN.fetch_add(1, Ordering::Relaxed);
    }

    fn compute() -> Owner {
        static ATFORK: Once = Once::new();
        ATFORK.call_once(|| {
            // SAFETY: registers a handler that only bumps an atomic (async-signal-safe);
            // the function lives for the whole program.
            unsafe { libc::pthread_atfork(None, None, Some(after_fork_in_child)) };
        });
        let tid = rustix::thread::gettid().as_raw_nonzero().get() as u32;
        let start = stat("/proc/thread-self/stat").map(|s| s.1).unwrap_or(0);
        pack(tid, start)
    }

    thread_local! {
        /// (fork generation when computed, identity).
        pub(super) static ME: Cell<(u32, Owner)> = const { Cell::new((u32::MAX, Owner(0))) };
    }

    #[inline]
    pub(super) fn current() -> Owner {
        ME.with(|m| {
            let (generation, me) = m.get();
            // Relaxed: only this thread's own fork bumps it in the child (see above).
            let now = FORK_GEN.load(Ordering::Relaxed);
            if generation == now {
                me
            } else {
                let me = compute();
                m.set((now, me));
                me
            }
        })
    }

    pub(super) fn current_process() -> Owner {
        static PROCESS: std::sync::OnceLock<Owner> = std::sync::OnceLock::new();
        // Not cached across fork: a forked child has another pid. Recompute on mismatch.
        let pid = std::process::id();
        let cached = *PROCESS.get_or_init(|| pack(pid, stat("/proc/self/stat").map(|s| s.1).unwrap_or(0)));
        if cached.tid() == pid {
            cached
        } else {
            pack(pid, stat("/proc/self/stat").map(|s| s.1).unwrap_or(0))
        }
    }

    pub(super) fn is_dead(owner: Owner) -> bool {
        let tid = owner.tid();
        if tid == 0 {
            return true;
        }
        match stat(&format!("/proc/{tid}/stat")) {
            Some((state, start)) => state == b'Z' || state == b'X' || (start & 0xffff_ffff) != (owner.0 & 0xffff_ffff),
            None => {
                // Gone, or /proc is not readable at all: only the former is death.
                std::path::Path::new("/proc/self/stat").exists()
            }
        }
    }
}

#[cfg(loom)]
mod imp {
    //! Under loom every model thread gets a distinct id (its loom thread id; no thread
    //! local, whose teardown after a reported deadlock would abort the process) and no
    //! holder ever dies (death is tested across real processes, not in the models).
    use super::Owner;

    pub(super) fn current() -> Owner {
        let id = format!("{:?}", loom::thread::current().id());
        let n: u64 = id
            .chars()
            .filter(char::is_ascii_digit)
            .collect::<String>()
            .parse()
            .unwrap_or(0);
        Owner(((n + 1) << 32) | 1)
    }

    pub(super) fn current_process() -> Owner {
        current()
    }

    pub(super) fn is_dead(_: Owner) -> bool {
        false
    }
}

/// The inode of this process's pid namespace (0 if unknown): recorded by the creator of
/// a sync segment and compared by each opener.
#[cfg(not(loom))]
pub(crate) fn pid_namespace() -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self/ns/pid").map(|m| m.ino()).unwrap_or(0)
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn self_is_alive_and_distinct_per_thread() {
        let me = Owner::current();
        assert_eq!(me.0 >> 63, 0);
        assert_eq!(me.tid(), rustix::thread::gettid().as_raw_nonzero().get() as u32);
        assert!(!me.is_dead());
        let other = std::thread::spawn(Owner::current).join().unwrap();
        assert_ne!(other, me);
        // The thread has exited: its identity is dead.
        assert!(other.is_dead());
        // Same TID, another start time: a recycled id is dead too.
        assert!(Owner(me.0 ^ 1).is_dead());
        assert!(Owner(0).is_dead());
        assert!(!Owner::current_process().is_dead());
        assert_eq!(Owner::current_process().tid(), std::process::id());
        assert_ne!(pid_namespace(), 0);
    }

    #[test]
    fn identity_is_recomputed_after_fork() {
        // What the atfork child handler does in a forked child: the cached identity is
        // thrown away and recomputed (here it comes out the same: same thread).
        let before = Owner::current();
        imp::after_fork_in_child();
        assert_eq!(Owner::current(), before);
        imp::ME.with(|m| m.set((m.get().0, Owner(12345))));
        assert_eq!(Owner::current(), Owner(12345), "cached within one fork generation");
        imp::after_fork_in_child();
        assert_eq!(Owner::current(), before, "recomputed in a new generation");
    }
}
