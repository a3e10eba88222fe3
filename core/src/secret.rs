//! A credential given as a value (`AUTHENTIK_TOKEN`) or as a file
//! (`AUTHENTIK_TOKEN_FILE`, the Docker and Kubernetes convention). A file is
//! read again whenever its modification time, size or inode changes (one
//! `stat` per use),
//! so a rotated Kubernetes Secret (its mounted file replaced) is picked up
//! without a restart. Surrounding whitespace, such as the trailing newline
//! most files end with, is not part of the secret. `Debug` never shows it.

use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

/// A credential; cheap to clone.
#[derive(Clone)]
pub struct Secret(Arc<Source>);

enum Source {
    Value(String),
    File {
        path: PathBuf,
        /// The content as last read, with the file's version then.
        read: Mutex<Option<(Version, String)>>,
    },
}

/// What tells one content of a file from the next without reading it: a
/// rewrite changes the modification time (and mostly the size), a
/// Kubernetes rotation the inode.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Version {
    modified: SystemTime,
    len: u64,
    inode: u64,
}

impl Version {
    fn of(meta: &std::fs::Metadata) -> std::io::Result<Self> {
        use std::os::unix::fs::MetadataExt;
        Ok(Version {
            modified: meta.modified()?,
            len: meta.len(),
            inode: meta.ino(),
        })
    }
}

/// A secret file that cannot be read.
#[derive(Debug, Clone, thiserror::Error)]
#[error("cannot read the secret file {path}: {reason}")]
pub struct SecretError {
    pub path: String,
    pub reason: String,
}

impl Secret {
    /// A secret kept in the file at `path`, read at each change.
    pub fn file(path: impl Into<PathBuf>) -> Self {
        Secret(Arc::new(Source::File {
            path: path.into(),
            read: Mutex::new(None),
        }))
    }

    /// The secret now.
    pub fn get(&self) -> Result<String, SecretError> {
        match self.0.as_ref() {
            Source::Value(value) => Ok(value.clone()),
            Source::File { path, read } => {
                let error = |e: std::io::Error| SecretError {
                    path: path.display().to_string(),
                    reason: e.to_string(),
                };
                let version = std::fs::metadata(path)
                    .and_then(|m| Version::of(&m))
                    .map_err(error)?;
                let mut read = read.lock().unwrap_or_else(|p| p.into_inner());
                if let Some((seen, value)) = read.as_ref() {
                    if *seen == version {
                        return Ok(value.clone());
                    }
                }
                let value = std::fs::read_to_string(path)
                    .map_err(error)?
                    .trim()
                    .to_string();
                *read = Some((version, value.clone()));
                Ok(value)
            }
        }
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Secret(Arc::new(Source::Value(value)))
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        value.to_string().into()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.as_ref() {
            Source::Value(_) => f.write_str("Secret(***)"),
            Source::File { path, .. } => write!(f, "Secret(file {})", path.display()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rotated_file_is_read_again_and_whitespace_is_trimmed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "first\n").unwrap();
        let secret = Secret::file(&path);
        assert_eq!(secret.get().unwrap(), "first");
        // Rotated as Kubernetes does it: a new file renamed over the old.
        let next = dir.path().join("token.new");
        std::fs::write(&next, "second\n").unwrap();
        let later = SystemTime::now() + std::time::Duration::from_secs(5);
        std::fs::File::options()
            .write(true)
            .open(&next)
            .unwrap()
            .set_modified(later)
            .unwrap();
        std::fs::rename(&next, &path).unwrap();
        assert_eq!(secret.get().unwrap(), "second");
        assert_eq!(
            format!("{secret:?}"),
            format!("Secret(file {})", path.display())
        );
    }

    #[test]
    fn a_missing_file_names_its_path_and_a_value_never_shows() {
        let error = Secret::file("/nonexistent/token").get().unwrap_err();
        assert!(error.to_string().contains("/nonexistent/token"), "{error}");
        assert_eq!(format!("{:?}", Secret::from("hunter2")), "Secret(***)");
    }
}
