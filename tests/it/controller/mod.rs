//! The controller runtime against a real `mongod`, with fake reconcilers
//! that count calls (DESIGN §6).

mod batching;
mod deletion;
mod fleet;
mod group;
mod ha;
mod history;
mod migration;
mod requests;
mod triggers;

use std::time::Duration;

use dezky_controller::pass::Reconcilers;
use dezky_controller::{Controller, ControllerConfig, ControllerHealth};
use dezky_core::store::Store;
use std::sync::Arc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// How long tests wait for the controller to get somewhere.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// Test tunables: no resync noise, fast backoff, short lease.
pub fn config() -> ControllerConfig {
    ControllerConfig {
        resync_interval: Duration::from_secs(3600),
        concurrency: 4,
        backoff_base: Duration::from_millis(50),
        backoff_max: Duration::from_millis(400),
        reconcile_timeout: Duration::from_secs(5),
        lease_duration: Duration::from_secs(2),
        shutdown_grace: Duration::from_secs(5),
    }
}

/// A controller running in the background.
pub struct Running {
    pub stop: CancellationToken,
    pub task: JoinHandle<()>,
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

    /// Starts a controller and waits until it leads and has listed every
    /// tenant, so later inserts reach it only through the change stream.
    pub async fn start_synced(
        store: &Store,
        reconcilers: Reconcilers,
        config: ControllerConfig,
    ) -> Self {
        let running = Self::start(store, reconcilers, config);
        let health = running.health.clone();
        crate::support::wait::until("controller synced", PATIENCE, || {
            let health = health.clone();
            async move { health.is_synced().then_some(()) }
        })
        .await;
        running
    }

    /// Graceful stop (SIGTERM path): finishes work, releases the lease.
    pub async fn shutdown(self) {
        self.stop.cancel();
        tokio::time::timeout(PATIENCE, self.task)
            .await
            .expect("controller stops in time")
            .expect("controller task ends cleanly");
    }

    /// A crash: the task is aborted, nothing is released.
    pub async fn kill(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}
