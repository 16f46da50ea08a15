//! The crate's error type for setup paths, [`Error`]. The hot paths' errors are small,
//! `Copy`, never allocating, and live with their operation (the SPSC ring's
//! [`SendError`](crate::SendError) and [`RecvError`](crate::RecvError) in `ring::spsc`).

use std::io;

/// Result of shmring's setup operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Errors of setup paths: creating, opening and validating segments and ring ends.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A system call failed.
    #[error("{op} {name:?}: {source}")]
    Io {
        /// The operation that failed (`shm_open`, `mmap`, ...).
        op: &'static str,
        /// The segment it was applied to (empty for anonymous segments).
        name: String,
        /// The error the kernel returned.
        #[source]
        source: io::Error,
    },
    /// A segment name outside `[A-Za-z0-9._-]{1,200}` or starting with a dot.
    #[error("invalid segment name {name:?}: {reason}")]
    InvalidName {
        /// The rejected name.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// `create` found a segment of that name already.
    #[error("segment {name:?} already exists (remove it with shm::unlink or pick another name)")]
    AlreadyExists {
        /// The name.
        name: String,
    },
    /// `open` found no segment of that name.
    #[error("segment {name:?} does not exist")]
    NotFound {
        /// The name.
        name: String,
    },
    /// The segment holds another kind of structure.
    #[error("segment {name:?} holds a {found}, not a {expected}")]
    WrongKind {
        /// The segment's name (empty for anonymous segments).
        name: String,
        /// The kind the caller asked for.
        expected: &'static str,
        /// The kind the header says.
        found: String,
    },
    /// The segment was written by an incompatible layout version.
    #[error("segment {name:?} has layout version {found}; this build reads version {supported}")]
    IncompatibleVersion {
        /// The segment's name.
        name: String,
        /// The header's version.
        found: u32,
        /// The version this build understands.
        supported: u32,
    },
    /// A header field or a structure parameter is out of bounds.
    #[error("segment {name:?} is corrupted: {what}")]
    Corrupted {
        /// The segment's name.
        name: String,
        /// Which field failed which check.
        what: String,
    },
    /// The creator did not publish READY within the open timeout.
    #[error("segment {name:?} was not initialized within {waited_ms} ms (creator died or is still creating it)")]
    NotReady {
        /// The segment's name.
        name: String,
        /// How long `open` waited.
        waited_ms: u64,
    },
    /// Something other than a regular file sits at a segment's name (a symlink, FIFO,
    /// socket, directory or device, put there by another program): refused without
    /// following, opening or blocking on it.
    #[error("{name:?} in /dev/shm is a {found}, not a regular file: refused (shmring only opens regular files)")]
    NotARegularFile {
        /// The segment's name.
        name: String,
        /// What is there (`symbolic link`, `FIFO`, `socket`, `directory`, ...).
        found: &'static str,
    },
    /// The segment is not initialized and no live process is initializing it (its
    /// creator died, or the file was never a shmring segment being created): refused
    /// at once instead of after the open timeout.
    #[error(
        "segment {name:?} is not initialized and no live process is creating it ({what}); remove it and create it again"
    )]
    NoLiveCreator {
        /// The segment's name.
        name: String,
        /// What was found (`empty file`, `header without its creator`, ...).
        what: String,
    },
    /// Another live process already holds this end of the structure.
    #[error("the {role} end of {name:?} is already attached by another party")]
    AlreadyAttached {
        /// The segment's name.
        name: String,
        /// `producer` or `consumer`.
        role: &'static str,
    },
    /// This end was attached once and has since been closed; it cannot be re-attached.
    #[error("the {role} end of {name:?} was closed; it cannot be attached again")]
    EndClosed {
        /// The segment's name.
        name: String,
        /// `producer` or `consumer`.
        role: &'static str,
    },
    /// The object was created for another type than the one it is opened as (see
    /// [`shm::shape`](crate::shm::shape)): both shapes are named, and why they differ.
    #[error("{kind} {name:?} was created for `{created}`, opened as `{opened}`: {why}")]
    WrongType {
        /// The segment's name (`<anonymous>` for a descriptor).
        name: String,
        /// The kind of segment (`mpmc` for a queue, `value`, `mutex`, ...).
        kind: &'static str,
        /// The shape it was created for (its rendering).
        created: String,
        /// The shape the opener asked for.
        opened: String,
        /// Why they differ (`different field types`, ...).
        why: String,
    },
    /// A parameter the caller passed is out of range.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
}

impl Error {
    pub(crate) fn io(op: &'static str, name: &str, source: impl Into<io::Error>) -> Self {
        Error::Io {
            op,
            name: name.to_owned(),
            source: source.into(),
        }
    }

    /// The maker of [`Error::Corrupted`] errors of the segment `name`: a check that
    /// fails says `what`.
    pub(crate) fn corruption_of(name: &str) -> impl Fn(String) -> Self + use<> {
        let name = name.to_owned();
        move |what| Error::Corrupted {
            name: name.clone(),
            what,
        }
    }
}
