//! What the logs say, summed up: per-user and per-device aggregation,
//! findings, policy simulation, alerts, the mobile-device partnerships
//! beside the traffic, and the reports (table, JSON, CSV, HTML).
//!
//! Input is a stream of [`exchange::Request`]s into sinks
//! ([`exchange::RequestSink`]): [`Collector`] for the audit,
//! [`simulate::SimCollector`], [`alerts::Alerter`] for watch. [`scan`] drives
//! the readers into them; [`watch`] follows a folder of logs being written.
//! Nothing here parses bytes.

pub mod aggregate;
pub mod alerts;
pub mod attacks;
mod capped;
pub mod csv_out;
mod devices;
pub mod findings;
pub mod html;
pub mod partnerships;
pub mod posture;
pub mod report;
pub mod scan;
pub mod signins;
pub mod simulate;
pub mod table;
#[cfg(test)]
mod testing;
mod threats;
mod twins;
pub mod watch;

pub use aggregate::Aggregate;
pub use findings::FindingKind;
pub use report::{Report, ReportOptions};
pub use scan::{
    audit_files, scan_each_file, scan_in_order, scan_records, scan_requests, Accumulate, Accumulator, Collector,
    LogFormat, Plan, ScanError,
};
pub use signins::Thresholds;
