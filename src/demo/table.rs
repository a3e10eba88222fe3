//! A compact plain-text table of tenants: phase and, per system, state,
//! reason and drift corrections.

use dezky_core::model::{Phase, System};

use super::client::Tenant;

/// One line per tenant, with a header, ready to print.
pub fn render(tenants: &[Tenant]) -> String {
    let mut rows = vec![header()];
    rows.extend(tenants.iter().map(row));
    let widths: Vec<usize> = (0..rows[0].len())
        .map(|col| rows.iter().map(|r| r[col].len()).max().unwrap_or(0))
        .collect();
    rows.iter()
        .map(|cells| {
            let line: Vec<String> = cells
                .iter()
                .zip(&widths)
                .map(|(cell, width)| format!("{cell:<width$}"))
                .collect();
            format!("  {}", line.join("  ").trim_end())
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn header() -> Vec<String> {
    let mut cells = vec!["TENANT".to_string(), "PHASE".to_string()];
    cells.extend(System::ALL.iter().map(|s| s.as_str().to_uppercase()));
    cells.push("DOMAINS".to_string());
    cells
}

fn row(tenant: &Tenant) -> Vec<String> {
    let mut cells = vec![tenant.slug.clone(), phase_name(tenant.status.phase)];
    cells.extend(
        System::ALL
            .iter()
            .map(|&system| system_cell(tenant, system)),
    );
    cells.push(if tenant.domains.is_empty() {
        "-".to_string()
    } else {
        tenant.domains.join(",")
    });
    cells
}

/// `ok InSync`, with `(drift N)` once drift was corrected.
fn system_cell(tenant: &Tenant, system: System) -> String {
    let Some(status) = tenant.system_status(system) else {
        return "-".to_string();
    };
    let mut cell = format!("{} {}", status.state.as_str(), status.reason);
    if status.drift_corrections > 0 {
        cell.push_str(&format!(" (drift {})", status.drift_corrections));
    }
    cell
}

/// The phase as the API spells it (`active`).
pub fn phase_name(phase: Phase) -> String {
    serde_json::to_value(phase)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}
