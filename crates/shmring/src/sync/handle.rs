//! The one handle on a process-shared object that lives in a segment of its own:
//! [`Shared<K>`], generic over the object's [`Kind`] (the shape of lock_api's
//! `Mutex<R, T>` over a `RawMutex`).
//!
//! The handle knows segments: it creates one (named, or anonymous with memfd), opens one
//! by name or from a descriptor, validates it, clones, keeps, names and hands it off.
//! The kind knows its object: which segment kind and header parameters it records, how
//! its raw state is set up and checked, and what each handle keeps beside its mapping.
//! Each public type ([`Semaphore`](super::Semaphore), [`Event`](super::Event),
//! [`Mutex<T>`](super::Mutex), ...) is `Shared` over its kind and adds only its own
//! methods.
//!
//! Adding a kind of shared object: a `#[repr(C)]` raw state (its algorithm, in a file of
//! its own), an uninhabited kind type implementing [`Kind`] and the crate-private
//! `Sealed` (segment kind, parameters, set-up, validation), a type alias
//! `pub type Thing = Shared<ThingKind>`, and an `impl Shared<ThingKind>` with the
//! object's own methods. Creation, opening (also `open_wait` and `open_or_create`, over
//! the loops of [`shm::find`](crate::shm::find)), cloning, naming, descriptors and the
//! hand-off come from here.

use super::shared::Area;
use crate::error::Result;
use crate::handoff;
use crate::shm::{SegmentKind, SegmentOptions, Shape, find};
use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use std::fmt;
use std::marker::PhantomData;
use std::time::Duration;

/// The machinery of a [`Kind`]; nameable only inside the crate, which seals [`Kind`].
pub trait Sealed: Sized {
    /// The `#[repr(C)]` state at the start of the segment's area: atomics and `Pod` data
    /// only (valid for any bytes a peer may write), aligned to at most 128; `Sync` for
    /// the handle to be `Send` and `Sync`.
    type Area;
    /// What a creator passes: the initial value, permits or parties (`()`: nothing).
    type Init;
    /// What each handle keeps beside its mapping (read from the header when attached).
    type Local;
    /// The segment kind recorded in the header (checked at every open).
    const SEGMENT: SegmentKind;
    /// The tag of a hand-off parcel holding this object.
    const HANDOFF: handoff::Kind;
    /// The public type's name (for `Debug`).
    const NAME: &'static str;

    /// The header parameters 0..=5 for `init` (6 and 7 are the handle's: area size and
    /// pid namespace), or `InvalidArgument` if `init` is not acceptable.
    fn params(init: &Self::Init) -> Result<[u64; 8]>;

    /// The shape of the type a typed kind holds (recorded in the segment at creation,
    /// checked at every open and hand-off); `None` for an untyped kind.
    fn shape() -> Option<Shape> {
        None
    }

    /// The size of the area for `init`: that of [`Sealed::Area`], unless the kind has a
    /// tail after it (an array's elements).
    fn area_size(init: &Self::Init) -> Result<usize> {
        let _ = init;
        Ok(std::mem::size_of::<Self::Area>())
    }

    /// The size of the area the header parameters describe (checked against header
    /// word 6 and the file before anything is built on it); also the place for checks
    /// that must come before that one (the element type and length of an array).
    fn area_size_in(params: &[u64; 8], name: &str) -> Result<usize> {
        let _ = (params, name);
        Ok(std::mem::size_of::<Self::Area>())
    }

    /// Set up the state of a new, not yet published, zeroed area.
    fn init(area: &Area<Self::Area>, init: Self::Init);

    /// Check a mapped area (just created, opened or received) against its header
    /// parameters and build the handle's local state. `name` is for messages.
    fn attach(area: &Area<Self::Area>, params: &[u64; 8], name: &str) -> Result<Self::Local>;

    /// The local state of another handle on the same object (see [`Shared::try_clone`]).
    fn clone_local(area: &Self::Area, local: &Self::Local, name: &str) -> Result<Self::Local>;

    /// A handle goes away (after [`Sealed::attach`] or [`Sealed::clone_local`]).
    fn detach(area: &Self::Area, local: &Self::Local) {
        let _ = (area, local);
    }

    /// The fields of the handle's `Debug` output after its name.
    fn debug_fields(area: &Self::Area, local: &Self::Local, d: &mut fmt::DebugStruct<'_, '_>);
}

/// Kinds whose creation takes a value: the initial value, permits or parties
/// (`create(name, init)`, `anonymous(init)`). The others ([`Event`](super::Event),
/// [`RLock`](super::RLock)) are created with `create(name)` and `anonymous()`.
pub trait Valued: Kind {}

/// A kind of process-shared object that [`Shared`] holds in a segment of its own: the
/// library's synchronization primitives ([`SemaphoreKind`](super::SemaphoreKind),
/// [`EventKind`](super::EventKind), [`MutexKind`](super::MutexKind), ...). Sealed: only
/// this crate implements it.
pub trait Kind: Sealed {}

/// A handle on a process-shared object of kind `K` in a segment of its own, named
/// (`create` / `open`) or anonymous (`anonymous`, then [`AsFd`] and
/// [`from_fd`](Self::from_fd) in another process). Each primitive of [`sync`](super) is
/// this handle over its kind (`Semaphore` is `Shared<SemaphoreKind<false>>`, and so on);
/// see the [`sync` module docs](super).
///
/// A creating handle of a named object unlinks the name when it drops, unless
/// [`keep`](Self::keep) was called (or [`SegmentOptions::keep`] set).
///
/// ```
/// use shmring::sync::Event;
/// let e = Event::anonymous()?;
/// let e2 = e.try_clone()?; // a second mapping, as another process would have
/// e2.set();
/// assert!(e.is_set() && e.name().is_none());
/// # Ok::<(), shmring::Error>(())
/// ```
pub struct Shared<K: Kind> {
    area: Area<K::Area>,
    local: K::Local,
    _kind: PhantomData<fn() -> K>,
}

impl<K: Kind> Shared<K> {
    /// Create a segment (named if `name` is given, else anonymous) holding a new `K`.
    pub(crate) fn create_in(name: Option<&str>, init: K::Init, opts: &SegmentOptions) -> Result<Self> {
        let params = K::params(&init)?;
        let size = K::area_size(&init)?;
        let opts = opts.typed(K::shape());
        let area = Area::create(name, K::SEGMENT, params, size, &opts, |a| K::init(a, init))?;
        Self::attached(area)
    }

    pub(crate) fn attached(area: Area<K::Area>) -> Result<Self> {
        let local = K::attach(&area, area.params(), area.display_name())?;
        // `attach` read the area with the SIGBUS containment armed: a peer that truncated
        // the file meanwhile left zeros, not a valid object.
        area.check_poisoned()?;
        Ok(Shared {
            area,
            local,
            _kind: PhantomData,
        })
    }

    /// Open the named object `name`; it must have been created as this type (else
    /// [`Error::WrongKind`](crate::Error::WrongKind), or, for a typed object created
    /// for another shape of `T`, [`Error::WrongType`](crate::Error::WrongType)).
    pub fn open(name: &str) -> Result<Self> {
        Self::open_with(name, &SegmentOptions::default())
    }

    /// [`open`](Self::open) with segment options (how long to wait for the creator,
    /// prefault, ...).
    pub fn open_with(name: &str, opts: &SegmentOptions) -> Result<Self> {
        Self::attached(Area::open(name, K::SEGMENT, &opts.typed(K::shape()), K::area_size_in)?)
    }

    /// [`open`](Self::open), retrying while `name` does not exist yet, for at most
    /// `timeout`; then the last [`Error::NotFound`](crate::Error::NotFound). Any other
    /// error (another kind or type under the name, ...) returns at once. The object is
    /// found within about 4 ms of its creation (naps of 50 µs growing to 4 ms; see
    /// [`shm::open_wait`](crate::shm::open_wait)).
    ///
    /// ```
    /// use shmring::sync::Semaphore;
    /// use std::time::Duration;
    /// let name = format!("doc-open-wait-{}", std::process::id());
    /// let maker = std::thread::spawn({
    ///     let name = name.clone();
    ///     move || {
    ///         std::thread::sleep(Duration::from_millis(20));
    ///         Semaphore::create(&name, 3).unwrap() // usually another program
    ///     }
    /// });
    /// let s = Semaphore::open_wait(&name, Duration::from_secs(10))?;
    /// assert_eq!(s.value(), 3);
    /// drop(maker.join().unwrap());
    /// let never = Semaphore::open_wait("doc-open-wait-never", Duration::from_millis(20));
    /// assert!(matches!(never, Err(shmring::Error::NotFound { .. })));
    /// # Ok::<(), shmring::Error>(())
    /// ```
    pub fn open_wait(name: &str, timeout: Duration) -> Result<Self> {
        Self::open_wait_with(name, timeout, &SegmentOptions::default())
    }

    /// [`open_wait`](Self::open_wait) with segment options.
    pub fn open_wait_with(name: &str, timeout: Duration, opts: &SegmentOptions) -> Result<Self> {
        find::open_wait(timeout, || Self::open_with(name, opts))
    }

    /// Open `name`, or make it with `create` (which must create `name` exclusively) if
    /// it does not exist; with whether this call created it.
    pub(crate) fn open_or_create_by(
        name: &str,
        opts: &SegmentOptions,
        create: impl FnMut() -> Result<Self>,
    ) -> Result<(Self, bool)> {
        find::open_or_create(create, || Self::open_with(name, opts))
    }

    /// Map an object received as a descriptor (inherited, or over `SCM_RIGHTS`); it must
    /// have been created as this type.
    pub fn from_fd(fd: OwnedFd) -> Result<Self> {
        let opts = SegmentOptions::default().typed(K::shape());
        Self::attached(Area::from_fd(fd, K::SEGMENT, &opts, K::area_size_in)?)
    }

    /// Another handle on the same object (a second mapping).
    pub fn try_clone(&self) -> Result<Self> {
        let area = self.area.try_clone()?;
        let local = K::clone_local(area.get(), &self.local, area.display_name())?;
        Ok(Shared {
            area,
            local,
            _kind: PhantomData,
        })
    }

    /// Keep the named segment when this creating handle drops.
    pub fn keep(&mut self) {
        self.area.keep();
    }

    /// The segment's name (`None` if anonymous).
    pub fn name(&self) -> Option<&str> {
        self.area.name()
    }

    /// Whether a peer resized (truncated or grew) the named segment under this mapping,
    /// so that the SIGBUS containment replaced it with private zero pages (see
    /// [`Segment::check_resized`](crate::shm::Segment::check_resized); costs one
    /// `fstat`): this handle no longer shares anything with other processes. Calls whose result has room for an
    /// error report it on their liveness tick (`Semaphore::acquire`: `Corrupted`,
    /// `Barrier::wait`: `Corrupted`, `Condition::wait_while`: `LockError::Corrupted`);
    /// the others (a `Mutex`'s lock, a `Value`'s get and set, `Event::wait`) keep
    /// working on the zeros: check this.
    pub fn is_poisoned(&self) -> bool {
        self.area.is_poisoned()
    }

    /// The object's state in the segment.
    pub(crate) fn area(&self) -> &K::Area {
        self.area.get()
    }

    /// The mapped area (for a kind with a tail).
    pub(crate) fn mapped(&self) -> &Area<K::Area> {
        &self.area
    }

    /// What this handle keeps beside its mapping.
    pub(crate) fn local(&self) -> &K::Local {
        &self.local
    }
}

impl<K: Valued> Shared<K> {
    /// Create the named object `name` from `init` (the initial value, permits or
    /// parties; see the type); unlinked when this handle drops, unless
    /// [`keep`](Self::keep).
    pub fn create(name: &str, init: K::Init) -> Result<Self> {
        Self::create_in(Some(name), init, &SegmentOptions::default())
    }

    /// [`create`](Self::create) with segment options (mode, keep, prefault, ...).
    pub fn create_with(name: &str, init: K::Init, opts: &SegmentOptions) -> Result<Self> {
        Self::create_in(Some(name), init, opts)
    }

    /// Open the named object `name`, or create it from `init` if it does not exist; with
    /// `true` if this call created it. The creator is the handle that unlinks the name
    /// when it drops (unless [`keep`](Self::keep)): keep it alive as long as others may
    /// still look the name up. An existing object keeps its own state (`init` is then
    /// unused); one of another kind or type under the name is refused as by
    /// [`open`](Self::open). Creation is exclusive (`O_CREAT | O_EXCL`), so of several
    /// processes racing here exactly one creates; if the object is removed between a
    /// failed create and the open, this tries again (see
    /// [`shm::open_or_create`](crate::shm::open_or_create)).
    ///
    /// ```
    /// use shmring::Value;
    /// let name = format!("doc-open-or-create-{}", std::process::id());
    /// // Every program runs the same line; whoever comes first creates.
    /// let (hits, created) = Value::<u64>::open_or_create(&name, 0)?;
    /// let (theirs, also_created) = Value::<u64>::open_or_create(&name, 0)?;
    /// assert!(created && !also_created);
    /// hits.fetch_add(1);
    /// assert_eq!(theirs.load(), 1);
    /// # Ok::<(), shmring::Error>(())
    /// ```
    pub fn open_or_create(name: &str, init: K::Init) -> Result<(Self, bool)>
    where
        K::Init: Clone,
    {
        Self::open_or_create_with(name, init, &SegmentOptions::default())
    }

    /// [`open_or_create`](Self::open_or_create) with segment options (the creator's
    /// mode, keep, ...; the opener's open timeout).
    pub fn open_or_create_with(name: &str, init: K::Init, opts: &SegmentOptions) -> Result<(Self, bool)>
    where
        K::Init: Clone,
    {
        Self::open_or_create_by(name, opts, || Self::create_in(Some(name), init.clone(), opts))
    }

    /// An anonymous (memfd) object from `init`; hand it to another process through
    /// [`AsFd`] and [`from_fd`](Self::from_fd).
    pub fn anonymous(init: K::Init) -> Result<Self> {
        Self::create_in(None, init, &SegmentOptions::default())
    }
}

impl<K: Kind> Drop for Shared<K> {
    fn drop(&mut self) {
        K::detach(self.area.get(), &self.local);
    }
}

impl<K: Kind> AsFd for Shared<K> {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.area.as_fd()
    }
}

impl<K: Kind> fmt::Debug for Shared<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct(K::NAME);
        d.field("name", &self.area.name());
        K::debug_fields(self.area.get(), &self.local, &mut d);
        d.finish()
    }
}
