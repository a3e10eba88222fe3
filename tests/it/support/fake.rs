//! A scriptable reconciler for runtime tests: counts calls per tenant and
//! mode, can fail, panic or stall on demand, and detects overlapping passes.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use dezky_controller::pass::Reconcilers;
use dezky_controller::reconcile::{Action, ActionKind, Mode, Outcome, Reconciler, SystemError};
use dezky_core::model::{System, Tenant};
use dezky_core::Id;

/// A fake reconciler for one system.
pub struct FakeReconciler {
    pub system: System,
    /// Passes per tenant (reconcile in Apply mode).
    applies: Mutex<HashMap<Id, usize>>,
    /// Passes per tenant in DryRun mode.
    dry_runs: Mutex<HashMap<Id, usize>>,
    /// Cleanups per tenant.
    cleanups: Mutex<HashMap<Id, usize>>,
    /// Tenants whose (pretend) upstream object exists.
    created: Mutex<HashSet<Id>>,
    /// Fail this many upcoming calls (reconcile or cleanup).
    pub fail_next: AtomicUsize,
    /// Panic in the next call.
    pub panic_next: AtomicBool,
    /// Stall each call this long.
    delay: Duration,
    running: Mutex<HashSet<Id>>,
    current: AtomicUsize,
    /// Most calls in progress at once, over all tenants.
    pub max_parallel: AtomicUsize,
    /// Set if two calls for one tenant ever overlapped.
    pub overlapped: AtomicBool,
}

impl FakeReconciler {
    pub fn slow(system: System, delay: Duration) -> Arc<Self> {
        Arc::new(FakeReconciler {
            system,
            applies: Mutex::default(),
            dry_runs: Mutex::default(),
            cleanups: Mutex::default(),
            created: Mutex::default(),
            fail_next: AtomicUsize::new(0),
            panic_next: AtomicBool::new(false),
            delay,
            running: Mutex::default(),
            current: AtomicUsize::new(0),
            max_parallel: AtomicUsize::new(0),
            overlapped: AtomicBool::new(false),
        })
    }

    pub fn applies(&self, id: Id) -> usize {
        self.applies.lock().unwrap().get(&id).copied().unwrap_or(0)
    }

    pub fn total_applies(&self) -> usize {
        self.applies.lock().unwrap().values().sum()
    }

    pub fn dry_runs(&self, id: Id) -> usize {
        self.dry_runs.lock().unwrap().get(&id).copied().unwrap_or(0)
    }

    pub fn cleanups(&self, id: Id) -> usize {
        self.cleanups.lock().unwrap().get(&id).copied().unwrap_or(0)
    }

    async fn call(
        &self,
        tenant: &Tenant,
        counter: &Mutex<HashMap<Id, usize>>,
    ) -> Result<(), SystemError> {
        if !self.running.lock().unwrap().insert(tenant.id) {
            self.overlapped.store(true, Ordering::SeqCst);
        }
        let now = self.current.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_parallel.fetch_max(now, Ordering::SeqCst);
        *counter.lock().unwrap().entry(tenant.id).or_insert(0) += 1;
        if !self.delay.is_zero() {
            tokio::time::sleep(self.delay).await;
        }
        self.current.fetch_sub(1, Ordering::SeqCst);
        self.running.lock().unwrap().remove(&tenant.id);
        if self.panic_next.swap(false, Ordering::SeqCst) {
            panic!("injected panic");
        }
        let failing = self
            .fail_next
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if failing {
            return Err(SystemError::new("UpstreamError", "injected failure"));
        }
        Ok(())
    }
}

#[async_trait]
impl Reconciler for FakeReconciler {
    fn system(&self) -> System {
        self.system
    }

    async fn reconcile(&self, tenant: &Tenant, mode: Mode) -> Result<Outcome, SystemError> {
        let counter = if mode == Mode::Apply {
            &self.applies
        } else {
            &self.dry_runs
        };
        self.call(tenant, counter).await?;
        let first = if mode == Mode::Apply {
            self.created.lock().unwrap().insert(tenant.id)
        } else {
            !self.created.lock().unwrap().contains(&tenant.id)
        };
        let object = format!("{} object of {}", self.system, tenant.slug);
        Ok(if first {
            Outcome::ok("Created", "created")
                .with_actions(vec![Action::new(ActionKind::Create, object)])
        } else {
            Outcome::ok("InSync", "in sync")
        }
        .with_external_id(format!("{}-{}", self.system, tenant.slug)))
    }

    async fn cleanup(&self, tenant: &Tenant, _mode: Mode) -> Result<Outcome, SystemError> {
        self.call(tenant, &self.cleanups).await?;
        Ok(Outcome::ok("Deleted", "deleted"))
    }
}

/// One fake per system, and the map the controller takes.
pub struct Fakes {
    pub authentik: Arc<FakeReconciler>,
    pub stalwart: Arc<FakeReconciler>,
    pub ocis: Arc<FakeReconciler>,
}

impl Fakes {
    pub fn new() -> Self {
        Self::slow(Duration::ZERO)
    }

    pub fn slow(delay: Duration) -> Self {
        Fakes {
            authentik: FakeReconciler::slow(System::Authentik, delay),
            stalwart: FakeReconciler::slow(System::Stalwart, delay),
            ocis: FakeReconciler::slow(System::Ocis, delay),
        }
    }

    pub fn all(&self) -> [&Arc<FakeReconciler>; 3] {
        [&self.authentik, &self.stalwart, &self.ocis]
    }

    pub fn reconcilers(&self) -> Reconcilers {
        let mut map = Reconcilers::new();
        for fake in self.all() {
            map.insert(fake.system(), fake.clone() as Arc<dyn Reconciler>);
        }
        map
    }
}
