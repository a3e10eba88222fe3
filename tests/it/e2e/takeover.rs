//! Taking over the previous service's database in place (DESIGN §3.1):
//! documents in its shapes, `provisioner migrate [--dry-run]`, then `serve`
//! adopts what the previous service created, keeps every field it does
//! not model through every write, and lets the old users in as before.

use std::process::Output;

use dezky_core::store::Store;
use futures::TryStreamExt;
use mongodb::bson::{doc, oid::ObjectId, DateTime, Document};
use serde_json::{json, Map};
use tokio::process::Command;

use super::harness::{converged, Stack};

/// The ids of the legacy documents [`seed`] writes.
struct Legacy {
    acme: ObjectId,
    beta: ObjectId,
    member_subject: &'static str,
}

fn collection(store: &Store, name: &str) -> mongodb::Collection<Document> {
    store.db.collection::<Document>(name)
}

/// What the previous service left: the default tenant, an active tenant
/// whose Authentik group it created (with its own attribute keys), a
/// pending tenant whose Authentik step failed, a member, subscriptions.
async fn seed(stack: &Stack, store: &Store) -> Legacy {
    let (acme, beta, dezky) = (ObjectId::new(), ObjectId::new(), ObjectId::new());
    let mut attributes = Map::new();
    attributes.insert("tenantSlug".into(), json!("acme"));
    attributes.insert("tenantMongoId".into(), json!(acme.to_hex()));
    let group = stack
        .sims
        .authentik
        .create_group("tenant-acme", attributes)
        .expect("the old group");
    let now = DateTime::now();
    let tenants = [
        doc! {
            "_id": dezky, "slug": "dezky", "name": "dezky", "status": "active", "plan": "team",
            "domains": [], "provisioningStatus": { "authentik": "skipped", "stalwart": "skipped", "ocis": "skipped" },
            "createdAt": now, "updatedAt": now, "__v": 0,
        },
        doc! {
            "_id": acme, "slug": "acme", "name": "Acme Inc", "status": "active", "plan": "team",
            "domains": ["acme.test"],
            "billingInfo": { "email": "billing@acme.test", "company": "Acme GmbH", "vatId": "DE123456789",
                             "address": { "street": "Hauptstr. 1", "city": "Berlin" } },
            "authentikGroupId": group.pk.to_string(),
            "provisioningStatus": { "authentik": "ok", "stalwart": "skipped", "ocis": "skipped" },
            "createdAt": now, "updatedAt": now, "__v": 0,
        },
        doc! {
            "_id": beta, "slug": "beta", "name": "Beta", "status": "pending", "plan": "team",
            "domains": [],
            "provisioningStatus": { "authentik": "error", "stalwart": "pending", "ocis": "pending" },
            "provisioningErrors": { "authentik": "connect ECONNREFUSED" },
            "createdAt": now, "updatedAt": now, "__v": 0,
        },
    ];
    collection(store, "tenants")
        .insert_many(tenants)
        .await
        .unwrap();
    let member_subject = "legacy-member";
    collection(store, "users")
        .insert_one(doc! {
            "_id": ObjectId::new(), "authentikSubjectId": member_subject, "tenantIds": [acme],
            "email": "ada@acme.test", "name": "Ada", "role": "admin", "platformAdmin": false,
            "createdAt": now, "updatedAt": now, "__v": 0,
        })
        .await
        .unwrap();
    let subscriptions = [dezky, acme].map(|tenant| {
        doc! {
            "_id": ObjectId::new(), "tenantId": tenant, "plan": "team", "status": "active",
            "stripeCustomerId": "cus_1", "stripeSubscriptionId": "sub_1", "stripePriceId": "price_1",
            "createdAt": now, "updatedAt": now, "__v": 0,
        }
    });
    collection(store, "subscriptions")
        .insert_many(subscriptions)
        .await
        .unwrap();
    Legacy {
        acme,
        beta,
        member_subject,
    }
}

/// `provisioner migrate <args>` against `stack`'s database.
async fn migrate(stack: &Stack, args: &[&str]) -> Output {
    let output = Command::new(env!("CARGO_BIN_EXE_provisioner"))
        .arg("migrate")
        .args(args)
        .env("MONGODB_URI", crate::support::mongo::uri())
        .env("MONGODB_DB", &stack.db)
        .output()
        .await
        .expect("run provisioner migrate");
    assert!(
        output.status.success(),
        "migrate {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Every document of the three collections, in `_id` order.
async fn everything(store: &Store) -> Vec<Document> {
    let mut all = Vec::new();
    for name in ["tenants", "users", "subscriptions"] {
        let docs: Vec<Document> = collection(store, name)
            .find(doc! {})
            .sort(doc! { "_id": 1 })
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap();
        all.extend(docs);
    }
    all
}

#[tokio::test]
async fn a_dry_run_reports_and_changes_nothing_then_migrate_is_idempotent() {
    let stack = Stack::start().await;
    let store = stack.store().await;
    let legacy = seed(&stack, &store).await;
    let before = everything(&store).await;

    let dry = migrate(&stack, &["--dry-run"]).await;
    let report = String::from_utf8_lossy(&dry.stdout);
    assert!(report.contains("dry run: nothing was written"), "{report}");
    assert!(
        report.contains("tenants: 3 documents: 3 at schema 0"),
        "{report}"
    );
    assert!(
        report.contains("would change 1: authentik `externalId` from `authentikGroupId`"),
        "{report}"
    );
    assert!(report.contains(&legacy.acme.to_hex()), "{report}");
    assert!(
        report.contains("users: 1 documents: 1 at schema 0"),
        "{report}"
    );
    assert_eq!(everything(&store).await, before, "a dry run writes nothing");
    assert_eq!(
        dezky_core::migrate::recorded_version(&store).await.unwrap(),
        0
    );

    let applied = String::from_utf8_lossy(&migrate(&stack, &[]).await.stdout).to_string();
    assert!(
        applied.contains("changed 3: `generation` set to 1"),
        "{applied}"
    );
    let once = everything(&store).await;
    let again = String::from_utf8_lossy(&migrate(&stack, &[]).await.stdout).to_string();
    assert!(
        again.contains("tenants: 3 documents: 0 at schema 0 (previous service), 3 at schema 1"),
        "{again}"
    );
    assert_eq!(
        everything(&store).await,
        once,
        "a second run changes nothing"
    );
    assert_eq!(
        dezky_core::migrate::recorded_version(&store).await.unwrap(),
        dezky_core::migrate::SCHEMA_VERSION
    );
    // Nothing was dropped: every legacy field of every document is still there.
    for (old, new) in before.iter().zip(&once) {
        for key in old.keys().filter(|k| *k != "status") {
            assert!(new.contains_key(key), "{key} dropped from {new}");
        }
    }
    let beta = once
        .iter()
        .find(|d| d.get_object_id("_id") == Ok(legacy.beta));
    let beta = beta.expect("beta");
    assert_eq!(beta.get_str("legacyStatus"), Ok("pending"));
}

#[tokio::test]
async fn serve_takes_over_adopting_the_old_group_and_keeping_every_field() {
    let stack = Stack::start().await;
    let store = stack.store().await;
    let legacy = seed(&stack, &store).await;
    // No `migrate` first: `serve` migrates at start.
    let serve = stack
        .spawn_with("serve", &[("DEFAULT_TENANT_SLUG", "dezky")])
        .await;
    let api = stack.admin(&serve).await;
    for slug in ["acme", "beta", "dezky"] {
        api.converged(slug).await;
    }
    let groups: Vec<_> = stack
        .sims
        .authentik
        .groups()
        .into_iter()
        .filter(|g| g.name == "tenant-acme")
        .collect();
    assert_eq!(groups.len(), 1, "the old group is adopted, never doubled");
    let group = &groups[0];
    assert_eq!(group.attributes["tenantSlug"], "acme", "foreign keys kept");
    assert_eq!(group.attributes["dezky_tenant_slug"], "acme");
    let acme = api.tenant("acme").await;
    assert_eq!(
        acme["status"]["systems"]["authentik"]["externalId"],
        group.pk.to_string()
    );
    assert_eq!(acme["extra"]["billingInfo"]["vatId"], "DE123456789");
    assert_eq!(acme["extra"]["legacyStatus"], "active");

    // A rename through PATCH and the status writes after it keep every
    // field this service does not model.
    let renamed = api
        .patch("/tenants/acme", json!({"name": "Acme Corporation"}))
        .await
        .expect_status(200);
    assert_eq!(renamed.body["extra"]["billingInfo"]["company"], "Acme GmbH");
    let generation = renamed.body["generation"].as_i64().unwrap();
    api.tenant_until("acme", "the rename converged", |t| {
        converged(t) && t["name"] == "Acme Corporation"
    })
    .await;
    let stored = collection(&store, "tenants")
        .find_one(doc! { "_id": legacy.acme })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.get_i64("generation"), Ok(generation));
    let billing = stored.get_document("billingInfo").unwrap();
    assert_eq!(billing.get_str("vatId"), Ok("DE123456789"));
    assert_eq!(billing.get_str("email"), Ok("billing@acme.test"));
    assert!(billing.get_document("address").is_ok());
    for key in [
        "__v",
        "provisioningStatus",
        "authentikGroupId",
        "legacyStatus",
    ] {
        assert!(stored.contains_key(key), "{key} kept");
    }
    // PUT of the whole spec, without the VAT id it never saw, keeps it too.
    api.send(
        reqwest::Method::PUT,
        "/tenants/acme",
        Some(
            json!({"name": "Acme Corporation", "plan": "team", "domains": ["acme.test"],
                    "billingInfo": {"email": "billing@acme.test"}}),
        ),
    )
    .await
    .expect_status(200);
    let stored = collection(&store, "tenants")
        .find_one(doc! { "_id": legacy.acme })
        .await
        .unwrap()
        .unwrap();
    let billing = stored.get_document("billingInfo").unwrap();
    assert_eq!(billing.get_str("vatId"), Ok("DE123456789"));
    assert_eq!(
        stored.get_i64("generation"),
        Ok(generation),
        "no change, no bump"
    );

    // The old member sees and administers their tenant before and after
    // their first `GET /users/me`, which updates their record.
    let member = stack.client(
        &serve,
        json!({"sub": legacy.member_subject, "email": "ada@acme.test", "groups": []}),
    );
    member.get("/tenants/acme").await.expect_status(200);
    let me = member.get("/users/me").await.expect_status(200);
    assert_eq!(me.body["user"]["tenantIds"], json!([legacy.acme.to_hex()]));
    assert_eq!(me.body["tenants"][0]["slug"], "acme");
    member.get("/tenants/acme").await.expect_status(200);
    member
        .patch("/tenants/acme", json!({"name": "Acme Corp"}))
        .await
        .expect_status(200);
    let users = collection(&store, "users");
    let records = users
        .count_documents(doc! { "authentikSubjectId": legacy.member_subject })
        .await
        .unwrap();
    assert_eq!(records, 1, "updated, not duplicated");

    // The default tenant and its subscription were recognised, not doubled.
    let tenants = collection(&store, "tenants");
    assert_eq!(
        tenants
            .count_documents(doc! { "slug": "dezky" })
            .await
            .unwrap(),
        1
    );
    let dezky = tenants
        .find_one(doc! { "slug": "dezky" })
        .await
        .unwrap()
        .unwrap();
    let subscriptions = collection(&store, "subscriptions");
    let of_dezky = doc! { "tenantId": dezky.get_object_id("_id").unwrap() };
    assert_eq!(
        subscriptions
            .count_documents(of_dezky.clone())
            .await
            .unwrap(),
        1
    );
    let subscription = subscriptions.find_one(of_dezky).await.unwrap().unwrap();
    assert_eq!(subscription.get_str("stripePriceId"), Ok("price_1"));
}

#[tokio::test]
async fn a_migration_killed_half_way_ends_as_one_that_ran_through() {
    let stack = Stack::start().await;
    let store = stack.store().await;
    let tenants = collection(&store, "tenants");
    let now = DateTime::now();
    let legacy: Vec<Document> = (0..400)
        .map(|i| {
            doc! {
                "_id": ObjectId::new(), "slug": format!("t{i:03}"), "name": "T", "status": "active",
                "plan": "team", "provisioningStatus": { "authentik": "ok" },
                "createdAt": now, "updatedAt": now, "__v": 0,
            }
        })
        .collect();
    tenants.insert_many(&legacy).await.unwrap();
    // Half converted (as by a run that crashed there), no version recorded...
    for document in legacy.iter().take(200) {
        let conversion =
            dezky_core::migrate::legacy::tenant(document, dezky_core::Timestamp::now())
                .expect("legacy");
        tenants
            .update_one(conversion.filter, doc! { "$set": conversion.set })
            .await
            .unwrap();
    }
    // ... and a real run killed wherever it is after 300 ms (before it
    // started, midway or done: the end state below must be the same).
    let mut child = Command::new(env!("CARGO_BIN_EXE_provisioner"))
        .arg("migrate")
        .env("MONGODB_URI", crate::support::mongo::uri())
        .env("MONGODB_DB", &stack.db)
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("spawn migrate");
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    child.kill().await.expect("kill migrate");

    let report = String::from_utf8_lossy(&migrate(&stack, &[]).await.stdout).to_string();
    assert!(report.contains("tenants: 400 documents"), "{report}");
    let after = everything(&store).await;
    assert_eq!(after.len(), 400);
    for (old, new) in legacy.iter().zip(&after) {
        let converted = dezky_core::migrate::legacy::tenant(old, dezky_core::Timestamp::now())
            .expect("legacy")
            .applied_to(old);
        // The same document a single run gives, up to the times it set
        // and the order of the fields.
        let strip = |d: &Document| {
            let mut d = d.clone();
            if let Ok(request) = d.get_document_mut("reconcileRequest") {
                request.remove("requestedAt");
            }
            if let Ok(status) = d.get_document_mut("status") {
                if let Ok(systems) = status.get_document_mut("systems") {
                    for (_, system) in systems.iter_mut() {
                        if let Some(system) = system.as_document_mut() {
                            system.remove("lastTransitionAt");
                        }
                    }
                }
            }
            let mut fields: Vec<(String, mongodb::bson::Bson)> = d.into_iter().collect();
            fields.sort_by(|a, b| a.0.cmp(&b.0));
            fields
        };
        assert_eq!(strip(new), strip(&converted));
        assert!(dezky_core::migrate::legacy::tenant(new, dezky_core::Timestamp::now()).is_none());
    }
}
