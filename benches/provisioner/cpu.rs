//! CPU time a measurement costs: this bench process (controller, API tenant
//! cache, simulators and the bench itself) and `mongod`, per converged
//! tenant. Throughput on a shared 2-core machine moves by ±15% between runs;
//! CPU per tenant moves much less, so it shows what a change saved.

use std::time::Duration;

use dezky_core::store::Store;
use mongodb::bson::{doc, Document};

/// CPU time used so far by this process and by `mongod` (if it reports it).
#[derive(Clone, Copy, Debug)]
pub struct CpuTimes {
    own: Duration,
    mongod: Option<Duration>,
}

impl CpuTimes {
    pub async fn now(store: &Store) -> Self {
        CpuTimes {
            own: own_cpu(),
            mongod: mongod_cpu(store).await,
        }
    }

    /// `ms per tenant: this process X, mongod Y` between `self` and `later`.
    pub fn per_tenant(self, later: CpuTimes, tenants: usize) -> String {
        let per = |d: Duration| d.as_secs_f64() * 1000.0 / tenants.max(1) as f64;
        let mongod = match (self.mongod, later.mongod) {
            (Some(before), Some(after)) => format!("{:.2}", per(after.saturating_sub(before))),
            _ => "n/a".into(),
        };
        format!(
            "this process {:.2} ms, mongod {mongod} ms",
            per(later.own.saturating_sub(self.own))
        )
    }
}

/// User + system CPU time of this process (all threads).
fn own_cpu() -> Duration {
    // SAFETY: `getrusage` only writes the `rusage` it is given.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let time = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec.max(0) as u64) + Duration::from_micros(t.tv_usec.max(0) as u64)
    };
    time(usage.ru_utime) + time(usage.ru_stime)
}

/// `mongod`'s `serverStatus` document.
pub async fn server_status(store: &Store) -> Option<Document> {
    store
        .db
        .client()
        .database("admin")
        .run_command(doc! { "serverStatus": 1 })
        .await
        .ok()
}

/// `mongod`'s user + system CPU time (`serverStatus.extra_info`, Linux).
async fn mongod_cpu(store: &Store) -> Option<Duration> {
    let status = server_status(store).await?;
    let info: &Document = status.get_document("extra_info").ok()?;
    let micros = |key: &str| info.get_i64(key).ok().map(|v| v.max(0) as u64);
    Some(Duration::from_micros(
        micros("user_time_us")? + micros("system_time_us")?,
    ))
}
