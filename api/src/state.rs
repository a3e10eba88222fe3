//! The state every handler receives.

use std::sync::Arc;

use dezky_core::store::Store;

use crate::auth::actors::ActorCache;
use crate::auth::Verifier;
use crate::config::ApiConfig;

/// Shared, cheaply clonable handler state.
#[derive(Clone)]
pub struct ApiContext {
    pub store: Store,
    pub config: Arc<ApiConfig>,
    pub verifier: Arc<Verifier>,
    /// Callers' user records; every write of a user forgets it here.
    pub actors: Arc<ActorCache>,
}
