//! Looking at segments from outside: what is in `/dev/shm`, which of it is shmring's,
//! and which processes still use it — for tools (`shmring ls`, `shmring gc`) and
//! operators, without attaching to anything.
//!
//! - [`list`]: the names in `/dev/shm`.
//! - [`probe`]: read a named file's first [`HEADER_SIZE`] bytes with `pread` (no
//!   mapping, read-only) and decide whether it is a shmring segment. A file that is not
//!   is reported as [`Probe::Foreign`] and never touched further: nothing that is not
//!   shmring's is misread as a ring.
//! - [`attached_processes`]: the processes that map the file or hold a descriptor of
//!   it, from `/proc/*/maps` and `/proc/*/fd` (what `fuser` does). Only processes this
//!   user may inspect are seen; the ring-specific role records
//!   ([`ring::spsc::inspect`](crate::ring::spsc::inspect),
//!   [`ring::mpmc::inspect`](crate::ring::mpmc::inspect)) add the liveness locks, which
//!   cover every user.
//!
//! ```
//! use shmring::shm::inspect::{self, Probe};
//! use shmring::ring::spsc::Producer;
//!
//! let name = format!("shmring-doc-inspect-{}", std::process::id());
//! let tx = Producer::create(&name, 4096)?;
//! match inspect::probe(&name)? {
//!     Probe::Shmring(info) => assert_eq!(info.segment_kind(), Some(shmring::shm::SegmentKind::SpscRing)),
//!     other => panic!("{other:?}"),
//! }
//! assert!(inspect::attached_processes(&name).contains(&std::process::id()));
//! drop(tx);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use super::header::{HEADER_SIZE, HeaderInfo, MAGIC};
use super::name::validate_name;
use crate::{Error, Result};
use rustix::fs::Mode;
use rustix::io::Errno;
use std::collections::{BTreeSet, HashMap};

/// The directory named segments live in.
pub const SHM_DIR: &str = super::file::SHM_DIR;

/// What [`probe`] found under a name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// A shmring segment: its header as read (possibly still initializing — see
    /// [`HeaderInfo::is_ready`]; not yet validated against a kind).
    Shmring(HeaderInfo),
    /// A file that is not a shmring segment (another program's shared memory, or a file
    /// too short to hold a header).
    Foreign {
        /// The file's size in bytes.
        size: u64,
    },
    /// A file being created: size 0 and nothing written yet. It may become a shmring
    /// segment in a moment, or may be anyone's.
    Empty,
}

/// The names of the files in [`SHM_DIR`], sorted. Names shmring could not open
/// (invalid characters) are included; [`probe`] rejects them.
pub fn list() -> Result<Vec<String>> {
    let dir = std::fs::read_dir(SHM_DIR).map_err(|e| Error::io("read_dir", SHM_DIR, e))?;
    let mut names: Vec<String> = dir
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().map(|t| t.is_file()).unwrap_or(false))
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    names.sort();
    Ok(names)
}

/// Read the header of the file `name` in `/dev/shm` (read-only, never mapped) and say
/// whether it is a shmring segment.
///
/// Errors: an invalid name ([`Error::InvalidName`]), a missing file
/// ([`Error::NotFound`]), something that is not a regular file (symlink, FIFO, socket,
/// directory, device: [`Error::NotARegularFile`], at once, without following or
/// blocking), or an I/O error (e.g. permission denied).
pub fn probe(name: &str) -> Result<Probe> {
    validate_name(name)?;
    // O_NOFOLLOW | O_NONBLOCK, regular files only: never follows a symlink, never
    // blocks on a FIFO.
    let fd = super::file::open_regular(name, rustix::fs::OFlags::RDONLY, Mode::empty(), "open")?;
    let size = rustix::fs::fstat(&fd).map_err(|e| Error::io("fstat", name, e))?.st_size as u64;
    if size == 0 {
        return Ok(Probe::Empty);
    }
    let mut buf = [0u8; HEADER_SIZE];
    if size < HEADER_SIZE as u64 {
        return Ok(Probe::Foreign { size });
    }
    let mut got = 0;
    while got < HEADER_SIZE {
        match rustix::io::pread(&fd, &mut buf[got..], got as u64) {
            Ok(0) => return Ok(Probe::Foreign { size }),
            Ok(n) => got += n,
            Err(Errno::INTR) => {}
            Err(e) => return Err(Error::io("pread", name, e)),
        }
    }
    match parse_header(&buf) {
        Some(info) => Ok(Probe::Shmring(info)),
        None if buf.iter().all(|&b| b == 0) => Ok(Probe::Empty),
        None => Ok(Probe::Foreign { size }),
    }
}

/// Decode a header image (the `#[repr(C)]` layout of `SegmentHeader`, native endian).
/// `None` if the magic is not shmring's.
pub fn parse_header(b: &[u8; HEADER_SIZE]) -> Option<HeaderInfo> {
    let u64_at = |o: usize| u64::from_ne_bytes(b[o..o + 8].try_into().expect("8 bytes"));
    let u32_at = |o: usize| u32::from_ne_bytes(b[o..o + 4].try_into().expect("4 bytes"));
    if u64_at(0) != MAGIC {
        return None;
    }
    let mut params = [0u64; 8];
    for (i, p) in params.iter_mut().enumerate() {
        *p = u64_at(64 + 8 * i);
    }
    Some(HeaderInfo {
        magic: u64_at(0),
        version: u32_at(8),
        kind: u32_at(12),
        total_size: u64_at(16),
        area_offset: u64_at(24),
        init_state: u32_at(32),
        flags: u32_at(36),
        creator_pid: u32_at(40),
        creator_start_time: u64_at(48),
        created_unix_ns: u64_at(56),
        params,
    })
}

/// The pids of the processes that map `/dev/shm/name` or hold a descriptor of it,
/// sorted, this process included if it does. Processes whose `/proc` entries this user
/// cannot read are not seen. For many names, scan once with [`Attachments::scan`].
pub fn attached_processes(name: &str) -> Vec<u32> {
    Attachments::scan().of(name).to_vec()
}

/// Which processes map or hold a descriptor of each file in [`SHM_DIR`]: one pass over
/// `/proc/*/maps` and `/proc/*/fd` (what `fuser` does), for all names at once.
#[derive(Debug, Clone, Default)]
pub struct Attachments(HashMap<String, Vec<u32>>);

impl Attachments {
    /// Read `/proc` once. Processes whose entries this user cannot read are not seen.
    pub fn scan() -> Self {
        let mut by_name: HashMap<String, Vec<u32>> = HashMap::new();
        let Ok(procs) = std::fs::read_dir("/proc") else {
            return Attachments(by_name);
        };
        let prefix = format!("{SHM_DIR}/");
        let pids = procs
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()));
        for pid in pids {
            let mut names = BTreeSet::new();
            if let Ok(maps) = std::fs::read_to_string(format!("/proc/{pid}/maps")) {
                // The path is the last field; an unlinked file shows " (deleted)" after it.
                for l in maps.lines() {
                    if let Some((_, p)) = l.split_once(" /") {
                        let p = p.strip_suffix(" (deleted)").unwrap_or(p);
                        if let Some(n) = p.strip_prefix(&prefix[1..]) {
                            names.insert(n.to_owned());
                        }
                    }
                }
            }
            if let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) {
                for e in fds.filter_map(|e| e.ok()) {
                    if let Ok(t) = std::fs::read_link(e.path())
                        && let Some(n) = t.to_str().and_then(|t| t.strip_prefix(&prefix))
                    {
                        names.insert(n.to_owned());
                    }
                }
            }
            for n in names {
                by_name.entry(n).or_default().push(pid);
            }
        }
        for pids in by_name.values_mut() {
            pids.sort_unstable();
        }
        Attachments(by_name)
    }

    /// The pids attached to `name`, sorted (empty if none).
    pub fn of(&self, name: &str) -> &[u32] {
        self.0.get(name).map_or(&[], Vec::as_slice)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shm::{Segment, SegmentKind, SegmentOptions};

    fn name(tag: &str) -> String {
        format!("shmring-test-inspect-{tag}-{}", std::process::id())
    }

    #[test]
    fn probe_tells_shmring_from_foreign_and_missing() {
        let n = name("probe");
        let mut seg = Segment::create(
            &n,
            SegmentKind::Raw,
            [7, 0, 0, 0, 0, 0, 0, 0],
            4096,
            &SegmentOptions::new(),
        )
        .unwrap();
        seg.publish_ready();
        match probe(&n).unwrap() {
            Probe::Shmring(info) => {
                assert!(info.is_ready());
                assert_eq!(info.segment_kind(), Some(SegmentKind::Raw));
                assert_eq!(info.params[0], 7);
                assert_eq!(info.total_size, seg.len() as u64);
                assert_eq!(info.creator_pid, std::process::id());
            }
            other => panic!("{other:?}"),
        }
        assert!(list().unwrap().contains(&n));
        assert!(attached_processes(&n).contains(&std::process::id()));
        drop(seg);
        assert!(matches!(probe(&n), Err(Error::NotFound { .. })));
        assert!(matches!(probe("bad/name"), Err(Error::InvalidName { .. })));

        // Foreign files: short, and long with another magic.
        let f = name("foreign");
        let path = format!("{SHM_DIR}/{f}");
        std::fs::write(&path, b"hello").unwrap();
        assert_eq!(probe(&f).unwrap(), Probe::Foreign { size: 5 });
        std::fs::write(&path, vec![0xabu8; 4096]).unwrap();
        assert_eq!(probe(&f).unwrap(), Probe::Foreign { size: 4096 });
        std::fs::write(&path, b"").unwrap();
        assert_eq!(probe(&f).unwrap(), Probe::Empty);
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn parse_header_rejects_other_magic() {
        let mut b = [0u8; HEADER_SIZE];
        assert_eq!(parse_header(&b), None);
        b[..8].copy_from_slice(&MAGIC.to_ne_bytes());
        b[12..16].copy_from_slice(&2u32.to_ne_bytes());
        let info = parse_header(&b).unwrap();
        assert_eq!(info.segment_kind(), Some(SegmentKind::MpmcQueue));
        assert!(!info.is_ready());
    }
}
