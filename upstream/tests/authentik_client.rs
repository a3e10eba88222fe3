//! The Authentik client against the simulator over real HTTP: pagination,
//! client-side filter re-checks, and the typed error of every failure kind.

use std::time::Duration;

use dezky_simulators::authentik::{AuthentikSim, AuthentikSimOptions};
use dezky_upstream::authentik::{AuthentikClient, AuthentikError, GroupPatch, NewGroup};
use reqwest::StatusCode;
use serde_json::{json, Map, Value};

async fn sim(options: AuthentikSimOptions) -> AuthentikSim {
    AuthentikSim::start(options).await.expect("start simulator")
}

fn client(sim: &AuthentikSim, token: &str, timeout: Duration) -> AuthentikClient {
    let http = dezky_core::http::client(None, timeout).expect("http client");
    AuthentikClient::new(http, &sim.url(), token).expect("client")
}

fn ok_client(sim: &AuthentikSim) -> AuthentikClient {
    client(sim, sim.api_token(), Duration::from_secs(5))
}

fn attributes(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

async fn with_groups(options: AuthentikSimOptions, count: usize) -> AuthentikSim {
    let sim = sim(options).await;
    for i in 0..count {
        sim.create_group(&format!("g-{i:03}"), attributes(json!({"n": i})))
            .expect("group");
    }
    sim
}

#[tokio::test]
async fn list_follows_every_page_with_integer_or_float_numbers() {
    for float_pagination in [false, true] {
        let sim = with_groups(
            AuthentikSimOptions {
                float_pagination,
                ..AuthentikSimOptions::default()
            },
            260,
        )
        .await;
        let groups = ok_client(&sim).list_all_groups().await.expect("list");
        let mut names: Vec<&str> = groups.iter().map(|g| g.name.as_str()).collect();
        names.dedup();
        assert_eq!(
            names.len(),
            260,
            "every group once (floats: {float_pagination})"
        );
        assert_eq!(
            sim.faults().requests(),
            3,
            "three pages: the server caps page_size at 100"
        );
    }
}

#[tokio::test]
async fn attribute_lookup_is_rechecked_when_the_server_drops_the_filter() {
    let sim = with_groups(AuthentikSimOptions::default(), 250).await;
    let client = ok_client(&sim);
    let hits = client
        .find_groups_by_attributes(&attributes(json!({"n": 249})))
        .await
        .expect("filtered");
    assert_eq!(hits.len(), 1);
    assert_eq!(sim.faults().requests(), 1, "the server filtered");
    // A key the server cannot evaluate returns all 250 groups (3 pages);
    // none of them has that key, so none is kept.
    let hits = client
        .find_groups_by_attributes(&attributes(json!({"n__": 1})))
        .await
        .expect("unfiltered");
    assert!(hits.is_empty());
    assert_eq!(sim.faults().requests(), 4);
}

#[tokio::test]
async fn crud_round_trip_with_absence_as_values() {
    let sim = sim(AuthentikSimOptions::default()).await;
    let client = ok_client(&sim);
    let created = client
        .create_group(&NewGroup {
            name: "tenant-acme".into(),
            attributes: attributes(json!({"k": "v"})),
        })
        .await
        .expect("create");
    assert_eq!(
        client
            .find_group_by_name("tenant-acme")
            .await
            .expect("find"),
        Some(created.clone())
    );
    assert_eq!(
        client.find_group_by_name("tenant-ac").await.expect("find"),
        None
    );
    let patched = client
        .update_group(
            &created.pk,
            &GroupPatch {
                name: Some("tenant-acme2".into()),
                attributes: None,
            },
        )
        .await
        .expect("patch");
    assert_eq!(patched.attributes, created.attributes);
    assert!(client.delete_group(&created.pk).await.expect("delete"));
    assert!(!client
        .delete_group(&created.pk)
        .await
        .expect("delete again"));
    assert_eq!(client.get_group(&created.pk).await.expect("get"), None);
    let vanished = client
        .update_group(&created.pk, &GroupPatch::default())
        .await
        .expect_err("patch of a deleted group");
    assert!(
        matches!(vanished, AuthentikError::NotFound { .. }),
        "{vanished}"
    );
}

#[tokio::test]
async fn duplicate_name_is_a_typed_conflict_in_both_shapes() {
    for legacy_parent_shape in [false, true] {
        let sim = sim(AuthentikSimOptions {
            legacy_parent_shape,
            ..AuthentikSimOptions::default()
        })
        .await;
        sim.create_group("taken", Map::new()).expect("group");
        let error = ok_client(&sim)
            .create_group(&NewGroup {
                name: "taken".into(),
                attributes: Map::new(),
            })
            .await
            .expect_err("duplicate");
        assert!(
            matches!(&error, AuthentikError::DuplicateName { name, .. } if name == "taken"),
            "{error}"
        );
    }
}

#[tokio::test]
async fn failures_map_to_typed_errors() {
    let sim = sim(AuthentikSimOptions::default()).await;
    let bad = client(&sim, "wrong", Duration::from_secs(5));
    let error = bad.list_all_groups().await.expect_err("bad token");
    assert!(
        matches!(error, AuthentikError::Unauthorized { status: 403, .. }),
        "{error}"
    );

    sim.faults().fail_next(1, StatusCode::SERVICE_UNAVAILABLE);
    let error = ok_client(&sim).list_all_groups().await.expect_err("503");
    assert!(matches!(error, AuthentikError::Unavailable(_)), "{error}");

    sim.faults().set_latency(Duration::from_secs(2));
    let impatient = client(&sim, sim.api_token(), Duration::from_millis(200));
    let error = impatient.list_all_groups().await.expect_err("timeout");
    assert!(
        matches!(&error, AuthentikError::Unavailable(m) if m.contains("timed out")),
        "{error}"
    );
    sim.faults().clear();

    let url = sim.url();
    drop(sim);
    let http = dezky_core::http::client(None, Duration::from_secs(2)).expect("http");
    let gone = AuthentikClient::new(http, &url, "t").expect("client");
    let error = gone.list_all_groups().await.expect_err("refused");
    assert!(matches!(error, AuthentikError::Unavailable(_)), "{error}");
}
