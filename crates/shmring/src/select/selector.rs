//! [`Selector`]: a set of owned sources, waited on together, handed back by key.

use super::{Selectable, sealed::Sealed, wait_sources};
use crate::sync::Interrupted;
use std::any::Any;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// A set of sources (any mix of rings, queues, pipes, sockets and listeners; see the
/// [module docs](super)) waited on together. [`Selector::add`] takes a source and gives
/// back a typed [`Key`]; `sel[key]` reaches the source (to receive from it), and
/// [`Selector::remove`] gives it back.
///
/// ```
/// use shmring::select::Selector;
/// use shmring::{Queue, ring::spsc};
/// use std::time::Duration;
///
/// let (mut tx, rx) = spsc::channel(4096)?;
/// let q: Queue<String> = Queue::new(8)?;
/// let mut producer = q.try_clone()?;
/// let mut sel = Selector::new();
/// let ring = sel.add(rx);
/// let queue = sel.add(q);
///
/// tx.send(b"from the ring")?;
/// producer.put(&"from the queue".to_string())?;
/// let mut got = Vec::new();
/// while got.len() < 2 {
///     let ready = sel.wait(Some(Duration::from_secs(10)));
///     assert!(!ready.is_empty());
///     if ready.contains(ring) {
///         got.push(String::from_utf8(sel[ring].recv()?)?);
///     }
///     if ready.contains(queue) {
///         got.push(sel[queue].get()?);
///     }
/// }
/// got.sort();
/// assert_eq!(got, ["from the queue", "from the ring"]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Selector {
    id: u64,
    /// When the peers of the ring sources were last checked for liveness.
    tick: super::futex::LivenessTick,
    sources: Vec<Option<Box<dyn Entry>>>,
}

impl std::fmt::Debug for Selector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Selector")
            .field("sources", &self.sources.iter().filter(|s| s.is_some()).count())
            .finish_non_exhaustive()
    }
}

/// A source in a [`Selector`], of type `S`: indexes the selector (`sel[key]`) and names
/// the source in a [`Ready`] set. Keys are not reused within a selector: a removed
/// source's key stays invalid.
pub struct Key<S> {
    index: usize,
    selector: u64,
    _s: PhantomData<fn() -> S>,
}

impl<S> Key<S> {
    /// The source's index in its selector (the order of [`Selector::add`], from 0): the
    /// numbers [`Ready::indices`] lists.
    pub fn index(&self) -> usize {
        self.index
    }
}

impl<S> Clone for Key<S> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<S> Copy for Key<S> {}

impl<S> PartialEq for Key<S> {
    fn eq(&self, other: &Self) -> bool {
        (self.index, self.selector) == (other.index, other.selector)
    }
}

impl<S> Eq for Key<S> {}

impl<S> std::fmt::Debug for Key<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Key").field(&self.index).finish()
    }
}

/// The sources found ready by one wait of a [`Selector`]; empty: the timeout passed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ready {
    indices: Vec<usize>,
}

impl Ready {
    /// Whether the source of `key` was ready.
    pub fn contains<S>(&self, key: Key<S>) -> bool {
        self.indices.binary_search(&key.index).is_ok()
    }

    /// The ready sources' indices ([`Key::index`]), ascending.
    pub fn indices(&self) -> &[usize] {
        &self.indices
    }

    /// Whether nothing was ready (the timeout passed).
    pub fn is_empty(&self) -> bool {
        self.indices.is_empty()
    }

    /// How many sources were ready.
    pub fn len(&self) -> usize {
        self.indices.len()
    }
}

/// A source as the selector holds it.
trait Entry {
    fn selectable(&self) -> &dyn Selectable;
    fn as_any(&self) -> &dyn Any;
    fn as_any_mut(&mut self) -> &mut dyn Any;
    fn into_any(self: Box<Self>) -> Box<dyn Any>;
}

impl<S: Sealed + Any> Entry for S {
    fn selectable(&self) -> &dyn Selectable {
        self
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
    fn into_any(self: Box<Self>) -> Box<dyn Any> {
        self
    }
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

impl Default for Selector {
    fn default() -> Self {
        Self::new()
    }
}

impl Selector {
    /// An empty selector.
    pub fn new() -> Self {
        Selector {
            // Relaxed: a unique number, nothing else.
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            tick: Default::default(),
            sources: Vec::new(),
        }
    }

    /// Add `source`; its key reaches it later.
    pub fn add<S: Selectable + Any>(&mut self, source: S) -> Key<S> {
        self.sources.push(Some(Box::new(source)));
        Key {
            index: self.sources.len() - 1,
            selector: self.id,
            _s: PhantomData,
        }
    }

    fn entry(&self, index: usize, selector: u64) -> &dyn Entry {
        assert_eq!(selector, self.id, "a key of another selector");
        match self.sources.get(index) {
            Some(Some(e)) => &**e,
            _ => panic!("the source of key {index} was removed"),
        }
    }

    /// The source of `key`. Panics if it was removed or `key` is another selector's.
    pub fn get<S: Any>(&self, key: Key<S>) -> &S {
        self.entry(key.index, key.selector)
            .as_any()
            .downcast_ref()
            .expect("a key's type is its source's")
    }

    /// The source of `key`, to receive from. Panics as [`Selector::get`].
    pub fn get_mut<S: Any>(&mut self, key: Key<S>) -> &mut S {
        self.entry(key.index, key.selector);
        self.sources[key.index]
            .as_mut()
            .and_then(|e| e.as_any_mut().downcast_mut())
            .expect("a key's type is its source's")
    }

    /// Take the source of `key` out of the selector. Panics as [`Selector::get`].
    pub fn remove<S: Any>(&mut self, key: Key<S>) -> S {
        self.entry(key.index, key.selector);
        let e = self.sources[key.index].take().expect("checked above");
        match e.into_any().downcast() {
            Ok(s) => *s,
            Err(_) => unreachable!("a key's type is its source's"),
        }
    }

    /// Whether the source of `key` is here (not removed; `key` is this selector's).
    pub fn contains<S>(&self, key: Key<S>) -> bool {
        key.selector == self.id && matches!(self.sources.get(key.index), Some(Some(_)))
    }

    /// How many sources it holds.
    pub fn len(&self) -> usize {
        self.sources.iter().filter(|s| s.is_some()).count()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Wait until at least one source is ready or `timeout` passes (`None`: no limit;
    /// `Some(Duration::ZERO)`: just look); the ready ones (empty on timeout). See
    /// [`select`](super::select).
    pub fn wait(&mut self, timeout: Option<Duration>) -> Ready {
        self.wait_impl(timeout, false).unwrap_or(Ready { indices: Vec::new() })
    }

    /// The sources ready now ([`Selector::wait`] with a zero timeout).
    pub fn ready_now(&mut self) -> Ready {
        self.wait(Some(Duration::ZERO))
    }

    /// [`Selector::wait`] that also ends when an interrupt is pending (see
    /// `shmring::signal::Interrupt`).
    pub fn wait_interruptible(&mut self, timeout: Option<Duration>) -> Result<Ready, Interrupted> {
        self.wait_impl(timeout, true)
    }

    fn wait_impl(&mut self, timeout: Option<Duration>, interruptible: bool) -> Result<Ready, Interrupted> {
        let (at, view): (Vec<usize>, Vec<&dyn Selectable>) = self
            .sources
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.as_ref().map(|e| (i, e.selectable())))
            .unzip();
        let r = wait_sources(&view, timeout, interruptible, &mut self.tick)?;
        Ok(Ready {
            indices: r.into_iter().map(|i| at[i]).collect(),
        })
    }
}

impl<S: Any> std::ops::Index<Key<S>> for Selector {
    type Output = S;
    fn index(&self, key: Key<S>) -> &S {
        self.get(key)
    }
}

impl<S: Any> std::ops::IndexMut<Key<S>> for Selector {
    fn index_mut(&mut self, key: Key<S>) -> &mut S {
        self.get_mut(key)
    }
}
