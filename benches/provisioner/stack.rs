//! The system under benchmark, all in this process on loopback: the API
//! (`dezky_api::build` on a fresh database of the shared `mongod`), a
//! controller, and either instant fake reconcilers or the three real
//! reconcilers against the Authentik, Stalwart and oCIS simulators. Every
//! reconciler is wrapped in [`Counted`] so passes per tenant can be read.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use dezky_controller::pass::Reconcilers;
use dezky_controller::reconcile::authentik::AuthentikReconciler;
use dezky_controller::reconcile::ocis::{OcisReconciler, OcisSettings};
use dezky_controller::reconcile::stalwart::{StalwartReconciler, StalwartSettings};
use dezky_controller::reconcile::{Mode, Outcome, Reconciler, SystemError};
use dezky_controller::{Controller, ControllerConfig, ControllerHealth};
use dezky_core::http::{RateLimit, UpstreamGuard};
use dezky_core::model::{System, Tenant};
use dezky_core::store::Store;
use dezky_core::Id;
use dezky_simulators::authentik::{AuthentikSim, AuthentikSimOptions};
use dezky_simulators::ocis::{OcisSim, OcisSimOptions};
use dezky_simulators::oidc::OidcSim;
use dezky_simulators::stalwart::{StalwartSim, StalwartSimOptions, DEFAULT_API_KEY};
use dezky_upstream::authentik::AuthentikClient;
use dezky_upstream::ocis::OcisClient;
use dezky_upstream::oidc_token::TokenSource;
use dezky_upstream::stalwart::{StalwartAuth, StalwartClient};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::support::api::TestApi;
use crate::support::fake::Fakes;

/// oCIS service account the oCIS reconciler gets tokens for.
const OCIS_CLIENT: (&str, &str) = ("ocis-provisioner", "bench-secret");

/// What the controller reconciles against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// Fake reconcilers that answer at once (the runtime alone).
    Instant,
    /// The real reconcilers over HTTP against the simulators.
    Simulated,
}

impl Backend {
    pub fn label(self) -> &'static str {
        match self {
            Backend::Instant => "instant fake reconcilers",
            Backend::Simulated => "real reconcilers + simulators",
        }
    }
}

/// Reconciler calls (Apply or DryRun) per tenant and system.
#[derive(Default)]
pub struct CallLog(Mutex<HashMap<(Id, System), u32>>);

impl CallLog {
    fn record(&self, id: Id, system: System) {
        let mut calls = self.0.lock().unwrap_or_else(|p| p.into_inner());
        *calls.entry((id, system)).or_default() += 1;
    }

    /// Calls per (tenant, system) pair over the tenants seen: the mean and the most.
    pub fn per_tenant_and_system(&self) -> (f64, u32, usize) {
        let calls = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let total: u32 = calls.values().sum();
        let most = calls.values().copied().max().unwrap_or(0);
        let mean = if calls.is_empty() {
            0.0
        } else {
            f64::from(total) / calls.len() as f64
        };
        (mean, most, calls.len())
    }

    /// Calls recorded so far, over every tenant and system.
    pub fn total(&self) -> u64 {
        let calls = self.0.lock().unwrap_or_else(|p| p.into_inner());
        calls.values().map(|&n| u64::from(n)).sum()
    }
}

/// A reconciler that records each reconcile call in a [`CallLog`].
struct Counted {
    inner: Arc<dyn Reconciler>,
    log: Arc<CallLog>,
}

#[async_trait]
impl Reconciler for Counted {
    fn system(&self) -> System {
        self.inner.system()
    }

    async fn reconcile(&self, tenant: &Tenant, mode: Mode) -> Result<Outcome, SystemError> {
        self.log.record(tenant.id, self.inner.system());
        self.inner.reconcile(tenant, mode).await
    }

    async fn resync(&self, tenant: &Tenant, mode: Mode) -> Result<Outcome, SystemError> {
        self.log.record(tenant.id, self.inner.system());
        self.inner.resync(tenant, mode).await
    }

    async fn cleanup(&self, tenant: &Tenant, mode: Mode) -> Result<Outcome, SystemError> {
        self.inner.cleanup(tenant, mode).await
    }
}

/// Requests (all / non-GET) each simulator received, and tokens issued.
#[derive(Clone, Copy, Debug, Default)]
pub struct Traffic {
    pub authentik: (u64, u64),
    pub stalwart: (u64, u64),
    pub ocis: (u64, u64),
    /// JMAP `*/set` method calls Stalwart received (its reads are POSTs too).
    pub stalwart_sets: u64,
    /// oCIS project-drive lists (each create's check that its space is missing).
    pub ocis_lists: u64,
    /// oCIS group lookups and creates (a new tenant's run while its create
    /// check waits for a drive list).
    pub ocis_group_calls: u64,
    /// oCIS project spaces created (each waited for one whole drive list).
    pub ocis_space_creates: u64,
    pub token_requests: u64,
}

impl Traffic {
    /// `self - earlier`, counter by counter.
    pub fn since(self, earlier: Traffic) -> Traffic {
        let d = |a: (u64, u64), b: (u64, u64)| (a.0 - b.0, a.1 - b.1);
        Traffic {
            authentik: d(self.authentik, earlier.authentik),
            stalwart: d(self.stalwart, earlier.stalwart),
            ocis: d(self.ocis, earlier.ocis),
            stalwart_sets: self.stalwart_sets - earlier.stalwart_sets,
            ocis_lists: self.ocis_lists - earlier.ocis_lists,
            ocis_group_calls: self.ocis_group_calls - earlier.ocis_group_calls,
            ocis_space_creates: self.ocis_space_creates - earlier.ocis_space_creates,
            token_requests: self.token_requests - earlier.token_requests,
        }
    }
}

/// The three simulated upstreams.
pub struct Upstreams {
    pub authentik: AuthentikSim,
    pub stalwart: StalwartSim,
    pub ocis: OcisSim,
}

impl Upstreams {
    /// Starts the simulators; oCIS trusts tokens of `oidc`, where the oCIS
    /// service account is registered.
    async fn start(oidc: &OidcSim) -> Self {
        oidc.register_client(OCIS_CLIENT.0, OCIS_CLIENT.1, "svc-ocis-provisioner");
        let authentik = AuthentikSim::start(AuthentikSimOptions::default())
            .await
            .expect("start the Authentik simulator");
        let stalwart = StalwartSim::start(StalwartSimOptions::default())
            .await
            .expect("start the Stalwart simulator");
        let ocis = OcisSim::start(OcisSimOptions {
            jwks_url: oidc.jwks_url(),
            issuer: Some(oidc.issuer()),
            null_empty_list: false,
        })
        .await
        .expect("start the oCIS simulator");
        Upstreams {
            authentik,
            stalwart,
            ocis,
        }
    }

    /// The real reconcilers, configured as `provisioner` would be for these
    /// URLs, each upstream behind a token bucket of `limit` (qps, burst) if set.
    fn reconcilers(&self, oidc: &OidcSim, limits: Option<Limits>) -> Reconcilers {
        let guard = |system| {
            let rate = limits.and_then(|l| {
                let (qps, burst) = l.of(system);
                RateLimit::new(qps, burst)
            });
            Arc::new(UpstreamGuard::new(system, rate))
        };
        let http = dezky_core::http::client(None, Duration::from_secs(10)).expect("HTTP client");
        let authentik = AuthentikClient::new(
            http.clone(),
            &self.authentik.url(),
            self.authentik.api_token(),
        )
        .expect("Authentik client")
        .with_guard(guard("authentik"));
        let stalwart = StalwartClient::new(
            http.clone(),
            &self.stalwart.url(),
            StalwartAuth::Bearer(DEFAULT_API_KEY.into()),
        )
        .with_guard(guard("stalwart"));
        let ocis_guard = guard("ocis");
        let tokens = Arc::new(
            TokenSource::new(
                http.clone(),
                oidc.token_url(),
                OCIS_CLIENT.0,
                OCIS_CLIENT.1,
                "openid profile email",
            )
            .with_guard(ocis_guard.clone()),
        );
        let ocis = Arc::new(OcisClient::new(http, &self.ocis.url(), tokens).with_guard(ocis_guard));
        let mut map = Reconcilers::new();
        map.insert(
            System::Authentik,
            Arc::new(AuthentikReconciler::new(
                authentik,
                "tenant-",
                Duration::from_secs(3600),
            )),
        );
        map.insert(
            System::Stalwart,
            Arc::new(StalwartReconciler::new(
                stalwart,
                StalwartSettings::default(),
                Duration::from_secs(3600),
            )),
        );
        let settings = OcisSettings {
            create_groups: true,
            ..OcisSettings::default()
        };
        map.insert(
            System::Ocis,
            Arc::new(OcisReconciler::new(
                ocis,
                settings,
                Duration::from_secs(3600),
            )),
        );
        map
    }
}

/// Request rate limits per upstream: (requests a second, burst).
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub authentik: (u32, u32),
    pub stalwart: (u32, u32),
    pub ocis: (u32, u32),
}

impl Limits {
    fn of(&self, system: &str) -> (u32, u32) {
        match system {
            "authentik" => self.authentik,
            "stalwart" => self.stalwart,
            _ => self.ocis,
        }
    }
}

impl std::fmt::Display for Limits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ((aq, ab), (sq, sb), (oq, ob)) = (self.authentik, self.stalwart, self.ocis);
        write!(f, "Authentik {aq}/{ab}, Stalwart {sq}/{sb}, oCIS {oq}/{ob}")
    }
}

/// API + store + (optional) simulators + call log; the controller is started separately.
pub struct Stack {
    pub api: TestApi,
    pub upstreams: Option<Upstreams>,
    pub calls: Arc<CallLog>,
}

impl Stack {
    pub async fn start(backend: Backend) -> Self {
        let api = TestApi::start().await;
        let upstreams = match backend {
            Backend::Instant => None,
            Backend::Simulated => Some(Upstreams::start(&api.oidc).await),
        };
        Stack {
            api,
            upstreams,
            calls: Arc::default(),
        }
    }

    pub fn store(&self) -> &Store {
        &self.api.store
    }

    /// A platform admin's token for `subject`, synced once by `GET
    /// /users/me` as a real admin's first request would.
    pub async fn synced_admin_token(&self, subject: &str) -> String {
        self.synced_token(subject, &[crate::support::api::ADMIN_GROUP])
            .await
    }

    /// A token for `subject` with `groups`, synced once by `GET /users/me`.
    pub async fn synced_token(&self, subject: &str, groups: &[&str]) -> String {
        let token = self.api.token(subject, groups);
        self.api
            .with_token(&token)
            .get("/users/me")
            .await
            .expect_status(200);
        token
    }

    /// The reconcilers of this backend, each counted in [`Stack::calls`].
    pub fn reconcilers(&self) -> Reconcilers {
        self.reconcilers_limited(None)
    }

    /// [`Stack::reconcilers`], each upstream limited as `limits` say.
    pub fn reconcilers_limited(&self, limits: Option<Limits>) -> Reconcilers {
        let inner = match &self.upstreams {
            None => Fakes::new().reconcilers(),
            Some(upstreams) => upstreams.reconcilers(&self.api.oidc, limits),
        };
        inner
            .into_iter()
            .map(|(system, inner)| {
                let counted: Arc<dyn Reconciler> = Arc::new(Counted {
                    inner,
                    log: self.calls.clone(),
                });
                (system, counted)
            })
            .collect()
    }

    /// Simulator counters now (zero with instant reconcilers).
    pub fn traffic(&self) -> Traffic {
        let Some(u) = &self.upstreams else {
            return Traffic::default();
        };
        let of = |f: &dezky_simulators::faults::Faults| (f.requests(), f.writes());
        Traffic {
            authentik: of(u.authentik.faults()),
            stalwart: of(u.stalwart.faults()),
            ocis: of(u.ocis.faults()),
            stalwart_sets: jmap_sets(&u.stalwart),
            ocis_lists: u.ocis.recorder().count("GET", "/graph/v1.0/drives"),
            ocis_group_calls: u
                .ocis
                .recorder()
                .count("GET", "/graph/v1.0/groups/{name_or_id}")
                + u.ocis.recorder().count("POST", "/graph/v1.0/groups"),
            ocis_space_creates: u.ocis.recorder().count("POST", "/graph/v1.0/drives"),
            token_requests: self.api.oidc.token_requests(),
        }
    }

    /// A controller of this stack, running and holding the lease.
    pub async fn leading_controller(&self, concurrency: usize) -> Running {
        self.leading_controller_with(config(concurrency)).await
    }

    /// A controller with `config`, running and holding the lease.
    pub async fn leading_controller_with(&self, config: ControllerConfig) -> Running {
        let running = Running::start(self.store(), self.reconcilers(), config);
        running.wait_leader(Duration::from_secs(15)).await;
        running
    }
}

/// JMAP `*/set` method calls `stalwart` received.
fn jmap_sets(stalwart: &StalwartSim) -> u64 {
    stalwart
        .method_calls()
        .iter()
        .filter(|(name, _)| name.ends_with("/set"))
        .map(|(_, calls)| calls)
        .sum()
}

/// Benchmark tunables: no resync during a measurement, lease 2 s.
pub fn config(concurrency: usize) -> ControllerConfig {
    ControllerConfig {
        resync_interval: Duration::from_secs(3600),
        concurrency,
        backoff_base: Duration::from_millis(200),
        backoff_max: Duration::from_secs(5),
        reconcile_timeout: Duration::from_secs(10),
        lease_duration: Duration::from_secs(2),
        shutdown_grace: Duration::from_secs(5),
    }
}

/// A controller running in a task of its own.
pub struct Running {
    stop: CancellationToken,
    task: JoinHandle<()>,
    pub health: Arc<ControllerHealth>,
}

impl Running {
    pub fn start(store: &Store, reconcilers: Reconcilers, config: ControllerConfig) -> Self {
        let controller = Controller::new(store.clone(), reconcilers, config);
        let health = controller.health();
        let stop = CancellationToken::new();
        let task = tokio::spawn(controller.run(stop.clone()));
        Running { stop, task, health }
    }

    /// Waits until this controller holds the lease; panics after `limit`.
    pub async fn wait_leader(&self, limit: Duration) -> Duration {
        let started = Instant::now();
        while !self.health.is_leader() {
            assert!(started.elapsed() < limit, "no leadership within {limit:?}");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        started.elapsed()
    }

    /// Graceful stop (finish in-flight passes, release the lease), bounded.
    pub async fn shutdown(self) {
        self.stop.cancel();
        if tokio::time::timeout(Duration::from_secs(15), self.task)
            .await
            .is_err()
        {
            println!("  (controller did not stop within 15 s)");
        }
    }

    /// A crash: the task is aborted, the lease is not released.
    pub async fn kill(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}
