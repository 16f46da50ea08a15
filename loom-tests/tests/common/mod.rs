//! What every model shares: the checker's configuration and an iteration count.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

/// The preemption bound when `LOOM_MAX_PREEMPTIONS` is not set. Each model explores every
/// interleaving with at most this many preemptions; 2 finds the ordering bugs planted by
/// the `#[should_panic]` variants and keeps the suite within a few minutes.
const DEFAULT_PREEMPTIONS: usize = 2;

/// Run `f` under loom, explore every interleaving within the preemption bound, and
/// print how many executions that took (see them with `-- --nocapture`).
pub fn check(name: &str, f: impl Fn() + Sync + Send + 'static) {
    check_bounded(name, None, f)
}

/// [`check`] with the preemption bound capped at `cap` for a model whose state space
/// is too large for the suite's bound.
#[allow(dead_code)] // not every test file uses it
pub fn check_bounded(name: &str, cap: Option<usize>, f: impl Fn() + Sync + Send + 'static) {
    let mut b = loom::model::Builder::new();
    if b.preemption_bound.is_none() {
        b.preemption_bound = Some(DEFAULT_PREEMPTIONS);
    }
    if let (Some(cap), Some(bound)) = (cap, b.preemption_bound) {
        b.preemption_bound = Some(bound.min(cap));
    }
    let runs = Arc::new(AtomicUsize::new(0));
    let counter = runs.clone();
    let start = Instant::now();
    b.check(move || {
        // Relaxed: a plain counter, read after `check` returns on this thread.
        counter.fetch_add(1, Ordering::Relaxed);
        f();
    });
    println!(
        "loom model {name}: {} executions in {:.1?} (preemption bound {:?})",
        runs.load(Ordering::Relaxed),
        start.elapsed(),
        b.preemption_bound
    );
}

/// Run `f` on a loom thread that hands its handle back: when loom reports a deadlock it
/// tears blocked threads down, and a loom `Arc` dropped then would abort the process
/// instead of failing the test, so handles are dropped by the main thread after joining
/// (see [`join`]).
#[allow(dead_code)] // not every test file uses it
pub fn spawn<S: 'static>(
    s: &loom::sync::Arc<S>,
    f: impl FnOnce(&S) + 'static,
) -> loom::thread::JoinHandle<std::mem::ManuallyDrop<loom::sync::Arc<S>>> {
    let s = std::mem::ManuallyDrop::new(s.clone());
    loom::thread::spawn(move || {
        f(&s);
        s
    })
}

/// Join a thread of [`spawn`] and drop its handle.
#[allow(dead_code)] // not every test file uses it
pub fn join<S>(t: loom::thread::JoinHandle<std::mem::ManuallyDrop<loom::sync::Arc<S>>>) {
    drop(std::mem::ManuallyDrop::into_inner(t.join().unwrap()));
}
