//! The subscriber's half of the broadcast protocol: one look at the ring at the
//! cursor (a message read with the caller's closure, nothing new, a skip over padding,
//! or a lap), the checks of what it reads, the cursor's moves, and the sequence
//! numbers a lapped subscriber counts its losses by. See the ring's module docs for
//! the protocol and the state tables.

use super::super::layout::{SubSlot, role};
use super::super::record::{self, HEADER_LEN};
use super::super::{Policy, RecvError, Shared};
use super::{Look, State};
use crate::Result;
use crate::primitive::{self, Ordering};
use crate::sync::Check;

/// The fast path of a receive: the record at the cursor is a whole message below the
/// published `tail` (the value cached in `st.tail`, loaded again only when the cursor
/// reached it), stamped with its position, of the expected sequence number (and,
/// in the overwrite policy, not overwritten while `f` read it): `f`'s result, and the
/// cursor moved past it. `None` for anything else — nothing new, padding, the
/// headerless end of the ring, a lap, a record that fails a check — which the caller
/// hands to [`look_settled`]: it looks again with every check and reports what it finds.
/// (`f` may then run again on the same or a later record; the callers' closures only
/// compute a result from the bytes.)
///
/// Every check the full look makes on a record it delivers is made here too (tail in
/// range, the record inside the ring and below `tail`, stamp, type, length, sequence
/// number, the overwrite policy's intent check); the rarer cases are out of line.
#[inline(always)]
pub(super) fn look_fast<R>(sh: &Shared, st: &mut State, f: &mut impl FnMut(&[u8]) -> R) -> Option<R> {
    let cap = sh.cap;
    let c = st.cursor;
    let mut tail = st.tail;
    if c >= tail {
        // Everything we saw published was read: look at the shared tail. Acquire:
        // pairs with the Release store of tail in Publisher::flush: the records below
        // it are complete and visible.
        tail = sh.ctl().publ.tail.load(Ordering::Acquire);
        if c >= tail || tail - c > cap {
            return None;
        }
        st.tail = tail;
    }
    // A cached `tail` was within a capacity of an earlier cursor, so of this one too.
    let off = c & (cap - 1);
    if cap - off < HEADER_LEN {
        return None;
    }
    let region = sh.region();
    let [word, stamp, seq] = region.load_header(off);
    if stamp != record::stamp(c) || st.expected != seq {
        return None;
    }
    let rec = match record::parse(word, c, cap, sh.max_msg) {
        Ok(rec) if !rec.padding && rec.total <= tail - c => rec,
        _ => return None,
    };
    let r = region.with_slice(off + HEADER_LEN, rec.len as usize, |m| f(m));
    let overwrite = sh.policy == Policy::Overwrite;
    if overwrite && overwritten(sh, c) {
        return None;
    }
    st.expected = seq.wrapping_add(1);
    delivered(sh, st, c + rec.total, overwrite);
    Some(r)
}

/// [`look`] until it finds a message or nothing (a skip over padding or a lap moves the
/// cursor: the message may be right there, and a waiter must not sleep on it). At most
/// 16 rounds: a publisher lapping us on every look, or a hostile one, reads as empty
/// for this poll.
#[inline]
pub(super) fn look_settled<R>(
    sh: &Shared,
    st: &mut State,
    f: &mut impl FnMut(&[u8]) -> R,
    check: Check,
) -> Result<Look<R>, RecvError> {
    for _ in 0..16 {
        match look(sh, st, f, check)? {
            Look::Retry => continue,
            other => return Ok(other),
        }
    }
    Ok(Look::Empty)
}

/// One look at the ring at the subscriber's cursor: a message (read with `f`), nothing
/// new, or a lap that moved the cursor. With `check` above `Fast`, an empty ring also
/// checks the publisher's state (and with `Liveness` its lock and the segment's size).
fn look<R>(sh: &Shared, st: &mut State, f: &mut impl FnMut(&[u8]) -> R, check: Check) -> Result<Look<R>, RecvError> {
    let cap = sh.cap;
    let overwrite = sh.policy == Policy::Overwrite;
    let publ = &sh.ctl().publ;
    // Acquire: pairs with the Release store of tail in Publisher::flush: the records
    // below it are complete and visible.
    let tail = publ.tail.load(Ordering::Acquire);
    let c = st.cursor;
    if tail == c {
        return empty(sh, st, check);
    }
    if tail % record::ALIGN != 0 || tail < c {
        return Err(RecvError::Corrupted("tail is behind the subscriber or misaligned"));
    }
    if tail - c > cap {
        if overwrite {
            return lapped(sh, st);
        }
        return Err(RecvError::Corrupted(
            "tail is more than a capacity ahead of a lossless subscriber",
        ));
    }
    st.tail = tail;
    let region = sh.region();
    let off = c & (cap - 1);
    let to_end = cap - off;
    if to_end < HEADER_LEN {
        // The headerless end of the ring.
        advance(sh, st, c + to_end, overwrite);
        return Ok(Look::Retry);
    }
    let [word, stamp, seq] = region.load_header(off);
    let parsed = record::parse(word, c, cap, sh.max_msg);
    if stamp != record::stamp(c) || parsed.is_err() {
        if overwrite && overwritten(sh, c) {
            return lapped(sh, st);
        }
        return Err(RecvError::Corrupted(match parsed {
            Err(what) => what,
            Ok(_) => "a record's stamp is not its position",
        }));
    }
    let rec = parsed.expect("checked above");
    if rec.padding {
        if overwrite && overwritten(sh, c) {
            return lapped(sh, st);
        }
        advance(sh, st, c + rec.total, overwrite);
        return Ok(Look::Retry);
    }
    if rec.total > tail - c {
        if overwrite && overwritten(sh, c) {
            return lapped(sh, st);
        }
        return Err(RecvError::Corrupted("a record crosses the published tail"));
    }
    let r = region.with_slice(off + HEADER_LEN, rec.len as usize, |m| f(m));
    if overwrite && overwritten(sh, c) {
        // The record changed under the read: `r` may be made of two messages.
        return lapped(sh, st);
    }
    let e = st.expected;
    if seq != e {
        if overwrite && seq > e {
            // The first record after a lap: count what was missed; the next look
            // delivers this record.
            let missed = seq - e;
            st.expected = seq;
            st.missed = st.missed.wrapping_add(missed);
            // Relaxed: a counter for display.
            sh.sub(st.idx).missed.store(st.missed, Ordering::Relaxed);
            return Err(RecvError::Lagged { missed });
        }
        return Err(RecvError::Corrupted("a message's sequence number is not the next one"));
    }
    st.expected = seq.wrapping_add(1);
    delivered(sh, st, c + rec.total, overwrite);
    Ok(Look::Message(r))
}

/// The sequence number of the first message at or after position `c` (`oldest <= c <=
/// tail`): from the record there, or at `tail` from the last record before it (or 0 in
/// a fresh ring). `Ok(None)`: what we read was being overwritten; look again.
pub(super) fn seq_at(sh: &Shared, mut c: u64) -> std::result::Result<Option<u64>, &'static str> {
    let (tail, _) = sh.indices()?;
    if c > tail {
        return Err("a subscriber's cursor is past tail");
    }
    while c < tail {
        match read_at(sh, c)? {
            None => return Ok(None),
            Some((rec, _)) if rec.padding => c += rec.total,
            Some((_, seq)) => return Ok(Some(seq)),
        }
    }
    if c != tail {
        return Err("records do not end at tail");
    }
    // At tail (or only padding up to it): the next message follows the last one.
    if tail == 0 {
        return Ok(Some(0));
    }
    // Relaxed: stored before tail, which indices() loaded with Acquire; a newer value
    // (a later record) fails the check below and we look again.
    let last = sh.ctl().publ.last.load(Ordering::Relaxed);
    if last >= tail || tail - last > sh.cap {
        return Ok(None);
    }
    match read_at(sh, last)? {
        Some((rec, seq)) if !rec.padding && last + rec.total == tail => Ok(Some(seq.wrapping_add(1))),
        _ => Ok(None),
    }
}

/// The record at `pos` and its sequence number (a headerless end of the ring reads as
/// padding); `Ok(None)` if it was being overwritten.
#[allow(clippy::type_complexity)]
fn read_at(sh: &Shared, pos: u64) -> std::result::Result<Option<(record::Record, u64)>, &'static str> {
    let cap = sh.cap;
    let region = sh.region();
    let off = pos & (cap - 1);
    if cap - off < HEADER_LEN {
        let rec = record::Record {
            len: 0,
            total: cap - off,
            padding: true,
        };
        return Ok(Some((rec, 0)));
    }
    let [word, stamp, seq] = region.load_header(off);
    if overwritten(sh, pos) {
        return Ok(None);
    }
    if stamp != record::stamp(pos) {
        return Err("a record's stamp is not its position");
    }
    Ok(Some((record::parse(word, pos, cap, sh.max_msg)?, seq)))
}

/// A message was delivered: count it and move the cursor to `to` (as [`advance`], with
/// the counter's store on the same slot line; while a lossless grant is taken
/// (`st.hold`), the shared cursor stays before the record until the grant drops).
#[inline(always)]
fn delivered(sh: &Shared, st: &mut State, to: u64, overwrite: bool) {
    st.received = st.received.wrapping_add(1);
    st.cursor = to;
    let s = sh.sub(st.idx);
    // Relaxed: a counter for display.
    s.received.store(st.received, Ordering::Relaxed);
    if !st.hold {
        publish_cursor(sh, s, to, overwrite);
    }
}

/// Store our cursor `to` into our slot `s` and, in the lossless policy, wake the
/// publisher if it waits for us.
#[inline(always)]
pub(super) fn publish_cursor(sh: &Shared, s: &SubSlot, to: u64, overwrite: bool) {
    if overwrite {
        // Relaxed: the overwrite publisher never reads cursors; this is for display.
        s.cursor.store(to, Ordering::Relaxed);
    } else {
        // Release: pairs with the Acquire load of the cursor in the publisher's scan:
        // our reads of the records below `to` finish before it overwrites them.
        s.cursor.store(to, Ordering::Release);
        sh.ctl().space_wait.notify(sh.asym);
    }
}

/// Move the cursor to `to` and tell the publisher (its Release store orders our reads
/// before the publisher's overwrite; the lossless publisher may be waiting for it).
#[inline]
fn advance(sh: &Shared, st: &mut State, to: u64, overwrite: bool) {
    st.cursor = to;
    publish_cursor(sh, sh.sub(st.idx), to, overwrite);
}

/// Overwrite policy: whether the record at `c` may have been (or be being) overwritten,
/// after reads of it: an Acquire fence, then `intent`.
#[inline]
fn overwritten(sh: &Shared, c: u64) -> bool {
    #[cfg(loom)]
    if crate::primitive::loom_break::active(crate::primitive::loom_break::LoomBreak::BroadcastNoValidate) {
        return false;
    }
    // Acquire fence: pairs with the publisher's Release fence after its intent store —
    // if we read a byte it wrote after that fence, we see that intent.
    primitive::fence(Ordering::Acquire);
    // Relaxed: ordered by the fence above.
    sh.ctl().publ.intent.load(Ordering::Relaxed) > c + sh.cap
}

/// Lapped (overwrite policy): move to the oldest retained record.
fn lapped<R>(sh: &Shared, st: &mut State) -> Result<Look<R>, RecvError> {
    let (_, oldest) = sh.indices().map_err(RecvError::Corrupted)?;
    if oldest > st.cursor {
        advance(sh, st, oldest, true);
    }
    Ok(Look::Retry)
}

/// Nothing at the cursor: `Disconnected` if the publisher is gone (after a last look at
/// `tail`), `Empty` otherwise.
fn empty<R>(sh: &Shared, st: &mut State, check: Check) -> Result<Look<R>, RecvError> {
    if check == Check::Fast {
        return Ok(Look::Empty);
    }
    if check == Check::Liveness && sh.poisoned() {
        return Err(RecvError::Corrupted(crate::shm::sigbus::RESIZED));
    }
    let r = &sh.ctl().role;
    // Acquire: pairs with the Release store of CLOSED in the publisher's close, so its
    // last tail store is visible to the re-check below.
    let gone = match r.state.load(Ordering::Acquire) {
        role::VACANT => false,
        role::CLOSED => true,
        role::ATTACHED | role::HANDOFF => check == Check::Liveness && !sh.held_by_other(role::PUBLISHER_LOCK),
        _ => return Err(RecvError::Corrupted("publisher role state out of range")),
    };
    if !gone {
        return Ok(Look::Empty);
    }
    // Acquire: as in look.
    if sh.ctl().publ.tail.load(Ordering::Acquire) != st.cursor {
        return Ok(Look::Retry);
    }
    Err(RecvError::Disconnected)
}
