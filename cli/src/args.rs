//! The client's command line (clap): `provisioner tenants ...`, `provisioner
//! login`, `provisioner logout`. The binary mounts these next to its server
//! commands.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand};

use crate::output::Format;

/// Default of `--server` / `DEZKY_SERVER`.
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:3000";
/// What a bare `--wait` waits at most.
pub const DEFAULT_WAIT: &str = "5m";

const TENANTS_EXAMPLES: &str = "\
Examples:
  provisioner login --issuer https://auth.example.com/application/o/dezky/ --client-id dezky
  provisioner tenants apply -f tenants/ --dry-run
  provisioner tenants apply -f tenants/ --wait=10m
  provisioner tenants get
  provisioner tenants get acme -o yaml
  provisioner tenants describe acme
  provisioner tenants reconcile acme --wait
  DEZKY_SERVER=https://provisioner.example.com DEZKY_TOKEN=$TOKEN provisioner tenants get -o json

Exit codes: 0 ok, 1 failure (API error, unreachable server, invalid manifest,
a tenant that failed or did not converge in time), 2 usage.";

/// Where the API is and how to authenticate to it.
#[derive(Debug, Clone, Args)]
pub struct ServerArgs {
    /// Base URL of the provisioner API.
    #[arg(long, env = "DEZKY_SERVER", default_value = DEFAULT_SERVER, global = true)]
    pub server: String,
    /// Bearer token (default: the one `provisioner login` stored for --server).
    #[arg(long, env = "DEZKY_TOKEN", hide_env_values = true, global = true)]
    pub token: Option<String>,
}

/// `provisioner tenants`: manage tenants declaratively and look at them.
#[derive(Debug, Args)]
#[command(after_help = TENANTS_EXAMPLES)]
pub struct TenantsArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    #[command(subcommand)]
    pub command: TenantsCommand,
}

#[derive(Debug, Subcommand)]
pub enum TenantsCommand {
    /// Create or replace every tenant the manifests declare (PUT per tenant).
    #[command(after_help = "Examples:\n  provisioner tenants apply -f acme.yaml\n  \
        provisioner tenants apply -f tenants/ -R --dry-run\n  provisioner tenants apply -f tenants/ --wait=10m")]
    Apply(ApplyArgs),
    /// List tenants, or show one.
    #[command(
        after_help = "Examples:\n  provisioner tenants get\n  provisioner tenants get -o wide\n  \
        provisioner tenants get acme -o json"
    )]
    Get(GetArgs),
    /// Show a tenant for a person: spec, phase, every system, recent events.
    Describe(SlugArg),
    /// The tenant's reconcile history, newest first.
    Events(EventsArgs),
    /// The controller's dry run: what it would change upstream now.
    Plan(PlanArgs),
    /// Ask the controller to reconcile the tenant now.
    Reconcile(WaitArgs),
    /// Stop all upstream writes for the tenant (the controller only reports).
    Pause(SlugArg),
    /// Let the controller write upstream again.
    Resume(SlugArg),
    /// Delete the tenant (the controller cleans up upstream first).
    Delete(WaitArgs),
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// Manifest file or directory (`*.yaml`, `*.yml`, `*.json`); repeatable.
    #[arg(
        short = 'f',
        long = "filename",
        value_name = "FILE|DIR",
        required = true
    )]
    pub files: Vec<PathBuf>,
    /// Also read the subdirectories of a directory.
    #[arg(short = 'R', long)]
    pub recursive: bool,
    /// Show what would change (and the controller's plan) without writing.
    #[arg(long)]
    pub dry_run: bool,
    /// Follow the tenants until they are active, at most this long.
    #[arg(long, value_name = "DURATION", num_args = 0..=1, require_equals = true, conflicts_with = "dry_run",
        default_missing_value = DEFAULT_WAIT, value_parser = humantime::parse_duration)]
    pub wait: Option<Duration>,
}

#[derive(Debug, Args)]
pub struct GetArgs {
    /// One tenant; all visible tenants without it.
    pub slug: Option<String>,
    /// Output format.
    #[arg(short, long, value_enum, default_value = "table")]
    pub output: Format,
}

#[derive(Debug, Args)]
pub struct SlugArg {
    /// The tenant's slug.
    pub slug: String,
}

#[derive(Debug, Args)]
pub struct EventsArgs {
    /// The tenant's slug.
    pub slug: String,
    /// At most this many events.
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
    /// Output format (`wide` is `table`).
    #[arg(short, long, value_enum, default_value = "table")]
    pub output: Format,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// The tenant's slug.
    pub slug: String,
    /// How long the controller may take to answer (at most 60s).
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
    /// Output format (`wide` is `table`).
    #[arg(short, long, value_enum, default_value = "table")]
    pub output: Format,
}

#[derive(Debug, Args)]
pub struct WaitArgs {
    /// The tenant's slug.
    pub slug: String,
    /// Wait for the outcome, at most this long.
    #[arg(long, value_name = "DURATION", num_args = 0..=1, require_equals = true,
        default_missing_value = DEFAULT_WAIT, value_parser = humantime::parse_duration)]
    pub wait: Option<Duration>,
}

/// `provisioner login`: the OAuth 2.0 device authorization grant.
#[derive(Debug, Args)]
#[command(
    after_help = "Example:\n  provisioner login --issuer https://auth.example.com/application/o/dezky/ --client-id dezky\n\n\
    Prints a URL and a code to confirm in a browser, then stores the token for --server\n\
    in the user's config directory (mode 0600)."
)]
pub struct LoginArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    /// The OIDC issuer (Authentik: `https://HOST/application/o/<app>/`).
    #[arg(long, env = "DEZKY_ISSUER")]
    pub issuer: String,
    /// Client id of the provisioner's application (its `OIDC_AUDIENCE`).
    #[arg(long, env = "DEZKY_CLIENT_ID")]
    pub client_id: String,
    /// Scopes to ask for (`offline_access` brings the refresh token that
    /// keeps the login valid past the access token's lifetime).
    #[arg(long, default_value = "openid profile email offline_access")]
    pub scope: String,
}

/// `provisioner logout`: forget the stored token.
#[derive(Debug, Args)]
pub struct LogoutArgs {
    #[command(flatten)]
    pub server: ServerArgs,
}
