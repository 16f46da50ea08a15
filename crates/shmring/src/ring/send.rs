//! The sending surface of the byte rings' writing ends, written once for the SPSC
//! [`Producer`](super::spsc::Producer) and the broadcast
//! [`Publisher`](super::broadcast::Publisher): the copy forms (`send`, `try_send`,
//! `send_timeout`, `send_deferred`) and the in-place forms (`try_claim`, `claim`,
//! `claim_timeout`) over each ring's own claim/commit steps.
//!
//! A ring's writing end provides, as private methods:
//!
//! - `reserve(&mut self, len: usize, wait: Wait) -> Result<Slot, SendError>`: make room
//!   for a record of `len` payload bytes (waiting per `wait`) and write its header;
//! - `write(&mut self, slot: Slot, msg: &[u8])`: copy `msg` into the slot and commit it
//!   without publishing;
//! - `grant(&mut self, slot: Slot, len: usize) -> WriteGrant<'_>`: the in-place grant;
//!
//! and the public `flush(&mut self)` that publishes what was committed. The macro is
//! expanded inside an `impl` of the end, so the generated methods are the same code the
//! ring would have written by hand (the SPSC hot path's instruction counts do not move).

/// Generate the sending methods of a byte ring's writing end (see the module docs).
/// `wait_doc` ends "Send `msg`, waiting ..."; `deferred_doc` says when a deferred
/// message becomes visible.
macro_rules! byte_send_methods {
    (wait_doc: $wait_doc:literal, deferred_doc: $deferred_doc:literal $(,)?) => {
        /// Capacity of the ring in bytes.
        pub fn capacity(&self) -> usize {
            self.sh.cap as usize
        }

        /// The largest message this ring accepts.
        pub fn max_message_len(&self) -> usize {
            self.sh.max_msg as usize
        }

        /// Change how this end waits.
        pub fn set_wait_strategy(&mut self, wait: $crate::sync::WaitStrategy) {
            self.st.wait = wait;
        }

        #[doc = concat!("Send `msg`, waiting ", $wait_doc, ".")]
        #[inline]
        pub fn send(&mut self, msg: &[u8]) -> ::std::result::Result<(), SendError> {
            self.send_deferred(msg)?;
            self.flush();
            Ok(())
        }

        /// Send `msg` if there is space now: [`SendError::Full`] otherwise.
        #[inline]
        pub fn try_send(&mut self, msg: &[u8]) -> ::std::result::Result<(), SendError> {
            let slot = self.reserve(msg.len(), $crate::sync::Wait::Now)?;
            self.write(slot, msg);
            self.flush();
            Ok(())
        }

        /// Send `msg`, waiting at most `timeout` for space ([`SendError::Timeout`]).
        pub fn send_timeout(
            &mut self,
            msg: &[u8],
            timeout: ::std::time::Duration,
        ) -> ::std::result::Result<(), SendError> {
            let slot = self.reserve(msg.len(), $crate::sync::Wait::after(timeout))?;
            self.write(slot, msg);
            self.flush();
            Ok(())
        }

        #[doc = concat!("Write and commit `msg` without the publish step: ", $deferred_doc)]
        #[doc = ""]
        #[doc = concat!("Batches of deferred sends cost one `tail` store and one wake-up check, at the next flush (or send, commit, or drop). Waits ", $wait_doc, ".")]
        #[inline]
        pub fn send_deferred(&mut self, msg: &[u8]) -> ::std::result::Result<(), SendError> {
            let slot = self.reserve(msg.len(), $crate::sync::Wait::Forever)?;
            self.write(slot, msg);
            Ok(())
        }

        /// Reserve `len` bytes in place if there is space now ([`SendError::Full`]
        /// otherwise). Write them through the grant, then commit it; a grant dropped
        /// without commit is aborted and nothing is sent.
        #[cfg(not(loom))]
        pub fn try_claim(&mut self, len: usize) -> ::std::result::Result<WriteGrant<'_>, SendError> {
            let slot = self.reserve(len, $crate::sync::Wait::Now)?;
            Ok(self.grant(slot, len))
        }

        #[doc = concat!("Reserve `len` bytes in place, waiting ", $wait_doc, ".")]
        #[cfg(not(loom))]
        pub fn claim(&mut self, len: usize) -> ::std::result::Result<WriteGrant<'_>, SendError> {
            let slot = self.reserve(len, $crate::sync::Wait::Forever)?;
            Ok(self.grant(slot, len))
        }

        /// Reserve `len` bytes in place, waiting at most `timeout`.
        #[cfg(not(loom))]
        pub fn claim_timeout(
            &mut self,
            len: usize,
            timeout: ::std::time::Duration,
        ) -> ::std::result::Result<WriteGrant<'_>, SendError> {
            let slot = self.reserve(len, $crate::sync::Wait::after(timeout))?;
            Ok(self.grant(slot, len))
        }
    };
}

pub(crate) use byte_send_methods;
