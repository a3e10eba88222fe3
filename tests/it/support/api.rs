//! A running API for tests: `dezky_api::build` served on `127.0.0.1:0`
//! against a fresh database, trusting an [`OidcSim`]. [`TestApi::user`]
//! and friends hand out HTTP clients that act as a given user.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use dezky_api::tenant_cache::TenantCache;
use dezky_api::ApiConfig;
use dezky_core::store::Store;
use dezky_simulators::oidc::OidcSim;
use metrics_exporter_prometheus::PrometheusBuilder;
use reqwest::header::HeaderMap;
use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::{json, Value};

use super::mongo::fresh_store;

/// Group that makes a platform admin in the test configuration (the default).
pub const ADMIN_GROUP: &str = "dezky-admins";

/// The API under test, its database and its token issuer.
pub struct TestApi {
    pub url: String,
    pub store: Store,
    pub oidc: OidcSim,
    pub http: reqwest::Client,
    /// The API's tenant cache, to tell when reads are answered from memory.
    pub tenant_cache: Arc<TenantCache>,
    server: tokio::task::JoinHandle<()>,
    /// Stops the API's background work (its `users` change stream) on drop.
    _background: tokio_util::sync::DropGuard,
}

impl Drop for TestApi {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl TestApi {
    /// The API with the default configuration.
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// The API with `configure` applied to the default configuration.
    pub async fn start_with(configure: impl FnOnce(&mut ApiConfig)) -> Self {
        Self::start_on(fresh_store().await, configure).await
    }

    /// The API on `store`, with `configure` applied to the default configuration.
    pub async fn start_on(store: Store, configure: impl FnOnce(&mut ApiConfig)) -> Self {
        let oidc = OidcSim::start().await.expect("start the OIDC simulator");
        let http = reqwest::Client::new();
        let mut config = ApiConfig::new(&oidc.issuer(), oidc.client_id(), http.clone());
        configure(&mut config);
        let background = config.shutdown.clone().drop_guard();
        let prometheus = PrometheusBuilder::new().build_recorder().handle();
        let api = dezky_api::build_api(store.clone(), config, prometheus)
            .await
            .expect("build the API");
        let (router, tenant_cache) = (api.router, api.tenant_cache);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the API");
        let addr: SocketAddr = listener.local_addr().expect("local addr");
        let server = tokio::spawn(async move {
            axum::serve(listener, router).await.expect("serve the API");
        });
        // Tests start with the tenant cache answering, as a running API
        // does; reads right after this API's writes still go to MongoDB.
        super::wait::until(
            "the tenant cache is synced",
            Duration::from_secs(10),
            || async { tenant_cache.is_fresh().then_some(()) },
        )
        .await;
        TestApi {
            url: format!("http://{addr}"),
            store,
            oidc,
            http,
            tenant_cache,
            server,
            _background: background,
        }
    }

    /// A token for `sub` with these groups (and email/name claims).
    pub fn token(&self, sub: &str, groups: &[&str]) -> String {
        self.oidc.mint(json!({
            "sub": sub,
            "email": format!("{sub}@example.com"),
            "name": format!("User {sub}"),
            "groups": groups,
        }))
    }

    /// A client sending `token` as bearer.
    pub fn with_token(&self, token: &str) -> Client<'_> {
        Client {
            api: self,
            token: Some(token.to_string()),
        }
    }

    /// A client without a token.
    pub fn anonymous(&self) -> Client<'_> {
        Client {
            api: self,
            token: None,
        }
    }

    /// A client for `sub` whose claims were synced by `GET /users/me`.
    pub async fn user(&self, sub: &str, groups: &[&str]) -> Client<'_> {
        let client = self.with_token(&self.token(sub, groups));
        client.get("/users/me").await.expect_status(200);
        client
    }

    /// A synced platform admin.
    pub async fn admin(&self) -> Client<'_> {
        self.user("root", &[ADMIN_GROUP]).await
    }

    /// A tenant created by `client` (`{slug}.test` as its domain); the body.
    pub async fn create_tenant(&self, client: &Client<'_>, slug: &str) -> Value {
        client
            .post(
                "/tenants",
                json!({ "slug": slug, "name": format!("Tenant {slug}"), "plan": "team",
                        "domains": [format!("{slug}.test")] }),
            )
            .await
            .expect_status(201)
            .body
    }
}

/// HTTP client acting as one caller.
pub struct Client<'a> {
    api: &'a TestApi,
    token: Option<String>,
}

/// A response, read completely.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Reply {
    /// Panics with the body unless the status is `status`.
    #[track_caller]
    pub fn expect_status(self, status: u16) -> Self {
        assert_eq!(self.status.as_u16(), status, "body: {}", self.body);
        self
    }

    /// Asserts DESIGN's error body with this status and code; returns the error object.
    #[track_caller]
    pub fn expect_error(self, status: u16, code: &str) -> Value {
        assert_eq!(self.status.as_u16(), status, "body: {}", self.body);
        let error = &self.body["error"];
        assert_eq!(error["code"], code, "body: {}", self.body);
        assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()));
        error.clone()
    }

    /// The `ETag` header.
    pub fn etag(&self) -> String {
        self.headers
            .get("etag")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    }
}

impl Client<'_> {
    /// A request with the caller's token; send it with [`Client::send`].
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let request = self
            .api
            .http
            .request(method, format!("{}{path}", self.api.url));
        match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    pub async fn send(&self, request: RequestBuilder) -> Reply {
        let response = request.send().await.expect("the API answers");
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.expect("a body");
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Reply {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send(self.request(Method::GET, path)).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Reply {
        self.send(self.request(Method::POST, path).json(&body))
            .await
    }

    pub async fn patch(&self, path: &str, body: Value) -> Reply {
        self.send(self.request(Method::PATCH, path).json(&body))
            .await
    }

    pub async fn put(&self, path: &str, body: Value) -> Reply {
        self.send(self.request(Method::PUT, path).json(&body)).await
    }

    pub async fn delete(&self, path: &str) -> Reply {
        self.send(self.request(Method::DELETE, path)).await
    }
}
