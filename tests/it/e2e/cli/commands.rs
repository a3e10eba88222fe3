//! The other `provisioner tenants` commands through the real binary: every
//! `get -o` format parsed back (JSON and YAML equal to the API's objects,
//! tables with one cell per column), `describe`, `events`, `plan`,
//! `reconcile --wait`, `pause`/`resume`, `delete --wait`, and the exit
//! codes (1 with the server's message, 2 for a wrong command line).

use serde_json::{json, Value};

use super::{manifest, write, AdminCli, Cli};

/// The cells of a table line (columns are three or more spaces apart).
fn cells(line: &str) -> Vec<String> {
    line.split("   ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(str::to_string)
        .collect()
}

#[tokio::test]
async fn every_get_output_format_parses_back() {
    let env = AdminCli::start().await;
    let AdminCli { api, cli, dir, .. } = &env;
    write(
        dir.path(),
        "a.yaml",
        &manifest("acme", "Acme Inc", &["acme.test", "mail.acme.test"]),
    );
    write(dir.path(), "b.yaml", &manifest("globex", "Globex", &[]));
    cli.run(&[
        "tenants",
        "apply",
        "-f",
        dir.path().to_str().expect("UTF-8"),
        "--wait=60s",
    ])
    .await
    .expect_code(0);
    let listed = api.get("/tenants").await.expect_status(200).body["items"].clone();
    let acme = api.tenant("acme").await;

    let json_list: Value = serde_json::from_str(
        &cli.run(&["tenants", "get", "-o", "json"])
            .await
            .expect_code(0)
            .stdout,
    )
    .expect("`get -o json` is JSON");
    assert_eq!(json_list, json!({ "items": listed }));
    let json_one: Value = serde_json::from_str(
        &cli.run(&["tenants", "get", "acme", "-o", "json"])
            .await
            .expect_code(0)
            .stdout,
    )
    .expect("`get acme -o json` is JSON");
    assert_eq!(json_one, acme);
    let yaml_list: Value = serde_yaml::from_str(
        &cli.run(&["tenants", "get", "-o", "yaml"])
            .await
            .expect_code(0)
            .stdout,
    )
    .expect("`get -o yaml` is YAML");
    assert_eq!(yaml_list, json!({ "items": listed }));
    let yaml_one: Value = serde_yaml::from_str(
        &cli.run(&["tenants", "get", "acme", "-o", "yaml"])
            .await
            .expect_code(0)
            .stdout,
    )
    .expect("`get acme -o yaml` is YAML");
    assert_eq!(yaml_one, acme);

    let table = cli.run(&["tenants", "get"]).await.expect_code(0).stdout;
    let rows: Vec<Vec<String>> = table.lines().map(cells).collect();
    assert_eq!(rows[0], ["SLUG", "PHASE", "PLAN", "DOMAINS", "AGE"]);
    assert_eq!(rows.len(), 3, "{table}");
    // In the API's order (oldest first): `apply` creates them concurrently.
    let row = |slug: &str| rows[1..].iter().find(|row| row[0] == slug).expect(slug)[..4].to_vec();
    assert_eq!(
        row("acme"),
        ["acme", "active", "team", "acme.test,mail.acme.test"]
    );
    assert_eq!(row("globex"), ["globex", "active", "team", "-"]);
    let wide = cli
        .run(&["tenants", "get", "acme", "-o", "wide"])
        .await
        .expect_code(0)
        .stdout;
    let rows: Vec<Vec<String>> = wide.lines().map(cells).collect();
    let header = [
        "SLUG",
        "NAME",
        "PHASE",
        "PLAN",
        "DOMAINS",
        "PAUSED",
        "GENERATION",
        "OBSERVED",
        "AUTHENTIK",
        "STALWART",
        "OCIS",
        "AGE",
    ];
    assert_eq!(rows[0], header);
    assert_eq!(rows.len(), 2, "{wide}");
    assert_eq!(rows[1].len(), header.len(), "one cell per column: {wide}");
    assert_eq!(
        rows[1][..8],
        [
            "acme",
            "Acme Inc",
            "active",
            "team",
            "acme.test,mail.acme.test",
            "false",
            "1",
            "1"
        ]
    );
    for cell in &rows[1][8..11] {
        assert!(cell.starts_with("ok "), "{wide}");
    }
}

#[tokio::test]
async fn describe_events_plan_reconcile_pause_resume_and_delete() {
    let env = AdminCli::start().await;
    let AdminCli {
        stack, api, cli, ..
    } = &env;
    api.create_tenant("acme", "Acme Inc", &["acme.test"]).await;
    api.converged("acme").await;

    let described = cli
        .run(&["tenants", "describe", "acme"])
        .await
        .expect_code(0)
        .stdout;
    for expected in [
        "Name:",
        "Acme Inc",
        "Phase:",
        "active",
        "Systems:",
        "Recent events (newest first):",
    ] {
        assert!(
            described.contains(expected),
            "{expected:?} in:\n{described}"
        );
    }
    for system in ["authentik", "stalwart", "ocis"] {
        let line = described
            .lines()
            .find(|l| l.split_whitespace().next() == Some(system))
            .unwrap_or_else(|| panic!("a {system} line:\n{described}"));
        assert_eq!(cells(line)[1], "ok", "{line}");
    }
    assert!(
        described.contains("created"),
        "events are shown: {described}"
    );

    let events = cli
        .run(&["tenants", "events", "acme"])
        .await
        .expect_code(0)
        .stdout;
    assert_eq!(
        cells(events.lines().next().unwrap_or_default())[..3],
        ["AT", "SYSTEM", "ACTION"]
    );
    let events: Value = serde_json::from_str(
        &cli.run(&["tenants", "events", "acme", "-o", "json"])
            .await
            .expect_code(0)
            .stdout,
    )
    .expect("JSON");
    assert_eq!(events["items"], json!(api.events("acme").await));

    let plan = cli
        .run(&["tenants", "plan", "acme"])
        .await
        .expect_code(0)
        .stdout;
    assert!(plan.contains("controller plan at generation 1"), "{plan}");
    for system in ["authentik", "stalwart", "ocis"] {
        assert!(plan.contains(&format!("{system}: in sync")), "{plan}");
    }

    let reconciled = cli
        .run(&["tenants", "reconcile", "acme", "--wait=30s"])
        .await
        .expect_code(0)
        .stdout;
    assert!(
        reconciled.contains("tenant/acme reconciled: active"),
        "{reconciled}"
    );
    let token = api.tenant("acme").await["status"]["lastHandledReconcileToken"].clone();
    assert!(token.is_string(), "the reconcile was handled");

    cli.run(&["tenants", "pause", "acme"]).await.expect_code(0);
    assert_eq!(api.tenant("acme").await["paused"], true);
    cli.run(&["tenants", "resume", "acme"]).await.expect_code(0);
    assert_eq!(api.tenant("acme").await["paused"], false);

    let deleted = cli
        .run(&["tenants", "delete", "acme", "--wait=60s"])
        .await
        .expect_code(0)
        .stdout;
    assert!(deleted.contains("tenant/acme: deleted"), "{deleted}");
    assert_eq!(api.get("/tenants/acme").await.status, 404);
    assert!(
        stack.sims.authentik.group_named("tenant-acme").is_none(),
        "cleaned up"
    );
}

#[tokio::test]
async fn exit_codes_are_one_with_the_servers_message_and_two_for_usage() {
    let env = AdminCli::start().await;
    let AdminCli { serve, cli, .. } = &env;
    let missing = cli.run(&["tenants", "get", "nope"]).await.expect_code(1);
    assert!(
        missing.stderr.contains("404 not_found"),
        "{}",
        missing.stderr
    );
    let usage = cli
        .run(&["tenants", "get", "-o", "xml"])
        .await
        .expect_code(2);
    assert!(
        usage.stderr.contains("invalid value 'xml'"),
        "{}",
        usage.stderr
    );
    cli.run(&["tenants", "apply"]).await.expect_code(2);
    cli.run(&["tenants", "apply", "-f", "x", "--dry-run", "--wait"])
        .await
        .expect_code(2);
    let anonymous = Cli::new(serve, None);
    let run = anonymous.run(&["tenants", "get"]).await.expect_code(1);
    assert!(run.stderr.contains("not logged in"), "{}", run.stderr);
    let forged = Cli::new(serve, Some("not-a-jwt"));
    let run = forged.run(&["tenants", "get"]).await.expect_code(1);
    assert!(run.stderr.contains("401 unauthorized"), "{}", run.stderr);
}
