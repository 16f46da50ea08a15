//! Reading a message in place with a grant: [`ReadGrant`], from
//! [`Subscriber::read_ref`] and the typed subscriber's `recv_ref`.
//!
//! **Lossless policy: zero-copy.** The publisher never writes below `oldest + capacity`,
//! and `oldest` never passes the cursor a live subscriber stored in its slot. A grant
//! therefore reads the record where it lies and holds the slot's cursor *before* it
//! (the subscriber's own cursor moves on, the shared one does not) until the grant
//! drops: then one Release store of the cursor gives the record back and wakes a
//! publisher that waits for it. While a grant lives the publisher may fill the rest of
//! the ring, then waits (`try_send` reports `Full`), as for the SPSC ring's
//! [`ReadGrant`](crate::ring::spsc::ReadGrant).
//!
//! **Overwrite policy: one copy.** The publisher never waits, so nothing can keep it
//! from rewriting a record while the caller holds a borrow of it: bytes handed out in
//! place could change (be torn) under the caller after the intent check passed. The
//! grant holds a copy instead, made once into a buffer the subscriber keeps and
//! reuses, and only after the record was found intact (the intent check after the
//! copy), so the bytes it shows are never torn.

use super::Subscriber;
use super::look::publish_cursor;
use crate::broadcast::{Policy, RecvError};
use crate::codec::{self, CodecError};
use crate::sync::Wait;
use serde::Deserialize;
use std::time::Duration;

/// A message read in place (lossless policy) or copied once (overwrite policy; see the
/// module docs of [`Subscriber::read_ref`] for why): derefs to its bytes;
/// [`ReadGrant::decode`] decodes them, borrowing where the type does. In the lossless
/// policy the record stays reserved until the grant drops: the publisher does not
/// overwrite it, and waits for it once the rest of the ring is full.
///
/// ```
/// use shmring::broadcast::{self, Policy, SendError};
/// let (mut tx, mut rx) = broadcast::channel(4096, 4, Policy::Lossless)?;
/// tx.send(b"in place")?;
/// let g = rx.read_ref()?;
/// assert_eq!(&g[..], b"in place");
/// // The record is held: the publisher fills the rest of the ring, then is Full.
/// while tx.try_send(&[0; 100]).is_ok() {}
/// assert_eq!(tx.try_send(&[0; 100]), Err(SendError::Full));
/// drop(g); // gives the record back
/// tx.try_send(&[0; 8])?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct ReadGrant<'a> {
    sub: &'a mut Subscriber,
    /// Lossless: the payload in the ring (from the bounds-checked slice the read was
    /// handed); `None`: the copy in the subscriber's buffer (overwrite).
    place: Option<(*const u8, usize)>,
}

impl Subscriber {
    /// Read the next message in place, waiting for it: a [`ReadGrant`] that derefs to
    /// its bytes. Lossless policy: zero-copy, the record is given back to the
    /// publisher when the grant drops. Overwrite policy: the bytes are copied once,
    /// after the record was found intact, into a buffer this subscriber reuses (the
    /// publisher never waits, so it could rewrite a record in place under a borrow).
    pub fn read_ref(&mut self) -> Result<ReadGrant<'_>, RecvError> {
        self.read_ref_with(Wait::Forever)
    }

    /// [`read_ref`](Self::read_ref) if there is a message now ([`RecvError::Empty`]
    /// otherwise).
    pub fn try_read_ref(&mut self) -> Result<ReadGrant<'_>, RecvError> {
        self.read_ref_with(Wait::Now)
    }

    /// [`read_ref`](Self::read_ref), waiting at most `timeout` ([`RecvError::Timeout`]).
    pub fn read_ref_timeout(&mut self, timeout: Duration) -> Result<ReadGrant<'_>, RecvError> {
        self.read_ref_with(Wait::after(timeout))
    }

    pub(crate) fn read_ref_with(&mut self, wait: Wait) -> Result<ReadGrant<'_>, RecvError> {
        if self.sh.policy == Policy::Overwrite {
            let mut buf = std::mem::take(&mut self.st.scratch);
            let r = self.read_wait(wait, |m| {
                buf.clear();
                buf.extend_from_slice(m);
            });
            self.st.scratch = buf;
            r?;
            return Ok(ReadGrant { sub: self, place: None });
        }
        // Deliver the next message without storing the cursor past it into our slot:
        // the grant's drop does (see the module docs).
        self.st.hold = true;
        let r = self.read_wait(wait, |m| (m.as_ptr(), m.len()));
        self.st.hold = false;
        let place = r?;
        Ok(ReadGrant {
            sub: self,
            place: Some(place),
        })
    }
}

impl ReadGrant<'_> {
    /// Decode the message as one `V`, borrowing from it where `V` does (see
    /// [`codec::decode_borrowed`]).
    #[inline]
    pub fn decode<'b, V: Deserialize<'b>>(&'b self) -> Result<V, CodecError> {
        codec::decode_borrowed(self)
    }

    /// Decode the message into `place`, reusing its buffers where `V` can (see
    /// [`codec::decode_into`]).
    #[inline]
    pub fn decode_into<'b, V: Deserialize<'b>>(&'b self, place: &mut V) -> Result<(), CodecError> {
        codec::decode_into(self, place)
    }
}

impl std::ops::Deref for ReadGrant<'_> {
    type Target = [u8];
    #[inline]
    fn deref(&self) -> &[u8] {
        match self.place {
            // SAFETY: `ptr`/`len` are the payload slice the ring's bounds-checked read
            // handed to us, in the region that `sub`'s mapping (borrowed by the grant)
            // keeps alive. The publisher does not write these bytes while the grant
            // lives: the cursor in our slot stays at or below the record (lossless), so
            // `oldest` does not pass it and the publisher writes only below `oldest +
            // capacity`, which excludes the record. (A hostile process may write them
            // anyway, as for the SPSC ring's grants: wrong bytes, never out of bounds.)
            Some((ptr, len)) => unsafe { std::slice::from_raw_parts(ptr, len) },
            None => &self.sub.st.scratch,
        }
    }
}

impl Drop for ReadGrant<'_> {
    fn drop(&mut self) {
        if self.place.is_some() {
            // Give the record back: our cursor is already past it.
            let (sh, st) = (&self.sub.sh, &self.sub.st);
            publish_cursor(sh, sh.sub(st.idx), st.cursor, false);
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::WaitStrategy;
    use crate::broadcast::record::record_len;
    use crate::broadcast::{self, Policy, RecvError, SendError};
    use std::time::Duration;

    fn msg(i: u64) -> Vec<u8> {
        let mut v = i.to_le_bytes().to_vec();
        v.resize(40, (i % 251) as u8);
        v
    }

    #[test]
    fn lossless_grant_reads_in_place_and_holds_the_publisher() {
        // 4096 bytes hold exactly 64 records of 40-byte messages (64 bytes each).
        let (mut tx, mut rx) = broadcast::channel(4096, 4, Policy::Lossless).unwrap();
        rx.set_wait_strategy(WaitStrategy::Spin);
        assert_eq!(rx.try_read_ref().map(|_| ()), Err(RecvError::Empty));
        tx.send(&msg(0)).unwrap();
        tx.send(&msg(1)).unwrap();
        let g = rx.read_ref().unwrap();
        assert_eq!(&g[..], &msg(0)[..]);
        let first = g.as_ptr() as usize;
        drop(g);
        let g = rx.try_read_ref().unwrap();
        assert_eq!(&g[..], &msg(1)[..]);
        // In the ring: the next record's payload, one record further (a copy would
        // sit in the same buffer each time).
        assert_eq!(g.as_ptr() as usize - first, record_len(40) as usize);
        // While the grant holds message 1, the publisher fills the rest of the ring
        // (63 records: everything but message 1's), then is Full, and a wait times out.
        let mut sent = 2;
        while tx.try_send(&msg(sent)).is_ok() {
            sent += 1;
        }
        assert_eq!(sent, 2 + 63);
        assert_eq!(tx.try_send(&msg(sent)), Err(SendError::Full));
        assert_eq!(
            tx.send_timeout(&msg(sent), Duration::from_millis(20)),
            Err(SendError::Timeout)
        );
        assert_eq!(&g[..], &msg(1)[..], "the held record was not overwritten");
        drop(g);
        // Its record is given back: exactly one more message fits.
        tx.try_send(&msg(sent)).unwrap();
        sent += 1;
        assert_eq!(tx.try_send(&msg(sent)), Err(SendError::Full));
        for i in 2..sent {
            assert_eq!(&rx.try_read_ref().unwrap()[..], &msg(i)[..], "message {i}");
        }
        assert_eq!(rx.received(), sent);
        assert_eq!(rx.try_read_ref().map(|_| ()), Err(RecvError::Empty));
    }

    #[test]
    fn a_leaked_grant_is_given_back_by_the_next_receive() {
        let (mut tx, mut rx) = broadcast::channel(4096, 4, Policy::Lossless).unwrap();
        for i in 0..3 {
            tx.send(&msg(i)).unwrap();
        }
        std::mem::forget(rx.read_ref().unwrap());
        assert_eq!(rx.recv().unwrap(), msg(1));
        // Message 0's and 1's records are free again: everything but message 2's
        // record (63 records) takes new messages.
        let mut sent = 3;
        while tx.try_send(&msg(sent)).is_ok() {
            sent += 1;
        }
        assert_eq!(sent, 3 + 63);
    }

    #[test]
    fn overwrite_grant_is_a_copy_that_the_publisher_cannot_tear() {
        let (mut tx, mut rx) = broadcast::channel(4096, 4, Policy::Overwrite).unwrap();
        tx.send(&msg(0)).unwrap();
        tx.send(&msg(1)).unwrap();
        let g = rx.read_ref().unwrap();
        let first = g.as_ptr();
        assert_eq!(&g[..], &msg(0)[..]);
        drop(g);
        let g = rx.read_ref().unwrap();
        assert_eq!(g.as_ptr(), first, "the subscriber's buffer, not the ring");
        // The publisher never waits for a grant: it laps the ring while we hold one,
        // and the copy stays what it was.
        for i in 2..1000 {
            tx.try_send(&msg(i)).unwrap();
        }
        assert_eq!(&g[..], &msg(1)[..]);
        drop(g);
        assert!(matches!(rx.read_ref().map(|_| ()), Err(RecvError::Lagged { .. })));
        let g = rx.read_ref().unwrap();
        let i = u64::from_le_bytes(g[..8].try_into().unwrap());
        assert_eq!(&g[..], &msg(i)[..]);
    }
}
