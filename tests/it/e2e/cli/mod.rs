//! The real binary's client commands (`provisioner tenants ...`, `login`,
//! `logout`) against a running `provisioner serve` and the simulators: a
//! [`Cli`] runs one command as a user would (its own config directory,
//! `DEZKY_SERVER`, optionally `DEZKY_TOKEN`) and keeps stdout, stderr and
//! the exit code.

mod apply;
mod commands;
mod login;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;

use super::harness::{Api, Provisioner, Stack};

/// Longest run of one client command (`--wait`s inside are shorter).
const COMMAND_LIMIT: Duration = Duration::from_secs(90);

/// How the client commands of one test are run.
pub struct Cli {
    server: String,
    /// `DEZKY_TOKEN`; `None` to use the stored login.
    token: Option<String>,
    /// `XDG_CONFIG_HOME` of the commands (the stored login lives there).
    config: tempfile::TempDir,
}

/// What one command did.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Panics (showing both streams) unless the exit code is `code`.
    #[track_caller]
    pub fn expect_code(self, code: i32) -> Self {
        assert_eq!(
            self.code, code,
            "exit code\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }
}

impl Cli {
    /// Client of `serve`, sending `token` (or the stored login without one).
    pub fn new(serve: &Provisioner, token: Option<&str>) -> Self {
        Cli {
            server: serve.url.clone(),
            token: token.map(str::to_string),
            config: tempfile::tempdir().expect("a config directory"),
        }
    }

    /// The command with this test's environment, ready to spawn.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_provisioner"));
        command
            .args(args)
            .env("DEZKY_SERVER", &self.server)
            .env("XDG_CONFIG_HOME", self.config.path())
            .env_remove("DEZKY_TOKEN")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .kill_on_drop(true);
        if let Some(token) = &self.token {
            command.env("DEZKY_TOKEN", token);
        }
        command
    }

    /// Runs `provisioner <args>` to its end.
    pub async fn run(&self, args: &[&str]) -> Run {
        let output = tokio::time::timeout(COMMAND_LIMIT, self.command(args).output())
            .await
            .unwrap_or_else(|_| panic!("provisioner {args:?} finished within {COMMAND_LIMIT:?}"))
            .expect("run the provisioner");
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// The stored-login file of these commands.
    pub fn credentials(&self) -> PathBuf {
        self.config.path().join("dezky").join("credentials.json")
    }
}

/// The start of most client tests: the stack, `provisioner serve`, an
/// admin's API client and a [`Cli`] with the admin's token, and an empty
/// manifest directory.
pub struct AdminCli {
    pub stack: Stack,
    pub serve: Provisioner,
    pub api: Api,
    pub cli: Cli,
    pub dir: tempfile::TempDir,
}

impl AdminCli {
    pub async fn start() -> Self {
        let stack = Stack::start().await;
        let serve = stack.spawn("serve").await;
        let api = stack.admin(&serve).await;
        let cli = Cli::new(&serve, Some(api.token()));
        let dir = tempfile::tempdir().expect("a manifest directory");
        AdminCli {
            stack,
            serve,
            api,
            cli,
            dir,
        }
    }
}

/// A tenant manifest (YAML) for `slug`.
pub fn manifest(slug: &str, name: &str, domains: &[&str]) -> String {
    let domains = domains.join(", ");
    format!(
        "apiVersion: dezky.io/v1\nkind: Tenant\nmetadata:\n  slug: {slug}\nspec:\n  name: {name}\n  plan: team\n  domains: [{domains}]\n"
    )
}

/// Writes `text` to `dir/name`.
pub fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).expect("write a manifest");
}

/// `tenant/<slug> <outcome>` lines of an apply, in order.
pub fn outcomes(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .filter(|l| l.starts_with("tenant/") && !l.contains(": "))
        .map(str::to_string)
        .collect()
}
