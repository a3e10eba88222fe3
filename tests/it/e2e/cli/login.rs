//! `provisioner login` / `logout` through the real binary against the
//! simulated Authentik's device authorization grant: the binary prints the
//! verification URL and code, the test confirms (or denies) that code
//! through the simulator's hook, and the stored token (file mode 0600)
//! then authenticates the `tenants` commands.

use std::process::Stdio;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};

use super::{Cli, Run};
use crate::e2e::harness::Stack;
use crate::support::api::ADMIN_GROUP;

/// From the start of `login` to its printed code, and from the decision to its exit.
const LOGIN_LIMIT: Duration = Duration::from_secs(30);

/// Runs `provisioner login` against `stack`'s issuer; once it printed its
/// code, `decide` is called with it; returns the finished run.
async fn login(stack: &Stack, cli: &Cli, decide: impl FnOnce(&str)) -> Run {
    let oidc = stack.sims.authentik.oidc();
    let issuer = oidc.issuer();
    let mut child = cli
        .command(&[
            "login",
            "--issuer",
            &issuer,
            "--client-id",
            oidc.client_id(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn provisioner login");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut stdout = String::new();
    let code = tokio::time::timeout(LOGIN_LIMIT, async {
        while let Some(line) = lines.next_line().await.expect("read stdout") {
            stdout.push_str(&line);
            stdout.push('\n');
            if let Some((url, code)) = line
                .strip_prefix("To sign in, open ")
                .and_then(|rest| rest.split_once(" and enter the code "))
            {
                assert_eq!(url, oidc.device_verification_url());
                return code.to_string();
            }
        }
        panic!("login printed no code:\n{stdout}");
    })
    .await
    .expect("login prints its code in time");
    decide(&code);
    while let Some(line) = tokio::time::timeout(LOGIN_LIMIT, lines.next_line())
        .await
        .expect("login finishes in time")
        .expect("read stdout")
    {
        stdout.push_str(&line);
        stdout.push('\n');
    }
    let output = child.wait_with_output().await.expect("login exits");
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout,
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn admin_claims() -> Value {
    json!({ "sub": "cli-admin", "email": "cli-admin@dezky.test", "name": "CLI Admin", "groups": [ADMIN_GROUP] })
}

#[tokio::test]
async fn device_flow_login_stores_a_private_token_that_the_commands_use_until_logout() {
    let stack = Stack::start().await;
    let oidc = stack.sims.authentik.oidc();
    oidc.set_device_flow(Duration::from_secs(1), Duration::from_secs(60));
    let serve = stack.spawn("serve").await;
    let cli = Cli::new(&serve, None);
    cli.run(&["tenants", "get"]).await.expect_code(1);

    let run = login(&stack, &cli, |code| {
        assert!(
            oidc.approve_device(code, admin_claims()),
            "{code} is pending"
        );
    })
    .await
    .expect_code(0);
    assert!(
        run.stdout.contains("platform admin"),
        "synced with /users/me: {}",
        run.stdout
    );

    let path = cli.credentials();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path)
            .expect("the token file")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{}", path.display());
    }
    let stored: Value = serde_json::from_slice(&std::fs::read(&path).expect("read")).expect("JSON");
    let token = stored["servers"][&serve.url]["accessToken"]
        .as_str()
        .expect("a token for the server");
    assert_eq!(token.split('.').count(), 3, "a JWT");

    // The stored login authenticates as the synced platform admin.
    let created = cli
        .run(&["tenants", "get", "-o", "json"])
        .await
        .expect_code(0);
    assert_eq!(
        serde_json::from_str::<Value>(&created.stdout).expect("JSON"),
        json!({"items": []})
    );

    let out = cli.run(&["logout"]).await.expect_code(0);
    assert!(out.stdout.contains("removed"), "{}", out.stdout);
    let after = cli.run(&["tenants", "get"]).await.expect_code(1);
    assert!(after.stderr.contains("not logged in"), "{}", after.stderr);
}

#[tokio::test]
async fn a_denied_device_login_fails_and_stores_nothing() {
    let stack = Stack::start().await;
    let oidc = stack.sims.authentik.oidc();
    oidc.set_device_flow(Duration::from_secs(1), Duration::from_secs(60));
    let serve = stack.spawn("serve").await;
    let cli = Cli::new(&serve, None);
    let run = login(&stack, &cli, |code| {
        assert!(oidc.deny_device(code));
    })
    .await
    .expect_code(1);
    assert!(
        run.stderr.contains("login failed: the request was denied"),
        "{}",
        run.stderr
    );
    assert!(!cli.credentials().exists());
}

/// The stored login of `cli` for `serve_url`.
fn stored(cli: &Cli, serve_url: &str) -> Value {
    let file: Value =
        serde_json::from_slice(&std::fs::read(cli.credentials()).expect("read")).expect("JSON");
    file["servers"][serve_url].clone()
}

/// Waits until the stored login's `expiresAt` has passed.
async fn until_expired(login: &Value) {
    let at: chrono::DateTime<chrono::Utc> = login["expiresAt"]
        .as_str()
        .expect("an expiry")
        .parse()
        .expect("RFC 3339");
    let wait = (at - chrono::Utc::now()).to_std().unwrap_or_default();
    assert!(wait < Duration::from_secs(10), "a short lifetime: {wait:?}");
    tokio::time::sleep(wait + Duration::from_millis(50)).await;
    assert!(chrono::Utc::now() > at);
}

#[tokio::test]
async fn an_expired_login_is_renewed_silently_until_its_refresh_token_is_revoked() {
    let stack = Stack::start().await;
    let oidc = stack.sims.authentik.oidc();
    oidc.set_device_flow(Duration::from_secs(1), Duration::from_secs(60));
    oidc.set_token_lifetime(Duration::from_secs(2));
    let serve = stack.spawn("serve").await;
    let cli = Cli::new(&serve, None);
    let run = login(&stack, &cli, |code| {
        assert!(oidc.approve_device(code, admin_claims()));
    })
    .await
    .expect_code(0);
    assert!(
        run.stdout.contains("renewed with its refresh token"),
        "{}",
        run.stdout
    );
    let first = stored(&cli, &serve.url);
    let refresh = first["refreshToken"]
        .as_str()
        .expect("offline_access brought one");

    // The access token expires; the next command renews it first.
    until_expired(&first).await;
    cli.run(&["tenants", "get"]).await.expect_code(0);
    assert_eq!(oidc.refreshes(), 1);
    let second = stored(&cli, &serve.url);
    assert_ne!(second["accessToken"], first["accessToken"]);
    assert_ne!(
        second["refreshToken"].as_str(),
        Some(refresh),
        "the rotated one is kept"
    );
    assert!(second["expiresAt"].as_str() > first["expiresAt"].as_str());

    // Once the refresh token is revoked, the command says what to do.
    oidc.revoke_refresh_tokens();
    until_expired(&second).await;
    let refused = cli.run(&["tenants", "get"]).await.expect_code(1);
    assert!(
        refused.stderr.contains("cannot be renewed")
            && refused.stderr.contains("invalid_grant")
            && refused.stderr.contains("run `provisioner login` again"),
        "{}",
        refused.stderr
    );
}
