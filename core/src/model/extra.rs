//! Fields of a stored document that this service does not model: kept in
//! MongoDB untouched (every write `$set`s only modeled fields) and shown to
//! operators read-only under `extra`, as relaxed extended JSON. A document
//! written by the previous service keeps its `billingInfo` company and VAT
//! id, its `provisioningStatus`, `__v` and the like here.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Unmodeled fields of one document, by name (`None`: there are none).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Extra(Option<Box<serde_json::Map<String, serde_json::Value>>>);

impl Extra {
    /// Extra fields from a map; an empty map is none.
    pub fn from_map(map: serde_json::Map<String, serde_json::Value>) -> Self {
        Extra((!map.is_empty()).then(|| Box::new(map)))
    }

    /// Whether the document has no unmodeled field.
    pub fn is_empty(&self) -> bool {
        self.0.is_none()
    }

    /// The value of the unmodeled field `name`, if any.
    pub fn get(&self, name: &str) -> Option<&serde_json::Value> {
        self.0.as_ref().and_then(|map| map.get(name))
    }
}

impl Serialize for Extra {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match &self.0 {
            Some(map) => map.serialize(s),
            None => serde_json::Map::new().serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for Extra {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Extra::from_map(Deserialize::deserialize(d)?))
    }
}

#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for Extra {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{AdditionalProperties, ObjectBuilder, Type};
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .additional_properties(Some(AdditionalProperties::FreeForm(true)))
            .description(Some(
                "Stored fields this service does not model (e.g. written by the previous \
                 service), read-only, as relaxed extended JSON; a sub-document's unmodeled \
                 keys appear under its name (`{\"billingInfo\": {\"vatId\": ...}}`).",
            ))
            .into()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for Extra {}
