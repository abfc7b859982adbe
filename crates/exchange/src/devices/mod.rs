//! Mobile-device partnerships as Exchange admins export them:
//! `Get-MobileDevice | Get-MobileDeviceStatistics` written by `Export-Csv`
//! (with or without its `#TYPE` line, any delimiter `-UseCulture` picks,
//! UTF-8 or UTF-16) or by `ConvertTo-Json` (one object or an array; Windows
//! PowerShell 5.1 and PowerShell 7 forms). [`read`] takes the bytes of one
//! file, which the caller has read, and gives its [`Partnership`]s; a bad row
//! is counted and located, never dropped in silence.
//!
//! **Whose partnership.** Exchange names a partnership
//! `contoso.com/Users/Jane Doe/ExchangeActiveSyncDevices/iPhone§ApplF17…`
//! (`\` in newer forms, a distinguished name in a local snap-in's JSON): the
//! segment before `ExchangeActiveSyncDevices` is the user's directory object
//! name, often a display name rather than the logon name the logs carry. So
//! a partnership answers to every account key its row gives, each reduced by
//! [`crate::identity::account_key`] as log users are: the `SamAccountName`,
//! `UserPrincipalName` and `PrimarySmtpAddress` columns when present
//! (`scripts/Export-CasguardInputs.ps1` adds them), then that owner name from
//! `Identity`, else the last segment of `UserDisplayName`.

mod dates;
mod decode;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use serde_json::value::RawValue;
use serde_json::Value;

use crate::identity::{account_key, UserKind};
pub use dates::SlashOrder;
pub use decode::Encoding;

/// The columns casguard reads, in this order; matched without regard to case.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Col {
    Identity,
    UserDisplayName,
    SamAccountName,
    UserPrincipalName,
    PrimarySmtpAddress,
    DeviceId,
    DeviceType,
    DeviceModel,
    DeviceOs,
    DeviceUserAgent,
    ClientType,
    FirstSyncTime,
    LastSuccessSync,
    LastSyncAttemptTime,
    DeviceAccessState,
    DeviceAccessStateReason,
}

const COLS: usize = 16;
const NAMES: [&str; COLS] = [
    "Identity",
    "UserDisplayName",
    "SamAccountName",
    "UserPrincipalName",
    "PrimarySmtpAddress",
    "DeviceId",
    "DeviceType",
    "DeviceModel",
    "DeviceOS",
    "DeviceUserAgent",
    "ClientType",
    "FirstSyncTime",
    "LastSuccessSync",
    "LastSyncAttemptTime",
    "DeviceAccessState",
    "DeviceAccessStateReason",
];
/// Every `Get-MobileDeviceStatistics` object has these (Exchange 2013 and later).
const REQUIRED: [Col; 6] = [
    Col::DeviceId,
    Col::DeviceType,
    Col::FirstSyncTime,
    Col::LastSuccessSync,
    Col::LastSyncAttemptTime,
    Col::DeviceAccessState,
];
/// Where the user comes from, first to last: at least one must be present.
const USER_COLS: [Col; 5] =
    [Col::SamAccountName, Col::UserPrincipalName, Col::PrimarySmtpAddress, Col::Identity, Col::UserDisplayName];
const DATE_COLS: [Col; 3] = [Col::FirstSyncTime, Col::LastSuccessSync, Col::LastSyncAttemptTime];
/// Bad rows kept with their line and reason; the rest are only counted.
const MAX_BAD_SHOWN: usize = 20;
/// Bytes [`looks_like_export`] wants to see.
pub const SNIFF_BYTES: usize = 64 * 1024;

fn col(name: &str) -> Option<Col> {
    const ALL: [Col; COLS] = [
        Col::Identity,
        Col::UserDisplayName,
        Col::SamAccountName,
        Col::UserPrincipalName,
        Col::PrimarySmtpAddress,
        Col::DeviceId,
        Col::DeviceType,
        Col::DeviceModel,
        Col::DeviceOs,
        Col::DeviceUserAgent,
        Col::ClientType,
        Col::FirstSyncTime,
        Col::LastSuccessSync,
        Col::LastSyncAttemptTime,
        Col::DeviceAccessState,
        Col::DeviceAccessStateReason,
    ];
    let name = name.trim().trim_start_matches('\u{feff}');
    NAMES.iter().position(|n| n.eq_ignore_ascii_case(name)).map(|i| ALL[i])
}

/// One device's partnership with one mailbox.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Partnership {
    /// The account key shown for it: the first of `user_keys`.
    pub user: String,
    /// Every account key it answers to (see the module documentation).
    pub user_keys: Vec<String>,
    /// The owner's name as exported (Identity's owner segment or UserDisplayName).
    pub owner: String,
    pub device_id: String,
    pub device_type: String,
    pub device_model: String,
    pub device_os: String,
    pub user_agent: String,
    /// `EAS`, `MOWA`, `Outlook`, ... as exported.
    pub client_type: String,
    /// Unix seconds; `None` when the export says never.
    pub first_sync: Option<i64>,
    pub last_success_sync: Option<i64>,
    pub last_sync_attempt: Option<i64>,
    /// `Allowed`, `Blocked`, `Quarantined`, `DeviceDiscovery` (numbers as Windows PowerShell writes enums are named).
    pub access_state: String,
    /// `Global`, `Individual`, `DeviceRule`, `Policy`, `Upgrade`, ...
    pub access_state_reason: String,
    /// Line of the file where its row or object begins.
    pub line: u64,
}

impl Partnership {
    /// The last time Exchange heard from the device: its last sync or sync
    /// attempt, else its first sync.
    pub fn last_contact(&self) -> Option<i64> {
        self.last_success_sync.max(self.last_sync_attempt).or(self.first_sync)
    }
}

/// How a file was written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Csv,
    Json,
}

/// A row that could not be read, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadRow {
    pub line: u64,
    pub reason: String,
}

/// What one export file holds.
#[derive(Clone, Debug)]
pub struct DeviceExport {
    pub format: Format,
    pub encoding: Encoding,
    /// How `a/b/yyyy` dates were read, when the file has any.
    pub slash_order: Option<SlashOrder>,
    pub partnerships: Vec<Partnership>,
    /// Rows or objects read, bad ones included.
    pub rows: u64,
    pub bad_rows: u64,
    /// The first bad rows (at most 20).
    pub first_bad: Vec<BadRow>,
}

impl DeviceExport {
    /// The newest time in the file: about when it was exported, in an
    /// organisation whose devices sync.
    pub fn newest_time(&self) -> Option<i64> {
        self.partnerships.iter().filter_map(|p| p.last_contact()).max()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DevicesError {
    #[error(
        "{file}: not the output of Get-MobileDevice | Get-MobileDeviceStatistics: missing column(s) {missing} \
         (found {found})"
    )]
    MissingColumns { file: String, missing: String, found: String },
    #[error("{file}:{line}: {message}")]
    Syntax { file: String, line: u64, message: String },
    #[error(
        "{file}: dates such as 25/12/2026 and 12/25/2026 in one file: cannot tell the day from the month; \
         export with ConvertTo-Json (scripts/Export-CasguardInputs.ps1 does)"
    )]
    MixedDates { file: String },
}

/// Read one export; `origin` names the file in errors.
pub fn read(bytes: &[u8], origin: &str) -> Result<DeviceExport, DevicesError> {
    let (text, encoding) = decode::decode(bytes);
    let body = text.trim_start();
    let (format, rows) = if body.is_empty() {
        // `Export-Csv` of no objects writes an empty file.
        (Format::Csv, Rows::default())
    } else if body.starts_with(['[', '{']) {
        (Format::Json, json_rows(&text, origin)?)
    } else {
        (Format::Csv, csv_rows(&text, origin)?)
    };
    finish(rows, origin, format, encoding)
}

/// Whether the start of a file (up to [`SNIFF_BYTES`]) is a device export:
/// CSV whose header, or JSON whose first object, names both `DeviceId` and
/// `FirstSyncTime`. Logs and other exports are not.
pub fn looks_like_export(head: &[u8]) -> bool {
    let (text, _) = decode::decode(head);
    let text = text.trim_start().to_ascii_lowercase();
    if text.starts_with(['[', '{']) {
        return text.contains("\"deviceid\"") && text.contains("\"firstsynctime\"");
    }
    let mut lines = text.lines();
    let mut header = lines.next().unwrap_or("");
    if header.starts_with("#type") {
        header = lines.next().unwrap_or("");
    }
    let delimiter = char::from(delimiter_of(header));
    let names: Vec<&str> = header.split(delimiter).map(|n| n.trim().trim_matches('"')).collect();
    names.contains(&"deviceid") && names.contains(&"firstsynctime")
}

/// The rows of a file before their dates and users are checked.
#[derive(Default)]
struct Rows {
    rows: Vec<RawRow>,
    /// Columns some row has.
    present: [bool; COLS],
    bad: Vec<BadRow>,
    bad_total: u64,
    read: u64,
}

impl Rows {
    fn bad(&mut self, line: u64, reason: String) {
        self.bad_total += 1;
        if self.bad.len() < MAX_BAD_SHOWN {
            self.bad.push(BadRow { line, reason });
        }
    }

    fn missing(&self, origin: &str, found: String) -> Result<(), DevicesError> {
        let mut missing: Vec<&str> =
            REQUIRED.iter().filter(|c| !self.present[**c as usize]).map(|c| NAMES[*c as usize]).collect();
        if !USER_COLS.iter().any(|c| self.present[*c as usize]) {
            missing.push("Identity (or UserDisplayName)");
        }
        if missing.is_empty() {
            return Ok(());
        }
        Err(DevicesError::MissingColumns { file: origin.to_string(), missing: missing.join(", "), found })
    }
}

struct RawRow {
    line: u64,
    values: [String; COLS],
}

/// Line numbers of increasing byte offsets in one text, counted once.
#[derive(Default)]
struct LineCounter {
    offset: usize,
    newlines: u64,
}

impl LineCounter {
    /// The 1-based line of byte `at`; offsets must not decrease.
    fn line_at(&mut self, text: &str, at: usize) -> u64 {
        let at = at.clamp(self.offset, text.len());
        self.newlines += memchr::memchr_iter(b'\n', &text.as_bytes()[self.offset..at]).count() as u64;
        self.offset = at;
        self.newlines + 1
    }
}

/// The delimiter of a CSV header line: `,` unless `;` or a tab is more
/// frequent outside quotes (`Export-Csv -UseCulture` in many cultures).
fn delimiter_of(header: &str) -> u8 {
    let mut counts = [0usize; 3];
    let mut quoted = false;
    for c in header.bytes() {
        match c {
            b'"' => quoted = !quoted,
            b',' if !quoted => counts[0] += 1,
            b';' if !quoted => counts[1] += 1,
            b'\t' if !quoted => counts[2] += 1,
            _ => {}
        }
    }
    let best = (0..3).max_by_key(|&i| (counts[i], std::cmp::Reverse(i))).unwrap_or(0);
    [b',', b';', b'\t'][best]
}

fn csv_rows(text: &str, origin: &str) -> Result<Rows, DevicesError> {
    // Windows PowerShell's Export-Csv starts with `#TYPE <type name>` unless -NoTypeInformation.
    let (body, skipped) = match text.get(..5) {
        Some(head) if head.eq_ignore_ascii_case("#TYPE") => (text.split_once('\n').map_or("", |(_, rest)| rest), 1),
        _ => (text, 0),
    };
    let delimiter = delimiter_of(body.lines().next().unwrap_or(""));
    let mut reader = csv::ReaderBuilder::new().delimiter(delimiter).flexible(true).from_reader(body.as_bytes());
    let syntax = |e: csv::Error| DevicesError::Syntax {
        file: origin.to_string(),
        line: e.position().map_or(0, |p| p.line()) + skipped,
        message: e.to_string(),
    };
    let headers = reader.headers().map_err(syntax)?.clone();
    let mut index: [Option<usize>; COLS] = [None; COLS];
    for (i, name) in headers.iter().enumerate() {
        if let Some(c) = col(name) {
            index[c as usize].get_or_insert(i);
        }
    }
    let mut rows = Rows { present: index.map(|i| i.is_some()), ..Rows::default() };
    let found = headers.iter().take(8).collect::<Vec<_>>().join(", ");
    rows.missing(origin, if headers.len() > 8 { found + ", ..." } else { found })?;

    let mut record = csv::StringRecord::new();
    let mut lines = LineCounter::default();
    while reader.read_record(&mut record).map_err(syntax)? {
        // The reader's own line count lags behind after CRLF: count from the byte offset.
        let start = record.position().map_or(0, |p| p.byte() as usize);
        let start =
            start + body.as_bytes()[start.min(body.len())..].iter().take_while(|b| matches!(b, b'\r' | b'\n')).count();
        let line = lines.line_at(body, start) + skipped;
        rows.read += 1;
        if record.len() != headers.len() {
            rows.bad(line, format!("{} field(s) where the header has {}", record.len(), headers.len()));
            continue;
        }
        let values = index.map(|i| i.and_then(|i| record.get(i)).unwrap_or("").to_string());
        rows.rows.push(RawRow { line, values });
    }
    Ok(rows)
}

fn json_rows(text: &str, origin: &str) -> Result<Rows, DevicesError> {
    let syntax = |e: serde_json::Error| DevicesError::Syntax {
        file: origin.to_string(),
        line: e.line() as u64,
        message: format!("not JSON: {e}"),
    };
    let top: &RawValue = serde_json::from_str(text).map_err(syntax)?;
    let items: Vec<&RawValue> = if top.get().starts_with('[') {
        serde_json::from_str(top.get()).map_err(syntax)?
    } else {
        // Windows PowerShell writes `ConvertTo-Json -InputObject $list` as {"value": [...], "Count": n}.
        let object: BTreeMap<String, &RawValue> = serde_json::from_str(top.get()).map_err(syntax)?;
        let value = object.iter().find(|(k, _)| k.eq_ignore_ascii_case("value")).map(|(_, v)| *v);
        match value {
            Some(list) if object.len() == 2 && list.get().starts_with('[') => {
                serde_json::from_str(list.get()).map_err(syntax)?
            }
            _ => vec![top],
        }
    };

    let mut rows = Rows::default();
    let mut lines = LineCounter::default();
    for item in items {
        // Each item borrows from `text`: its offset gives its line.
        let at = (item.get().as_ptr() as usize).saturating_sub(text.as_ptr() as usize);
        let line = lines.line_at(text, at);
        rows.read += 1;
        let object: serde_json::Map<String, Value> = match serde_json::from_str(item.get()) {
            Ok(object) => object,
            Err(_) => {
                rows.bad(line, "not an object".to_string());
                continue;
            }
        };
        let mut values: [String; COLS] = Default::default();
        for (key, value) in &object {
            if let Some(c) = col(key) {
                rows.present[c as usize] = true;
                values[c as usize] = json_text(value);
            }
        }
        rows.rows.push(RawRow { line, values });
    }
    if rows.read > 0 {
        let mut keys: Vec<&str> = NAMES.iter().zip(rows.present).filter(|(_, p)| *p).map(|(n, _)| *n).collect();
        keys.truncate(8);
        rows.missing(origin, if keys.is_empty() { "none casguard reads".to_string() } else { keys.join(", ") })?;
    }
    Ok(rows)
}

/// A JSON value as the text Export-Csv would have written. Windows
/// PowerShell writes a date that carries extra properties as
/// `{"value": "/Date(..)/", "DateTime": ...}`, and a local snap-in's
/// Identity as an object with its `DistinguishedName`.
fn json_text(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => if *b { "True" } else { "False" }.to_string(),
        Value::Array(items) => items.iter().map(json_text).collect::<Vec<_>>().join(", "),
        Value::Object(map) => ["value", "DistinguishedName"]
            .iter()
            .find_map(|want| map.iter().find(|(k, _)| k.eq_ignore_ascii_case(want)))
            .map(|(_, v)| json_text(v))
            .unwrap_or_default(),
    }
}

fn finish(rows: Rows, origin: &str, format: Format, encoding: Encoding) -> Result<DeviceExport, DevicesError> {
    let mut evidence = dates::SlashEvidence::default();
    let parsed: Vec<[Result<dates::RawDate, ()>; 3]> =
        rows.rows.iter().map(|r| DATE_COLS.map(|c| dates::parse(&r.values[c as usize]))).collect();
    for date in parsed.iter().flatten().flatten() {
        evidence.see(*date);
    }
    let order = evidence.order().ok_or_else(|| DevicesError::MixedDates { file: origin.to_string() })?;
    let mut export = DeviceExport {
        format,
        encoding,
        slash_order: evidence.seen.then_some(order),
        partnerships: Vec::with_capacity(rows.rows.len()),
        rows: rows.read,
        bad_rows: rows.bad_total,
        first_bad: rows.bad,
    };
    for (row, dates) in rows.rows.into_iter().zip(parsed) {
        let line = row.line;
        match partnership(row, dates, order) {
            Ok(p) => export.partnerships.push(p),
            Err(reason) => {
                export.bad_rows += 1;
                if export.first_bad.len() < MAX_BAD_SHOWN {
                    export.first_bad.push(BadRow { line, reason });
                }
            }
        }
    }
    export.first_bad.sort_by_key(|b| b.line);
    Ok(export)
}

fn partnership(row: RawRow, dates: [Result<dates::RawDate, ()>; 3], order: SlashOrder) -> Result<Partnership, String> {
    let [identity, display, sam, upn, smtp, device_id, device_type, model, os, agent, client_type, first, success, attempt, state, reason] =
        row.values;
    let device_id = device_id.trim().to_string();
    if device_id.is_empty() {
        return Err("no DeviceId".to_string());
    }
    let owner = identity_owner(&identity).or_else(|| last_segment(&display)).unwrap_or_default();
    let mut user_keys: Vec<String> = Vec::new();
    let mut key = String::new();
    for name in [&sam, &upn, &smtp, &owner] {
        if account_key(name, &mut key) != UserKind::None && !user_keys.contains(&key) {
            user_keys.push(key.clone());
        }
    }
    let Some(user) = user_keys.first().cloned() else {
        return Err("no user: Identity, UserDisplayName and the account columns are empty".to_string());
    };
    let mut times = [None; 3];
    for (i, (date, text)) in dates.into_iter().zip([&first, &success, &attempt]).enumerate() {
        times[i] = date
            .and_then(|d| d.resolve(order))
            .map_err(|()| format!("{}: cannot read {text:?} as a date", NAMES[DATE_COLS[i] as usize]))?;
    }
    Ok(Partnership {
        user,
        user_keys,
        owner,
        device_id,
        device_type: device_type.trim().to_string(),
        device_model: model.trim().to_string(),
        device_os: os.trim().to_string(),
        user_agent: agent.trim().to_string(),
        client_type: client_type.trim().to_string(),
        first_sync: times[0],
        last_success_sync: times[1],
        last_sync_attempt: times[2],
        access_state: enum_name(&state, &["Unknown", "Allowed", "Blocked", "Quarantined", "DeviceDiscovery"]),
        access_state_reason: enum_name(
            &reason,
            &["Unknown", "Global", "Individual", "DeviceRule", "Upgrade", "Policy"],
        ),
        line: row.line,
    })
}

/// A number as Windows PowerShell's ConvertTo-Json writes an enum, named;
/// names and numbers it does not know are kept as given.
fn enum_name(text: &str, names: &[&str]) -> String {
    let text = text.trim();
    match text.parse::<usize>() {
        Ok(n) if n < names.len() => names[n].to_string(),
        _ => text.to_string(),
    }
}

/// The owner's name in a partnership's Identity: the element before
/// `ExchangeActiveSyncDevices` in a canonical name (`/`, with `\/` for a
/// slash inside a name), a `\`-separated name, or a distinguished name.
fn identity_owner(identity: &str) -> Option<String> {
    const MARKER: &str = "ExchangeActiveSyncDevices";
    let identity = identity.trim();
    let elements: Vec<String> = if identity.get(..3).is_some_and(|p| p.eq_ignore_ascii_case("CN=")) {
        // Distinguished name: leaf first, so the owner comes after the marker.
        let mut rdns = split_escaped(identity, ',');
        rdns.reverse();
        rdns.into_iter().map(|r| r.get(3..).unwrap_or("").to_string()).collect()
    } else if identity.contains('/') {
        split_escaped(identity, '/')
    } else {
        identity.split('\\').map(str::to_string).collect()
    };
    let at = elements.iter().position(|e| e.trim().eq_ignore_ascii_case(MARKER))?;
    let owner = elements.get(at.checked_sub(1)?)?.trim();
    (!owner.is_empty()).then(|| owner.to_string())
}

/// Split at `sep` except where a backslash escapes it; escapes are removed.
fn split_escaped(text: &str, sep: char) -> Vec<String> {
    let mut parts = vec![String::new()];
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(next) = chars.next() {
                    parts.last_mut().expect("never empty").push(next);
                }
            }
            c if c == sep => parts.push(String::new()),
            c => parts.last_mut().expect("never empty").push(c),
        }
    }
    parts
}

/// `contoso.com/Users/Jane Doe` (Get-MobileDevice's UserDisplayName) -> `Jane Doe`.
fn last_segment(text: &str) -> Option<String> {
    let last = split_escaped(text.trim(), '/').pop()?;
    let last = last.trim();
    (!last.is_empty()).then(|| last.to_string())
}
