//! Cross-process test of the typed broadcast ends: a subscriber process of the same
//! shape receives every value; one of another shape is refused with `WrongType`.

use crate::common::*;
use serde::{Deserialize, Serialize};
use shmring::Error;
use shmring::broadcast::{self, Options, Policy, Start, TypedPublisher, TypedRecvError, TypedSubscriber};
use std::time::{Duration, Instant};

/// The shape the publisher records.
#[derive(Serialize, Deserialize, shmring::Schema, Debug, PartialEq)]
#[postcard(crate = shmring::postcard_schema)]
struct Quote {
    symbol: String,
    bid: i64,
    ask: i64,
}

/// Another shape: the same name and field names, another field type.
mod other {
    #[derive(serde::Serialize, serde::Deserialize, shmring::Schema, Debug, PartialEq)]
    #[postcard(crate = shmring::postcard_schema)]
    pub struct Quote {
        pub symbol: String,
        pub bid: f64,
        pub ask: f64,
    }
}

const MESSAGES: u64 = 20_000;

fn quote(i: u64) -> Quote {
    Quote {
        symbol: format!("S{i}{}", "y".repeat((i % 29) as usize)),
        bid: i as i64,
        ask: !(i as i64),
    }
}

fn same_shape_subscriber(name: &str) -> Result<(), String> {
    let opts = Options::new().start(Start::Oldest);
    let mut rx = TypedSubscriber::<Quote>::open_with(name, &opts).map_err(|e| format!("open: {e}"))?;
    for i in 0..MESSAGES {
        let q = rx.recv().map_err(|e| format!("recv {i}: {e}"))?;
        if q != quote(i) {
            return Err(format!("message {i}: got {q:?}"));
        }
    }
    match rx.recv_timeout(Duration::from_secs(30)) {
        Err(TypedRecvError::Recv(broadcast::RecvError::Disconnected)) => Ok(()),
        other => Err(format!("after the stream: {other:?}, expected Disconnected")),
    }
}

fn other_shape_subscriber(name: &str) -> Result<(), String> {
    match TypedSubscriber::<other::Quote>::open(name) {
        Err(Error::WrongType { created, opened, .. }) if created.contains("i64") && opened.contains("f64") => Ok(()),
        Err(e) => Err(format!("expected WrongType naming both shapes, got {e}")),
        Ok(_) => Err("a subscriber of another shape was let in".into()),
    }
}

#[test]
fn a_same_shape_subscriber_process_receives_and_another_shape_is_refused() {
    if let Some(role) = role() {
        let name = std::env::var("RING").unwrap();
        let r = match role.as_str() {
            "same" => same_shape_subscriber(&name),
            "other" => other_shape_subscriber(&name),
            r => Err(format!("unknown role {r}")),
        };
        if let Err(e) = &r {
            eprintln!("peer failed: {e}");
        }
        std::process::exit(i32::from(r.is_err()));
    }
    let _dog = Watchdog::new("typed broadcast across processes", Duration::from_secs(120));
    let name = unique_name("bcast-typed");
    let mut tx = TypedPublisher::<Quote>::create(&name, 1 << 14, 8, Policy::Lossless).unwrap();
    let test = "a_same_shape_subscriber_process_receives_and_another_shape_is_refused";
    let mut same = spawn_peer(test, "same", &[("RING", name.clone())]).spawn().unwrap();
    let mut other = spawn_peer(test, "other", &[("RING", name.clone())]).spawn().unwrap();
    let start = Instant::now();
    while broadcast::inspect(&name).unwrap().subscribers.is_empty() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the subscriber did not attach"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    for i in 0..MESSAGES {
        tx.send(&quote(i)).unwrap();
    }
    drop(tx);
    let st = wait_child(&mut other, Duration::from_secs(60));
    assert!(st.success(), "the other-shape subscriber: {st}");
    let st = wait_child(&mut same, Duration::from_secs(100));
    assert!(st.success(), "the same-shape subscriber: {st}");
}
