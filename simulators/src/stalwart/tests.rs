//! HTTP-level tests of the simulated Stalwart: the transport, auth and
//! JMAP rules of `shared/upstream/stalwart.md`.

use reqwest::StatusCode;
use serde_json::{json, Value};

use super::*;

async fn sim() -> StalwartSim {
    StalwartSim::start(StalwartSimOptions::default())
        .await
        .expect("simulator starts")
}

fn jmap(calls: Value) -> Value {
    json!({"using": ["urn:ietf:params:jmap:core", "urn:stalwart:jmap"], "methodCalls": calls})
}

async fn post(sim: &StalwartSim, body: &Value) -> (StatusCode, Value) {
    let response = reqwest::Client::new()
        .post(format!("{}/jmap", sim.url()))
        .bearer_auth(DEFAULT_API_KEY)
        .json(body)
        .send()
        .await
        .expect("request sent");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// The result of call `id` as `(name, result)`.
fn answer<'a>(body: &'a Value, id: &str) -> (&'a str, &'a Value) {
    let found = body["methodResponses"]
        .as_array()
        .and_then(|all| all.iter().find(|r| r[2] == id))
        .unwrap_or_else(|| panic!("no response {id} in {body}"));
    (found[0].as_str().unwrap_or_default(), &found[1])
}

#[tokio::test]
async fn bad_credentials_get_problem_json_401_and_revoked_ones_403() {
    let sim = StalwartSim::start(StalwartSimOptions {
        api_key: None,
        basic: Some(("admin".into(), "secret".into())),
    })
    .await
    .unwrap();
    let client = reqwest::Client::new();
    let url = format!("{}/jmap", sim.url());
    let body = jmap(json!([["x:Domain/get", {"ids": null}, "g"]]));
    let wrong = client
        .post(&url)
        .basic_auth("admin", Some("nope"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(wrong.headers()["content-type"], "application/problem+json");
    let problem: Value = wrong.json().await.unwrap();
    assert_eq!(
        (problem["status"].clone(), problem["title"].clone()),
        (json!(401), json!("Unauthorized"))
    );
    let ok = client
        .post(&url)
        .basic_auth("admin", Some("secret"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    sim.revoke_permissions(true);
    let denied = client
        .post(&url)
        .basic_auth("admin", Some("secret"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(denied.status(), StatusCode::FORBIDDEN);
    assert_eq!(denied.json::<Value>().await.unwrap()["status"], 403);
}

#[tokio::test]
async fn requests_without_json_content_type_are_not_json() {
    let sim = sim().await;
    let response = reqwest::Client::new()
        .post(format!("{}/jmap", sim.url()))
        .bearer_auth(DEFAULT_API_KEY)
        .body(jmap(json!([])).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let problem: Value = response.json().await.unwrap();
    assert_eq!(problem["type"], "urn:ietf:params:jmap:error:notJSON");
}

#[tokio::test]
async fn session_is_reached_through_the_well_known_redirect_and_api_is_not_jmap() {
    let sim = sim().await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let redirect = client
        .get(format!("{}/.well-known/jmap", sim.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(redirect.status(), StatusCode::TEMPORARY_REDIRECT);
    assert_eq!(redirect.headers()["location"], "/jmap/session");
    let session: Value = client
        .get(format!("{}/jmap/session", sim.url()))
        .bearer_auth(DEFAULT_API_KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        session["capabilities"]["urn:ietf:params:jmap:core"]["maxCallsInRequest"],
        16
    );
    let api = client
        .post(format!("{}/api", sim.url()))
        .bearer_auth(DEFAULT_API_KEY)
        .json(&jmap(json!([])))
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn more_than_sixteen_calls_are_refused() {
    let sim = sim().await;
    let calls: Vec<Value> = (0..17)
        .map(|i| json!(["x:Domain/get", {"ids": []}, format!("g{i}")]))
        .collect();
    let (status, problem) = post(&sim, &jmap(json!(calls))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(problem["type"], "urn:ietf:params:jmap:error:limit");
    assert_eq!(problem["limit"], "maxCallsInRequest");
}

#[tokio::test]
async fn lookups_by_normalised_name_reference_the_query_ids() {
    let sim = sim().await;
    let created = sim.create_domain("Bücher.DE", Some("books")).unwrap();
    let lookup = |name: &str| {
        jmap(json!([
            ["x:Domain/query", {"filter": {"name": name}}, "q"],
            ["x:Domain/get", {"#ids": {"resultOf": "q", "name": "x:Domain/query", "path": "/ids"},
                              "properties": ["name", "description"]}, "g"]
        ]))
    };
    let (_, body) = post(&sim, &lookup("xn--bcher-kva.de")).await;
    assert_eq!(answer(&body, "q").1["ids"], json!([created.id]));
    assert_eq!(answer(&body, "q").1["queryState"], "n");
    let list = &answer(&body, "g").1["list"];
    assert_eq!(
        list,
        &json!([{"id": created.id, "name": "xn--bcher-kva.de", "description": "books"}])
    );
    // The filter is an exact match on the stored form: not normalised.
    let (_, body) = post(&sim, &lookup("Bücher.de")).await;
    assert_eq!(answer(&body, "q").1["ids"], json!([]));
}

#[tokio::test]
async fn set_results_cannot_be_referenced_but_creation_ids_can() {
    let sim = sim().await;
    let (_, body) = post(
        &sim,
        &jmap(json!([
            ["x:Domain/set", {"create": {"d1": {"name": "a.test", "dkimManagement": {"@type": "Manual"}}}}, "s"],
            ["x:Domain/get", {"#ids": {"resultOf": "s", "name": "x:Domain/set", "path": "/created/d1/id"}}, "bad"],
            ["x:DkimSignature/set", {"create": {"k": {"domainId": "#d1", "selector": "s1"}}}, "k"],
            ["x:Domain/get", {"ids": ["#d1"], "properties": ["name"]}, "g"]
        ])),
    )
    .await;
    let id = answer(&body, "s").1["created"]["d1"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        answer(&body, "bad"),
        (
            "error",
            &json!({"type": "invalidResultReference", "description": "Cannot reference the result of x:Domain/set"})
        )
    );
    assert_eq!(answer(&body, "g").1["list"][0]["id"], json!(id));
    assert_eq!(sim.dkim_signatures()[0].domain_id, id);
}

#[tokio::test]
async fn destroying_a_linked_domain_names_the_linked_objects() {
    let sim = sim().await;
    let domain = sim.create_domain("a.test", None).unwrap();
    let keys: Vec<String> = sim.dkim_signatures().into_iter().map(|k| k.id).collect();
    assert_eq!(keys.len(), 2, "automatic DKIM management creates keys");
    let (_, body) = post(
        &sim,
        &jmap(json!([["x:Domain/set", {"destroy": [domain.id]}, "s"]])),
    )
    .await;
    let error = &answer(&body, "s").1["notDestroyed"][&domain.id];
    assert_eq!(error["type"], "objectIsLinked");
    assert_eq!(
        error["objectId"],
        json!({"object": "Domain", "id": domain.id})
    );
    assert_eq!(error["linkedObjects"].as_array().map(Vec::len), Some(2));
    let (_, body) = post(
        &sim,
        &jmap(json!([
            ["x:DkimSignature/set", {"destroy": keys}, "k"],
            ["x:Domain/set", {"destroy": [domain.id]}, "s"]
        ])),
    )
    .await;
    assert_eq!(answer(&body, "s").1["destroyed"], json!([domain.id]));
    assert!(sim.domains().is_empty());
}

#[tokio::test]
async fn create_conflicts_report_the_existing_domain() {
    let sim = sim().await;
    let existing = sim
        .create_domain_with(json!({"name": "a.test", "aliases": {"b.test": true}}))
        .unwrap();
    let (_, body) = post(
        &sim,
        &jmap(json!([["x:Domain/set", {"create": {"n": {"name": "B.test"}, "x": {"name": "acme.example"}},
                                         "update": {"zz": {"isEnabled": true}}}, "s"]])),
    )
    .await;
    let result = answer(&body, "s").1;
    assert_eq!(
        result["notCreated"]["n"],
        json!({"type": "primaryKeyViolation", "properties": ["name"], "objectId": {"object": "Domain", "id": existing.id}})
    );
    assert_eq!(
        result["notCreated"]["x"]["description"],
        "Invalid domain name"
    );
    assert_eq!(result["notUpdated"]["zz"]["type"], "notFound");
}

#[tokio::test]
async fn zone_files_change_on_every_get_and_server_set_properties_are_refused() {
    let sim = sim().await;
    let domain = sim.create_domain("a.test", None).unwrap();
    let get = jmap(json!([["x:Domain/get", {"ids": [domain.id]}, "g"]]));
    let (_, first) = post(&sim, &get).await;
    let (_, second) = post(&sim, &get).await;
    let zone = |b: &Value| answer(b, "g").1["list"][0]["dnsZoneFile"].clone();
    assert_ne!(zone(&first), zone(&second));
    assert_eq!(
        answer(&first, "g").1["list"][0]["dkimManagement"],
        json!({"@type": "Automatic"})
    );
    let (_, body) = post(
        &sim,
        &jmap(json!([["x:Domain/set", {"update": {(domain.id.clone()): {"createdAt": "2020-01-01T00:00:00Z"}}}, "s"]])),
    )
    .await;
    assert_eq!(
        answer(&body, "s").1["notUpdated"][&domain.id]["type"],
        "invalidPatch"
    );
}

#[tokio::test]
async fn unsupported_filters_unknown_methods_and_denied_methods_are_method_errors() {
    let sim = sim().await;
    sim.deny_method("x:DkimSignature/set", true);
    let (_, body) = post(
        &sim,
        &jmap(json!([
            ["x:Domain/query", {"filter": {"isEnabled": true}}, "f"],
            ["x:Domain/query", {"filter": {"operator": "OR", "conditions": []}}, "o"],
            ["x:Domain/changes", {"sinceState": "n"}, "c"],
            ["x:DkimSignature/set", {"destroy": ["a"]}, "d"],
            ["x:Domain/query", {"filter": {"text": "a.test"}}, "t"]
        ])),
    )
    .await;
    assert_eq!(answer(&body, "f").1["type"], "unsupportedFilter");
    assert_eq!(answer(&body, "o").1["type"], "unsupportedFilter");
    assert_eq!(answer(&body, "c").1["type"], "unknownMethod");
    assert_eq!(
        answer(&body, "d"),
        (
            "error",
            &json!({"type": "forbidden", "description": "You do not have permission to call x:DkimSignature/set"})
        )
    );
    assert_eq!(answer(&body, "t").0, "x:Domain/query");
}

#[tokio::test]
async fn principals_using_a_domain_block_its_destruction() {
    let sim = sim().await;
    let domain = sim
        .create_domain_with(json!({"name": "a.test", "dkimManagement": {"@type": "Manual"}}))
        .unwrap();
    let group = sim.link(LinkKind::Group, &domain.id).unwrap();
    let error = sim.destroy_domain(&domain.id).unwrap_err();
    assert_eq!(error.linked_objects, vec![("Group", group.clone())]);
    sim.unlink(&group);
    sim.destroy_domain(&domain.id).unwrap();
}

/// Creates `count` domains `d00000.test`, ... (manual DKIM: no keys); every
/// third is marked for tenant acme. Returns their ids in id order.
fn seed(sim: &StalwartSim, count: usize) -> Vec<String> {
    for i in 0..count {
        let description = if i % 3 == 0 {
            "dezky tenant acme"
        } else {
            "other"
        };
        sim.create_domain_with(
            json!({"name": format!("d{i:05}.test"), "description": description,
                                      "dkimManagement": {"@type": "Manual"}}),
        )
        .unwrap();
    }
    sim.domains().into_iter().map(|d| d.id).collect()
}

/// Runs one `x:Domain/query` with `args`; returns its result.
async fn query(sim: &StalwartSim, args: Value) -> Value {
    let (_, body) = post(sim, &jmap(json!([["x:Domain/query", args, "q"]]))).await;
    answer(&body, "q").1.clone()
}

fn ids(result: &Value) -> Vec<String> {
    serde_json::from_value(result["ids"].clone()).unwrap()
}

/// Pages through `filter` with `limit`, checking each page's `position`.
async fn page_through(sim: &StalwartSim, filter: Value, limit: usize) -> Vec<String> {
    let mut seen = Vec::new();
    loop {
        let args = json!({"filter": filter, "position": seen.len(), "limit": limit});
        let page = query(sim, args).await;
        let page_ids = ids(&page);
        if page_ids.is_empty() {
            return seen;
        }
        assert_eq!(page["position"], json!(seen.len()));
        assert!(page_ids.len() <= limit);
        seen.extend(page_ids);
    }
}

#[tokio::test]
async fn query_pages_cover_every_domain_exactly_once_beyond_the_result_cap() {
    let sim = sim().await;
    let all = seed(&sim, 10_001);

    let unpaged = query(&sim, json!({"calculateTotal": true})).await;
    assert_eq!(ids(&unpaged), all[..query::MAX_QUERY_RESULTS]);
    assert_eq!(
        unpaged["limit"],
        json!(query::MAX_QUERY_RESULTS),
        "the cap is announced"
    );
    assert_eq!(unpaged["total"], json!(10_001));
    assert_eq!(unpaged["position"], json!(0));
    assert!(
        query(&sim, json!({})).await.get("total").is_none(),
        "total only on request"
    );

    assert_eq!(
        page_through(&sim, Value::Null, 500).await,
        all,
        "every domain once, in order"
    );
    let marked: Vec<String> = sim
        .domains()
        .into_iter()
        .filter(|d| d.description.as_deref() == Some("dezky tenant acme"))
        .map(|d| d.id)
        .collect();
    assert_eq!(marked.len(), 3_334);
    let text = json!({"text": "tenant ACME"});
    assert_eq!(page_through(&sim, text, 1_000).await, marked);

    let past_end = query(&sim, json!({"position": 20_000, "limit": 10})).await;
    assert_eq!(
        (ids(&past_end).len(), past_end["position"].clone()),
        (0, json!(0))
    );
    let from_end = query(&sim, json!({"position": -3})).await;
    assert_eq!(ids(&from_end), all[all.len() - 3..]);
    assert_eq!(from_end["position"], json!(all.len() - 3));
    let small = query(&sim, json!({"filter": {"name": "d00007.test"}, "limit": 1})).await;
    assert!(
        small.get("limit").is_none(),
        "no cap hit: no limit in the answer"
    );

    let (_, body) = post(
        &sim,
        &jmap(json!([
            ["x:Domain/query", {"anchor": "b"}, "a"],
            ["x:Domain/query", {"limit": -1}, "l"],
            ["x:Domain/query", {"position": "x"}, "p"]
        ])),
    )
    .await;
    for call in ["a", "l", "p"] {
        assert_eq!(answer(&body, call).1["type"], "invalidArguments", "{call}");
    }
}

#[tokio::test]
async fn name_alias_and_text_filters_follow_every_change() {
    let sim = sim().await;
    let acme = sim
        .create_domain_with(
            json!({"name": "acme.test", "aliases": {"acme-mail.test": true},
                                   "description": "dezky tenant acme"}),
        )
        .unwrap();
    let beta = sim
        .create_domain("beta.test", Some("Dezky Tenant Beta"))
        .unwrap();
    let found = |args: Value| async { ids(&query(&sim, args).await) };
    assert_eq!(
        found(json!({"filter": {"name": "acme.test"}})).await,
        [acme.id.as_str()]
    );
    assert!(
        found(json!({"filter": {"name": "acme-mail.test"}}))
            .await
            .is_empty(),
        "an alias is not a name"
    );
    assert_eq!(
        found(json!({"filter": {"aliases": "acme-mail.test"}})).await,
        [acme.id.as_str()]
    );
    assert_eq!(
        found(json!({"filter": {"text": "MAIL"}})).await,
        [acme.id.as_str()],
        "text covers aliases"
    );
    assert_eq!(
        found(json!({"filter": {"text": "tenant"}})).await,
        [acme.id.as_str(), beta.id.as_str()]
    );
    assert_eq!(
        found(json!({"filter": {"text": "ta"}})).await,
        [beta.id.as_str()],
        "short needles scan"
    );
    let both = json!({"filter": {"operator": "AND", "conditions": [{"text": "tenant"}, {"name": "beta.test"}]}});
    assert_eq!(found(both).await, [beta.id.as_str()]);

    sim.update_domain(
        &acme.id,
        json!({"name": "acme2.test", "aliases/acme-mail.test": null,
                                       "aliases/acme-web.test": true, "description": "moved"}),
    )
    .unwrap();
    assert!(found(json!({"filter": {"name": "acme.test"}}))
        .await
        .is_empty());
    assert_eq!(
        found(json!({"filter": {"name": "acme2.test"}})).await,
        [acme.id.as_str()]
    );
    assert!(found(json!({"filter": {"aliases": "acme-mail.test"}}))
        .await
        .is_empty());
    assert_eq!(
        found(json!({"filter": {"aliases": "acme-web.test"}})).await,
        [acme.id.as_str()]
    );
    assert_eq!(
        found(json!({"filter": {"text": "tenant"}})).await,
        [beta.id.as_str()]
    );
    assert_eq!(
        found(json!({"filter": {"text": "moved"}})).await,
        [acme.id.as_str()]
    );
    let reuse =
        sim.create_domain_with(json!({"name": "acme.test", "dkimManagement": {"@type": "Manual"}}));
    assert!(reuse.is_ok(), "a released name is free again");

    sim.destroy_domain(&beta.id).unwrap_err(); // automatic DKIM keys block it
    for key in sim
        .dkim_signatures()
        .into_iter()
        .filter(|k| k.domain_id == beta.id)
    {
        let (_, body) = post(
            &sim,
            &jmap(json!([["x:DkimSignature/set", {"destroy": [key.id]}, "k"]])),
        )
        .await;
        assert_eq!(answer(&body, "k").1["destroyed"], json!([key.id]));
    }
    let (_, body) = post(
        &sim,
        &jmap(json!([["x:DkimSignature/query", {"filter": {"domainId": beta.id}}, "k"]])),
    )
    .await;
    assert_eq!(answer(&body, "k").1["ids"], json!([]));
    sim.destroy_domain(&beta.id).unwrap();
    assert!(found(json!({"filter": {"text": "beta"}})).await.is_empty());
    assert!(found(json!({"filter": {"name": "beta.test"}}))
        .await
        .is_empty());
}

#[tokio::test]
async fn method_calls_are_counted_by_method() {
    let sim = sim().await;
    let calls = json!([
        ["x:Domain/query", {}, "q"],
        ["x:Domain/set", {"create": {"d": {"name": "a.test"}}}, "s"],
        ["x:Domain/set", {"destroy": ["zz"]}, "t"],
        ["x:Nope/get", {}, "n"]
    ]);
    post(&sim, &jmap(calls)).await;
    let counts = sim.method_calls();
    assert_eq!(counts.get("x:Domain/set"), Some(&2));
    assert_eq!(counts.get("x:Domain/query"), Some(&1));
    assert_eq!(
        counts.len(),
        2,
        "unknown methods are not counted: {counts:?}"
    );
}
