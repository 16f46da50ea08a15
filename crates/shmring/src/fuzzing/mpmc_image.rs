//! The `mpmc_image` fuzz target, and the builder of its seed images.
//!
//! [`mpmc_image`] treats its input as the bytes of a whole MPMC queue segment file (the
//! 128-byte segment header, the queue's control block, then the slots), puts them in a
//! memfd, opens a producer and a consumer on it through the real path
//! (`Producer::from_fd_with`, `Consumer::from_fd_with`) and drives them: non-waiting
//! pushes and pops, enough of them to reach the ends' periodic checks (every 1024
//! `Full`/`Empty` results: the liveness and impossible-state checks of
//! [`crate::ring::mpmc`]), and timed pushes and pops. Nothing may panic, read out of
//! bounds, or wait past its timeout (checked with a generous margin: a wait that ignores
//! its deadline, not a slow one). The seeds ([`valid_mpmc_image`] patched with
//! [`MpmcField`]) hold each impossible state the queue's module docs list.

use super::image::{MAX_IMAGE, memfd_with, read_image, reopen};
use crate::WaitStrategy;
use crate::ring::mpmc::{self, Consumer, PopError, Producer, PushError, QueueOptions};
use crate::shm::{HEADER_SIZE, SegmentOptions};
use std::time::{Duration, Instant};

/// Where the queue's area starts in an (untyped) segment.
const AREA: usize = HEADER_SIZE;
/// Bytes of one party-table entry, and where the table starts in the area.
const PARTY: usize = 32;
const PARTIES: usize = 5 * 128;
/// Where the parties' intent lines (128 bytes each) start in the area.
const INTENTS: usize = PARTIES + mpmc::MAX_PARTIES * PARTY;
/// Where the slots start in the area.
const SLOTS: usize = INTENTS + mpmc::MAX_PARTIES * 128;
/// Slots and slot size of [`valid_mpmc_image`]: 4 slots of 16 bytes, 64-byte stride.
pub const IMAGE_SLOTS: u64 = 4;
const IMAGE_SLOT_SIZE: usize = 16;
const STRIDE: usize = 64;
/// How long the timed calls wait, and how far past it a call may return before it
/// counts as a wait that ignored its deadline.
const TIMED: Duration = Duration::from_millis(2);
const MARGIN: Duration = Duration::from_secs(5);
/// Non-waiting calls per drive: past 1024, so the periodic checks run.
const POLLS: usize = 1100;

/// A word of an MPMC image that [`mpmc_patch`] addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MpmcField {
    /// The enqueue position (u64).
    Enq,
    /// The dequeue position (u64).
    Deq,
    /// The `closed` word (u32).
    Closed,
    /// Party `i`'s role (u32; 0 free, 1 producer, 2 consumer).
    Role(usize),
    /// Party `i`'s generation (u32).
    Generation(usize),
    /// Party `i`'s intent word (u64: the position it claims, or `u64::MAX`).
    Intent(usize),
    /// Slot `i`'s sequence word (u64: lap, owner, state; see `mpmc::slot`).
    Seq(u64),
    /// Slot `i`'s length word (u64).
    Len(u64),
}

impl MpmcField {
    fn at(self) -> (usize, usize) {
        match self {
            MpmcField::Enq => (AREA, 8),
            MpmcField::Deq => (AREA + 128, 8),
            MpmcField::Closed => (AREA + 4 * 128, 4),
            MpmcField::Role(i) => (AREA + PARTIES + i * PARTY, 4),
            MpmcField::Generation(i) => (AREA + PARTIES + i * PARTY + 4, 4),
            MpmcField::Intent(i) => (AREA + INTENTS + i * 128, 8),
            MpmcField::Seq(i) => (AREA + SLOTS + i as usize * STRIDE, 8),
            MpmcField::Len(i) => (AREA + SLOTS + i as usize * STRIDE + 8, 8),
        }
    }
}

/// The value of `f` in `image` (little-endian; bytes past the end read as zero).
pub fn mpmc_field(image: &[u8], f: MpmcField) -> u64 {
    let (off, width) = f.at();
    super::image::get(image, off, width)
}

/// Store `value` (truncated to the field's width) into `f` of `image`, if it fits.
pub fn mpmc_patch(image: &mut [u8], f: MpmcField, value: u64) {
    let (off, width) = f.at();
    super::image::put(image, off, width, value);
}

/// A valid image of a 4-slot queue of 16-byte slots after `taken` messages were pushed
/// and popped and `queued` more pushed (`queued <= 4`), no party attached. Written by
/// the real ends; identities and times zeroed so the bytes are the same on every run.
pub fn valid_mpmc_image(taken: usize, queued: usize) -> Vec<u8> {
    let opts = QueueOptions::new().segment(SegmentOptions::new().asymmetric_fences(false));
    let (mut p, mut c) =
        mpmc::channel_with(IMAGE_SLOTS as usize, IMAGE_SLOT_SIZE, &opts).expect("create an anonymous queue");
    for i in 0..taken + queued {
        p.try_push(&[i as u8; 5]).expect("fits");
        if i < taken {
            c.try_pop().expect("queued");
        }
    }
    drop(c);
    let fd = p.into_fd();
    let mut img = read_image(fd);
    for i in 0..mpmc::MAX_PARTIES {
        // pid (4 bytes at +8) and start time (8 bytes at +16).
        img[AREA + PARTIES + i * PARTY + 8..][..4].fill(0);
        img[AREA + PARTIES + i * PARTY + 16..][..8].fill(0);
    }
    img
}

/// Open `data` as an MPMC queue segment and drive it. Never panics, reads out of
/// bounds, or waits past a timeout, whatever `data` holds.
pub fn mpmc_image(data: &[u8]) {
    let data = &data[..data.len().min(MAX_IMAGE)];
    let Some(fd) = memfd_with(data) else {
        return;
    };
    let second = reopen(&fd);
    let opts = QueueOptions::new()
        .wait(WaitStrategy::Spin)
        .segment(SegmentOptions::new().open_timeout(Duration::ZERO));
    let Ok(mut p) = Producer::from_fd_with(fd, &opts) else {
        return;
    };
    let Some(Ok(mut c)) = second.map(|fd| Consumer::from_fd_with(fd, &opts)) else {
        return;
    };
    // The last byte picks the wait strategy of the timed calls.
    let strategy = match data.last().copied().unwrap_or(0) % 3 {
        0 => WaitStrategy::Spin,
        1 => WaitStrategy::Blocking,
        _ => WaitStrategy::default(),
    };
    p.set_wait_strategy(strategy);
    c.set_wait_strategy(strategy);
    drive(&mut p, &mut c);
}

/// Pops until anything but a message (at most [`POLLS`] times), pushes likewise, each
/// followed by a timed call; then once more after the queue was closed.
fn drive(p: &mut Producer, c: &mut Consumer) {
    let msg = [0x5a; IMAGE_SLOT_SIZE];
    let max = p.slot_size();
    for round in 0..2 {
        for _ in 0..POLLS {
            match c.try_pop() {
                Ok(m) => assert!(m.len() <= max, "a message longer than a slot"),
                Err(PopError::Empty | PopError::Lost) => {}
                Err(_) => break,
            }
        }
        timed_pop(c);
        for _ in 0..POLLS {
            match p.try_push(&msg[..p.slot_size().min(msg.len())]) {
                Ok(()) | Err(PushError::Full) => {}
                Err(_) => break,
            }
        }
        timed_push(p, &msg);
        if round == 0 {
            p.close();
        }
    }
}

fn timed_pop(c: &mut Consumer) {
    let t = Instant::now();
    let _ = c.pop_timeout(TIMED);
    assert!(t.elapsed() < TIMED + MARGIN, "pop_timeout waited past its timeout");
}

fn timed_push(p: &mut Producer, msg: &[u8]) {
    let t = Instant::now();
    let _ = p.push_timeout(&msg[..p.slot_size().min(msg.len())], TIMED);
    assert!(t.elapsed() < TIMED + MARGIN, "push_timeout waited past its timeout");
}

/// What [`wait_results`] reports: the timed pop's and the timed push's results.
#[cfg(test)]
pub(crate) type WaitResults = (Result<Vec<u8>, PopError>, Result<(), PushError>);

/// Drive an image's ends with waits long enough to reach the liveness tick (for the
/// seed corpus's tests: too slow for fuzzing), and return what the first timed pop and
/// push reported.
#[cfg(test)]
pub(crate) fn wait_results(image: &[u8]) -> Option<WaitResults> {
    let fd = memfd_with(image)?;
    let second = reopen(&fd)?;
    let opts = QueueOptions::new().segment(SegmentOptions::new().open_timeout(Duration::ZERO));
    let mut p = Producer::from_fd_with(fd, &opts).ok()?;
    let mut c = Consumer::from_fd_with(second, &opts).ok()?;
    let wait = Duration::from_millis(300);
    let t = Instant::now();
    let popped = c.pop_timeout(wait);
    assert!(t.elapsed() < wait + MARGIN);
    let t = Instant::now();
    let pushed = p.push_timeout(b"x", wait);
    assert!(t.elapsed() < wait + MARGIN);
    Some((popped, pushed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_image_round_trips() {
        let img = valid_mpmc_image(5, 2);
        assert_eq!(mpmc_field(&img, MpmcField::Enq), 7);
        assert_eq!(mpmc_field(&img, MpmcField::Deq), 5);
        assert_eq!(img.len(), AREA + SLOTS + IMAGE_SLOTS as usize * STRIDE);
        let (popped, pushed) = wait_results(&img).expect("opens");
        assert_eq!(popped, Ok(vec![5; 5]));
        assert_eq!(pushed, Ok(()));
    }

    #[test]
    fn junk_does_not_panic() {
        for len in [0, 1, 127, 128, 129, 2000, 3000] {
            mpmc_image(&vec![0xa5; len]);
            mpmc_image(&vec![0; len]);
        }
    }
}
