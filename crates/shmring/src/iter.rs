//! Iterators over the messages of a receiving end: `iter()` (blocking), `try_iter()`
//! (what is there now) and `for msg in &mut rx`, on the SPSC and MPMC ring consumers,
//! the queues ([`Queue`](crate::Queue), [`SimpleQueue`](crate::SimpleQueue),
//! [`JoinableQueue`](crate::JoinableQueue)) and [`Connection`](crate::Connection)s
//! (pipes and sockets). [`Iter`] and [`TryIter`] are written once here, over the
//! sealed [`Receive`] trait each of those ends implements.
//!
//! # What an iterator yields, and when it ends
//!
//! Each item is a `Result`: `Ok(message)`, or an error the receive returned. The
//! iterator **ends** (returns `None`, without yielding an error) where `std`'s
//! `Receiver::iter` ends: when the sender side is gone and everything it sent was
//! received —
//!
//! | end | ends at |
//! | --- | --- |
//! | [`spsc::Consumer`](crate::ring::spsc::Consumer) | [`RecvError::Disconnected`](crate::RecvError::Disconnected): the producer dropped its end, closed, or died (a killed producer is seen within the liveness interval, 50 ms) |
//! | [`mpmc::Consumer`](crate::ring::mpmc::Consumer), the queues | `Closed`: someone called `close` and the queue is drained. A queue has any number of producers (every handle is one), so a producer that drops or dies does **not** end it: close it. |
//! | [`Connection`](crate::Connection) | [`ConnError::Disconnected`](crate::ConnError::Disconnected) (peer closed, dropped or died) or [`ConnError::Closed`](crate::ConnError::Closed) (this end closed) |
//!
//! Any other error is **yielded** as `Some(Err(e))`; then the iterator either goes on
//! (the error cost one message and the next receive gets the next one: a message that
//! does not decode, one too large, [`GetError::Lost`](crate::queue::GetError::Lost), a
//! bad side-segment reference, an unexpected handle) or ends after it (the error would
//! repeat or asks the loop to stop: `Interrupted`, `Corrupted`, a bad frame, a socket's
//! I/O error, a wrong direction). So `for m in rx.iter() { let m = m?; ... }` stops at
//! the first error, and `rx.iter().flatten()` skips them (it still ends, since the
//! iterator ends after a repeating error).
//!
//! A [`TryIter`] also ends at the first receive that would wait (`Empty`, `WouldBlock`).
//!
//! ```
//! use shmring::ring::spsc;
//! let (mut tx, mut rx) = spsc::channel(4096)?;
//! for m in [&b"a"[..], b"b", b"c"] {
//!     tx.send(m)?;
//! }
//! assert_eq!(rx.try_iter().count(), 3); // what is there now
//! tx.send(b"last")?;
//! drop(tx); // the producer leaves: the blocking iterator ends after "last"
//! let mut got = Vec::new();
//! for m in &mut rx {
//!     got.push(m?);
//! }
//! assert_eq!(got, [b"last".to_vec()]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::marker::PhantomData;

pub(crate) use sealed::Step;

/// A receiving end that iterates (sealed: implemented by this crate's receiving ends
/// only). `M` picks how messages are read where an end has several ways: `()` for the
/// end's own item (bytes for a ring or a connection, `T` for a `Queue<T>`),
/// [`Decoded<V>`] for a connection's messages decoded as `V`s.
pub trait Receive<M = ()>: sealed::Sealed<M> {}

impl<M, S: sealed::Sealed<M>> Receive<M> for S {}

/// The marker of a connection's iterator that decodes each message as a `V` (see
/// [`Connection::iter`](crate::Connection::iter)).
#[derive(Debug)]
pub struct Decoded<V>(PhantomData<fn() -> V>);

pub(crate) mod sealed {
    /// What an error means to an iterator.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Step {
        /// The stream ended cleanly: end without yielding it.
        End,
        /// Nothing now (`try_iter` ends; a blocking receive never returns it).
        Empty,
        /// Yield it and go on: the next receive gets the next message.
        Yield,
        /// Yield it and end: it would repeat, or asks the loop to stop.
        YieldEnd,
    }

    /// The receive calls an iterator makes.
    pub trait Sealed<M> {
        /// The message type.
        type Item;
        /// The receive's error.
        type Error;
        /// Receive one message, waiting while none is there.
        fn recv_blocking(&mut self) -> Result<Self::Item, Self::Error>;
        /// Receive one message if one is there.
        fn recv_now(&mut self) -> Result<Self::Item, Self::Error>;
        /// What the error means to an iterator.
        fn step(e: &Self::Error) -> Step;
    }
}

/// The blocking iterator of a receiving end: see the [module docs](self). Made by the
/// end's `iter()` or by `for msg in &mut end`.
#[must_use = "iterators do nothing unless consumed"]
pub struct Iter<'a, S: Receive<M>, M = ()> {
    end: &'a mut S,
    done: bool,
    _m: PhantomData<fn() -> M>,
}

/// The non-blocking iterator of a receiving end: the messages there now (see the
/// [module docs](self)). Made by the end's `try_iter()`.
#[must_use = "iterators do nothing unless consumed"]
pub struct TryIter<'a, S: Receive<M>, M = ()> {
    end: &'a mut S,
    done: bool,
    _m: PhantomData<fn() -> M>,
}

impl<S: Receive<M> + std::fmt::Debug, M> std::fmt::Debug for Iter<'_, S, M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Iter")
            .field("end", &self.end)
            .field("done", &self.done)
            .finish()
    }
}

impl<S: Receive<M> + std::fmt::Debug, M> std::fmt::Debug for TryIter<'_, S, M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TryIter")
            .field("end", &self.end)
            .field("done", &self.done)
            .finish()
    }
}

impl<'a, S: Receive<M>, M> Iter<'a, S, M> {
    pub(crate) fn new(end: &'a mut S) -> Self {
        Iter {
            end,
            done: false,
            _m: PhantomData,
        }
    }
}

impl<'a, S: Receive<M>, M> TryIter<'a, S, M> {
    pub(crate) fn new(end: &'a mut S) -> Self {
        TryIter {
            end,
            done: false,
            _m: PhantomData,
        }
    }
}

type Got<S, M> = Result<<S as sealed::Sealed<M>>::Item, <S as sealed::Sealed<M>>::Error>;

/// One step of either iterator over the result `r`.
fn next_of<S: Receive<M>, M>(done: &mut bool, r: Got<S, M>) -> Option<Got<S, M>> {
    match r {
        Ok(m) => Some(Ok(m)),
        Err(e) => match S::step(&e) {
            Step::End | Step::Empty => {
                *done = true;
                None
            }
            Step::Yield => Some(Err(e)),
            Step::YieldEnd => {
                *done = true;
                Some(Err(e))
            }
        },
    }
}

impl<S: Receive<M>, M> Iterator for Iter<'_, S, M> {
    type Item = Got<S, M>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let r = self.end.recv_blocking();
        next_of::<S, M>(&mut self.done, r)
    }
}

impl<S: Receive<M>, M> std::iter::FusedIterator for Iter<'_, S, M> {}

impl<S: Receive<M>, M> Iterator for TryIter<'_, S, M> {
    type Item = Got<S, M>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let r = self.end.recv_now();
        next_of::<S, M>(&mut self.done, r)
    }
}

impl<S: Receive<M>, M> std::iter::FusedIterator for TryIter<'_, S, M> {}

/// Give a receiving end whose [`Receive<()>`] is implemented `iter()`, `try_iter()`
/// and `IntoIterator for &mut`.
macro_rules! iter_methods {
    (impl[$($g:tt)*] $ty:ty) => {
        impl<$($g)*> $ty {
            /// A blocking iterator over the messages: it ends when the sending side is
            /// gone (see [`crate::iter`] for what it yields and when it ends).
            pub fn iter(&mut self) -> $crate::iter::Iter<'_, Self> {
                $crate::iter::Iter::new(self)
            }

            /// An iterator over the messages there now: it ends at the first receive
            /// that would wait (see [`crate::iter`]).
            pub fn try_iter(&mut self) -> $crate::iter::TryIter<'_, Self> {
                $crate::iter::TryIter::new(self)
            }
        }

        impl<'a, $($g)*> IntoIterator for &'a mut $ty {
            type Item = <$crate::iter::Iter<'a, $ty> as Iterator>::Item;
            type IntoIter = $crate::iter::Iter<'a, $ty>;
            fn into_iter(self) -> Self::IntoIter {
                $crate::iter::Iter::new(self)
            }
        }
    };
}
pub(crate) use iter_methods;
