//! The machine a benchmark runs on: a header line, and how much CPU other processes
//! (or the hypervisor) took during each run, so that a disturbed run is flagged instead
//! of silently reported.

use std::time::Instant;

/// `shmring bench 0.1.0: <CPU model>, <n> CPUs, Linux <release>, pause <t> ns`.
pub(crate) fn header() -> String {
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!(
        "shmring bench {}: {model}, {cpus} CPUs, Linux {}, pause {:.1} ns",
        env!("CARGO_PKG_VERSION"),
        kernel.trim(),
        pause_ns()
    )
}

/// The cost of one pause hint (`std::hint::spin_loop`, the instruction every spinning
/// wait of shmring runs between looks): the fastest of 5 timed loops of 100,000, in
/// ns (a few ms in all). What `WaitStrategy::Adaptive`'s time-bounded spin is worth in
/// pauses on this machine.
pub(crate) fn pause_ns() -> f64 {
    const N: u32 = 100_000;
    (0..5)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..N {
                std::hint::spin_loop();
            }
            t.elapsed().as_secs_f64() * 1e9 / f64::from(N)
        })
        .fold(f64::INFINITY, f64::min)
}

/// Clock ticks per second of `/proc/stat` and `/proc/self/stat` (`USER_HZ`, 100 on
/// every Linux architecture the kernel exposes to user space).
const USER_HZ: f64 = 100.0;

/// CPU counters at one instant.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CpuSnapshot {
    at: Instant,
    /// Busy ticks of all CPUs (user, nice, system, irq, softirq).
    busy: u64,
    /// Ticks stolen by the hypervisor.
    steal: u64,
    /// Ticks of this process and its reaped children.
    own: u64,
}

/// CPU used by others during a run, in cores (1.0 = one CPU busy all the time).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Interference {
    /// Other processes of this machine.
    pub(crate) foreign: f64,
    /// The hypervisor (steal time).
    pub(crate) steal: f64,
    /// Clock ticks (10 ms) taken by others and the hypervisor together.
    ticks: u64,
}

impl CpuSnapshot {
    /// The counters now; `None` if `/proc` cannot be read.
    pub(crate) fn now() -> Option<Self> {
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        let cpu: Vec<u64> = stat
            .lines()
            .next()?
            .split_whitespace()
            .skip(1)
            .map(|v| v.parse().unwrap_or(0))
            .collect();
        // user nice system idle iowait irq softirq steal ...
        let at = |i: usize| cpu.get(i).copied().unwrap_or(0);
        let own_stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        // Fields after the command name (which may hold spaces): state is field 3, so
        // utime (14), stime (15), cutime (16), cstime (17) are at 11..=14.
        let rest: Vec<u64> = own_stat
            .rsplit_once(')')?
            .1
            .split_whitespace()
            .map(|v| v.parse().unwrap_or(0))
            .collect();
        Some(CpuSnapshot {
            at: Instant::now(),
            busy: at(0) + at(1) + at(2) + at(5) + at(6),
            steal: at(7),
            own: rest.get(11..=14)?.iter().sum(),
        })
    }

    /// What others used between `self` and `later` (children of this process must
    /// have been reaped by then to count as ours).
    pub(crate) fn interference(&self, later: &CpuSnapshot) -> Interference {
        let secs = later.at.duration_since(self.at).as_secs_f64().max(1e-3);
        let foreign = later
            .busy
            .saturating_sub(self.busy)
            .saturating_sub(later.own.saturating_sub(self.own));
        let steal = later.steal.saturating_sub(self.steal);
        Interference {
            foreign: foreign as f64 / USER_HZ / secs,
            steal: steal as f64 / USER_HZ / secs,
            ticks: foreign + steal,
        }
    }
}

impl Interference {
    /// Others took `foreign` cores and the hypervisor `steal` (for tests of the report).
    #[cfg(test)]
    pub(crate) fn of(foreign: f64, steal: f64) -> Self {
        Interference {
            foreign,
            steal,
            ticks: 100,
        }
    }

    /// Whether others took enough CPU to disturb a run on this machine: more than a
    /// tenth of a core on average, and at least 3 ticks (`/proc/stat` counts in 10 ms
    /// ticks, so one stray tick in a short run means nothing).
    pub(crate) fn disturbing(&self) -> bool {
        self.ticks >= 3 && self.foreign + self.steal > 0.10
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshots_read_and_subtract() {
        let a = CpuSnapshot::now().expect("/proc is mounted");
        let b = CpuSnapshot::now().unwrap();
        let i = a.interference(&b);
        assert!(i.foreign >= 0.0 && i.steal >= 0.0);
        assert!(header().starts_with("shmring bench "));
        assert!(pause_ns() > 0.0);
    }
}
