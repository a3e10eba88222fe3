//! What the end-to-end tests share: a [`Stack`] (simulators and a fresh
//! database), [`Provisioner`] child processes configured against it
//! (killed when dropped; their log is printed if the test fails), and an
//! [`Api`] client acting as a synced platform admin.

use std::fs::File;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use dezky_core::plans::{PlanQuotas, DEFAULT_PLAN_QUOTAS};
use dezky_core::store::Store;
use dezky_simulators::suite::{Ports, Simulators};
use reqwest::Method;
use serde_json::{json, Value};
use tokio::process::{Child, Command};

use crate::support::api::{Reply, ADMIN_GROUP};
use crate::support::mongo;
use crate::support::wait::until;

/// Start-up of a debug binary on the shared 2-core machine, until `/readyz`.
pub const READY_LIMIT: Duration = Duration::from_secs(30);
/// From a change (or a manual reconcile) to converged upstreams.
pub const CONVERGE_LIMIT: Duration = Duration::from_secs(20);
/// From SIGTERM to the exit of a process.
const EXIT_LIMIT: Duration = Duration::from_secs(15);
/// Timeout of every request of the test client (above the longest `?wait=`).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(40);
/// Lines of a child's log shown when a test fails.
const LOG_TAIL: usize = 60;

/// The simulators and a database no other test uses.
pub struct Stack {
    pub sims: Simulators,
    /// `MONGODB_DB` of every process of this test.
    pub db: String,
}

impl Stack {
    pub async fn start() -> Self {
        let sims = Simulators::start(Ports::default())
            .await
            .expect("start the simulators");
        let db = format!(
            "dezky_e2e_{}_{}",
            std::process::id(),
            &uuid::Uuid::new_v4().simple().to_string()[..12]
        );
        Stack { sims, db }
    }

    /// A direct connection to the test database (as an operator would look).
    pub async fn store(&self) -> Store {
        mongo::store_on(&self.db).await
    }

    /// `provisioner <command>` with the default test settings, ready.
    pub async fn spawn(&self, command: &str) -> Provisioner {
        self.spawn_with(command, &[]).await
    }

    /// `provisioner <command>` with `extra` environment on top of the
    /// defaults: this stack's simulators and database, a free port, no
    /// default tenant, a 2 s lease, no periodic resync within a test, fast
    /// backoff. Returns once `/readyz` answers 200.
    pub async fn spawn_with(&self, command: &str, extra: &[(&str, &str)]) -> Provisioner {
        self.spawn_on(command, extra, Some(mongo::uri())).await
    }

    /// [`Stack::spawn_with`], without the default environment `removed`.
    pub async fn spawn_without(
        &self,
        command: &str,
        extra: &[(&str, &str)],
        removed: &[&str],
    ) -> Provisioner {
        self.spawn_filtered(command, extra, Some(mongo::uri()), removed)
            .await
    }

    /// `provisioner <command>` with the embedded MongoDB (no `MONGODB_URI`):
    /// it starts its own `mongod` with data in `data_dir` on `mongod_port`.
    pub async fn spawn_embedded(
        &self,
        command: &str,
        data_dir: &std::path::Path,
        mongod_port: u16,
    ) -> Provisioner {
        let bin = dezky_core::mongo::find_mongod().expect("a mongod binary");
        let extra = [
            ("MONGOD_BIN", bin.to_str().expect("a UTF-8 path")),
            ("MONGOD_DATA_DIR", data_dir.to_str().expect("a UTF-8 path")),
            ("MONGOD_PORT", &mongod_port.to_string()),
        ];
        self.spawn_on(command, &extra, None).await
    }

    async fn spawn_on(
        &self,
        command: &str,
        extra: &[(&str, &str)],
        mongodb_uri: Option<&str>,
    ) -> Provisioner {
        self.spawn_filtered(command, extra, mongodb_uri, &[]).await
    }

    async fn spawn_filtered(
        &self,
        command: &str,
        extra: &[(&str, &str)],
        mongodb_uri: Option<&str>,
        removed: &[&str],
    ) -> Provisioner {
        let port = free_port();
        let log = log_path(&self.db, command, port);
        let out = File::create(&log).expect("create the log file");
        let err = out.try_clone().expect("clone the log file");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_provisioner"));
        match mongodb_uri {
            Some(uri) => cmd.env("MONGODB_URI", uri),
            None => cmd.env_remove("MONGODB_URI"),
        };
        // A process group of its own, like a service under a supervisor.
        cmd.process_group(0);
        let defaults = self.sims.env().into_iter();
        cmd.arg(command)
            .envs(defaults.filter(|(name, _)| !removed.contains(name)))
            .env("MONGODB_DB", &self.db)
            .env("LISTEN_ADDR", format!("127.0.0.1:{port}"))
            .env("DEFAULT_TENANT_SLUG", "")
            .env("LEASE_DURATION", "2s")
            .env("RESYNC_INTERVAL", "1h")
            .env("BACKOFF_BASE", "200ms")
            .env("BACKOFF_MAX", "1s")
            .env("RUST_LOG", "info,dezky_controller=debug")
            .envs(extra.iter().copied())
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .kill_on_drop(true);
        let child = cmd.spawn().expect("spawn the provisioner");
        let pid = child.id().expect("a running child has a pid");
        let mut process = Provisioner {
            child,
            pid,
            url: format!("http://127.0.0.1:{port}"),
            log,
            name: command.to_string(),
        };
        process.wait_ready().await;
        process
    }

    /// A platform admin (group `dezky-admins`) of `process`'s API, synced
    /// with `GET /users/me`.
    pub async fn admin(&self, process: &Provisioner) -> Api {
        let api = self.client(
            process,
            json!({
                "sub": "e2e-admin",
                "email": "e2e-admin@dezky.test",
                "name": "E2E Admin",
                "groups": [ADMIN_GROUP],
            }),
        );
        let me = api.get("/users/me").await.expect_status(200);
        assert_eq!(me.body["user"]["platformAdmin"], true, "{}", me.body);
        api
    }
}

impl Stack {
    /// A client of `process`'s API with a token carrying `claims` (not
    /// synced: no `GET /users/me` is sent).
    pub fn client(&self, process: &Provisioner, claims: Value) -> Api {
        Api {
            http: reqwest::Client::builder()
                .timeout(REQUEST_TIMEOUT)
                .build()
                .expect("an HTTP client"),
            url: process.url.clone(),
            token: self.sims.authentik.oidc().mint(claims),
        }
    }
}

/// A running `provisioner` child; killed (SIGKILL) when dropped.
pub struct Provisioner {
    child: Child,
    /// Its process id (part of its controller lease holder id).
    pub pid: u32,
    /// `http://127.0.0.1:<LISTEN_ADDR port>`.
    pub url: String,
    /// Its stdout and stderr.
    pub log: PathBuf,
    name: String,
}

impl Provisioner {
    async fn wait_ready(&mut self) {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .expect("an HTTP client");
        let url = format!("{}/readyz", self.url);
        let what = format!("{} ready at {url} (log {})", self.name, self.log.display());
        let child = &mut self.child;
        until(&what, READY_LIMIT, || {
            let exited = child.try_wait().ok().flatten();
            let probe = http.get(&url).send();
            async move {
                if let Some(status) = exited {
                    panic!("the provisioner exited during start-up ({status})");
                }
                probe.await.ok().filter(|r| r.status() == 200).map(drop)
            }
        })
        .await;
    }

    /// SIGKILL, as a crash would; returns once the process is gone.
    pub async fn kill(&mut self) {
        self.child.kill().await.expect("kill the provisioner");
    }

    /// SIGTERM (graceful shutdown); returns the exit status.
    pub async fn terminate(&mut self) -> ExitStatus {
        self.signal_and_wait(&self.pid.to_string()).await
    }

    /// SIGTERM to its whole process group, as `timeout`, a terminal's
    /// Ctrl-C or a container runtime send it; returns the exit status.
    pub async fn terminate_group(&mut self) -> ExitStatus {
        self.signal_and_wait(&format!("-{}", self.pid)).await
    }

    /// `kill -TERM -- <target>`, then waits for the exit.
    async fn signal_and_wait(&mut self, target: &str) -> ExitStatus {
        let sent = std::process::Command::new("kill")
            .args(["-TERM", "--", target])
            .status()
            .expect("run kill");
        assert!(sent.success(), "SIGTERM delivered to {target}");
        tokio::time::timeout(EXIT_LIMIT, self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("{} did not exit {EXIT_LIMIT:?} after SIGTERM", self.name))
            .expect("wait for the provisioner")
    }
}

impl Drop for Provisioner {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
        if std::thread::panicking() {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            let lines: Vec<&str> = log.lines().collect();
            let tail = lines[lines.len().saturating_sub(LOG_TAIL)..].join("\n");
            eprintln!(
                "--- last lines of {} (pid {}, {}) ---\n{tail}",
                self.name,
                self.pid,
                self.log.display()
            );
        }
    }
}

/// An HTTP client of the API, acting as one user.
pub struct Api {
    http: reqwest::Client,
    url: String,
    token: String,
}

impl Api {
    /// The bearer token this client sends.
    pub fn token(&self) -> &str {
        &self.token
    }

    pub async fn send(&self, method: Method, path: &str, body: Option<Value>) -> Reply {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("the API answers");
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.expect("a body");
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Reply {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Reply {
        self.send(Method::POST, path, Some(body)).await
    }

    pub async fn patch(&self, path: &str, body: Value) -> Reply {
        self.send(Method::PATCH, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> Reply {
        self.send(Method::DELETE, path, None).await
    }

    /// `POST /tenants` (plan `team`); the 201 body.
    pub async fn create_tenant(&self, slug: &str, name: &str, domains: &[&str]) -> Value {
        self.post(
            "/tenants",
            json!({ "slug": slug, "name": name, "plan": "team", "domains": domains }),
        )
        .await
        .expect_status(201)
        .body
    }

    /// `GET /tenants/{slug}` (must exist).
    pub async fn tenant(&self, slug: &str) -> Value {
        self.get(&format!("/tenants/{slug}"))
            .await
            .expect_status(200)
            .body
    }

    /// Waits until `GET /tenants/{slug}` satisfies `check`; returns it.
    pub async fn tenant_until(&self, slug: &str, what: &str, check: fn(&Value) -> bool) -> Value {
        let what = format!("{slug}: {what}");
        until(&what, CONVERGE_LIMIT, || async {
            Some(self.tenant(slug).await).filter(check)
        })
        .await
    }

    /// Waits until the tenant is [`converged`]; returns it.
    pub async fn converged(&self, slug: &str) -> Value {
        self.tenant_until(slug, "active with every system ok", converged)
            .await
    }

    /// Waits until the tenant is [`converged`] and quiet: a manual
    /// reconcile handled after that proves no trigger from before (e.g. the
    /// insert event a controller also sees in its start-up relist) is still
    /// queued to race a test's out-of-band changes. Returns the tenant.
    pub async fn settled(&self, slug: &str) -> Value {
        self.converged(slug).await;
        let tenant = self.reconcile(slug).await;
        assert!(converged(&tenant), "still converged: {tenant}");
        tenant
    }

    /// Posts a manual reconcile and waits until the controller handled it
    /// (without `?wait`, so it works on any API); returns the tenant.
    pub async fn reconcile(&self, slug: &str) -> Value {
        let reply = self
            .post(&format!("/tenants/{slug}/reconcile"), json!({}))
            .await
            .expect_status(202);
        let token = reply.body["token"].as_str().expect("a reconcile token");
        self.reconcile_handled(slug, token).await
    }

    /// Waits until `status.lastHandledReconcileToken` is `token`; returns the tenant.
    pub async fn reconcile_handled(&self, slug: &str, token: &str) -> Value {
        let what = format!("{slug}: reconcile {token} handled");
        until(&what, CONVERGE_LIMIT, || async {
            let tenant = self.tenant(slug).await;
            (tenant["status"]["lastHandledReconcileToken"] == token).then_some(tenant)
        })
        .await
    }

    /// Every event of the tenant (newest first), all pages.
    pub async fn events(&self, slug: &str) -> Vec<Value> {
        let mut items = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let path = match &cursor {
                Some(c) => format!("/tenants/{slug}/events?limit=500&cursor={c}"),
                None => format!("/tenants/{slug}/events?limit=500"),
            };
            let page = self.get(&path).await.expect_status(200).body;
            items.extend(page["items"].as_array().cloned().unwrap_or_default());
            match page["nextCursor"].as_str() {
                Some(next) => cursor = Some(next.to_string()),
                None => return items,
            }
        }
    }
}

/// The three systems, as named in `status.systems`.
pub const SYSTEMS: [&str; 3] = ["authentik", "stalwart", "ocis"];

/// Phase `active` at the current generation, every system `ok` at it.
pub fn converged(tenant: &Value) -> bool {
    let generation = &tenant["generation"];
    let status = &tenant["status"];
    status["phase"] == "active"
        && status["observedGeneration"] == *generation
        && SYSTEMS.iter().all(|s| {
            let system = &status["systems"][s];
            system["state"] == "ok" && system["observedGeneration"] == *generation
        })
}

/// `status.systems.<system>.driftCorrections`.
pub fn drift_corrections(tenant: &Value, system: &str) -> u64 {
    tenant["status"]["systems"][system]["driftCorrections"]
        .as_u64()
        .unwrap_or(0)
}

/// Whether `events` has one with this system and action.
pub fn has_event(events: &[Value], system: &str, action: &str) -> bool {
    events
        .iter()
        .any(|e| e["system"] == system && e["action"] == action)
}

/// Quota of `plan` in the default `PLAN_QUOTAS`.
pub fn plan_quota(plan: &str) -> u64 {
    let plans: PlanQuotas = DEFAULT_PLAN_QUOTAS.parse().expect("the default plans");
    plans.quota(plan).expect("a default plan")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

fn log_path(db: &str, command: &str, port: u16) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("e2e-logs");
    std::fs::create_dir_all(&dir).expect("create the log directory");
    dir.join(format!("{db}-{command}-{port}.log"))
}
