//! The state every handler receives.

use std::sync::Arc;

use dezky_core::store::Store;

use crate::auth::actors::ActorCache;
use crate::auth::Verifier;
use crate::config::ApiConfig;
use crate::tenant_cache::TenantCache;

/// Shared, cheaply clonable handler state.
#[derive(Clone)]
pub struct ApiContext {
    pub store: Store,
    pub config: Arc<ApiConfig>,
    pub verifier: Arc<Verifier>,
    /// Callers' user records; every write of a user forgets it here.
    pub actors: Arc<ActorCache>,
    /// Every tenant, for the read routes; every write of a tenant pins it here.
    pub tenant_cache: Arc<TenantCache>,
}
