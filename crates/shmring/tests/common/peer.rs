//! A child process of the test binary with a line-oriented stdout back to the parent,
//! and the small helpers peers use to report.

use super::wait_child;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A child process of this test binary. Its stdout lines arrive through a channel (so
/// the parent can wait for a marker with a timeout); it is killed and reaped on drop if
/// still running, so a failing test leaves no process behind.
pub struct Peer {
    what: String,
    child: Option<Child>,
    lines: mpsc::Receiver<String>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Peer {
    pub fn spawn(test: &str, role: &str, env: &[(&str, String)]) -> Peer {
        Self::spawn_cmd(super::spawn_peer(test, role, env), role)
    }

    pub fn spawn_cmd(mut cmd: std::process::Command, what: &str) -> Peer {
        let mut child = cmd.stdout(Stdio::piped()).spawn().expect("spawn peer");
        let out = child.stdout.take().expect("piped stdout");
        let (tx, lines) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Peer {
            what: format!("{what} (pid {})", child.id()),
            child: Some(child),
            lines,
            reader: Some(reader),
        }
    }

    /// Wait for a stdout line containing `marker`; return what follows it.
    pub fn expect(&mut self, marker: &str, limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    if let Some((_, rest)) = line.split_once(marker) {
                        return rest.to_owned();
                    }
                }
                Err(_) => {
                    let st = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten());
                    panic!(
                        "{}: no {marker:?} line within {limit:?} (exit status: {st:?})",
                        self.what
                    )
                }
            }
        }
    }

    /// The peer's pid.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// SIGKILL the peer without reaping it: it stays a zombie until [`Peer::kill9`] or
    /// drop (liveness checks must not take a zombie for a live process).
    pub fn kill9_no_reap(&mut self) {
        self.child.as_mut().expect("running").kill().expect("kill");
    }

    /// SIGKILL the peer and reap it.
    pub fn kill9(&mut self) {
        let mut child = self.child.take().expect("running");
        child.kill().expect("kill");
        let st = child.wait().expect("wait");
        assert_eq!(st.signal(), Some(9), "{}: {st}", self.what);
    }

    /// Wait (at most `limit`) for a successful exit; return the stdout lines not yet taken.
    pub fn finish(self, limit: Duration) -> Vec<String> {
        let what = self.what.clone();
        let (st, lines) = self.exit(limit);
        assert!(st.success(), "{what} failed: {st}");
        lines
    }

    /// Wait (at most `limit`) for the exit; return its status and the stdout lines not
    /// yet taken.
    pub fn exit(mut self, limit: Duration) -> (std::process::ExitStatus, Vec<String>) {
        let mut child = self.child.take().expect("running");
        let what = self.what.clone();
        let st = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| wait_child(&mut child, limit)))
            .unwrap_or_else(|_| panic!("{what}: did not exit within {limit:?}"));
        if let Some(r) = self.reader.take() {
            r.join().expect("reader thread");
        }
        (st, self.lines.try_iter().collect())
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

pub fn env_str(var: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| panic!("peer needs {var}"))
}

pub fn env_num(var: &str) -> u64 {
    env_str(var).parse().unwrap_or_else(|_| panic!("{var} is not a number"))
}

pub fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}").and_then(|()| out.flush()).expect("stdout");
}

pub fn exit_with(r: Result<(), String>) -> ! {
    match r {
        Ok(()) => std::process::exit(0),
        Err(e) => {
            eprintln!("peer failed: {e}");
            std::process::exit(1)
        }
    }
}

/// The address in the peer's `ADDR` variable (a manager or socket test's server).
pub fn peer_addr() -> Result<shmring::net::Address, String> {
    env_str("ADDR").parse().map_err(|e| format!("{e}"))
}
