//! `casguard export`: one row per request, as Parquet partitioned by day for
//! DuckDB, Spark, Trino or DataFusion, or as JSON lines (ECS names) for a SIEM.
//!
//! Streaming: each file is read once, rows are buffered per day partition up
//! to one row group and then written, so memory does not grow with the logs.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use audit::events::Event;
use exchange::{Interpreter, Request};
use parquet::basic::Compression;
use parquet::data_type::{BoolType, ByteArray, ByteArrayType, Int32Type, Int64Type};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::types::Type;
use policy::Policy;
use rayon::prelude::*;
use w3c::{FileStats, Record, ScanOptions, Visitor};

use super::{warn_malformed, Global, Inputs, Progress};

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// `DIR/date=YYYY-MM-DD/part-N.parquet`, one row per request.
    Parquet,
    /// One JSON object per request and line, with ECS field names.
    Jsonl,
}

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub inputs: Inputs,
    #[arg(long, value_enum, default_value_t = Format::Jsonl)]
    pub format: Format,
    /// A folder for parquet (required); a file for jsonl (default: stdout).
    #[arg(long, value_name = "PATH")]
    pub out: Option<PathBuf>,
    /// Fill the `decision` column with what this policy would do.
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// Known devices from `casguard inventory build` (for policies about new devices).
    #[arg(long, value_name = "FILE", requires = "policy")]
    pub inventory: Option<PathBuf>,
    /// Rows per Parquet row group: what is held in memory per day and file.
    #[arg(long, default_value_t = 32_768, value_name = "N")]
    pub row_group_rows: usize,
}

/// The Parquet columns, in file order. All optional: absent values are null.
const SCHEMA: &str = "message request {
  OPTIONAL INT64 time (TIMESTAMP(MICROS,true));
  OPTIONAL BYTE_ARRAY server_ip (UTF8);
  OPTIONAL INT32 site_port;
  OPTIONAL BYTE_ARRAY method (UTF8);
  OPTIONAL BYTE_ARRAY uri_stem (UTF8);
  OPTIONAL BYTE_ARRAY uri_query (UTF8);
  OPTIONAL BYTE_ARRAY protocol (UTF8);
  OPTIONAL BYTE_ARRAY user (UTF8);
  OPTIONAL BYTE_ARRAY username (UTF8);
  OPTIONAL BYTE_ARRAY device_id (UTF8);
  OPTIONAL BYTE_ARRAY device_type (UTF8);
  OPTIONAL BYTE_ARRAY client (UTF8);
  OPTIONAL BYTE_ARRAY user_agent (UTF8);
  OPTIONAL BYTE_ARRAY command (UTF8);
  OPTIONAL INT32 status;
  OPTIONAL INT32 substatus;
  OPTIONAL BYTE_ARRAY client_ip (UTF8);
  OPTIONAL BYTE_ARRAY peer_ip (UTF8);
  OPTIONAL BYTE_ARRAY forwarded_for (UTF8);
  OPTIONAL BYTE_ARRAY network (UTF8);
  OPTIONAL BYTE_ARRAY traffic (UTF8);
  OPTIONAL BOOLEAN is_probe;
  OPTIONAL BOOLEAN is_backend;
  OPTIONAL BYTE_ARRAY exploit_rule (UTF8);
  OPTIONAL BYTE_ARRAY decision (UTF8);
  OPTIONAL BYTE_ARRAY policy_rule (UTF8);
  OPTIONAL INT32 policy_status;
}";

pub fn run(args: Args, global: &Global) -> anyhow::Result<ExitCode> {
    let interpreter = args.inputs.interpreter()?;
    let files = args.inputs.files()?;
    let policy = match &args.policy {
        Some(path) => Some(super::load_policy(path, args.inventory.as_deref(), &interpreter)?),
        None => None,
    };
    let ctx = Ctx { interpreter: &interpreter, policy: policy.as_ref() };
    // One visitor per file, files in parallel: each file's rows are read in order.
    let options = ScanOptions { parallel: false, ..args.inputs.scan_options()? };
    let progress = Progress::new(&files, global);
    let stats = match args.format {
        Format::Parquet => {
            let dir = args.out.as_deref().context("--format parquet writes a folder: give it with --out DIR")?;
            let stats = export_parquet(&files, &options, &ctx, dir, args.row_group_rows.max(1), &progress)?;
            if !global.quiet {
                let rows: u64 = stats.iter().map(|s| s.records()).sum();
                eprintln!("wrote {rows} row(s) under {}", dir.display());
            }
            stats
        }
        Format::Jsonl => {
            let out: Box<dyn Write + Send> = match &args.out {
                Some(path) => {
                    Box::new(File::create(path).with_context(|| format!("cannot create {}", path.display()))?)
                }
                None => Box::new(std::io::stdout()),
            };
            export_jsonl(&files, &options, &ctx, out, &progress)?
        }
    };
    progress.finish();
    warn_malformed(&stats, "warning");
    Ok(ExitCode::SUCCESS)
}

struct Ctx<'a> {
    interpreter: &'a Interpreter,
    policy: Option<&'a Policy>,
}

fn scan_file<V: Visitor>(path: &Path, options: &ScanOptions, visitor: &mut V) -> anyhow::Result<FileStats> {
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut stats =
        w3c::scan_reader(file, options, visitor).with_context(|| format!("cannot read {}", path.display()))?;
    stats.path = path.to_path_buf();
    Ok(stats)
}

// === jsonl ===

struct JsonlSink<'a> {
    ctx: &'a Ctx<'a>,
    request: Request,
    line: Vec<u8>,
    out: BufWriter<Box<dyn Write + Send>>,
    error: Option<anyhow::Error>,
}

impl Visitor for JsonlSink<'_> {
    fn record(&mut self, record: &Record<'_>) {
        if self.error.is_some() {
            return;
        }
        self.ctx.interpreter.read_record(record, &mut self.request);
        let i = self.ctx.interpreter;
        let event = Event::new(&self.request, i.catalog(), i.networks(), self.ctx.policy);
        self.line.clear();
        let written = event.write_json_line(&mut self.line).map_err(anyhow::Error::from);
        if let Err(e) = written.and_then(|()| self.out.write_all(&self.line).map_err(anyhow::Error::from)) {
            self.error = Some(e);
        }
    }
}

fn export_jsonl(
    files: &[PathBuf],
    options: &ScanOptions,
    ctx: &Ctx<'_>,
    out: Box<dyn Write + Send>,
    progress: &Progress,
) -> anyhow::Result<Vec<FileStats>> {
    let mut sink =
        JsonlSink { ctx, request: Request::default(), line: Vec::new(), out: BufWriter::new(out), error: None };
    let mut stats = Vec::with_capacity(files.len());
    // In path order, one file after the other: the stream keeps the files' order.
    for path in files {
        stats.push(scan_file(path, options, &mut sink)?);
        progress.file_done(path);
        if let Some(e) = sink.error.take() {
            return Err(e);
        }
    }
    sink.out.flush()?;
    Ok(stats)
}

// === parquet ===

/// Values of one column for the rows of the current row group.
enum Column {
    Str(Vec<ByteArray>),
    I32(Vec<i32>),
    I64(Vec<i64>),
    Bool(Vec<bool>),
}

/// One column's values (non-null only) and definition levels (1 set, 0 null).
struct Buffer {
    values: Column,
    levels: Vec<i16>,
}

impl Buffer {
    fn str(&mut self, v: Option<&str>) {
        if let (Column::Str(values), Some(v)) = (&mut self.values, v) {
            values.push(ByteArray::from(v.as_bytes().to_vec()));
        }
        self.levels.push(i16::from(v.is_some()));
    }

    fn display(&mut self, v: Option<impl std::fmt::Display>) {
        self.str(v.map(|v| v.to_string()).as_deref());
    }

    fn i32(&mut self, v: Option<i32>) {
        if let (Column::I32(values), Some(v)) = (&mut self.values, v) {
            values.push(v);
        }
        self.levels.push(i16::from(v.is_some()));
    }

    fn i64(&mut self, v: Option<i64>) {
        if let (Column::I64(values), Some(v)) = (&mut self.values, v) {
            values.push(v);
        }
        self.levels.push(i16::from(v.is_some()));
    }

    fn bool(&mut self, v: bool) {
        if let Column::Bool(values) = &mut self.values {
            values.push(v);
        }
        self.levels.push(1);
    }

    fn clear(&mut self) {
        self.levels.clear();
        match &mut self.values {
            Column::Str(v) => v.clear(),
            Column::I32(v) => v.clear(),
            Column::I64(v) => v.clear(),
            Column::Bool(v) => v.clear(),
        }
    }
}

/// One open part file of one day.
struct Part {
    writer: SerializedFileWriter<BufWriter<File>>,
    columns: Vec<Buffer>,
    rows: usize,
}

impl Part {
    fn create(path: &Path, schema: &Arc<Type>, props: &Arc<WriterProperties>) -> anyhow::Result<Part> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        }
        let file = File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
        let writer = SerializedFileWriter::new(BufWriter::new(file), schema.clone(), props.clone())?;
        let columns = schema
            .get_fields()
            .iter()
            .map(|f| {
                let values = match f.get_physical_type() {
                    parquet::basic::Type::INT32 => Column::I32(Vec::new()),
                    parquet::basic::Type::INT64 => Column::I64(Vec::new()),
                    parquet::basic::Type::BOOLEAN => Column::Bool(Vec::new()),
                    _ => Column::Str(Vec::new()),
                };
                Buffer { values, levels: Vec::new() }
            })
            .collect();
        Ok(Part { writer, columns, rows: 0 })
    }

    fn push(&mut self, e: &Event<'_>) {
        let c = &mut self.columns;
        c[0].i64(e.time.map(|t| t * 1_000_000));
        c[1].display(e.server_ip);
        c[2].i32(e.site_port.map(i32::from));
        c[3].str(e.method);
        c[4].str(e.uri_stem);
        c[5].str(e.uri_query);
        c[6].str(Some(e.protocol));
        c[7].str(e.user);
        c[8].str(e.username);
        c[9].str(e.device_id);
        c[10].str(e.device_type);
        c[11].str(Some(e.client));
        c[12].str(e.user_agent);
        c[13].str(e.command);
        c[14].i32(e.status.map(i32::from));
        c[15].i32(e.substatus.map(i32::from));
        c[16].display(e.client_ip);
        c[17].display(e.peer_ip);
        c[18].str(e.forwarded_for);
        c[19].str(Some(e.network));
        c[20].str(Some(e.traffic));
        c[21].bool(e.is_probe());
        c[22].bool(e.is_backend());
        c[23].str(e.exploit_rule);
        c[24].str(e.decision);
        c[25].str(e.policy_rule);
        c[26].i32(e.policy_status.map(i32::from));
        self.rows += 1;
    }

    /// Write the buffered rows as one row group.
    fn flush(&mut self) -> anyhow::Result<()> {
        if self.rows == 0 {
            return Ok(());
        }
        let mut group = self.writer.next_row_group()?;
        let mut index = 0;
        while let Some(mut column) = group.next_column()? {
            let buffer = &mut self.columns[index];
            let levels = Some(&buffer.levels[..]);
            match &buffer.values {
                Column::Str(v) => column.typed::<ByteArrayType>().write_batch(v, levels, None)?,
                Column::I32(v) => column.typed::<Int32Type>().write_batch(v, levels, None)?,
                Column::I64(v) => column.typed::<Int64Type>().write_batch(v, levels, None)?,
                Column::Bool(v) => column.typed::<BoolType>().write_batch(v, levels, None)?,
            };
            column.close()?;
            buffer.clear();
            index += 1;
        }
        group.close()?;
        self.rows = 0;
        Ok(())
    }

    fn finish(mut self) -> anyhow::Result<()> {
        self.flush()?;
        self.writer.into_inner()?.flush()?;
        Ok(())
    }
}

/// Open parts per file at most; a file spanning more days closes them and opens new parts.
const MAX_OPEN_PARTS: usize = 8;

struct ParquetSink<'a> {
    ctx: &'a Ctx<'a>,
    dir: &'a Path,
    file_index: usize,
    row_group_rows: usize,
    schema: Arc<Type>,
    props: Arc<WriterProperties>,
    request: Request,
    parts: HashMap<String, Part>,
    /// Parts already written per day, to name the next one.
    opened: HashMap<String, usize>,
    error: Option<anyhow::Error>,
}

impl ParquetSink<'_> {
    fn add(&mut self) -> anyhow::Result<()> {
        let i = self.ctx.interpreter;
        let event = Event::new(&self.request, i.catalog(), i.networks(), self.ctx.policy);
        // Hive's name for a null partition value.
        let day = event.day().unwrap_or_else(|| "__HIVE_DEFAULT_PARTITION__".to_string());
        if !self.parts.contains_key(&day) {
            if self.parts.len() >= MAX_OPEN_PARTS {
                for (_, part) in self.parts.drain() {
                    part.finish()?;
                }
            }
            let n = self.opened.entry(day.clone()).or_default();
            let name = if *n == 0 {
                format!("part-{:05}.parquet", self.file_index)
            } else {
                format!("part-{:05}-{n}.parquet", self.file_index)
            };
            *n += 1;
            let path = self.dir.join(format!("date={day}")).join(name);
            let part = Part::create(&path, &self.schema, &self.props)?;
            self.parts.insert(day.clone(), part);
        }
        let part = self.parts.get_mut(&day).expect("inserted above");
        part.push(&event);
        if part.rows >= self.row_group_rows {
            part.flush()?;
        }
        Ok(())
    }

    fn finish(mut self) -> anyhow::Result<()> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        for (_, part) in self.parts.drain() {
            part.finish()?;
        }
        Ok(())
    }
}

impl Visitor for ParquetSink<'_> {
    fn record(&mut self, record: &Record<'_>) {
        if self.error.is_some() {
            return;
        }
        self.ctx.interpreter.read_record(record, &mut self.request);
        if let Err(e) = self.add() {
            self.error = Some(e);
        }
    }
}

fn export_parquet(
    files: &[PathBuf],
    options: &ScanOptions,
    ctx: &Ctx<'_>,
    dir: &Path,
    row_group_rows: usize,
    progress: &Progress,
) -> anyhow::Result<Vec<FileStats>> {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_name().to_string_lossy().starts_with("date=") {
                anyhow::bail!("{} already holds an export: remove it or choose another folder", dir.display());
            }
        }
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let schema = Arc::new(parquet::schema::parser::parse_message_type(SCHEMA)?);
    let props = Arc::new(
        WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_created_by(format!("casguard {}", env!("CARGO_PKG_VERSION")))
            .build(),
    );
    files
        .par_iter()
        .enumerate()
        .map(|(file_index, path)| {
            let mut sink = ParquetSink {
                ctx,
                dir,
                file_index,
                row_group_rows,
                schema: schema.clone(),
                props: props.clone(),
                request: Request::default(),
                parts: HashMap::new(),
                opened: HashMap::new(),
                error: None,
            };
            let stats = scan_file(path, options, &mut sink)?;
            sink.finish().with_context(|| format!("exporting {}", path.display()))?;
            progress.file_done(path);
            Ok(stats)
        })
        .collect()
}
