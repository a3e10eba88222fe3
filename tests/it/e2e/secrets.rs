//! Credentials from files (`*_FILE`, the Docker and Kubernetes convention):
//! a rotated file is used from the next request on, without a restart.

use super::harness::{converged, Stack};

#[tokio::test]
async fn a_rotated_token_file_is_picked_up_without_a_restart() {
    let stack = Stack::start().await;
    let dir = tempfile::tempdir().expect("a directory");
    let authentik = dir.path().join("authentik-token");
    let stalwart = dir.path().join("stalwart-token");
    std::fs::write(&authentik, "wrong-token\n").unwrap();
    std::fs::write(&stalwart, "API_wrong\n").unwrap();
    let files = [
        ("AUTHENTIK_TOKEN_FILE", authentik.to_str().unwrap()),
        ("STALWART_TOKEN_FILE", stalwart.to_str().unwrap()),
    ];
    let serve = stack
        .spawn_without("serve", &files, &["AUTHENTIK_TOKEN", "STALWART_TOKEN"])
        .await;
    let api = stack.admin(&serve).await;
    api.create_tenant("rotated", "Rotated", &["rotated.test"])
        .await;
    let refused = api
        .tenant_until("rotated", "both credentials refused", |t| {
            let systems = &t["status"]["systems"];
            systems["authentik"]["reason"] == "Unauthorized"
                && systems["stalwart"]["state"] == "error"
        })
        .await;
    assert_eq!(refused["status"]["systems"]["ocis"]["state"], "ok");

    // Rotated as a mounted Secret is: the new content replaces the file.
    let sims = &stack.sims;
    std::fs::write(&authentik, format!("{}\n", sims.authentik.api_token())).unwrap();
    std::fs::write(&stalwart, format!("{}\n", sims.stalwart_token())).unwrap();
    let healed = api.reconcile("rotated").await;
    assert!(converged(&healed), "{healed}");
}
