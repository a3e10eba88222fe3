//! The real `provisioner` binary's `demo` and `simulate` commands, run as a
//! user would run them.

use std::collections::HashMap;
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

/// Generous: a debug build on a shared 2-core machine, mongod start included.
const DEMO_LIMIT: Duration = Duration::from_secs(240);
const SIMULATE_LIMIT: Duration = Duration::from_secs(60);
const SAMPLES: [&str; 3] = ["acme", "globex", "initech"];

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

#[tokio::test]
async fn demo_once_converges_breaks_and_heals_every_sample_tenant() {
    let data = tempfile::tempdir().expect("temp dir");
    let run = Command::new(env!("CARGO_BIN_EXE_provisioner"))
        .arg("demo")
        .arg("--once")
        .arg("--data-dir")
        .arg(data.path().join("mongo"))
        .args(["--mongod-port", &free_port().to_string()])
        .env("LISTEN_ADDR", format!("127.0.0.1:{}", free_port()))
        .env_remove("RUST_LOG")
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(DEMO_LIMIT, run)
        .await
        .expect("demo --once finishes in time")
        .expect("demo runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "demo --once failed ({})\nstdout:\n{stdout}\nstderr:\n{stderr}",
        output.status
    );

    // The table printed after healing: every sample active, its broken
    // system reporting the corrected drift.
    let healed = stdout
        .split("== 4.")
        .nth(1)
        .expect("the healing step is shown");
    for (slug, broken_column) in SAMPLES.iter().zip([2, 3, 4]) {
        let row: Vec<&str> = healed
            .lines()
            .find(|l| l.split_whitespace().next() == Some(slug))
            .unwrap_or_else(|| panic!("no row for {slug} after healing:\n{stdout}"))
            .split("  ")
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .collect();
        assert_eq!(row[1], "active", "{slug} after healing: {row:?}");
        assert!(
            row[broken_column].starts_with("ok DriftCorrected (drift 1)"),
            "{slug} after healing: {row:?}"
        );
    }
    assert!(stdout.contains("All 3 sample tenants are active again after healing"));
    assert!(
        stdout.contains("export TOKEN=ey"),
        "a ready token is printed"
    );
    for command in [
        "provisioner login --issuer ",
        "provisioner tenants apply -f examples/tenants/",
    ] {
        assert!(stdout.contains(command), "the demo shows `{command}`");
    }
}

/// Reads `simulate`'s stdout until every `export` line (and the token) is
/// there; returns them by name.
async fn read_exports(stdout: tokio::process::ChildStdout) -> HashMap<String, String> {
    let mut lines = BufReader::new(stdout).lines();
    let mut exports = HashMap::new();
    while !exports.contains_key("TOKEN") {
        let line = lines
            .next_line()
            .await
            .expect("read stdout")
            .expect("simulate printed every export line before its output ended");
        if let Some((name, value)) = line
            .strip_prefix("export ")
            .and_then(|rest| rest.split_once('='))
        {
            exports.insert(name.to_string(), value.to_string());
        }
    }
    exports
}

#[tokio::test]
async fn simulate_prints_working_settings_for_serve() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_provisioner"))
        .args(["simulate", "--authentik-port", "0"])
        .args(["--stalwart-port", "0", "--ocis-port", "0"])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("simulate starts");
    let stdout = child.stdout.take().expect("piped stdout");
    let env = tokio::time::timeout(SIMULATE_LIMIT, read_exports(stdout))
        .await
        .expect("the export lines appear in time");
    for name in [
        "OIDC_ISSUER",
        "OIDC_AUDIENCE",
        "AUTHENTIK_API_URL",
        "AUTHENTIK_TOKEN",
        "STALWART_API_URL",
        "STALWART_TOKEN",
        "OCIS_API_URL",
        "OCIS_CLIENT_ID",
        "OCIS_CLIENT_SECRET",
    ] {
        assert!(
            env.get(name).is_some_and(|v| !v.is_empty()),
            "{name} exported: {env:?}"
        );
    }

    // The printed settings work: the Authentik token is accepted, and the
    // oCIS service client gets a token from the issuer that oCIS trusts.
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client");
    let groups = http
        .get(format!("{}/api/v3/core/groups/", env["AUTHENTIK_API_URL"]))
        .bearer_auth(&env["AUTHENTIK_TOKEN"])
        .send()
        .await
        .expect("Authentik answers");
    assert_eq!(groups.status(), 200);
    let discovery: Value = http
        .get(format!(
            "{}.well-known/openid-configuration",
            env["OIDC_ISSUER"]
        ))
        .send()
        .await
        .expect("discovery answers")
        .json()
        .await
        .expect("discovery JSON");
    let token_url = discovery["token_endpoint"]
        .as_str()
        .expect("token endpoint");
    let token: Value = http
        .post(token_url)
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", env["OCIS_CLIENT_ID"].as_str()),
            ("client_secret", env["OCIS_CLIENT_SECRET"].as_str()),
            ("scope", "openid profile email"),
        ])
        .send()
        .await
        .expect("token endpoint answers")
        .json()
        .await
        .expect("token JSON");
    let access = token["access_token"].as_str().expect("access token");
    let drives = http
        .get(format!("{}/graph/v1.0/drives", env["OCIS_API_URL"]))
        .bearer_auth(access)
        .send()
        .await
        .expect("oCIS answers");
    assert_eq!(drives.status(), 200);
    child.kill().await.expect("simulate stops");
}
