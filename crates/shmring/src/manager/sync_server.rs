//! The server side of the synchronization objects: queue, rlock, semaphore, event,
//! value, barrier and condition.
//!
//! Each object is a state behind one mutex with one condition variable; every change
//! that can end a wait does `notify_all` (waiters re-check their own condition). A
//! request waits at most its `wait_ms`, in naps of [`NAP`] so that it sees the
//! server's `stop` flag; a longer wait is several requests (the client repeats them,
//! `slices.rs`'s `SLICE`). An owner or a party is a connection (its id): a wait that
//! spans requests is per-connection state kept in the object (a barrier's arrivals, a
//! condition's waiters), so a repeated request continues the same wait, and
//! [`SyncObject::connection_ended`] cleans up after a connection that ends: it releases
//! the rlock or the condition's lock it held, leaves the condition's waiters, and
//! breaks a barrier it was waiting at.

use super::protocol::{Reply, SyncInit, SyncOp};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// The longest single sleep of a waiting request: how late it sees a shutdown.
const NAP: Duration = Duration::from_millis(100);

/// A re-entrant lock's owner (a connection) and depth.
#[derive(Default)]
struct Owned {
    owner: Option<u64>,
    count: u32,
}

impl Owned {
    fn free_for(&self, conn: u64) -> bool {
        self.owner.is_none_or(|o| o == conn)
    }

    fn take(&mut self, conn: u64) {
        self.owner = Some(conn);
        self.count += 1;
    }

    /// One level; whether the lock became free (`None`: `conn` does not hold it).
    fn release(&mut self, conn: u64) -> Option<bool> {
        if self.owner != Some(conn) {
            return None;
        }
        self.count -= 1;
        if self.count == 0 {
            self.owner = None;
        }
        Some(self.owner.is_none())
    }
}

/// How a barrier wait ended for a connection that had not come back for the result.
#[derive(Clone, Copy)]
enum Outcome {
    Arrived(u64),
    Broken,
}

struct BarrierState {
    parties: u32,
    broken: bool,
    /// The connections waiting in the current cycle, with their arrival index.
    waiting: HashMap<u64, u64>,
    /// Waits that ended (passed or broken) and whose connection has not yet been told.
    ended: HashMap<u64, Outcome>,
}

impl BarrierState {
    /// End every wait in progress with `outcome(index)`.
    fn end_all(&mut self, outcome: impl Fn(u64) -> Outcome) {
        for (c, i) in self.waiting.drain() {
            self.ended.insert(c, outcome(i));
        }
    }

    fn do_break(&mut self) {
        self.broken = true;
        self.end_all(|_| Outcome::Broken);
    }
}

#[derive(Default)]
struct ConditionState {
    lock: Owned,
    /// Waiting for a notify, oldest first: (connection, its lock depth to restore).
    waiters: VecDeque<(u64, u32)>,
    /// Notified (true) or given up (false), waiting to re-take the lock: connection ->
    /// (depth, result).
    retaking: HashMap<u64, (u32, bool)>,
}

enum State {
    Queue { items: VecDeque<Vec<u8>>, maxsize: u64 },
    RLock(Owned),
    Semaphore { value: u64, initial: u64, bounded: bool },
    Event(bool),
    Value { bytes: Vec<u8>, version: u64 },
    Barrier(BarrierState),
    Condition(ConditionState),
}

/// A queue, rlock, semaphore, event, value, barrier or condition on the server.
pub(super) struct SyncObject {
    state: Mutex<State>,
    cv: Condvar,
}

fn ms(wait_ms: u64) -> Duration {
    Duration::from_millis(wait_ms)
}

fn wrong(what: &str) -> Reply {
    Reply::BadRequest(format!("not an operation of a {what}"))
}

impl SyncObject {
    /// The object `init` describes; `Err` for parameters that make no object.
    pub(super) fn new(init: SyncInit) -> Result<Self, String> {
        let state = match init {
            SyncInit::Queue { maxsize } => State::Queue {
                items: VecDeque::new(),
                maxsize,
            },
            SyncInit::RLock => State::RLock(Owned::default()),
            SyncInit::Semaphore { value, bounded } => State::Semaphore {
                value,
                initial: value,
                bounded,
            },
            SyncInit::Event => State::Event(false),
            SyncInit::Value(bytes) => State::Value { bytes, version: 0 },
            SyncInit::Barrier { parties: 0 } => return Err("a barrier needs at least one party".into()),
            SyncInit::Barrier { parties } => State::Barrier(BarrierState {
                parties,
                broken: false,
                waiting: HashMap::new(),
                ended: HashMap::new(),
            }),
            SyncInit::Condition => State::Condition(ConditionState::default()),
        };
        Ok(SyncObject {
            state: Mutex::new(state),
            cv: Condvar::new(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Every operation leaves the state consistent before anything that can panic.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Wait (at most `wait`, and not past a shutdown) until `ready` holds; the guard,
    /// and whether it holds.
    fn wait_until<'a>(
        &'a self,
        mut g: MutexGuard<'a, State>,
        stop: &AtomicBool,
        wait: Duration,
        mut ready: impl FnMut(&mut State) -> bool,
    ) -> (MutexGuard<'a, State>, bool) {
        let deadline = Instant::now().checked_add(wait);
        loop {
            if ready(&mut g) {
                return (g, true);
            }
            let left = deadline.map_or(NAP, |d| d.saturating_duration_since(Instant::now()));
            if left.is_zero() || stop.load(Ordering::Relaxed) {
                return (g, false);
            }
            g = self
                .cv
                .wait_timeout(g, left.min(NAP))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Apply `op` for connection `conn`.
    pub(super) fn apply(&self, op: SyncOp, conn: u64, stop: &AtomicBool) -> Reply {
        let g = self.lock();
        match &*g {
            State::Queue { .. } => self.queue(g, op, stop),
            State::RLock(_) => self.rlock(g, op, conn, stop),
            State::Semaphore { .. } => self.semaphore(g, op, stop),
            State::Event(_) => self.event(g, op, stop),
            State::Value { .. } => Self::value(g, op),
            State::Barrier(_) => self.barrier(g, op, conn, stop),
            State::Condition(_) => self.condition(g, op, conn, stop),
        }
    }

    fn queue(&self, g: MutexGuard<'_, State>, op: SyncOp, stop: &AtomicBool) -> Reply {
        let room = |s: &mut State| matches!(s, State::Queue { items, maxsize } if *maxsize == 0 || (items.len() as u64) < *maxsize);
        let some = |s: &mut State| matches!(s, State::Queue { items, .. } if !items.is_empty());
        match op {
            SyncOp::QueuePut { item, wait_ms } => {
                let (mut g, ok) = self.wait_until(g, stop, ms(wait_ms), room);
                if let (true, State::Queue { items, .. }) = (ok, &mut *g) {
                    items.push_back(item);
                    self.cv.notify_all();
                }
                Reply::Bool(ok)
            }
            SyncOp::QueueGet { wait_ms } => {
                let (mut g, ok) = self.wait_until(g, stop, ms(wait_ms), some);
                match (ok, &mut *g) {
                    (true, State::Queue { items, .. }) => {
                        let item = items.pop_front();
                        self.cv.notify_all();
                        Reply::Value(item)
                    }
                    _ => Reply::Value(None),
                }
            }
            SyncOp::QueueLen => match &*g {
                State::Queue { items, .. } => Reply::Len(items.len() as u64),
                _ => wrong("queue"),
            },
            SyncOp::QueueFull => {
                let mut g = g;
                Reply::Bool(!room(&mut g))
            }
            _ => wrong("queue"),
        }
    }

    fn rlock(&self, g: MutexGuard<'_, State>, op: SyncOp, conn: u64, stop: &AtomicBool) -> Reply {
        match op {
            SyncOp::Acquire { wait_ms } => {
                let (mut g, ok) = self.wait_until(
                    g,
                    stop,
                    ms(wait_ms),
                    |s| matches!(s, State::RLock(o) if o.free_for(conn)),
                );
                if let (true, State::RLock(o)) = (ok, &mut *g) {
                    o.take(conn);
                }
                Reply::Bool(ok)
            }
            SyncOp::Release => {
                let mut g = g;
                let State::RLock(o) = &mut *g else {
                    return wrong("rlock");
                };
                match o.release(conn) {
                    None => Reply::NotOwner,
                    Some(freed) => {
                        if freed {
                            self.cv.notify_all();
                        }
                        Reply::Ok
                    }
                }
            }
            _ => wrong("rlock"),
        }
    }

    fn semaphore(&self, g: MutexGuard<'_, State>, op: SyncOp, stop: &AtomicBool) -> Reply {
        match op {
            SyncOp::SemAcquire { wait_ms } => {
                let (mut g, ok) = self.wait_until(
                    g,
                    stop,
                    ms(wait_ms),
                    |s| matches!(s, State::Semaphore { value, .. } if *value > 0),
                );
                if let (true, State::Semaphore { value, .. }) = (ok, &mut *g) {
                    *value -= 1;
                }
                Reply::Bool(ok)
            }
            SyncOp::SemRelease => {
                let mut g = g;
                let State::Semaphore {
                    value,
                    initial,
                    bounded,
                } = &mut *g
                else {
                    return wrong("semaphore");
                };
                if *bounded && *value >= *initial {
                    return Reply::OverReleased;
                }
                *value = value.saturating_add(1);
                self.cv.notify_all();
                Reply::Ok
            }
            SyncOp::SemValue => match &*g {
                State::Semaphore { value, .. } => Reply::Len(*value),
                _ => wrong("semaphore"),
            },
            _ => wrong("semaphore"),
        }
    }

    fn event(&self, g: MutexGuard<'_, State>, op: SyncOp, stop: &AtomicBool) -> Reply {
        let mut g = g;
        match op {
            SyncOp::EventSet => {
                *g = State::Event(true);
                self.cv.notify_all();
                Reply::Ok
            }
            SyncOp::EventClear => {
                *g = State::Event(false);
                Reply::Ok
            }
            SyncOp::EventIsSet => Reply::Bool(matches!(*g, State::Event(true))),
            SyncOp::EventWait { wait_ms } => {
                let (_g, set) = self.wait_until(g, stop, ms(wait_ms), |s| matches!(s, State::Event(true)));
                Reply::Bool(set)
            }
            _ => wrong("event"),
        }
    }

    fn value(mut g: MutexGuard<'_, State>, op: SyncOp) -> Reply {
        let State::Value { bytes, version } = &mut *g else {
            return wrong("value");
        };
        match op {
            SyncOp::ValueGet => Reply::Versioned(Some((bytes.clone(), *version))),
            SyncOp::ValueSet(new) => {
                *bytes = new;
                *version += 1;
                Reply::Ok
            }
            SyncOp::ValueCas { expected, new } => {
                if *version != expected {
                    return Reply::Cas {
                        done: false,
                        current: Some((bytes.clone(), *version)),
                    };
                }
                *bytes = new;
                *version += 1;
                Reply::Cas {
                    done: true,
                    current: None,
                }
            }
            _ => wrong("value"),
        }
    }

    fn barrier(&self, g: MutexGuard<'_, State>, op: SyncOp, conn: u64, stop: &AtomicBool) -> Reply {
        let mut g = g;
        let State::Barrier(b) = &mut *g else {
            return wrong("barrier");
        };
        match op {
            SyncOp::BarrierWait { wait_ms, last } => {
                if !b.waiting.contains_key(&conn) && !b.ended.contains_key(&conn) {
                    // A new arrival.
                    if b.broken {
                        return Reply::Broken;
                    }
                    let index = b.waiting.len() as u64;
                    b.waiting.insert(conn, index);
                    if b.waiting.len() as u64 == u64::from(b.parties) {
                        b.end_all(Outcome::Arrived);
                        self.cv.notify_all();
                    }
                }
                let (mut g, ended) = self.wait_until(
                    g,
                    stop,
                    ms(wait_ms),
                    |s| matches!(s, State::Barrier(b) if b.ended.contains_key(&conn)),
                );
                let State::Barrier(b) = &mut *g else {
                    return wrong("barrier");
                };
                if !ended && last && !stop.load(Ordering::Relaxed) {
                    // The caller's timeout: break the barrier, as Python does.
                    b.do_break();
                    self.cv.notify_all();
                }
                match b.ended.remove(&conn) {
                    Some(Outcome::Arrived(i)) => Reply::Arrived(i),
                    Some(Outcome::Broken) => Reply::Broken,
                    None => Reply::Pending,
                }
            }
            SyncOp::BarrierAbort => {
                b.do_break();
                self.cv.notify_all();
                Reply::Ok
            }
            SyncOp::BarrierReset => {
                b.end_all(|_| Outcome::Broken);
                b.broken = false;
                self.cv.notify_all();
                Reply::Ok
            }
            SyncOp::BarrierParties => Reply::Len(u64::from(b.parties)),
            SyncOp::BarrierWaiting => Reply::Len(b.waiting.len() as u64),
            SyncOp::BarrierBroken => Reply::Bool(b.broken),
            _ => wrong("barrier"),
        }
    }

    fn condition(&self, g: MutexGuard<'_, State>, op: SyncOp, conn: u64, stop: &AtomicBool) -> Reply {
        let mut g = g;
        let State::Condition(c) = &mut *g else {
            return wrong("condition");
        };
        match op {
            SyncOp::Acquire { wait_ms } => {
                let (mut g, ok) = self.wait_until(
                    g,
                    stop,
                    ms(wait_ms),
                    |s| matches!(s, State::Condition(c) if c.lock.free_for(conn)),
                );
                if let (true, State::Condition(c)) = (ok, &mut *g) {
                    c.lock.take(conn);
                }
                Reply::Bool(ok)
            }
            SyncOp::Release => match c.lock.release(conn) {
                None => Reply::NotOwner,
                Some(freed) => {
                    if freed {
                        self.cv.notify_all();
                    }
                    Reply::Ok
                }
            },
            SyncOp::CondNotify { n } => {
                if c.lock.owner != Some(conn) {
                    return Reply::NotOwner;
                }
                for _ in 0..n {
                    let Some((w, depth)) = c.waiters.pop_front() else { break };
                    c.retaking.insert(w, (depth, true));
                }
                self.cv.notify_all();
                Reply::Ok
            }
            SyncOp::CondWait { wait_ms, last } => {
                let waiting = c.waiters.iter().any(|&(w, _)| w == conn);
                if !waiting && !c.retaking.contains_key(&conn) {
                    // The first request of this wait: release the lock entirely.
                    if c.lock.owner != Some(conn) {
                        return Reply::NotOwner;
                    }
                    c.waiters.push_back((conn, c.lock.count));
                    c.lock = Owned::default();
                    self.cv.notify_all();
                }
                let can_retake = |c: &ConditionState| c.retaking.contains_key(&conn) && c.lock.owner.is_none();
                let (mut g, ready) = self.wait_until(
                    g,
                    stop,
                    ms(wait_ms),
                    |s| matches!(s, State::Condition(c) if can_retake(c)),
                );
                let State::Condition(c) = &mut *g else {
                    return wrong("condition");
                };
                if !ready && last && !stop.load(Ordering::Relaxed) {
                    // The caller's timeout: no more waiting for a notify, only for the lock.
                    if let Some(i) = c.waiters.iter().position(|&(w, _)| w == conn) {
                        let (_, depth) = c.waiters.remove(i).unwrap_or((conn, 1));
                        c.retaking.insert(conn, (depth, false));
                    }
                }
                if !can_retake(c) {
                    return Reply::Pending;
                }
                let (depth, notified) = c.retaking.remove(&conn).unwrap_or((1, false));
                c.lock = Owned {
                    owner: Some(conn),
                    count: depth,
                };
                Reply::Bool(notified)
            }
            _ => wrong("condition"),
        }
    }

    /// Connection `conn` ended: release what it held, end its waits (a barrier it was
    /// waiting at breaks).
    pub(super) fn connection_ended(&self, conn: u64) {
        let mut g = self.lock();
        match &mut *g {
            State::RLock(o) if o.owner == Some(conn) => *o = Owned::default(),
            State::Barrier(b) => {
                b.ended.remove(&conn);
                if b.waiting.contains_key(&conn) {
                    b.do_break();
                    b.ended.remove(&conn);
                }
            }
            State::Condition(c) => {
                if c.lock.owner == Some(conn) {
                    c.lock = Owned::default();
                }
                c.waiters.retain(|&(w, _)| w != conn);
                c.retaking.remove(&conn);
            }
            _ => return,
        }
        self.cv.notify_all();
    }
}
