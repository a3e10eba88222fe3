//! Plans and their oCIS quotas, configured by `PLAN_QUOTAS`
//! (`free=5GiB,team=100GiB,business=1TiB,enterprise=5TiB`). The keys are
//! the only valid plan names.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

/// The default `PLAN_QUOTAS` value.
pub const DEFAULT_PLAN_QUOTAS: &str = "free=5GiB,team=100GiB,business=1TiB,enterprise=5TiB";

/// Plan name → quota in bytes (0 = unlimited).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlanQuotas(BTreeMap<String, u64>);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PlanQuotasError {
    #[error("`{0}` is not `plan=size` (e.g. `team=100GiB`)")]
    NotAPair(String),
    #[error("plan name `{0}` must be lowercase letters, digits, `-` or `_`")]
    BadName(String),
    #[error("quota `{size}` of plan `{plan}` is not a size like `100GiB`: {reason}")]
    BadSize {
        plan: String,
        size: String,
        reason: String,
    },
    #[error("plan `{0}` is listed twice")]
    Duplicate(String),
    #[error("no plans configured")]
    Empty,
}

impl PlanQuotas {
    /// Quota in bytes for a plan, if the plan exists.
    pub fn quota(&self, plan: &str) -> Option<u64> {
        self.0.get(plan).copied()
    }

    /// Whether `plan` is a configured plan name.
    pub fn contains(&self, plan: &str) -> bool {
        self.0.contains_key(plan)
    }

    /// The plan names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }

    /// The first plan (alphabetically `free` is not guaranteed; prefers `free`).
    pub fn default_plan(&self) -> &str {
        if self.contains("free") {
            "free"
        } else {
            self.names().next().unwrap_or("free")
        }
    }
}

impl Default for PlanQuotas {
    fn default() -> Self {
        DEFAULT_PLAN_QUOTAS
            .parse()
            .expect("the default plan quotas parse")
    }
}

impl FromStr for PlanQuotas {
    type Err = PlanQuotasError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut plans = BTreeMap::new();
        for pair in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, size) = pair
                .split_once('=')
                .ok_or_else(|| PlanQuotasError::NotAPair(pair.to_string()))?;
            let name = name.trim();
            let valid_name = !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
            if !valid_name {
                return Err(PlanQuotasError::BadName(name.to_string()));
            }
            let bytes = size
                .trim()
                .parse::<bytesize::ByteSize>()
                .map_err(|reason| PlanQuotasError::BadSize {
                    plan: name.to_string(),
                    size: size.trim().to_string(),
                    reason,
                })?
                .as_u64();
            if plans.insert(name.to_string(), bytes).is_some() {
                return Err(PlanQuotasError::Duplicate(name.to_string()));
            }
        }
        if plans.is_empty() {
            return Err(PlanQuotasError::Empty);
        }
        Ok(PlanQuotas(plans))
    }
}

impl fmt::Display for PlanQuotas {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|(k, v)| format!("{k}={}", bytesize::ByteSize(*v).display().iec_short()))
            .collect();
        f.write_str(&parts.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_plans_have_binary_quotas() {
        let p = PlanQuotas::default();
        assert_eq!(p.quota("free"), Some(5 * 1024 * 1024 * 1024));
        assert_eq!(p.quota("enterprise"), Some(5 * 1024u64.pow(4)));
        assert_eq!(
            p.names().collect::<Vec<_>>(),
            ["business", "enterprise", "free", "team"]
        );
        assert_eq!(p.default_plan(), "free");
    }

    #[test]
    fn bad_plan_quotas_are_rejected_with_the_offending_part() {
        assert_eq!(
            "free".parse::<PlanQuotas>(),
            Err(PlanQuotasError::NotAPair("free".into()))
        );
        assert_eq!(
            "Free=1GiB".parse::<PlanQuotas>(),
            Err(PlanQuotasError::BadName("Free".into()))
        );
        assert!(matches!(
            "free=lots".parse::<PlanQuotas>(),
            Err(PlanQuotasError::BadSize { .. })
        ));
        assert_eq!(
            "a=1GiB,a=2GiB".parse::<PlanQuotas>(),
            Err(PlanQuotasError::Duplicate("a".into()))
        );
        assert_eq!("".parse::<PlanQuotas>(), Err(PlanQuotasError::Empty));
    }
}
