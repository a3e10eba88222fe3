//! Hands freed heap memory back to the system. glibc's allocator keeps what
//! a burst freed (10,000 tenants created at once, a list of every upstream
//! object, a hundred connections' buffers) in its arenas for reuse, so the
//! process stays at its peak long after the burst. Two measures, both
//! measured at 10,000 tenants (docs/benchmarks.md):
//!
//! - allocations of [`MMAP_THRESHOLD`] and more (connection buffers, bodies,
//!   the tables of large maps) get pages of their own, given back as soon
//!   as they are freed, instead of sitting between small long-lived
//!   objects in an arena: 2.4 → 1.2 KiB of RSS per tenant, throughput
//!   unchanged. glibc's `MALLOC_MMAP_THRESHOLD_`, when set, wins;
//! - every [`EVERY`] `malloc_trim` returns the free pages of every arena;
//!   the cost is a walk over the free lists, a millisecond or so, on a
//!   blocking thread.

use std::time::Duration;

/// How often the free pages are returned.
const EVERY: Duration = Duration::from_secs(5);

/// Allocations at least this large are mapped on their own (glibc's
/// default starts at 128 KiB and rises with the largest block freed, up to
/// 32 MiB, so after a burst almost everything came from the arenas).
const MMAP_THRESHOLD: i32 = 32 * 1024;

/// Sets the threshold and starts the periodic trim (glibc only; elsewhere
/// nothing to do). Runs inside the tokio runtime.
pub fn spawn() {
    if cfg!(all(target_os = "linux", target_env = "gnu")) {
        if std::env::var_os("MALLOC_MMAP_THRESHOLD_").is_none() {
            map_large_allocations();
        }
        crate::periodic::spawn_every(EVERY, release);
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn map_large_allocations() {
    // SAFETY: `mallopt` only sets an allocator parameter under its own lock;
    // it has no precondition.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
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
fn map_large_allocations() {}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn release() {}
