//! The `segment_image` fuzz target, and the builders of its seed images.
//!
//! [`segment_image`] treats its input as the bytes of a whole SPSC ring segment file
//! (the 128-byte segment header, the ring's 640-byte control block, then the data
//! region) and runs the real opening path on a memfd holding exactly those bytes:
//! `Segment::from_fd` inside `Consumer::from_fd_with`, then a bounded drain. Random
//! bytes rarely get past the header checks, so each input also runs a second time
//! "repaired" ([`repair`]): header fields forced valid, indices forced into range, the
//! record bytes left as they are, so the fuzzer reaches record parsing. None of this may
//! panic, hang, crash or wait past a timeout (one timed receive) on any input; the only assertions check that messages sent
//! through a ring that opened and drained cleanly come back intact, then `Disconnected`.

use super::image::{
    get, memfd_with, put, raw_then_repaired, read_image, reopen, repair_header, repaired_capacity, zero,
};
use crate::ring::spsc::layout::{CONTROL_SIZE, Control};
use crate::ring::spsc::{self, Consumer, Producer, RingOptions};
use crate::shm::{HEADER_SIZE, MAGIC, SegmentHeader, SegmentKind, SegmentOptions};
use crate::{RecvError, SendError, WaitStrategy};
use std::mem::offset_of;
use std::time::Duration;

/// At most this many receives per drain: every input finishes in bounded time.
const MAX_RECVS: usize = 10_000;
/// Largest ring capacity a repaired image gets.
const MAX_REPAIRED_CAPACITY: u64 = 1 << 16;
/// Where the ring's area (control block, then data) starts in a segment.
const AREA: usize = HEADER_SIZE;
/// Where the data region starts in a segment.
const DATA: usize = AREA + CONTROL_SIZE;

/// A field of an SPSC segment image that [`patch`] and [`field`] address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// Header magic (u64).
    Magic,
    /// Header layout version (u32).
    Version,
    /// Header segment kind (u32).
    Kind,
    /// Header total size (u64).
    TotalSize,
    /// Header area offset (u64).
    AreaOffset,
    /// Header init state (u32; 2 = READY).
    InitState,
    /// Header flags (u32).
    Flags,
    /// Ring capacity, `params[0]` (u64).
    Capacity,
    /// Ring message limit, `params[1]` (u64).
    MaxMessage,
    /// The producer's `tail` (u64).
    Tail,
    /// The consumer's `head` (u64).
    Head,
    /// The producer's role state (u32; 0 vacant, 1 attached, 2 closed, 3 handoff).
    ProducerState,
    /// The consumer's role state (u32).
    ConsumerState,
}

impl Field {
    /// Byte offset in the segment and width (4 or 8 bytes).
    fn at(self) -> (usize, usize) {
        use Field::*;
        match self {
            Magic => (offset_of!(SegmentHeader, magic), 8),
            Version => (offset_of!(SegmentHeader, version), 4),
            Kind => (offset_of!(SegmentHeader, kind), 4),
            TotalSize => (offset_of!(SegmentHeader, total_size), 8),
            AreaOffset => (offset_of!(SegmentHeader, area_offset), 8),
            InitState => (offset_of!(SegmentHeader, init_state), 4),
            Flags => (offset_of!(SegmentHeader, flags), 4),
            Capacity => (offset_of!(SegmentHeader, params), 8),
            MaxMessage => (offset_of!(SegmentHeader, params) + 8, 8),
            Tail => (AREA + offset_of!(Control, prod.tail), 8),
            Head => (AREA + offset_of!(Control, cons.head), 8),
            ProducerState => (AREA + offset_of!(Control, roles.producer.state), 4),
            ConsumerState => (AREA + offset_of!(Control, roles.consumer.state), 4),
        }
    }
}

/// The value of `f` in `image` (little-endian; bytes past the end read as zero).
pub fn field(image: &[u8], f: Field) -> u64 {
    let (off, width) = f.at();
    get(image, off, width)
}

/// Store `value` (truncated to the field's width) into `f` of `image`, if it fits.
pub fn patch(image: &mut [u8], f: Field, value: u64) {
    let (off, width) = f.at();
    put(image, off, width, value);
}

/// Open `data` as an SPSC segment and drain it, raw and then [`repair`]ed. Never panics,
/// hangs or crashes, whatever `data` holds.
pub fn segment_image(data: &[u8]) {
    raw_then_repaired(data, open_and_drain, repair);
}

/// `data` made into an image that passes the segment and ring checks that do not
/// depend on record contents: the header fields forced valid (magic, version, kind,
/// READY, no flags, sizes and parameters consistent, a capacity taken from the image if
/// it is a power of two up to 64 KiB, else from its length), `head` a multiple of 8 and
/// `tail` within `head..=head + capacity`, the consumer's role claimable. The data
/// region and the producer's role are left as they are.
pub fn repair(data: &[u8]) -> Vec<u8> {
    let min = spsc::MIN_CAPACITY as u64;
    let raw_cap = field(data, Field::Capacity);
    let cap = repaired_capacity(raw_cap, data.len().saturating_sub(DATA), min, MAX_REPAIRED_CAPACITY);
    let mut img = data.to_vec();
    img.resize(DATA + cap as usize, 0);
    repair_header(&mut img, SegmentKind::SpscRing);
    patch(&mut img, Field::Capacity, cap);
    patch(&mut img, Field::MaxMessage, spsc::max_message_len(cap as usize) as u64);
    let head = field(&img, Field::Head) & !7 & !(1 << 63);
    // Unchanged when already in range.
    let delta = (field(&img, Field::Tail).wrapping_sub(head) % (cap + 8)) & !7;
    patch(&mut img, Field::Head, head);
    // The tail stays a multiple of 8 within head..=head + cap.
    patch(&mut img, Field::Tail, head.checked_add(delta).unwrap_or(head));
    if field(&img, Field::ConsumerState) != 3 {
        patch(&mut img, Field::ConsumerState, 0);
    }
    img
}

/// A valid image of a `capacity`-byte ring: `consumed` sent and received (so the
/// indices stand past them; a message that does not fit before the end is preceded by
/// a padding record), then `pending` sent and not received, both ends handed off (role
/// state HANDOFF, so that `from_fd` may claim them). Written by the real producer;
/// creator and party identities and the creation time are zeroed so the bytes are the
/// same on every run.
pub fn valid_image(capacity: usize, consumed: &[&[u8]], pending: &[&[u8]]) -> Vec<u8> {
    let opts = RingOptions::new().segment(SegmentOptions::new().asymmetric_fences(false));
    let (mut p, mut c) = spsc::channel_with(capacity, &opts).expect("create an anonymous ring");
    for m in consumed {
        p.try_send(m).expect("consumed messages fit");
        assert_eq!(c.try_recv().as_deref(), Ok(*m));
    }
    for m in pending {
        p.try_send(m).expect("pending messages fit");
    }
    let fd = p.into_fd().expect("a segment-backed producer");
    let _consumer_fd = c.into_fd();
    let mut img = read_image(fd);
    for off in [
        offset_of!(Control, roles.producer.pid),
        offset_of!(Control, roles.consumer.pid),
    ] {
        zero(&mut img, AREA + off, 4);
    }
    for off in [
        offset_of!(Control, roles.producer.start_time),
        offset_of!(Control, roles.consumer.start_time),
    ] {
        zero(&mut img, AREA + off, 8);
    }
    img
}

/// Receive until the ring reports anything but a message (or [`MAX_RECVS`] times);
/// returns the messages and the error that ended the drain.
fn drain(c: &mut Consumer) -> (Vec<Vec<u8>>, Option<RecvError>) {
    let mut got = Vec::new();
    for _ in 0..MAX_RECVS {
        match c.try_recv() {
            Ok(m) => got.push(m),
            Err(e) => return (got, Some(e)),
        }
    }
    (got, None)
}

/// Open `image` as the consumer (and, if its role is free, as the producer) and drain it.
fn open_and_drain(image: &[u8]) {
    // What `shmring ls`/`stat` read of it: a report or an error, never a panic.
    if image.len() >= HEADER_SIZE {
        let head: &[u8; HEADER_SIZE] = image[..HEADER_SIZE].try_into().expect("header-sized");
        let parsed = crate::shm::inspect::parse_header(head);
        assert_eq!(parsed.is_some(), field(image, Field::Magic) == MAGIC);
    }
    if let Some(fd) = memfd_with(image) {
        if let Ok(r) = spsc::inspect_fd(fd) {
            assert!(r.used <= r.stats.capacity);
        }
    }
    let Some(fd) = memfd_with(image) else {
        return;
    };
    let second = reopen(&fd);
    let opts = RingOptions::new()
        .wait(WaitStrategy::Spin)
        .segment(SegmentOptions::new().open_timeout(Duration::ZERO));
    let Ok(mut c) = Consumer::from_fd_with(fd, &opts) else {
        return;
    };
    let (_, end) = drain(&mut c);
    // A timed receive returns by its deadline whatever the image holds (checked with a
    // generous margin: a wait that ignores its deadline, not a slow one).
    if end == Some(RecvError::Empty) {
        let t = std::time::Instant::now();
        let _ = c.recv_timeout(Duration::from_millis(2));
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "recv_timeout waited past its timeout"
        );
    }
    // The consumer polls record stamps and cross-checks `tail` only now and then: an
    // image whose `tail` is ahead of unstamped garbage reads as Empty for a while. The
    // round trip below is only meaningful from a consistent state.
    let consistent = {
        let s = c.stats();
        s.head == s.tail
    };
    let Some(Ok(mut p)) = second.map(|fd| Producer::from_fd_with(fd, &opts)) else {
        return;
    };
    // The ring opened: whatever its old records held, once the drain emptied it what we
    // send must come back intact and in order, then `Disconnected` when we close.
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
    let (got, _) = drain(&mut c);
    drop(p);
    let (rest, last) = drain(&mut c);
    if end == Some(RecvError::Empty) && consistent {
        assert_eq!(got, sent, "messages sent through a reopened ring came back changed");
        assert!(rest.is_empty(), "messages appeared after the producer closed");
        assert_eq!(
            last,
            Some(RecvError::Disconnected),
            "no Disconnected after the producer closed"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_image_round_trips() {
        let img = valid_image(128, &[&[7; 32], &[8; 16]], &[b"hello", b"wrapped!!"]);
        assert_eq!(img.len(), DATA + 128);
        assert_eq!(repair(&img), img, "a valid image needs no repair");
        let fd = memfd_with(&img).unwrap();
        let opts = RingOptions::new().segment(SegmentOptions::new().open_timeout(Duration::ZERO));
        let mut c = Consumer::from_fd_with(fd, &opts).unwrap();
        assert_eq!(c.try_recv().unwrap(), b"hello");
        assert_eq!(c.try_recv().unwrap(), b"wrapped!!");
        assert_eq!(c.try_recv(), Err(RecvError::Empty));
    }

    #[test]
    fn junk_does_not_panic() {
        for len in [0, 1, 127, 128, 129, 767, 768, 800, 832, 2000] {
            segment_image(&vec![0xa5; len]);
            segment_image(&vec![0; len]);
        }
    }
}
