//! Parcels inherited by a child process: descriptors that stay close-on-exec in the
//! parent and become inheritable only in the forked child, plus one environment
//! variable per object.
//!
//! **Why clear `FD_CLOEXEC` after `fork` rather than before.** The simple way — dup the
//! descriptor without `FD_CLOEXEC`, spawn, close the dup — leaks the dup into every
//! process another thread of the parent spawns meanwhile. Here the parent's copies are
//! close-on-exec at all times; a `pre_exec` hook, which runs in the forked child only,
//! clears the flag on exactly these numbers with `fcntl(F_SETFD)` (async-signal-safe,
//! no allocation) just before `exec`. The copies are moved to numbers >= 3 first so the
//! child's stdio setup cannot overwrite them.
//!
//! **The variable.** `SHMRING_HANDOFF_<NAME>=<kind>:<meta hex>:<fd>,<fd>:<parent pid>`.
//! [`from_env`] honours it only in a direct child of the process that wrote it
//! (`getppid()` must match: a grandchild inheriting the environment does not hold the
//! descriptors), only once per name in a process, and only if every descriptor is open;
//! then the descriptors are made close-on-exec again. The variable itself is not
//! removed: `std::env::remove_var` is `unsafe` in Rust 2024 (it races with `getenv` in
//! other threads); instead [`Inherit::spawn`] and [`crate::process::Process`] strip
//! every `SHMRING_HANDOFF_*` variable from the environment of the children they start.

use super::{Handoff, HandoffError, Kind, Parcel};
use rustix::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::collections::HashSet;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command};
use std::sync::Mutex;

/// The environment variable that names the entry a re-executed child runs
/// ([`crate::process::Process`]; also `shmring::process::ENTRY_VAR`). It lives here, with
/// inheritance, because [`Inherit::spawn`] strips it from the children it starts.
pub const ENTRY_VAR: &str = "SHMRING_PROCESS_ENTRY";

/// Prefix of the inheritance environment variables.
pub const ENV_PREFIX: &str = "SHMRING_HANDOFF_";

/// Names already taken by [`from_env`] in this process.
static TAKEN: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Objects to hand to the next child spawned with [`Inherit::spawn`].
///
/// ```
/// use shmring::{Queue, handoff::Inherit};
/// use std::process::Command;
///
/// let q: Queue<u32> = Queue::new(8)?;
/// let mut inherit = Inherit::new();
/// inherit.pass("jobs", q.try_clone()?)?;
/// // The child (any program using shmring) calls
/// // `handoff::from_env::<Queue<u32>>("jobs")`; this one just exits.
/// let mut cmd = Command::new("true");
/// let status = inherit.spawn(&mut cmd)?.wait()?;
/// assert!(status.success());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Default)]
pub struct Inherit {
    /// (variable name, value).
    vars: Vec<(String, String)>,
    /// The parent's close-on-exec copies, numbered >= 3; closed once the child is spawned.
    fds: Vec<OwnedFd>,
}

/// The variable for the object `name`, or why the name is unusable.
fn var_name(name: &str) -> Result<String, HandoffError> {
    if name.is_empty() || name.len() > 64 || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return Err(HandoffError::Env {
            name: name.into(),
            reason: "names are 1 to 64 characters of [A-Za-z0-9_]".into(),
        });
    }
    Ok(format!("{ENV_PREFIX}{}", name.to_ascii_uppercase()))
}

impl Inherit {
    /// Nothing to hand over yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Hand `item` to the child under `name` (`[A-Za-z0-9_]`, case-insensitive); the
    /// child rebuilds it with [`from_env`]. Consumes the local handle.
    pub fn pass<T: Handoff>(&mut self, name: &str, item: T) -> Result<&mut Self, HandoffError> {
        self.pass_parcel(name, item.into_parcel()?)
    }

    /// [`Inherit::pass`] for a parcel already taken apart.
    pub fn pass_parcel(&mut self, name: &str, parcel: Parcel) -> Result<&mut Self, HandoffError> {
        let var = var_name(name)?;
        if self.vars.iter().any(|(v, _)| *v == var) {
            return Err(HandoffError::Env {
                name: name.into(),
                reason: "passed twice".into(),
            });
        }
        let mut numbers = Vec::with_capacity(parcel.fds.len());
        for fd in &parcel.fds {
            // Close-on-exec here; only the forked child clears it (see the module docs).
            let copy = rustix::io::fcntl_dupfd_cloexec(fd, 3).map_err(|e| HandoffError::io("dup", e))?;
            numbers.push(copy.as_raw_fd().to_string());
            self.fds.push(copy);
        }
        let value = format!(
            "{}:{:x}:{}:{}",
            parcel.kind.name(),
            parcel.meta,
            numbers.join(","),
            std::process::id()
        );
        self.vars.push((var, value));
        Ok(self)
    }

    /// Whether nothing was passed.
    pub fn is_empty(&self) -> bool {
        self.vars.is_empty()
    }

    /// Set up `cmd`: strip inherited `SHMRING_HANDOFF_*` variables and
    /// [`ENTRY_VAR`], set this handoff's variables,
    /// and clear close-on-exec on its descriptors in the forked child. The caller keeps
    /// `self` alive until `cmd.spawn()` returned (the hook refers to the numbers).
    pub(crate) fn apply(&self, cmd: &mut Command) {
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with(ENV_PREFIX) {
                cmd.env_remove(k);
            }
        }
        // Nor should a child run the entry this process was started for.
        cmd.env_remove(ENTRY_VAR);
        for (k, v) in &self.vars {
            cmd.env(k, v);
        }
        if self.fds.is_empty() {
            return;
        }
        let numbers: Vec<RawFd> = self.fds.iter().map(|f| f.as_raw_fd()).collect();
        let hook = move || {
            for &n in &numbers {
                // SAFETY: fcntl(F_SETFD) on a number that is open in the parent (kept
                // alive by `self` until spawn returns) and hence in this forked copy; it
                // is async-signal-safe and touches no memory.
                if unsafe { libc::fcntl(n, libc::F_SETFD, 0) } == -1 {
                    // No allocation after fork: an OS error is stored inline.
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        };
        // SAFETY: the hook runs between fork and exec; it only calls fcntl on integers
        // captured beforehand and builds an OS-error value, without allocating or
        // taking locks.
        unsafe {
            cmd.pre_exec(hook);
        }
    }

    /// Spawn `cmd` with the objects passed so far, then close this process's copies of
    /// their descriptors (the child holds them now).
    pub fn spawn(self, cmd: &mut Command) -> Result<Child, HandoffError> {
        self.apply(cmd);
        let child = cmd.spawn().map_err(|e| HandoffError::io("spawn", e))?;
        drop(self);
        Ok(child)
    }
}

/// In a child started with [`Inherit::spawn`] (or [`crate::process::Process`]), take the
/// object passed under `name`.
///
/// Errors: no such variable; a malformed one; one written by another process than this
/// one's parent; a name already taken in this process; a descriptor that is not open;
/// or the parcel's checks ([`Handoff::from_parcel`]: kind, descriptor count, type).
pub fn from_env<T: Handoff>(name: &str) -> Result<T, HandoffError> {
    T::from_parcel(parcel_from_env(name)?)
}

fn parcel_from_env(name: &str) -> Result<Parcel, HandoffError> {
    let var = var_name(name)?;
    let env_err = |reason: String| HandoffError::Env {
        name: name.into(),
        reason,
    };
    let value = std::env::var(&var).map_err(|_| env_err(format!("${var} is not set")))?;
    let malformed = || env_err(format!("${var}={value:?} is not <kind>:<meta>:<fd>,...:<pid>"));
    let mut parts = value.split(':');
    let (Some(kind), Some(meta), Some(fds), Some(pid), None) =
        (parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(malformed());
    };
    let kind = Kind::from_name(kind).ok_or_else(malformed)?;
    let meta = u64::from_str_radix(meta, 16).map_err(|_| malformed())?;
    let pid: i32 = pid.parse().map_err(|_| malformed())?;
    let numbers: Vec<RawFd> = if fds.is_empty() {
        Vec::new()
    } else {
        fds.split(',')
            .map(|n| n.parse::<RawFd>().ok().filter(|&n| n >= 3))
            .collect::<Option<_>>()
            .ok_or_else(malformed)?
    };
    if numbers.len() > super::MAX_FDS || numbers.iter().collect::<HashSet<_>>().len() != numbers.len() {
        return Err(malformed());
    }
    let parent = rustix::process::getppid().map_or(0, |p| p.as_raw_nonzero().get());
    if parent != pid {
        return Err(env_err(format!(
            "${var} was set by process {pid} for its children; this process's parent is {parent}"
        )));
    }
    let mut taken = TAKEN.lock().unwrap_or_else(|e| e.into_inner());
    if taken.contains(&var) {
        return Err(env_err("already taken in this process".into()));
    }
    for &n in &numbers {
        // SAFETY: fcntl(F_GETFD) on a plain integer only reads that number's flags (a
        // closed number is EBADF); no memory is passed.
        let flags = unsafe { libc::fcntl(n, libc::F_GETFD) };
        if flags == -1 {
            return Err(env_err(format!("descriptor {n} is not open")));
        }
    }
    taken.push(var);
    drop(taken);
    let fds: Vec<OwnedFd> = numbers
        .iter()
        .map(|&n| {
            // SAFETY: the parent of this process wrote the variable (pid checked) and
            // made these numbers inheritable for this child only; the number is open,
            // and this name is taken once per process, so nothing else owns it.
            let fd = unsafe { OwnedFd::from_raw_fd(n) };
            // Not for our own children: close-on-exec again.
            let _ = rustix::io::fcntl_setfd(&fd, rustix::io::FdFlags::CLOEXEC);
            fd
        })
        .collect();
    Ok(Parcel { kind, meta, fds })
}
