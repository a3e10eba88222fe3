//! `/console/`: the embedded operator console and its sign-in
//! configuration; tokens issued to the console's public client are
//! accepted by the API.

use serde_json::json;

use crate::support::api::TestApi;

#[tokio::test]
async fn the_console_is_served_from_the_binary_with_its_sign_in_configuration() {
    let api = TestApi::start_with(|config| {
        config.console_client_id = Some("dezky-console".into());
    })
    .await;
    let http = reqwest::Client::new();
    let page = http
        .get(format!("{}/console/", api.url))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert_eq!(page.headers()["content-type"], "text/html; charset=utf-8");
    assert!(page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("default-src 'self'"));
    assert!(page
        .text()
        .await
        .unwrap()
        .contains("<script src=\"app.js\""));
    // Every file of api/console/ (each module the page imports) is served as itself.
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("api/console");
    let mut served = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        let kind = match path.extension().and_then(|e| e.to_str()) {
            Some("js") => "text/javascript",
            Some("css") => "text/css",
            _ => continue,
        };
        let reply = http
            .get(format!("{}/console/{name}", api.url))
            .send()
            .await
            .unwrap();
        assert_eq!(reply.status(), 200, "{name}");
        let content_type = reply.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_string();
        assert!(content_type.starts_with(kind), "{name}: {content_type}");
        assert_eq!(
            reply.text().await.unwrap(),
            std::fs::read_to_string(&path).unwrap(),
            "{name}"
        );
        served += 1;
    }
    assert!(served >= 10, "app.js, its modules and style.css: {served}");
    let bare = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(format!("{}/console", api.url))
        .send()
        .await
        .unwrap();
    assert_eq!(bare.headers()["location"], "/console/");

    let config = api
        .anonymous()
        .get("/console/config.json")
        .await
        .expect_status(200)
        .body;
    assert_eq!(config["issuer"], json!(api.oidc.issuer()));
    assert_eq!(config["clientId"], "dezky-console");
    assert_eq!(
        config["authorizationEndpoint"],
        json!(api.oidc.authorization_url())
    );
    assert_eq!(config["tokenEndpoint"], json!(api.oidc.token_url()));
    assert_eq!(config["tokenPaste"], false);
    assert_eq!(
        config["plans"],
        json!(["business", "enterprise", "free", "team"])
    );
    assert_eq!(config["defaultPlan"], "free");
}

#[tokio::test]
async fn tokens_of_the_console_client_are_accepted_and_others_are_not() {
    let api = TestApi::start_with(|config| {
        config.console_client_id = Some("dezky-console".into());
    })
    .await;
    let console = api
        .oidc
        .mint(json!({"sub": "alice", "aud": "dezky-console"}));
    api.with_token(&console)
        .get("/users/me")
        .await
        .expect_status(200);
    let stranger = api.oidc.mint(json!({"sub": "alice", "aud": "another-app"}));
    api.with_token(&stranger)
        .get("/users/me")
        .await
        .expect_error(401, "unauthorized");
}
