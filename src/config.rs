//! Command-line and environment configuration (DESIGN §2). Every option has
//! a flag and an environment variable; flags win. Durations are humantime
//! (`30s`, `5m`). The client commands (`tenants`, `login`, `logout`) bring
//! their own arguments from `dezky-cli`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use dezky_core::plans::PlanQuotas;
use dezky_upstream::stalwart::Management;

/// Default of `PLATFORM_ADMIN_GROUP`.
pub const DEFAULT_ADMIN_GROUP: &str = "dezky-admins";

/// dezky provisioner: keeps every tenant provisioned in Authentik, Stalwart and oCIS.
#[derive(Debug, Parser)]
#[command(name = "provisioner", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    #[command(flatten)]
    pub log: LogArgs,
}

/// Parsed once per process, so the size difference of its variants is of
/// no consequence.
#[derive(Debug, Subcommand)]
#[allow(clippy::large_enum_variant)]
pub enum Command {
    #[command(flatten)]
    Server(ServerCommand),
    #[command(flatten)]
    Client(dezky_cli::Command),
}

/// The commands that run (part of) the service.
#[derive(Debug, Subcommand)]
pub enum ServerCommand {
    /// API and controller in one process (the default deployment).
    Serve(ServeArgs),
    /// Only the HTTP API (scale horizontally).
    Api(ApiArgs),
    /// Only the controller (several coordinate through a MongoDB lease); also
    /// serves /healthz, /readyz and /metrics on LISTEN_ADDR.
    Controller(ControllerArgs),
    /// Everything on one machine with nothing configured: local MongoDB,
    /// upstream simulators, API and controller, sample tenants.
    Demo(DemoArgs),
    /// Only the upstream simulators (Authentik, Stalwart, oCIS) on loopback ports.
    Simulate(SimulateArgs),
    /// Prints the OpenAPI document of the API (`docs/openapi.json`).
    Openapi(OpenapiArgs),
    /// Brings the stored schema to this build's version (the previous
    /// service's documents included) and reports what changed; servers do
    /// the same at start. Idempotent and resumable.
    Migrate(MigrateArgs),
}

#[derive(Debug, Args)]
pub struct LogArgs {
    /// Log format: `text` or `json` (JSON lines).
    #[arg(long, env = "LOG_FORMAT", default_value = "text", global = true)]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub mongo: MongoArgs,
    #[command(flatten)]
    pub http: HttpArgs,
    #[command(flatten)]
    pub oidc: OidcArgs,
    #[command(flatten)]
    pub tenants: TenantArgs,
    #[command(flatten)]
    pub controller: ControllerTuning,
    #[command(flatten)]
    pub upstreams: UpstreamArgs,
}

#[derive(Debug, Args)]
pub struct ApiArgs {
    #[command(flatten)]
    pub mongo: MongoArgs,
    #[command(flatten)]
    pub http: HttpArgs,
    #[command(flatten)]
    pub oidc: OidcArgs,
    #[command(flatten)]
    pub tenants: TenantArgs,
}

#[derive(Debug, Args)]
pub struct ControllerArgs {
    #[command(flatten)]
    pub mongo: MongoArgs,
    #[command(flatten)]
    pub http: HttpArgs,
    #[command(flatten)]
    pub tenants: TenantArgs,
    #[command(flatten)]
    pub controller: ControllerTuning,
    #[command(flatten)]
    pub upstreams: UpstreamArgs,
    /// Authentik issuer; used here only to discover the token endpoint for oCIS.
    #[arg(long, env = "OIDC_ISSUER")]
    pub oidc_issuer: Option<String>,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    #[command(flatten)]
    pub http: HttpArgs,
    #[command(flatten)]
    pub tenants: TenantArgs,
    /// Data directory of the demo's own MongoDB (wiped at start).
    #[arg(long, default_value = ".data/demo-mongo")]
    pub data_dir: PathBuf,
    /// Port of the demo's own MongoDB.
    #[arg(long, default_value_t = 27019)]
    pub mongod_port: u16,
    /// `mongod` binary (default: PATH, then .cache/mongod).
    #[arg(long, env = "MONGOD_BIN")]
    pub mongod_bin: Option<PathBuf>,
    /// Resync period of the demo controller (short, so healing is visible).
    #[arg(long, env = "RESYNC_INTERVAL", default_value = "5s", value_parser = humantime::parse_duration)]
    pub resync_interval: Duration,
    /// Run the scripted tour and exit (non-zero if a step missed its
    /// deadline) instead of running until Ctrl-C.
    #[arg(long)]
    pub once: bool,
}

#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// Port of the Authentik simulator (API and OIDC); 0 = any.
    #[arg(long, default_value_t = 9000)]
    pub authentik_port: u16,
    /// Port of the Stalwart simulator; 0 = any.
    #[arg(long, default_value_t = 9001)]
    pub stalwart_port: u16,
    /// Port of the oCIS simulator; 0 = any.
    #[arg(long, default_value_t = 9002)]
    pub ocis_port: u16,
    /// Address `provisioner serve` will listen on (only used in the printed examples).
    #[arg(long, env = "LISTEN_ADDR", default_value = "127.0.0.1:3000")]
    pub listen_addr: SocketAddr,
    /// Lifetime of the access tokens the simulated Authentik issues at
    /// sign-in (`provisioner login`, the console) and refresh; Authentik's
    /// default is 5 minutes. Short ones show the refresh at work.
    #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
    pub token_lifetime: std::time::Duration,
}

#[derive(Debug, Args)]
pub struct MigrateArgs {
    #[command(flatten)]
    pub mongo: MongoArgs,
    /// Report per collection what would change, and change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Args)]
pub struct OpenapiArgs {
    /// Plans and their oCIS quota; the keys are the plan names the document lists.
    #[arg(long, env = "PLAN_QUOTAS", default_value = dezky_core::plans::DEFAULT_PLAN_QUOTAS)]
    pub plan_quotas: PlanQuotas,
}

#[derive(Debug, Args)]
pub struct MongoArgs {
    /// Replica-set URI. Unset: start and manage a local single-node replica set.
    #[arg(long, env = "MONGODB_URI")]
    pub mongodb_uri: Option<String>,
    /// Database name.
    #[arg(long, env = "MONGODB_DB", default_value = "dezky")]
    pub mongodb_db: String,
    /// `mongod` binary for the embedded replica set (default: PATH, then .cache/mongod).
    #[arg(long, env = "MONGOD_BIN")]
    pub mongod_bin: Option<PathBuf>,
    /// Data directory of the embedded replica set.
    #[arg(long, env = "MONGOD_DATA_DIR", default_value = ".data/mongo")]
    pub mongod_data_dir: PathBuf,
    /// Port of the embedded replica set (fixed: the replica-set config records it).
    #[arg(long, env = "MONGOD_PORT", default_value_t = 27018)]
    pub mongod_port: u16,
}

#[derive(Debug, Args)]
pub struct HttpArgs {
    /// Address the HTTP server listens on.
    #[arg(long, env = "LISTEN_ADDR", default_value = "127.0.0.1:3000")]
    pub listen_addr: SocketAddr,
    /// PEM file of extra roots trusted for every outbound HTTPS call.
    #[arg(long, env = "EXTRA_CA_CERTS")]
    pub extra_ca_certs: Option<PathBuf>,
    /// Timeout of every outbound HTTP request.
    #[arg(long, env = "UPSTREAM_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub upstream_timeout: Duration,
}

#[derive(Debug, Args)]
pub struct OidcArgs {
    /// Authentik issuer, e.g. `https://auth.example/application/o/dezky/`.
    #[arg(long, env = "OIDC_ISSUER")]
    pub oidc_issuer: String,
    /// Expected `aud` of tokens (the client id).
    #[arg(long, env = "OIDC_AUDIENCE")]
    pub oidc_audience: String,
    /// Override of the JWKS URL found by discovery.
    #[arg(long, env = "OIDC_JWKS_URL")]
    pub oidc_jwks_url: Option<String>,
    /// Group in the token's `groups` claim that makes a platform admin.
    #[arg(long, env = "PLATFORM_ADMIN_GROUP", default_value = DEFAULT_ADMIN_GROUP)]
    pub platform_admin_group: String,
    /// Public OIDC client of the web console at `/console/` (authorization
    /// code + PKCE); its tokens are accepted too. Unset: no console sign-in.
    #[arg(long, env = "CONSOLE_CLIENT_ID")]
    pub console_client_id: Option<String>,
    /// The console also offers a pasted token (set by `demo` only).
    #[arg(skip)]
    pub console_token_paste: bool,
}

#[derive(Debug, Args)]
pub struct TenantArgs {
    /// Tenant created idempotently at start; empty = none.
    #[arg(long, env = "DEFAULT_TENANT_SLUG", default_value = "dezky")]
    pub default_tenant_slug: String,
    /// Plans and their oCIS quota; the keys are the valid plan names.
    #[arg(long, env = "PLAN_QUOTAS", default_value = dezky_core::plans::DEFAULT_PLAN_QUOTAS)]
    pub plan_quotas: PlanQuotas,
    /// Prefix of tenant group names in Authentik and oCIS (`tenant-{slug}`).
    #[arg(long, env = "GROUP_PREFIX", default_value = "tenant-")]
    pub group_prefix: String,
}

#[derive(Debug, Args)]
pub struct ControllerTuning {
    /// Requeue period after a successful reconcile (±10% jitter).
    #[arg(long, env = "RESYNC_INTERVAL", default_value = "5m", value_parser = humantime::parse_duration)]
    pub resync_interval: Duration,
    /// Tenants reconciled at once.
    #[arg(long, env = "RECONCILE_CONCURRENCY", default_value_t = 16)]
    pub reconcile_concurrency: usize,
    /// First retry delay after a failed reconcile (doubles per failure).
    #[arg(long, env = "BACKOFF_BASE", default_value = "1s", value_parser = humantime::parse_duration)]
    pub backoff_base: Duration,
    /// Longest retry delay.
    #[arg(long, env = "BACKOFF_MAX", default_value = "5m", value_parser = humantime::parse_duration)]
    pub backoff_max: Duration,
    /// Upper bound of one system's reconcile in a pass.
    #[arg(long, env = "RECONCILE_TIMEOUT", default_value = "60s", value_parser = humantime::parse_duration)]
    pub reconcile_timeout: Duration,
    /// Validity of the controller lease; a standby takes over within it.
    #[arg(long, env = "LEASE_DURATION", default_value = "15s", value_parser = humantime::parse_duration)]
    pub lease_duration: Duration,
}

#[derive(Debug, Args)]
pub struct UpstreamArgs {
    /// Authentik base URL (without /api/v3); unset = Authentik step skipped.
    #[arg(long, env = "AUTHENTIK_API_URL")]
    pub authentik_api_url: Option<String>,
    /// Authentik API token.
    #[arg(long, env = "AUTHENTIK_TOKEN", hide_env_values = true)]
    pub authentik_token: Option<String>,
    /// File holding the Authentik API token (read again when it changes).
    #[arg(long, env = "AUTHENTIK_TOKEN_FILE")]
    pub authentik_token_file: Option<PathBuf>,
    /// Stalwart base URL; unset = Stalwart step skipped.
    #[arg(long, env = "STALWART_API_URL")]
    pub stalwart_api_url: Option<String>,
    /// Stalwart API key (`API_...`), sent as Bearer.
    #[arg(long, env = "STALWART_TOKEN", hide_env_values = true)]
    pub stalwart_token: Option<String>,
    /// File holding the Stalwart API key (read again when it changes).
    #[arg(long, env = "STALWART_TOKEN_FILE")]
    pub stalwart_token_file: Option<PathBuf>,
    /// Stalwart admin login (Basic auth), instead of a token.
    #[arg(long, env = "STALWART_USERNAME")]
    pub stalwart_username: Option<String>,
    /// Stalwart admin password (Basic auth).
    #[arg(long, env = "STALWART_PASSWORD", hide_env_values = true)]
    pub stalwart_password: Option<String>,
    /// File holding the Stalwart admin password (read again when it changes).
    #[arg(long, env = "STALWART_PASSWORD_FILE")]
    pub stalwart_password_file: Option<PathBuf>,
    /// oCIS base URL; unset = oCIS step skipped.
    #[arg(long, env = "OCIS_API_URL")]
    pub ocis_api_url: Option<String>,
    /// OIDC client id of the oCIS service user (client_credentials).
    #[arg(long, env = "OCIS_CLIENT_ID")]
    pub ocis_client_id: Option<String>,
    /// OIDC client secret of the oCIS service user.
    #[arg(long, env = "OCIS_CLIENT_SECRET", hide_env_values = true)]
    pub ocis_client_secret: Option<String>,
    /// File holding the oCIS service user's client secret (read again when it changes).
    #[arg(long, env = "OCIS_CLIENT_SECRET_FILE")]
    pub ocis_client_secret_file: Option<PathBuf>,
    /// Token endpoint for the oCIS service user (default: from OIDC_ISSUER discovery).
    #[arg(long, env = "OIDC_TOKEN_URL")]
    pub oidc_token_url: Option<String>,
    /// `certificateManagement` of created Stalwart domains: `manual` or `automatic`.
    #[arg(
        long,
        env = "STALWART_CERTIFICATE_MANAGEMENT",
        default_value = "manual"
    )]
    pub stalwart_certificate_management: Management,
    /// `dnsManagement` of created Stalwart domains: `manual` or `automatic`.
    #[arg(long, env = "STALWART_DNS_MANAGEMENT", default_value = "manual")]
    pub stalwart_dns_management: Management,
    /// `dkimManagement` of created Stalwart domains: `manual` or `automatic`
    /// (Stalwart's own default is automatic; the provisioner sets it explicitly).
    #[arg(long, env = "STALWART_DKIM_MANAGEMENT", default_value = "manual")]
    pub stalwart_dkim_management: Management,
    /// Role of the tenant group on its oCIS space: `viewer`, `editor`, `manager` or a role id.
    #[arg(long, env = "OCIS_GROUP_ROLE", default_value = "editor")]
    pub ocis_group_role: String,
    /// Scope requested with the oCIS service user's client_credentials.
    #[arg(long, env = "OCIS_TOKEN_SCOPE", default_value = "openid profile email")]
    pub ocis_token_scope: String,
    /// Create the tenant group in oCIS when it does not exist yet (needs the Admin role).
    #[arg(long, env = "OCIS_CREATE_GROUPS", default_value_t = false)]
    pub ocis_create_groups: bool,
    /// Purge (not only disable) a deleted tenant's space.
    #[arg(long, env = "OCIS_PURGE_ON_DELETE", default_value_t = false)]
    pub ocis_purge_on_delete: bool,
    #[command(flatten)]
    pub limits: RateLimitArgs,
}

use dezky_core::http::limits::{DEFAULT_BURST, DEFAULT_QPS, OCIS_DEFAULT_BURST, OCIS_DEFAULT_QPS};

/// Request rate limit per upstream (token bucket; 0 = unlimited).
#[derive(Args, Clone, Debug, PartialEq, Eq)]
pub struct RateLimitArgs {
    /// Requests per second to Authentik, shared by all tenants (0 = unlimited).
    #[arg(long, env = "AUTHENTIK_QPS", default_value_t = DEFAULT_QPS)]
    pub authentik_qps: u32,
    /// Requests Authentik may get at once above its rate.
    #[arg(long, env = "AUTHENTIK_BURST", default_value_t = DEFAULT_BURST)]
    pub authentik_burst: u32,
    /// Requests per second to Stalwart (0 = unlimited).
    #[arg(long, env = "STALWART_QPS", default_value_t = DEFAULT_QPS)]
    pub stalwart_qps: u32,
    /// Requests Stalwart may get at once above its rate.
    #[arg(long, env = "STALWART_BURST", default_value_t = DEFAULT_BURST)]
    pub stalwart_burst: u32,
    /// Requests per second to oCIS (0 = unlimited).
    #[arg(long, env = "OCIS_QPS", default_value_t = OCIS_DEFAULT_QPS)]
    pub ocis_qps: u32,
    /// Requests oCIS may get at once above its rate.
    #[arg(long, env = "OCIS_BURST", default_value_t = OCIS_DEFAULT_BURST)]
    pub ocis_burst: u32,
}

impl Default for RateLimitArgs {
    fn default() -> Self {
        RateLimitArgs {
            authentik_qps: DEFAULT_QPS,
            authentik_burst: DEFAULT_BURST,
            stalwart_qps: DEFAULT_QPS,
            stalwart_burst: DEFAULT_BURST,
            ocis_qps: OCIS_DEFAULT_QPS,
            ocis_burst: OCIS_DEFAULT_BURST,
        }
    }
}
