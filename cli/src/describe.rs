//! Renderings for people: `describe` (spec, phase, every system's state
//! with reason and message, recent events), the event table of `events`
//! and the controller's plan of `plan` and `apply --dry-run`.

use chrono::{DateTime, Utc};
use dezky_core::model::{DeletionPolicy, System};
use dezky_core::Timestamp;
use serde_json::Value;

use crate::output::{age, cell, table};
use crate::view::{phase_name, EventView, TenantView};

/// `describe SLUG`: the tenant and its latest `events`.
pub fn tenant(tenant: &TenantView, events: &[EventView], now: DateTime<Utc>) -> String {
    let mut lines: Vec<(&str, String)> = vec![
        ("Slug", tenant.slug.clone()),
        ("Name", tenant.name.clone()),
        ("Plan", tenant.plan.clone()),
        ("Domains", list_or_none(&tenant.domains)),
        (
            "Billing e-mail",
            tenant
                .billing_info
                .as_ref()
                .and_then(|b| b.email.clone())
                .unwrap_or_else(|| "<none>".into()),
        ),
        (
            "Deletion policy",
            match tenant.deletion_policy {
                DeletionPolicy::Delete => "delete".into(),
                DeletionPolicy::Orphan => "orphan (upstream objects are kept)".into(),
            },
        ),
        (
            "Paused",
            if tenant.paused {
                "yes (no upstream writes)".into()
            } else {
                "no".into()
            },
        ),
        (
            "Created",
            format!(
                "{} ({} ago)",
                tenant.created_at,
                age(tenant.created_at, now)
            ),
        ),
    ];
    if let Some(at) = tenant.deletion_requested_at {
        lines.push(("Deletion requested", at.to_string()));
    }
    let status = &tenant.status;
    lines.push((
        "Generation",
        format!(
            "{} (observed {})",
            tenant.generation, status.observed_generation
        ),
    ));
    lines.push(("Phase", phase_name(status.phase).to_string()));
    lines.push((
        "Last reconciled",
        status
            .last_reconciled_at
            .map_or_else(|| "never".into(), |t| t.to_string()),
    ));
    let width = lines.iter().map(|(k, _)| k.len()).max().unwrap_or(0) + 2;
    let mut out: String = lines
        .iter()
        .map(|(key, value)| format!("{:<width$}{value}\n", format!("{key}:")))
        .collect();
    out.push_str("\nSystems:\n");
    out.push_str(&indent(&systems(tenant)));
    out.push_str("\nRecent events (newest first):\n");
    if events.is_empty() {
        out.push_str("  <none>\n");
    } else {
        out.push_str(&indent(&events_table(events)));
    }
    out
}

fn systems(tenant: &TenantView) -> String {
    let header = [
        "SYSTEM",
        "STATE",
        "REASON",
        "GENERATION",
        "DRIFT",
        "SINCE",
        "EXTERNAL ID",
        "MESSAGE",
    ];
    let mut rows = vec![header.iter().map(|s| s.to_string()).collect::<Vec<_>>()];
    for system in System::ALL {
        let row = match tenant.status.systems.get(&system) {
            Some(s) => vec![
                system.to_string(),
                s.state.as_str().to_string(),
                cell(&s.reason),
                s.observed_generation.to_string(),
                s.drift_corrections.to_string(),
                s.last_transition_at
                    .map_or_else(|| "-".into(), |t| t.to_string()),
                cell(s.external_id.as_deref().unwrap_or_default()),
                cell(&s.message),
            ],
            None => {
                let mut row = vec![system.to_string(), "-".into()];
                row.extend(vec!["-".to_string(); header.len() - 3]);
                row.push("not reconciled yet".into());
                row
            }
        };
        rows.push(row);
    }
    table(&rows)
}

/// `events SLUG`: one line per event.
pub fn events_table(events: &[EventView]) -> String {
    let header = ["AT", "SYSTEM", "ACTION", "GENERATION", "OBJECT", "MESSAGE"];
    let mut rows = vec![header.iter().map(|s| s.to_string()).collect::<Vec<_>>()];
    rows.extend(events.iter().map(|e| {
        vec![
            time(e.at),
            e.system.to_string(),
            e.action.clone(),
            e.generation.to_string(),
            cell(&e.object),
            cell(&e.message),
        ]
    }));
    table(&rows)
}

/// The controller's dry run (`GET /tenants/{slug}/plan`), one line per
/// action, every line starting with `indent`.
pub fn plan(plan: &Value, indent: &str) -> String {
    let mut out = format!(
        "{indent}controller plan at generation {} (computed {}):\n",
        plan["generation"],
        plan["computedAt"].as_str().unwrap_or("?")
    );
    let empty = serde_json::Map::new();
    let systems = plan["systems"].as_object().unwrap_or(&empty);
    for (system, answer) in systems {
        if let Some(error) = answer["error"].as_str() {
            out.push_str(&format!("{indent}  {system}: cannot observe: {error}\n"));
            continue;
        }
        if let Some(conflict) = answer["conflict"].as_str() {
            out.push_str(&format!("{indent}  {system}: conflict: {conflict}\n"));
        }
        let actions: Vec<&Value> = answer["actions"]
            .as_array()
            .map(|a| a.iter().filter(|a| a["action"] != "none").collect())
            .unwrap_or_default();
        if actions.is_empty() && answer["conflict"].is_null() {
            out.push_str(&format!("{indent}  {system}: in sync\n"));
        }
        for action in actions {
            out.push_str(&format!(
                "{indent}  {system}: {} {}{}\n",
                action["action"].as_str().unwrap_or("?"),
                action["object"].as_str().unwrap_or("?"),
                fields(&action["fields"])
            ));
        }
    }
    out
}

/// `: name "a" -> "b", quota 1 -> 2` of a plan action's fields.
fn fields(fields: &Value) -> String {
    let Some(map) = fields.as_object().filter(|m| !m.is_empty()) else {
        return String::new();
    };
    let parts: Vec<String> = map
        .iter()
        .map(
            |(name, change)| match (change.get("from"), change.get("to")) {
                (Some(from), Some(to)) => format!("{name} {from} -> {to}"),
                _ => format!("{name} {change}"),
            },
        )
        .collect();
    format!(": {}", parts.join(", "))
}

fn list_or_none(items: &[String]) -> String {
    if items.is_empty() {
        "<none>".into()
    } else {
        items.join(", ")
    }
}

fn time(at: Timestamp) -> String {
    at.to_string()
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("  {l}\n")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::view::parse;
    use serde_json::json;

    #[test]
    fn describe_shows_spec_phase_systems_and_events() {
        let tenant: TenantView = parse(
            &json!({"slug": "acme", "name": "Acme Inc", "plan": "team", "domains": ["acme.test"],
                "generation": 2, "createdAt": "2026-01-01T00:00:00Z",
                "status": {"phase": "degraded", "observedGeneration": 2, "systems": {
                    "stalwart": {"state": "error", "reason": "DomainInUse", "message": "used by 2 accounts",
                                 "observedGeneration": 2}}}}),
            "test",
        )
        .unwrap();
        let event: EventView = parse(
            &json!({"at": "2026-01-01T00:01:00Z", "system": "stalwart", "action": "error",
                    "object": "domain acme.test", "message": "used by 2 accounts", "generation": 2}),
            "test",
        )
        .unwrap();
        let now = Utc::now();
        let text = super::tenant(&tenant, &[event], now);
        let value = |key: &str| {
            let line = text.lines().find(|l| l.starts_with(key)).unwrap();
            line[key.len()..].trim().to_string()
        };
        assert_eq!(value("Phase:"), "degraded");
        assert_eq!(value("Billing e-mail:"), "<none>");
        assert_eq!(value("Generation:"), "2 (observed 2)");
        let stalwart = text
            .lines()
            .find(|l| l.split_whitespace().take(2).eq(["stalwart", "error"]))
            .unwrap();
        assert!(
            stalwart.contains("DomainInUse") && stalwart.ends_with("used by 2 accounts"),
            "{text}"
        );
        assert!(text.contains("not reconciled yet"), "{text}");
        assert!(text.contains("domain acme.test"), "{text}");
    }

    #[test]
    fn plans_list_actions_with_field_changes() {
        let answer = json!({"slug": "acme", "generation": 3, "computedAt": "2026-01-01T00:00:00.000Z",
            "systems": {
                "authentik": {"actions": [{"action": "update", "object": "group tenant-acme",
                               "fields": {"name": {"from": "old", "to": "tenant-acme"}}}], "conflict": null},
                "ocis": {"actions": [], "conflict": null, "error": "unreachable"},
                "stalwart": {"actions": [{"action": "none", "object": "domain acme.test", "fields": {}}], "conflict": null}}});
        let text = plan(&answer, "");
        assert!(
            text.contains(r#"authentik: update group tenant-acme: name "old" -> "tenant-acme""#),
            "{text}"
        );
        assert!(text.contains("ocis: cannot observe: unreachable"), "{text}");
        assert!(text.contains("stalwart: in sync"), "{text}");
    }
}
