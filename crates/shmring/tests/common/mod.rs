//! Helpers shared by the cross-process tests: re-executing the test binary as a peer,
//! handing it descriptors, a watchdog, and deterministic message contents.
#![allow(dead_code)]

pub mod peer;

use std::os::fd::{AsRawFd, OwnedFd};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Environment variable that tells a re-executed test binary which peer role to play.
pub const ROLE_VAR: &str = "SHMRING_TEST_ROLE";

/// The role this process plays, if it was spawned as a peer.
pub fn role() -> Option<String> {
    std::env::var(ROLE_VAR).ok()
}

/// If this process was spawned as a peer, play its role: `run` dispatches on the role
/// name and exits. Call first in every test of a file whose peers `run` serves.
pub fn dispatch(run: fn(&str) -> !) {
    if let Some(r) = role() {
        run(&r);
    }
}

/// The full name (`module::test`) of the one test of this binary named `test` or
/// ending in `::test`: the test files are modules of a few larger binaries, and the
/// peer is selected with `--exact`. Panics if there is no such test or more than one.
pub fn test_path(test: &str) -> String {
    static LIST: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    let list = LIST.get_or_init(|| {
        let out = Command::new(std::env::current_exe().expect("current_exe"))
            .args(["--list", "--format", "terse"])
            .env_remove(ROLE_VAR)
            .stdin(Stdio::null())
            .stderr(Stdio::inherit())
            .output()
            .expect("list the tests of this binary");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.strip_suffix(": test"))
            .map(str::to_owned)
            .collect()
    });
    let suffix = format!("::{test}");
    let found: Vec<&String> = list.iter().filter(|t| *t == test || t.ends_with(&suffix)).collect();
    match found.as_slice() {
        [one] => (*one).clone(),
        [] => panic!("no test named {test} in this binary"),
        many => panic!("{test} names several tests: {many:?}"),
    }
}

/// Spawn this test binary again, running only `test` (which must dispatch on
/// [`role`]), with `role` and extra environment variables.
pub fn spawn_peer(test: &str, role: &str, env: &[(&str, String)]) -> Command {
    let mut cmd = Command::new(std::env::current_exe().expect("current_exe"));
    cmd.args(["--exact", &test_path(test), "--nocapture", "--test-threads=1"])
        .env(ROLE_VAR, role)
        .stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// Make `fd` inherited by the next spawned child (a non-close-on-exec duplicate that
/// shares the open file description), and return the duplicate's number.
pub fn inheritable(fd: &OwnedFd) -> OwnedFd {
    // F_DUPFD without CLOEXEC: same open file description, inheritable.
    rustix::io::fcntl_dupfd_cloexec(fd, 3)
        .and_then(|d| {
            rustix::io::fcntl_setfd(&d, rustix::io::FdFlags::empty())?;
            Ok(d)
        })
        .expect("dup")
}

/// Take ownership of the descriptor whose number is in `var`.
pub fn fd_from_env(var: &str) -> OwnedFd {
    use std::os::fd::FromRawFd;
    let n: i32 = std::env::var(var).expect("fd var").parse().expect("fd number");
    // SAFETY: the parent passed us this inherited descriptor, which nothing else in this
    // process owns.
    unsafe { OwnedFd::from_raw_fd(n) }
}

/// Number of a descriptor as a string, for the environment.
pub fn fd_string(fd: &OwnedFd) -> String {
    fd.as_raw_fd().to_string()
}

/// Fails the whole test binary (abort) if not dropped within `limit`: a hang is a
/// failure, never a stuck CI run.
pub struct Watchdog {
    done: Arc<AtomicBool>,
}

impl Watchdog {
    pub fn new(what: &'static str, limit: Duration) -> Self {
        let done = Arc::new(AtomicBool::new(false));
        let d = done.clone();
        std::thread::spawn(move || {
            let step = Duration::from_millis(50);
            let mut waited = Duration::ZERO;
            while waited < limit {
                std::thread::sleep(step);
                waited += step;
                if d.load(Ordering::Relaxed) {
                    return;
                }
            }
            eprintln!("WATCHDOG: {what} did not finish within {limit:?}; aborting");
            std::process::abort();
        });
        Watchdog { done }
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.done.store(true, Ordering::Relaxed);
    }
}

/// Wait for `child` at most `limit`; kill it and fail if it takes longer.
pub fn wait_child(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let start = std::time::Instant::now();
    loop {
        if let Some(st) = child.try_wait().expect("try_wait") {
            return st;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("child did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A unique segment name for this test and process.
pub fn unique_name(tag: &str) -> String {
    use std::sync::atomic::AtomicU32;
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "shmring-test-{tag}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// splitmix64: the deterministic generator behind message lengths and contents.
pub fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// Length of message `seq` of a stream seeded with `seed`: uniform in 0..=max.
pub fn msg_len(seed: u64, seq: u64, max: usize) -> usize {
    (mix(seed ^ seq.wrapping_mul(0x2545_F491_4F6C_DD1D)) % (max as u64 + 1)) as usize
}

/// Fill `buf` with message `seq`: when it has room, the sequence number (8 bytes) and
/// a checksum of the rest (8 bytes) lead; the rest is a pseudo-random pattern of `seq`.
pub fn fill_msg(seq: u64, buf: &mut [u8]) {
    let mut x = mix(seq);
    for chunk in buf.chunks_mut(8) {
        x = mix(x);
        chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
    }
    if buf.len() >= 16 {
        buf[..8].copy_from_slice(&seq.to_le_bytes());
        let sum = checksum(&buf[16..]);
        buf[8..16].copy_from_slice(&sum.to_le_bytes());
    }
}

/// FNV-1a over 8-byte words (and a tail), enough to catch corruption.
pub fn checksum(b: &[u8]) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    let mut chunks = b.chunks_exact(8);
    for c in &mut chunks {
        h = (h ^ u64::from_le_bytes(c.try_into().unwrap())).wrapping_mul(0x100_0000_01b3);
    }
    for &x in chunks.remainder() {
        h = (h ^ u64::from(x)).wrapping_mul(0x100_0000_01b3);
    }
    h
}

/// Check that `got` is message `seq` with the expected length; describe the mismatch.
pub fn check_msg(seed: u64, seq: u64, max: usize, got: &[u8], scratch: &mut Vec<u8>) -> Result<(), String> {
    let len = msg_len(seed, seq, max);
    if got.len() != len {
        return Err(format!("message {seq}: length {} != expected {len}", got.len()));
    }
    if got.len() >= 16 {
        let s = u64::from_le_bytes(got[..8].try_into().unwrap());
        if s != seq {
            return Err(format!(
                "message {seq}: carries sequence number {s} (lost/duplicated/reordered)"
            ));
        }
        let sum = u64::from_le_bytes(got[8..16].try_into().unwrap());
        if sum != checksum(&got[16..]) {
            return Err(format!("message {seq}: checksum mismatch"));
        }
    }
    scratch.resize(len, 0);
    fill_msg(seq, scratch);
    if got != &scratch[..] {
        return Err(format!("message {seq}: contents differ"));
    }
    Ok(())
}

/// A Linux abstract socket address unique to this run and `tag`.
pub fn abstract_addr(tag: &str) -> shmring::net::Address {
    shmring::net::Address::Abstract(unique_name(tag))
}
