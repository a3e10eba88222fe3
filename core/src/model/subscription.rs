//! A tenant's billing subscription (one per tenant).

use serde::{Deserialize, Serialize};

use super::Extra;
use crate::{Id, Timestamp};

/// A subscription, as stored in `subscriptions` (unique per `tenantId`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Subscription {
    #[serde(rename = "_id")]
    pub id: Id,
    pub tenant_id: Id,
    #[cfg_attr(feature = "openapi", schema(value_type = crate::schema::Plan))]
    pub plan: String,
    pub status: SubscriptionStatus,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(example = "cus_Q1w2e3r4t5y6"))]
    pub stripe_customer_id: Option<String>,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(example = "sub_1P2q3R4s5T6u"))]
    pub stripe_subscription_id: Option<String>,
    #[serde(default)]
    pub current_period_end: Option<Timestamp>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// Stored fields this service does not model (read-only; see [`Extra`]).
    #[serde(default, skip_serializing_if = "Extra::is_empty")]
    pub extra: Extra,
}

impl Subscription {
    /// A new subscription of tenant `tenant_id`, without Stripe ids.
    pub fn new(tenant_id: Id, plan: &str, status: SubscriptionStatus, now: Timestamp) -> Self {
        Subscription {
            id: Id::new(),
            tenant_id,
            plan: plan.to_string(),
            status,
            stripe_customer_id: None,
            stripe_subscription_id: None,
            current_period_end: None,
            created_at: now,
            updated_at: now,
            extra: Extra::default(),
        }
    }
}

#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum SubscriptionStatus {
    #[default]
    Trialing,
    Active,
    PastDue,
    Canceled,
}
