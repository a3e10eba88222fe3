//! The oCIS simulator's promises, checked over real HTTP with tokens from
//! the OIDC simulator.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use super::{OcisSim, OcisSimOptions};
use crate::oidc::{OidcSim, SigningAlg};

const EDITOR: &str = super::model::SPACE_EDITOR;
const MANAGER: &str = super::model::MANAGER;

struct Env {
    oidc: OidcSim,
    ocis: OcisSim,
    http: reqwest::Client,
    token: String,
}

async fn env(null_empty_list: bool) -> Env {
    let oidc = OidcSim::start().await.expect("OIDC simulator starts");
    let ocis = OcisSim::start(OcisSimOptions {
        jwks_url: oidc.jwks_url(),
        issuer: Some(oidc.issuer()),
        null_empty_list,
    })
    .await
    .expect("oCIS simulator starts");
    let token = oidc.mint(json!({"sub": "svc-user", "preferred_username": "svc"}));
    Env {
        oidc,
        ocis,
        http: reqwest::Client::new(),
        token,
    }
}

impl Env {
    async fn call(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.ocis.url()))
            .bearer_auth(&self.token);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("simulator answers");
        let status = response.status();
        let text = response.text().await.expect("body reads");
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn create(&self, name: &str) -> Value {
        let (status, drive) = self
            .call(
                Method::POST,
                "/graph/v1.0/drives",
                &[],
                Some(json!({"name": name, "driveType": "project", "driveAlias": "project/x", "quota": {"total": 10}})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{drive}");
        drive
    }
}

fn drive_path(id: &str) -> String {
    format!("/graph/v1.0/drives/{}", id.replace('$', "%24"))
}

#[tokio::test]
async fn only_tokens_verified_against_the_jwks_are_accepted() {
    let env = env(false).await;
    let url = format!("{}/graph/v1.0/drives", env.ocis.url());
    let status = |r: reqwest::Response| r.status();
    let none = env.http.get(&url).send().await.map(status);
    assert_eq!(none.ok(), Some(StatusCode::UNAUTHORIZED));
    let garbage = env
        .http
        .get(&url)
        .bearer_auth("x.y.z")
        .send()
        .await
        .map(status);
    assert_eq!(garbage.ok(), Some(StatusCode::UNAUTHORIZED));
    let expired = env.oidc.mint(json!({"sub": "u", "exp": 1_000_000}));
    let r = env
        .http
        .get(&url)
        .bearer_auth(expired)
        .send()
        .await
        .map(status);
    assert_eq!(r.ok(), Some(StatusCode::UNAUTHORIZED));
    let ok = env
        .http
        .get(&url)
        .bearer_auth(&env.token)
        .send()
        .await
        .map(status);
    assert_eq!(ok.ok(), Some(StatusCode::OK));

    // After a key rotation the JWKS is fetched again for the unknown kid.
    env.oidc.rotate_key(SigningAlg::Es256);
    let fresh = env.oidc.mint(json!({"sub": "svc-user"}));
    let new = env
        .http
        .get(&url)
        .bearer_auth(fresh)
        .send()
        .await
        .map(status);
    assert_eq!(new.ok(), Some(StatusCode::OK));
    assert_eq!(env.oidc.jwks_requests(), 2);
}

#[tokio::test]
async fn drive_list_filter_allows_one_eq_and_empty_lists_may_be_null() {
    let env = env(true).await;
    let (status, body) = env
        .call(
            Method::GET,
            "/graph/v1.0/drives?%24filter=driveType+eq+%27project%27",
            &[],
            None,
        )
        .await;
    assert_eq!((status, body), (StatusCode::OK, Value::Null));
    let drive = env.create("Acme").await;
    let (_, body) = env
        .call(
            Method::GET,
            "/graph/v1.0/drives?$filter=driveType eq 'project'",
            &[],
            None,
        )
        .await;
    assert_eq!(body["value"][0]["id"], drive["id"]);
    let (status, body) = env
        .call(
            Method::GET,
            "/graph/v1.0/drives?$filter=driveType eq 'project' and name eq 'Acme'",
            &[],
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_IMPLEMENTED);
    assert_eq!(body["error"]["code"], "notSupported");
    assert!(body["error"]["innererror"]["request-id"].is_string());
}

#[tokio::test]
async fn create_is_strict_about_fields_and_names() {
    let env = env(false).await;
    for (body, why) in [
        (json!({"name": "A", "owner": {}}), "unknown field"),
        (json!({"name": "a.b"}), "forbidden character"),
        (json!({"name": "   "}), "empty after trimming"),
        (json!({"name": "x".repeat(256)}), "too long"),
        (
            json!({"name": "A", "driveType": "personal"}),
            "not a project",
        ),
    ] {
        let (status, answer) = env
            .call(Method::POST, "/graph/v1.0/drives", &[], Some(body))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{why}");
        assert_eq!(answer["error"]["code"], "invalidRequest", "{why}");
    }
    let drive = env.create("  Acme Inc  ").await;
    assert_eq!(drive["name"], "Acme Inc");
    assert!(drive["id"]
        .as_str()
        .is_some_and(|id| id.starts_with("storage-users-1$")));
    // Not idempotent: a second POST is a second space.
    env.create("Acme Inc").await;
    assert_eq!(env.ocis.drives().len(), 2);
}

#[tokio::test]
async fn disable_restore_and_purge_follow_ocis() {
    let env = env(false).await;
    let id = env.create("Acme").await["id"].as_str().map(str::to_owned);
    let path = drive_path(&id.unwrap_or_default());
    let (status, body) = env
        .call(Method::DELETE, &path, &[("Purge", "T")], None)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["message"], "can't purge enabled space");
    let (status, _) = env.call(Method::DELETE, &path, &[], None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, drive) = env.call(Method::GET, &path, &[], None).await;
    assert_eq!(drive["root"]["deleted"]["state"], "trashed");
    let (status, drive) = env
        .call(Method::PATCH, &path, &[("Restore", "T")], Some(json!({})))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(drive["root"].get("deleted").is_none());
    env.call(Method::DELETE, &path, &[], None).await;
    let (status, _) = env
        .call(Method::DELETE, &path, &[("Purge", "T")], None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = env.call(Method::GET, &path, &[], None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["code"], "itemNotFound");
}

#[tokio::test]
async fn group_grants_use_g_ids_and_reinvites_conflict() {
    let env = env(false).await;
    let drive = env.create("Acme").await;
    let id = drive["id"].as_str().unwrap_or_default().to_string();
    let (status, _) = env
        .call(Method::GET, "/graph/v1.0/groups/tenant-acme", &[], None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, group) = env
        .call(
            Method::POST,
            "/graph/v1.0/groups",
            &[],
            Some(json!({"displayName": "tenant-acme"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let gid = group["id"].as_str().unwrap_or_default().to_string();
    let (_, by_name) = env
        .call(Method::GET, "/graph/v1.0/groups/tenant-acme", &[], None)
        .await;
    assert_eq!(by_name["id"], gid.as_str());

    let invite_path = format!(
        "/graph/v1beta1/drives/{}/root/invite",
        id.replace('$', "%24")
    );
    let invite = json!({
        "recipients": [{"objectId": gid, "@libre.graph.recipient.type": "group"}],
        "roles": [EDITOR],
    });
    let (status, granted) = env
        .call(Method::POST, &invite_path, &[], Some(invite.clone()))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(granted["value"][0]["id"], format!("g:{gid}"));
    let (status, body) = env
        .call(Method::POST, &invite_path, &[], Some(invite))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["error"]["code"], "nameAlreadyExists");

    let perms_path = format!(
        "/graph/v1beta1/drives/{}/root/permissions",
        id.replace('$', "%24")
    );
    let (_, perms) = env.call(Method::GET, &perms_path, &[], None).await;
    let ids: Vec<&str> = perms["value"]
        .as_array()
        .map(|v| v.iter().filter_map(|p| p["id"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(ids, ["u:svc-user".to_string(), format!("g:{gid}")]);
    assert_eq!(perms["value"][0]["roles"][0], MANAGER);
    assert_eq!(
        perms["value"][1]["grantedToV2"]["group"]["displayName"],
        "tenant-acme"
    );

    let (status, _) = env
        .call(
            Method::PATCH,
            &format!("{perms_path}/g:{gid}"),
            &[],
            Some(json!({"roles": ["not-a-space-role"]})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, patched) = env
        .call(
            Method::PATCH,
            &format!("{perms_path}/g:{gid}"),
            &[],
            Some(json!({"roles": [MANAGER]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(patched["roles"][0], MANAGER);

    // Deleting the group leaves its grant, with its name, on the space (as
    // oCIS does for a while); the name is free for a new group at once.
    let group_path = format!("/graph/v1.0/groups/{gid}");
    let (status, _) = env.call(Method::DELETE, &group_path, &[], None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = env.call(Method::DELETE, &group_path, &[], None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = env
        .call(Method::GET, "/graph/v1.0/groups/tenant-acme", &[], None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, perms) = env.call(Method::GET, &perms_path, &[], None).await;
    assert_eq!(perms["value"][1]["id"], format!("g:{gid}"));
    assert_eq!(
        perms["value"][1]["grantedToV2"]["group"]["displayName"],
        "tenant-acme"
    );

    // A space's grants are hidden (404) from a caller that is not a member.
    let (status, _) = env
        .call(
            Method::DELETE,
            &format!("{perms_path}/u:svc-user"),
            &[],
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = env.call(Method::GET, &perms_path, &[], None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["code"], "itemNotFound");
}

/// `$filter` query of a drive list.
fn filtered(version: &str, filter: &str) -> String {
    let url = reqwest::Url::parse_with_params("http://x/", &[("$filter", filter)]).expect("url");
    format!(
        "/graph/{version}/drives?{}",
        url.query().unwrap_or_default()
    )
}

#[tokio::test]
async fn drive_lists_carry_every_grant_in_each_versions_shape() {
    let env = env(false).await;
    let drive = env.create("Acme").await;
    let id = drive["id"].as_str().unwrap_or_default().to_string();
    let gid = env.ocis.create_group("tenant-acme");
    let invite = json!({
        "recipients": [{"objectId": gid, "@libre.graph.recipient.type": "group"}],
        "roles": [EDITOR],
    });
    let root = format!("/graph/v1beta1/drives/{}/root", id.replace('$', "%24"));
    let (status, _) = env
        .call(Method::POST, &format!("{root}/invite"), &[], Some(invite))
        .await;
    assert_eq!(status, StatusCode::OK);
    let project = "driveType eq 'project'";

    let (status, v1) = env
        .call(Method::GET, &filtered("v1.0", project), &[], None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        v1["value"][0]["root"]["permissions"],
        json!([
            {"grantedToIdentities": [{"user": {"id": "svc-user", "displayName": "svc"}}],
             "roles": ["manager"]},
            {"grantedToIdentities": [{"group": {"id": gid, "displayName": "tenant-acme"}}],
             "roles": ["editor"]},
        ]),
        "v1.0: cs3 shape, legacy role names, no permission ids"
    );
    let (_, single) = env.call(Method::GET, &drive_path(&id), &[], None).await;
    assert_eq!(
        single["root"]["permissions"],
        v1["value"][0]["root"]["permissions"]
    );

    let (status, beta) = env
        .call(Method::GET, &filtered("v1beta1", project), &[], None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, permissions) = env
        .call(Method::GET, &format!("{root}/permissions"), &[], None)
        .await;
    assert_eq!(
        beta["value"][0]["root"]["permissions"], permissions["value"],
        "v1beta1: exactly what the permissions API lists"
    );
    assert_eq!(beta["value"][0]["id"], json!(id));
}

#[tokio::test]
async fn drive_and_group_lookups_follow_creation_and_purge() {
    let env = env(false).await;
    let first = env.create("First").await;
    let second = env.create("Second").await;
    let id = first["id"].as_str().unwrap_or_default().to_string();
    let listed = |body: &Value| -> Vec<Value> {
        body["value"]
            .as_array()
            .map(|all| all.iter().map(|d| d["id"].clone()).collect())
            .unwrap_or_default()
    };
    let (_, all) = env.call(Method::GET, "/graph/v1.0/drives", &[], None).await;
    assert_eq!(
        listed(&all),
        [first["id"].clone(), second["id"].clone()],
        "creation order"
    );
    let by_id = filtered("v1.0", &format!("id eq '{id}'"));
    let (_, one) = env.call(Method::GET, &by_id, &[], None).await;
    assert_eq!(listed(&one), [first["id"].clone()]);
    let aliased: Vec<String> = env
        .ocis
        .drives_with_alias("project/x")
        .into_iter()
        .map(|d| d.id)
        .collect();
    assert_eq!(aliased.len(), 2, "aliases are not unique");

    assert!(env.ocis.disable_drive(&id));
    assert!(env.ocis.purge_drive(&id));
    assert!(!env.ocis.purge_drive(&id), "already gone");
    let (_, none) = env.call(Method::GET, &by_id, &[], None).await;
    assert!(listed(&none).is_empty());
    let (status, _) = env.call(Method::GET, &drive_path(&id), &[], None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(env.ocis.drives_with_alias("project/x").len(), 1);
    assert!(env.ocis.drives_with_alias("other").is_empty());

    let gid = env.ocis.create_group("tenant-acme");
    assert_eq!(
        env.ocis.create_group("tenant-acme"),
        gid,
        "one group per name"
    );
    for name_or_id in ["tenant-acme", gid.as_str()] {
        let (status, group) = env
            .call(
                Method::GET,
                &format!("/graph/v1.0/groups/{name_or_id}"),
                &[],
                None,
            )
            .await;
        assert_eq!((status, group["id"].clone()), (StatusCode::OK, json!(gid)));
    }
    let (status, _) = env
        .call(
            Method::POST,
            "/graph/v1.0/groups",
            &[],
            Some(json!({"displayName": "tenant-acme"})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
}

#[tokio::test]
async fn a_list_after_a_change_shows_the_change_not_the_earlier_rendering() {
    let env = env(false).await;
    let drive = env.create("Before").await;
    let id = drive["id"].as_str().unwrap_or_default().to_string();
    let project = "driveType eq 'project'";
    for version in ["v1.0", "v1beta1"] {
        let (_, listed) = env
            .call(Method::GET, &filtered(version, project), &[], None)
            .await;
        assert_eq!(listed["value"][0]["name"], json!("Before"), "{version}");
    }
    let (status, _) = env
        .call(
            Method::PATCH,
            &drive_path(&id),
            &[],
            Some(json!({"name": "After"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(env.ocis.disable_drive(&id), "a change through the handle");
    for version in ["v1.0", "v1beta1"] {
        let (_, listed) = env
            .call(Method::GET, &filtered(version, project), &[], None)
            .await;
        assert_eq!(listed["value"][0]["name"], json!("After"), "{version}");
        assert_eq!(
            listed["value"][0]["root"]["deleted"]["state"],
            json!("trashed"),
            "{version}"
        );
    }
}
