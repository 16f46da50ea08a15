//! [`Segment`]: one mapping of a named or anonymous shared-memory file.

use super::file::{FileId, open_regular};
use super::header::{HEADER_SIZE, HeaderInfo, LAYOUT_VERSION, MAGIC, SegmentHeader, SegmentKind, flags, init_state};
use super::init::{no_live_creator, stamp_creator};
use super::liveness::{self, INIT_SLOT, self_identity};
use super::name::validate_name;
use super::shape::{Shape, TYPE_RECORD_SIZE, TypeRecord};
use super::sigbus::{self, Registration};
use crate::primitive::Ordering;
use crate::{Error, Result};
use memmap2::{MmapOptions, MmapRaw};
use rustix::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How a segment is created, opened and mapped.
///
/// ```
/// use shmring::shm::SegmentOptions;
/// let opts = SegmentOptions::new().mode(0o640).prefault(true);
/// assert_eq!(opts.mode, 0o640);
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SegmentOptions {
    /// Permission bits of a named segment (default `0o600`), applied exactly (not
    /// filtered by the umask).
    pub mode: u32,
    /// Fault every page in at map time (`MAP_POPULATE`), so the first messages do not
    /// pay page faults.
    pub prefault: bool,
    /// Lock the mapping in RAM (`mlock`); fails if `RLIMIT_MEMLOCK` is too small.
    pub lock_in_ram: bool,
    /// Keep a named segment when its creator drops (default: unlink it).
    pub keep: bool,
    /// How long `open` waits for the creator to publish READY (default 2 s).
    pub open_timeout: Duration,
    /// Use asymmetric fences (membarrier) when the kernel offers them (default true).
    /// Only the creator's choice counts; it is recorded in the header.
    pub asymmetric_fences: bool,
    /// The shape of the type a typed object holds: recorded by a creator, checked by an
    /// opener (`None`: an untyped segment, or an unchecked open). Set by the typed
    /// objects' constructors, never by users. Boxed: most options carry none.
    pub(crate) shape: Option<Box<Shape>>,
}

impl Default for SegmentOptions {
    fn default() -> Self {
        SegmentOptions {
            mode: 0o600,
            prefault: false,
            lock_in_ram: false,
            keep: false,
            open_timeout: Duration::from_secs(2),
            asymmetric_fences: true,
            shape: None,
        }
    }
}

impl SegmentOptions {
    /// The defaults.
    pub fn new() -> Self {
        Self::default()
    }
    /// Set [`SegmentOptions::mode`].
    pub fn mode(mut self, mode: u32) -> Self {
        self.mode = mode;
        self
    }
    /// Set [`SegmentOptions::prefault`].
    pub fn prefault(mut self, yes: bool) -> Self {
        self.prefault = yes;
        self
    }
    /// Set [`SegmentOptions::lock_in_ram`].
    pub fn lock_in_ram(mut self, yes: bool) -> Self {
        self.lock_in_ram = yes;
        self
    }
    /// Set [`SegmentOptions::keep`].
    pub fn keep(mut self, yes: bool) -> Self {
        self.keep = yes;
        self
    }
    /// Set [`SegmentOptions::open_timeout`].
    pub fn open_timeout(mut self, t: Duration) -> Self {
        self.open_timeout = t;
        self
    }
    /// Set [`SegmentOptions::asymmetric_fences`].
    pub fn asymmetric_fences(mut self, yes: bool) -> Self {
        self.asymmetric_fences = yes;
        self
    }
    /// These options for an object holding `shape` (recorded at create, checked at open).
    #[cfg_attr(loom, allow(dead_code))] // the typed objects are not built under loom
    pub(crate) fn typed(&self, shape: Option<Shape>) -> Self {
        SegmentOptions {
            shape: shape.map(Box::new),
            ..self.clone()
        }
    }
}

/// One mapping of a shmring segment, with the descriptor (and so the open file
/// description, which carries this party's liveness locks) it was mapped from.
///
/// ```
/// use shmring::shm::{Segment, SegmentKind, SegmentOptions};
/// let seg = Segment::anonymous(SegmentKind::SpscRing, [0; 8], 4096, &SegmentOptions::new())?;
/// assert_eq!(seg.area_len(), 4096);
/// # Ok::<(), shmring::Error>(())
/// ```
#[derive(Debug)]
pub struct Segment {
    /// The mapping's entry in the SIGBUS containment table (named, unsealed files only).
    /// Declared before `map`: dropped, so unregistered, before the range is unmapped.
    guard: Option<Registration>,
    map: MmapRaw,
    fd: OwnedFd,
    name: Option<String>,
    /// Unlinks the name when dropped: set on the creating mapping of a named segment
    /// (boxed: only creators have one, and it keeps `Segment` small).
    unlink_guard: Option<Box<UnlinkGuard>>,
    info: HeaderInfo,
}

/// The name a creator unlinks on drop, and the file it created under it: the name is
/// unlinked only if it still refers to that file (see [`FileId::unlink_if_same`] for
/// the window that remains).
#[derive(Debug)]
struct UnlinkGuard(String, FileId);

impl Drop for UnlinkGuard {
    fn drop(&mut self) {
        self.1.unlink_if_same(&self.0);
    }
}

/// Remove the named segment `name` from `/dev/shm`. Mappings stay valid. Only a regular
/// file is removed: anything else at that name is [`Error::NotARegularFile`].
pub fn unlink(name: &str) -> Result<()> {
    validate_name(name)?;
    let path = super::file::path_of(name);
    match rustix::fs::lstat(path.as_str()) {
        Ok(st) if rustix::fs::FileType::from_raw_mode(st.st_mode) != rustix::fs::FileType::RegularFile => {
            return Err(Error::NotARegularFile {
                name: name.into(),
                found: super::file::type_name(rustix::fs::FileType::from_raw_mode(st.st_mode)),
            });
        }
        _ => {}
    }
    rustix::shm::unlink(name).map_err(|e| match e {
        Errno::NOENT => Error::NotFound { name: name.into() },
        e => Error::io("shm_unlink", name, e),
    })
}

fn display(name: Option<&str>) -> &str {
    name.unwrap_or("<anonymous>")
}

/// Where the area starts: after the header, and the type record if there is one.
fn area_offset(typed: bool) -> usize {
    if typed {
        HEADER_SIZE + TYPE_RECORD_SIZE
    } else {
        HEADER_SIZE
    }
}

fn total_size(area_size: usize, opts: &SegmentOptions) -> Result<u64> {
    let total = (area_offset(opts.shape.is_some()) as u64)
        .checked_add(area_size as u64)
        .filter(|t| *t <= isize::MAX as u64)
        .ok_or_else(|| Error::InvalidArgument(format!("area of {area_size} bytes is too large")))?;
    Ok(total)
}

/// A mapping and its registration for SIGBUS containment.
type Mapped = (MmapRaw, Option<Registration>);

/// Map `len` bytes of `fd`. Unless the file is sealed against shrinking (an anonymous
/// segment), the range is registered with the SIGBUS containment (see [`sigbus`])
/// *before* the mapping is touched (`MAP_POPULATE` included: it does not fault past
/// EOF, it stops there).
fn map(fd: BorrowedFd<'_>, len: u64, opts: &SegmentOptions, name: Option<&str>) -> Result<Mapped> {
    let len = usize::try_from(len).map_err(|_| Error::InvalidArgument("segment too large".into()))?;
    let sealed = rustix::fs::fcntl_get_seals(fd).is_ok_and(|s| s.contains(rustix::fs::SealFlags::SHRINK));
    let mut mo = MmapOptions::new();
    mo.len(len);
    if opts.prefault {
        mo.populate();
    }
    let map = mo
        .map_raw(fd.as_raw_fd())
        .map_err(|e| Error::io("mmap", display(name), e))?;
    let guard = if sealed {
        None
    } else {
        sigbus::register(fd.as_raw_fd(), map.as_mut_ptr(), map.len())
    };
    if opts.lock_in_ram {
        map.lock().map_err(|e| Error::io("mlock", display(name), e))?;
    }
    Ok((map, guard))
}

fn file_size(fd: BorrowedFd<'_>, name: Option<&str>) -> Result<u64> {
    let st = rustix::fs::fstat(fd).map_err(|e| Error::io("fstat", display(name), e))?;
    Ok(st.st_size as u64)
}

impl Segment {
    /// Create the named segment `name` exclusively, sized for a `kind` structure whose
    /// area is `area_size` bytes. The header is written but not yet READY: the caller
    /// sets up the area, then calls [`Segment::publish_ready`].
    ///
    /// Until READY, this process holds the segment's initialization lock (released by
    /// the kernel if it dies), so that openers wait for it and only for it. When this
    /// mapping drops, the name is unlinked (unless [`SegmentOptions::keep`]) only if it
    /// still refers to the file created here: a file another program created under the
    /// same name meanwhile is left alone.
    pub fn create(
        name: &str,
        kind: SegmentKind,
        params: [u64; 8],
        area_size: usize,
        opts: &SegmentOptions,
    ) -> Result<Self> {
        validate_name(name)?;
        let total = total_size(area_size, opts)?;
        let fd = open_regular(
            name,
            OFlags::CREATE | OFlags::EXCL | OFlags::RDWR,
            Mode::from_raw_mode(opts.mode & 0o777),
            "open",
        )?;
        let id = FileId::of(&fd, name)?;
        let setup = || -> Result<Mapped> {
            // First of all, tell openers that a live process is initializing this file
            // (the lock dies with this process), and who it is (for display).
            liveness::try_lock_slot(fd.as_fd(), INIT_SLOT).map_err(|e| Error::io("fcntl(F_OFD_SETLK)", name, e))?;
            stamp_creator(fd.as_fd(), kind, total, name)?;
            // shm_open's mode is filtered by the umask; apply the requested one exactly.
            rustix::fs::fchmod(&fd, Mode::from_raw_mode(opts.mode & 0o777))
                .map_err(|e| Error::io("fchmod", name, e))?;
            rustix::fs::ftruncate(&fd, total).map_err(|e| Error::io("ftruncate", name, e))?;
            map(fd.as_fd(), total, opts, Some(name))
        };
        match setup() {
            Ok(map) => {
                let guard = (!opts.keep).then(|| Box::new(UnlinkGuard(name.to_owned(), id)));
                let seg = Self::init(map, fd, Some(name.to_owned()), guard, kind, params, total, opts);
                Ok(seg)
            }
            Err(e) => {
                id.unlink_if_same(name);
                Err(e)
            }
        }
    }

    /// Create an anonymous segment (memfd, close-on-exec, sealed against shrinking and
    /// growing). Hand it to another process with [`Segment::into_fd`] or
    /// [`Segment::as_fd`] (inheritance or `SCM_RIGHTS`), then [`Segment::from_fd`].
    pub fn anonymous(kind: SegmentKind, params: [u64; 8], area_size: usize, opts: &SegmentOptions) -> Result<Self> {
        use rustix::fs::{MemfdFlags, SealFlags};
        let total = total_size(area_size, opts)?;
        let fd = rustix::fs::memfd_create(
            format!("shmring-{}", kind.name()),
            MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING,
        )
        .map_err(|e| Error::io("memfd_create", "", e))?;
        rustix::fs::ftruncate(&fd, total).map_err(|e| Error::io("ftruncate", "", e))?;
        // No peer can shrink the file under another's mapping (SIGBUS) or regrow it.
        rustix::fs::fcntl_add_seals(&fd, SealFlags::SHRINK | SealFlags::GROW | SealFlags::SEAL)
            .map_err(|e| Error::io("fcntl(F_ADD_SEALS)", "", e))?;
        let map = map(fd.as_fd(), total, opts, None)?;
        Ok(Self::init(map, fd, None, None, kind, params, total, opts))
    }

    #[allow(clippy::too_many_arguments)]
    fn init(
        (map, guard): Mapped,
        fd: OwnedFd,
        name: Option<String>,
        unlink_guard: Option<Box<UnlinkGuard>>,
        kind: SegmentKind,
        params: [u64; 8],
        total: u64,
        opts: &SegmentOptions,
    ) -> Self {
        let (pid, start) = self_identity();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        let mut fl = if opts.asymmetric_fences && crate::primitive::asymmetric_fences_available() {
            flags::ASYMMETRIC_FENCES
        } else {
            0
        };
        if opts.shape.is_some() {
            fl |= flags::TYPED;
        }
        let offset = area_offset(opts.shape.is_some()) as u64;
        let seg = Segment {
            guard,
            map,
            fd,
            name,
            unlink_guard,
            info: HeaderInfo {
                magic: MAGIC,
                version: LAYOUT_VERSION,
                kind: kind as u32,
                total_size: total,
                area_offset: offset,
                init_state: init_state::INITIALIZING,
                flags: fl,
                creator_pid: pid,
                creator_start_time: start,
                created_unix_ns: now,
                params,
            },
        };
        let h = seg.header();
        // Relaxed (all stores here): nobody may read them before the Release store of
        // READY in publish_ready, which orders them.
        h.magic.store(MAGIC, Ordering::Relaxed);
        h.version.store(LAYOUT_VERSION, Ordering::Relaxed);
        h.kind.store(kind as u32, Ordering::Relaxed);
        h.total_size.store(total, Ordering::Relaxed);
        h.area_offset.store(offset, Ordering::Relaxed);
        h.flags.store(fl, Ordering::Relaxed);
        h.creator_pid.store(pid, Ordering::Relaxed);
        h.creator_start_time.store(start, Ordering::Relaxed);
        h.created_unix_ns.store(now, Ordering::Relaxed);
        for (a, p) in h.params.iter().zip(params) {
            a.store(p, Ordering::Relaxed);
        }
        if let Some(shape) = &opts.shape {
            shape.store(seg.type_record());
        }
        h.init_state.store(init_state::INITIALIZING, Ordering::Relaxed);
        seg
    }

    /// The type record of a typed segment (the caller checked `flags::TYPED`, so the
    /// area offset, validated against the file, leaves room for it).
    fn type_record(&self) -> &TypeRecord {
        debug_assert!(self.info.flags & flags::TYPED != 0 && self.map.len() >= HEADER_SIZE + TYPE_RECORD_SIZE);
        // SAFETY: a typed segment's area starts after the record (area_offset checked
        // at create and attach against the mapping's length), so the record's bytes,
        // HEADER_SIZE (128-byte aligned from the page-aligned start) onwards, are
        // mapped; TypeRecord is all atomics, valid for any bit pattern; the mapping
        // lives as long as `self`.
        unsafe { &*(self.map.as_mut_ptr().add(HEADER_SIZE) as *const TypeRecord) }
    }

    /// The shape of the type this segment's object was created for (`None` for an
    /// untyped segment), read from the type record after the header;
    /// [`Error::Corrupted`] if the record is not valid.
    pub fn shape(&self) -> Result<Option<Shape>> {
        if self.info.flags & flags::TYPED == 0 {
            return Ok(None);
        }
        Shape::load(self.type_record())
            .map(Some)
            .map_err(|what| Error::Corrupted {
                name: self.display_name().to_owned(),
                what,
            })
    }

    /// Publish the segment: everything written before this call is visible to any
    /// process that opens it afterwards.
    pub fn publish_ready(&mut self) {
        // Release: pairs with the Acquire load in SegmentHeader::snapshot (open/from_fd).
        self.header().init_state.store(init_state::READY, Ordering::Release);
        self.info.init_state = init_state::READY;
        // Openers no longer look at the initialization lock once READY is published.
        liveness::unlock_slot(self.fd.as_fd(), INIT_SLOT);
    }

    /// Open the named segment `name`, which must hold a `kind` structure. Waits up to
    /// `opts.open_timeout` for its creator to publish READY, then validates the header
    /// against the file's real size.
    ///
    /// Refused at once: anything at `name` that is not a regular file
    /// ([`Error::NotARegularFile`]: a symlink is never followed, a FIFO never blocks),
    /// and a file that is not READY while no live process is initializing it
    /// ([`Error::NoLiveCreator`]: its creator died, or it never was a segment being
    /// created; a file changed within the last 250 ms gets the benefit of the doubt
    /// for that long). [`Error::NotReady`] means a live creator did not finish in time.
    pub fn open(name: &str, kind: SegmentKind, opts: &SegmentOptions) -> Result<Self> {
        validate_name(name)?;
        let fd = open_regular(name, OFlags::RDWR, Mode::empty(), "open")?;
        Self::attach(fd, Some(name.to_owned()), kind, opts)
    }

    /// Map a segment from a descriptor received from another process (inherited, or
    /// over `SCM_RIGHTS`). The descriptor's open file description is kept, with any
    /// liveness lock it carries.
    pub fn from_fd(fd: OwnedFd, kind: SegmentKind, opts: &SegmentOptions) -> Result<Self> {
        Self::attach(fd, None, kind, opts)
    }

    /// A second, independent mapping of the same segment through a new open file
    /// description (so that it can hold liveness locks of its own). Never unlinks.
    pub fn reopen(&self) -> Result<Self> {
        let fd = match &self.name {
            Some(name) => {
                let fd = open_regular(name, OFlags::RDWR, Mode::empty(), "open")?;
                if FileId::of(&fd, name)? != FileId::of(&self.fd, name)? {
                    return Err(Error::Corrupted {
                        name: name.clone(),
                        what: "the name now refers to another file than this segment's".into(),
                    });
                }
                fd
            }
            None => rustix::fs::open(
                format!("/proc/self/fd/{}", self.fd.as_raw_fd()),
                OFlags::RDWR | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| Error::io("open(/proc/self/fd)", "", e))?,
        };
        let (map, guard) = map(
            fd.as_fd(),
            self.info.total_size,
            &SegmentOptions::default(),
            self.name.as_deref(),
        )?;
        Ok(Segment {
            guard,
            map,
            fd,
            name: self.name.clone(),
            unlink_guard: None,
            info: self.info,
        })
    }

    fn attach(fd: OwnedFd, name: Option<String>, kind: SegmentKind, opts: &SegmentOptions) -> Result<Self> {
        let shown = display(name.as_deref()).to_owned();
        let corrupted = Error::corruption_of(&shown);
        let start = Instant::now();
        loop {
            let size = file_size(fd.as_fd(), name.as_deref())?;
            if size >= HEADER_SIZE as u64 {
                // Look at the header alone until READY: a huge (sparse) file is mapped
                // whole only once its header has been validated against its size.
                let (peek, peek_guard) = map(
                    fd.as_fd(),
                    HEADER_SIZE as u64,
                    &SegmentOptions::default(),
                    name.as_deref(),
                )?;
                // SAFETY: the mapping is HEADER_SIZE bytes, page-aligned (so aligned for
                // SegmentHeader), and SegmentHeader is all atomics, valid for any bit
                // pattern.
                let h = unsafe { &*(peek.as_mut_ptr() as *const SegmentHeader) };
                // Read with the SIGBUS containment armed (`map` registered the range): a
                // peer that shrinks the file meanwhile poisons the mapping (zero pages)
                // instead of killing this process. Then re-check the size: a creator
                // sizes its file once, before anyone can map it, so any change from here
                // on is a peer resizing it.
                let info = h.snapshot();
                let now = file_size(fd.as_fd(), name.as_deref())?;
                let resized = now != size || peek_guard.as_ref().is_some_and(Registration::is_poisoned);
                // Before READY a size change is the creator's own: it stamps its header
                // (the file is then HEADER_SIZE bytes long), then sizes the file once.
                // Look again (a file nobody initialises ends below as NoLiveCreator or
                // NotReady). After READY no honest process resizes the file, except in
                // one race: the first look saw the stamped header alone (HEADER_SIZE
                // bytes), and the creator sized the file and published READY before this
                // look read the header; then look again too.
                if resized && info.is_ready() && size != HEADER_SIZE as u64 {
                    return Err(corrupted(format!(
                        "the file was resized while being opened ({size} bytes, then {now})"
                    )));
                }
                if resized {
                    // Looked at a file being sized: nothing to conclude from this look.
                } else if info.magic != MAGIC && info.magic != 0 {
                    return Err(corrupted(format!(
                        "bad magic {:#018x}: not a shmring segment",
                        info.magic
                    )));
                } else if info.init_state > init_state::READY {
                    return Err(corrupted(format!("init state {} is not 0, 1 or 2", info.init_state)));
                } else if info.is_ready() {
                    if info.magic != MAGIC {
                        return Err(corrupted("READY without magic".into()));
                    }
                    Self::validate(&info, size, kind, &shown)?;
                    drop((peek, peek_guard));
                    let (map, guard) = map(fd.as_fd(), size, opts, name.as_deref())?;
                    // SAFETY: as above; this mapping is `size` >= HEADER_SIZE bytes.
                    let h = unsafe { &*(map.as_mut_ptr() as *const SegmentHeader) };
                    // Read again through the mapping that will be used (the Acquire of
                    // READY pairs with the creator's Release on these very addresses),
                    // and validate again: a peer may have changed it in between, or
                    // resized the file (then this mapping is poisoned, not fatal).
                    let info = h.snapshot();
                    let now = file_size(fd.as_fd(), name.as_deref())?;
                    if now != size || guard.as_ref().is_some_and(Registration::is_poisoned) {
                        return Err(corrupted(format!(
                            "the file was resized while being opened ({size} bytes, then {now})"
                        )));
                    }
                    if !info.is_ready() || info.magic != MAGIC {
                        return Err(corrupted("the header changed while it was being read".into()));
                    }
                    Self::validate(&info, size, kind, &shown)?;
                    let seg = Segment {
                        guard,
                        map,
                        fd,
                        name,
                        unlink_guard: None,
                        info,
                    };
                    seg.check_shape(opts.shape.as_deref())?;
                    return Ok(seg);
                }
            }
            if let Some(what) = no_live_creator(fd.as_fd(), size)? {
                return Err(Error::NoLiveCreator { name: shown, what });
            }
            if start.elapsed() >= opts.open_timeout {
                return Err(Error::NotReady {
                    name: shown,
                    waited_ms: start.elapsed().as_millis() as u64,
                });
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Check a READY header against the file size and the expected kind.
    fn validate(info: &HeaderInfo, file_size: u64, kind: SegmentKind, name: &str) -> Result<()> {
        let corrupted = |what: String| {
            Err(Error::Corrupted {
                name: name.to_owned(),
                what,
            })
        };
        if info.version != LAYOUT_VERSION {
            return Err(Error::IncompatibleVersion {
                name: name.to_owned(),
                found: info.version,
                supported: LAYOUT_VERSION,
            });
        }
        if info.kind != kind as u32 {
            return Err(Error::WrongKind {
                name: name.to_owned(),
                expected: kind.name(),
                found: SegmentKind::from_u32(info.kind)
                    .map(|k| k.name().to_owned())
                    .unwrap_or_else(|| format!("unknown kind {}", info.kind)),
            });
        }
        if info.total_size != file_size {
            return corrupted(format!(
                "header says {} bytes, the file has {}",
                info.total_size, file_size
            ));
        }
        if info.flags & !flags::KNOWN != 0 {
            return corrupted(format!("unknown flags {:#x}", info.flags));
        }
        let offset = area_offset(info.flags & flags::TYPED != 0);
        if info.area_offset != offset as u64 {
            return corrupted(format!("area offset {} is not {}", info.area_offset, offset));
        }
        if info.total_size < offset as u64 {
            return corrupted(format!(
                "{} bytes cannot hold the header and type record ({offset} bytes)",
                info.total_size
            ));
        }
        Ok(())
    }

    /// The header, in shared memory (peers may change it; use [`Segment::info`]).
    pub fn header(&self) -> &SegmentHeader {
        // SAFETY: every mapping is at least HEADER_SIZE bytes (checked at attach,
        // guaranteed by total_size at create) and page-aligned; the header is all
        // atomics, valid for any bit pattern; the mapping lives as long as `self`.
        unsafe { &*(self.map.as_mut_ptr() as *const SegmentHeader) }
    }

    /// Whether a peer truncated the file under this mapping and the SIGBUS containment
    /// replaced the mapping with private zero pages (see `docs/design-notes.md`). A
    /// poisoned segment is no longer shared with anyone: the structures built on it
    /// report it on their next liveness check (`Disconnected` for ring and queue ends,
    /// an error for the other objects), never wait on it forever. Always false for
    /// anonymous segments (sealed memfds cannot be truncated).
    #[inline]
    pub fn is_poisoned(&self) -> bool {
        self.guard.as_ref().is_some_and(Registration::is_poisoned)
    }

    /// [`Segment::is_poisoned`], after checking that the file still has the mapping's
    /// size (one `fstat`): if a peer resized it (shrunk or grown), the mapping is
    /// poisoned now, before any access faults. For liveness ticks.
    pub fn check_resized(&self) -> bool {
        self.guard.as_ref().is_some_and(Registration::check_size)
    }

    /// [`Segment::check_resized`] at most once per `interval` (in between, the poison
    /// flag and a clock read): for the cheap checks of waiting loops, so that a wait that
    /// never lasts a whole liveness interval still notices a resize.
    pub fn check_resized_every(&self, interval: Duration) -> bool {
        self.guard.as_ref().is_some_and(|g| g.check_size_every(interval))
    }

    /// `Err(Corrupted)` if [`Segment::check_resized`].
    pub fn check_poisoned(&self) -> Result<()> {
        if self.check_resized() {
            return Err(Error::Corrupted {
                name: self.display_name().to_owned(),
                what: "the file was truncated under this mapping (SIGBUS contained; the mapping is now private zeros)"
                    .into(),
            });
        }
        Ok(())
    }

    /// The validated snapshot of the header taken when this mapping was made.
    pub fn info(&self) -> &HeaderInfo {
        &self.info
    }

    /// Start of the structure's area (just after the header, and after the type record
    /// of a typed segment); 128-byte aligned.
    pub fn area_ptr(&self) -> *mut u8 {
        // SAFETY: the mapping is at least area_offset bytes (the total size, at least the
        // area offset, was checked against the file at attach, or made so at create), so
        // the offset is in bounds (or one past the end when the area is empty).
        unsafe { self.map.as_mut_ptr().add(self.area_start()) }
    }

    /// The area's offset: HEADER_SIZE, or past the type record (validated at attach).
    fn area_start(&self) -> usize {
        area_offset(self.info.flags & flags::TYPED != 0)
    }

    /// Size of the structure's area in bytes.
    pub fn area_len(&self) -> usize {
        self.map.len() - self.area_start()
    }

    /// Size of the mapping, header included.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Never true: a segment always holds at least its header.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The segment's name, `None` for an anonymous one.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// Display name: the name, or `<anonymous>`.
    pub(crate) fn display_name(&self) -> &str {
        display(self.name.as_deref())
    }

    /// Whether the structure on this segment must use asymmetric fences (the creator's
    /// choice, recorded in the header); an error if it must and this process cannot
    /// take part (membarrier unavailable here).
    #[cfg_attr(loom, allow(dead_code))] // rings are not built on segments under loom
    pub(crate) fn asymmetric_fences(&self) -> Result<bool> {
        let asym = self.info.flags & flags::ASYMMETRIC_FENCES != 0;
        if asym && !crate::primitive::asymmetric_fences_available() {
            return Err(Error::InvalidArgument(format!(
                "segment {:?} was created with asymmetric fences, but membarrier(GLOBAL_EXPEDITED) \
                 is not available in this process; recreate it with SegmentOptions::asymmetric_fences(false)",
                self.display_name()
            )));
        }
        Ok(asym)
    }

    /// Keep a named segment when this (creating) mapping drops.
    pub fn keep(&mut self) {
        if let Some(g) = self.unlink_guard.take() {
            std::mem::forget(*g);
        }
    }

    /// Unmap, and return the descriptor (with the liveness locks its open file
    /// description holds). A named segment is not unlinked.
    pub fn into_fd(mut self) -> OwnedFd {
        self.keep();
        self.fd
    }
}

impl AsFd for Segment {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}
