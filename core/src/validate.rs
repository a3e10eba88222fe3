//! Validation of desired-state input. Each check names the offending field so
//! the API can answer `400` with `{"error": {"field": ...}}`.

use std::sync::LazyLock;

use regex::Regex;

/// Top-level domains Stalwart accepts although they are not public suffixes.
pub const RESERVED_TLDS: [&str; 10] = [
    "test",
    "local",
    "internal",
    "lan",
    "home",
    "corp",
    "localhost",
    "localdomain",
    "intranet",
    "private",
];

static SLUG: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$").expect("valid regex"));

/// A rejected value: which field, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// `^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$`.
pub fn slug(value: &str) -> Result<(), FieldError> {
    if SLUG.is_match(value) {
        Ok(())
    } else {
        Err(FieldError::new(
            "slug",
            "must be 3-63 lowercase letters, digits or '-', starting and ending with a letter or digit",
        ))
    }
}

/// 1..=100 printable characters, not only white space.
pub fn name(field: &str, value: &str) -> Result<(), FieldError> {
    let len = value.chars().count();
    if value.trim().is_empty() || len > 100 {
        return Err(FieldError::new(field, "must be 1 to 100 characters"));
    }
    if value.chars().any(char::is_control) {
        return Err(FieldError::new(
            field,
            "must not contain control characters",
        ));
    }
    Ok(())
}

/// A simple e-mail shape check (`local@domain.tld`), enough to catch mistakes.
pub fn email(field: &str, value: &str) -> Result<(), FieldError> {
    let ok = value.len() <= 254
        && value.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !value.chars().any(|c| c.is_whitespace() || c.is_control())
        });
    if ok {
        Ok(())
    } else {
        Err(FieldError::new(field, "must be an e-mail address"))
    }
}

/// Normalises a mail domain exactly like Stalwart (trim, lowercase, IDN →
/// punycode) and checks it is a DNS name ending in a public suffix or a
/// reserved TLD. Returns the normalised form.
pub fn domain(field: &str, value: &str) -> Result<String, FieldError> {
    let bad = |why: &str| FieldError::new(field, format!("`{value}` {why}"));
    let normalized = normalize_domain(value).ok_or_else(|| bad("is not a valid domain name"))?;
    if normalized.len() > 253 {
        return Err(bad("is longer than 253 characters"));
    }
    let labels: Vec<&str> = normalized.split('.').collect();
    if labels.len() < 2 {
        return Err(bad("needs at least two labels (e.g. `acme.example.com`)"));
    }
    for label in &labels {
        let valid = !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !valid {
            return Err(bad("is not a valid domain name"));
        }
    }
    let tld = labels.last().copied().unwrap_or_default();
    let public = psl::suffix(normalized.as_bytes()).is_some_and(|s| s.is_known());
    if !(public || RESERVED_TLDS.contains(&tld)) {
        return Err(bad(
            "must end in a public suffix or a reserved TLD (test, local, internal, ...)",
        ));
    }
    Ok(normalized)
}

/// Trim, lowercase, IDN → punycode (what Stalwart stores); `None` if not a name.
pub fn normalize_domain(value: &str) -> Option<String> {
    let trimmed = value.trim().trim_end_matches('.');
    if trimmed.is_empty() {
        return None;
    }
    idna::domain_to_ascii(trimmed)
        .ok()
        .filter(|d| !d.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_follow_the_design_regex() {
        for ok in ["acme", "a-1", "abc", &"a".repeat(63)] {
            assert!(slug(ok).is_ok(), "{ok}");
        }
        for bad in [
            "ab",
            "-acme",
            "acme-",
            "Acme",
            "ac_me",
            &"a".repeat(64),
            "a b",
        ] {
            assert_eq!(slug(bad).unwrap_err().field, "slug", "{bad}");
        }
    }

    #[test]
    fn names_are_one_to_a_hundred_printable_characters() {
        assert!(name("name", "Acme Inc").is_ok());
        assert!(name("name", &"é".repeat(100)).is_ok());
        assert!(name("name", "").is_err());
        assert!(name("name", "   ").is_err());
        assert!(name("name", &"x".repeat(101)).is_err());
        assert!(name("name", "a\u{0}b").is_err());
    }

    #[test]
    fn domains_are_normalised_like_stalwart() {
        assert_eq!(
            domain("d", " Acme.Example.COM ").unwrap(),
            "acme.example.com"
        );
        assert_eq!(domain("d", "bücher.de").unwrap(), "xn--bcher-kva.de");
        assert_eq!(domain("d", "acme.test").unwrap(), "acme.test");
        assert_eq!(domain("d", "mail.corp").unwrap(), "mail.corp");
    }

    #[test]
    fn domains_without_public_suffix_or_reserved_tld_are_rejected() {
        for bad in [
            "acme.example",
            "acme.invalidtld",
            "localhost",
            "a..b.com",
            "-a.com",
            "a_b.com",
            "",
        ] {
            let err = domain("domains[0]", bad).unwrap_err();
            assert_eq!(err.field, "domains[0]", "{bad}");
        }
    }

    #[test]
    fn emails_need_a_local_part_and_a_dotted_domain() {
        assert!(email("e", "billing@acme.example.com").is_ok());
        for bad in ["x", "@a.com", "a@b", "a b@c.com"] {
            assert!(email("e", bad).is_err(), "{bad}");
        }
    }
}
