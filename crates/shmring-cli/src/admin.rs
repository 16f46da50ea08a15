//! `shmring ls`, `shmring rm` and `shmring gc`: see and clean up what lives in
//! `/dev/shm`.
//!
//! Every file is first [`probe`]d (its header read with `pread`, nothing mapped): files
//! that are not shmring segments are skipped (`ls --all` shows them as `foreign`) and
//! never removed. For rings and queues the role records and their kernel-released
//! liveness locks say which parties are alive; for every kind, `/proc` says which
//! processes map the segment or hold a descriptor of it. A segment is *in use* when any
//! of those is alive; `gc` removes only segments that are not.

use super::{Result, err};
use serde::Serialize;
use shmring::broadcast;
use shmring::ring::{mpmc, spsc};
use shmring::shm::inspect::{self, Probe};
use shmring::shm::{HeaderInfo, SegmentKind};

/// One attached party.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct PartyView {
    /// `producer`, `consumer`, or `process` (a process that maps the segment).
    pub role: String,
    pub pid: u32,
    pub alive: bool,
    /// `alive`, `dead` (its process is gone without detaching), `closed` (detached
    /// cleanly), or `invalid` (a corrupt role record).
    pub state: &'static str,
}

/// One subscriber of a broadcast ring: where it reads, how far behind, and whether its
/// process still holds its slot.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct SubscriberView {
    /// Its slot in the ring's subscriber table.
    pub slot: usize,
    pub pid: u32,
    pub alive: bool,
    /// `alive`, or `dead` (its process is gone without detaching; a lossless publisher
    /// reclaims the slot on its next liveness check).
    pub state: &'static str,
    /// Its stream position (bytes).
    pub cursor: u64,
    /// Bytes published that it has not read.
    pub lag_bytes: u64,
    /// Messages delivered to it since it attached.
    pub received: u64,
    /// Messages it missed (overwrite policy: lapped by the publisher).
    pub missed: u64,
}

impl SubscriberView {
    fn of(s: &broadcast::SlotReport) -> Self {
        SubscriberView {
            slot: s.slot,
            pid: s.pid,
            alive: s.alive,
            state: if s.alive { "alive" } else { "dead" },
            cursor: s.cursor,
            lag_bytes: s.lag_bytes,
            received: s.received,
            missed: s.missed,
        }
    }
}

/// What `ls` shows of one file.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct SegmentView {
    pub name: String,
    /// `spsc`, `mpmc`, `mutex`, ..., `unknown(N)`, or `foreign`/`empty` (`--all`).
    pub kind: String,
    pub shmring: bool,
    /// READY published by its creator (false: being created, or its creator died then).
    pub ready: bool,
    /// File size in bytes.
    pub size: u64,
    /// Ring bytes or queue slots.
    pub capacity: Option<u64>,
    /// Bytes (spsc) or messages (mpmc) waiting; for a broadcast ring, the lag of its
    /// slowest subscriber in bytes (at most the capacity).
    pub used: Option<u64>,
    /// `used / capacity`.
    pub fill: Option<f64>,
    pub creator_pid: Option<u32>,
    /// Role records (rings) and processes mapping the segment.
    pub parties: Vec<PartyView>,
    /// Some party is alive, or some process maps the segment.
    pub in_use: bool,
    /// Why some details are missing (e.g. permission denied, a corrupt header).
    pub error: Option<String>,
    /// Broadcast rings: the policy (`lossless` or `overwrite`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy: Option<&'static str>,
    /// Broadcast rings: each attached subscriber, with its lag and liveness.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subscribers: Option<Vec<SubscriberView>>,
    /// The ring's or queue's report the view was made from (for `stat`'s counters).
    #[serde(skip)]
    pub detail: Detail,
}

/// The structure-specific report behind a [`SegmentView`].
#[derive(Debug, Clone, Default)]
pub(crate) enum Detail {
    /// Not a ring or queue, not ready, or unreadable.
    #[default]
    None,
    Spsc(spsc::RingReport),
    Mpmc(mpmc::QueueReport),
    Broadcast(broadcast::BroadcastReport),
}

/// Look at the file `name` in `/dev/shm`.
pub(crate) fn view(name: &str) -> shmring::Result<SegmentView> {
    view_with(name, &inspect::Attachments::scan())
}

/// [`view`] with the processes' attachments already read (one `/proc` pass for many
/// names).
fn view_with(name: &str, attached: &inspect::Attachments) -> shmring::Result<SegmentView> {
    let probe = inspect::probe(name)?;
    let mut v = empty_view(name);
    let info: HeaderInfo = match probe {
        Probe::Foreign { size } => {
            v.kind = "foreign".into();
            v.size = size;
            return Ok(v);
        }
        Probe::Empty => {
            v.kind = "empty".into();
            return Ok(v);
        }
        Probe::Shmring(info) => info,
    };
    v.shmring = true;
    v.ready = info.is_ready();
    v.size = info.total_size;
    v.creator_pid = Some(info.creator_pid);
    v.kind = match info.segment_kind() {
        Some(k) => k.name().to_owned(),
        None => format!("unknown({})", info.kind),
    };
    if v.ready {
        match info.segment_kind() {
            Some(SegmentKind::SpscRing) => match spsc::inspect(name) {
                Ok(r) => {
                    v.capacity = Some(r.stats.capacity);
                    v.used = Some(r.used);
                    for (role, end) in [("producer", r.producer), ("consumer", r.consumer)] {
                        let state = match end.state {
                            spsc::EndState::Vacant => continue,
                            spsc::EndState::Closed => "closed",
                            spsc::EndState::Invalid(_) => "invalid",
                            _ if end.alive => "alive",
                            _ => "dead",
                        };
                        v.parties.push(PartyView {
                            role: role.into(),
                            pid: end.pid,
                            alive: end.alive,
                            state,
                        });
                    }
                    v.detail = Detail::Spsc(r);
                }
                Err(e) => v.error = Some(e.to_string()),
            },
            Some(SegmentKind::MpmcQueue) => match mpmc::inspect(name) {
                Ok(r) => {
                    v.capacity = Some(r.stats.slots);
                    v.used = Some(r.len);
                    v.parties.extend(r.parties.iter().map(|p| PartyView {
                        role: p.role.into(),
                        pid: p.pid,
                        alive: p.alive,
                        state: if p.alive { "alive" } else { "dead" },
                    }));
                    v.detail = Detail::Mpmc(r);
                }
                Err(e) => v.error = Some(e.to_string()),
            },
            Some(SegmentKind::Broadcast) => match broadcast::inspect(name) {
                Ok(r) => {
                    v.capacity = Some(r.capacity);
                    let slowest = r.subscribers.iter().map(|s| s.lag_bytes).max().unwrap_or(0);
                    v.used = Some(slowest.min(r.capacity));
                    v.policy = Some(r.policy.name());
                    let p = r.publisher;
                    let state = match p.state {
                        broadcast::PublisherState::Vacant => None,
                        broadcast::PublisherState::Closed => Some("closed"),
                        broadcast::PublisherState::Invalid(_) => Some("invalid"),
                        _ if p.alive => Some("alive"),
                        _ => Some("dead"),
                    };
                    if let Some(state) = state {
                        v.parties.push(PartyView {
                            role: "publisher".into(),
                            pid: p.pid,
                            alive: p.alive,
                            state,
                        });
                    }
                    let subs: Vec<SubscriberView> = r.subscribers.iter().map(SubscriberView::of).collect();
                    v.parties.extend(subs.iter().map(|s| PartyView {
                        role: "subscriber".into(),
                        pid: s.pid,
                        alive: s.alive,
                        state: s.state,
                    }));
                    v.subscribers = Some(subs);
                    v.detail = Detail::Broadcast(r);
                }
                Err(e) => v.error = Some(e.to_string()),
            },
            _ => {}
        }
    }
    if let (Some(u), Some(c)) = (v.used, v.capacity) {
        v.fill = Some(if c == 0 { 0.0 } else { u as f64 / c as f64 });
    }
    let me = std::process::id();
    for &pid in attached.of(name) {
        if pid != me && !v.parties.iter().any(|p| p.pid == pid && p.alive) {
            v.parties.push(PartyView {
                role: "process".into(),
                pid,
                alive: true,
                state: "alive",
            });
        }
    }
    v.in_use = v.parties.iter().any(|p| p.alive);
    Ok(v)
}

/// Every file in `/dev/shm` (`all`) or every shmring segment, viewed.
pub(crate) fn scan(all: bool) -> Result<Vec<SegmentView>> {
    let mut out = Vec::new();
    let attached = inspect::Attachments::scan();
    for name in inspect::list()? {
        if shmring::shm::validate_name(&name).is_err() {
            if all {
                out.push(SegmentView {
                    kind: "foreign".into(),
                    error: Some("name shmring does not use".into()),
                    ..empty_view(&name)
                });
            }
            continue;
        }
        match view_with(&name, &attached) {
            Ok(v) if v.shmring || all => out.push(v),
            Ok(_) => {}
            // Gone between the listing and the probe.
            Err(shmring::Error::NotFound { .. }) => {}
            Err(e) if all => out.push(SegmentView {
                kind: "?".into(),
                error: Some(e.to_string()),
                ..empty_view(&name)
            }),
            Err(_) => {}
        }
    }
    Ok(out)
}

fn empty_view(name: &str) -> SegmentView {
    SegmentView {
        name: name.to_owned(),
        kind: String::new(),
        shmring: false,
        ready: false,
        size: 0,
        capacity: None,
        used: None,
        fill: None,
        creator_pid: None,
        parties: Vec::new(),
        in_use: false,
        error: None,
        policy: None,
        subscribers: None,
        detail: Detail::None,
    }
}

/// Arguments of `shmring ls`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  shmring ls\n  shmring ls --json | jq '.[] | select(.in_use == false) | .name'\n  shmring ls --all"
)]
pub(crate) struct LsArgs {
    /// Print a JSON array instead of a table.
    #[arg(long)]
    json: bool,
    /// Also list files in /dev/shm that are not shmring segments.
    #[arg(long)]
    all: bool,
}

/// `shmring ls`.
pub(crate) fn ls(args: LsArgs) -> Result<()> {
    let views = scan(args.all)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&views)?);
        return Ok(());
    }
    // Each column as wide as its widest cell, so that any kind (`unknown(4294967295)*`,
    // `foreign`, ...) and any size keeps the columns aligned.
    let rows: Vec<[String; 6]> = views
        .iter()
        .map(|v| {
            let kind = if v.ready || !v.shmring {
                v.kind.clone()
            } else {
                format!("{}*", v.kind)
            };
            let cap = v.capacity.map(|c| c.to_string()).unwrap_or_else(|| "-".into());
            let fill = v
                .fill
                .map(|f| format!("{:.0}%", f * 100.0))
                .unwrap_or_else(|| "-".into());
            let mut parties: Vec<String> = v
                .parties
                .iter()
                .map(|p| format!("{} {} {}", p.role, p.pid, p.state))
                .collect();
            if parties.is_empty() && v.shmring {
                parties.push("none".into());
            }
            if let Some(e) = &v.error {
                parties.push(format!("({e})"));
            }
            [v.name.clone(), kind, v.size.to_string(), cap, fill, parties.join(", ")]
        })
        .collect();
    print!(
        "{}",
        table(["NAME", "KIND", "SIZE", "CAPACITY", "FILL", "PARTIES"], &rows)
    );
    if views.iter().any(|v| v.shmring && !v.ready) {
        println!("(* = not ready: being created, or its creator died while creating it)");
    }
    Ok(())
}

/// A table of `head` and `rows`: text columns left-aligned, number columns (SIZE,
/// CAPACITY, FILL) right-aligned, each as wide as its widest cell, two spaces between;
/// the last column is not padded.
fn table(head: [&str; 6], rows: &[[String; 6]]) -> String {
    let mut width = head.map(str::len);
    for r in rows {
        for (w, cell) in width.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: [&str; 6]| {
        let mut s = String::new();
        for (i, (cell, w)) in cells.iter().zip(width).enumerate() {
            match i {
                0 | 1 => s.push_str(&format!("{cell:<w$}  ")),
                5 => s.push_str(cell),
                _ => s.push_str(&format!("{cell:>w$}  ")),
            }
        }
        s.truncate(s.trim_end().len());
        s.push('\n');
        s
    };
    let mut out = line(head);
    for r in rows {
        out.push_str(&line([&r[0], &r[1], &r[2], &r[3], &r[4], &r[5]]));
    }
    out
}

/// Arguments of `shmring rm`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  shmring rm feed\n  shmring rm --force feed jobs")]
pub(crate) struct RmArgs {
    /// Names of segments in /dev/shm.
    #[arg(required = true)]
    names: Vec<String>,
    /// Remove segments that are still in use (their processes keep their mappings;
    /// new opens fail).
    #[arg(long)]
    force: bool,
}

/// `shmring rm`.
pub(crate) fn rm(args: RmArgs) -> Result<()> {
    if let [name] = args.names.as_slice() {
        rm_one(name, args.force)?;
        eprintln!("removed {name}");
        return Ok(());
    }
    let mut failed = Vec::new();
    for name in &args.names {
        match rm_one(name, args.force) {
            Ok(()) => eprintln!("removed {name}"),
            Err(e) => {
                eprintln!("shmring rm: {e}");
                failed.push(name.as_str());
            }
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(err(format!(
            "{} of {} not removed: {}",
            failed.len(),
            args.names.len(),
            failed.join(" ")
        )))
    }
}

fn rm_one(name: &str, force: bool) -> Result<()> {
    let v = match view(name) {
        Ok(v) => v,
        Err(shmring::Error::NotFound { .. }) => {
            return Err(err(format!("{name}: no such segment in /dev/shm (see `shmring ls`)")));
        }
        Err(e) => return Err(err(format!("{name}: {e}"))),
    };
    if !v.shmring {
        return Err(err(format!(
            "{name}: not a shmring segment ({}); not removed — remove it with rm /dev/shm/{name} if you are sure",
            v.kind
        )));
    }
    if v.in_use && !force {
        let pids: Vec<String> = v
            .parties
            .iter()
            .filter(|p| p.alive)
            .map(|p| p.pid.to_string())
            .collect();
        return Err(err(format!(
            "{name}: in use by pid {}; not removed — pass --force to remove it anyway",
            pids.join(",")
        )));
    }
    shmring::shm::unlink(name).map_err(|e| err(format!("{name}: {e}")))
}

/// Arguments of `shmring gc`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  shmring gc                          # list what would be removed\n  shmring gc --force                  # remove it\n  shmring gc --force --prefix myapp-  # only segments named myapp-*"
)]
pub(crate) struct GcArgs {
    /// Remove the segments (without it, only list them).
    #[arg(long)]
    force: bool,
    /// Only segments whose name starts with this (e.g. your application's prefix).
    #[arg(long, default_value = "")]
    prefix: String,
}

/// `shmring gc`: shmring segments nobody alive uses.
pub(crate) fn gc(args: GcArgs) -> Result<()> {
    let mut n = 0;
    for v in scan(false)? {
        if !v.name.starts_with(&args.prefix) || !v.shmring || v.in_use || v.error.is_some() {
            continue;
        }
        if !args.force {
            println!("would remove {} ({}, {} bytes)", v.name, v.kind, v.size);
            n += 1;
            continue;
        }
        // Look again right before removing: a process may have attached meanwhile.
        match view(&v.name) {
            Ok(now) if now.shmring && !now.in_use => match shmring::shm::unlink(&v.name) {
                Ok(()) => {
                    println!("removed {} ({}, {} bytes)", v.name, v.kind, v.size);
                    n += 1;
                }
                Err(e) => eprintln!("shmring gc: {}: {e}", v.name),
            },
            _ => {}
        }
    }
    if n == 0 {
        eprintln!("nothing to remove");
    } else if !args.force {
        eprintln!("{n} segment(s) would be removed; run `shmring gc --force` to remove them");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_columns_hold_any_kind() {
        let row = |kind: &str, size: &str| {
            [
                "n".to_string(),
                kind.to_string(),
                size.to_string(),
                "-".into(),
                "-".into(),
                "none".into(),
            ]
        };
        let t = table(
            ["NAME", "KIND", "SIZE", "CAPACITY", "FILL", "PARTIES"],
            &[row("spsc", "4096"), row("unknown(4294967295)*", "123456789012")],
        );
        let at: Vec<usize> = t
            .lines()
            .map(|l| l.find("none").or(l.find("PARTIES")).unwrap())
            .collect();
        assert!(at.windows(2).all(|w| w[0] == w[1]), "{t}");
    }
}
