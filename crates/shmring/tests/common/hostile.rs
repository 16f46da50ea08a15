//! The neighbour of the hostile-neighbour tests: code that maps a named segment's file
//! directly, as any program with write access to `/dev/shm` can, and writes random and
//! targeted words into it while honest processes work on the segment.
//!
//! A test runs the scribbler in its own process (the test process) and the honest
//! parties as peers ([`crate::common::spawn_peer`]): an honest peer that dies of a signal or
//! outlives its watchdog fails the test ([`judge`]). Every run is seeded: the seed is
//! printed, and `SHMRING_HOSTILE_SEED=N` replays it (`=random` draws a new one); `SHMRING_HOSTILE_ROUNDS=N` sets the
//! number of rounds of the long (`--ignored`) variants.

use std::fs::OpenOptions;
use std::os::unix::process::ExitStatusExt;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

/// The seed of this run: `SHMRING_HOSTILE_SEED` if set (a number, or `random` for one drawn
/// from the clock), else a fixed seed derived from the test's name. Printed either way so a
/// failure can be replayed.
pub fn seed(test: &str) -> u64 {
    let s = match std::env::var("SHMRING_HOSTILE_SEED") {
        // A fixed seed per test, so that `cargo test` replays the same writes every run
        // (the interleaving with the honest peers still varies). `SHMRING_HOSTILE_SEED=random`
        // draws one from the clock, for searching.
        Ok(v) if v == "random" => {
            let t = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(0);
            crate::common::mix(t ^ u64::from(std::process::id()))
        }
        Ok(v) => v.parse().expect("SHMRING_HOSTILE_SEED is a u64 or `random`"),
        Err(_) => test
            .bytes()
            .fold(0x5eed_u64, |h, b| crate::common::mix(h ^ u64::from(b))),
    };
    eprintln!("{test}: hostile seed {s} (replay with SHMRING_HOSTILE_SEED={s})");
    s
}

/// `SHMRING_HOSTILE_ROUNDS` if set, else `default`.
pub fn rounds(default: u64) -> u64 {
    std::env::var("SHMRING_HOSTILE_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A deterministic generator (splitmix64 over a counter).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(1);
        crate::common::mix(self.0)
    }

    /// A value uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// True with probability `num / den`.
    pub fn chance(&mut self, num: u64, den: u64) -> bool {
        self.below(den) < num
    }
}

/// A word of a segment that the scribbler aims at: its byte offset (aligned to its
/// width), its width (4 or 8 bytes), and values the protocol could plausibly hold there
/// (the scribbler also writes nearby values, bit flips and random ones).
#[derive(Debug, Clone)]
pub struct Target {
    /// What the word is, for the log.
    pub what: &'static str,
    /// Byte offset from the start of the segment.
    pub offset: usize,
    /// 4 or 8.
    pub width: usize,
    /// Plausible values (may be empty).
    pub plausible: Vec<u64>,
}

impl Target {
    /// A 4-byte word at `offset`.
    pub fn u32(what: &'static str, offset: usize, plausible: &[u64]) -> Self {
        Target {
            what,
            offset,
            width: 4,
            plausible: plausible.to_vec(),
        }
    }

    /// An 8-byte word at `offset`.
    pub fn u64(what: &'static str, offset: usize, plausible: &[u64]) -> Self {
        Target {
            what,
            offset,
            width: 8,
            plausible: plausible.to_vec(),
        }
    }
}

/// A writable mapping of `/dev/shm/NAME`, made behind the library's back.
pub struct Scribbler {
    map: memmap2::MmapMut,
    rng: Rng,
    /// The writes made so far, newest last (at most [`Scribbler::LOG`] kept).
    pub log: std::collections::VecDeque<String>,
    /// How many writes were made.
    pub writes: u64,
}

impl Scribbler {
    /// How many writes the log keeps.
    pub const LOG: usize = 32;

    /// Map the segment file of `name` read-write.
    pub fn open(name: &str, seed: u64) -> Result<Self, String> {
        let path = format!("/dev/shm/{name}");
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| format!("open {path}: {e}"))?;
        // SAFETY: the mapping is shared with processes that change it at any time; this
        // code only ever accesses it through atomics at aligned in-bounds offsets.
        let map = unsafe { memmap2::MmapMut::map_mut(&file) }.map_err(|e| format!("mmap {path}: {e}"))?;
        Ok(Scribbler {
            map,
            rng: Rng::new(seed),
            log: Default::default(),
            writes: 0,
        })
    }

    /// The mapping's length.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// The generator (to make choices in step with the writes).
    pub fn rng(&mut self) -> &mut Rng {
        &mut self.rng
    }

    /// Read the word of `width` bytes at `offset` (None if out of bounds or misaligned).
    pub fn read(&self, offset: usize, width: usize) -> Option<u64> {
        if offset % width != 0 || offset + width > self.map.len() {
            return None;
        }
        let p = self.map.as_ptr().wrapping_add(offset);
        Some(match width {
            // SAFETY: in bounds and aligned (checked above); every access to the shared
            // words goes through atomics.
            4 => u64::from(unsafe { AtomicU32::from_ptr(p as *mut u32) }.load(Ordering::Relaxed)),
            // SAFETY: as above.
            8 => unsafe { AtomicU64::from_ptr(p as *mut u64) }.load(Ordering::Relaxed),
            _ => return None,
        })
    }

    /// Write `value` as a word of `width` bytes at `offset` (ignored if out of bounds or
    /// misaligned) and log it.
    pub fn write(&mut self, what: &str, offset: usize, width: usize, value: u64) {
        if offset % width != 0 || offset + width > self.map.len() {
            return;
        }
        let p = self.map.as_mut_ptr().wrapping_add(offset);
        match width {
            // SAFETY: in bounds and aligned (checked above).
            4 => unsafe { AtomicU32::from_ptr(p as *mut u32) }.store(value as u32, Ordering::Relaxed),
            // SAFETY: as above.
            8 => unsafe { AtomicU64::from_ptr(p as *mut u64) }.store(value, Ordering::Relaxed),
            _ => return,
        }
        self.writes += 1;
        if self.log.len() == Self::LOG {
            self.log.pop_front();
        }
        self.log.push_back(format!("{what} @{offset:#x} w{width} = {value:#x}"));
    }

    /// One write aimed at `target`: a plausible value, the current value moved by a
    /// little (a lap, a position backwards or forwards), a flipped bit, or a random word.
    pub fn hit(&mut self, target: &Target) {
        let cur = self.read(target.offset, target.width).unwrap_or(0);
        let v = match self.rng.below(5) {
            0 if !target.plausible.is_empty() => {
                target.plausible[self.rng.below(target.plausible.len() as u64) as usize]
            }
            1 => cur.wrapping_sub(1 + self.rng.below(4)),
            2 => cur.wrapping_add(1 + self.rng.below(4)),
            3 => cur ^ (1 << self.rng.below(8 * target.width as u64)),
            _ => self.rng.next(),
        };
        self.write(target.what, target.offset, target.width, v);
    }

    /// One write anywhere in `range` (a random aligned word: random value, zero, all
    /// ones, or a flipped bit).
    pub fn random(&mut self, range: std::ops::Range<usize>) {
        let end = range.end.min(self.map.len());
        if end <= range.start + 8 {
            return;
        }
        let width = if self.rng.chance(1, 2) { 4 } else { 8 };
        let offset = (range.start + self.rng.below((end - range.start - width) as u64) as usize) & !(width - 1);
        let cur = self.read(offset, width).unwrap_or(0);
        let v = match self.rng.below(4) {
            0 => 0,
            1 => u64::MAX,
            2 => cur ^ (1 << self.rng.below(8 * width as u64)),
            _ => self.rng.next(),
        };
        self.write("random", offset, width, v);
    }

    /// Make `n` writes, each aimed at one of `targets` with probability 3/4 (else random
    /// in `range`), pausing `pause` between them.
    pub fn scribble(&mut self, n: u64, targets: &[Target], range: std::ops::Range<usize>, pause: Duration) {
        for _ in 0..n {
            if !targets.is_empty() && self.rng.chance(3, 4) {
                let t = self.rng.below(targets.len() as u64) as usize;
                let t = targets[t].clone();
                self.hit(&t);
            } else {
                self.random(range.clone());
            }
            if !pause.is_zero() {
                std::thread::sleep(pause);
            }
        }
    }

    /// The log as one string, for a failure message.
    pub fn recent(&self) -> String {
        self.log.iter().cloned().collect::<Vec<_>>().join("\n  ")
    }
}

/// An honest peer's verdict: it must have exited normally with status 0 (its own checks
/// passed, only documented errors seen); a death by signal or another status fails,
/// with the scribbler's recent writes in the message.
pub fn judge(what: &str, status: std::process::ExitStatus, recent: &str) -> Result<(), String> {
    if let Some(sig) = status.signal() {
        return Err(format!("{what} died of signal {sig}; last hostile writes:\n  {recent}"));
    }
    if !status.success() {
        return Err(format!("{what} exited with {status}; last hostile writes:\n  {recent}"));
    }
    Ok(())
}
