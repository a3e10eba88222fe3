//! The demo's HTTP client of its own API: what a user with a platform-admin
//! token would call, so the tour goes through the real routes.

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use dezky_core::model::{System, SystemStatus, TenantStatus};
use reqwest::{Method, RequestBuilder, StatusCode};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;

/// Timeout of one request; above the longest `?wait=` the tour uses.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(45);

/// A bearer-token client of the API at `base`.
pub struct ApiClient {
    http: reqwest::Client,
    base: String,
    token: String,
}

/// The fields of a tenant (as the API returns it) the demo shows.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tenant {
    pub slug: String,
    pub domains: Vec<String>,
    pub generation: i64,
    pub status: TenantStatus,
}

impl Tenant {
    /// The status of one system, once the controller wrote it.
    pub fn system_status(&self, system: System) -> Option<&SystemStatus> {
        self.status.systems.get(&system)
    }
}

/// A list response (`{"items": [...], "nextCursor": ...}`).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Page<T> {
    items: Vec<T>,
    next_cursor: Option<String>,
}

impl ApiClient {
    /// A client of `base` (e.g. `http://127.0.0.1:3000`) sending `token`.
    pub fn new(base: &str, token: &str) -> anyhow::Result<Self> {
        let http = dezky_core::http::client(None, REQUEST_TIMEOUT)?;
        Ok(ApiClient {
            http,
            base: base.trim_end_matches('/').to_string(),
            token: token.to_string(),
        })
    }

    /// The API's base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Waits until `GET /healthz` answers 200.
    pub async fn wait_healthy(&self, budget: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + budget;
        loop {
            let healthy = self
                .http
                .get(format!("{}/healthz", self.base))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if healthy {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "the API at {} did not become healthy within {budget:?}",
                    self.base
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// `GET /users/me`: records the caller (and their platform-admin flag).
    pub async fn sync_me(&self) -> anyhow::Result<Value> {
        self.call(Method::GET, "/users/me", &[], None).await
    }

    /// `POST /tenants`.
    pub async fn create_tenant(&self, body: Value) -> anyhow::Result<Tenant> {
        self.call(Method::POST, "/tenants", &[], Some(body)).await
    }

    /// `GET /tenants`, every page.
    pub async fn tenants(&self) -> anyhow::Result<Vec<Tenant>> {
        let mut all = Vec::new();
        let mut cursor = None;
        loop {
            let mut query = vec![("limit", "500".to_string())];
            query.extend(cursor.map(|c| ("cursor", c)));
            let page: Page<Tenant> = self.call(Method::GET, "/tenants", &query, None).await?;
            all.extend(page.items);
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => return Ok(all),
            }
        }
    }

    /// `POST /tenants/{slug}/reconcile?wait=...`: asks for a reconcile now
    /// and waits (bounded) until the controller handled it.
    pub async fn reconcile(&self, slug: &str, wait: Duration) -> anyhow::Result<()> {
        let path = format!("/tenants/{slug}/reconcile");
        let wait = [("wait", humantime::format_duration(wait).to_string())];
        let response = self
            .request(Method::POST, &path, &wait, None)
            .send()
            .await
            .with_context(|| format!("POST {path}"))?;
        match response.status() {
            StatusCode::OK | StatusCode::ACCEPTED => Ok(()),
            status => bail!(
                "POST {path}: {status}: {}",
                response.text().await.unwrap_or_default()
            ),
        }
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<Value>,
    ) -> anyhow::Result<T> {
        let response = self
            .request(method.clone(), path, query, body)
            .send()
            .await
            .with_context(|| format!("{method} {path}"))?;
        let status = response.status();
        if !status.is_success() {
            bail!(
                "{method} {path}: {status}: {}",
                response.text().await.unwrap_or_default()
            );
        }
        response
            .json()
            .await
            .with_context(|| format!("{method} {path}: unexpected response body"))
    }

    fn request(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<Value>,
    ) -> RequestBuilder {
        let request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .query(query)
            .bearer_auth(&self.token);
        match body {
            Some(body) => request.json(&body),
            None => request,
        }
    }
}
