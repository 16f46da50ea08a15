//! Child processes that run a registered function of the current program, like Python's
//! `multiprocessing.Process` with the *spawn* start method.
//!
//! Rust cannot send a closure to a fresh process, so the child is the current binary
//! executed again (`/proc/self/exe`) with the entry's name in the environment variable
//! [`ENTRY_VAR`]. The program calls [`run_if_child`] first thing in `main`, with the
//! table of its entries: in the parent it returns at once; in a child it runs the named
//! entry with the arguments given to [`Process::new`] and exits with the code it returns
//! (an unknown name exits with [`UNKNOWN_ENTRY`] and a message on stderr). Channel ends
//! go to the child by descriptor inheritance ([`Process::pass`], see
//! [`handoff`](crate::handoff)); the child takes them with
//! [`handoff::from_env`](crate::handoff::from_env).
//!
//! The parent side mirrors Python: [`Process::start`], [`Process::join`],
//! [`Process::join_timeout`], [`Process::exitcode`] (negative signal number when
//! killed by a signal), [`Process::is_alive`], [`Process::terminate`] (SIGTERM),
//! [`Process::kill`] (SIGKILL), [`Process::pid`]. [`Process::die_with_parent`] asks the
//! kernel to SIGKILL the child when its parent goes away (`PR_SET_PDEATHSIG`).
//!
//! ```
//! use shmring::{Queue, handoff, process::{self, Process}};
//!
//! fn square(_args: &[String]) -> i32 {
//!     let mut jobs: Queue<u64> = handoff::from_env("jobs").expect("jobs");
//!     let mut results: Queue<u64> = handoff::from_env("results").expect("results");
//!     while let Ok(n) = jobs.get() {
//!         if n == 0 { break }
//!         results.put(&(n * n)).expect("put");
//!     }
//!     0
//! }
//!
//! fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     process::run_if_child(&[("square", square)]); // must come first
//!     let (mut jobs, mut results) = (Queue::<u64>::new(16)?, Queue::<u64>::new(16)?);
//!     let mut p = Process::new("square")
//!         .pass("jobs", jobs.try_clone()?)?
//!         .pass("results", results.try_clone()?)?
//!         .die_with_parent(true);
//!     p.start()?;
//!     for n in [3, 4, 0] { jobs.put(&n)?; }
//!     assert_eq!((results.get()?, results.get()?), (9, 16));
//!     assert_eq!(p.join()?, 0);
//!     Ok(())
//! }
//! ```

use crate::handoff::{Handoff, HandoffError, Inherit};
use rustix::process::{Pid, Signal};
use std::ffi::OsString;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Child, ChildStderr, ChildStdin, ChildStdout, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub use crate::handoff::ENTRY_VAR;

/// Exit code of a child asked to run an entry that [`run_if_child`] does not know.
pub const UNKNOWN_ENTRY: i32 = 2;

/// A function a child process can run: it gets the arguments given to
/// [`Process::new`] and returns the exit code.
pub type Entry = fn(&[String]) -> i32;

/// In a child started by [`Process`], run the entry named in [`ENTRY_VAR`] with the
/// process's arguments and exit with its code (flushing stdout); in any other process,
/// return at once. Call it first in `main`, before parsing arguments or starting threads.
///
/// An unknown name prints a message listing the known ones on stderr and exits with
/// [`UNKNOWN_ENTRY`]. A panicking entry exits as a panicking `main` does (101).
///
/// The child keeps [`ENTRY_VAR`] in its environment (removing a variable is `unsafe`
/// in Rust 2024): a plain `Command` of the same program started from an entry runs
/// that entry again unless it calls `.env_remove(ENTRY_VAR)`; children started with
/// [`Process`] or [`Inherit::spawn`](crate::handoff::Inherit::spawn) get the right value.
pub fn run_if_child(entries: &[(&str, Entry)]) {
    let Some(name) = std::env::var_os(ENTRY_VAR) else {
        return;
    };
    let name = name.to_string_lossy().into_owned();
    let args: Vec<String> = std::env::args_os()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let code = match entries.iter().find(|(n, _)| *n == name) {
        Some((_, entry)) => entry(&args),
        None => {
            let known: Vec<&str> = entries.iter().map(|(n, _)| *n).collect();
            eprintln!(
                "shmring::process: no entry named {name:?} is registered in this program (known: {})",
                known.join(", ")
            );
            UNKNOWN_ENTRY
        }
    };
    use std::io::Write;
    let _ = std::io::stdout().flush();
    std::process::exit(code);
}

/// Why starting or waiting for a child failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProcessError {
    /// [`Process::start`] was called twice.
    #[error("process already started")]
    AlreadyStarted,
    /// The process was not started yet.
    #[error("process not started")]
    NotStarted,
    /// A system call failed (spawn, wait, kill, finding the current executable).
    #[error("{op}: {source}")]
    Io {
        /// The failing operation.
        op: &'static str,
        /// The OS error.
        source: std::io::Error,
    },
    /// Handing an object to the child failed.
    #[error(transparent)]
    Handoff(#[from] HandoffError),
}

fn io_err(op: &'static str) -> impl FnOnce(std::io::Error) -> ProcessError {
    move |source| ProcessError::Io { op, source }
}

/// A child process running a registered entry of this program.
///
/// Dropping a `Process` neither kills nor waits for the child (as in Python, a child
/// outlives its handle); call [`Process::join`] (or `kill` then `join`) to reap it.
///
/// ```
/// use shmring::process::{self, Process};
/// use std::time::Duration;
///
/// fn sleeper(args: &[String]) -> i32 {
///     std::thread::sleep(Duration::from_secs(args[0].parse().unwrap()));
///     0
/// }
///
/// fn main() -> Result<(), Box<dyn std::error::Error>> {
///     process::run_if_child(&[("sleeper", sleeper)]);
///     let mut p = Process::spawn("sleeper", ["60"])?;
///     assert!(p.is_alive());
///     assert_eq!(p.join_timeout(Duration::from_millis(10))?, None); // still running
///     p.terminate()?;
///     assert_eq!(p.join()?, -15); // killed by SIGTERM
///     Ok(())
/// }
/// ```
#[derive(Debug)]
pub struct Process {
    entry: String,
    args: Vec<String>,
    program: Option<PathBuf>,
    inherit: Inherit,
    die_with_parent: bool,
    stdin: Option<Stdio>,
    stdout: Option<Stdio>,
    stderr: Option<Stdio>,
    child: Option<Child>,
    status: Option<ExitStatus>,
}

impl Process {
    /// A child that will run the entry `entry` once started, with no arguments unless
    /// [`arg`](Self::arg) or [`args`](Self::args) add some (as
    /// [`std::process::Command`]). Stdin is `/dev/null`, stdout and stderr are
    /// inherited, unless configured.
    pub fn new(entry: &str) -> Self {
        Process {
            entry: entry.to_owned(),
            args: Vec::new(),
            program: None,
            inherit: Inherit::new(),
            die_with_parent: false,
            stdin: None,
            stdout: None,
            stderr: None,
            child: None,
            status: None,
        }
    }

    /// [`Process::new`], [`args`](Self::args), then [`Process::start`].
    pub fn spawn<I, S>(entry: &str, args: I) -> Result<Self, ProcessError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut p = Self::new(entry).args(args);
        p.start()?;
        Ok(p)
    }

    /// Add one argument for the entry (it gets them as its `&[String]`).
    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// Add arguments for the entry (Python's `args=(...)`, as strings).
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Hand `item` to the child under `name`; the entry takes it with
    /// [`handoff::from_env`](crate::handoff::from_env). Consumes the local handle (pass
    /// a `try_clone()` to keep one); this process's copy of the descriptors is closed
    /// once the child started.
    pub fn pass<T: Handoff>(mut self, name: &str, item: T) -> Result<Self, HandoffError> {
        self.inherit.pass(name, item)?;
        Ok(self)
    }

    /// Ask the kernel to send SIGKILL to the child when its parent dies
    /// (`PR_SET_PDEATHSIG`, set between fork and exec; a parent that died before that
    /// makes the child exit at once). Note that the signal fires when the parent
    /// **thread** that started the child exits, not only the whole process: start such
    /// children from a thread that lives as long as they should.
    pub fn die_with_parent(mut self, yes: bool) -> Self {
        self.die_with_parent = yes;
        self
    }

    /// The child's stdin (default: `/dev/null`).
    pub fn stdin(mut self, cfg: impl Into<Stdio>) -> Self {
        self.stdin = Some(cfg.into());
        self
    }

    /// The child's stdout (default: inherited).
    pub fn stdout(mut self, cfg: impl Into<Stdio>) -> Self {
        self.stdout = Some(cfg.into());
        self
    }

    /// The child's stderr (default: inherited).
    pub fn stderr(mut self, cfg: impl Into<Stdio>) -> Self {
        self.stderr = Some(cfg.into());
        self
    }

    /// Run `program` instead of the current executable (it must call [`run_if_child`]
    /// with an entry of this name).
    pub fn program(mut self, program: impl Into<PathBuf>) -> Self {
        self.program = Some(program.into());
        self
    }

    /// Start the child.
    pub fn start(&mut self) -> Result<(), ProcessError> {
        if self.child.is_some() {
            return Err(ProcessError::AlreadyStarted);
        }
        let program = match &self.program {
            Some(p) => p.clone(),
            None => std::env::current_exe().map_err(io_err("current_exe"))?,
        };
        let mut cmd = Command::new(program);
        cmd.args(&self.args);
        // Strips inherited handoff variables and sets ours; clears CLOEXEC in the child.
        self.inherit.apply(&mut cmd);
        cmd.env(ENTRY_VAR, OsString::from(&self.entry));
        cmd.stdin(self.stdin.take().unwrap_or_else(Stdio::null));
        if let Some(s) = self.stdout.take() {
            cmd.stdout(s);
        }
        if let Some(s) = self.stderr.take() {
            cmd.stderr(s);
        }
        if self.die_with_parent {
            let parent = rustix::process::getpid();
            let hook = move || {
                rustix::process::set_parent_process_death_signal(Some(Signal::KILL))?;
                // The parent may have died before the line above: then nobody will
                // send the signal, and we were reparented.
                if rustix::process::getppid() != Some(parent) {
                    return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
                }
                Ok(())
            };
            // SAFETY: the hook runs between fork and exec and makes only the prctl,
            // getppid system calls; the errors it builds are OS codes stored inline
            // (no allocation, no locks).
            unsafe {
                cmd.pre_exec(hook);
            }
        }
        let child = cmd.spawn().map_err(io_err("spawn"))?;
        // The child holds the descriptors now; close ours.
        drop(std::mem::take(&mut self.inherit));
        self.child = Some(child);
        Ok(())
    }

    /// The child's process id, once started.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The name of the entry the child runs.
    pub fn entry(&self) -> &str {
        &self.entry
    }

    /// Reap the child if it exited, without waiting.
    fn poll(&mut self) -> Result<Option<ExitStatus>, ProcessError> {
        if let Some(st) = self.status {
            return Ok(Some(st));
        }
        let child = self.child.as_mut().ok_or(ProcessError::NotStarted)?;
        let st = child.try_wait().map_err(io_err("waitpid"))?;
        self.status = st;
        Ok(st)
    }

    /// Whether the child was started and has not exited yet (this reaps it if it has).
    pub fn is_alive(&mut self) -> bool {
        matches!(self.poll(), Ok(None))
    }

    /// The exit code once the child has exited (`None` while it runs or before start):
    /// the code it returned, or minus the number of the signal that killed it (Python's
    /// convention: `-15` after [`Process::terminate`]).
    pub fn exitcode(&mut self) -> Option<i32> {
        self.poll().ok().flatten().map(code_of)
    }

    /// Wait for the child to exit and return its [`exitcode`](Process::exitcode).
    pub fn join(&mut self) -> Result<i32, ProcessError> {
        if self.status.is_none() {
            let child = self.child.as_mut().ok_or(ProcessError::NotStarted)?;
            self.status = Some(child.wait().map_err(io_err("waitpid"))?);
        }
        Ok(self.status.map(code_of).expect("reaped"))
    }

    /// Wait at most `timeout` for the child to exit: `Some(exitcode)`, or `None` if it
    /// still runs.
    pub fn join_timeout(&mut self, timeout: Duration) -> Result<Option<i32>, ProcessError> {
        let deadline = Instant::now() + timeout;
        let mut nap = Duration::from_micros(200);
        loop {
            if let Some(st) = self.poll()? {
                return Ok(Some(code_of(st)));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            std::thread::sleep(nap.min(left));
            nap = (nap * 2).min(Duration::from_millis(20));
        }
    }

    /// Send SIGTERM to the child (nothing if it already exited and was reaped; until
    /// then its pid cannot be reused).
    pub fn terminate(&mut self) -> Result<(), ProcessError> {
        self.signal(Signal::TERM)
    }

    /// Send SIGKILL to the child (nothing if it was already reaped).
    pub fn kill(&mut self) -> Result<(), ProcessError> {
        self.signal(Signal::KILL)
    }

    fn signal(&mut self, sig: Signal) -> Result<(), ProcessError> {
        if self.poll()?.is_some() {
            return Ok(());
        }
        let child = self.child.as_ref().ok_or(ProcessError::NotStarted)?;
        // Not reaped (polled above, and only `self` waits for it): the pid is still ours.
        rustix::process::kill_process(Pid::from_child(child), sig).map_err(|e| ProcessError::Io {
            op: "kill",
            source: e.into(),
        })
    }

    /// Take the child's stdin pipe (if configured with `Stdio::piped()`).
    pub fn take_stdin(&mut self) -> Option<ChildStdin> {
        self.child.as_mut()?.stdin.take()
    }

    /// Take the child's stdout pipe (if configured with `Stdio::piped()`).
    pub fn take_stdout(&mut self) -> Option<ChildStdout> {
        self.child.as_mut()?.stdout.take()
    }

    /// Take the child's stderr pipe (if configured with `Stdio::piped()`).
    pub fn take_stderr(&mut self) -> Option<ChildStderr> {
        self.child.as_mut()?.stderr.take()
    }
}

/// Python's exit code: the status code, or minus the killing signal.
fn code_of(st: ExitStatus) -> i32 {
    st.code().or_else(|| st.signal().map(|s| -s)).unwrap_or(-1)
}
