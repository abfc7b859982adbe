//! The gateway's one error type: what stops it from starting or serving.

use policy::PolicyError;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GatewayError {
    /// The policy (or its inventory) cannot be loaded: the gateway fails
    /// closed. The error names its file, which may be the inventory.
    #[error("{0}")]
    Policy(#[from] PolicyError),
    #[error("configuration: {0}")]
    Config(String),
    #[error("TLS: {0}")]
    Tls(String),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
}

impl GatewayError {
    pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> GatewayError {
        let what = what.into();
        move |source| GatewayError::Io { what, source }
    }
}
