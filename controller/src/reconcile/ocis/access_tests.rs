//! The tenant group's access to its space (see [`super::access`]): grants
//! matched by group id, a deleted group's grant removed, the service's own
//! group deleted with its tenant, a space hidden from a non-member service
//! user reported as such, and an earlier tenant's disabled space never
//! handed to a new tenant with the same slug.

use dezky_core::model::SystemState;

use super::tests::{env_with, tenant, CLIENT_ID, SERVICE_USER};
use super::*;

fn creating_groups() -> OcisSettings {
    OcisSettings {
        create_groups: true,
        ..OcisSettings::default()
    }
}

#[tokio::test]
async fn a_deleted_groups_grant_is_removed_not_taken_for_the_tenants() {
    let env = env_with(creating_groups()).await;
    let mut acme = tenant("acme", "Acme", "team");
    env.pass(&mut acme).await;
    let space = env.space(&acme);
    let old = env.ocis.group_id("tenant-acme").expect("created");
    // Deleted out of band: oCIS keeps its grant, with its name, for a while.
    assert!(env.ocis.delete_group(&old));
    let outcome = env.pass(&mut acme).await;
    assert_ne!(outcome.reason, "InSync", "{outcome:?}");
    let new = env.ocis.group_id("tenant-acme").expect("created again");
    assert_ne!(new, old);
    let groups: Vec<String> = env
        .ocis
        .permissions(&space.id)
        .into_iter()
        .filter(|p| p.id.starts_with("g:"))
        .map(|p| p.id)
        .collect();
    assert_eq!(groups, [format!("g:{new}")], "the stale grant is gone");
    assert!(outcome
        .actions
        .iter()
        .any(|a| a.object.contains("deleted group")));
}

#[tokio::test]
async fn without_group_creation_a_deleted_group_waits_and_its_grant_goes() {
    let env = env_with(OcisSettings::default()).await;
    let gid = env.ocis.create_group("tenant-acme");
    let mut acme = tenant("acme", "Acme", "team");
    env.pass(&mut acme).await;
    let space = env.space(&acme);
    assert!(env.ocis.delete_group(&gid));
    let outcome = env.pass(&mut acme).await;
    assert_eq!(
        (outcome.state, outcome.reason.as_str()),
        (SystemState::Pending, "WaitingForGroup")
    );
    assert!(env
        .ocis
        .permissions(&space.id)
        .iter()
        .all(|p| !p.id.starts_with("g:")));
}

#[tokio::test]
async fn the_services_own_group_is_deleted_with_its_tenant() {
    let env = env_with(creating_groups()).await;
    let mut acme = tenant("acme", "Acme", "team");
    env.pass(&mut acme).await;
    assert!(env.ocis.group_id("tenant-acme").is_some());
    let cleaned = env
        .reconciler
        .cleanup(&acme, Mode::Apply)
        .await
        .expect("cleanup");
    assert_eq!(cleaned.reason, "Deleted");
    assert_eq!(env.ocis.group_id("tenant-acme"), None);
}

#[tokio::test]
async fn a_group_the_service_did_not_create_stays_after_its_tenant() {
    let env = env_with(OcisSettings::default()).await;
    env.ocis.create_group("tenant-acme");
    let mut acme = tenant("acme", "Acme", "team");
    env.pass(&mut acme).await;
    env.reconciler
        .cleanup(&acme, Mode::Apply)
        .await
        .expect("cleanup");
    assert!(env.ocis.group_id("tenant-acme").is_some());
}

#[tokio::test]
async fn a_new_tenant_with_a_deleted_tenants_slug_gets_a_new_space() {
    let env = env_with(creating_groups()).await;
    let mut first = tenant("acme", "Acme", "team");
    env.pass(&mut first).await;
    let old = env.space(&first);
    env.reconciler
        .cleanup(&first, Mode::Apply)
        .await
        .expect("cleanup");
    assert!(env.ocis.drive(&old.id).expect("kept").trashed);

    let mut second = tenant("acme", "Acme again", "team");
    let outcome = env.pass(&mut second).await;
    assert_eq!(outcome.reason, "Created");
    let new = env.space(&second);
    assert_ne!(new.id, old.id);
    assert!(env.ocis.drive(&old.id).expect("still kept").trashed);
    assert!(outcome.message.contains(&old.id), "{}", outcome.message);
}

#[tokio::test]
async fn a_space_the_service_user_is_not_a_member_of_says_so_and_what_to_do() {
    let env = env_with(OcisSettings::default()).await;
    env.ocis.create_group("tenant-acme");
    let mut acme = tenant("acme", "Acme", "team");
    env.pass(&mut acme).await;
    let space = env.space(&acme);
    // oCIS answers 404 for the grants of a space to a non-member.
    assert!(env
        .ocis
        .remove_permission(&space.id, &format!("u:{SERVICE_USER}")));
    let error = env
        .reconciler
        .reconcile(&acme, Mode::Apply)
        .await
        .expect_err("not a member");
    assert_eq!(error.reason, "NotSpaceMember");
    assert!(error.conflict, "backs off like a conflict");
    assert!(error.message.contains(CLIENT_ID), "{}", error.message);
    assert!(error.message.contains("Manager"), "{}", error.message);
    assert_eq!(env.ocis.drives().len(), 1, "no second space");
}

#[tokio::test]
async fn a_first_pass_creates_the_group_without_looking_it_up() {
    let env = env_with(creating_groups()).await;
    let mut acme = tenant("acme", "Acme", "team");
    acme.pass_claims = 1;
    env.pass(&mut acme).await;
    let route = "/graph/v1.0/groups/{name_or_id}";
    assert_eq!(env.ocis.recorder().count("GET", route), 0);
    assert_eq!(env.ocis.recorder().count("POST", "/graph/v1.0/groups"), 1);
    assert!(env
        .group_role(&env.space(&acme).id, "tenant-acme")
        .is_some());
}

#[tokio::test]
async fn a_first_pass_whose_group_create_is_refused_uses_the_existing_group() {
    let env = env_with(creating_groups()).await;
    let existing = env.ocis.create_group("tenant-acme");
    let mut acme = tenant("acme", "Acme", "team");
    acme.pass_claims = 1;
    env.pass(&mut acme).await;
    assert_eq!(env.ocis.group_id("tenant-acme"), Some(existing.clone()));
    let grants = env.ocis.permissions(&env.space(&acme).id);
    assert!(grants.iter().any(|p| p.id == format!("g:{existing}")));
}
