//! The stored login: `<config dir>/dezky/credentials.json`
//! (`$XDG_CONFIG_HOME` or `~/.config` on Linux, `~/Library/Application
//! Support` on macOS), one login per server URL (its access token and, with
//! `offline_access`, its refresh token), readable by the user only (file
//! 0600, directory 0700, replaced atomically). `--token` / `DEZKY_TOKEN`
//! win over it; [`crate::session`] renews it.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::CliError;

/// A token from `provisioner login`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Credential {
    pub access_token: String,
    /// When the issuer said it expires.
    #[serde(default)]
    pub expires_at: Option<DateTime<Utc>>,
    /// Renews the access token (`offline_access`); the issuer may rotate it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    pub issuer: String,
    pub client_id: String,
}

#[derive(Default, Serialize, Deserialize)]
struct File {
    /// Server URL (without trailing slash) → its token.
    #[serde(default)]
    servers: BTreeMap<String, Credential>,
}

/// Where the stored logins live.
pub fn path() -> Result<PathBuf, CliError> {
    let dir = dirs::config_dir().ok_or_else(|| CliError::Io {
        context: "the config directory".into(),
        source: std::io::Error::new(std::io::ErrorKind::NotFound, "no home or config directory"),
    })?;
    Ok(dir.join("dezky").join("credentials.json"))
}

/// How a server URL is stored (without a trailing slash).
pub fn key(server: &str) -> String {
    server.trim_end_matches('/').to_string()
}

fn read() -> Result<File, CliError> {
    let path = path()?;
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| CliError::Io {
            context: format!("reading {}", path.display()),
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(File::default()),
        Err(source) => Err(CliError::Io {
            context: format!("reading {}", path.display()),
            source,
        }),
    }
}

fn write(file: &File) -> Result<PathBuf, CliError> {
    let path = path()?;
    let io = |source| CliError::Io {
        context: format!("writing {}", path.display()),
        source,
    };
    let dir = path.parent().map(PathBuf::from).unwrap_or_default();
    private_dir(&dir).map_err(io)?;
    let bytes = serde_json::to_vec_pretty(file).map_err(|e| io(std::io::Error::other(e)))?;
    let partial = dir.join(".credentials.json.partial");
    let _ = std::fs::remove_file(&partial);
    let mut out = private_file(&partial).map_err(io)?;
    out.write_all(&bytes)
        .and_then(|()| out.sync_all())
        .map_err(io)?;
    std::fs::rename(&partial, &path).map_err(io)?;
    Ok(path)
}

/// The stored token for `server`, if any.
pub fn load(server: &str) -> Result<Option<Credential>, CliError> {
    Ok(read()?.servers.remove(&key(server)))
}

/// Stores `credential` for `server`; returns the file's path.
pub fn save(server: &str, credential: Credential) -> Result<PathBuf, CliError> {
    let mut file = read()?;
    file.servers.insert(key(server), credential);
    write(&file)
}

/// Forgets the token of `server`; whether there was one.
pub fn remove(server: &str) -> Result<bool, CliError> {
    let mut file = read()?;
    let removed = file.servers.remove(&key(server)).is_some();
    if removed {
        write(&file)?;
    }
    Ok(removed)
}

/// Creates `dir` (and its parents) readable by the user only.
fn private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// Creates the new file `path`, readable and writable by the user only.
fn private_file(path: &Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logins_are_stored_per_server_privately_and_removed() {
        let home = tempfile::tempdir().unwrap();
        // The only test of this crate that reads the config directory.
        std::env::set_var("XDG_CONFIG_HOME", home.path());
        let credential = |token: &str| Credential {
            access_token: token.into(),
            expires_at: None,
            refresh_token: None,
            issuer: "https://auth.test/application/o/dezky/".into(),
            client_id: "dezky".into(),
        };
        let path = save("http://a.test/", credential("ta")).unwrap();
        save("http://b.test", credential("tb")).unwrap();
        assert_eq!(path, home.path().join("dezky/credentials.json"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&path), 0o600);
            assert_eq!(mode(path.parent().unwrap()), 0o700);
        }
        assert_eq!(load("http://a.test").unwrap().unwrap().access_token, "ta");
        assert!(remove("http://a.test").unwrap());
        assert!(!remove("http://a.test").unwrap());
        assert_eq!(load("http://a.test").unwrap(), None);
        let renewable = Credential {
            refresh_token: Some("r1".into()),
            ..credential("tb2")
        };
        save("http://b.test/", renewable.clone()).unwrap();
        assert_eq!(load("http://b.test").unwrap(), Some(renewable));
    }
}
