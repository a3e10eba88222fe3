//! Authentik group objects and the list envelope, parsed tolerantly:
//! both the ≥ 2025.12 shape (`parents`) and the legacy one (`parent` +
//! `parent_name`), and pagination numbers sent as integers or floats.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

/// A group as the provisioner sees it (both server shapes normalised).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(from = "WireGroup")]
pub struct Group {
    /// The group uuid: the only key (`num_pk` is not unique and ignored).
    pub pk: String,
    pub name: String,
    pub is_superuser: bool,
    /// Parent group uuids (`parents`, or the legacy single `parent`).
    pub parents: Vec<String>,
    pub users: Vec<i64>,
    /// Free attributes; the provisioner owns only a few keys.
    pub attributes: Map<String, Value>,
}

/// What the server sends; unknown fields are ignored.
#[derive(Deserialize)]
struct WireGroup {
    pk: String,
    name: String,
    #[serde(default)]
    is_superuser: bool,
    /// ≥ 2025.12.
    #[serde(default)]
    parents: Option<Vec<String>>,
    /// Before 2025.12 (nullable).
    #[serde(default)]
    parent: Option<String>,
    #[serde(default)]
    users: Vec<i64>,
    #[serde(default)]
    attributes: Map<String, Value>,
}

impl From<WireGroup> for Group {
    fn from(wire: WireGroup) -> Self {
        Group {
            pk: wire.pk,
            name: wire.name,
            is_superuser: wire.is_superuser,
            parents: wire
                .parents
                .unwrap_or_else(|| wire.parent.into_iter().collect()),
            users: wire.users,
            attributes: wire.attributes,
        }
    }
}

/// Body of `POST /core/groups/` (`GroupRequest`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct NewGroup {
    pub name: String,
    pub attributes: Map<String, Value>,
}

/// Body of `PATCH /core/groups/{pk}/` (`PatchedGroupRequest`): only the
/// fields that change. `attributes` replaces the whole dict on the server.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct GroupPatch {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attributes: Option<Map<String, Value>>,
}

impl GroupPatch {
    /// Whether the patch changes nothing.
    pub fn is_empty(&self) -> bool {
        self.name.is_none() && self.attributes.is_none()
    }
}

/// One page of `GET /core/groups/`.
#[derive(Debug, Deserialize)]
pub(super) struct GroupPage {
    pub pagination: Pagination,
    pub results: Vec<Group>,
}

/// The pagination part of Authentik's list envelope.
#[derive(Debug, Deserialize)]
pub(super) struct Pagination {
    /// Next page number, 0 when this is the last page.
    #[serde(deserialize_with = "page_number")]
    pub next: u64,
    #[serde(deserialize_with = "page_number")]
    pub current: u64,
}

/// A non-negative whole number sent as `2` or `2.0`.
fn page_number<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    let number = serde_json::Number::deserialize(deserializer)?;
    if let Some(n) = number.as_u64() {
        return Ok(n);
    }
    match number.as_f64() {
        Some(f) if f.is_finite() && f >= 0.0 && f.fract() == 0.0 && f <= u32::MAX as f64 => {
            Ok(f as u64)
        }
        _ => Err(serde::de::Error::custom(format!(
            "pagination number {number} is not a page number"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_both_parent_shapes() {
        let current: Group = serde_json::from_value(json!({
            "pk": "a", "num_pk": 1, "name": "g", "is_superuser": false,
            "parents": ["p1", "p2"], "parents_obj": null, "users": [],
            "users_obj": null, "attributes": {"k": "v"}, "roles": [],
            "roles_obj": [], "inherited_roles_obj": null, "children": [],
            "children_obj": null
        }))
        .expect("2025.12 shape");
        assert_eq!(current.parents, vec!["p1", "p2"]);
        assert_eq!(current.attributes["k"], json!("v"));
        let legacy: Group = serde_json::from_value(json!({
            "pk": "b", "num_pk": 1, "name": "g", "is_superuser": true,
            "parent": "p1", "parent_name": "parent", "users": [3],
            "users_obj": null, "attributes": {}, "roles": [], "roles_obj": [],
            "children": [], "children_obj": null
        }))
        .expect("legacy shape");
        assert_eq!(legacy.parents, vec!["p1"]);
        let orphan: Group = serde_json::from_value(json!({
            "pk": "c", "name": "g", "parent": null, "parent_name": null
        }))
        .expect("legacy without parent");
        assert!(orphan.parents.is_empty());
    }

    #[test]
    fn pagination_numbers_may_be_floats() {
        let page: GroupPage = serde_json::from_value(json!({
            "pagination": {"next": 2.0, "previous": 0.0, "count": 250.0, "current": 1.0,
                           "total_pages": 3.0, "start_index": 1.0, "end_index": 100.0},
            "results": [], "autocomplete": {}
        }))
        .expect("float pagination");
        assert_eq!((page.pagination.next, page.pagination.current), (2, 1));
        let bad = serde_json::from_value::<GroupPage>(json!({
            "pagination": {"next": 1.5, "current": 1}, "results": []
        }));
        assert!(bad.is_err(), "a fractional page number is a bad response");
    }

    #[test]
    fn patch_sends_only_set_fields() {
        let patch = GroupPatch {
            name: Some("tenant-acme".into()),
            attributes: None,
        };
        assert_eq!(
            serde_json::to_value(&patch).expect("json"),
            json!({"name": "tenant-acme"})
        );
    }
}
