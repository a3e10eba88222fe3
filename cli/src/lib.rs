//! `dezky-cli`: the provisioner's command-line client, mounted by the
//! `provisioner` binary as `provisioner tenants ...`, `provisioner login`
//! and `provisioner logout` (next to the server commands). It talks only
//! to the HTTP API, like any other client.
//!
//! - [`manifest`]: the Kubernetes-style tenant manifest format and its
//!   parser (files, directories, several documents, errors naming file,
//!   document and field);
//! - [`client`]: the HTTP client of the API (timeouts, error bodies);
//! - [`view`]: the typed parts of the API's answers;
//! - [`diff`]: what applying a manifest changes (for `--dry-run` and the
//!   `configured (fields)` report);
//! - [`apply`], [`tenants`]: the commands;
//! - [`output`], [`describe`]: tables, JSON/YAML and texts for people;
//! - [`wait`]: following tenants until active / gone, with live progress;
//! - [`login`], [`credentials`], [`session`]: the device-flow login, the
//!   token store, and renewing a stored login with its refresh token;
//! - [`args`]: the command line; [`error`]: errors and exit codes.

pub mod apply;
pub mod args;
pub mod client;
pub mod credentials;
pub mod describe;
pub mod diff;
pub mod error;
pub mod login;
pub mod manifest;
pub mod output;
pub mod session;
pub mod tenants;
pub mod view;
pub mod wait;

use std::process::ExitCode;

pub use args::{LoginArgs, LogoutArgs, TenantsArgs};
pub use error::CliError;

/// The client commands, as the binary mounts them.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Client: manage tenants declaratively (apply manifests) and look at them.
    Tenants(TenantsArgs),
    /// Client: sign in with the OAuth 2.0 device flow; stores the token.
    Login(LoginArgs),
    /// Client: forget the stored token.
    Logout(LogoutArgs),
}

/// Runs `command`; errors go to stderr, the result becomes the exit code.
pub async fn run(command: Command) -> ExitCode {
    error::exit(match command {
        Command::Tenants(args) => tenants::run(args).await,
        Command::Login(args) => login::login(&args).await,
        Command::Logout(args) => login::logout(&args),
    })
}
