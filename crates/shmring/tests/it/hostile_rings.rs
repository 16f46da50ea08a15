//! Issue 16, hostile neighbour: honest producer and consumer processes work on a named
//! SPSC ring, MPMC queue or `Queue` while this (the test) process scribbles random and
//! targeted words into the segment's file (see `crate::hostile`).
//!
//! A run has two phases. In the *hostile* phase the peers run a seeded mix of blocking,
//! timed and non-waiting calls while the scribbler writes; every result must be `Ok` or
//! an error the object documents (full/empty/timeout, `Corrupted`, `Lost`, a bad
//! reference, closed/disconnected). The scribbler ends the phase with a planted
//! impossible state (for the MPMC ring and the Queue: the wedge, a slot at the
//! previous lap with the enqueue position on it) in every other round; one round in
//! four writes only two bursts, so that the queue often survives. In the *settle*
//! phase nobody scribbles: each producer makes blocking pushes of tagged messages, each
//! consumer blocking pops.
//! Then:
//!
//! - every producer finishes its pushes or gets an error within its limit: a producer
//!   still waiting is a wedge (the queue full to producers, empty to consumers);
//! - every message pushed `Ok` in the settle phase is delivered exactly once, unless a
//!   party saw an error in that phase (the corruption was reported);
//! - every peer exits 0, none dies of a signal or outlives its watchdog ([`judge`]).
//!
//! `SHMRING_HOSTILE_SEED` replays a run; the `#[ignore]` variants run
//! `SHMRING_HOSTILE_ROUNDS` rounds (default 20).

use crate::common::peer::*;
use crate::common::*;
use crate::hostile::{Rng, Scribbler, Target, judge, rounds, seed};
use shmring::ring::mpmc::{self, PopError, PushError};
use shmring::ring::spsc::{self, RecvError, SendError};
use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Where a segment's area starts in its file (the segment header's size).
const AREA: usize = 128;
/// The type record a typed object (a `Queue`) has between its header and its area.
const TYPE_RECORD: usize = 256;

/// Messages each producer pushes in the settle phase.
const SETTLE_MSGS: u64 = 200;

/// The tag of a settle-phase message: its first 8 bytes are `TAG | producer << 32 | seq`.
const TAG: u64 = 0x5e77_1e00_0000_0000;

/// Slot payload of the MPMC ring under test.
const MPMC_SLOT: usize = 48;
/// Slots of the MPMC ring and the Queue under test.
const SLOTS: usize = 16;

// ---------------------------------------------------------------------------------------
// Clock shared by the parent and the peers (phases are absolute times).

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_millis() as u64
}

fn sleep_until_ms(t: u64) {
    let now = now_ms();
    if t > now {
        std::thread::sleep(Duration::from_millis(t - now));
    }
}

// ---------------------------------------------------------------------------------------
// Honest ends, seen through one interface.

/// How a call waits.
#[derive(Debug, Clone, Copy)]
enum How {
    Block,
    Timed(Duration),
    Try,
}

impl How {
    fn pick(rng: &mut Rng) -> How {
        match rng.below(3) {
            0 => How::Block,
            1 => How::Timed(Duration::from_millis(rng.below(80))),
            _ => How::Try,
        }
    }
}

/// What a call returned, sorted by what the test makes of it.
#[derive(Debug)]
enum Outcome {
    Ok(Vec<u8>),
    /// Full, empty or timed out.
    Busy,
    /// Closed or disconnected: the end is done.
    Over,
    /// A documented report of damage: corrupted, lost, a bad reference.
    Damage(String),
}

trait HonestProducer {
    fn push(&mut self, msg: &[u8], how: How) -> Result<Outcome, String>;
}

trait HonestConsumer {
    fn pop(&mut self, how: How) -> Result<Outcome, String>;
}

impl HonestProducer for mpmc::Producer {
    fn push(&mut self, msg: &[u8], how: How) -> Result<Outcome, String> {
        let r = match how {
            How::Block => mpmc::Producer::push(self, msg),
            How::Timed(t) => self.push_timeout(msg, t),
            How::Try => self.try_push(msg),
        };
        match r {
            Ok(()) => Ok(Outcome::Ok(Vec::new())),
            Err(PushError::Full) if matches!(how, How::Try) => Ok(Outcome::Busy),
            Err(PushError::Timeout) if matches!(how, How::Timed(_)) => Ok(Outcome::Busy),
            Err(PushError::Closed) => Ok(Outcome::Over),
            Err(PushError::Corrupted(w)) => Ok(Outcome::Damage(w.to_owned())),
            Err(e) => Err(format!("push ({how:?}): undocumented result {e:?}")),
        }
    }
}

impl HonestConsumer for mpmc::Consumer {
    fn pop(&mut self, how: How) -> Result<Outcome, String> {
        let r = match how {
            How::Block => mpmc::Consumer::pop(self),
            How::Timed(t) => self.pop_timeout(t),
            How::Try => self.try_pop(),
        };
        match r {
            Ok(m) => Ok(Outcome::Ok(m)),
            Err(PopError::Empty) if matches!(how, How::Try) => Ok(Outcome::Busy),
            Err(PopError::Timeout) if matches!(how, How::Timed(_)) => Ok(Outcome::Busy),
            Err(PopError::Closed) => Ok(Outcome::Over),
            Err(PopError::Lost) => Ok(Outcome::Damage("lost".into())),
            Err(PopError::Corrupted(w)) => Ok(Outcome::Damage(w.to_owned())),
            Err(e) => Err(format!("pop ({how:?}): undocumented result {e:?}")),
        }
    }
}

impl HonestProducer for shmring::Queue<u64> {
    fn push(&mut self, msg: &[u8], how: How) -> Result<Outcome, String> {
        use shmring::queue::PutError;
        let r = match how {
            How::Block => self.put_bytes(msg),
            How::Timed(t) => self.put_bytes_timeout(msg, t),
            How::Try => self.put_bytes_nowait(msg),
        };
        match r {
            Ok(()) => Ok(Outcome::Ok(Vec::new())),
            Err(PutError::Full) if matches!(how, How::Try) => Ok(Outcome::Busy),
            Err(PutError::Timeout) if matches!(how, How::Timed(_)) => Ok(Outcome::Busy),
            Err(PutError::Closed) => Ok(Outcome::Over),
            Err(PutError::Corrupted(w)) => Ok(Outcome::Damage(w.to_owned())),
            Err(e) => Err(format!("put ({how:?}): undocumented result {e:?}")),
        }
    }
}

impl HonestConsumer for shmring::Queue<u64> {
    fn pop(&mut self, how: How) -> Result<Outcome, String> {
        use shmring::queue::GetError;
        let r = match how {
            How::Block => self.get_bytes(),
            How::Timed(t) => self.get_bytes_timeout(t),
            How::Try => self.get_bytes_nowait(),
        };
        match r {
            Ok(m) => Ok(Outcome::Ok(m)),
            Err(GetError::Empty) if matches!(how, How::Try) => Ok(Outcome::Busy),
            Err(GetError::Timeout) if matches!(how, How::Timed(_)) => Ok(Outcome::Busy),
            Err(GetError::Closed) => Ok(Outcome::Over),
            Err(GetError::Lost) => Ok(Outcome::Damage("lost".into())),
            Err(GetError::BadReference(b)) => Ok(Outcome::Damage(format!("bad reference: {b}"))),
            Err(GetError::Corrupted(w)) => Ok(Outcome::Damage(w.to_owned())),
            Err(e) => Err(format!("get ({how:?}): undocumented result {e:?}")),
        }
    }
}

impl HonestProducer for spsc::Producer {
    fn push(&mut self, msg: &[u8], how: How) -> Result<Outcome, String> {
        let r = match how {
            How::Block => self.send(msg),
            How::Timed(t) => self.send_timeout(msg, t),
            How::Try => self.try_send(msg),
        };
        match r {
            Ok(()) => Ok(Outcome::Ok(Vec::new())),
            Err(SendError::Full) if matches!(how, How::Try) => Ok(Outcome::Busy),
            Err(SendError::Timeout) if matches!(how, How::Timed(_)) => Ok(Outcome::Busy),
            Err(SendError::Disconnected) => Ok(Outcome::Over),
            Err(SendError::Corrupted(w)) => Ok(Outcome::Damage(w.to_owned())),
            Err(e) => Err(format!("send ({how:?}): undocumented result {e:?}")),
        }
    }
}

impl HonestConsumer for spsc::Consumer {
    fn pop(&mut self, how: How) -> Result<Outcome, String> {
        let r = match how {
            How::Block => self.recv(),
            How::Timed(t) => self.recv_timeout(t),
            How::Try => self.try_recv(),
        };
        match r {
            Ok(m) => Ok(Outcome::Ok(m)),
            Err(RecvError::Empty) if matches!(how, How::Try) => Ok(Outcome::Busy),
            Err(RecvError::Timeout) if matches!(how, How::Timed(_)) => Ok(Outcome::Busy),
            Err(RecvError::Disconnected) => Ok(Outcome::Over),
            Err(RecvError::Corrupted(w)) => Ok(Outcome::Damage(w.to_owned())),
            Err(e) => Err(format!("recv ({how:?}): undocumented result {e:?}")),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Peers

/// A settle-phase message of producer `id`: tagged key, then `fill_msg` bytes.
fn settle_msg(id: u64, seq: u64, buf: &mut Vec<u8>) {
    let key = TAG | (id << 32) | seq;
    buf.resize(16 + (mix(key) % 17) as usize, 0);
    fill_msg(key, buf);
}

/// The key of a received settle-phase message, if it is one (tag and contents check).
fn settle_key(msg: &[u8], scratch: &mut Vec<u8>) -> Option<u64> {
    if msg.len() < 16 {
        return None;
    }
    let key = u64::from_le_bytes(msg[..8].try_into().unwrap());
    if key & 0xffff_ff00_0000_0000 != TAG {
        return None;
    }
    scratch.resize(msg.len(), 0);
    fill_msg(key, scratch);
    (msg == &scratch[..] && msg.len() == 16 + (mix(key) % 17) as usize).then_some(key)
}

/// An honest producer: hostile-phase mix until `SETTLE_AT`, then `SETTLE_MSGS` blocking
/// pushes (until done, an error, or the end). Reports `settle-pushed: N` and `damage: N`.
fn producer_run(p: &mut dyn HonestProducer) -> Result<(), String> {
    say("ready");
    let (id, settle_at) = (env_num("ID"), env_num("SETTLE_AT"));
    let mut rng = Rng::new(env_num("SEED") ^ mix(id + 1));
    let (mut ok, mut damage, mut buf) = (0u64, 0u64, Vec::new());
    while now_ms() < settle_at {
        buf.resize(16 + rng.below(17) as usize, 0);
        fill_msg(rng.next() & 0xffff_ffff, &mut buf);
        match p.push(&buf, How::pick(&mut rng))? {
            Outcome::Ok(_) => ok += 1,
            Outcome::Busy => {}
            Outcome::Over => break,
            Outcome::Damage(_) => damage += 1,
        }
    }
    say(&format!("hostile-phase: {ok} pushed, {damage} damage reports"));
    sleep_until_ms(settle_at);
    let (mut pushed, mut settle_damage) = (0u64, 0u64);
    for seq in 0..SETTLE_MSGS {
        settle_msg(id, seq, &mut buf);
        match p.push(&buf, How::Block)? {
            Outcome::Ok(_) => pushed += 1,
            Outcome::Busy => return Err("a blocking push reported full".into()),
            // The consumer is gone: what it did not read is lost, and this end was
            // told (a channel's contract). With an SPSC ring that happens when a
            // neighbour wrote CLOSED into the producer's role word during the
            // hostile phase: the consumer ends, as at a real close.
            Outcome::Over => {
                eprintln!("producer {id}: settle push found the consumer gone");
                settle_damage += 1;
                break;
            }
            Outcome::Damage(w) => {
                eprintln!("producer {id}: settle push reported {w}");
                settle_damage += 1;
                break;
            }
        }
    }
    say(&format!("settle-pushed: {pushed}"));
    say(&format!("damage: {settle_damage}"));
    Ok(())
}

/// An honest consumer: hostile-phase mix until `SETTLE_AT`, then blocking pops until
/// the end is over (closed/disconnected), or, once the `STOP` file exists, until a pop
/// reports damage. Reports the settle-phase keys it got and its damage reports.
fn consumer_run(c: &mut dyn HonestConsumer) -> Result<(), String> {
    say("ready");
    let (id, settle_at) = (env_num("ID"), env_num("SETTLE_AT"));
    let stop = env_str("STOP");
    let mut rng = Rng::new(env_num("SEED") ^ mix(1000 + id));
    let (mut ok, mut damage, mut scratch) = (0u64, 0u64, Vec::new());
    let mut over = false;
    while now_ms() < settle_at {
        match c.pop(How::pick(&mut rng))? {
            Outcome::Ok(_) => ok += 1,
            Outcome::Busy => {}
            Outcome::Over => {
                over = true;
                break;
            }
            Outcome::Damage(_) => damage += 1,
        }
    }
    say(&format!("hostile-phase: {ok} popped, {damage} damage reports"));
    let (mut keys, mut settle_damage) = (Vec::new(), 0u64);
    // Settle: blocking pops only once nobody scribbles; a pop in the hostile phase's
    // last moments may still see its writes.
    sleep_until_ms(settle_at);
    while !over {
        match c.pop(How::Block)? {
            Outcome::Ok(m) => {
                if let Some(k) = settle_key(&m, &mut scratch) {
                    keys.push(k);
                }
            }
            Outcome::Busy => return Err("a blocking pop reported empty".into()),
            Outcome::Over => over = true,
            Outcome::Damage(w) => {
                settle_damage += 1;
                if settle_damage <= 3 {
                    eprintln!("consumer {id}: settle pop reported {w}");
                }
                // A queue that stays corrupted reports it on every pop: stop once
                // the producers are done.
                if std::path::Path::new(&stop).exists() {
                    over = true;
                }
            }
        }
    }
    let list: Vec<String> = keys.iter().map(|k| format!("{k:x}")).collect();
    say(&format!("keys: {}", list.join(",")));
    say(&format!("damage: {settle_damage}"));
    Ok(())
}

fn run_peer(role: &str) -> ! {
    let _dog = Watchdog::new("hostile peer", Duration::from_secs(90));
    let name = env_str("NAME");
    let r = match role {
        "mpmc-producer" => mpmc::Producer::open(&name)
            .map_err(|e| e.to_string())
            .and_then(|mut p| producer_run(&mut p)),
        "mpmc-consumer" => mpmc::Consumer::open(&name)
            .map_err(|e| e.to_string())
            .and_then(|mut c| consumer_run(&mut c)),
        "queue-producer" => shmring::Queue::<u64>::open(&name)
            .map_err(|e| e.to_string())
            .and_then(|mut q| producer_run(&mut q)),
        "queue-consumer" => shmring::Queue::<u64>::open(&name)
            .map_err(|e| e.to_string())
            .and_then(|mut q| consumer_run(&mut q)),
        "spsc-producer" => spsc::Producer::open(&name)
            .map_err(|e| e.to_string())
            .and_then(|mut p| producer_run(&mut p)),
        "spsc-consumer" => spsc::Consumer::open(&name)
            .map_err(|e| e.to_string())
            .and_then(|mut c| consumer_run(&mut c)),
        other => Err(format!("unknown role {other}")),
    };
    exit_with(r)
}

// ---------------------------------------------------------------------------------------
// The scribbler's targets

/// Byte offsets of an MPMC ring's words from its area's start (see
/// ring/mpmc/layout.rs).
mod mpmc_at {
    pub const ENQ: usize = 0;
    pub const DEQ: usize = 128;
    pub const NOT_EMPTY: usize = 256;
    pub const NOT_FULL: usize = 384;
    pub const PARTIES: usize = 640;
    pub const INTENTS: usize = 640 + 64 * 32;
    pub const SLOTS: usize = INTENTS + 64 * 128;
}

/// The MPMC ring's geometry, for targets: where its area starts in the file (after
/// the header, and the type record of a typed object such as a `Queue`), its slots.
#[derive(Debug, Clone, Copy)]
struct Ring {
    base: usize,
    nslots: u64,
    stride: usize,
}

impl Ring {
    fn at(&self, off: usize) -> usize {
        self.base + off
    }
    fn slot(&self, pos: u64) -> usize {
        self.at(mpmc_at::SLOTS) + (pos % self.nslots) as usize * self.stride
    }
    fn lap(&self, pos: u64) -> u64 {
        pos / self.nslots
    }
    fn end(&self) -> usize {
        self.slot(0) + self.nslots as usize * self.stride
    }
}

/// Targets for this moment of an MPMC ring: the positions, the wait words, the party
/// table, and the sequence and length words of the slots at and around both positions,
/// with plausible wrong values (other laps and states, forged owners).
fn mpmc_targets(s: &Scribbler, ring: Ring, slot_size: u64) -> Vec<Target> {
    use mpmc::slot::{EMPTY, FULL, LOST, Owner, READING, encode};
    let enq = s.read(ring.at(mpmc_at::ENQ), 8).unwrap_or(0);
    let deq = s.read(ring.at(mpmc_at::DEQ), 8).unwrap_or(0);
    let n = ring.nslots;
    let mut t = vec![
        Target::u64(
            "enq",
            ring.at(mpmc_at::ENQ),
            &[
                deq,
                deq.wrapping_add(n),
                enq.wrapping_add(n),
                enq.wrapping_sub(n),
                deq.wrapping_sub(1),
            ],
        ),
        Target::u64(
            "deq",
            ring.at(mpmc_at::DEQ),
            &[
                enq,
                enq.wrapping_add(1),
                deq.wrapping_add(n),
                deq.wrapping_sub(n),
                enq.wrapping_sub(n),
            ],
        ),
        Target::u32(
            "not_empty.waiting",
            ring.at(mpmc_at::NOT_EMPTY),
            &[0, 1, u64::from(u32::MAX)],
        ),
        Target::u32(
            "not_full.waiting",
            ring.at(mpmc_at::NOT_FULL),
            &[0, 1, u64::from(u32::MAX)],
        ),
        Target::u32("not_empty.seq", ring.at(mpmc_at::NOT_EMPTY) + 4, &[]),
        Target::u32("party.role", ring.at(mpmc_at::PARTIES), &[0, 1, 2, 3]),
        Target::u32("party.generation", ring.at(mpmc_at::PARTIES) + 4, &[0, 1]),
        Target::u32("party1.role", ring.at(mpmc_at::PARTIES) + 32, &[0, 1, 2, 7]),
        Target::u64(
            "party0.intent",
            ring.at(mpmc_at::INTENTS),
            &[enq, deq, enq.wrapping_sub(1), deq.wrapping_sub(1), u64::MAX],
        ),
        Target::u64(
            "party1.intent",
            ring.at(mpmc_at::INTENTS) + 128,
            &[enq, deq, enq.wrapping_sub(1), deq.wrapping_sub(1), u64::MAX],
        ),
    ];
    for pos in [deq, enq, enq.wrapping_sub(1), deq.wrapping_add(1)] {
        let lap = ring.lap(pos);
        let forged = Owner {
            idx: 200,
            generation: 3,
        };
        let guess = Owner { idx: 1, generation: 1 };
        let seq = [
            encode(lap.wrapping_sub(1), Owner::NONE, FULL),
            encode(lap.wrapping_sub(1), Owner::NONE, EMPTY),
            encode(lap.wrapping_sub(1), guess, LOST),
            encode(lap, forged, LOST),
            encode(lap, guess, READING),
            encode(lap.wrapping_add(1), Owner::NONE, EMPTY),
            encode(lap.wrapping_add(2), Owner::NONE, FULL),
            encode(lap, Owner::NONE, FULL),
        ];
        t.push(Target::u64("slot.seq", ring.slot(pos), &seq));
        t.push(Target::u64(
            "slot.len",
            ring.slot(pos) + 8,
            &[slot_size + 1, 1 << 63, 0, u64::MAX],
        ));
    }
    t
}

/// Plant the wedge: the slot at the dequeue position back at the previous lap
/// holding a message, and the enqueue position on it (the queue then looks full to
/// producers and empty to consumers, forever, unless the waits check).
fn plant_wedge(s: &mut Scribbler, ring: Ring) {
    use mpmc::slot::{FULL, Owner, encode};
    let deq = s.read(ring.at(mpmc_at::DEQ), 8).unwrap_or(0);
    let lap = ring.lap(deq);
    if lap == 0 {
        return;
    }
    s.write("wedge: slot.seq", ring.slot(deq), 8, encode(lap - 1, Owner::NONE, FULL));
    s.write("wedge: enq", ring.at(mpmc_at::ENQ), 8, deq);
}

/// Byte offsets of an SPSC ring's words in its file (see ring/spsc/layout.rs).
mod spsc_at {
    pub const TAIL: usize = super::AREA;
    pub const HEAD: usize = super::AREA + 128;
    pub const DATA_WAIT: usize = super::AREA + 256;
    pub const SPACE_WAIT: usize = super::AREA + 384;
    pub const PRODUCER_STATE: usize = super::AREA + 512;
    pub const CONSUMER_STATE: usize = super::AREA + 528;
    pub const REGION: usize = super::AREA + 640;
}

/// Targets for this moment of an SPSC ring: the indices, the wait and role words, and
/// the record headers/stamps at and after the consumer's position.
fn spsc_targets(s: &Scribbler, cap: u64) -> Vec<Target> {
    let tail = s.read(spsc_at::TAIL, 8).unwrap_or(0);
    let head = s.read(spsc_at::HEAD, 8).unwrap_or(0);
    let mut t = vec![
        Target::u64(
            "tail",
            spsc_at::TAIL,
            &[
                head,
                tail.wrapping_sub(16),
                tail.wrapping_add(cap),
                head.wrapping_sub(16),
            ],
        ),
        Target::u64(
            "head",
            spsc_at::HEAD,
            &[tail, head.wrapping_sub(16), tail.wrapping_add(16), 0],
        ),
        Target::u32("data_wait.waiting", spsc_at::DATA_WAIT, &[0, 1]),
        Target::u32("space_wait.waiting", spsc_at::SPACE_WAIT, &[0, 1]),
        Target::u32("producer.state", spsc_at::PRODUCER_STATE, &[0, 1, 3, 9]),
        Target::u32("consumer.state", spsc_at::CONSUMER_STATE, &[0, 1, 3, 9]),
    ];
    for pos in [head, head.wrapping_add(16), tail] {
        let off = (spsc_at::REGION + (pos % cap) as usize) & !15;
        // A record header slot: a stamp word and a header word.
        t.push(Target::u64("record.w0", off, &[0, pos, pos.wrapping_add(cap)]));
        t.push(Target::u64("record.w1", off + 8, &[0, u64::MAX]));
    }
    t
}

// ---------------------------------------------------------------------------------------
// The parent

/// Targets for the current state of a segment.
type Targets = Box<dyn Fn(&Scribbler) -> Vec<Target>>;
/// A planted state, written at the end of the hostile phase.
type Plant = Box<dyn Fn(&mut Scribbler)>;

/// What the parent needs of the object under test.
struct Object {
    /// Peer role prefix: `mpmc`, `queue`, `spsc`.
    kind: &'static str,
    producers: u64,
    consumers: u64,
    /// Targets for the current state of the segment.
    targets: Targets,
    /// The part of the file worth random writes (for the queues: the party table and
    /// the slots; the positions and wait words are targets. The `closed` word is left
    /// out: a neighbour may close the queue, a documented end, but one that did so in
    /// most rounds would leave the settle phase nothing to check).
    range: std::ops::Range<usize>,
    /// The last write of the hostile phase (the planted impossible state), if any.
    plant: Option<Plant>,
    /// Close the object for everyone (after the producers are done).
    close: Box<dyn Fn()>,
}

/// Run one seeded hostile round against `obj` (named `name`), hostile phase of `ms`.
fn round(test: &str, name: &str, obj: &Object, seed: u64, ms: u64) {
    let stop = std::env::temp_dir().join(format!("{name}.stop"));
    let _ = std::fs::remove_file(&stop);
    let settle_at = now_ms() + 1500 + ms;
    let env = |id: u64| {
        vec![
            ("NAME", name.to_owned()),
            ("SEED", seed.to_string()),
            ("ID", id.to_string()),
            ("SETTLE_AT", settle_at.to_string()),
            ("STOP", stop.display().to_string()),
        ]
    };
    // Peers run as the short variant of the test (an `#[ignore]`d one would not run
    // in the child, which is not given `--ignored`); every variant dispatches alike.
    let test = test.trim_end_matches("_long");
    let mut producers: Vec<Peer> = (0..obj.producers)
        .map(|i| Peer::spawn(test, &format!("{}-producer", obj.kind), &env(i)))
        .collect();
    let mut consumers: Vec<Peer> = (0..obj.consumers)
        .map(|i| Peer::spawn(test, &format!("{}-consumer", obj.kind), &env(i)))
        .collect();
    // Every peer attached before the first write (an open of a damaged segment is
    // refused, which is tested elsewhere).
    for p in producers.iter_mut().chain(consumers.iter_mut()) {
        p.expect("ready", Duration::from_secs(20));
    }
    let mut s = Scribbler::open(name, seed).expect("map the segment");
    // Hostile phase: bursts of writes aimed at the current state, until 100 ms before
    // the settle phase; then the planted state.
    // One round in four is sparse (two bursts): a neighbour that writes hundreds of
    // words nearly always leaves damage that the settle phase reports at once; a sparse
    // one often leaves a queue that still works, whose delivery the settle phase checks.
    let mut bursts = if seed % 4 == 1 { 2 } else { u64::MAX };
    while now_ms() + 100 < settle_at {
        if bursts == 0 {
            std::thread::sleep(Duration::from_millis(20));
            continue;
        }
        bursts -= 1;
        let targets = (obj.targets)(&s);
        let n = 1 + s.rng().below(8);
        s.scribble(n, &targets, obj.range.clone(), Duration::from_micros(200));
        let pause = s.rng().below(20);
        std::thread::sleep(Duration::from_millis(pause));
    }
    // Every other round ends with the planted state; the others leave whatever the
    // random writes left, so the settle phase also checks delivery after them.
    if let Some(plant) = obj.plant.as_ref().filter(|_| seed % 2 == 0) {
        plant(&mut s);
    }
    let recent = s.recent();
    eprintln!("{test}: {} hostile writes; the last: {recent}", s.writes);
    drop(s);
    // Settle: producers must finish or report damage; then close, stop the consumers.
    let mut pushed = 0u64;
    let mut damage = 0u64;
    let mut expect: HashMap<u64, u32> = HashMap::new();
    for (i, p) in producers.into_iter().enumerate() {
        let (st, lines) = p.exit(Duration::from_secs(40));
        if let Err(e) = judge(&format!("{} producer {i}", obj.kind), st, &recent) {
            panic!("{e}\n(seed {seed})");
        }
        for l in &lines {
            if let Some(v) = l.strip_prefix("settle-pushed: ") {
                let v: u64 = v.parse().expect("count");
                pushed += v;
                for q in 0..v {
                    expect.insert(TAG | ((i as u64) << 32) | q, 0);
                }
            }
            if let Some(v) = l.strip_prefix("damage: ") {
                damage += v.parse::<u64>().expect("count");
            }
        }
    }
    std::fs::write(&stop, b"").expect("stop file");
    (obj.close)();
    for (i, c) in consumers.into_iter().enumerate() {
        let (st, lines) = c.exit(Duration::from_secs(40));
        if let Err(e) = judge(&format!("{} consumer {i}", obj.kind), st, &recent) {
            panic!("{e}\n(seed {seed})");
        }
        for l in &lines {
            if let Some(v) = l.strip_prefix("keys: ") {
                for k in v.split(',').filter(|k| !k.is_empty()) {
                    let k = u64::from_str_radix(k, 16).expect("key");
                    match expect.get_mut(&k) {
                        Some(n) => *n += 1,
                        None => panic!("{test}: key {k:x} delivered but never pushed Ok (seed {seed})"),
                    }
                }
            }
            if let Some(v) = l.strip_prefix("damage: ") {
                damage += v.parse::<u64>().expect("count");
            }
        }
    }
    let _ = std::fs::remove_file(&stop);
    let dup = expect.values().filter(|n| **n > 1).count();
    assert_eq!(dup, 0, "{test}: {dup} settle messages delivered twice (seed {seed})");
    let missing = expect.values().filter(|n| **n == 0).count();
    eprintln!("{test}: settle: {pushed} pushed, {missing} undelivered, {damage} damage reports");
    assert!(
        missing == 0 || damage > 0,
        "{test}: {missing} of {pushed} settle messages were neither delivered nor reported \
         (no party saw an error): a silent loss or wedge (seed {seed}); last hostile writes:\n  {recent}"
    );
}

fn mpmc_object(name: &str) -> (Object, mpmc::Producer) {
    let mut p = mpmc::Producer::create(name, SLOTS, MPMC_SLOT).expect("create");
    let ring = Ring {
        base: AREA,
        nslots: p.capacity() as u64,
        stride: (16 + MPMC_SLOT + 63) & !63,
    };
    // The layout the targets assume: one push moves the enqueue position to 1 and fills
    // slot 0 (lap 0, FULL).
    p.try_push(b"layout").expect("push");
    let s = Scribbler::open(name, 0).expect("map");
    assert_eq!(s.read(ring.at(mpmc_at::ENQ), 8), Some(1), "enqueue position offset");
    let (_, _, st) = mpmc::slot::decode(s.read(ring.slot(0), 8).expect("slot 0"));
    assert_eq!(st, mpmc::slot::FULL, "slot offset");
    assert_eq!(s.read(ring.slot(0) + 8, 8), Some(6), "slot length offset");
    let closer = p.try_clone().expect("clone");
    let obj = Object {
        kind: "mpmc",
        producers: 2,
        consumers: 2,
        targets: Box::new(move |s| mpmc_targets(s, ring, MPMC_SLOT as u64)),
        range: ring.at(mpmc_at::PARTIES)..ring.end(),
        plant: Some(Box::new(move |s| plant_wedge(s, ring))),
        close: Box::new(move || closer.close()),
    };
    (obj, p)
}

fn queue_object(name: &str) -> (Object, shmring::Queue<u64>) {
    let mut q = shmring::Queue::<u64>::create(name, SLOTS).expect("create");
    let stride = (16 + shmring::queue::DEFAULT_SLOT_SIZE + 63) & !63;
    let ring = Ring {
        base: AREA + TYPE_RECORD,
        nslots: q.capacity() as u64,
        stride,
    };
    q.put_bytes_nowait(b"layout").expect("put");
    let s = Scribbler::open(name, 0).expect("map");
    assert_eq!(s.read(ring.at(mpmc_at::ENQ), 8), Some(1), "enqueue position offset");
    assert_eq!(
        s.read(ring.slot(0) + 8, 8),
        Some(7),
        "slot length offset (kind byte + 6)"
    );
    let closer = q.try_clone().expect("clone");
    let obj = Object {
        kind: "queue",
        producers: 2,
        consumers: 2,
        targets: Box::new(move |s| mpmc_targets(s, ring, shmring::queue::DEFAULT_SLOT_SIZE as u64)),
        range: ring.at(mpmc_at::PARTIES)..ring.end(),
        plant: Some(Box::new(move |s| plant_wedge(s, ring))),
        close: Box::new(move || closer.close()),
    };
    (obj, q)
}

fn spsc_object(name: &str) -> (Object, ()) {
    const CAP: usize = 4096;
    // The ring is kept (nobody's drop unlinks it) and removed by the test; its ends are
    // the peers'.
    spsc::create_detached(name, CAP, &spsc::RingOptions::default()).expect("create");
    let s = Scribbler::open(name, 0).expect("map");
    assert_eq!(s.len(), spsc_at::REGION + CAP, "region offset");
    let obj = Object {
        kind: "spsc",
        producers: 1,
        consumers: 1,
        targets: Box::new(move |s| spsc_targets(s, CAP as u64)),
        range: spsc_at::TAIL..spsc_at::REGION + CAP,
        plant: None,
        // The producer's drop closes its end (Disconnected for the consumer).
        close: Box::new(|| {}),
    };
    (obj, ())
}

fn hostile(test: &str, kind: &str, n: u64, ms: u64) {
    dispatch(run_peer);
    let _dog = Watchdog::new("hostile rings", Duration::from_secs(120 + n * 100));
    let base = seed(test);
    for r in 0..n {
        let name = unique_name(&format!("hostile-{kind}"));
        // Even seeds plant the wedge at the end of the hostile phase (see `round`).
        let seed = (mix(base ^ r) & !1) | (r & 1);
        match kind {
            "mpmc" => {
                let (obj, _keep) = mpmc_object(&name);
                round(test, &name, &obj, seed, ms);
            }
            "queue" => {
                let (obj, _keep) = queue_object(&name);
                round(test, &name, &obj, seed, ms);
            }
            _ => {
                let (obj, ()) = spsc_object(&name);
                round(test, &name, &obj, seed, ms);
                let _ = shmring::shm::unlink(&name);
            }
        }
    }
}

#[test]
fn hostile_mpmc() {
    hostile("hostile_mpmc", "mpmc", 2, 1200);
}

#[test]
fn hostile_queue() {
    hostile("hostile_queue", "queue", 2, 1200);
}

#[test]
fn hostile_spsc() {
    hostile("hostile_spsc", "spsc", 2, 1200);
}

#[test]
#[ignore = "long: SHMRING_HOSTILE_ROUNDS rounds (default 20)"]
fn hostile_mpmc_long() {
    hostile("hostile_mpmc_long", "mpmc", rounds(20), 3000);
}

#[test]
#[ignore = "long: SHMRING_HOSTILE_ROUNDS rounds (default 20)"]
fn hostile_queue_long() {
    hostile("hostile_queue_long", "queue", rounds(20), 3000);
}

#[test]
#[ignore = "long: SHMRING_HOSTILE_ROUNDS rounds (default 20)"]
fn hostile_spsc_long() {
    hostile("hostile_spsc_long", "spsc", rounds(20), 3000);
}
