//! Identifier and timestamp types that serialize natively in both worlds:
//! as BSON `ObjectId`/`Date` in MongoDB and as a hex string / RFC 3339
//! string in JSON. The choice is made by `Serializer::is_human_readable`,
//! so one model struct serves the store and the API. (`bson::to_bson` is
//! human-readable: encode model values with [`crate::store::encode`].)
//! Stored values are read as borrowed raw BSON: going through the generic
//! `ObjectId`/`DateTime` impls costs an extended-JSON round trip per value,
//! which dominated reading a page of tenants.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, SecondsFormat, Utc};
use mongodb::bson::{self, oid::ObjectId, RawBsonRef};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A document id: a MongoDB `ObjectId`, rendered as 24 hex chars in JSON.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Id(pub ObjectId);

impl Id {
    /// A fresh, time-ordered id.
    pub fn new() -> Self {
        Id(ObjectId::new())
    }
}

impl Default for Id {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.to_hex())
    }
}

impl fmt::Debug for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Id({})", self.0.to_hex())
    }
}

impl FromStr for Id {
    type Err = bson::oid::Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ObjectId::parse_str(s).map(Id)
    }
}

impl From<Id> for bson::Bson {
    fn from(id: Id) -> Self {
        bson::Bson::ObjectId(id.0)
    }
}

impl Serialize for Id {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_str(&self.0.to_hex())
        } else {
            self.0.serialize(s)
        }
    }
}

impl<'de> Deserialize<'de> for Id {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Human-readable input (JSON, `bson::from_bson`) may hold either form.
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Repr {
            Hex(String),
            Native(ObjectId),
        }
        if d.is_human_readable() {
            match Repr::deserialize(d)? {
                Repr::Hex(s) => ObjectId::parse_str(&s)
                    .map(Id)
                    .map_err(serde::de::Error::custom),
                Repr::Native(oid) => Ok(Id(oid)),
            }
        } else {
            match RawBsonRef::deserialize(d)? {
                RawBsonRef::ObjectId(oid) => Ok(Id(oid)),
                other => Err(unexpected(other, "an ObjectId")),
            }
        }
    }
}

/// A point in time with millisecond precision (what BSON stores).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct Timestamp(pub DateTime<Utc>);

impl Timestamp {
    /// Now, truncated to milliseconds so a round trip through MongoDB is exact.
    pub fn now() -> Self {
        Self::from_millis(Utc::now().timestamp_millis())
    }

    /// From milliseconds since the Unix epoch.
    pub fn from_millis(ms: i64) -> Self {
        Timestamp(DateTime::from_timestamp_millis(ms).unwrap_or_default())
    }

    /// Milliseconds since the Unix epoch.
    pub fn millis(&self) -> i64 {
        self.0.timestamp_millis()
    }

    /// This instant as a BSON date, for queries.
    pub fn to_bson(&self) -> bson::DateTime {
        bson::DateTime::from_millis(self.millis())
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.to_rfc3339_opts(SecondsFormat::Millis, true))
    }
}

impl From<Timestamp> for bson::Bson {
    fn from(t: Timestamp) -> Self {
        bson::Bson::DateTime(t.to_bson())
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.collect_str(self)
        } else {
            self.to_bson().serialize(s)
        }
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Human-readable input (JSON, `bson::from_bson`) may hold either form.
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Repr {
            Rfc3339(String),
            Native(bson::DateTime),
        }
        if d.is_human_readable() {
            match Repr::deserialize(d)? {
                Repr::Rfc3339(s) => DateTime::parse_from_rfc3339(&s)
                    .map(|t| Timestamp(t.with_timezone(&Utc)))
                    .map_err(serde::de::Error::custom),
                Repr::Native(t) => Ok(Timestamp::from_millis(t.timestamp_millis())),
            }
        } else {
            match RawBsonRef::deserialize(d)? {
                RawBsonRef::DateTime(t) => Ok(Timestamp::from_millis(t.timestamp_millis())),
                other => Err(unexpected(other, "a date")),
            }
        }
    }
}

/// The error for a stored value of the wrong BSON type.
fn unexpected<E: serde::de::Error>(found: RawBsonRef<'_>, expected: &str) -> E {
    E::custom(format!(
        "expected {expected}, found BSON {:?}",
        found.element_type()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_is_hex_in_json_and_object_id_in_bson() {
        let id = Id::new();
        let json = serde_json::to_value(id).unwrap();
        assert_eq!(json, serde_json::Value::String(id.to_string()));
        let stored = crate::store::encode::to_bson(&id).unwrap();
        assert!(matches!(stored, bson::Bson::ObjectId(_)));
        assert_eq!(bson::from_bson::<Id>(stored).unwrap(), id);
    }

    #[test]
    fn stored_documents_are_read_from_raw_bson() {
        #[derive(Debug, PartialEq, Serialize, Deserialize)]
        struct Stored {
            id: Id,
            at: Timestamp,
        }
        let stored = Stored {
            id: Id::new(),
            at: Timestamp::from_millis(1_700_000_000_123),
        };
        let raw = bson::to_raw_document_buf(&stored).unwrap();
        assert_eq!(bson::from_slice::<Stored>(raw.as_bytes()).unwrap(), stored);
        let swapped = bson::rawdoc! { "id": bson::DateTime::now(), "at": ObjectId::new() };
        let error = bson::from_slice::<Stored>(swapped.as_bytes()).unwrap_err();
        assert!(
            error.to_string().contains("expected an ObjectId"),
            "{error}"
        );
    }

    #[test]
    fn timestamp_is_rfc3339_in_json_and_date_in_bson() {
        let t = Timestamp::from_millis(1_700_000_000_123);
        assert_eq!(
            serde_json::to_value(t).unwrap(),
            serde_json::json!("2023-11-14T22:13:20.123Z")
        );
        let b = crate::store::encode::to_bson(&t).unwrap();
        assert!(matches!(b, bson::Bson::DateTime(_)));
        assert_eq!(bson::from_bson::<Timestamp>(b).unwrap(), t);
    }
}
