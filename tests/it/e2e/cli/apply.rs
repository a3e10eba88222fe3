//! `provisioner tenants apply`: a directory of manifests applied, applied
//! again (nothing changes, no generation bump), one file changed (only that
//! tenant changes), `--dry-run` (nothing changes), `--wait` (returns when
//! active, fails naming the system that errors), and errors that name the
//! manifest's file, document and field.

use serde_json::json;

use super::{manifest, outcomes, write, AdminCli};
use crate::e2e::harness::converged;

#[tokio::test]
async fn apply_a_directory_then_again_then_with_one_file_changed() {
    let env = AdminCli::start().await;
    let AdminCli {
        stack,
        api,
        cli,
        dir,
        ..
    } = &env;
    write(
        dir.path(),
        "acme.yaml",
        &manifest("acme", "Acme Inc", &["acme.test"]),
    );
    let more = format!(
        "{}---\n{}",
        manifest("globex", "Globex", &["globex.test"]),
        manifest("initech", "Initech", &[])
    );
    write(dir.path(), "more.yml", &more);
    write(dir.path(), "README.md", "# not a manifest");
    let path = dir.path().to_str().expect("a UTF-8 path");

    let first = cli
        .run(&["tenants", "apply", "-f", path])
        .await
        .expect_code(0);
    assert_eq!(
        outcomes(&first.stdout),
        [
            "tenant/acme created",
            "tenant/globex created",
            "tenant/initech created"
        ]
    );
    let before: Vec<_> = {
        let mut tenants = Vec::new();
        for slug in ["acme", "globex", "initech"] {
            let tenant = api.tenant(slug).await;
            assert_eq!(tenant["generation"], 1, "{tenant}");
            tenants.push(tenant);
        }
        tenants
    };
    assert_eq!(before[0]["domains"], json!(["acme.test"]));

    let again = cli
        .run(&["tenants", "apply", "-f", path])
        .await
        .expect_code(0);
    assert_eq!(
        outcomes(&again.stdout),
        [
            "tenant/acme unchanged",
            "tenant/globex unchanged",
            "tenant/initech unchanged"
        ]
    );
    for (slug, before) in ["acme", "globex", "initech"].iter().zip(&before) {
        let now = api.tenant(slug).await;
        assert_eq!(now["generation"], 1, "no generation bump: {now}");
        assert_eq!(now["updatedAt"], before["updatedAt"], "not written: {now}");
    }

    write(
        dir.path(),
        "acme.yaml",
        &manifest(
            "acme",
            "Acme Incorporated",
            &["acme.test", "shop.acme.test"],
        ),
    );
    let changed = cli
        .run(&["tenants", "apply", "-f", path])
        .await
        .expect_code(0);
    assert_eq!(
        outcomes(&changed.stdout),
        [
            "tenant/acme configured (name, domains)",
            "tenant/globex unchanged",
            "tenant/initech unchanged"
        ]
    );
    let acme = api.tenant("acme").await;
    assert_eq!(acme["generation"], 2);
    assert_eq!(acme["name"], "Acme Incorporated");
    for slug in ["globex", "initech"] {
        assert_eq!(api.tenant(slug).await["generation"], 1, "{slug} untouched");
    }
    let acme = api.converged("acme").await;
    assert_eq!(acme["status"]["observedGeneration"], 2);
    assert!(stack.sims.stalwart.domain_named("shop.acme.test").is_some());
}

#[tokio::test]
async fn dry_run_shows_changes_and_the_controllers_plan_and_changes_nothing() {
    let env = AdminCli::start().await;
    let AdminCli {
        stack,
        api,
        cli,
        dir,
        ..
    } = &env;
    let path = dir.path().to_str().expect("a UTF-8 path");
    write(
        dir.path(),
        "acme.yaml",
        &manifest("acme", "Acme Inc", &["acme.test"]),
    );
    write(dir.path(), "same.yaml", &manifest("same", "Same", &[]));
    cli.run(&["tenants", "apply", "-f", path])
        .await
        .expect_code(0);
    let before = api.converged("acme").await;
    api.converged("same").await;

    write(
        dir.path(),
        "acme.yaml",
        &manifest("acme", "Acme Two", &["Acme.TEST"]),
    );
    write(dir.path(), "newco.json", &serde_json::to_string(&json!({
        "kind": "Tenant", "metadata": {"slug": "newco"}, "spec": {"name": "NewCo", "plan": "free"}
    })).expect("JSON"));
    let dry = cli
        .run(&["tenants", "apply", "-f", path, "--dry-run"])
        .await
        .expect_code(0);
    let out = &dry.stdout;
    assert!(out.contains("tenant/acme would be configured:"), "{out}");
    assert!(out.contains(r#"  name: "Acme Inc" -> "Acme Two""#), "{out}");
    assert!(
        !out.contains("domains:"),
        "domains compare normalised: {out}"
    );
    assert!(out.contains("controller plan at generation 1"), "{out}");
    assert!(
        out.contains("authentik: in sync"),
        "a converged tenant's plan: {out}"
    );
    assert!(out.contains("tenant/newco would be created"), "{out}");
    assert!(out.contains("tenant/same unchanged"), "{out}");
    assert!(out.contains("(dry run: nothing was changed)"), "{out}");

    let after = api.tenant("acme").await;
    assert_eq!(after["generation"], before["generation"]);
    assert_eq!(after["name"], "Acme Inc");
    assert_eq!(after["updatedAt"], before["updatedAt"]);
    assert_eq!(api.get("/tenants/newco").await.status, 404);
    assert!(stack.sims.authentik.group_named("tenant-newco").is_none());
}

#[tokio::test]
async fn wait_returns_once_every_tenant_is_active() {
    let env = AdminCli::start().await;
    let AdminCli { api, cli, dir, .. } = &env;
    write(
        dir.path(),
        "acme.yaml",
        &manifest("acme", "Acme Inc", &["acme.test"]),
    );
    write(
        dir.path(),
        "globex.yaml",
        &manifest("globex", "Globex", &["globex.test"]),
    );
    let path = dir.path().to_str().expect("a UTF-8 path");
    let run = cli
        .run(&["tenants", "apply", "-f", path, "--wait=60s"])
        .await
        .expect_code(0);
    for slug in ["acme", "globex"] {
        let tenant = api.tenant(slug).await;
        assert!(
            converged(&tenant),
            "{slug} active when apply returned: {tenant}"
        );
        assert!(
            run.stdout
                .contains(&format!("tenant/{slug}: active (authentik ok")),
            "{}",
            run.stdout
        );
    }
}

#[tokio::test]
async fn wait_fails_naming_the_system_that_errors_and_why() {
    let env = AdminCli::start().await;
    let AdminCli {
        stack,
        api,
        cli,
        dir,
        ..
    } = &env;
    write(
        dir.path(),
        "acme.yaml",
        &manifest("acme", "Acme Inc", &["acme.test"]),
    );
    stack.sims.stalwart.faults().set_outage(true);
    let run = cli
        .run(&[
            "tenants",
            "apply",
            "-f",
            dir.path().to_str().expect("UTF-8"),
            "--wait=60s",
        ])
        .await
        .expect_code(1);
    let tenant = api.tenant("acme").await;
    let stalwart = &tenant["status"]["systems"]["stalwart"];
    assert_eq!(stalwart["state"], "error", "{tenant}");
    let expected = format!(
        "tenant/acme failed: stalwart error {}: {}",
        stalwart["reason"].as_str().expect("a reason"),
        stalwart["message"].as_str().expect("a message")
    );
    assert!(
        run.stderr.contains(&expected),
        "want {expected:?} in:\n{}",
        run.stderr
    );
    assert!(run.stdout.contains("tenant/acme created"), "{}", run.stdout);
}

#[tokio::test]
async fn errors_name_the_manifest_and_the_field_and_stop_nothing_else() {
    let env = AdminCli::start().await;
    let AdminCli { api, cli, dir, .. } = &env;
    let path = dir.path().to_str().expect("a UTF-8 path");
    let broken = format!(
        "{}---\n{}  colour: red\n",
        manifest("acme", "Acme", &[]),
        manifest("globex", "Globex", &[])
    );
    write(dir.path(), "bad.yaml", &broken);
    let run = cli
        .run(&["tenants", "apply", "-f", path])
        .await
        .expect_code(1);
    assert!(
        run.stderr
            .contains("bad.yaml: document 2: spec.colour: unknown field `colour`"),
        "{}",
        run.stderr
    );
    assert_eq!(
        api.get("/tenants").await.body["items"],
        json!([]),
        "nothing applied"
    );

    // The server's own checks (plans are its configuration) name the field too.
    let unknown_plan = manifest("globex", "Globex", &[]).replace("plan: team", "plan: gold");
    write(dir.path(), "bad.yaml", &unknown_plan);
    write(dir.path(), "good.yaml", &manifest("good", "Good", &[]));
    let run = cli
        .run(&["tenants", "apply", "-f", path])
        .await
        .expect_code(1);
    assert!(
        run.stderr.contains("tenant/globex (")
            && run.stderr.contains("bad.yaml: document 1): PUT /tenants/globex: 400 validation_failed: unknown plan `gold`")
            && run.stderr.contains("(field spec.plan)"),
        "{}",
        run.stderr
    );
    assert!(run.stdout.contains("tenant/good created"), "{}", run.stdout);
    assert_eq!(api.tenant("good").await["generation"], 1);
}
