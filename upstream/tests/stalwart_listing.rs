//! `StalwartClient::map_domains` against the simulator: a listing larger
//! than one request's 4,000 domains follows the query pages across requests
//! and hands every domain to `keep` exactly once.

use std::collections::BTreeSet;
use std::time::Duration;

use dezky_simulators::stalwart::{StalwartSim, StalwartSimOptions, DEFAULT_API_KEY};
use dezky_upstream::stalwart::{StalwartAuth, StalwartClient};

#[tokio::test]
async fn a_listing_beyond_one_request_keeps_every_domain_once() {
    let sim = StalwartSim::start(StalwartSimOptions::default())
        .await
        .expect("simulator starts");
    let count = 4_321;
    for i in 0..count {
        sim.create_domain(&format!("d{i}.test"), None)
            .expect("domain created");
    }
    let http = dezky_core::http::client(None, Duration::from_secs(10)).expect("http client");
    let client = StalwartClient::new(
        http,
        &sim.url(),
        StalwartAuth::Bearer(DEFAULT_API_KEY.into()),
    );
    let before = sim.recorder().total();
    let names = client
        .map_domains(|domain| domain.name)
        .await
        .expect("listed");
    let distinct: BTreeSet<&String> = names.iter().collect();
    assert_eq!((names.len(), distinct.len()), (count, count));
    assert!(distinct.contains(&format!("d{}.test", count - 1)));
    assert_eq!(
        sim.recorder().total() - before,
        2,
        "4,000 domains a request"
    );
}
