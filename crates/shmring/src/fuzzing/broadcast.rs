//! The `broadcast_image` fuzz target, and the builder of its seed images.
//!
//! [`broadcast_image`] treats its input as the bytes of a whole broadcast ring segment
//! file (the 128-byte segment header, the 512-byte control block, the subscriber table,
//! then the record area) and opens it through the real path on a memfd holding exactly
//! those bytes: `Subscriber::from_fd_with` (at the oldest record), a bounded drain, a
//! receive with a short timeout, then a publisher from a second description and a
//! round trip. Random bytes rarely pass the header checks, so each input also runs
//! "repaired" ([`broadcast_repair`]): header fields forced valid, `oldest` and `tail`
//! forced into range, records and slots left as they are. No input may panic, hang or
//! read outside the mapping; the only assertions check that messages sent through a
//! ring that opened and drained cleanly come back intact.

use super::image::{
    get, memfd_with, put, raw_then_repaired, read_image, reopen, repair_header, repaired_capacity, zero,
};
use crate::WaitStrategy;
use crate::broadcast::layout::{CONTROL_SIZE, Control, SLOT_SIZE};
use crate::broadcast::{self, Options, Params, Policy, Publisher, RecvError, SendError, Start, Subscriber};
use crate::shm::{HEADER_SIZE, SegmentHeader, SegmentKind, SegmentOptions};
use std::mem::offset_of;
use std::time::Duration;

/// At most this many receives per drain.
const MAX_RECVS: usize = 10_000;
/// Largest record area a repaired image gets.
const MAX_REPAIRED_CAPACITY: u64 = 1 << 16;
/// Largest subscriber table a repaired image gets.
const MAX_REPAIRED_SUBS: u64 = 8;
const AREA: usize = HEADER_SIZE;

fn param(i: usize) -> usize {
    offset_of!(SegmentHeader, params) + 8 * i
}

/// Offsets of the control block's words in a segment image.
#[cfg_attr(not(test), allow(dead_code))] // the corpus seeds use them
pub(crate) mod at {
    use super::*;
    pub fn tail() -> usize {
        AREA + offset_of!(Control, publ.tail)
    }
    pub fn intent() -> usize {
        AREA + offset_of!(Control, publ.intent)
    }
    pub fn oldest() -> usize {
        AREA + offset_of!(Control, publ.oldest)
    }
    pub fn last() -> usize {
        AREA + offset_of!(Control, publ.last)
    }
    pub fn publisher_state() -> usize {
        AREA + offset_of!(Control, role.state)
    }
    /// The first byte of subscriber slot `i`'s word.
    pub fn slot(i: usize) -> usize {
        AREA + CONTROL_SIZE + SLOT_SIZE * i
    }
    /// The record area of an image with `nsubs` slots.
    pub fn records(nsubs: usize) -> usize {
        AREA + CONTROL_SIZE + SLOT_SIZE * nsubs
    }
}

/// Open `data` as a broadcast segment and read it, raw and then repaired. Never panics,
/// hangs or crashes, whatever `data` holds.
pub fn broadcast_image(data: &[u8]) {
    raw_then_repaired(data, open_and_read, broadcast_repair);
}

/// `data` made into an image that passes the segment and ring checks that do not
/// depend on records: the header forced valid (magic, version, kind, READY, no flags,
/// sizes and parameters consistent; a capacity, subscriber limit and policy from the
/// image where valid), `oldest` a multiple of 8 and `tail` within a capacity after it.
pub fn broadcast_repair(data: &[u8]) -> Vec<u8> {
    let min = broadcast::MIN_CAPACITY as u64;
    let raw_cap = get(data, param(0), 8);
    let nsubs = get(data, param(2), 8).clamp(1, MAX_REPAIRED_SUBS) as usize;
    let records = at::records(nsubs);
    let room = data.len().saturating_sub(records);
    let cap = repaired_capacity(raw_cap, room, min, MAX_REPAIRED_CAPACITY);
    let mut img = data.to_vec();
    img.resize(records + cap as usize, 0);
    repair_header(&mut img, SegmentKind::Broadcast);
    put(&mut img, param(0), 8, cap);
    put(&mut img, param(1), 8, broadcast::max_message_len(cap as usize) as u64);
    put(&mut img, param(2), 8, nsubs as u64);
    put(&mut img, param(3), 8, get(data, param(3), 8) % 2);
    let oldest = get(&img, at::oldest(), 8) & !7 & ((1 << 61) - 1);
    let delta = (get(&img, at::tail(), 8).wrapping_sub(oldest) % (cap + 8)) & !7;
    put(&mut img, at::oldest(), 8, oldest);
    put(&mut img, at::tail(), 8, oldest + delta);
    img
}

/// A valid image: a `capacity`-byte ring of `policy` with 4 subscriber slots,
/// `consumed` sent and received, then `pending` sent; both ends handed off (the
/// subscriber's slot freed, the publisher's role in transit). Identities and times are
/// zeroed so the bytes are the same on every run.
pub fn broadcast_valid_image(capacity: usize, policy: Policy, consumed: &[&[u8]], pending: &[&[u8]]) -> Vec<u8> {
    let opts = Options::new().segment(SegmentOptions::new().asymmetric_fences(false));
    let params = Params {
        capacity,
        subscribers: 4,
        policy,
    };
    let (mut p, mut s) = broadcast::channel_with(params, &opts).expect("create an anonymous ring");
    for m in consumed {
        p.try_send(m).expect("consumed messages fit");
        assert_eq!(s.try_recv().as_deref(), Ok(*m));
    }
    for m in pending {
        p.try_send(m).expect("pending messages fit");
    }
    let fd = p.into_fd().expect("a segment-backed publisher");
    let _sub_fd = s.into_fd();
    let mut img = read_image(fd);
    zero(&mut img, AREA + offset_of!(Control, role.pid), 4);
    zero(&mut img, AREA + offset_of!(Control, role.start_time), 8);
    for i in 0..4 {
        zero(&mut img, at::slot(i) + 16, 4); // pid
        zero(&mut img, at::slot(i) + 24, 8); // start time
    }
    img
}

/// Receive until anything but a message or a lap (at most [`MAX_RECVS`] times).
fn drain(s: &mut Subscriber) -> (Vec<Vec<u8>>, Option<RecvError>) {
    let mut got = Vec::new();
    for _ in 0..MAX_RECVS {
        match s.try_recv() {
            Ok(m) => got.push(m),
            Err(RecvError::Lagged { .. }) => {}
            Err(e) => return (got, Some(e)),
        }
    }
    (got, None)
}

fn open_and_read(image: &[u8]) {
    if let Some(fd) = memfd_with(image) {
        if let Ok(r) = broadcast::inspect_fd(fd) {
            assert!(r.oldest <= r.position && r.position - r.oldest <= r.capacity);
        }
    }
    let Some(fd) = memfd_with(image) else {
        return;
    };
    let second = reopen(&fd);
    let opts = Options::new()
        .wait(WaitStrategy::Spin)
        .start(Start::Oldest)
        .segment(SegmentOptions::new().open_timeout(Duration::ZERO));
    let Ok(mut s) = Subscriber::from_fd_with(fd, &opts) else {
        return;
    };
    let (_, end) = drain(&mut s);
    // A wait on whatever is there ends by its timeout (or earlier), never later.
    let _ = s.recv_timeout(Duration::from_millis(1));
    let Some(Ok(mut p)) = second.map(|fd| Publisher::from_fd_with(fd, &opts)) else {
        return;
    };
    let max = p.max_message_len();
    let mut sent = Vec::new();
    for (i, &b) in image.iter().rev().take(8).enumerate() {
        let msg = vec![i as u8 ^ b; usize::from(b) % (max + 2)];
        match p.try_send(&msg) {
            Ok(()) => sent.push(msg),
            Err(SendError::Full | SendError::MessageTooLarge { .. }) => {}
            Err(_) => break,
        }
    }
    let (got, after) = drain(&mut s);
    if end == Some(RecvError::Empty) && p.policy() == Policy::Lossless && after == Some(RecvError::Empty) {
        assert_eq!(got, sent, "messages sent through a reopened ring came back changed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg_attr(miri, ignore)]
    fn valid_image_round_trips() {
        let img = broadcast_valid_image(256, Policy::Lossless, &[&[7; 100], &[8; 50]], &[b"hello", b"wrapped!!"]);
        assert_eq!(broadcast_repair(&img), img, "a valid image needs no repair");
        let fd = memfd_with(&img).unwrap();
        let opts = Options::new()
            .start(Start::Oldest)
            .segment(SegmentOptions::new().open_timeout(Duration::ZERO));
        let mut s = Subscriber::from_fd_with(fd, &opts).unwrap();
        // The oldest retained record is the last one read before the image was taken.
        assert_eq!(s.try_recv().unwrap(), [8; 50]);
        assert_eq!(s.try_recv().unwrap(), b"hello");
        assert_eq!(s.try_recv().unwrap(), b"wrapped!!");
        assert_eq!(s.try_recv(), Err(RecvError::Empty));
    }

    #[test]
    #[cfg_attr(miri, ignore)]
    fn junk_does_not_panic() {
        for len in [0, 1, 127, 128, 129, 640, 768, 1024, 1200, 4000] {
            broadcast_image(&vec![0xa5; len]);
            broadcast_image(&vec![0; len]);
        }
    }
}
