//! The mixed wait's helper: a thread (one per thread that waits on a mixed set, started
//! at its first such wait) that `poll`s the set's descriptors while the waiting thread
//! sleeps in `futex_waitv` on the rings, and wakes it through a private futex word when
//! a descriptor is ready. See the [module docs](super) for why.
//!
//! One round, driven by the waiting thread:
//!
//! 1. `post`: the word is set to 0, the descriptors handed over (under a mutex), the
//!    helper woken (condition variable);
//! 2. the helper drains its stop pipe, checks the round was not cancelled meanwhile
//!    (under the mutex), and polls the descriptors plus the stop pipe's read end;
//!    a ready descriptor makes it store 1 in the word (Release) and `FUTEX_WAKE` it;
//! 3. the waiter sleeps on the rings and the word (its `futex_waitv` compares the word
//!    with 0, so a store that came first makes it return at once);
//! 4. `finish`: if the word is 1, the waiter waits for the helper to hand the
//!    descriptors back with their `revents` (the helper is already on its way: no extra
//!    wake-up). Otherwise it marks the round cancelled (under the mutex), writes the
//!    stop pipe and returns **without waiting**: a wake-up by a ring then costs no
//!    thread switch to the helper. The helper polls its own copy of the `pollfd`s, so a
//!    source dropped meanwhile costs nothing unsafe (a closed descriptor is reported in
//!    `revents`, a reused number is one spurious readiness of a round already over).
//!    The next `post` waits until the cancelled round is done.
//!
//! A cancel written after the helper's poll already returned leaves a byte in the pipe;
//! the next round's drain (2) removes it before that round's poll, and a cancel of the
//! next round is written after its flag is set, so the drain cannot swallow it unseen:
//! either the drain comes first (the poll sees the byte) or the flag is set before the
//! drain (the check after it sees the flag).

use crate::net::sys::poll_fds;
use crate::primitive::Ordering;
use rustix::fd::OwnedFd;
use std::cell::RefCell;
use std::os::fd::{AsFd, AsRawFd};
use std::sync::atomic::AtomicU32;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Idle,
    Posted,
    Done,
    Exit,
}

#[derive(Debug)]
struct Job {
    phase: Phase,
    cancelled: bool,
    fds: Vec<libc::pollfd>,
}

#[derive(Debug)]
struct Inner {
    /// 0 during a round until a descriptor is ready.
    word: AtomicU32,
    job: Mutex<Job>,
    cv: Condvar,
    /// The stop pipe: the waiter writes, the helper polls and drains.
    stop_r: OwnedFd,
    stop_w: OwnedFd,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, Job> {
        // A panic in the helper poisons nothing we cannot reuse: the state is plain data.
        self.job.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn drain_stop(&self) {
        let mut buf = [0u8; 64];
        while matches!(rustix::io::read(&self.stop_r, &mut buf), Ok(n) if n > 0) {}
    }

    fn write_stop(&self) {
        let _ = rustix::io::write(&self.stop_w, &[1]);
    }
}

/// A helper thread and the state it shares with its waiter.
#[derive(Debug)]
pub(crate) struct Helper {
    inner: Arc<Inner>,
    thread: Option<JoinHandle<()>>,
    /// The process that started the thread: a child made by `fork` has no such thread.
    pid: rustix::process::Pid,
}

thread_local! {
    static HELPER: RefCell<Option<Helper>> = const { RefCell::new(None) };
}

/// Run `f` with this thread's helper, starting it if needed. `None` if it cannot be
/// started (no thread or pipe: the caller naps instead).
pub(crate) fn with_helper<R>(f: impl FnOnce(&Helper) -> R) -> Option<R> {
    HELPER.with(|h| {
        let mut h = h.borrow_mut();
        if let Some(old) = h.as_ref()
            && old.pid != rustix::process::getpid()
        {
            // Forked: the thread is not in this process; its state cannot be used or
            // joined. Leak it (a mutex, a condition variable, two descriptors).
            std::mem::forget(h.take());
        }
        if h.is_none() {
            *h = Helper::start();
        }
        h.as_ref().map(f)
    })
}

impl Helper {
    fn start() -> Option<Helper> {
        let (stop_r, stop_w) =
            rustix::pipe::pipe_with(rustix::pipe::PipeFlags::NONBLOCK | rustix::pipe::PipeFlags::CLOEXEC).ok()?;
        let inner = Arc::new(Inner {
            word: AtomicU32::new(0),
            job: Mutex::new(Job {
                phase: Phase::Idle,
                cancelled: false,
                fds: Vec::new(),
            }),
            cv: Condvar::new(),
            stop_r,
            stop_w,
        });
        let theirs = Arc::clone(&inner);
        let thread = std::thread::Builder::new()
            .name("shmring-select".into())
            .stack_size(64 * 1024)
            .spawn(move || run(&theirs))
            .ok()?;
        Some(Helper {
            inner,
            thread: Some(thread),
            pid: rustix::process::getpid(),
        })
    }

    /// The word the waiter sleeps on beside the rings.
    pub(crate) fn word(&self) -> &AtomicU32 {
        &self.inner.word
    }

    /// Step 1: hand `fds` to the helper for one round (once the last one is done).
    pub(crate) fn post(&self, fds: &[libc::pollfd]) {
        let mut job = self.inner.lock();
        while job.phase == Phase::Posted {
            job = self.inner.cv.wait(job).unwrap_or_else(|p| p.into_inner());
        }
        // Relaxed: published to the helper by the mutex; the helper's last store of the
        // previous round came before its Done, which we saw under the mutex.
        self.inner.word.store(0, Ordering::Relaxed);
        job.fds.clear();
        job.fds.extend_from_slice(fds);
        job.cancelled = false;
        job.phase = Phase::Posted;
        drop(job);
        self.inner.cv.notify_all();
    }

    /// Step 4: end the round; the descriptors' `revents` are copied into `fds` (all 0
    /// if no descriptor was ready).
    pub(crate) fn finish(&self, fds: &mut [libc::pollfd]) {
        let mut job = self.inner.lock();
        // Acquire: pairs with the helper's Release store of 1.
        if job.phase == Phase::Posted && self.inner.word.load(Ordering::Acquire) == 0 {
            job.cancelled = true;
            drop(job);
            self.inner.write_stop();
            for e in fds.iter_mut() {
                e.revents = 0;
            }
            return;
        }
        while job.phase == Phase::Posted {
            job = self.inner.cv.wait(job).unwrap_or_else(|p| p.into_inner());
        }
        for (out, got) in fds.iter_mut().zip(&job.fds) {
            out.revents = got.revents;
        }
        job.phase = Phase::Idle;
    }
}

impl Drop for Helper {
    fn drop(&mut self) {
        self.inner.lock().phase = Phase::Exit;
        self.inner.cv.notify_all();
        self.inner.write_stop();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The helper thread.
fn run(inner: &Inner) {
    let mut fds: Vec<libc::pollfd> = Vec::new();
    loop {
        {
            let mut job = inner.lock();
            while job.phase != Phase::Posted && job.phase != Phase::Exit {
                job = inner.cv.wait(job).unwrap_or_else(|p| p.into_inner());
            }
            if job.phase == Phase::Exit {
                return;
            }
            fds.clear();
            fds.extend(job.fds.iter().map(|p| libc::pollfd { revents: 0, ..*p }));
        }
        inner.drain_stop();
        if !inner.lock().cancelled {
            fds.push(libc::pollfd {
                fd: inner.stop_r.as_fd().as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            });
            // Ok(0): a signal; look again.
            while let Ok(0) = poll_fds(&mut fds, None) {}
            fds.pop();
            if fds.iter().any(|p| p.revents != 0) {
                // Release: pairs with the waiter's Acquire load (in `finish` and in the
                // futex core); the kernel's compare in futex_waitv sees it or we wake.
                inner.word.store(1, Ordering::Release);
                let _ = rustix::thread::futex::wake(&inner.word, rustix::thread::futex::Flags::PRIVATE, 1);
            }
        }
        let mut job = inner.lock();
        if job.phase == Phase::Exit {
            return;
        }
        if job.cancelled {
            fds.iter_mut().for_each(|p| p.revents = 0);
        }
        for (out, got) in job.fds.iter_mut().zip(&fds) {
            out.revents = got.revents;
        }
        job.phase = Phase::Done;
        drop(job);
        inner.cv.notify_all();
    }
}
