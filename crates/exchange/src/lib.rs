//! What a request to an Exchange Client Access server means.
//!
//! Turns a W3C or HttpProxy log record (or, in the gateway, an HTTP
//! request) into a [`Request`]: its protocol, ActiveSync parameters, the person behind it,
//! the client software from the catalog, and the network it came from.
//! [`devices`] reads Exchange's list of mobile-device partnerships. No I/O
//! beyond reading the data files it is pointed at. [`stream`] is the
//! seam between log readers and what consumes requests; [`join`] keeps a
//! request logged by both IIS and HttpProxy from counting twice.

#![forbid(unsafe_code)]

pub mod access;
pub mod activesync;
mod auth;
pub mod catalog;
pub mod classify;
pub mod data_file;
pub mod device_information;
pub mod devices;
pub mod endpoints;
pub mod exploits;
pub mod identity;
pub mod join;
mod load;
mod log_tokens;
mod matching;
pub mod networks;
pub mod protocol;
mod proxy_log;
mod request;
pub mod stream;
#[cfg(test)]
mod testing;
pub mod text;
pub mod url;
pub mod vdirs;

pub use access::{parse_access_state, AccessState, AccessVerdict};
pub use catalog::{Catalog, Client, ClientId, Device};
pub use classify::{Interpreter, Reading};
pub use exploits::ExploitRules;
pub use identity::UserKind;
pub use load::LoadError;
pub use networks::{NetworkId, Networks};
pub use request::{
    forms_reads_as_post, ActiveSync, AttackKind, AuthType, Detection, LogTokens, LogWanted, Outcome, Protocol,
    QueryEncoding, Request, Source, Traffic, FRONT_END_IDENTITY, ROUTED_PAST_ITS_PATH, WIN32_LOGON_FAILURE,
    WIN32_NO_CREDENTIALS,
};
pub use stream::{Feed, RecordSource, RequestSink};
pub use vdirs::ExchangeFiles;
