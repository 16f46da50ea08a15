//! [`Barrier`]: a [`RawBarrier`] in a segment of its own, with a registration (a party
//! slot) per handle. Segment parameters of a [`SegmentKind::Barrier`] (see also
//! `shared.rs`): 0 the number of parties.

use super::*;
use crate::error::{Error, Result};
use crate::handoff;
use crate::shm::SegmentKind;
use crate::sync::handle::{Kind, Sealed, Shared, Valued};
use crate::sync::shared::Area;

/// The [`Kind`] of a [`Barrier`].
#[derive(Debug)]
pub enum BarrierKind {}

/// What a barrier handle keeps: the number of parties (from the header, validated at
/// open) and its registration slot (cleared when the handle drops).
#[derive(Debug)]
pub struct Registered {
    parties: u32,
    pub(super) slot: usize,
}

/// The number of parties in a barrier segment's header.
fn header_parties(p: &[u64; 8], name: &str) -> Result<u32> {
    match u32::try_from(p[0]) {
        Ok(n) if check_parties(n) => Ok(n),
        _ => Err(Error::Corrupted {
            name: name.to_owned(),
            what: format!("barrier of {} parties (1..={MAX_PARTIES} allowed)", p[0]),
        }),
    }
}

/// Register a handle in `raw`'s party table.
fn register(raw: &RawBarrier, parties: u32, name: &str) -> Result<Registered> {
    let slot = match raw.register_slot() {
        Some(s) => s,
        None => {
            // Full: entries of dead processes (which break the barrier, as their
            // death would at the next wait) may be hogging slots.
            raw.sweep(Owner::current_process().0, true);
            raw.register_slot().ok_or_else(|| {
                Error::InvalidArgument(format!(
                    "barrier {name:?}: all {MAX_HANDLES} party slots are held by live handles \
                     (drop some handles first)"
                ))
            })?
        }
    };
    Ok(Registered { parties, slot })
}

impl Sealed for BarrierKind {
    type Area = RawBarrier;
    /// The number of parties.
    type Init = u32;
    type Local = Registered;
    const SEGMENT: SegmentKind = SegmentKind::Barrier;
    const HANDOFF: handoff::Kind = handoff::Kind::Barrier;
    const NAME: &'static str = "Barrier";

    fn params(&parties: &u32) -> Result<[u64; 8]> {
        if !check_parties(parties) {
            return Err(Error::InvalidArgument(format!(
                "a barrier needs 1..={MAX_PARTIES} parties, not {parties}"
            )));
        }
        let mut params = [0u64; 8];
        params[0] = u64::from(parties);
        Ok(params)
    }

    fn init(a: &Area<RawBarrier>, parties: u32) {
        let b = a.get();
        // Relaxed: the segment is not published yet; READY's Release orders it.
        b.parties.store(parties, Ordering::Relaxed);
    }

    /// Validate the area against its header, then register.
    fn attach(a: &Area<RawBarrier>, p: &[u64; 8], name: &str) -> Result<Registered> {
        let raw = a.get();
        let parties = header_parties(p, name)?;
        let word = raw.parties();
        if word != parties {
            return Err(Error::Corrupted {
                name: name.to_owned(),
                what: format!("barrier parties word {word} differs from the header's {parties}"),
            });
        }
        register(raw, parties, name)
    }

    /// A second mapping registers again.
    fn clone_local(raw: &RawBarrier, local: &Registered, name: &str) -> Result<Registered> {
        register(raw, local.parties, name)
    }

    fn detach(raw: &RawBarrier, local: &Registered) {
        raw.unregister_slot(local.slot);
    }

    fn debug_fields(raw: &RawBarrier, local: &Registered, d: &mut fmt::DebugStruct<'_, '_>) {
        d.field("parties", &local.parties).field("raw", raw);
    }
}

impl Kind for BarrierKind {}
impl Valued for BarrierKind {}

/// A robust process-shared barrier in a segment of its own: Python's
/// `multiprocessing.Barrier`.
///
/// Created for a number of parties (`create(name, parties)`, `anonymous(parties)`;
/// `InvalidArgument` if it is 0 or more than [`MAX_PARTIES`]). Every handle (`create`,
/// `open`, `from_fd`, `try_clone`) registers its process; a
/// registered process that dies while others wait breaks the barrier (they get
/// [`BarrierError::Broken`] within about [`LIVENESS_INTERVAL`]). See the
/// [module docs](crate::sync::barrier) for the protocol and its limits.
///
/// The header's parameter 0 holds the number of parties.
///
/// ```
/// use shmring::sync::Barrier;
/// let b = Barrier::anonymous(2)?;          // hand to a child with `as_fd`
/// let b2 = b.try_clone()?;
/// let t = std::thread::spawn(move || b2.wait().unwrap().index);
/// let mine = b.wait().unwrap();
/// assert_eq!(mine.index + t.join().unwrap(), 1);
/// assert_eq!(b.n_waiting(), 0);
/// # Ok::<(), shmring::Error>(())
/// ```
///
/// The segment methods (`open`, `open_with`, `from_fd`, `try_clone`, `keep`, `name`,
/// `as_fd`, the hand-off) are those of [`Shared`], written once for every kind.
pub type Barrier = Shared<BarrierKind>;

impl Barrier {
    /// The barrier state itself.
    pub fn raw(&self) -> &RawBarrier {
        self.area()
    }

    /// The number of parties (from the header, validated at open).
    pub fn parties(&self) -> u32 {
        self.local().parties
    }

    /// The number of parties waiting in the current round (0 while broken).
    pub fn n_waiting(&self) -> u32 {
        self.raw().n_waiting()
    }

    /// Whether the barrier is broken.
    pub fn is_broken(&self) -> bool {
        self.raw().is_broken()
    }

    /// Wait until all parties have called `wait`; see [`RawBarrier::wait`].
    pub fn wait(&self) -> std::result::Result<BarrierWaitResult, BarrierError> {
        self.raw().wait_inner(Some(self.parties()), Wait::Forever)
    }

    /// Wait at most `timeout`; when it passes the barrier breaks and this call
    /// returns [`BarrierError::Timeout`] (the others get `Broken`).
    pub fn wait_timeout(&self, timeout: Duration) -> std::result::Result<BarrierWaitResult, BarrierError> {
        self.raw().wait_inner(Some(self.parties()), Wait::after(timeout))
    }

    /// Break the barrier; see [`RawBarrier::abort`].
    pub fn abort(&self) {
        self.raw().abort();
    }

    /// Return the barrier to its empty state; see [`RawBarrier::reset`].
    pub fn reset(&self) {
        self.raw().reset();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::AtomicU64 as StdU64;

    #[test]
    fn create_rejects_bad_parties_and_open_checks_words() {
        assert!(matches!(Barrier::anonymous(0), Err(crate::Error::InvalidArgument(_))));
        assert!(matches!(
            Barrier::anonymous(MAX_PARTIES + 1),
            Err(crate::Error::InvalidArgument(_))
        ));
        assert!(RawBarrier::new(1).init(0).is_err());
        let name = format!("shmring-unit-barrier-{}", std::process::id());
        let b = Barrier::create(&name, 3).unwrap();
        let o = Barrier::open(&name).unwrap();
        assert_eq!((o.parties(), o.name()), (3, Some(name.as_str())));
        // A parties word that disagrees with the header.
        b.raw().parties.store(4, Ordering::Relaxed);
        assert!(matches!(Barrier::open(&name), Err(crate::Error::Corrupted { .. })));
        assert!(matches!(o.wait(), Err(BarrierError::Corrupted(_))));
        b.raw().parties.store(3, Ordering::Relaxed);
        b.reset();
        drop(o);
        drop(b);
        assert!(Barrier::open(&name).is_err());
    }

    #[test]
    fn registrations_and_the_handle_limit() {
        let b = Barrier::anonymous(2).unwrap();
        let used = |b: &Barrier| b.raw().table.iter().filter(|s| s.load(Ordering::Relaxed) != 0).count();
        assert_eq!(used(&b), 1);
        let mut clones: Vec<Barrier> = (1..MAX_HANDLES).map(|_| b.try_clone().unwrap()).collect();
        assert_eq!(used(&b), MAX_HANDLES);
        let e = b.try_clone().unwrap_err();
        assert!(e.to_string().contains("party slots"), "{e}");
        // A dead entry is swept (breaking the barrier) to make room.
        clones[10].raw().table[clones[10].local().slot].store(0x7fff_fff0u64 << 32 | 1, Ordering::Relaxed);
        let c = b.try_clone().unwrap();
        assert!(b.is_broken());
        clones.push(c);
        clones.truncate(0);
        assert_eq!(used(&b), 1);
        b.reset();
        assert!(!b.is_broken());
    }

    #[test]
    fn threads_thousand_rounds_one_leader_each() {
        const N: u32 = 4;
        const ROUNDS: u64 = 1000;
        let b = Arc::new(Barrier::anonymous(N).unwrap());
        let arrived = Arc::new(StdU64::new(0));
        let leaders = Arc::new(StdU64::new(0));
        let ts: Vec<_> = (0..N)
            .map(|_| {
                let (b, arrived, leaders) = (b.try_clone().unwrap(), arrived.clone(), leaders.clone());
                std::thread::spawn(move || {
                    for round in 0..ROUNDS {
                        // Relaxed: the barrier orders it.
                        arrived.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let r = b.wait().unwrap();
                        assert!(r.index < N);
                        assert_eq!(r.is_leader(), r.index == N - 1);
                        let seen = arrived.load(std::sync::atomic::Ordering::Relaxed);
                        assert!(
                            seen >= u64::from(N) * (round + 1),
                            "passed early: {seen} in round {round}"
                        );
                        if r.is_leader() {
                            leaders.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        }
                    }
                })
            })
            .collect();
        for t in ts {
            t.join().unwrap();
        }
        assert_eq!(leaders.load(std::sync::atomic::Ordering::Relaxed), ROUNDS);
        assert_eq!(b.n_waiting(), 0);
        assert!(!b.is_broken());
    }
}
