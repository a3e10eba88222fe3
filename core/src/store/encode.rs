//! Model values converted to BSON exactly as the typed collections store
//! them: `Id` as ObjectId and `Timestamp` as a BSON date. The model picks
//! that form for non-human-readable serializers; the driver's raw
//! serializer is one, `bson::to_bson` is not. Use these for every `$set` of
//! a model value.

use mongodb::bson::{self, Bson, Document};
use serde::ser::Error as _;
use serde::Serialize;

#[derive(Serialize)]
struct Field<'a, T> {
    v: &'a T,
}

/// `value` as a stored BSON document.
pub fn to_document<T: Serialize>(value: &T) -> Result<Document, bson::ser::Error> {
    let raw = bson::to_raw_document_buf(value)?;
    raw.to_document().map_err(bson::ser::Error::custom)
}

/// `value` as a stored BSON value.
pub fn to_bson<T: Serialize>(value: &T) -> Result<Bson, bson::ser::Error> {
    let mut document = to_document(&Field { v: value })?;
    Ok(document.remove("v").unwrap_or(Bson::Null))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ReconcileRequest;
    use crate::Timestamp;

    #[test]
    fn timestamps_become_bson_dates() {
        let request = ReconcileRequest {
            token: "t".into(),
            requested_at: Timestamp::from_millis(1),
        };
        let stored = to_bson(&request).unwrap();
        let doc = stored.as_document().unwrap();
        assert!(matches!(doc.get("requestedAt"), Some(Bson::DateTime(_))));
        assert_eq!(to_bson(&"x").unwrap(), Bson::String("x".into()));
    }
}
