//! `shmring ls`, `stat`, `rm` and `gc` against things another program put at a
//! segment's name in /dev/shm: a symlink, a FIFO, a directory, a socket. Each is
//! refused at once (never followed, never blocked on) and never removed.

#[path = "../../shmring/tests/common/mod.rs"]
mod common;

use common::{Watchdog, unique_name};
use std::os::unix::ffi::OsStrExt;
use std::process::{Command, Output};
use std::time::Duration;

fn shmring(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_shmring"))
        .args(args)
        .output()
        .expect("run shmring")
}

fn mkfifo(path: &str) {
    let c = std::ffi::CString::new(std::path::Path::new(path).as_os_str().as_bytes()).unwrap();
    // SAFETY: `c` is a valid NUL-terminated path that outlives the call.
    let r = unsafe { libc::mkfifo(c.as_ptr(), 0o600) };
    assert_eq!(r, 0, "mkfifo {path}: {}", std::io::Error::last_os_error());
}

#[test]
fn non_regular_files_are_refused_by_every_subcommand() {
    // A FIFO opened for reading without O_NONBLOCK would block `stat` and `rm` forever.
    let _dog = Watchdog::new("cli on non-regular files", Duration::from_secs(120));
    let dir = std::env::temp_dir().join(format!("shmring-cli-files-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let target = dir.join("target");
    std::fs::write(&target, vec![0x5au8; 4096]).unwrap();
    let prefix = unique_name("cli-nonreg");
    for (tag, found) in [
        ("symlink", "symbolic link"),
        ("fifo", "FIFO"),
        ("dir", "directory"),
        ("socket", "socket"),
    ] {
        let name = format!("{prefix}-{tag}");
        let path = format!("/dev/shm/{name}");
        let _listener;
        match tag {
            "symlink" => std::os::unix::fs::symlink(&target, &path).unwrap(),
            "fifo" => mkfifo(&path),
            "dir" => std::fs::create_dir(&path).unwrap(),
            _ => _listener = std::os::unix::net::UnixListener::bind(&path).unwrap(),
        }
        for args in [
            vec!["stat", name.as_str()],
            vec!["rm", name.as_str()],
            vec!["rm", "--force", name.as_str()],
        ] {
            let out = shmring(&args);
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success(), "{tag}: {args:?} succeeded");
            assert!(
                err.contains("not a regular file") && err.contains(found),
                "{tag}: {args:?}: {err}"
            );
        }
        for args in [
            vec!["ls"],
            vec!["ls", "--all"],
            vec!["ls", "--json"],
            vec!["gc", "--prefix", prefix.as_str()],
            vec!["gc", "--force", "--prefix", prefix.as_str()],
        ] {
            let out = shmring(&args);
            assert!(
                out.status.success(),
                "{tag}: {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(!text.contains(&name), "{tag}: {args:?} lists it as a segment: {text}");
        }
        assert!(std::fs::symlink_metadata(&path).is_ok(), "{tag}: removed");
        if tag == "dir" {
            std::fs::remove_dir(&path).unwrap();
        } else {
            std::fs::remove_file(&path).unwrap();
        }
    }
    assert_eq!(std::fs::read(&target).unwrap(), vec![0x5au8; 4096]);
    std::fs::remove_dir_all(&dir).unwrap();
}
