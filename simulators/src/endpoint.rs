//! The loopback HTTP server under every simulator: binds `127.0.0.1:<port>`,
//! wraps the simulator's router with fault injection ([`faults::layer`]) and
//! request recording ([`recording::layer`], outermost), serves it on a task
//! that is aborted when the [`Endpoint`] drops, and hands out the base URL,
//! the [`Faults`] switchboard and the [`Recorder`].
//!
//! Binding and serving are separate steps so that a simulator can learn its
//! own URL ([`url_of`]) before it builds its router (issuer, `webUrl`).

use std::io;
use std::net::SocketAddr;

use axum::Router;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::faults::{self, Faults};
use crate::recording::{self, Recorder};

/// Binds `127.0.0.1:<port>` (0 = any free port).
pub async fn bind(port: u16) -> io::Result<TcpListener> {
    TcpListener::bind(("127.0.0.1", port)).await
}

/// `http://127.0.0.1:<port>` of a bound listener.
pub fn url_of(listener: &TcpListener) -> io::Result<String> {
    Ok(url(listener.local_addr()?))
}

fn url(addr: SocketAddr) -> String {
    format!("http://{addr}")
}

/// A simulator's running server; it stops when this is dropped.
pub struct Endpoint {
    addr: SocketAddr,
    faults: Faults,
    recorder: Recorder,
    server: JoinHandle<()>,
}

impl Endpoint {
    /// Serves `router` on `listener` behind fresh fault and recording
    /// layers; `name` (e.g. `"oCIS"`) names the simulator in the error
    /// logged if the server stops.
    pub fn serve(name: &'static str, listener: TcpListener, router: Router) -> io::Result<Self> {
        let addr = listener.local_addr()?;
        let faults = Faults::new();
        let recorder = Recorder::default();
        let app = router
            .layer(axum::middleware::from_fn_with_state(
                faults.clone(),
                faults::layer,
            ))
            .layer(axum::middleware::from_fn_with_state(
                recorder.clone(),
                recording::layer,
            ));
        let server = tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, app).await {
                tracing::error!(%error, "{name} simulator stopped");
            }
        });
        Ok(Endpoint {
            addr,
            faults,
            recorder,
            server,
        })
    }

    /// `http://127.0.0.1:<port>`, without a trailing slash.
    pub fn url(&self) -> String {
        url(self.addr)
    }

    /// Fault injection and request counters.
    pub fn faults(&self) -> &Faults {
        &self.faults
    }

    /// The request log (latest requests and counters), including requests
    /// faults or auth rejected.
    pub fn recorder(&self) -> &Recorder {
        &self.recorder
    }
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        self.server.abort();
    }
}
