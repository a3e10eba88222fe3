//! The client's one error type and the exit codes scripts rely on: 0 ok,
//! 1 for every [`CliError`] (an API error, an unreachable server, a broken
//! manifest, a tenant that failed or did not converge in time), 2 usage (a
//! command line clap cannot parse; clap exits with it before any command
//! runs).

use std::process::ExitCode;

use crate::manifest::ManifestError;

/// Everything a client command can fail with.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Manifests that do not parse or check; all of them.
    #[error("{} invalid manifest(s):\n{}", .0.len(), .0.iter().map(|e| format!("  {e}")).collect::<Vec<_>>().join("\n"))]
    Manifests(Vec<ManifestError>),
    /// The API answered with an error body.
    #[error("{context}: {status} {code}: {message}{}", .field.as_ref().map(|f| format!(" (field {f})")).unwrap_or_default())]
    Api {
        /// What was being done, e.g. `PUT /tenants/acme`.
        context: String,
        status: u16,
        code: String,
        message: String,
        field: Option<String>,
    },
    /// The server could not be reached or answered something unreadable.
    #[error("{context}: {message}")]
    Http { context: String, message: String },
    /// No token: neither `--token`/`DEZKY_TOKEN` nor a stored login.
    #[error("not logged in to {server}: run `provisioner login` or pass --token / DEZKY_TOKEN")]
    NoToken { server: String },
    /// The device login did not complete.
    #[error("login failed: {0}")]
    Login(String),
    /// Reading or writing the stored login.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    /// The work was done but its outcome is a failure (a tenant in error,
    /// a wait that ran out, some manifests not applied); already reported.
    #[error("{0}")]
    Failed(String),
}

/// Prints `result`'s error (if any) to stderr and turns it into the exit code.
pub fn exit(result: Result<(), CliError>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}
