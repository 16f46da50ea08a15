//! Accepting under pressure, across real processes: silent clients queued ahead of an
//! honest one on a `Listener`, and a Manager whose descriptors run out (`EMFILE`)
//! under a connection flood: it must back off instead of spinning, and serve again
//! when the flood ends.

use crate::common;

use common::peer::*;
use common::*;
use shmring::manager::Manager;
use shmring::net::{Address, Client, Listener};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixStream};
use std::time::{Duration, Instant};

const KEY: &[u8] = b"pressure test key";

fn run_peer(role: &str) -> ! {
    exit_with(match role {
        "honest-client" => honest_client_peer(),
        "emfile-manager" => emfile_manager_peer(),
        other => Err(format!("unknown role {other}")),
    })
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// A raw connection that never says a word.
fn silent(addr: &Address) -> UnixStream {
    let Address::Abstract(name) = addr else {
        panic!("abstract addresses only")
    };
    let a = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    UnixStream::connect_addr(&a).unwrap()
}

fn honest_client_peer() -> Result<(), String> {
    let mut c = Client::connect(&peer_addr()?, Some(KEY)).map_err(err)?;
    c.send_bytes(b"honest").map_err(err)?;
    say("sent");
    Ok(())
}

#[test]
fn silent_clients_ahead_do_not_make_an_honest_one_fail() {
    common::dispatch(run_peer);
    let _dog = Watchdog::new("silent clients ahead", Duration::from_secs(120));
    let addr = abstract_addr("silent-ahead");
    let l = Listener::bind(&addr, Some(KEY)).unwrap();
    // 50 silent clients, each with the default 5 s handshake timeout: served one after
    // the other, they would hold an honest client back for 250 s.
    let silents: Vec<UnixStream> = (0..50).map(|_| silent(&addr)).collect();
    let mut honest = Peer::spawn(
        "silent_clients_ahead_do_not_make_an_honest_one_fail",
        "honest-client",
        &[("ADDR", addr.to_string())],
    );
    let mut failed = 0;
    let got = loop {
        match l.accept_timeout(Duration::from_secs(60)) {
            Ok(mut conn) => break conn.recv_bytes().unwrap(),
            Err(shmring::ConnError::Timeout) => panic!("no honest client accepted"),
            Err(_) => failed += 1,
        }
    };
    assert_eq!(got, b"honest");
    // The honest client's handshake did not wait for the silent ones to time out.
    assert!(failed < 50, "{failed} handshakes failed before the honest one");
    honest.expect("sent", Duration::from_secs(30));
    let (st, _) = honest.exit(Duration::from_secs(30));
    assert!(st.success(), "honest client: {st:?}");
    drop(silents);
}

/// Clock ticks of CPU (user + system) that process `pid` has used.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let rest = &stat[stat.rfind(')').unwrap() + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // Fields 14 and 15 (utime, stime), counted from field 3 after the command name.
    f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
}

/// A Manager server in a process allowed only a few more descriptors than it has.
fn emfile_manager_peer() -> Result<(), String> {
    let open = std::fs::read_dir("/proc/self/fd").map_err(err)?.count() as u64;
    let lim = libc::rlimit {
        rlim_cur: open + 24,
        rlim_max: open + 24,
    };
    // SAFETY: `lim` is a valid rlimit that outlives the call.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } != 0 {
        return Err(format!("setrlimit: {}", std::io::Error::last_os_error()));
    }
    let _server = Manager::serve(&peer_addr()?, Some(KEY)).map_err(err)?;
    say("serving");
    std::thread::sleep(Duration::from_secs(300));
    Ok(())
}

#[test]
fn manager_out_of_descriptors_backs_off_and_serves_again() {
    common::dispatch(run_peer);
    let _dog = Watchdog::new("manager under EMFILE", Duration::from_secs(120));
    let addr = abstract_addr("emfile");
    let mut server = Peer::spawn(
        "manager_out_of_descriptors_backs_off_and_serves_again",
        "emfile-manager",
        &[("ADDR", addr.to_string())],
    );
    server.expect("serving", Duration::from_secs(30));
    // Works before the flood.
    let m = Manager::connect(&addr, Some(KEY)).unwrap();
    m.dict::<String, u64>("d")
        .unwrap()
        .insert(&"before".into(), &1)
        .unwrap();
    drop(m);

    // The flood: far more silent connections than the server has descriptors for;
    // the rest wait in its backlog, where `poll` keeps reporting them.
    let flood: Vec<UnixStream> = (0..100).map(|_| silent(&addr)).collect();
    std::thread::sleep(Duration::from_millis(300));
    let (t0, c0) = (Instant::now(), cpu_ticks(server.pid()));
    std::thread::sleep(Duration::from_secs(2));
    let (wall, cpu) = (t0.elapsed(), cpu_ticks(server.pid()) - c0);
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let cpu_s = cpu as f64 / hz;
    // A CPU-share check, not a timing: a spinning accept loop uses a whole core
    // (cpu ~ wall); a backed-off one a tiny fraction. Generous bound.
    assert!(
        cpu_s < wall.as_secs_f64() * 0.3,
        "the server used {cpu_s:.2} s of CPU in {wall:?} of flood"
    );

    // The flood ends: the server serves again.
    drop(flood);
    let deadline = Instant::now() + Duration::from_secs(60);
    let value = loop {
        let r = Manager::connect(&addr, Some(KEY))
            .and_then(|m| m.dict::<String, u64>("d").and_then(|d| d.get(&"before".into())));
        match r {
            Ok(v) => break v,
            Err(e) if Instant::now() < deadline => {
                eprintln!("not yet: {e}");
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) => panic!("the server does not serve after the flood: {e}"),
        }
    };
    assert_eq!(value, Some(1));
    server.kill9();
}
