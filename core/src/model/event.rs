//! The reconcile history of a tenant (`tenant_events`).

use serde::{Deserialize, Serialize};

use crate::model::System;
use crate::{Id, Timestamp};

/// One thing the controller did (or failed to do) for a tenant.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct TenantEvent {
    #[serde(rename = "_id")]
    pub id: Id,
    pub tenant_id: Id,
    pub at: Timestamp,
    pub system: System,
    pub action: EventAction,
    /// The upstream object, e.g. `group tenant-acme` or `domain acme.test`.
    #[cfg_attr(feature = "openapi", schema(example = "group tenant-acme"))]
    pub object: String,
    /// Changed fields: `{"name": {"from": ..., "to": ...}}`.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(example = json!({"name": {"from": "tenant-acme-old", "to": "tenant-acme"}})))]
    pub fields: serde_json::Value,
    #[serde(default)]
    pub message: String,
    pub generation: i64,
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum EventAction {
    Created,
    Updated,
    Deleted,
    Adopted,
    Restored,
    DriftCorrected,
    Error,
    Recovered,
}
