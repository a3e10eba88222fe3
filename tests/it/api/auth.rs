//! Bearer-token verification (DESIGN §5) from the outside: every forged or
//! stale token is a 401 with the error body, valid RS256 and ES256 tokens
//! pass, key rotation is picked up by a JWKS refetch, refetches are rate
//! limited, and an issuer without signing keys is refused at start.

use std::time::{SystemTime, UNIX_EPOCH};

use axum::routing::get;
use axum::{Json, Router};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use dezky_api::ApiConfig;
use dezky_simulators::oidc::{SigningAlg, SigningKey};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use metrics_exporter_prometheus::PrometheusBuilder;
use serde_json::{json, Value};

use crate::support::api::TestApi;
use crate::support::mongo::fresh_store;

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Status of `GET /tenants` with `token`.
async fn status_with(api: &TestApi, token: &str) -> u16 {
    let reply = api.with_token(token).get("/tenants").await;
    if reply.status == 401 {
        assert_eq!(
            reply.body["error"]["code"], "unauthorized",
            "{}",
            reply.body
        );
        assert!(reply.headers.get("www-authenticate").is_some());
    }
    reply.status.as_u16()
}

#[tokio::test]
async fn requests_without_a_usable_bearer_token_are_401() {
    let api = TestApi::start().await;
    let anonymous = api.anonymous();
    anonymous
        .get("/tenants")
        .await
        .expect_error(401, "unauthorized");
    anonymous
        .get("/users/me")
        .await
        .expect_error(401, "unauthorized");
    let basic = anonymous
        .request(reqwest::Method::GET, "/tenants")
        .header("authorization", "Basic YTpi");
    anonymous
        .send(basic)
        .await
        .expect_error(401, "unauthorized");
    assert_eq!(status_with(&api, "not-a-jwt").await, 401);
    assert_eq!(status_with(&api, "").await, 401);
}

#[tokio::test]
async fn valid_tokens_pass_and_claims_within_the_leeway_are_tolerated() {
    let api = TestApi::start().await;
    let ok = |claims: Value| api.oidc.mint(claims);
    assert_eq!(status_with(&api, &ok(json!({"sub": "a"}))).await, 200);
    assert_eq!(
        status_with(&api, &ok(json!({"sub": "a", "exp": now() - 30}))).await,
        200
    );
    assert_eq!(
        status_with(&api, &ok(json!({"sub": "a", "nbf": now() + 30}))).await,
        200
    );
    let aud = json!(["someone-else", api.oidc.client_id()]);
    assert_eq!(
        status_with(&api, &ok(json!({"sub": "a", "aud": aud}))).await,
        200
    );
}

#[tokio::test]
async fn stale_or_misaddressed_tokens_are_401() {
    let api = TestApi::start().await;
    let issuer = api.oidc.issuer();
    let cases = [
        json!({"sub": "a", "exp": now() - 120}),
        json!({"sub": "a", "nbf": now() + 120}),
        json!({"sub": "a", "iss": "https://evil.example/application/o/dezky/"}),
        json!({"sub": "a", "iss": issuer.trim_end_matches('/')}),
        json!({"sub": "a", "aud": "another-client"}),
        json!({"sub": "a", "aud": ["x", "y"]}),
        json!({"sub": "a", "exp": null}),
        json!({"sub": null}),
    ];
    for claims in cases {
        let token = api.oidc.mint(claims.clone());
        assert_eq!(status_with(&api, &token).await, 401, "{claims}");
    }
}

#[tokio::test]
async fn forged_signatures_and_algorithms_are_401() {
    let api = TestApi::start().await;
    let kid = api.oidc.current_kid();
    let claims = api.oidc.complete_claims(json!({"sub": "mallory"}));

    // Another RSA key claiming the provider's kid.
    let foreign = SigningKey::generate(SigningAlg::Rs256);
    assert_eq!(status_with(&api, &foreign.sign(&kid, &claims)).await, 401);
    // An ES256 key presenting the RSA kid (algorithm confusion).
    let ec = SigningKey::generate(SigningAlg::Es256);
    assert_eq!(status_with(&api, &ec.sign(&kid, &claims)).await, 401);

    // alg none, unsigned.
    let header =
        URL_SAFE_NO_PAD.encode(json!({"alg": "none", "typ": "JWT", "kid": kid}).to_string());
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    assert_eq!(
        status_with(&api, &format!("{header}.{payload}.")).await,
        401
    );

    // HS256/HS512 with guessable secrets.
    for (alg, secret) in [
        (Algorithm::HS256, b"client-secret".to_vec()),
        (Algorithm::HS512, kid.as_bytes().to_vec()),
    ] {
        let mut header = Header::new(alg);
        header.kid = Some(kid.clone());
        let token =
            jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(&secret)).unwrap();
        assert_eq!(status_with(&api, &token).await, 401, "{alg:?}");
    }

    // A genuine token with a tampered payload.
    let genuine = api.oidc.mint(json!({"sub": "mallory"}));
    let parts: Vec<&str> = genuine.split('.').collect();
    let tampered_claims = api.oidc.complete_claims(json!({"sub": "root"}));
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(tampered_claims.to_string()),
        parts[2]
    );
    assert_eq!(status_with(&api, &tampered).await, 401);
    assert_eq!(status_with(&api, &genuine).await, 200);
}

#[tokio::test]
async fn an_unknown_kid_refetches_the_jwks_so_rotation_is_picked_up() {
    let api = TestApi::start().await;
    let old = api.oidc.mint(json!({"sub": "a"}));
    assert_eq!(status_with(&api, &old).await, 200);
    let fetched_at_start = api.oidc.jwks_requests();

    api.oidc.rotate_key(SigningAlg::Es256);
    let new = api.oidc.mint(json!({"sub": "a"}));
    assert_eq!(
        status_with(&api, &new).await,
        200,
        "ES256 token after rotation"
    );
    assert_eq!(api.oidc.jwks_requests(), fetched_at_start + 1);
    // The rotated-away key is gone from the JWKS, hence from the cache.
    assert_eq!(status_with(&api, &old).await, 401);
    // Known kids never cause a fetch.
    assert_eq!(status_with(&api, &new).await, 200);
    assert_eq!(api.oidc.jwks_requests(), fetched_at_start + 1);
}

#[tokio::test]
async fn unknown_kids_refetch_at_most_once_per_interval() {
    let api = TestApi::start().await;
    let start = api.oidc.jwks_requests();
    let claims = api.oidc.complete_claims(json!({"sub": "a"}));
    let stranger = SigningKey::generate(SigningAlg::Rs256);
    let flood: Vec<String> = (0..5)
        .map(|i| stranger.sign(&format!("unknown-{i}"), &claims))
        .collect();
    let statuses = futures::future::join_all(flood.iter().map(|t| status_with(&api, t))).await;
    assert!(statuses.iter().all(|s| *s == 401));
    assert_eq!(
        api.oidc.jwks_requests(),
        start + 1,
        "a burst of unknown kids costs one fetch"
    );

    // Within the interval even a real rotation is not fetched yet.
    api.oidc.rotate_key(SigningAlg::Rs256);
    let rotated = api.oidc.mint(json!({"sub": "a"}));
    assert_eq!(status_with(&api, &rotated).await, 401);
    assert_eq!(api.oidc.jwks_requests(), start + 1);
    assert_eq!(dezky_api::auth::REFETCH_INTERVAL.as_secs(), 30);
}

/// Serves a discovery document naming `issuer` and a JWKS of `keys`.
async fn stub_issuer(
    issuer_path: &str,
    claimed_issuer: Option<&str>,
    keys: Value,
) -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let issuer = format!("{base}{issuer_path}");
    let discovery = json!({
        "issuer": claimed_issuer.map_or(issuer.clone(), str::to_string),
        "jwks_uri": format!("{issuer}jwks/"),
    });
    let router = Router::new()
        .route(
            &format!("{issuer_path}.well-known/openid-configuration"),
            get(move || async move { Json(discovery) }),
        )
        .route(
            &format!("{issuer_path}jwks/"),
            get(move || async move { Json(json!({ "keys": keys })) }),
        );
    let server = tokio::spawn(async move {
        axum::serve(listener, router).await.unwrap();
    });
    (issuer, server)
}

async fn build_error(issuer: &str, configure: impl FnOnce(&mut ApiConfig)) -> String {
    let mut config = ApiConfig::new(issuer, "dezky", reqwest::Client::new());
    configure(&mut config);
    let prometheus = PrometheusBuilder::new().build_recorder().handle();
    match dezky_api::build(fresh_store().await, config, prometheus).await {
        Ok(_) => panic!("the API must refuse issuer {issuer}"),
        Err(e) => e.to_string(),
    }
}

#[tokio::test]
async fn an_issuer_without_signing_keys_or_with_another_name_is_refused_at_start() {
    let (issuer, _server) = stub_issuer("/application/o/hs/", None, json!([])).await;
    let message = build_error(&issuer, |_| {}).await;
    assert!(
        message.contains("HS256") && message.contains("signing key"),
        "{message}"
    );

    let hmac_only = json!([{"kty": "oct", "kid": "k", "k": "c2VjcmV0", "alg": "HS256"}]);
    let (issuer, _server2) = stub_issuer("/application/o/oct/", None, hmac_only).await;
    assert!(build_error(&issuer, |_| {})
        .await
        .contains("no RS256 or ES256"));

    let (issuer, _server3) = stub_issuer(
        "/application/o/x/",
        Some("https://elsewhere/application/o/x/"),
        json!([]),
    )
    .await;
    assert!(build_error(&issuer, |_| {})
        .await
        .contains("must match exactly"));

    // OIDC_JWKS_URL overrides the discovered JWKS location.
    let api = TestApi::start().await;
    let (empty, _server4) = stub_issuer("/application/o/e/", None, json!([])).await;
    let message = build_error(&api.oidc.issuer(), |c| {
        c.oidc_jwks_url = Some(format!("{empty}jwks/"));
    })
    .await;
    assert!(message.contains(&format!("{empty}jwks/")), "{message}");
}
