//! The robust process-shared mutex in one process, side by side with baselines measured
//! in the same run: a process-shared `pthread_mutex_t` (`PTHREAD_PROCESS_SHARED`, in a
//! shared mapping), a robust one (`PTHREAD_MUTEX_ROBUST` too), and `std::sync::Mutex`
//! (in-process only: the reference of what a lock costs without shared memory).
//! Cross-process numbers (two contending processes, Python's `multiprocessing.Lock`)
//! are `shmring bench`'s lock rows.
//!
//! - `lock_uncontended`: one thread, lock / increment a `u64` / unlock (`RawMutex`: lock
//!   / unlock alone);
//! - `lock_contended_2threads`: two threads doing the same, the time of `n` operations
//!   of both together (it includes starting the two threads, which `n` amortizes).
//!
//! Run: `cargo bench --bench sync` (compare within a group).

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use shmring::shm::{Segment, SegmentKind, SegmentOptions};
use shmring::sync::Mutex;
use std::hint::black_box;
use std::mem::{MaybeUninit, offset_of, size_of};
use std::time::{Duration, Instant};

/// A `u64` behind a lock, as every row of this bench has it.
trait Counter: Sync {
    fn bump(&self);
}

impl Counter for Mutex<u64> {
    #[inline]
    fn bump(&self) {
        *self.lock().expect("no holder dies in this bench") += 1;
    }
}

impl Counter for std::sync::Mutex<u64> {
    #[inline]
    fn bump(&self) {
        *self.lock().unwrap() += 1;
    }
}

/// The area of the pthread baselines' segment: the mutex, then its counter.
#[repr(C)]
struct PthreadArea {
    mutex: libc::pthread_mutex_t,
    count: u64,
}

/// A process-shared pthread mutex (robust or not) and its counter in an anonymous
/// shmring segment of kind `Raw`.
struct Pthread {
    seg: Segment,
}

// SAFETY: the mapping is shared memory reached only through the mutex (which is made
// for concurrent use) and, under it, the counter.
unsafe impl Sync for Pthread {}

impl Pthread {
    fn new(robust: bool) -> Self {
        let seg = Segment::anonymous(
            SegmentKind::Raw,
            [0; 8],
            size_of::<PthreadArea>(),
            &SegmentOptions::default(),
        )
        .unwrap();
        let mut p = Pthread { seg };
        let mut attr = MaybeUninit::<libc::pthread_mutexattr_t>::uninit();
        let a = attr.as_mut_ptr();
        // SAFETY: `a` is valid for writes of an attribute object; init fills it, and
        // the setters and destroy take the object it initialized.
        unsafe {
            assert_eq!(libc::pthread_mutexattr_init(a), 0);
            assert_eq!(libc::pthread_mutexattr_setpshared(a, libc::PTHREAD_PROCESS_SHARED), 0);
            assert_eq!(libc::pthread_mutexattr_settype(a, libc::PTHREAD_MUTEX_NORMAL), 0);
            if robust {
                assert_eq!(libc::pthread_mutexattr_setrobust(a, libc::PTHREAD_MUTEX_ROBUST), 0);
            }
        }
        // SAFETY: the mutex is at the start of the segment's area (128-byte aligned, at
        // least size_of::<PthreadArea>() bytes, kept alive by `p`), not yet shared with
        // anyone; the attribute object is initialized.
        unsafe {
            assert_eq!(libc::pthread_mutex_init(p.mutex(), a), 0);
            libc::pthread_mutexattr_destroy(a);
        }
        p.seg.publish_ready();
        p
    }

    fn mutex(&self) -> *mut libc::pthread_mutex_t {
        self.seg.area_ptr().cast()
    }

    fn count(&self) -> *mut u64 {
        self.seg.area_ptr().wrapping_add(offset_of!(PthreadArea, count)).cast()
    }
}

impl Counter for Pthread {
    #[inline]
    fn bump(&self) {
        // SAFETY: the mutex was initialized in `new` and lives in the mapping `self`
        // keeps.
        let rc = unsafe { libc::pthread_mutex_lock(self.mutex()) };
        assert_eq!(rc, 0);
        // SAFETY: the counter is in bounds and aligned in the mapping, and is only
        // touched under the mutex, which this thread holds.
        unsafe { *self.count() += 1 };
        // SAFETY: this thread holds the mutex.
        let rc = unsafe { libc::pthread_mutex_unlock(self.mutex()) };
        assert_eq!(rc, 0);
    }
}

fn uncontended(c: &mut Criterion) {
    let mut g = c.benchmark_group("lock_uncontended");
    g.throughput(Throughput::Elements(1));
    let shm = Mutex::anonymous(0u64).unwrap();
    g.bench_function("shmring_mutex", |b| b.iter(|| black_box(&shm).bump()));
    g.bench_function("shmring_rawmutex", |b| {
        let raw = shm.raw();
        b.iter(|| {
            black_box(raw).lock().expect("no holder dies in this bench");
            // SAFETY: this thread took the lock on the line above.
            unsafe { raw.unlock() };
        })
    });
    let p = Pthread::new(false);
    g.bench_function("pthread_pshared", |b| b.iter(|| black_box(&p).bump()));
    let r = Pthread::new(true);
    g.bench_function("pthread_robust", |b| b.iter(|| black_box(&r).bump()));
    let s = std::sync::Mutex::new(0u64);
    g.bench_function("std_mutex", |b| b.iter(|| black_box(&s).bump()));
    g.finish();
}

/// Two threads bumping `l`, `n` times in all; the time from the spawn to the last join.
fn two_threads(l: &impl Counter, n: u64) -> Duration {
    let start = Instant::now();
    std::thread::scope(|s| {
        for half in [n / 2, n - n / 2] {
            s.spawn(move || {
                for _ in 0..half {
                    l.bump();
                }
            });
        }
    });
    start.elapsed()
}

fn contended(c: &mut Criterion) {
    let mut g = c.benchmark_group("lock_contended_2threads");
    g.throughput(Throughput::Elements(1));
    g.measurement_time(Duration::from_secs(3));
    let shm = Mutex::anonymous(0u64).unwrap();
    g.bench_function(BenchmarkId::from_parameter("shmring_mutex"), |b| {
        b.iter_custom(|n| two_threads(&shm, n))
    });
    let p = Pthread::new(false);
    g.bench_function(BenchmarkId::from_parameter("pthread_pshared"), |b| {
        b.iter_custom(|n| two_threads(&p, n))
    });
    let r = Pthread::new(true);
    g.bench_function(BenchmarkId::from_parameter("pthread_robust"), |b| {
        b.iter_custom(|n| two_threads(&r, n))
    });
    let s = std::sync::Mutex::new(0u64);
    g.bench_function(BenchmarkId::from_parameter("std_mutex"), |b| {
        b.iter_custom(|n| two_threads(&s, n))
    });
    g.finish();
}

criterion_group!(benches, uncontended, contended);
criterion_main!(benches);
