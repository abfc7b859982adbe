//! One row per request, for analysis elsewhere: Parquet files partitioned by
//! day (DuckDB, Spark, Trino, DataFusion) or JSON lines with Elastic Common
//! Schema names (a SIEM). Both are sinks of the request stream
//! ([`exchange::RequestSink`]); a write error stops the scan.
//!
//! Streaming: each file is read once, rows are buffered per day partition up
//! to one row group and then written, so memory does not grow with the logs.

pub mod event;
mod jsonl;
mod parquet_out;

use std::path::PathBuf;

use audit::ScanError;

pub use event::Event;
pub use jsonl::{export_jsonl, JsonlSink};
pub use parquet_out::{export_parquet, ParquetSink, SCHEMA};

/// Why an export stopped.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// A log could not be read.
    #[error(transparent)]
    Read(#[from] w3c::Error),
    #[error("cannot write {target}: {source}")]
    Write {
        /// The file written to, or `standard output`.
        target: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write {}: {source}", path.display())]
    Parquet {
        path: PathBuf,
        #[source]
        source: ::parquet::errors::ParquetError,
    },
    #[error("{} already holds an export: remove it or choose another folder", .0.display())]
    NotEmpty(PathBuf),
}

impl From<ScanError<ExportError>> for ExportError {
    fn from(e: ScanError<ExportError>) -> Self {
        match e {
            ScanError::Read(e) => ExportError::Read(e),
            ScanError::Sink(e) => e,
        }
    }
}
