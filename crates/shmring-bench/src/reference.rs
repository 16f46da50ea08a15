//! The two physical references of `shmring bench`, measured in the same run:
//!
//! - the cache-line ping-pong floor: two processes bounce one 64-bit counter in a
//!   shared page (a memfd both inherit). The initiator writes `2k + 1` and spins until it
//!   reads `2k + 2`; the responder waits for each odd value and writes the next even
//!   one. Both spin with the same pause hint as the ring's busy-spin mode, and the
//!   round trip is timed the same way as the transports' (one clock read per round
//!   trip). No ring, header or copy can beat this: two cache-line transfers.
//! - memcpy bandwidth: one thread copies a 1 MiB buffer to another (both fit in the
//!   L2 + L3 of this machine) over and over.

use crate::peer::{PeerSpec, RttStats};
use crate::{Result, err};
use std::hint::black_box;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Name of the cache-line ping-pong floor's row.
pub(crate) const FLOOR: &str = "floor-cacheline";
/// Name of the memcpy reference's row.
pub(crate) const MEMCPY: &str = "memcpy";

/// Size of the shared page of the floor.
const PAGE: usize = 4096;
/// The responder's stop value.
const STOP: u64 = u64::MAX;

/// Parent side: the shared page of the floor ping-pong, an anonymous (memfd) file.
pub(crate) fn floor_page() -> Result<OwnedFd> {
    use rustix::fs::{MemfdFlags, ftruncate, memfd_create};
    let fd = memfd_create("shmring-bench-floor", MemfdFlags::CLOEXEC).map_err(|e| err(format!("memfd_create: {e}")))?;
    ftruncate(&fd, PAGE as u64).map_err(|e| err(format!("ftruncate: {e}")))?;
    Ok(fd)
}

/// One 64-bit counter in a shared mapping of the floor's page.
#[derive(Debug)]
pub(crate) struct SharedWord {
    map: memmap2::MmapRaw,
}

impl SharedWord {
    /// Map the page made by [`floor_page`] (prefaulted).
    pub(crate) fn map(fd: OwnedFd) -> Result<Self> {
        let file = std::fs::File::from(fd);
        let map = memmap2::MmapOptions::new()
            .len(PAGE)
            .populate()
            .map_raw(&file)
            .map_err(|e| err(format!("mmap of the floor page: {e}")))?;
        Ok(SharedWord { map })
    }

    /// The counter at the start of the page.
    pub(crate) fn word(&self) -> &AtomicU64 {
        // SAFETY: the mapping is PAGE bytes, page-aligned (so aligned for AtomicU64),
        // lives as long as `self`, and is only ever accessed through this atomic (in
        // this process and in the peer).
        unsafe { AtomicU64::from_ptr(self.map.as_mut_ptr().cast::<u64>()) }
    }
}

/// Initiator: warm-up then timed round trips, as in the transports' ping.
pub(crate) fn floor_ping(page: &SharedWord, spec: &PeerSpec) -> Result<RttStats> {
    bounce(
        page.word(),
        spec.warmup,
        spec.rounds,
        Duration::from_nanos(spec.duration_ns),
    )
}

/// Responder of [`floor_ping`].
pub(crate) fn floor_pong(page: &SharedWord) -> u64 {
    answer(page.word())
}

/// Initiator of a ping-pong on `w` (which starts at 0): `warmup` untimed, then up to
/// `rounds` timed round trips (stopping after `cap`), then the stop value.
fn bounce(w: &AtomicU64, warmup: u64, rounds: u64, cap: Duration) -> Result<RttStats> {
    let mut samples = Vec::with_capacity(rounds as usize);
    let total = warmup + rounds;
    let mut start = Instant::now();
    let mut prev = start;
    for i in 0..total {
        let odd = 2 * i + 1;
        // Release: pairs with the Acquire load in answer (the same ordering a ring's
        // index store has).
        w.store(odd, Ordering::Release);
        // Acquire: pairs with the Release store of the answer in answer.
        while w.load(Ordering::Acquire) != odd + 1 {
            std::hint::spin_loop();
        }
        let now = Instant::now();
        if i >= warmup {
            samples.push((now - prev).as_nanos() as u64);
            if i & 1023 == 0 && now - start >= cap {
                break;
            }
        } else if i + 1 == warmup {
            start = now;
        }
        prev = now;
    }
    // Release: pairs with the Acquire load in answer, which stops.
    w.store(STOP, Ordering::Release);
    RttStats::from_samples(&mut samples).ok_or_else(|| err("no round trip measured"))
}

/// Responder: answer every odd value with the next one until the stop value. Returns
/// the number of answers. (It spins until then: the parent kills it if the initiator
/// dies.)
fn answer(w: &AtomicU64) -> u64 {
    let mut answers = 0;
    let mut expect = 1u64;
    loop {
        // Acquire: pairs with the Release stores in bounce.
        let v = w.load(Ordering::Acquire);
        if v == STOP {
            return answers;
        }
        if v == expect {
            // Release: pairs with the Acquire load in bounce's wait.
            w.store(v + 1, Ordering::Release);
            answers += 1;
            expect = v + 2;
        } else {
            std::hint::spin_loop();
        }
    }
}

/// A counter on a cache line of its own.
#[repr(C, align(128))]
#[derive(Debug, Default)]
struct PaddedWord(AtomicU64);

/// Placement probe: median round trip of a cache line between two threads pinned to
/// `cpus`, over 2000 round trips (a millisecond or less). On a virtual machine the
/// hypervisor may move the virtual CPUs between near and far physical cores during a
/// run; the probe before and after each measurement tells which. `None` if the
/// threads cannot be pinned there.
pub(crate) fn cpu_probe(cpus: [usize; 2]) -> Option<u64> {
    use std::sync::Barrier;
    use std::sync::atomic::AtomicBool;
    let w = PaddedWord::default();
    let pinned = [AtomicBool::new(false), AtomicBool::new(false)];
    let both_pinned = || pinned.iter().all(|p| p.load(Ordering::Relaxed));
    let barrier = Barrier::new(2);
    // Both sides on threads of their own: pinning the main thread would pin the
    // children it spawns later.
    let side = |i: usize| {
        let mut set = rustix::thread::CpuSet::new();
        let ok = cpus[i] < rustix::thread::CpuSet::MAX_CPU && {
            set.set(cpus[i]);
            rustix::thread::sched_setaffinity(None, &set).is_ok()
        };
        // Relaxed: published to the other side by the barrier.
        pinned[i].store(ok, Ordering::Relaxed);
        barrier.wait();
        both_pinned()
    };
    std::thread::scope(|s| {
        let pong = s.spawn(|| {
            if side(1) {
                answer(&w.0);
            }
        });
        let ping = s.spawn(|| side(0).then(|| bounce(&w.0, 200, 2000, Duration::MAX).ok()).flatten());
        let r = ping.join().ok().flatten();
        let _ = pong.join();
        r.map(|s| s.p50_ns)
    })
}

/// The two CPUs the placement probe uses: `pin` if given on two CPUs, else the first
/// two this process may run on (a probe on one CPU would measure the scheduler).
pub(crate) fn probe_cpus(pin: &[usize]) -> Option<[usize; 2]> {
    if let [a, b] = pin
        && a != b
    {
        return Some([*a, *b]);
    }
    let mut it = allowed_cpus().into_iter();
    Some([it.next()?, it.next()?])
}

/// The CPUs this process may run on, in order (empty if the kernel will not say).
pub(crate) fn allowed_cpus() -> Vec<usize> {
    rustix::thread::sched_getaffinity(None)
        .map(|set| {
            (0..rustix::thread::CpuSet::MAX_CPU)
                .filter(|&c| set.is_set(c))
                .collect()
        })
        .unwrap_or_default()
}

/// Result of the memcpy reference.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Memcpy {
    /// Bytes per copy.
    pub(crate) size: usize,
    /// Copies per second.
    pub(crate) copies_per_s: f64,
}

/// Copy a `size`-byte buffer to another repeatedly for about `run_for`, after a warm-up.
pub(crate) fn memcpy_bandwidth(size: usize, run_for: Duration) -> Memcpy {
    let src = vec![0x3Cu8; size];
    let mut dst = vec![0u8; size];
    for _ in 0..8 {
        dst.copy_from_slice(black_box(&src));
        black_box(&mut dst);
    }
    let batch = (64 << 20) / size.max(1) + 1;
    let start = Instant::now();
    let mut copies = 0u64;
    while start.elapsed() < run_for {
        for _ in 0..batch {
            dst.copy_from_slice(black_box(&src));
            black_box(&mut dst);
        }
        copies += batch as u64;
    }
    Memcpy {
        size,
        copies_per_s: copies as f64 / start.elapsed().as_secs_f64(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floor_ping_pong_counts_every_round_trip() {
        let fd = floor_page().unwrap();
        let a = SharedWord::map(fd.try_clone().unwrap()).unwrap();
        let b = SharedWord::map(fd).unwrap();
        let pong = std::thread::spawn(move || floor_pong(&b));
        let mut spec = PeerSpec::new("physical", "floor-ping", None, 8);
        spec.warmup = 10;
        spec.rounds = 1000;
        spec.duration_ns = u64::MAX;
        let s = floor_ping(&a, &spec).unwrap();
        assert_eq!(s.rounds, 1000);
        assert_eq!(pong.join().unwrap(), 1010);
    }

    #[test]
    fn cpu_probe_measures_or_declines() {
        if let Some(cpus) = probe_cpus(&[]) {
            assert!(cpu_probe(cpus).is_some_and(|ns| ns > 0));
        }
        assert_eq!(cpu_probe([0, usize::MAX / 2]), None);
    }

    #[test]
    fn memcpy_reports_copies() {
        let m = memcpy_bandwidth(4096, Duration::from_millis(1));
        assert_eq!(m.size, 4096);
        assert!(m.copies_per_s > 0.0);
    }
}
