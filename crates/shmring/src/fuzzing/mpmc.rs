//! The `mpmc_ops` fuzz target: one MPMC queue driven by arbitrary operations, checked
//! against a model of its positions.

use crate::WaitStrategy;
use std::time::Duration;

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
