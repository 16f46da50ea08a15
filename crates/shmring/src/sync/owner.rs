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

    /// Count one lock acquisition by the calling thread (see `sync::mutex`'s `held`).
    #[inline(always)]
    pub(crate) fn lock_taken() {
        imp::lock_taken()
    }

    /// Count one lock release by the calling thread.
    #[inline(always)]
    pub(crate) fn lock_released() {
        imp::lock_released()
    }

    /// Lock acquisitions the calling thread holds (wrapping; `u32::MAX` under loom,
    /// where nothing is counted).
    pub(crate) fn locks_held() -> u32 {
        imp::locks_held()
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

    /// In the child after every `fork`: forget the forking thread's cached identity (the
    /// child's only thread is the one that forked, and it has another TID now). The
    /// atfork child handler runs on that thread, so its thread-local is the one to
    /// reset; a plain store to a constant-initialized thread-local without a destructor
    /// (no allocation, no lock) is async-signal-safe.
    pub(super) extern "C" fn after_fork_in_child() {
        ME.with(|t| t.me.set(Owner(0)));
    }

    fn compute() -> Owner {
        static ATFORK: Once = Once::new();
        ATFORK.call_once(|| {
            // SAFETY: registers a handler that only stores to a thread-local
            // (async-signal-safe); the function lives for the whole program.
            unsafe { libc::pthread_atfork(None, None, Some(after_fork_in_child)) };
        });
        let tid = rustix::thread::gettid().as_raw_nonzero().get() as u32;
        let start = stat("/proc/thread-self/stat").map(|s| s.1).unwrap_or(0);
        pack(tid, start)
    }

    /// What a thread keeps for its locks, in one thread-local so that a lock's fast
    /// path reaches both fields from one TLS address (instruction budget, see
    /// `sync::mutex`'s `held`).
    pub(super) struct ThreadLocks {
        /// The thread's identity; `Owner(0)` (never a real identity: TIDs are not 0)
        /// until computed, and again in a forked child.
        pub(super) me: Cell<Owner>,
        /// Lock acquisitions held (see `sync::mutex`'s `held`); wrapping.
        pub(super) locks: Cell<u32>,
    }

    thread_local! {
        pub(super) static ME: ThreadLocks = const {
            ThreadLocks {
                me: Cell::new(Owner(0)),
                locks: Cell::new(0),
            }
        };
    }

    #[inline]
    pub(super) fn current() -> Owner {
        ME.with(|t| {
            let me = t.me.get();
            if me.0 != 0 {
                me
            } else {
                let me = compute();
                t.me.set(me);
                me
            }
        })
    }

    #[inline(always)]
    pub(super) fn lock_taken() {
        ME.with(|t| t.locks.set(t.locks.get().wrapping_add(1)));
    }

    #[inline(always)]
    pub(super) fn lock_released() {
        ME.with(|t| t.locks.set(t.locks.get().wrapping_sub(1)));
    }

    pub(super) fn locks_held() -> u32 {
        ME.with(|t| t.locks.get())
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

    pub(super) fn lock_taken() {}

    pub(super) fn lock_released() {}

    pub(super) fn locks_held() -> u32 {
        u32::MAX
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
        imp::ME.with(|t| t.me.set(Owner(12345)));
        assert_eq!(Owner::current(), Owner(12345), "cached until the next fork");
        imp::after_fork_in_child();
        assert_eq!(Owner::current(), before, "recomputed after a fork");
    }

    #[test]
    fn identity_in_a_forked_child_is_the_childs() {
        let parent = Owner::current();
        // SAFETY: the child only computes its identity (reading /proc, which allocates:
        // glibc's malloc is usable in a forked child), compares and leaves with
        // `_exit`, running no destructor of the parent's state.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork");
        if pid == 0 {
            let child = Owner::current();
            let ok = child != parent && child.tid() == std::process::id();
            // SAFETY: ends the child at once, running nothing of the parent's.
            unsafe { libc::_exit(if ok { 0 } else { 1 }) };
        }
        let mut status = 0;
        // SAFETY: waits for the child created above.
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        assert!(
            libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
            "child saw {status:#x}"
        );
    }
}
