//! Hands freed heap memory back to the system. glibc's allocator keeps what
//! a burst freed (10,000 tenants created at once, a list of every upstream
//! object, a hundred connections' buffers) in its arenas for reuse, so the
//! process stays at its peak long after the burst: at 10,000 tenants that
//! was about 25 MB the controller held but no longer used. Every [`EVERY`]
//! `malloc_trim` returns the free pages of every arena; the cost is a walk
//! over the free lists, a millisecond or so, on a blocking thread.

use std::time::Duration;

/// How often the free pages are returned.
const EVERY: Duration = Duration::from_secs(5);

/// Starts the periodic trim (glibc only; elsewhere nothing to do). Runs
/// inside the tokio runtime.
pub fn spawn() {
    if cfg!(all(target_os = "linux", target_env = "gnu")) {
        crate::periodic::spawn_every(EVERY, release);
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn release() {
    // SAFETY: `malloc_trim` takes every arena's lock itself and only
    // returns pages no allocation uses; it has no precondition.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn release() {}
