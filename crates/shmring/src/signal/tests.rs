//! In-process tests of the signal module. None of them touches SIGINT/SIGTERM or the
//! interrupt flag: the test harness's other tests share this process (those run in
//! child processes, in `tests/signal_process.rs`). Each test owns its real-time signal.

use super::*;
use std::time::Duration;

#[test]
fn bad_and_forbidden_numbers_are_refused_before_anything_is_registered() {
    for s in [libc::SIGKILL, libc::SIGSTOP, libc::SIGSEGV, libc::SIGILL, libc::SIGFPE] {
        assert!(
            matches!(Signals::new(&[s]), Err(SignalError::Forbidden(x)) if x == s),
            "{s}"
        );
        assert!(
            matches!(Interrupt::install(&[s]), Err(SignalError::Forbidden(x)) if x == s),
            "{s}"
        );
    }
    // glibc's own real-time signals (below SIGRTMIN).
    assert!(matches!(Signals::new(&[rtmin() - 1]), Err(SignalError::Forbidden(_))));
    for s in [0, -1, rtmax() + 1, 1000] {
        assert!(
            matches!(Signals::new(&[s]), Err(SignalError::Invalid(x)) if x == s),
            "{s}"
        );
        assert!(
            matches!(Interrupt::install(&[s]), Err(SignalError::Invalid(x)) if x == s),
            "{s}"
        );
        assert!(matches!(notify(std::process::id(), s), Err(SignalError::Invalid(x)) if x == s));
        assert!(matches!(ValueSignals::new(s), Err(SignalError::Invalid(x)) if x == s));
        assert!(matches!(queue(std::process::id(), s, 1), Err(SignalError::Invalid(x)) if x == s));
    }
    // A valid signal after a bad one: refused as a whole.
    assert!(matches!(
        Signals::new(&[SIGWINCH, libc::SIGKILL]),
        Err(SignalError::Forbidden(9))
    ));
    let s = Signals::new(&[SIGWINCH]).unwrap();
    assert!(matches!(s.add(libc::SIGSTOP), Err(SignalError::Forbidden(_))));
    assert!(matches!(s.add(4096), Err(SignalError::Invalid(4096))));
    // Values travel only with real-time signals.
    for s in [SIGUSR1, SIGWINCH, rtmin() - 1] {
        assert!(
            matches!(ValueSignals::new(s), Err(SignalError::NotRealTime(x)) if x == s),
            "{s}"
        );
        assert!(matches!(queue(std::process::id(), s, 1), Err(SignalError::NotRealTime(x)) if x == s));
    }
    let e = ValueSignals::new(SIGUSR1).unwrap_err().to_string();
    assert!(e.contains("real-time"), "{e}");
}

#[test]
fn bad_pids_and_missing_processes_are_errors() {
    // 0 and > i32::MAX would address process groups or every process.
    for pid in [0, u32::MAX, i32::MAX as u32 + 1] {
        assert!(matches!(notify(pid, SIGWINCH), Err(SignalError::Io { .. })), "{pid}");
        assert!(matches!(queue(pid, rtmin(), 1), Err(SignalError::Io { .. })), "{pid}");
    }
    // A reaped child's pid names no process (until reused, which takes a full cycle
    // of the pid space; ESRCH is then what kill reports).
    let mut c = std::process::Command::new("true").spawn().unwrap();
    let pid = c.id();
    c.wait().unwrap();
    match notify(pid, SIGWINCH) {
        Err(SignalError::Io { op, source }) => {
            assert_eq!(op, "kill");
            assert_eq!(source.raw_os_error(), Some(libc::ESRCH));
        }
        other => panic!("kill of a reaped pid: {other:?}"),
    }
}

#[test]
fn signals_receive_try_timeout_and_close() {
    // SIGWINCH's default action is to ignore it: harmless if it arrived unregistered.
    let mut s = Signals::new(&[SIGWINCH]).unwrap();
    assert_eq!(s.try_recv(), Err(SignalRecvError::Empty));
    assert_eq!(s.recv_timeout(Duration::from_millis(5)), Err(SignalRecvError::Timeout));
    notify(std::process::id(), SIGWINCH).unwrap();
    assert_eq!(s.recv_timeout(Duration::from_secs(10)), Ok(SIGWINCH));
    let h = s.handle();
    assert!(!h.is_closed());
    let t = std::thread::spawn(move || s.by_ref().count());
    std::thread::sleep(Duration::from_millis(20));
    h.close();
    assert!(h.is_closed());
    // The iterator ended (whatever it yielded meanwhile was a real SIGWINCH).
    let _yielded = t.join().unwrap();
}

#[test]
fn value_signals_overflow_is_counted_and_nothing_else_is_lost() {
    let sig = rtmin() + 3;
    let mut rx = ValueSignals::new(sig).unwrap();
    assert_eq!(rx.signal(), sig);
    assert_eq!(rx.try_recv(), Err(SignalRecvError::Empty));
    assert_eq!(rx.recv_timeout(Duration::from_millis(5)), Err(SignalRecvError::Timeout));
    let me = std::process::id();
    // More than the pipe holds (64 KiB = 8192 records at most), none received while
    // sending: the surplus is dropped and counted. Which thread of this (multi-threaded)
    // process handles each signal is the kernel's choice, so the order is not checked
    // here (tests/signal_process.rs checks it across processes).
    let sent = 10_000i32;
    for v in 1..=sent {
        loop {
            match queue(me, sig, v) {
                Ok(()) => break,
                // RLIMIT_SIGPENDING: the queue of pending signals is full; let the
                // handlers catch up.
                Err(SignalError::Io { source, .. }) if source.raw_os_error() == Some(libc::EAGAIN) => {
                    std::thread::sleep(Duration::from_millis(1))
                }
                Err(e) => panic!("sigqueue {v}: {e}"),
            }
        }
    }
    let mut seen = vec![false; sent as usize + 1];
    let mut got = 0u64;
    while got + rx.dropped() < sent as u64 {
        let (pid, v) = rx
            .recv_timeout(Duration::from_secs(10))
            .unwrap_or_else(|e| panic!("{e} after {got} received, {} dropped", rx.dropped()));
        assert_eq!(pid, me);
        assert!(
            (1..=sent).contains(&v) && !seen[v as usize],
            "value {v} unexpected or twice"
        );
        seen[v as usize] = true;
        got += 1;
    }
    assert_eq!(rx.try_recv(), Err(SignalRecvError::Empty));
    assert!(rx.dropped() > 0, "10,000 records fit in the pipe?");
    assert_eq!(got + rx.dropped(), sent as u64);
    // Room again: the next one arrives.
    queue(me, sig, -5).unwrap();
    assert_eq!(rx.recv_timeout(Duration::from_secs(10)), Ok((me, -5)));
}

#[test]
fn value_signal_sent_with_kill_carries_zero() {
    let sig = rtmin() + 4;
    let mut rx = ValueSignals::new(sig).unwrap();
    notify(std::process::id(), sig).unwrap();
    assert_eq!(rx.recv_timeout(Duration::from_secs(10)), Ok((std::process::id(), 0)));
    assert_eq!(rx.dropped(), 0);
}
