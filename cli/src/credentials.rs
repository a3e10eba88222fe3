//! The stored login: `<config dir>/dezky/credentials.json`
//! (`$XDG_CONFIG_HOME` or `~/.config` on Linux, `~/Library/Application
//! Support` on macOS), one token per server URL, readable by the user only
//! (file 0600, directory 0700, replaced atomically). `--token` /
//! `DEZKY_TOKEN` win over it.

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

fn key(server: &str) -> String {
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

/// The token to send to `server`: `explicit` (`--token`/`DEZKY_TOKEN`),
/// else the stored login, unless it has expired.
pub fn token_for(server: &str, explicit: Option<&str>) -> Result<String, CliError> {
    if let Some(token) = explicit.filter(|t| !t.is_empty()) {
        return Ok(token.to_string());
    }
    let credential = load(server)?.ok_or_else(|| CliError::NoToken {
        server: key(server),
    })?;
    match credential.expires_at {
        Some(at) if at <= Utc::now() => Err(CliError::Failed(format!(
            "the stored login for {} expired at {at}; run `provisioner login` again",
            key(server)
        ))),
        _ => Ok(credential.access_token),
    }
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
        assert_eq!(token_for("http://a.test", None).unwrap(), "ta");
        assert_eq!(token_for("http://a.test", Some("flag")).unwrap(), "flag");
        assert!(remove("http://a.test").unwrap());
        assert!(!remove("http://a.test").unwrap());
        assert!(matches!(
            token_for("http://a.test", None),
            Err(CliError::NoToken { .. })
        ));
        assert_eq!(token_for("http://b.test/", None).unwrap(), "tb");
        let expired = Credential {
            expires_at: Some(Utc::now() - chrono::Duration::seconds(1)),
            ..credential("old")
        };
        save("http://b.test", expired).unwrap();
        assert!(matches!(
            token_for("http://b.test", None),
            Err(CliError::Failed(_))
        ));
    }
}
