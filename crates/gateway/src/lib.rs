//! casguard gateway: a reverse proxy in front of Exchange that enforces a
//! casguard policy inline, with the same request model and the same pure
//! `policy::evaluate` as `casguard simulate`, so what simulate predicts is
//! what the gateway does.
//!
//! HTTP/1.1 on both sides (hyper 1, rustls with ring). Each client
//! connection gets its own upstream connection, never pooled, so NTLM and
//! Negotiate keep working; bodies stream both ways without limits on time
//! or size (59-minute ActiveSync Ping, GB-sized RPC channels). Denied
//! requests are answered here and never reach Exchange. The access log is
//! IIS W3C, readable by `casguard audit`.

#![forbid(unsafe_code)]

pub mod access_log;
mod answer;
mod config;
mod connection;
mod credentials;
mod error;
pub mod events;
mod finish;
mod forms;
mod forward;
mod headers;
mod health;
mod joint;
mod learn;
mod load;
mod metrics;
pub mod model;
mod opening;
mod passthrough;
mod preface;
mod rejudge;
pub mod screen;
mod server;
mod state;
mod tls;
mod unchecked;
mod upstream;

pub use config::Config;
pub use error::GatewayError;
pub use events::{EventSink, Level};
pub use load::check;
pub use server::{serve, Gateway, Handle};
pub use tls::client_config;

/// Lock a mutex, poisoned or not: a panic elsewhere must not take the
/// gateway's shared state down with it.
pub(crate) fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
