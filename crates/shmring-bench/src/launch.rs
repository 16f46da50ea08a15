//! The parent side of the benchmark's peer processes: spawning them with their
//! descriptors, starting them together, collecting their reports, and killing and
//! reaping them whatever happens. The protocol is described in [`crate::peer`].

use crate::peer::PeerSpec;
use crate::{Result, err};
use serde::de::DeserializeOwned;
use std::io::{BufRead, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A child to start: its job and the descriptors it inherits.
#[derive(Debug)]
pub(crate) struct PeerJob {
    /// The job (its `fds` is filled in at spawn).
    pub(crate) spec: PeerSpec,
    /// The descriptors, in the role's order; closed in the parent after the spawn.
    pub(crate) fds: Vec<OwnedFd>,
}

/// A running child.
#[derive(Debug)]
struct Running {
    role: String,
    child: Child,
    stdin: Option<ChildStdin>,
    stderr: Option<JoinHandle<String>>,
    status: Option<ExitStatus>,
}

/// The children of one run: killed and reaped on drop, whatever happened.
#[derive(Debug)]
struct Peers {
    list: Vec<Running>,
    events: mpsc::Receiver<(usize, Option<String>)>,
}

impl Drop for Peers {
    fn drop(&mut self) {
        for p in &mut self.list {
            if p.status.is_none() {
                // kill() on an exited but unreaped child is harmless; wait() reaps it.
                let _ = p.child.kill();
                let _ = p.child.wait();
            }
        }
    }
}

/// Run one benchmark: spawn a child per job, start them together, and return their
/// reports in job order. Fails (children killed and reaped) if a child fails, or if the
/// run takes longer than `timeout`.
pub(crate) fn run_peers<R: DeserializeOwned>(jobs: Vec<PeerJob>, timeout: Duration) -> Result<Vec<R>> {
    let (events_tx, events) = mpsc::channel();
    let mut peers = Peers {
        list: Vec::with_capacity(jobs.len()),
        events,
    };
    for (i, job) in jobs.into_iter().enumerate() {
        let running = spawn(job, i, events_tx.clone())?;
        peers.list.push(running);
    }
    drop(events_tx);

    let ready = peers.collect_lines(Duration::from_secs(20), "start")?;
    for (i, line) in ready.iter().enumerate() {
        if line != "ready" {
            return Err(err(format!(
                "{} peer said {line:?} instead of ready",
                peers.list[i].role
            )));
        }
    }
    for p in &mut peers.list {
        let stdin = p.stdin.as_mut().expect("stdin is kept until the end");
        // A child that died before reading is reported by collect_lines below.
        let _ = stdin.write_all(b"go\n").and_then(|()| stdin.flush());
    }
    let lines = peers.collect_lines(timeout, "finish")?;
    let mut reports = Vec::with_capacity(lines.len());
    for (i, line) in lines.iter().enumerate() {
        let r: R = serde_json::from_str(line)
            .map_err(|e| err(format!("{} peer sent a bad report {line:?}: {e}", peers.list[i].role)))?;
        reports.push(r);
    }
    peers.reap(Duration::from_secs(10))?;
    Ok(reports)
}

fn spawn(job: PeerJob, idx: usize, events: mpsc::Sender<(usize, Option<String>)>) -> Result<Running> {
    let mut spec = job.spec;
    spec.fds = job.fds.iter().map(|f| f.as_raw_fd()).collect();
    spec.mlock = crate::transports::mlock();
    for f in &job.fds {
        // This child, and only this one, inherits the descriptor: the parent spawns
        // from one thread, and closes its copy right after the spawn.
        rustix::io::fcntl_setfd(f, rustix::io::FdFlags::empty()).map_err(|e| err(format!("fcntl(F_SETFD): {e}")))?;
    }
    let exe = std::env::current_exe().map_err(|e| err(format!("cannot find own executable: {e}")))?;
    let spawned = Command::new(&exe)
        .arg("__bench-peer")
        .arg("--spec")
        .arg(serde_json::to_string(&spec)?)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    drop(job.fds);
    let mut child = spawned.map_err(|e| err(format!("cannot start {}: {e}", exe.display())))?;
    let stdout = child.stdout.take().expect("stdout is piped");
    let stderr = child.stderr.take().expect("stderr is piped");
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            match line {
                Ok(l) => {
                    if events.send((idx, Some(l))).is_err() {
                        return;
                    }
                }
                Err(_) => break,
            }
        }
        let _ = events.send((idx, None));
    });
    let stderr = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::BufReader::new(stderr).read_to_string(&mut s);
        s
    });
    Ok(Running {
        role: spec.role,
        stdin: child.stdin.take(),
        child,
        stderr: Some(stderr),
        status: None,
    })
}

impl Peers {
    /// One line from every child within `timeout`.
    fn collect_lines(&mut self, timeout: Duration, phase: &str) -> Result<Vec<String>> {
        let deadline = Instant::now() + timeout;
        let mut got: Vec<Option<String>> = vec![None; self.list.len()];
        while got.iter().any(Option::is_none) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left) {
                Ok((i, Some(line))) => {
                    if got[i].is_some() {
                        return Err(err(format!(
                            "{} peer said more than expected: {line:?}",
                            self.list[i].role
                        )));
                    }
                    got[i] = Some(line);
                }
                // A child that has said its line may exit: its stdout ends.
                Ok((i, None)) if got[i].is_some() => {}
                Ok((i, None)) => return Err(self.failure(i)),
                Err(_) => {
                    let late: Vec<_> = (0..got.len())
                        .filter(|&i| got[i].is_none())
                        .map(|i| self.list[i].role.clone())
                        .collect();
                    return Err(err(format!(
                        "peer(s) {} did not {phase} within {:.1} s (killed)",
                        late.join(", "),
                        timeout.as_secs_f64()
                    )));
                }
            }
        }
        Ok(got.into_iter().map(|l| l.expect("all present")).collect())
    }

    /// The error of child `i`, which closed its stdout early: its stderr line, or its
    /// exit status. The other children are killed first, so that they stop too.
    fn failure(&mut self, i: usize) -> crate::Error {
        for (j, p) in self.list.iter_mut().enumerate() {
            if j != i {
                let _ = p.child.kill();
            }
        }
        let p = &mut self.list[i];
        // The child closed stdout, so it is exiting; give it a moment before killing it.
        let deadline = Instant::now() + Duration::from_secs(2);
        let status = loop {
            match p.child.try_wait() {
                Ok(Some(s)) => break Some(s),
                Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(1)),
                _ => {
                    let _ = p.child.kill();
                    break p.child.wait().ok();
                }
            }
        };
        p.status = status;
        let text = p.stderr.take().and_then(|h| h.join().ok()).unwrap_or_default();
        let line = text
            .lines()
            .find(|l| !l.trim().is_empty())
            .map(|l| l.trim_start_matches("shmring __bench-peer: error: ").to_owned());
        match (line, status) {
            (Some(l), _) => err(format!("{} peer failed: {l}", p.role)),
            (None, Some(s)) => err(format!("{} peer exited early ({s})", p.role)),
            (None, None) => err(format!("{} peer exited early", p.role)),
        }
    }

    /// Wait for every child to exit (they do after reporting), and check their status.
    fn reap(&mut self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        for i in 0..self.list.len() {
            loop {
                let p = &mut self.list[i];
                match p.child.try_wait() {
                    Ok(Some(s)) => {
                        p.status = Some(s);
                        if !s.success() {
                            return Err(err(format!("{} peer exited with {s} after reporting", p.role)));
                        }
                        break;
                    }
                    Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(1)),
                    Ok(None) => return Err(err(format!("{} peer did not exit after reporting", p.role))),
                    Err(e) => return Err(err(format!("waitpid: {e}"))),
                }
            }
        }
        Ok(())
    }
}
