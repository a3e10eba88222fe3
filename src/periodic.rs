//! Process upkeep that runs on a timer for the life of the process (the
//! metrics recorder's upkeep, returning freed heap to the system): one
//! helper, so every such job ticks the same way and never stalls a worker
//! thread of the runtime.

use std::sync::Arc;
use std::time::Duration;

/// Runs `job` every `period` on a blocking thread, for as long as the
/// runtime lives. The next run waits for the last one to finish (a late
/// tick is delayed, not doubled), so runs never pile up. Call inside the
/// tokio runtime.
pub fn spawn_every(period: Duration, job: impl Fn() + Send + Sync + 'static) {
    let job = Arc::new(job);
    tokio::spawn(async move {
        let mut every = tokio::time::interval(period);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            let job = job.clone();
            let _ = tokio::task::spawn_blocking(move || job()).await;
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::time::Instant;

    #[tokio::test(start_paused = true)]
    async fn a_job_runs_at_once_then_once_per_period() {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let start = Instant::now();
        spawn_every(Duration::from_secs(5), move || {
            let _ = tx.send(Instant::now());
        });
        let mut runs = Vec::new();
        for _ in 0..3 {
            runs.push(rx.recv().await.expect("a run") - start);
        }
        let secs: Vec<u64> = runs.iter().map(Duration::as_secs).collect();
        assert_eq!(secs, [0, 5, 10]);
    }
}
