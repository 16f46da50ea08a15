//! Running a `python3 -c` script for the Python baselines of `shmring bench`.

use super::{Result, err};
use std::io::Read as _;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// What a finished script left: its exit status, and the last non-empty line of its
/// stdout and of its stderr.
#[derive(Debug)]
pub(crate) struct PyOutput {
    pub(crate) status: ExitStatus,
    pub(crate) last_out: String,
    pub(crate) last_err: String,
}

/// Run `python3 -c script args...` (killed with this process: parent-death signal).
/// `Ok(Err(why))`: python3 is not there or cannot start (the caller skips its rows, never
/// estimates them); `Err`: it took longer than `timeout` (killed).
pub(crate) fn run_script(script: &str, args: &[&str], timeout: Duration) -> Result<Result<PyOutput, String>> {
    use std::os::unix::process::CommandExt as _;
    let mut cmd = Command::new("python3");
    cmd.arg("-c")
        .arg(script)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // SAFETY: the hook runs in the forked child before exec and only calls prctl, which
    // is async-signal-safe; it allocates nothing and touches no lock.
    unsafe {
        cmd.pre_exec(|| {
            rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))
                .map_err(std::io::Error::from)
        });
    }
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Err("python3 not found".into())),
        Err(e) => return Ok(Err(format!("cannot start python3: {e}"))),
    };
    // The outputs are small (a line, or a traceback): they fit in the pipes until the
    // child exits.
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait()? {
            Some(s) => break s,
            None if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(err(format!(
                    "python3 took longer than {:.0} s (killed)",
                    timeout.as_secs_f64()
                )));
            }
            None => std::thread::sleep(Duration::from_millis(5)),
        }
    };
    let (mut out, mut errs) = (String::new(), String::new());
    if let Some(mut o) = child.stdout.take() {
        o.read_to_string(&mut out)?;
    }
    if let Some(mut e) = child.stderr.take() {
        e.read_to_string(&mut errs)?;
    }
    let last = |s: &str| {
        s.lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("")
            .trim()
            .to_owned()
    };
    Ok(Ok(PyOutput {
        status,
        last_out: last(&out),
        last_err: last(&errs),
    }))
}
