//! What the logs say, summed up: per-user and per-device aggregation,
//! findings, policy simulation, and the reports (table, JSON, CSV).
//!
//! Input is a stream of [`exchange::Request`]s; nothing here parses bytes
//! or knows about files beyond writing the CSV set it is asked for.

pub mod aggregate;
mod capped;
pub mod csv_out;
pub mod events;
pub mod html;
pub mod report;
pub mod scan;
pub mod simulate;
pub mod table;

pub use aggregate::Aggregate;
pub use report::Report;
pub use scan::{audit_files, scan_files, Collector};
