//! Only ever the file you mean: what another program puts at a segment's name in
//! `/dev/shm` (a symlink, FIFO, directory, socket; an empty, sparse or magic-only file;
//! a new file after the name was removed) is refused at once or left alone.

use crate::common;

use common::peer::*;
use common::*;
use shmring::Error;
use shmring::ring::spsc::{Consumer, Producer};
use shmring::shm::{self, Segment, SegmentKind, SegmentOptions, inspect};
use std::os::unix::ffi::OsStrExt;
use std::time::Duration;

fn shm_path(name: &str) -> String {
    format!("/dev/shm/{name}")
}

fn run_peer(role: &str) -> ! {
    exit_with(match role {
        "second-creator" => second_creator_peer(),
        "stalled-creator" => stalled_creator_peer(),
        other => Err(format!("unknown role {other}")),
    })
}

fn mkfifo(path: &str) {
    let c = std::ffi::CString::new(std::path::Path::new(path).as_os_str().as_bytes()).unwrap();
    // SAFETY: `c` is a valid NUL-terminated path that outlives the call.
    let r = unsafe { libc::mkfifo(c.as_ptr(), 0o600) };
    assert_eq!(r, 0, "mkfifo {path}: {}", std::io::Error::last_os_error());
}

/// Every way of opening a segment, and probe/unlink, on a name where something that is
/// not a regular file sits: `NotARegularFile` at once (a FIFO would block a plain open
/// forever; the watchdog catches that), nothing followed, nothing removed.
#[test]
fn non_regular_files_at_a_name_are_refused_at_once() {
    let _dog = Watchdog::new("non-regular files", Duration::from_secs(30));
    // A symlink's target: a real segment image outside /dev/shm, which must stay as it is.
    let dir = std::env::temp_dir().join(format!("shmring-files-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let target = dir.join("target");
    let image = vec![0x5au8; 8192];
    std::fs::write(&target, &image).unwrap();

    let kinds: [(&str, &str); 4] = [
        ("symlink", "symbolic link"),
        ("fifo", "FIFO"),
        ("dir", "directory"),
        ("socket", "socket"),
    ];
    for (tag, found) in kinds {
        let name = unique_name(&format!("nonreg-{tag}"));
        let path = shm_path(&name);
        let _listener;
        match tag {
            "symlink" => std::os::unix::fs::symlink(&target, &path).unwrap(),
            "fifo" => mkfifo(&path),
            "dir" => std::fs::create_dir(&path).unwrap(),
            _ => _listener = std::os::unix::net::UnixListener::bind(&path).unwrap(),
        }
        let opts = SegmentOptions::new();
        let results: Vec<(&str, shmring::Result<()>)> = vec![
            ("Segment::open", Segment::open(&name, SegmentKind::Raw, &opts).map(drop)),
            ("Consumer::open", Consumer::open(&name).map(drop)),
            ("Producer::open", Producer::open(&name).map(drop)),
            ("Event::open", shmring::sync::Event::open(&name).map(drop)),
            ("inspect::probe", inspect::probe(&name).map(drop)),
            ("shm::unlink", shm::unlink(&name)),
        ];
        for (what, r) in results {
            match r {
                Err(Error::NotARegularFile { found: f, .. }) => assert_eq!(f, found, "{tag}: {what}"),
                other => panic!("{tag}: {what}: {other:?}"),
            }
        }
        // A create never replaces it either.
        assert!(
            matches!(Producer::create(&name, 4096), Err(Error::AlreadyExists { .. })),
            "{tag}: create"
        );
        // Still there (unlink refused), and the symlink's target untouched.
        assert!(std::fs::symlink_metadata(&path).is_ok(), "{tag}: removed");
        if tag == "dir" {
            std::fs::remove_dir(&path).unwrap();
        } else {
            std::fs::remove_file(&path).unwrap();
        }
    }
    assert_eq!(
        std::fs::read(&target).unwrap(),
        image,
        "the symlink's target was modified"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A second program that creates, under a name this test's creator still maps, a
/// segment of its own (after the name was removed), keeps it, and exits.
fn second_creator_peer() -> Result<(), String> {
    let name = env_str("NAME");
    let mut seg = Segment::create(
        &name,
        SegmentKind::Raw,
        [42, 0, 0, 0, 0, 0, 0, 0],
        4096,
        &SegmentOptions::new().keep(true),
    )
    .map_err(|e| e.to_string())?;
    seg.publish_ready();
    say("created");
    Ok(())
}

#[test]
fn name_reuse_the_first_creators_drop_leaves_the_seconds_file() {
    common::dispatch(run_peer);
    let _dog = Watchdog::new("name reuse", Duration::from_secs(60));
    let name = unique_name("reuse");
    let first = Producer::create(&name, 4096).unwrap();
    // Someone removes the name; another program creates its own segment under it.
    shm::unlink(&name).unwrap();
    let mut p = Peer::spawn(
        "name_reuse_the_first_creators_drop_leaves_the_seconds_file",
        "second-creator",
        &[("NAME", name.clone())],
    );
    p.expect("created", Duration::from_secs(30));
    let second_pid = p.pid();
    p.finish(Duration::from_secs(30));
    drop(first);
    match inspect::probe(&name) {
        Ok(inspect::Probe::Shmring(info)) => {
            assert_eq!(info.creator_pid, second_pid, "not the second program's file");
            assert_eq!(info.params[0], 42);
        }
        other => panic!("the second program's segment is gone: {other:?}"),
    }
    shm::unlink(&name).unwrap();
}

/// A creator that stops between creating its segment and publishing READY, until
/// killed.
fn stalled_creator_peer() -> Result<(), String> {
    let name = env_str("NAME");
    let _seg =
        Segment::create(&name, SegmentKind::Raw, [0; 8], 4096, &SegmentOptions::new()).map_err(|e| e.to_string())?;
    say("stalled");
    std::thread::sleep(Duration::from_secs(120));
    Ok(())
}

/// Empty, huge sparse, magic-only and zero-filled files that nobody initializes are
/// `NoLiveCreator` (not `NotReady` after the 2 s open timeout); a creator that is alive
/// but slow is waited for (`NotReady`), and the same file becomes `NoLiveCreator` once
/// that creator is killed.
#[test]
fn unready_files_without_a_live_creator_are_refused_fast() {
    common::dispatch(run_peer);
    let _dog = Watchdog::new("unready files", Duration::from_secs(90));
    let magic = u64::from_le_bytes(*b"SHMRING\0").to_ne_bytes();
    type Make = fn(&std::fs::File, &[u8; 8]);
    let files: [(&str, Make); 4] = [
        ("empty", |_, _| {}),
        ("sparse", |f, _| f.set_len(1 << 40).unwrap()),
        ("magic-only", |f, m| {
            use std::os::unix::fs::FileExt;
            f.set_len(8192).unwrap();
            f.write_all_at(m, 0).unwrap();
        }),
        ("zeros", |f, _| f.set_len(8192).unwrap()),
    ];
    for (tag, make) in files {
        let name = unique_name(&format!("unready-{tag}"));
        let f = std::fs::File::create(shm_path(&name)).unwrap();
        make(&f, &magic);
        drop(f);
        // The default options: a 2 s open timeout, which must not be what ends it.
        for r in [
            Segment::open(&name, SegmentKind::Raw, &SegmentOptions::new()).map(drop),
            Consumer::open(&name).map(drop),
        ] {
            assert!(matches!(r, Err(Error::NoLiveCreator { .. })), "{tag}: {r:?}");
        }
        std::fs::remove_file(shm_path(&name)).unwrap();
    }

    // A live creator still initializing: waited for, up to the open timeout.
    let name = unique_name("unready-stalled");
    let mut p = Peer::spawn(
        "unready_files_without_a_live_creator_are_refused_fast",
        "stalled-creator",
        &[("NAME", name.clone())],
    );
    p.expect("stalled", Duration::from_secs(30));
    std::thread::sleep(Duration::from_millis(300)); // past the grace after creation
    let short = SegmentOptions::new().open_timeout(Duration::from_millis(400));
    let r = Segment::open(&name, SegmentKind::Raw, &short).map(drop);
    assert!(matches!(r, Err(Error::NotReady { .. })), "live creator: {r:?}");
    // The header already names it.
    match inspect::probe(&name) {
        Ok(inspect::Probe::Shmring(info)) => {
            assert_eq!(info.creator_pid, p.pid());
            assert!(!info.is_ready());
        }
        other => panic!("{other:?}"),
    }
    p.kill9();
    let r = Segment::open(&name, SegmentKind::Raw, &SegmentOptions::new()).map(drop);
    match r {
        Err(Error::NoLiveCreator { what, .. }) => assert!(what.contains("created by pid"), "{what}"),
        other => panic!("dead creator: {other:?}"),
    }
    shm::unlink(&name).unwrap();
}
