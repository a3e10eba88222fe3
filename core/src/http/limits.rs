//! The default request rates per upstream (`*_QPS`, `*_BURST`): requests a
//! second shared by all tenants, and the burst a token bucket allows.
//!
//! 20/s for Authentik and Stalwart: low enough for a Django server (and a
//! mail server) that also serves users, high enough that a snapshot-answered
//! resync (a few list requests an interval) and hundreds of changes a minute
//! never wait; a new tenant costs each of them one request. 50/s for oCIS, a
//! Go server, because a new tenant costs it three writes that no design can
//! merge (the space, the group, the group's grant): at 20/s it alone would
//! hold mass creation to under 7 tenants a second (300 new tenants: 43 s);
//! at 50/s, 17 a second. Bursts are two seconds' worth, so a batch of new
//! tenants starts at once.

/// Requests a second to Authentik and to Stalwart.
pub const DEFAULT_QPS: u32 = 20;
/// Requests Authentik and Stalwart may get at once above their rate.
pub const DEFAULT_BURST: u32 = 40;
/// Requests a second to oCIS.
pub const OCIS_DEFAULT_QPS: u32 = 50;
/// Requests oCIS may get at once above its rate.
pub const OCIS_DEFAULT_BURST: u32 = 100;
