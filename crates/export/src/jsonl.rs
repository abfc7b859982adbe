//! JSON lines: one ECS event per request, in the order of the logs.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use exchange::{Interpreter, Request, RequestSink};
use policy::ReadyPolicy;
use w3c::{FileStats, ScanOptions};

use crate::event::Event;
use crate::ExportError;

/// Writes each request as one JSON line to `out`.
pub struct JsonlSink<'a, W: Write> {
    interpreter: &'a Interpreter,
    policy: Option<&'a ReadyPolicy>,
    line: Vec<u8>,
    out: BufWriter<W>,
    /// Where the lines go, for errors.
    target: String,
}

impl<'a, W: Write> JsonlSink<'a, W> {
    /// `policy`, when given, fills the decision fields; `target` names `out`
    /// in errors.
    pub fn new(interpreter: &'a Interpreter, policy: Option<&'a ReadyPolicy>, out: W, target: &str) -> Self {
        JsonlSink { interpreter, policy, line: Vec::new(), out: BufWriter::new(out), target: target.to_string() }
    }

    fn write_error(&self, source: std::io::Error) -> ExportError {
        ExportError::Write { target: self.target.clone(), source }
    }
}

impl<W: Write> RequestSink for JsonlSink<'_, W> {
    type Error = ExportError;

    fn request(&mut self, request: &Request) -> Result<(), ExportError> {
        let i = self.interpreter;
        let event = Event::new(request, i.catalog(), i.networks(), self.policy);
        self.line.clear();
        event.write_json_line(&mut self.line).map_err(|e| self.write_error(e.into()))?;
        self.out.write_all(&self.line).map_err(|e| self.write_error(e))
    }

    fn finish(&mut self) -> Result<(), ExportError> {
        self.out.flush().map_err(|e| self.write_error(e))
    }
}

/// Export `paths` to `out` as JSON lines, in path order and each file in
/// its order. `on_file` is called as each file is done.
pub fn export_jsonl<W: Write + Send>(
    paths: &[PathBuf],
    options: &ScanOptions,
    interpreter: &Interpreter,
    policy: Option<&ReadyPolicy>,
    out: W,
    target: &str,
    on_file: &(dyn Fn(&Path) + Sync),
) -> Result<Vec<FileStats>, ExportError> {
    let sink = JsonlSink::new(interpreter, policy, out, target);
    let (_, stats) = audit::scan_in_order(paths, options, interpreter, sink, on_file)?;
    Ok(stats)
}
