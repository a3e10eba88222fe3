//! The upstream guard between real clients and a simulator over HTTP: a
//! `Retry-After` pauses every caller, an outage costs about one request per
//! breaker interval however many callers there are, the token bucket caps
//! the rate, and the requests in flight are capped.

use std::sync::Arc;
use std::time::{Duration, Instant};

use dezky_core::http::{RateLimit, UpstreamGuard, OPEN_FOR, THRESHOLD};
use dezky_simulators::authentik::{AuthentikSim, AuthentikSimOptions};
use dezky_upstream::authentik::{AuthentikClient, AuthentikError};
use reqwest::StatusCode;

async fn setup(limit: Option<RateLimit>) -> (AuthentikSim, AuthentikClient) {
    setup_with(UpstreamGuard::new("authentik", limit)).await
}

async fn setup_with(guard: UpstreamGuard) -> (AuthentikSim, AuthentikClient) {
    let sim = AuthentikSim::start(AuthentikSimOptions::default())
        .await
        .expect("start simulator");
    let http = dezky_core::http::client(None, Duration::from_secs(5)).expect("http client");
    let guard = Arc::new(guard);
    let client = AuthentikClient::new(http, &sim.url(), sim.api_token())
        .expect("client")
        .with_guard(guard);
    (sim, client)
}

fn unavailable(result: Result<Option<impl Sized>, AuthentikError>) -> String {
    match result {
        Err(AuthentikError::Unavailable(message)) => message,
        Err(other) => panic!("expected unavailable, got {other}"),
        Ok(_) => panic!("expected unavailable, got an answer"),
    }
}

const PK: &str = "00000000-0000-0000-0000-000000000000";

#[tokio::test]
async fn a_retry_after_pauses_the_upstream_for_every_caller() {
    let (sim, client) = setup(None).await;
    sim.faults()
        .throttle_next(1, StatusCode::TOO_MANY_REQUESTS, Duration::from_secs(1));
    let first = unavailable(client.get_group(PK).await);
    assert!(first.contains("429"), "{first}");
    let callers: Vec<_> = (0..20)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move { unavailable(client.get_group(PK).await) })
        })
        .collect();
    for caller in callers {
        let message = caller.await.expect("caller");
        assert!(message.contains("paused"), "{message}");
    }
    assert_eq!(sim.faults().requests(), 1, "no paused request was sent");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(client.get_group(PK).await.expect("answered"), None);
    assert_eq!(sim.faults().requests(), 2);
}

#[tokio::test]
async fn a_503_with_retry_after_pauses_too() {
    let (sim, client) = setup(None).await;
    sim.faults()
        .throttle_next(1, StatusCode::SERVICE_UNAVAILABLE, Duration::from_secs(30));
    unavailable(client.get_group(PK).await);
    let message = unavailable(client.get_group(PK).await);
    assert!(
        message.contains("paused") && message.contains("503"),
        "{message}"
    );
    assert_eq!(sim.faults().requests(), 1);
}

#[tokio::test]
async fn an_outage_costs_about_one_request_per_interval_for_all_callers() {
    let (sim, client) = setup(None).await;
    sim.faults().set_outage(true);
    let window = Duration::from_secs(3);
    let started = Instant::now();
    let callers: Vec<_> = (0..50)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move {
                while started.elapsed() < window {
                    let _ = client.get_group(PK).await;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            })
        })
        .collect();
    for caller in callers {
        caller.await.expect("caller");
    }
    let sent = sim.faults().requests();
    let probes = (window.as_secs_f64() / OPEN_FOR.as_secs_f64()).ceil() as u64;
    assert!(
        sent >= u64::from(THRESHOLD) && sent <= u64::from(THRESHOLD) + 50 + probes,
        "{sent} requests: the failures that opened the breaker, then one probe per interval"
    );
    // The callers stopped at an arbitrary point of the interval: this call
    // may be its probe (sent, and failed); right after it the circuit is open.
    let mut open = unavailable(client.get_group(PK).await);
    if !open.contains("circuit open") {
        assert!(open.contains("503"), "{open}");
        open = unavailable(client.get_group(PK).await);
    }
    assert!(open.contains("circuit open"), "{open}");
    let before = sim.faults().requests();
    sim.faults().set_outage(false);
    tokio::time::sleep(OPEN_FOR + Duration::from_millis(100)).await;
    assert_eq!(
        client.get_group(PK).await.expect("the probe closes it"),
        None
    );
    assert_eq!(client.get_group(PK).await.expect("closed"), None);
    assert_eq!(sim.faults().requests(), before + 2);
}

#[tokio::test]
async fn the_token_bucket_caps_the_request_rate() {
    let limit = RateLimit::new(20, 1);
    let (sim, client) = setup(limit).await;
    let started = Instant::now();
    for _ in 0..21 {
        client.get_group(PK).await.expect("answered");
    }
    assert!(
        started.elapsed() >= Duration::from_millis(950),
        "21 requests at 20/s with no burst need a second, took {:?}",
        started.elapsed()
    );
    assert_eq!(sim.faults().requests(), 21);
}

#[tokio::test]
async fn requests_in_flight_never_exceed_the_cap() {
    let (sim, client) =
        setup_with(UpstreamGuard::unlimited("authentik").with_max_in_flight(2)).await;
    let held = Duration::from_millis(100);
    sim.faults().set_latency(held);
    let started = Instant::now();
    let callers: Vec<_> = (0..6)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move { client.get_group(PK).await })
        })
        .collect();
    for caller in callers {
        assert_eq!(caller.await.expect("caller").expect("answered"), None);
    }
    assert!(
        started.elapsed() >= held * 3,
        "6 requests held {held:?} each, 2 at a time, need 3 rounds; took {:?}",
        started.elapsed()
    );
    assert_eq!(sim.faults().requests(), 6);
}

#[tokio::test]
async fn a_request_queued_behind_the_cap_is_refused_if_the_circuit_opened_meanwhile() {
    let (sim, client) =
        setup_with(UpstreamGuard::unlimited("authentik").with_max_in_flight(1)).await;
    sim.faults().set_outage(true);
    sim.faults().set_latency(Duration::from_millis(20));
    // All admitted while the circuit is closed, then sent one at a time.
    let callers: Vec<_> = (0..THRESHOLD + 5)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move { client.get_group(PK).await })
        })
        .collect();
    let mut refused = 0;
    for caller in callers {
        if let Err(AuthentikError::Unavailable(message)) = caller.await.expect("caller") {
            refused += usize::from(message.contains("circuit open"));
        }
    }
    assert_eq!(
        sim.faults().requests(),
        u64::from(THRESHOLD),
        "only the failures that opened the circuit were sent"
    );
    assert_eq!(refused, 5);
}
