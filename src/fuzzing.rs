//! Entry points for the fuzz targets in `fuzz/` and for the stable replay of their
//! corpus (`tests/fuzz_corpus.rs`), plus the builders of their seed images.
//!
//! [`segment_image`] treats its input as the bytes of a whole SPSC ring segment file
//! (the 128-byte segment header, the ring's 640-byte control block, then the data
//! region) and runs the real opening path on a memfd holding exactly those bytes:
//! `Segment::from_fd` inside `Consumer::from_fd_with`, then a bounded drain. Random
//! bytes rarely get past the header checks, so each input also runs a second time
//! "repaired" ([`repair`]): header fields forced valid, indices forced into range, the
//! record bytes left as they are, so the fuzzer reaches record parsing. None of this may
//! panic, hang or crash on any input; the only assertions check that messages sent
//! through a ring that opened and drained cleanly come back intact, then `Disconnected`.

mod net;
pub use net::{net_frames, net_handshake};

use crate::ring::layout::{CONTROL_SIZE, Control};
use crate::ring::spsc::{self, Consumer, Producer, RingOptions};
use crate::shm::{HEADER_SIZE, LAYOUT_VERSION, MAGIC, SegmentHeader, SegmentKind, SegmentOptions};
use crate::{RecvError, SendError, WaitStrategy};
use rustix::fd::{AsRawFd, OwnedFd};
use std::mem::offset_of;
use std::time::Duration;

/// At most this many receives per drain: every input finishes in bounded time.
const MAX_RECVS: usize = 10_000;
/// Inputs longer than this are cut (the fuzzer's inputs are a few KiB).
const MAX_IMAGE: usize = 1 << 20;
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
    let mut b = [0u8; 8];
    for (i, byte) in b.iter_mut().take(width).enumerate() {
        *byte = image.get(off + i).copied().unwrap_or(0);
    }
    u64::from_le_bytes(b)
}

/// Store `value` (truncated to the field's width) into `f` of `image`, if it fits.
pub fn patch(image: &mut [u8], f: Field, value: u64) {
    let (off, width) = f.at();
    if let Some(dst) = image.get_mut(off..off + width) {
        dst.copy_from_slice(&value.to_le_bytes()[..width]);
    }
}

/// Open `data` as an SPSC segment and drain it, raw and then [`repair`]ed. Never panics,
/// hangs or crashes, whatever `data` holds.
pub fn segment_image(data: &[u8]) {
    let data = &data[..data.len().min(MAX_IMAGE)];
    open_and_drain(data);
    let fixed = repair(data);
    if fixed != data {
        open_and_drain(&fixed);
    }
}

/// `data` made into an image that passes the segment and ring checks that do not
/// depend on record contents: the header fields forced valid (magic, version, kind,
/// READY, no flags, sizes and parameters consistent, a capacity taken from the image if
/// it is a power of two up to 64 KiB, else from its length), `head` a multiple of 16 and
/// `tail` within `head..=head + capacity`, the consumer's role claimable. The data
/// region and the producer's role are left as they are.
pub fn repair(data: &[u8]) -> Vec<u8> {
    let min = spsc::MIN_CAPACITY as u64;
    let raw_cap = field(data, Field::Capacity);
    let cap = if raw_cap.is_power_of_two() && (min..=MAX_REPAIRED_CAPACITY).contains(&raw_cap) {
        raw_cap
    } else {
        let room = (data.len().saturating_sub(DATA) as u64).clamp(min, MAX_REPAIRED_CAPACITY);
        // The largest power of two not above `room` (at least `min`, a power of two).
        1 << (63 - room.leading_zeros())
    };
    let mut img = data.to_vec();
    img.resize(DATA + cap as usize, 0);
    patch(&mut img, Field::Magic, MAGIC);
    patch(&mut img, Field::Version, u64::from(LAYOUT_VERSION));
    patch(&mut img, Field::Kind, SegmentKind::SpscRing as u64);
    let total = img.len() as u64;
    patch(&mut img, Field::TotalSize, total);
    patch(&mut img, Field::AreaOffset, HEADER_SIZE as u64);
    patch(&mut img, Field::InitState, 2);
    patch(&mut img, Field::Flags, 0);
    patch(&mut img, Field::Capacity, cap);
    patch(&mut img, Field::MaxMessage, spsc::max_message_len(cap as usize) as u64);
    let head = field(&img, Field::Head) & !15 & !(1 << 63);
    // Unchanged when already in range.
    let delta = (field(&img, Field::Tail).wrapping_sub(head) % (cap + 16)) & !15;
    patch(&mut img, Field::Head, head);
    // The tail stays a multiple of 16 within head..=head + cap.
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
    use std::os::unix::fs::FileExt;
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
    let file = std::fs::File::from(fd);
    let len = file.metadata().expect("fstat").len() as usize;
    let mut img = vec![0u8; len];
    file.read_exact_at(&mut img, 0).expect("read the segment back");
    let zero = |img: &mut [u8], off: usize, n: usize| img[off..off + n].fill(0);
    zero(&mut img, offset_of!(SegmentHeader, creator_pid), 4);
    zero(&mut img, offset_of!(SegmentHeader, creator_start_time), 8);
    zero(&mut img, offset_of!(SegmentHeader, created_unix_ns), 8);
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

/// A memfd holding exactly `image`.
fn memfd_with(image: &[u8]) -> Option<OwnedFd> {
    use std::io::Write;
    let fd = rustix::fs::memfd_create("shmring-fuzz", rustix::fs::MemfdFlags::CLOEXEC).ok()?;
    let mut file = std::fs::File::from(fd);
    file.write_all(image).ok()?;
    Some(file.into())
}

/// A second open file description of `fd`'s file, so that a second party holds its
/// liveness lock apart from the first (as another process would).
fn reopen(fd: &OwnedFd) -> Option<OwnedFd> {
    use rustix::fs::{Mode, OFlags};
    rustix::fs::open(
        format!("/proc/self/fd/{}", fd.as_raw_fd()),
        OFlags::RDWR | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ok()
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

/// Most ends of each kind [`mpmc_ops`] keeps at once (the queue allows 64 parties).
const MPMC_MAX_ENDS: usize = 6;
/// How deeply [`mpmc_ops`] nests held grants (claims and reads kept across other ops).
const MPMC_MAX_HELD: usize = 3;

/// Drive one anonymous MPMC queue (2..=16 slots, 1..=64-byte slots, from the first two
/// bytes) with the operations the rest of `data` spells, from a single thread, and
/// check every result against a model of the queue's positions. Only non-waiting
/// calls (`try_*`, zero timeouts), so no input can hang; a panic is a mismatch with the
/// model (a bug), nothing else.
///
/// Each operation is an opcode byte and an argument byte (which end; a message's length
/// and contents take a third): `try_push`, `push_timeout(0)`, `try_pop`,
/// `pop_timeout(0)`, `try_claim` then commit or drop (abort), `try_read` then drop, a
/// claim or a read *held* across the following operations until a "finish" opcode or
/// the end of the input (up to 3 deep, innermost first), 1100 polls of a full or empty
/// queue (the ends' periodic liveness checks), `try_clone`, drop, `into_fd` then
/// `from_fd` (as either kind), `close` from either kind, a change of wait strategy, and
/// a check of `stats`, `len`, `capacity` and `is_closed`.
///
/// The model: published, aborted and still-written claims take positions in order;
/// a producer may claim position `p` when `p` is below the capacity or position
/// `p - capacity` was released; consumers take positions in order, skipping aborted
/// claims, and see nothing past a claim still being written; `Closed` once the queue is
/// closed and every claimed position was taken. A held read's bytes must not change
/// until it is released.
pub fn mpmc_ops(data: &[u8]) {
    use crate::ring::mpmc;
    let mut inp = OpInput { data, pos: 0 };
    let (Some(a), Some(b)) = (inp.byte(), inp.byte()) else {
        return;
    };
    let slots = usize::from(a % 15) + 2;
    let slot_size = usize::from(b % 64) + 1;
    let (p, c) = mpmc::channel(slots, slot_size).expect("create an anonymous MPMC queue");
    let mut h = MpmcHarness {
        producers: vec![Some(p)],
        consumers: vec![Some(c)],
        taken: 0,
        model: MpmcModel {
            cap: slots.next_power_of_two() as u64,
            slot_size,
            base: 0,
            st: std::collections::VecDeque::new(),
            deq: 0,
            closed: false,
        },
        next_msg: 0,
    };
    h.run(&mut inp, 0);
}

/// The operations' bytes.
#[derive(Debug)]
struct OpInput<'a> {
    data: &'a [u8],
    pos: usize,
}

impl OpInput<'_> {
    fn byte(&mut self) -> Option<u8> {
        let b = self.data.get(self.pos).copied();
        self.pos += 1;
        b
    }
}

/// The model's view of one claimed position.
#[derive(Debug, Clone, PartialEq, Eq)]
enum MpmcPos {
    /// Claimed, being written (a held claim).
    Writing,
    /// Published.
    Full(Vec<u8>),
    /// Claimed and aborted: consumers skip it.
    Aborted,
    /// Taken by a consumer that holds it (a held read).
    Reading,
    /// Taken and released: the slot is free for the next lap.
    Released,
}

/// The positions of the queue, as the protocol must keep them.
#[derive(Debug)]
struct MpmcModel {
    cap: u64,
    slot_size: usize,
    /// The first position still in `st` (every position before it is released).
    base: u64,
    /// Positions `base..enq`.
    st: std::collections::VecDeque<MpmcPos>,
    deq: u64,
    closed: bool,
}

impl MpmcModel {
    fn enq(&self) -> u64 {
        self.base + self.st.len() as u64
    }

    fn at(&mut self, pos: u64) -> &mut MpmcPos {
        &mut self.st[(pos - self.base) as usize]
    }

    /// What a non-waiting claim of `len` bytes must return; claims the position if Ok.
    fn claim(&mut self, len: usize) -> Result<u64, crate::ring::mpmc::PushError> {
        use crate::ring::mpmc::PushError;
        if len > self.slot_size {
            return Err(PushError::MessageTooLarge {
                len,
                max: self.slot_size,
            });
        }
        if self.closed {
            return Err(PushError::Closed);
        }
        let enq = self.enq();
        if enq >= self.cap {
            let prev = enq - self.cap;
            if prev >= self.base && self.st[(prev - self.base) as usize] != MpmcPos::Released {
                return Err(PushError::Full);
            }
        }
        self.st.push_back(MpmcPos::Writing);
        Ok(enq)
    }

    /// What a non-waiting take must return; takes the position (as `Reading`) if Ok.
    fn take(&mut self) -> Result<(u64, Vec<u8>), crate::ring::mpmc::PopError> {
        use crate::ring::mpmc::PopError;
        loop {
            let deq = self.deq;
            if deq == self.enq() {
                return Err(if self.closed { PopError::Closed } else { PopError::Empty });
            }
            match std::mem::replace(self.at(deq), MpmcPos::Reading) {
                MpmcPos::Writing => {
                    *self.at(deq) = MpmcPos::Writing;
                    return Err(PopError::Empty);
                }
                MpmcPos::Aborted => {
                    self.deq += 1;
                    self.release(deq);
                }
                MpmcPos::Full(m) => {
                    self.deq += 1;
                    return Ok((deq, m));
                }
                s => unreachable!("model: position {deq} at the dequeue position is {s:?}"),
            }
        }
    }

    fn release(&mut self, pos: u64) {
        *self.at(pos) = MpmcPos::Released;
        while self.base < self.deq && self.st.front() == Some(&MpmcPos::Released) {
            self.st.pop_front();
            self.base += 1;
        }
    }
}

/// The queue's ends and the model, for [`mpmc_ops`].
#[derive(Debug)]
struct MpmcHarness {
    producers: Vec<Option<crate::ring::mpmc::Producer>>,
    consumers: Vec<Option<crate::ring::mpmc::Consumer>>,
    /// Ends taken out of the pools by held grants.
    taken: usize,
    model: MpmcModel,
    next_msg: u32,
}

/// The slot of `pool` that `arg` picks, if it holds an end.
fn pick<T>(pool: &[Option<T>], arg: u8) -> Option<usize> {
    let k = usize::from(arg) % pool.len().max(1);
    pool.get(k).and_then(|e| e.as_ref()).map(|_| k)
}

/// Put `end` into a free slot of `pool` (appending while below the limit).
fn put<T>(pool: &mut Vec<Option<T>>, end: T) {
    match pool.iter().position(Option::is_none) {
        Some(k) => pool[k] = Some(end),
        None if pool.len() < MPMC_MAX_ENDS => pool.push(Some(end)),
        None => drop(end),
    }
}

impl MpmcHarness {
    /// A message of `len` bytes: a running number in its first bytes (so that a
    /// reordering shows), then bytes derived from `seed`.
    fn message(&mut self, len: usize, seed: u8) -> Vec<u8> {
        self.next_msg = self.next_msg.wrapping_add(1);
        let n = self.next_msg.to_le_bytes();
        (0..len)
            .map(|i| {
                if i < 4 {
                    n[i]
                } else {
                    seed.wrapping_add((i as u8).wrapping_mul(31))
                }
            })
            .collect()
    }

    /// A length (sometimes one past the slot size) and contents from the input.
    fn next_message(&mut self, inp: &mut OpInput<'_>) -> Vec<u8> {
        let b = inp.byte().unwrap_or(0);
        let len = usize::from(b) % (self.model.slot_size + 2);
        self.message(len, b)
    }

    fn live_ends(&self) -> usize {
        self.producers.iter().flatten().count() + self.consumers.iter().flatten().count() + self.taken
    }

    /// Run operations until the input ends (`None`) or, when `depth > 0`, a "finish"
    /// opcode (`Some(commit)`) for the innermost held grant.
    fn run(&mut self, inp: &mut OpInput<'_>, depth: usize) -> Option<bool> {
        use crate::ring::mpmc::{Consumer, PopError, Producer, PushError};
        loop {
            if self.live_ends() == 0 {
                // Every end was dropped: the queue is gone.
                return None;
            }
            let op = inp.byte()?;
            let arg = inp.byte().unwrap_or(0);
            let pi = pick(&self.producers, arg);
            let ci = pick(&self.consumers, arg);
            match op % 20 {
                // try_push / push_timeout(0)
                0 | 1 => {
                    let Some(k) = pi else { continue };
                    let msg = self.next_message(inp);
                    let p = self.producers[k].as_mut().expect("picked");
                    let want = self.model.claim(msg.len());
                    let got = if op % 20 == 0 {
                        p.try_push(&msg)
                    } else {
                        p.push_timeout(&msg, Duration::ZERO)
                    };
                    let want = match want {
                        Ok(pos) => {
                            *self.model.at(pos) = MpmcPos::Full(msg);
                            Ok(())
                        }
                        Err(PushError::Full) if op % 20 == 1 => Err(PushError::Timeout),
                        Err(e) => Err(e),
                    };
                    assert_eq!(got, want, "push");
                }
                // try_pop / pop_timeout(0)
                2 | 3 => {
                    let Some(k) = ci else { continue };
                    let c = self.consumers[k].as_mut().expect("picked");
                    let got = if op % 20 == 2 {
                        c.try_pop()
                    } else {
                        c.pop_timeout(Duration::ZERO)
                    };
                    let want = match self.model.take() {
                        Ok((pos, m)) => {
                            self.model.release(pos);
                            Ok(m)
                        }
                        Err(PopError::Empty) if op % 20 == 3 => Err(PopError::Timeout),
                        Err(e) => Err(e),
                    };
                    assert_eq!(got, want, "pop");
                }
                // try_claim, then commit or abort
                4 | 5 => {
                    let Some(k) = pi else { continue };
                    let msg = self.next_message(inp);
                    let want = self.model.claim(msg.len());
                    let p = self.producers[k].as_mut().expect("picked");
                    match (p.try_claim(msg.len()), want) {
                        (Ok(mut g), Ok(pos)) => {
                            assert_eq!(g.len(), msg.len(), "grant length");
                            g.copy_from_slice(&msg);
                            if op % 20 == 4 {
                                g.commit();
                                *self.model.at(pos) = MpmcPos::Full(msg);
                            } else {
                                drop(g);
                                *self.model.at(pos) = MpmcPos::Aborted;
                            }
                        }
                        (got, want) => assert_eq!(got.map(|_| ()).err(), want.err(), "claim"),
                    }
                }
                // try_read, then release
                6 => {
                    let Some(k) = ci else { continue };
                    let c = self.consumers[k].as_mut().expect("picked");
                    match (c.try_read(), self.model.take()) {
                        (Ok(g), Ok((pos, m))) => {
                            assert_eq!(&*g, &m[..], "read");
                            drop(g);
                            self.model.release(pos);
                        }
                        (got, want) => assert_eq!(got.map(|g| g.to_vec()).err(), want.err(), "read"),
                    }
                }
                // A claim held across the following operations.
                7 => {
                    let Some(k) = pi.filter(|_| depth < MPMC_MAX_HELD) else {
                        continue;
                    };
                    let msg = self.next_message(inp);
                    let want = self.model.claim(msg.len());
                    let mut p = self.producers[k].take().expect("picked");
                    let finish = match (p.try_claim(msg.len()), want) {
                        (Ok(mut g), Ok(pos)) => {
                            g.copy_from_slice(&msg);
                            self.taken += 1;
                            let finish = self.run(inp, depth + 1);
                            self.taken -= 1;
                            if finish.unwrap_or(true) {
                                g.commit();
                                *self.model.at(pos) = MpmcPos::Full(msg);
                            } else {
                                drop(g);
                                *self.model.at(pos) = MpmcPos::Aborted;
                            }
                            Some(finish)
                        }
                        (got, want) => {
                            assert_eq!(got.map(|_| ()).err(), want.err(), "held claim");
                            None
                        }
                    };
                    self.producers[k] = Some(p);
                    if finish == Some(None) {
                        // The input ended inside: finish the outer grants too.
                        return None;
                    }
                }
                // A read held across the following operations.
                8 => {
                    let Some(k) = ci.filter(|_| depth < MPMC_MAX_HELD) else {
                        continue;
                    };
                    let mut c = self.consumers[k].take().expect("picked");
                    let finish = match (c.try_read(), self.model.take()) {
                        (Ok(g), Ok((pos, m))) => {
                            assert_eq!(&*g, &m[..], "held read");
                            self.taken += 1;
                            let finish = self.run(inp, depth + 1);
                            self.taken -= 1;
                            assert_eq!(&*g, &m[..], "a held read changed under its reader");
                            drop(g);
                            self.model.release(pos);
                            Some(finish)
                        }
                        (got, want) => {
                            assert_eq!(got.map(|g| g.to_vec()).err(), want.err(), "held read");
                            None
                        }
                    };
                    self.consumers[k] = Some(c);
                    if finish == Some(None) {
                        return None;
                    }
                }
                // Finish the innermost held grant (a claim commits when `arg` is even).
                9 => {
                    if depth > 0 {
                        return Some(arg % 2 == 0);
                    }
                }
                // Poll a full (empty) queue past the ends' liveness-check period.
                10 => {
                    if arg % 2 == 0 {
                        let Some(k) = pi else { continue };
                        let want = match self.model.claim(1) {
                            Ok(pos) => {
                                // Not full: an ordinary push.
                                let m = self.message(1, arg);
                                let got = self.producers[k].as_mut().expect("picked").try_push(&m);
                                *self.model.at(pos) = MpmcPos::Full(m);
                                assert_eq!(got, Ok(()), "push");
                                continue;
                            }
                            Err(e) => e,
                        };
                        let p = self.producers[k].as_mut().expect("picked");
                        for _ in 0..1100 {
                            assert_eq!(p.try_push(b"x"), Err(want), "repeated push");
                        }
                    } else {
                        let Some(k) = ci else { continue };
                        let c = self.consumers[k].as_mut().expect("picked");
                        for _ in 0..1100 {
                            let want = self.model.take();
                            let got = c.try_pop();
                            let ended = want.is_err();
                            let want = want.map(|(pos, m)| {
                                self.model.release(pos);
                                m
                            });
                            assert_eq!(got, want, "repeated pop");
                            if !ended {
                                break;
                            }
                        }
                    }
                }
                11 => {
                    if let Some(k) = pi {
                        let p = self.producers[k].as_ref().expect("picked").try_clone().expect("clone");
                        put(&mut self.producers, p);
                    }
                }
                12 => {
                    if let Some(k) = ci {
                        let c = self.consumers[k].as_ref().expect("picked").try_clone().expect("clone");
                        put(&mut self.consumers, c);
                    }
                }
                13 => {
                    if let Some(k) = pi {
                        self.producers[k] = None;
                    }
                }
                14 => {
                    if let Some(k) = ci {
                        self.consumers[k] = None;
                    }
                }
                15 => {
                    match (pi, ci) {
                        (Some(k), _) if arg % 2 == 0 => self.producers[k].as_ref().expect("picked").close(),
                        (_, Some(k)) => self.consumers[k].as_ref().expect("picked").close(),
                        (Some(k), None) => self.producers[k].as_ref().expect("picked").close(),
                        (None, None) => continue,
                    }
                    self.model.closed = true;
                }
                // Hand an end through its descriptor, as the same or the other kind.
                16 => {
                    let fd = match (pi, ci) {
                        (Some(k), _) if arg & 2 == 0 => self.producers[k].take().expect("picked").into_fd(),
                        (_, Some(k)) => self.consumers[k].take().expect("picked").into_fd(),
                        (Some(k), None) => self.producers[k].take().expect("picked").into_fd(),
                        (None, None) => continue,
                    };
                    if arg & 4 == 0 {
                        put(&mut self.producers, Producer::from_fd(fd).expect("from_fd"));
                    } else {
                        put(&mut self.consumers, Consumer::from_fd(fd).expect("from_fd"));
                    }
                }
                17 => {
                    let w = match arg % 3 {
                        0 => WaitStrategy::Spin,
                        1 => WaitStrategy::default(),
                        _ => WaitStrategy::Blocking,
                    };
                    if let Some(k) = pi {
                        self.producers[k].as_mut().expect("picked").set_wait_strategy(w);
                    }
                    if let Some(k) = ci {
                        self.consumers[k].as_mut().expect("picked").set_wait_strategy(w);
                    }
                }
                _ => {
                    let m = &self.model;
                    let s = match (pi, ci) {
                        (Some(k), _) => {
                            let p = self.producers[k].as_ref().expect("picked");
                            assert_eq!(p.is_closed(), m.closed, "is_closed");
                            assert_eq!(p.capacity() as u64, m.cap, "capacity");
                            assert_eq!(p.slot_size(), m.slot_size, "slot_size");
                            assert_eq!(p.len() as u64, (m.enq() - m.deq).min(m.cap), "len");
                            p.stats()
                        }
                        (None, Some(k)) => {
                            let c = self.consumers[k].as_ref().expect("picked");
                            assert_eq!(c.len() as u64, (m.enq() - m.deq).min(m.cap), "len");
                            c.stats()
                        }
                        (None, None) => continue,
                    };
                    assert_eq!(
                        (s.slots, s.slot_size, s.pushed, s.popped, s.lost),
                        (m.cap, m.slot_size as u64, m.enq(), m.deq, 0),
                        "stats"
                    );
                    assert_eq!(s.parties as usize, self.live_ends(), "stats.parties");
                }
            }
        }
    }
}

/// Feed `data` to a connection's frame reassembler (`connection/frame.rs`) and decode
/// every message it completes with the codec. Never panics on any input; asserts the
/// reassembler's promises.
///
/// Input: byte 0 picks the mode (bit 0) and the receiver's message limit (bits 1-7,
/// `s`: `s` bytes for `s < 64`, else `2^min(s - 64, 20)` bytes); byte 1 is a parameter
/// of the mode; the rest is items, each a 16-bit little-endian length and that many
/// bytes (cut at the end of the input).
///
/// - **Raw frames** (bit 0 clear): each item is one frame from a hostile peer; bit 0 of
///   byte 1 starts the reassembler as a handed-over end (skipping continuation frames).
///   Checked: no buffer ever exceeds the limit, a completed message is within it, a
///   `MessageTooLarge` names a length over it, and after a `BadFrame` every frame gets
///   the same error.
/// - **Round trip** (bit 0 set): each item is a message, framed by the sender's own
///   framer into a record of `10 + (byte 1 & 127)` bytes, or chunks of that size (half
///   of it if bit 7 of byte 1 is set); bit 15 of the length makes the sender
///   give up after the first frame (and send ABORT). Checked: every message within the
///   limit comes out exactly once and intact, an aborted one never, and one over the
///   limit is `MessageTooLarge` and skipped.
pub fn frames(data: &[u8]) {
    use crate::connection::ConnError;
    use crate::connection::frame::{ABORT_FRAME, Framer, MIN_RECORD, Reassembler};
    let (Some(&mode), Some(&param)) = (data.first(), data.get(1)) else {
        return;
    };
    let sel = usize::from(mode >> 1);
    let max = if sel < 64 { sel } else { 1 << (sel - 64).min(20) };
    let mut items = Vec::new();
    let mut rest = &data[2..];
    while let [lo, hi, tail @ ..] = rest {
        let word = u16::from_le_bytes([*lo, *hi]);
        let n = usize::from(word & 0x7fff).min(tail.len());
        items.push((word & 0x8000 != 0, &tail[..n]));
        rest = &tail[n..];
    }
    let mut out = Vec::new();
    if mode & 1 == 0 {
        let mut r = if param & 1 == 1 {
            Reassembler::resyncing(max)
        } else {
            Reassembler::new(max)
        };
        let mut broken = None;
        for &(_, frame) in &items {
            let res = r.push(frame, &mut out);
            assert!(r.partial_capacity() <= max, "reassembly buffer past the limit");
            if let Some(e) = &broken {
                assert_eq!(res.as_ref(), Err(e), "a broken stream must stay broken");
                continue;
            }
            match res {
                Ok(Some(n)) => {
                    assert!(
                        n == out.len() && n <= max && out.capacity() <= max,
                        "message past the limit"
                    );
                    decode_all(&out);
                }
                Ok(None) => {}
                Err(ConnError::MessageTooLarge { len, max: m }) => assert!(m == max && len > max as u64),
                Err(e @ ConnError::BadFrame(_)) => {
                    let _ = e.to_string();
                    broken = Some(e);
                }
                Err(e) => panic!("unexpected error {e:?}"),
            }
        }
        return;
    }
    let rec = MIN_RECORD + usize::from(param & 0x7f);
    let chunk = if param & 0x80 != 0 { rec / 2 } else { rec };
    let mut r = Reassembler::new(max);
    let mut buf = Vec::new();
    for &(abort, msg) in &items {
        let mut framer = Framer::new(msg.len(), rec, chunk).peekable();
        let mut first = true;
        while let Some(f) = framer.next() {
            buf.resize(f.len(), 0);
            f.write(msg, &mut buf);
            let res = r.push(&buf, &mut out);
            assert!(r.partial_capacity() <= max, "reassembly buffer past the limit");
            let last = framer.peek().is_none();
            if abort && first && !last {
                assert!(matches!(res, Ok(None) | Err(ConnError::MessageTooLarge { .. })));
                assert_eq!(r.push(&ABORT_FRAME, &mut out), Ok(None), "ABORT of a started message");
                break;
            }
            if msg.len() > max {
                let want = if first {
                    Err(ConnError::MessageTooLarge {
                        len: msg.len() as u64,
                        max,
                    })
                } else {
                    Ok(None)
                };
                assert_eq!(res, want, "a message over the limit is refused, then skipped");
            } else if last {
                assert_eq!(res, Ok(Some(msg.len())), "the last frame completes the message");
                assert!(out == msg, "the message comes out intact");
                decode_all(&out);
            } else {
                assert_eq!(res, Ok(None), "a frame before the last completes nothing");
            }
            first = false;
        }
    }
}

/// Decode `bytes` as a few types; errors are fine, panics are not.
pub(crate) fn decode_all(bytes: &[u8]) {
    use crate::codec::{decode, decode_pod};
    #[derive(serde::Deserialize)]
    #[allow(dead_code)]
    enum Shape {
        Unit,
        Pair(u32, i64),
        Named {
            text: String,
            list: Vec<(u16, bool)>,
            opt: Option<(char, [u8; 2])>,
        },
    }
    let _ = decode::<String>(bytes);
    let _ = decode::<Vec<u64>>(bytes);
    let _ = decode::<(u8, Option<String>, Vec<f64>)>(bytes);
    let _ = decode::<Shape>(bytes);
    let _ = decode::<std::collections::BTreeMap<String, Vec<u8>>>(bytes);
    let _ = decode_pod::<[u32; 3]>(bytes);
}
