//! Leader failover: two controllers on one database with a 2 s lease; the
//! leader crashes and the time until the standby holds the lease is
//! measured.
//!
//! - Process crash (the figure): two `provisioner controller` processes
//!   (the real binary, no upstream configured); the leader gets SIGKILL;
//!   leadership is read from each one's `/metrics` (`controller_leader`).
//!   Repeated `rounds` times, the survivor leading against a new standby.
//! - Task abort: the same with two in-process [`Controller`]s whose
//!   leader's task is aborted, as the integration test does.
//!
//! [`Controller`]: dezky_controller::Controller

use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::process::{Child, Command};

use crate::report::{heading, ms, Percentiles, Summary};
use crate::stack::{config, Backend, Running, Stack};
use crate::support::mongo;

/// Longest wait for a controller to start or a standby to take over.
const LIMIT: Duration = Duration::from_secs(15);

pub async fn failover(rounds: usize, summary: &mut Summary) {
    let lease = config(1).lease_duration;
    heading(&format!(
        "leader failover, lease {lease:?}, {rounds} rounds"
    ));
    let setup = format!("lease {lease:?}, standby retries every {:?}", lease / 3);
    let processes = process_crashes(rounds, lease).await;
    summary.add(
        "leader failover, process SIGKILL (median)",
        describe(&processes),
        format!(
            "{setup}; two `provisioner controller` processes; {}/{rounds} took over",
            processes.len()
        ),
    );
    let tasks = task_abort(lease).await;
    summary.add(
        "leader failover, in-process task abort",
        describe(&tasks),
        format!("{setup}; two in-process controllers, leader task aborted"),
    );
}

fn describe(samples: &[Duration]) -> String {
    Percentiles::of(samples)
        .map(|p| format!("{} (max {})", ms(p.p50), ms(p.max)))
        .unwrap_or_else(|| format!("no takeover within {LIMIT:?}"))
}

/// One `provisioner controller` process and its metrics URL.
struct Process {
    child: Child,
    metrics: String,
}

impl Process {
    async fn spawn(db: &str, lease: Duration) -> Self {
        let lease = format!("{}ms", lease.as_millis());
        let (child, port) = spawn_controller(db, [("LEASE_DURATION", lease)]);
        Process {
            child,
            metrics: format!("http://127.0.0.1:{port}/metrics"),
        }
    }

    /// `Some(leading)` once the process answers `/metrics`.
    async fn leading(&self, http: &reqwest::Client) -> Option<bool> {
        let body = http
            .get(&self.metrics)
            .send()
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        Some(body.lines().any(|l| l.trim() == "controller_leader 1"))
    }

    /// Polls until `wanted` holds for the leadership, at most [`LIMIT`].
    async fn wait(
        &self,
        http: &reqwest::Client,
        wanted: impl Fn(bool) -> bool,
    ) -> Option<Duration> {
        let started = Instant::now();
        while started.elapsed() < LIMIT {
            if self.leading(http).await.is_some_and(&wanted) {
                return Some(started.elapsed());
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        None
    }
}

/// A `provisioner controller` process (the real binary) on database `db`
/// with `env` on top, on a free port; killed when dropped. Returns it and its port.
pub fn spawn_controller(
    db: &str,
    env: impl IntoIterator<Item = (&'static str, String)>,
) -> (Child, u16) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    // `BENCH_WRAP=heaptrack` (any command that runs its arguments) profiles
    // the measured process; its RSS figure then is the wrapper's.
    let mut command = match std::env::var("BENCH_WRAP") {
        Ok(wrapper) if !wrapper.is_empty() => {
            let mut c = Command::new(wrapper);
            c.arg(env!("CARGO_BIN_EXE_provisioner"));
            c
        }
        _ => Command::new(env!("CARGO_BIN_EXE_provisioner")),
    };
    let child = command
        .arg("controller")
        .env("MONGODB_URI", mongo::uri())
        .env("MONGODB_DB", db)
        .env("LISTEN_ADDR", format!("127.0.0.1:{port}"))
        .env("RUST_LOG", "warn")
        .envs(env)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start `provisioner controller`");
    (child, port)
}

async fn process_crashes(rounds: usize, lease: Duration) -> Vec<Duration> {
    let store = mongo::fresh_store().await;
    let db = store.db.name().to_string();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .expect("HTTP client");
    let mut leader = Process::spawn(&db, lease).await;
    if leader.wait(&http, |leading| leading).await.is_none() {
        println!("  the first controller process did not lead within {LIMIT:?}");
        return Vec::new();
    }
    let mut samples = Vec::new();
    for round in 1..=rounds {
        let standby = Process::spawn(&db, lease).await;
        if standby.wait(&http, |leading| !leading).await.is_none() {
            println!("  round {round}: the standby did not start within {LIMIT:?}");
            break;
        }
        let killed = Instant::now();
        let _ = leader.child.kill().await;
        let took = standby
            .wait(&http, |leading| leading)
            .await
            .map(|_| killed.elapsed());
        match took {
            Some(t) => {
                println!(
                    "  process round {round}: standby leads {} after SIGKILL",
                    ms(t)
                );
                samples.push(t);
            }
            None => println!("  process round {round}: standby did not lead within {LIMIT:?}"),
        }
        leader = standby;
    }
    let _ = leader.child.kill().await;
    samples
}

async fn task_abort(lease: Duration) -> Vec<Duration> {
    let stack = Stack::start(Backend::Instant).await;
    let leader = Running::start(stack.store(), stack.reconcilers(), config(4));
    leader.wait_leader(LIMIT).await;
    let standby = Running::start(stack.store(), stack.reconcilers(), config(4));
    // Let the standby fail its first try, as a long-running standby would have.
    tokio::time::sleep(lease / 3).await;
    let killed = Instant::now();
    leader.kill().await;
    let mut took = None;
    while killed.elapsed() < LIMIT {
        if standby.health.is_leader() {
            took = Some(killed.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    match took {
        Some(t) => println!("  task abort: standby leads {} after the abort", ms(t)),
        None => println!("  task abort: standby did not lead within {LIMIT:?}"),
    }
    standby.shutdown().await;
    took.into_iter().collect()
}
