//! Operational messages (start, reloads, upstream health, denials). The
//! library never prints: the binary passes a sink, tests capture it.

use std::fmt;
use std::sync::Arc;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Error,
    Warn,
    Info,
    Debug,
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Level::Error => "error",
            Level::Warn => "warning",
            Level::Info => "info",
            Level::Debug => "debug",
        })
    }
}

/// Where messages go. Never given passwords or Authorization headers.
pub type EventSink = Arc<dyn Fn(Level, &str) + Send + Sync>;

/// A sink that drops everything.
pub fn silent() -> EventSink {
    Arc::new(|_, _| {})
}
