//! The party table of a [`RawBarrier`]: a registration per handle (a process's
//! identity in a slot), and the sweep that turns a dead or garbage entry into a broken
//! barrier. See the [module docs](super) ("Robustness").

use super::*;

/// What a sweep of the party table found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Found {
    Dead,
    Garbage,
}

impl RawBarrier {
    /// Register the calling process as a party, so that its death breaks the barrier;
    /// the registration ends when the returned value drops. `None` if all
    /// [`MAX_HANDLES`] slots are taken.
    ///
    /// ```
    /// use shmring::sync::RawBarrier;
    /// let b = RawBarrier::new(2);
    /// let reg = b.register().expect("a free slot");
    /// drop(reg); // unregistered
    /// ```
    pub fn register(&self) -> Option<BarrierRegistration<'_>> {
        self.register_slot()
            .map(|slot| BarrierRegistration { barrier: self, slot })
    }

    pub(super) fn register_slot(&self) -> Option<usize> {
        let me = Owner::current_process().0;
        self.table.iter().position(|slot| {
            // Relaxed: a slot is a self-contained identity; nothing else is published
            // through it (a scanner that misses a fresh registration misses a live
            // process, which it would not act on anyway).
            slot.compare_exchange(0, me, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        })
    }

    pub(super) fn unregister_slot(&self, slot: usize) {
        // In a forked child this is another process than the one that registered: the
        // compare-and-swap fails and the parent's slot stays.
        let me = Owner::current_process().0;
        if let Some(s) = self.table.get(slot) {
            // Relaxed: as in `register_slot`. Fails harmlessly if a scanner cleared the
            // slot (only possible after corruption).
            let _ = s.compare_exchange(me, 0, Ordering::Relaxed, Ordering::Relaxed);
        }
    }

    /// Scan the party table for dead processes and garbage entries (other than `me`,
    /// which is alive). With `breaking`, each one breaks the barrier (before its slot is
    /// freed: a sweeper that dies in between leaves it for the next); without, it is
    /// only freed (`reset`, which ends the generation anyway).
    pub(super) fn sweep(&self, me: u64, breaking: bool) -> Option<Found> {
        let mut found = None;
        for slot in &self.table {
            // Relaxed: a self-contained identity (see `register_slot`).
            let v = slot.load(Ordering::Relaxed);
            if v == 0 || v == me {
                continue;
            }
            let what = if v & (1 << 63) != 0 {
                Found::Garbage
            } else if Owner(v).is_dead() {
                Found::Dead
            } else {
                continue;
            };
            if breaking {
                // Relaxed: as in `break_barrier`; the wake follows after the sweep.
                self.state.fetch_or(BROKEN, Ordering::Relaxed);
            }
            // Relaxed: frees the slot; fails harmlessly if another sweeper freed it.
            let _ = slot.compare_exchange(v, 0, Ordering::Relaxed, Ordering::Relaxed);
            if found != Some(Found::Garbage) {
                found = Some(what);
            }
        }
        if breaking && found.is_some() {
            self.wake_all();
        }
        found
    }
}

/// A process's registration in a [`RawBarrier`]'s party table: while it lives, the
/// death of this process breaks the barrier. Dropping it unregisters (the process
/// *leaves*, which is not detected).
///
/// ```
/// use shmring::sync::RawBarrier;
/// use shmring::sync::barrier::BarrierRegistration;
/// let b = RawBarrier::new(1);
/// let reg: BarrierRegistration<'_> = b.register().unwrap();
/// assert_eq!(reg.barrier().parties(), 1);
/// ```
#[derive(Debug)]
pub struct BarrierRegistration<'a> {
    barrier: &'a RawBarrier,
    slot: usize,
}

impl BarrierRegistration<'_> {
    /// The barrier this registration is in.
    pub fn barrier(&self) -> &RawBarrier {
        self.barrier
    }
}

impl Drop for BarrierRegistration<'_> {
    fn drop(&mut self) {
        self.barrier.unregister_slot(self.slot);
    }
}
