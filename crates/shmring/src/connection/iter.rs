//! Iterators over a [`Connection`]'s messages, pipe or socket (see [`crate::iter`]):
//! they end when the peer closed, dropped or died (after every message it sent was
//! received), or when this end was closed.
//!
//! [`Connection::iter`] decodes each message as a `V`; `for msg in &mut conn` and
//! [`Connection::iter_bytes`] yield the messages' bytes.
//!
//! ```
//! let (mut a, mut b) = shmring::pipe(true)?;
//! let t = std::thread::spawn(move || {
//!     for i in 0..3u32 {
//!         b.send(&i).unwrap();
//!     }
//! }); // `b` drops: `a`'s iterators end
//! let got: Vec<u32> = a.iter::<u32>().collect::<Result<_, _>>()?;
//! assert_eq!(got, [0, 1, 2]);
//! t.join().unwrap();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use super::{ConnError, Connection, Transport};
use crate::iter::{Decoded, Iter, Step, TryIter, sealed::Sealed};
use serde::de::DeserializeOwned;

/// What a receive error means to an iterator.
fn step(e: &ConnError) -> Step {
    match e {
        ConnError::Disconnected | ConnError::Closed => Step::End,
        ConnError::WouldBlock | ConnError::Timeout => Step::Empty,
        // One message skipped or refused; the next receive gets the next one.
        ConnError::MessageTooLarge { .. } | ConnError::Codec(_) | ConnError::UnexpectedHandle => Step::Yield,
        // Interrupted asks the loop to stop; the others repeat.
        _ => Step::YieldEnd,
    }
}

impl<T: Transport> Sealed<()> for Connection<T> {
    type Item = Vec<u8>;
    type Error = ConnError;
    fn recv_blocking(&mut self) -> Result<Vec<u8>, ConnError> {
        self.recv_bytes()
    }
    fn recv_now(&mut self) -> Result<Vec<u8>, ConnError> {
        self.try_recv_bytes()
    }
    fn step(e: &ConnError) -> Step {
        step(e)
    }
}

impl<T: Transport, V: DeserializeOwned> Sealed<Decoded<V>> for Connection<T> {
    type Item = V;
    type Error = ConnError;
    fn recv_blocking(&mut self) -> Result<V, ConnError> {
        self.recv()
    }
    fn recv_now(&mut self) -> Result<V, ConnError> {
        self.try_recv()
    }
    fn step(e: &ConnError) -> Step {
        step(e)
    }
}

impl<T: Transport> Connection<T> {
    /// A blocking iterator over the messages, each decoded as a `V` (as
    /// [`Connection::recv`]): it ends when the peer is gone or this end was closed (see
    /// [`crate::iter`] for what it yields and when it ends).
    pub fn iter<V: DeserializeOwned>(&mut self) -> Iter<'_, Self, Decoded<V>> {
        Iter::new(self)
    }

    /// The messages there now, each decoded as a `V`: ends at the first receive that
    /// would wait.
    pub fn try_iter<V: DeserializeOwned>(&mut self) -> TryIter<'_, Self, Decoded<V>> {
        TryIter::new(self)
    }

    /// A blocking iterator over the messages' bytes (as `for msg in &mut conn`).
    pub fn iter_bytes(&mut self) -> Iter<'_, Self> {
        Iter::new(self)
    }

    /// The messages' bytes there now.
    pub fn try_iter_bytes(&mut self) -> TryIter<'_, Self> {
        TryIter::new(self)
    }
}

impl<'a, T: Transport> IntoIterator for &'a mut Connection<T> {
    type Item = Result<Vec<u8>, ConnError>;
    type IntoIter = Iter<'a, Connection<T>>;
    fn into_iter(self) -> Self::IntoIter {
        Iter::new(self)
    }
}
