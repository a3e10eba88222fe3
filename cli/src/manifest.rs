//! Tenant manifests: the declarative, Kubernetes-style form of a tenant's
//! desired state, kept in files (in git) and applied with `provisioner
//! tenants apply -f`.
//!
//! ```yaml
//! apiVersion: dezky.io/v1      # optional
//! kind: Tenant
//! metadata:
//!   slug: acme
//! spec:
//!   name: Acme Inc
//!   plan: team
//!   domains: [acme.example.com]
//!   billingInfo: {email: billing@acme.example.com}
//!   deletionPolicy: delete     # or orphan; default delete
//!   paused: false              # default false
//! ```
//!
//! A YAML file may hold several documents (`---`); a JSON file holds one
//! manifest or an array of them; a directory contributes its `*.yaml`,
//! `*.yml` and `*.json` files in name order (subdirectories with
//! `recursive`). Every error names the file, the document (1-based) and the
//! field, and unknown fields are errors. The checks the API makes without
//! its configuration (slug, name, domains, e-mail) run here too, through
//! the same code, so a dry run finds them; a slug may appear only once.

use std::fmt;
use std::path::{Path, PathBuf};

pub use dezky_core::model::TenantSpec;
use dezky_core::validate;
use serde::Deserialize;

/// The only `apiVersion` accepted (it may also be left out).
pub const API_VERSION: &str = "dezky.io/v1";
/// The only `kind`.
pub const KIND: &str = "Tenant";

/// Where a manifest came from: file and 1-based document index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Source {
    pub file: PathBuf,
    pub document: usize,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: document {}", self.file.display(), self.document)
    }
}

/// One tenant as a manifest declares it.
#[derive(Clone, Debug, PartialEq)]
pub struct Manifest {
    pub source: Source,
    pub slug: String,
    pub spec: TenantSpec,
}

/// A manifest document as written.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Document {
    #[serde(default)]
    api_version: Option<String>,
    kind: String,
    metadata: Metadata,
    spec: TenantSpec,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Metadata {
    slug: String,
}

/// One problem with one manifest (or file).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{file}{document}{field}: {message}",
    file = .file.display(),
    document = .document.map(|d| format!(": document {d}")).unwrap_or_default(),
    field = .field.as_ref().map(|f| format!(": {f}")).unwrap_or_default())]
pub struct ManifestError {
    pub file: PathBuf,
    /// 1-based; `None` for a file that could not be read or split.
    pub document: Option<usize>,
    /// `spec.domains[1]`, `metadata.slug`, ...
    pub field: Option<String>,
    pub message: String,
}

/// Reads every manifest under `paths` (files or directories). Returns all
/// problems at once, so a CI run lists every broken file.
pub fn load(paths: &[PathBuf], recursive: bool) -> Result<Vec<Manifest>, Vec<ManifestError>> {
    let mut manifests = Vec::new();
    let mut errors = Vec::new();
    for path in paths {
        match files_of(path, recursive) {
            Ok(files) => {
                for file in files {
                    match read_file(&file) {
                        Ok(found) => manifests.extend(found),
                        Err(found) => errors.extend(found),
                    }
                }
            }
            Err(e) => errors.push(e),
        }
    }
    errors.extend(duplicate_slugs(&manifests));
    if errors.is_empty() {
        Ok(manifests)
    } else {
        Err(errors)
    }
}

fn file_error(file: &Path, message: impl Into<String>) -> ManifestError {
    ManifestError {
        file: file.to_path_buf(),
        document: None,
        field: None,
        message: message.into(),
    }
}

fn is_manifest_file(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml" | "json")
    )
}

/// `path` itself if it is a file; its manifest files (by name) if a directory.
fn files_of(path: &Path, recursive: bool) -> Result<Vec<PathBuf>, ManifestError> {
    let metadata = std::fs::metadata(path).map_err(|e| file_error(path, e.to_string()))?;
    if !metadata.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
        .map_err(|e| file_error(path, e.to_string()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    let mut files = Vec::new();
    for entry in entries {
        if entry.is_dir() {
            if recursive {
                files.extend(files_of(&entry, recursive)?);
            }
        } else if is_manifest_file(&entry) {
            files.push(entry);
        }
    }
    Ok(files)
}

/// The manifests of one file.
fn read_file(file: &Path) -> Result<Vec<Manifest>, Vec<ManifestError>> {
    let text = std::fs::read_to_string(file).map_err(|e| vec![file_error(file, e.to_string())])?;
    let is_json = file.extension().and_then(|e| e.to_str()) == Some("json");
    parse(file, &text, is_json)
}

/// The manifests in `text` (YAML documents, or JSON), attributed to `file`.
pub fn parse(file: &Path, text: &str, is_json: bool) -> Result<Vec<Manifest>, Vec<ManifestError>> {
    let documents = if is_json {
        json_documents(file, text)
    } else {
        yaml_documents(file, text)
    }
    .map_err(|e| vec![e])?;
    let mut manifests = Vec::new();
    let mut errors = Vec::new();
    for (index, value) in documents {
        let source = Source {
            file: file.to_path_buf(),
            document: index,
        };
        match manifest_of(&source, value) {
            Ok(manifest) => manifests.push(manifest),
            Err(error) => errors.push(error),
        }
    }
    if errors.is_empty() {
        Ok(manifests)
    } else {
        Err(errors)
    }
}

/// The non-empty YAML documents with their 1-based index.
fn yaml_documents(
    file: &Path,
    text: &str,
) -> Result<Vec<(usize, serde_yaml::Value)>, ManifestError> {
    let mut documents = Vec::new();
    for (i, document) in serde_yaml::Deserializer::from_str(text).enumerate() {
        let value = serde_yaml::Value::deserialize(document).map_err(|e| ManifestError {
            document: Some(i + 1),
            ..file_error(file, e.to_string())
        })?;
        if !value.is_null() {
            documents.push((i + 1, value));
        }
    }
    Ok(documents)
}

/// One manifest, or an array of them (document = array index + 1).
fn json_documents(
    file: &Path,
    text: &str,
) -> Result<Vec<(usize, serde_yaml::Value)>, ManifestError> {
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| file_error(file, format!("invalid JSON: {e}")))?;
    let items = match value {
        serde_json::Value::Array(items) => items,
        other => vec![other],
    };
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| {
            serde_yaml::to_value(item)
                .map(|v| (i + 1, v))
                .map_err(|e| file_error(file, e.to_string()))
        })
        .collect()
}

/// A document as a manifest: typed (path-aware errors), then checked.
fn manifest_of(source: &Source, value: serde_yaml::Value) -> Result<Manifest, ManifestError> {
    let error = |field: Option<String>, message: String| ManifestError {
        file: source.file.clone(),
        document: Some(source.document),
        field,
        message,
    };
    let document: Document = serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let message = e.into_inner().to_string();
        error(field_of(&path, &message), message)
    })?;
    if let Some(version) = document.api_version.filter(|v| v != API_VERSION) {
        let message =
            format!("`{version}` is not supported; use `{API_VERSION}` (or leave it out)");
        return Err(error(Some("apiVersion".into()), message));
    }
    if document.kind != KIND {
        let message = format!(
            "`{}` is not a manifest kind; the only kind is `{KIND}`",
            document.kind
        );
        return Err(error(Some("kind".into()), message));
    }
    check(&document.metadata.slug, &document.spec).map_err(|e| error(Some(e.field), e.message))?;
    Ok(Manifest {
        source: source.clone(),
        slug: document.metadata.slug,
        spec: document.spec,
    })
}

/// The field a serde error is about: the unknown key (which
/// serde_path_to_error's path already ends with), the missing one (below
/// the path), or the path itself.
fn field_of(path: &str, message: &str) -> Option<String> {
    let quoted = |prefix: &str| message.strip_prefix(prefix)?.split('`').next();
    if let Some(name) = quoted("unknown field `") {
        return Some(if path == "." {
            name.to_string()
        } else {
            path.to_string()
        });
    }
    if let Some(name) = quoted("missing field `") {
        return Some(if path == "." {
            name.to_string()
        } else {
            format!("{path}.{name}")
        });
    }
    (path != ".").then(|| path.to_string())
}

/// The API's configuration-free checks, with manifest field paths.
fn check(slug: &str, spec: &TenantSpec) -> Result<(), validate::FieldError> {
    validate::slug(slug).map_err(|e| under("metadata.", e))?;
    validate::name("name", &spec.name).map_err(|e| under("spec.", e))?;
    for (i, domain) in spec.domains.iter().enumerate() {
        validate::domain(&format!("domains[{i}]"), domain).map_err(|e| under("spec.", e))?;
    }
    if let Some(email) = spec.billing_info.as_ref().and_then(|b| b.email.as_deref()) {
        validate::email("billingInfo.email", email).map_err(|e| under("spec.", e))?;
    }
    Ok(())
}

/// `error` with its field below `prefix` (`spec.`, `metadata.`).
fn under(prefix: &str, error: validate::FieldError) -> validate::FieldError {
    validate::FieldError::new(format!("{prefix}{}", error.field), error.message)
}

fn duplicate_slugs(manifests: &[Manifest]) -> Vec<ManifestError> {
    let mut errors = Vec::new();
    for (i, manifest) in manifests.iter().enumerate() {
        if let Some(first) = manifests[..i].iter().find(|m| m.slug == manifest.slug) {
            errors.push(ManifestError {
                file: manifest.source.file.clone(),
                document: Some(manifest.source.document),
                field: Some("metadata.slug".into()),
                message: format!(
                    "tenant `{}` is already declared in {}",
                    manifest.slug, first.source
                ),
            });
        }
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;
    use dezky_core::model::DeletionPolicy;

    const TWO: &str = "\
kind: Tenant
metadata: {slug: acme}
spec:
  name: Acme Inc
  plan: team
  domains: [acme.test]
  billingInfo: {email: billing@acme.test}
---
apiVersion: dezky.io/v1
kind: Tenant
metadata: {slug: globex}
spec: {name: Globex, plan: business, deletionPolicy: orphan, paused: true}
---
";

    fn yaml(text: &str) -> Result<Vec<Manifest>, Vec<ManifestError>> {
        parse(Path::new("t.yaml"), text, false)
    }

    fn only_error(text: &str) -> ManifestError {
        let mut errors = yaml(text).unwrap_err();
        assert_eq!(errors.len(), 1, "{errors:?}");
        errors.remove(0)
    }

    #[test]
    fn several_documents_per_file_with_defaults() {
        let manifests = yaml(TWO).unwrap();
        assert_eq!(manifests.len(), 2, "the empty last document is skipped");
        assert_eq!(manifests[0].slug, "acme");
        assert_eq!(manifests[0].source.document, 1);
        assert_eq!(manifests[0].spec.domains, ["acme.test"]);
        assert_eq!(manifests[0].spec.deletion_policy, DeletionPolicy::Delete);
        assert!(!manifests[0].spec.paused);
        assert_eq!(manifests[1].slug, "globex");
        assert_eq!(manifests[1].source.document, 2);
        assert_eq!(manifests[1].spec.deletion_policy, DeletionPolicy::Orphan);
        assert!(manifests[1].spec.paused);
    }

    #[test]
    fn json_holds_one_manifest_or_an_array() {
        let one = r#"{"kind": "Tenant", "metadata": {"slug": "acme"}, "spec": {"name": "A", "plan": "team"}}"#;
        assert_eq!(parse(Path::new("a.json"), one, true).unwrap().len(), 1);
        let many = format!("[{one}, {}]", one.replace("acme", "beta"));
        let manifests = parse(Path::new("a.json"), &many, true).unwrap();
        assert_eq!(manifests[1].slug, "beta");
        assert_eq!(manifests[1].source.document, 2);
    }

    #[test]
    fn unknown_fields_name_file_document_and_field() {
        let text = TWO.replace("paused: true}", "paused: true, colour: red}");
        let error = only_error(&text);
        assert_eq!(error.file, Path::new("t.yaml"));
        assert_eq!(error.document, Some(2));
        assert_eq!(error.field.as_deref(), Some("spec.colour"));
        assert!(
            error
                .to_string()
                .starts_with("t.yaml: document 2: spec.colour: unknown field `colour`"),
            "{error}"
        );
        let error = only_error(
            "kind: Tenant\nmetadata: {slug: acme, labels: {}}\nspec: {name: A, plan: team}\n",
        );
        assert_eq!(error.field.as_deref(), Some("metadata.labels"));
        let error = only_error("kind: Tenant\nmetadata: {slug: acme}\nspec: {name: A, plan: team, billingInfo: {vat: 1}}\n");
        assert_eq!(error.field.as_deref(), Some("spec.billingInfo.vat"));
        let error =
            only_error("kind: Tenant\nmetdata: {slug: acme}\nspec: {name: A, plan: team}\n");
        assert_eq!(error.field.as_deref(), Some("metdata"));
    }

    #[test]
    fn missing_and_mistyped_fields_are_named() {
        let error = only_error("kind: Tenant\nmetadata: {slug: acme}\nspec: {name: A}\n");
        assert_eq!(error.field.as_deref(), Some("spec.plan"));
        let error = only_error(
            "kind: Tenant\nmetadata: {slug: acme}\nspec: {name: A, plan: team, domains: a.test}\n",
        );
        assert_eq!(error.field.as_deref(), Some("spec.domains"));
        let error = only_error("kind: Tenant\nmetadata: {slug: acme}\nspec: {name: A, plan: team, deletionPolicy: keep}\n");
        assert_eq!(error.field.as_deref(), Some("spec.deletionPolicy"));
    }

    #[test]
    fn kind_version_and_the_apis_own_checks() {
        let base = "kind: Tenant\nmetadata: {slug: acme}\nspec: {name: A, plan: team}\n";
        let error = only_error(&base.replace("kind: Tenant", "kind: Group"));
        assert_eq!(error.field.as_deref(), Some("kind"));
        let error = only_error(&format!("apiVersion: v2\n{base}"));
        assert_eq!(error.field.as_deref(), Some("apiVersion"));
        let error = only_error(&base.replace("slug: acme", "slug: Not_A_Slug"));
        assert_eq!(error.field.as_deref(), Some("metadata.slug"));
        let error =
            only_error(&base.replace("plan: team}", "plan: team, domains: [ok.test, nope]}"));
        assert_eq!(error.field.as_deref(), Some("spec.domains[1]"));
        let error =
            only_error(&base.replace("plan: team}", "plan: team, billingInfo: {email: x}}"));
        assert_eq!(error.field.as_deref(), Some("spec.billingInfo.email"));
    }

    #[test]
    fn every_broken_document_is_reported_and_a_yaml_syntax_error_names_its_document() {
        let text = format!("{TWO}\nkind: Tenant\nmetadata: {{slug: x}}\nspec: {{}}\n");
        let errors = yaml(&text.replace("name: Globex", "nam: Globex")).unwrap_err();
        assert_eq!(errors.len(), 2, "{errors:?}");
        let error = only_error("kind: Tenant\nmetadata: [\n");
        assert_eq!(error.document, Some(1));
    }

    #[test]
    fn directories_contribute_their_manifest_files_in_name_order_and_slugs_are_unique() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
        write(
            "b.yml",
            "kind: Tenant\nmetadata: {slug: beta}\nspec: {name: B, plan: team}\n",
        );
        write("a.yaml", TWO);
        write("README.md", "not a manifest");
        std::fs::create_dir(dir.path().join("nested")).unwrap();
        std::fs::write(
            dir.path().join("nested/c.json"),
            r#"{"kind": "Tenant", "metadata": {"slug": "gamma"}, "spec": {"name": "C", "plan": "team"}}"#,
        )
        .unwrap();
        let slugs = |recursive| -> Vec<String> {
            load(&[dir.path().to_path_buf()], recursive)
                .unwrap()
                .into_iter()
                .map(|m| m.slug)
                .collect()
        };
        assert_eq!(slugs(false), ["acme", "globex", "beta"]);
        assert_eq!(slugs(true), ["acme", "globex", "beta", "gamma"]);

        write(
            "z.yaml",
            "kind: Tenant\nmetadata: {slug: acme}\nspec: {name: A2, plan: team}\n",
        );
        let errors = load(&[dir.path().to_path_buf()], false).unwrap_err();
        assert_eq!(errors.len(), 1);
        assert!(
            errors[0].to_string().contains("already declared in"),
            "{}",
            errors[0]
        );
        let missing = load(&[dir.path().join("nope.yaml")], false).unwrap_err();
        assert_eq!(missing[0].document, None);
    }

    #[test]
    fn the_example_manifests_parse() {
        let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/tenants");
        let slugs: Vec<String> = load(&[examples], false)
            .unwrap()
            .into_iter()
            .map(|m| m.slug)
            .collect();
        assert_eq!(slugs, ["stark", "hooli", "piedpiper", "umbrella"]);
    }
}
