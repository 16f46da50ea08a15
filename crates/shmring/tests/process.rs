//! `Process` across real processes. A libtest binary re-executed as a child would run
//! the tests again, so this is a `harness = false` test: `main` hands control to the
//! entry registry first (children stop there), then runs the checks in order, printing
//! each result, and exits non-zero if any failed. A watchdog aborts a hang.

mod common;

use common::Watchdog;
use shmring::process::{self, Process, UNKNOWN_ENTRY};
use shmring::{Queue, handoff};
use std::io::{BufRead, BufReader, Read};
use std::process::Stdio;
use std::time::{Duration, Instant};

/// Exit with the code given as the first argument.
fn exit_with(args: &[String]) -> i32 {
    args[0].parse().expect("code")
}

/// Print the arguments, one line.
fn echo(args: &[String]) -> i32 {
    println!("args {}", args.join("|"));
    0
}

/// Sleep (long enough to be terminated or killed first).
fn sleeper(_: &[String]) -> i32 {
    std::thread::sleep(Duration::from_secs(120));
    0
}

/// Square every job from the inherited queue "jobs" into "results" until 0 arrives.
fn squares(_: &[String]) -> i32 {
    let mut jobs: Queue<u64> = handoff::from_env("jobs").expect("jobs");
    let mut results: Queue<u64> = handoff::from_env("results").expect("results");
    // The same name twice is refused (the descriptors have one owner).
    assert!(handoff::from_env::<Queue<u64>>("jobs").is_err());
    loop {
        let n = jobs.get_timeout(Duration::from_secs(60)).expect("job");
        if n == 0 {
            return 0;
        }
        results.put(&(n * n)).expect("put");
    }
}

/// Connect to the parent's manager through the inherited `ConnectInfo` "manager" and
/// count this child in its dict, under its lock.
fn manager_client(args: &[String]) -> i32 {
    let info: shmring::manager::ConnectInfo = handoff::from_env("manager").expect("manager info");
    let m = info.connect().expect("connect to the parent's manager");
    let lock = m.lock("l").expect("lock");
    lock.acquire().expect("acquire");
    let d = m.dict::<String, u64>("children").expect("dict");
    d.update_with(&"count".to_owned(), |n| n.unwrap_or(0) + 1)
        .expect("update");
    d.insert(&args[0], &u64::from(std::process::id())).expect("insert");
    lock.release().expect("release");
    0
}

/// Start a sleeper that dies with this process, report its pid, and wait to be killed.
fn middle(_: &[String]) -> i32 {
    let mut child = Process::new("sleeper").die_with_parent(true);
    child.start().expect("start grandchild");
    println!("grandchild {}", child.pid().expect("pid"));
    std::thread::sleep(Duration::from_secs(120));
    0
}

/// Start this program again by hand (plain `Command`: the environment, including the
/// handoff variable meant for this process, is inherited) to run `env_probe`.
fn env_relay(_: &[String]) -> i32 {
    let st = std::process::Command::new(std::env::current_exe().expect("exe"))
        .env(process::ENTRY_VAR, "env_probe")
        .status()
        .expect("spawn probe");
    st.code().unwrap_or(-1)
}

/// A grandchild must not take an object passed to its parent: exit 0 if refused.
fn env_probe(_: &[String]) -> i32 {
    match handoff::from_env::<Queue<u64>>("probe") {
        Err(handoff::HandoffError::Env { reason, .. }) if reason.contains("parent") => {
            println!("refused: {reason}");
            0
        }
        other => {
            println!("not refused: {other:?}");
            1
        }
    }
}

type Check = fn() -> Result<(), String>;

fn main() {
    process::run_if_child(&[
        ("exit_with", exit_with),
        ("echo", echo),
        ("sleeper", sleeper),
        ("squares", squares),
        ("middle", middle),
        ("env_relay", env_relay),
        ("env_probe", env_probe),
        ("manager_client", manager_client),
    ]);
    let _w = Watchdog::new("process tests", Duration::from_secs(240));
    let checks: [(&str, Check); 9] = [
        ("exit codes 0 and 7 come back", exit_codes),
        (
            "arguments reach the entry and stdout can be piped",
            arguments_and_stdout,
        ),
        ("unknown entry exits non-zero with a message", unknown_entry),
        (
            "terminate and kill a sleeping child: exitcode -15 / -9",
            terminate_and_kill,
        ),
        ("join_timeout expires while the child runs", join_timeout_expires),
        ("queues passed to the child carry jobs and results", queues_to_child),
        (
            "a grandchild cannot take what was passed to its parent",
            grandchild_refused,
        ),
        (
            "die_with_parent: the grandchild dies with a SIGKILLed middle",
            parent_death,
        ),
        (
            "children reach the parent's Manager through ConnectInfo",
            manager_children,
        ),
    ];
    let mut failed = 0;
    for (name, check) in checks {
        let t = Instant::now();
        match std::panic::catch_unwind(check) {
            Ok(Ok(())) => println!("ok    {name} ({:?})", t.elapsed()),
            Ok(Err(e)) => {
                failed += 1;
                println!("FAIL  {name}: {e}");
            }
            Err(_) => {
                failed += 1;
                println!("FAIL  {name}: panicked");
            }
        }
    }
    println!("{} passed, {failed} failed", checks.len() - failed);
    std::process::exit(if failed == 0 { 0 } else { 1 });
}

fn ensure(cond: bool, what: impl FnOnce() -> String) -> Result<(), String> {
    if cond { Ok(()) } else { Err(what()) }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn exit_codes() -> Result<(), String> {
    // Spawn + join through Process, against the same re-execution by hand (printed).
    let (mut ours, mut plain) = (Vec::new(), Vec::new());
    for _ in 0..20 {
        let t = Instant::now();
        let code = Process::spawn("exit_with", ["3"]).and_then(|mut p| p.join());
        ours.push(t.elapsed());
        ensure(matches!(code, Ok(3)), || format!("Process exit_with 3: {code:?}"))?;
        let t = Instant::now();
        let st = std::process::Command::new(std::env::current_exe().map_err(|e| e.to_string())?)
            .env(process::ENTRY_VAR, "exit_with")
            .arg("3")
            .status()
            .map_err(|e| e.to_string())?;
        plain.push(t.elapsed());
        ensure(st.code() == Some(3), || format!("Command exit_with 3: {st}"))?;
    }
    let (a, b) = (median(ours), median(plain));
    println!(
        "      spawn+join median of 20: Process {a:?}, Command {b:?} (ratio {:.2})",
        a.as_secs_f64() / b.as_secs_f64()
    );
    for code in [0, 7] {
        let mut p = Process::spawn("exit_with", [code.to_string()]).map_err(|e| e.to_string())?;
        ensure(p.pid().is_some(), || "no pid".into())?;
        let got = p.join().map_err(|e| e.to_string())?;
        ensure(got == code, || format!("exit code {got}, expected {code}"))?;
        ensure(p.exitcode() == Some(code), || format!("exitcode() {:?}", p.exitcode()))?;
        ensure(!p.is_alive(), || "alive after join".into())?;
    }
    Ok(())
}

fn arguments_and_stdout() -> Result<(), String> {
    let mut p = Process::new("echo").arg("a b").args(["", "c"]).stdout(Stdio::piped());
    ensure(p.exitcode().is_none() && !p.is_alive(), || "state before start".into())?;
    p.start().map_err(|e| e.to_string())?;
    let mut out = String::new();
    p.take_stdout()
        .ok_or("no stdout pipe")?
        .read_to_string(&mut out)
        .map_err(|e| e.to_string())?;
    ensure(out == "args a b||c\n", || format!("child printed {out:?}"))?;
    ensure(p.join().map_err(|e| e.to_string())? == 0, || "non-zero exit".into())?;
    ensure(matches!(p.start(), Err(process::ProcessError::AlreadyStarted)), || {
        "started twice".into()
    })
}

fn unknown_entry() -> Result<(), String> {
    let mut p = Process::new("no_such_entry").stderr(Stdio::piped());
    p.start().map_err(|e| e.to_string())?;
    let mut err = String::new();
    p.take_stderr()
        .ok_or("no stderr pipe")?
        .read_to_string(&mut err)
        .map_err(|e| e.to_string())?;
    let code = p.join().map_err(|e| e.to_string())?;
    ensure(code == UNKNOWN_ENTRY, || format!("exit code {code}"))?;
    ensure(err.contains("\"no_such_entry\"") && err.contains("squares"), || {
        format!("stderr {err:?}")
    })
}

fn terminate_and_kill() -> Result<(), String> {
    for (term, expected) in [(true, -15), (false, -9)] {
        let mut p = Process::spawn("sleeper", Vec::<String>::new()).map_err(|e| e.to_string())?;
        ensure(p.is_alive(), || "not alive after start".into())?;
        ensure(p.exitcode().is_none(), || "exitcode while running".into())?;
        if term { p.terminate() } else { p.kill() }.map_err(|e| e.to_string())?;
        let code = p.join().map_err(|e| e.to_string())?;
        ensure(code == expected, || format!("exitcode {code}, expected {expected}"))?;
        ensure(!p.is_alive(), || "alive after join".into())?;
        // Signalling a reaped child is a no-op, not a signal to a recycled pid.
        p.kill().map_err(|e| e.to_string())?;
    }
    Ok(())
}

fn join_timeout_expires() -> Result<(), String> {
    let mut p = Process::spawn("sleeper", Vec::<String>::new()).map_err(|e| e.to_string())?;
    let t = Instant::now();
    let r = p.join_timeout(Duration::from_millis(100)).map_err(|e| e.to_string())?;
    println!("      join_timeout(100 ms) returned {r:?} after {:?}", t.elapsed());
    ensure(r.is_none(), || {
        format!("join_timeout returned {r:?} for a sleeping child")
    })?;
    ensure(p.is_alive(), || "not alive after an expired join_timeout".into())?;
    p.kill().map_err(|e| e.to_string())?;
    let r = p.join_timeout(Duration::from_secs(30)).map_err(|e| e.to_string())?;
    ensure(r == Some(-9), || format!("after kill: {r:?}"))
}

fn queues_to_child() -> Result<(), String> {
    let jobs: Queue<u64> = Queue::new(64).map_err(|e| e.to_string())?;
    let mut results: Queue<u64> = Queue::new(64).map_err(|e| e.to_string())?;
    let mut p = Process::new("squares")
        .pass("jobs", jobs.try_clone().map_err(|e| e.to_string())?)
        .map_err(|e| e.to_string())?
        .pass("results", results.try_clone().map_err(|e| e.to_string())?)
        .map_err(|e| e.to_string())?;
    p.start().map_err(|e| e.to_string())?;
    let mut jobs = jobs;
    let n = 500u64;
    for i in 1..=n {
        jobs.put(&i).map_err(|e| e.to_string())?;
        let r = results
            .get_timeout(Duration::from_secs(30))
            .map_err(|e| e.to_string())?;
        ensure(r == i * i, || format!("job {i}: result {r}"))?;
    }
    jobs.put(&0).map_err(|e| e.to_string())?;
    let code = p.join().map_err(|e| e.to_string())?;
    ensure(code == 0, || format!("squares exited {code}"))
}

fn grandchild_refused() -> Result<(), String> {
    let q: Queue<u64> = Queue::new(4).map_err(|e| e.to_string())?;
    let mut p = Process::new("env_relay")
        .pass("probe", q)
        .map_err(|e| e.to_string())?
        .stdout(Stdio::piped());
    p.start().map_err(|e| e.to_string())?;
    let mut out = String::new();
    p.take_stdout()
        .ok_or("no stdout")?
        .read_to_string(&mut out)
        .map_err(|e| e.to_string())?;
    let code = p.join().map_err(|e| e.to_string())?;
    ensure(code == 0, || format!("probe exit {code}: {out:?}"))?;
    println!("      {}", out.trim());
    Ok(())
}

fn alive(pid: u32) -> bool {
    // A zombie (reparented to an init that has not reaped it yet) counts as dead.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => false,
        Ok(s) => {
            let state = s.rsplit_once(") ").and_then(|(_, r)| r.chars().next());
            !matches!(state, Some('Z' | 'X'))
        }
    }
}

fn parent_death() -> Result<(), String> {
    let mut m = Process::new("middle").stdout(Stdio::piped());
    m.start().map_err(|e| e.to_string())?;
    let mut line = String::new();
    BufReader::new(m.take_stdout().ok_or("no stdout")?)
        .read_line(&mut line)
        .map_err(|e| e.to_string())?;
    let pid: u32 = line
        .trim()
        .strip_prefix("grandchild ")
        .and_then(|p| p.parse().ok())
        .ok_or_else(|| format!("middle printed {line:?}"))?;
    ensure(alive(pid), || format!("grandchild {pid} not running before the kill"))?;
    m.kill().map_err(|e| e.to_string())?;
    ensure(m.join().map_err(|e| e.to_string())? == -9, || {
        "middle not killed".into()
    })?;
    let t = Instant::now();
    while alive(pid) {
        if t.elapsed() > Duration::from_secs(30) {
            // Do not leave it behind.
            let _ = rustix::process::kill_process(
                rustix::process::Pid::from_raw(pid as i32).expect("pid"),
                rustix::process::Signal::KILL,
            );
            return Err(format!("grandchild {pid} still alive 30 s after its parent died"));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    println!("      grandchild gone {:?} after the middle was reaped", t.elapsed());
    Ok(())
}

fn manager_children() -> Result<(), String> {
    use shmring::manager::{ConnectInfo, Manager};
    let addr = format!("@shmring-test-manager-child-{}", std::process::id())
        .parse()
        .map_err(|e| format!("{e}"))?;
    let server = Manager::serve(&addr, Some(b"child key")).map_err(|e| e.to_string())?;
    let m = Manager::connect(&addr, Some(b"child key")).map_err(|e| e.to_string())?;
    let mut kids = Vec::new();
    for (i, info) in [m.connect_info(), ConnectInfo::new(addr.clone(), Some(b"child key"))]
        .into_iter()
        .enumerate()
    {
        let name = format!("child{i}");
        let mut p = Process::new("manager_client")
            .arg(name.as_str())
            .pass("manager", info)
            .map_err(|e| e.to_string())?;
        p.start().map_err(|e| e.to_string())?;
        kids.push((name, p));
    }
    let d = m.dict::<String, u64>("children").map_err(|e| e.to_string())?;
    for (name, mut p) in kids {
        let pid = p.pid().ok_or("no pid")?;
        ensure(p.join().map_err(|e| e.to_string())? == 0, || format!("{name} failed"))?;
        ensure(d.get(&name).map_err(|e| e.to_string())? == Some(u64::from(pid)), || {
            format!("{name} did not record its pid {pid}")
        })?;
    }
    ensure(d.get(&"count".into()).map_err(|e| e.to_string())? == Some(2), || {
        "both children counted".into()
    })?;
    // A wrong key in the info: the child's connect is refused (it panics: exit 101).
    let mut p = Process::new("manager_client")
        .arg("wrong")
        .pass("manager", ConnectInfo::new(addr, Some(b"wrong key")))
        .map_err(|e| e.to_string())?
        .stderr(Stdio::null());
    p.start().map_err(|e| e.to_string())?;
    ensure(p.join().map_err(|e| e.to_string())? == 101, || {
        "a wrong key connected".into()
    })?;
    server.shutdown();
    Ok(())
}
