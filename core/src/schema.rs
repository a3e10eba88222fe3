//! OpenAPI schemas (feature `openapi`) of the core types whose JSON form is
//! written by hand: [`Id`] (24 hex digits), [`Timestamp`] (RFC 3339, UTC,
//! milliseconds) and [`Plan`], a plan name. The models derive theirs from
//! their serde attributes, so the document follows the code.

use utoipa::openapi::schema::{ObjectBuilder, Schema, SchemaFormat, Type};
use utoipa::openapi::RefOr;
use utoipa::{PartialSchema, ToSchema};

use crate::{Id, Timestamp};

impl PartialSchema for Id {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some("^[0-9a-f]{24}$"))
            .description(Some("A MongoDB ObjectId as 24 lowercase hex digits."))
            .examples(["6650c0ffee0123456789abcd"])
            .into()
    }
}

impl ToSchema for Id {}

impl PartialSchema for Timestamp {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(
                utoipa::openapi::KnownFormat::DateTime,
            )))
            .description(Some("RFC 3339 in UTC with milliseconds."))
            .examples(["2026-05-01T12:00:00.000Z"])
            .into()
    }
}

impl ToSchema for Timestamp {}

/// A plan name (a `PLAN_QUOTAS` key). Its schema here is any string; the
/// API's document replaces it with the enum of the configured plans.
pub struct Plan;

impl PartialSchema for Plan {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some("One of the configured plans (`PLAN_QUOTAS`)."))
            .examples(["team"])
            .into()
    }
}

impl ToSchema for Plan {}
