//! Parquet: `DIR/date=YYYY-MM-DD/part-N.parquet`, one row per request, each
//! log file written by its own sink, files in parallel.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ::parquet::basic::Compression;
use ::parquet::data_type::{BoolType, ByteArray, ByteArrayType, Int32Type, Int64Type};
use ::parquet::errors::ParquetError;
use ::parquet::file::properties::WriterProperties;
use ::parquet::file::writer::SerializedFileWriter;
use ::parquet::schema::types::Type;
use exchange::{Interpreter, Request, RequestSink};
use policy::ReadyPolicy;
use w3c::{FileStats, ScanOptions};

use crate::event::Event;
use crate::ExportError;

/// The Parquet columns, in file order. All optional: absent values are null.
pub const SCHEMA: &str = "message request {
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
  OPTIONAL BYTE_ARRAY attack_rule (UTF8);
  OPTIONAL BYTE_ARRAY attack_kind (UTF8);
  OPTIONAL BYTE_ARRAY decision (UTF8);
  OPTIONAL BYTE_ARRAY policy_rule (UTF8);
  OPTIONAL INT32 policy_status;
  OPTIONAL BYTE_ARRAY auth (UTF8);
}";

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
    path: PathBuf,
    writer: SerializedFileWriter<BufWriter<File>>,
    columns: Vec<Buffer>,
    rows: usize,
}

impl Part {
    fn create(path: &Path, schema: &Arc<Type>, props: &Arc<WriterProperties>) -> Result<Part, ExportError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| write_error(dir, e))?;
        }
        let file = File::create(path).map_err(|e| write_error(path, e))?;
        let writer = SerializedFileWriter::new(BufWriter::new(file), schema.clone(), props.clone())
            .map_err(|e| parquet_error(path, e))?;
        let columns = schema
            .get_fields()
            .iter()
            .map(|f| {
                let values = match f.get_physical_type() {
                    ::parquet::basic::Type::INT32 => Column::I32(Vec::new()),
                    ::parquet::basic::Type::INT64 => Column::I64(Vec::new()),
                    ::parquet::basic::Type::BOOLEAN => Column::Bool(Vec::new()),
                    _ => Column::Str(Vec::new()),
                };
                Buffer { values, levels: Vec::new() }
            })
            .collect();
        Ok(Part { path: path.to_path_buf(), writer, columns, rows: 0 })
    }

    fn push(&mut self, e: &Event<'_>) {
        let c = &mut self.columns;
        c[0].i64(e.time.map(|t| t * 1_000_000));
        c[1].display(e.server_ip);
        c[2].i32(e.site_port.map(i32::from));
        c[3].str(e.method);
        c[4].str(e.uri_stem);
        c[5].str(e.uri_query.as_deref());
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
        c[23].str(e.attack_rule);
        c[24].str(e.attack_kind);
        c[25].str(e.decision);
        c[26].str(e.policy_rule);
        c[27].i32(e.policy_status.map(i32::from));
        c[28].str(e.auth);
        self.rows += 1;
    }

    /// Write the buffered rows as one row group.
    fn flush(&mut self) -> Result<(), ExportError> {
        if self.rows == 0 {
            return Ok(());
        }
        self.write_group().map_err(|e| parquet_error(&self.path, e))?;
        self.rows = 0;
        Ok(())
    }

    fn write_group(&mut self) -> Result<(), ParquetError> {
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
        Ok(())
    }

    fn finish(mut self) -> Result<(), ExportError> {
        self.flush()?;
        let mut out = self.writer.into_inner().map_err(|e| parquet_error(&self.path, e))?;
        out.flush().map_err(|e| write_error(&self.path, e))
    }
}

/// Open parts per file at most; a file spanning more days closes them and opens new parts.
const MAX_OPEN_PARTS: usize = 8;

/// Writes the requests of one log file as rows of day partitions.
pub struct ParquetSink<'a> {
    interpreter: &'a Interpreter,
    policy: Option<&'a ReadyPolicy>,
    dir: &'a Path,
    file_index: usize,
    row_group_rows: usize,
    schema: Arc<Type>,
    props: Arc<WriterProperties>,
    parts: HashMap<String, Part>,
    /// Parts already written per day, to name the next one.
    opened: HashMap<String, usize>,
}

impl RequestSink for ParquetSink<'_> {
    type Error = ExportError;

    fn request(&mut self, request: &Request) -> Result<(), ExportError> {
        let i = self.interpreter;
        let event = Event::new(request, i.catalog(), i.networks(), self.policy);
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

    fn finish(&mut self) -> Result<(), ExportError> {
        for (_, part) in self.parts.drain() {
            part.finish()?;
        }
        Ok(())
    }
}

/// Export `paths` under `dir` as Parquet; a folder that already holds an
/// export is refused. `row_group_rows` rows per day and file are held in
/// memory. `on_file` is called as each file is done.
pub fn export_parquet(
    paths: &[PathBuf],
    options: &ScanOptions,
    interpreter: &Interpreter,
    policy: Option<&ReadyPolicy>,
    dir: &Path,
    row_group_rows: usize,
    on_file: &(dyn Fn(&Path) + Sync),
) -> Result<Vec<FileStats>, ExportError> {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_name().to_string_lossy().starts_with("date=") {
                return Err(ExportError::NotEmpty(dir.to_path_buf()));
            }
        }
    }
    std::fs::create_dir_all(dir).map_err(|e| write_error(dir, e))?;
    let schema = Arc::new(::parquet::schema::parser::parse_message_type(SCHEMA).map_err(|e| parquet_error(dir, e))?);
    let props = Arc::new(
        WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_created_by(format!("casguard {}", env!("CARGO_PKG_VERSION")))
            .build(),
    );
    let sink = |file_index| ParquetSink {
        interpreter,
        policy,
        dir,
        file_index,
        row_group_rows: row_group_rows.max(1),
        schema: schema.clone(),
        props: props.clone(),
        parts: HashMap::new(),
        opened: HashMap::new(),
    };
    Ok(audit::scan_each_file(paths, options, interpreter, sink, on_file)?)
}

fn write_error(path: &Path, source: std::io::Error) -> ExportError {
    ExportError::Write { target: path.display().to_string(), source }
}

fn parquet_error(path: &Path, source: ParquetError) -> ExportError {
    ExportError::Parquet { path: path.to_path_buf(), source }
}
