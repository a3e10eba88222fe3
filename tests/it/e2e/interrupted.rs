//! Creation interrupted by kill -9, again and again: whenever the process
//! dies (before a create, after it, before its status write), the tenants
//! end with exactly one group, one domain and one space each. The first
//! pass of a tenant creates without looking up first (one request per
//! system), which is safe because it is the first pass that claimed the
//! finalizers (`passClaims` 1): a pass after a kill claims again and looks
//! up before it creates.

use std::time::Duration;

use super::harness::{converged, Stack};
use super::lifecycle::space;
use crate::support::wait::until;

const TENANTS: usize = 30;

#[tokio::test]
async fn creates_interrupted_by_kill_9_never_duplicate() {
    let stack = Stack::start().await;
    let mut serve = stack.spawn("serve").await;
    let api = stack.admin(&serve).await;
    let slugs: Vec<String> = (0..TENANTS).map(|i| format!("kill-{i:02}")).collect();
    for slug in &slugs {
        let domain = format!("{slug}.test");
        api.create_tenant(slug, slug, &[domain.as_str()]).await;
    }
    // Killed wherever its passes are after 50 ms, three times over; what
    // is asserted below holds whatever each kill interrupted.
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        serve.kill().await;
        serve = stack.spawn("serve").await;
    }
    let api = stack.admin(&serve).await;
    until(
        "every tenant converged",
        Duration::from_secs(60),
        || async {
            for slug in &slugs {
                if !converged(&api.tenant(slug).await) {
                    return None;
                }
            }
            Some(())
        },
    )
    .await;

    let sims = &stack.sims;
    for slug in &slugs {
        let group = format!("tenant-{slug}");
        let groups = sims
            .authentik
            .groups()
            .into_iter()
            .filter(|g| g.name == group);
        assert_eq!(groups.count(), 1, "{slug}: one Authentik group");
        let domain = format!("{slug}.test");
        let domains = sims
            .stalwart
            .domains()
            .into_iter()
            .filter(|d| d.name == domain);
        assert_eq!(domains.count(), 1, "{slug}: one Stalwart domain");
        let alias = format!("project/tenant-{slug}");
        assert_eq!(
            sims.ocis.drives_with_alias(&alias).len(),
            1,
            "{slug}: one space"
        );
        assert!(space(sims, slug).is_some());
    }
    assert_eq!(sims.authentik.groups().len(), TENANTS, "no stray group");
}
