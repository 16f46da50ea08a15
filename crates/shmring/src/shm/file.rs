//! Opening and unlinking the files behind named segments, with distrust: another
//! program with write access to `/dev/shm` may have put anything at a segment's name.
//!
//! - Every open uses `O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC` and `fstat`s the descriptor:
//!   a symlink is never followed (so no file outside `/dev/shm` is ever attached), a
//!   FIFO never blocks the open, and anything that is not a regular file (symlink,
//!   FIFO, socket, directory, device) is refused at once with
//!   [`Error::NotARegularFile`](crate::Error::NotARegularFile).
//! - A creator remembers the device and inode of the file it created and unlinks the
//!   name only if the name still refers to that file ([`FileId::unlink_if_same`]).

use crate::{Error, Result};
use rustix::fd::{AsFd, OwnedFd};
use rustix::fs::{FileType, Mode, OFlags};
use rustix::io::Errno;

/// Where named segments live (as `shm_open` puts them).
pub(crate) const SHM_DIR: &str = "/dev/shm";

/// The path of the named segment `name` (already validated).
pub(crate) fn path_of(name: &str) -> String {
    format!("{SHM_DIR}/{name}")
}

/// What a file type is called in error messages.
pub(crate) fn type_name(t: FileType) -> &'static str {
    match t {
        FileType::RegularFile => "regular file",
        FileType::Directory => "directory",
        FileType::Symlink => "symbolic link",
        FileType::Fifo => "FIFO",
        FileType::Socket => "socket",
        FileType::CharacterDevice => "character device",
        FileType::BlockDevice => "block device",
        FileType::Unknown => "file of unknown type",
    }
}

fn not_regular(name: &str, t: FileType) -> Error {
    Error::NotARegularFile {
        name: name.to_owned(),
        found: type_name(t),
    }
}

/// Open `/dev/shm/name` with `flags` (plus `O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC`) and
/// accept it only if it is a regular file. A missing file is [`Error::NotFound`], an
/// existing one under `O_EXCL` [`Error::AlreadyExists`], a non-regular one
/// [`Error::NotARegularFile`]; `op` names the call in other errors.
pub(crate) fn open_regular(name: &str, flags: OFlags, mode: Mode, op: &'static str) -> Result<OwnedFd> {
    let path = path_of(name);
    let fd = match rustix::fs::open(
        path.as_str(),
        flags | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
        mode,
    ) {
        Ok(fd) => fd,
        Err(Errno::NOENT) => return Err(Error::NotFound { name: name.into() }),
        Err(Errno::EXIST) => return Err(Error::AlreadyExists { name: name.into() }),
        Err(e) => {
            // ELOOP (a symlink under O_NOFOLLOW), EISDIR, ENXIO (a socket, or a FIFO
            // without a reader), EACCES on a nodev mount...: say what is there if it
            // is not a regular file.
            return Err(match rustix::fs::lstat(path.as_str()) {
                Ok(st) if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile => {
                    not_regular(name, FileType::from_raw_mode(st.st_mode))
                }
                _ => Error::io(op, name, e),
            });
        }
    };
    let st = rustix::fs::fstat(&fd).map_err(|e| Error::io("fstat", name, e))?;
    let t = FileType::from_raw_mode(st.st_mode);
    if t != FileType::RegularFile {
        return Err(not_regular(name, t));
    }
    Ok(fd)
}

/// The identity of a file: device and inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FileId {
    dev: u64,
    ino: u64,
}

impl FileId {
    /// The identity of the file open as `fd`.
    pub(crate) fn of(fd: impl AsFd, name: &str) -> Result<Self> {
        let st = rustix::fs::fstat(fd).map_err(|e| Error::io("fstat", name, e))?;
        Ok(FileId {
            dev: st.st_dev,
            ino: st.st_ino,
        })
    }

    /// Unlink `/dev/shm/name` only if that name still refers to this file (compared
    /// with `lstat`, so a symlink placed there is never this file). Returns whether
    /// it unlinked.
    ///
    /// The window that remains: `lstat` then `unlink` is not atomic. Another program
    /// that removes the name and creates a new file under it between the two calls
    /// (microseconds) loses its new file. Linux has no "unlink if inode" call; closing
    /// the window would take a rename into a private name first, which has the same
    /// window the other way round.
    pub(crate) fn unlink_if_same(&self, name: &str) -> bool {
        let path = path_of(name);
        match rustix::fs::lstat(path.as_str()) {
            Ok(st) if st.st_dev == self.dev && st.st_ino == self.ino => rustix::fs::unlink(path.as_str()).is_ok(),
            _ => false,
        }
    }
}
