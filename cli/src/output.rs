//! Output formats of `get` (and `events`, `plan`): `table` (aligned
//! columns, one tenant a line, `-` for an empty cell, columns three spaces
//! apart so `awk -F '   +'` splits them), `wide` (more columns), `json`
//! (the API's own objects: one, or `{"items": [...]}`), `yaml` (the same
//! as YAML).

use std::time::Duration;

use chrono::{DateTime, Utc};
use dezky_core::model::System;
use dezky_core::Timestamp;
use serde_json::Value;

use crate::error::CliError;
use crate::view::{phase_name, TenantView};

/// `-o` of `get`, `events` and `plan`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Wide,
    Json,
    Yaml,
}

/// Rows as aligned columns; the first row is the header.
pub fn table(rows: &[Vec<String>]) -> String {
    let columns = rows.first().map_or(0, Vec::len);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .map(|r| r.get(c).map_or(0, |s| s.chars().count()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        out.push_str(cells.join("   ").trim_end());
        out.push('\n');
    }
    out
}

/// `value` as JSON (pretty) or YAML, for `-o json|yaml`.
pub fn structured(value: &Value, format: Format) -> Result<String, CliError> {
    let rendered = match format {
        Format::Yaml => serde_yaml::to_string(value).map_err(|e| e.to_string()),
        _ => serde_json::to_string_pretty(value)
            .map(|s| s + "\n")
            .map_err(|e| e.to_string()),
    };
    rendered.map_err(|message| CliError::Http {
        context: "rendering the answer".into(),
        message,
    })
}

/// The table of `get` (`wide`: with name, generations and per-system state).
pub fn tenants_table(tenants: &[TenantView], wide: bool, now: DateTime<Utc>) -> String {
    let mut header: Vec<&str> = vec!["SLUG", "PHASE", "PLAN", "DOMAINS"];
    if wide {
        header = vec![
            "SLUG",
            "NAME",
            "PHASE",
            "PLAN",
            "DOMAINS",
            "PAUSED",
            "GENERATION",
            "OBSERVED",
        ];
        header.extend(["AUTHENTIK", "STALWART", "OCIS"]);
    }
    header.push("AGE");
    let mut rows = vec![header.into_iter().map(str::to_string).collect::<Vec<_>>()];
    for tenant in tenants {
        let domains = if tenant.domains.is_empty() {
            "-".to_string()
        } else {
            tenant.domains.join(",")
        };
        let phase = phase_name(tenant.status.phase).to_string();
        let mut row = if wide {
            let mut row = vec![
                tenant.slug.clone(),
                cell(&tenant.name),
                phase,
                tenant.plan.clone(),
                domains,
                tenant.paused.to_string(),
                tenant.generation.to_string(),
                tenant.status.observed_generation.to_string(),
            ];
            row.extend(System::ALL.iter().map(|s| tenant.system_cell(*s)));
            row
        } else {
            vec![tenant.slug.clone(), phase, tenant.plan.clone(), domains]
        };
        row.push(age(tenant.created_at, now));
        rows.push(row);
    }
    table(&rows)
}

/// A cell's text: `-` when empty, runs of spaces collapsed (they would
/// read as a column break).
pub fn cell(text: &str) -> String {
    let collapsed = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if collapsed.is_empty() {
        "-".to_string()
    } else {
        collapsed
    }
}

/// `42s`, `5m`, `3h`, `12d`: how long ago `at` was.
pub fn age(at: Timestamp, now: DateTime<Utc>) -> String {
    let seconds = (now.timestamp_millis() - at.millis()).max(0) / 1000;
    let (value, unit) = match seconds {
        s if s < 120 => (s, "s"),
        s if s < 2 * 3600 => (s / 60, "m"),
        s if s < 2 * 86_400 => (s / 3600, "h"),
        s => (s / 86_400, "d"),
    };
    format!("{value}{unit}")
}

/// `1m30s`-style rendering of a duration, whole seconds.
pub fn duration(d: Duration) -> String {
    humantime::format_duration(Duration::from_secs(d.as_secs())).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::view::parse;
    use serde_json::json;

    #[test]
    fn tables_align_columns_three_spaces_apart() {
        let rows = vec![
            vec!["SLUG".to_string(), "PHASE".to_string()],
            vec!["acme-long".to_string(), "active".to_string()],
        ];
        assert_eq!(table(&rows), "SLUG        PHASE\nacme-long   active\n");
    }

    #[test]
    fn tenant_rows_keep_one_cell_per_column() {
        let tenant: TenantView = parse(
            &json!({"slug": "acme", "name": "Acme  Inc", "plan": "team", "domains": [],
                    "generation": 2, "createdAt": "2026-01-01T00:00:00Z"}),
            "test",
        )
        .unwrap();
        let now = DateTime::parse_from_rfc3339("2026-01-01T00:10:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let wide = tenants_table(std::slice::from_ref(&tenant), true, now);
        let row: Vec<&str> = wide
            .lines()
            .nth(1)
            .unwrap()
            .split("   ")
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .collect();
        assert_eq!(
            row,
            ["acme", "Acme Inc", "pending", "team", "-", "false", "2", "0", "-", "-", "-", "10m"]
        );
        let narrow = tenants_table(&[tenant], false, now);
        assert_eq!(
            narrow
                .lines()
                .nth(1)
                .unwrap()
                .split_whitespace()
                .collect::<Vec<_>>(),
            ["acme", "pending", "team", "-", "10m"]
        );
    }
}
