//! The fleet view's server side: what a console needs to show 10,000
//! tenants and more without holding or redrawing 10,000 full documents.
//!
//! - [`row`]: the light *fleet row* of a tenant, which
//!   `GET /tenants?watch=true&view=fleet` streams in place of the full
//!   tenant. A change that moves only what a row leaves out (a routine
//!   resync's timestamps, a retry's message) sends that stream nothing.
//! - [`summary`]: `GET /fleet/summary`, the counts at the top of the view.
//!
//! Why rows and a summary rather than server-side pages and filters: the
//! rows of 10,000 tenants are about 3 MB, one stream that also keeps them
//! live, and a browser filters and sorts 10,000 rows in a few milliseconds,
//! so a keystroke needs no round trip and no per-page watch. The summary
//! counts come from the same cache; only "drift corrections today" needs
//! the event history, which is why it is an endpoint and not a stream.

pub mod row;
pub mod summary;

use axum::extract::State;
use axum::routing::get;
use axum::Router;
use dezky_core::Timestamp;
use mongodb::bson::doc;

use crate::auth::Actor;
use crate::error::ApiResult;
use crate::json::ApiJson;
use crate::state::ApiContext;
use crate::tenants::watch::subscribe;
pub use row::{FleetRow, Health};
use summary::{start_of_day, FleetSummary};

/// Routes of this resource.
pub fn router() -> Router<ApiContext> {
    Router::new().route("/fleet/summary", get(read_summary))
}

#[utoipa::path(get, path = "/fleet/summary", tag = "tenants",
    responses(
        (status = 200, description = "the tenants visible to the caller (platform admin: all) by phase and by system state, \
those needing attention (`degraded` or a system in `error`), and today's drift corrections; \
answered from the tenant cache (503 `database_unavailable` if it cannot sync within 5 s)", body = FleetSummary)))]
pub(crate) async fn read_summary(
    State(ctx): State<ApiContext>,
    actor: Actor,
) -> ApiResult<ApiJson<FleetSummary>> {
    let snapshot = subscribe(&ctx, None).await?.snapshot;
    let user = &actor.0;
    let visible: Vec<_> = snapshot
        .iter()
        .filter(|tenant| !tenant.is_broken() && user.can_see(tenant.id(), tenant.created_by()))
        .collect();
    let since = start_of_day(Timestamp::now());
    let mut summary = FleetSummary::tally(visible.iter().filter_map(|t| t.health()), since);
    let mut filter = doc! { "action": "drift_corrected", "at": { "$gte": summary.since } };
    if !user.platform_admin {
        let ids: Vec<_> = visible.iter().map(|tenant| tenant.id().0).collect();
        filter.insert("tenantId", doc! { "$in": ids });
    }
    summary.drift_corrections_today = ctx.store.events.count_documents(filter).await?;
    Ok(ApiJson(summary))
}
