//! `casguard watch`: follow the IIS logs being written and print each new
//! finding once: a user's first Outlook mobile device, a new EWS client
//! other than Outlook, a mobile client on EWS/OWA/Outlook Anywhere, a device
//! a policy would deny, an exploit attempt.
//!
//! Files are polled, never locked: each poll opens a file, reads what was
//! appended since the last complete line, and closes it again, so IIS can
//! keep writing, rotate and delete (on Windows `File::open` shares read,
//! write and delete). Only complete lines are parsed; a partial last line is
//! read again at the next poll. The state file (alert keys, and per file the
//! offset and the `#Fields` in force) makes a restart carry on where the
//! last run stopped without repeating alerts.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use exchange::{Interpreter, Protocol, Request, Traffic};
use policy::{evaluate, Action, Policy};
use serde::{Deserialize, Serialize};
use w3c::{Record, ScanOptions, Visitor};

use super::simulate::parse_time;

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Line,
    Json,
}

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Folder of IIS logs, walked recursively (only `*.log` files are followed).
    #[arg(value_name = "LOGDIR")]
    pub dir: PathBuf,
    /// Also alert on devices this policy would deny.
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// Known devices from `casguard inventory build` (for policies about new devices).
    #[arg(long, value_name = "FILE", requires = "policy")]
    pub inventory: Option<PathBuf>,
    /// Where to keep alert keys and file offsets between runs.
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,
    /// Read existing files from their start and ignore lines before TIME
    /// (RFC 3339 or a date). Without it a first run starts at the files' ends.
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    #[arg(long, value_enum, default_value_t = Format::Line)]
    pub format: Format,
    /// Process what is there and exit (no following).
    #[arg(long)]
    pub once: bool,
    /// Seconds between polls.
    #[arg(long, default_value_t = 2.0, value_name = "SECS")]
    pub interval: f64,
    /// Named network ranges, as for `audit`.
    #[arg(long = "ranges", value_name = "FILE")]
    pub ranges: Vec<PathBuf>,
    /// Client catalog to use instead of the built-in one.
    #[arg(long, value_name = "FILE")]
    pub catalog: Option<PathBuf>,
}

/// Longest stretch read from one file per step; a longer line is skipped.
const MAX_READ: u64 = 16 << 20;
const STATE_VERSION: u32 = 1;

#[derive(Debug, Default, Serialize, Deserialize)]
struct State {
    version: u32,
    /// Keys of the alerts already printed.
    alerts: BTreeSet<String>,
    /// Per file (relative to LOGDIR): how far it was read.
    files: BTreeMap<String, FileState>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct FileState {
    /// Bytes read, always at the end of a complete line.
    offset: u64,
    /// The value of the `#Fields` directive in force at `offset`.
    fields: Option<String>,
}

impl State {
    fn load(path: &Path) -> anyhow::Result<Option<State>> {
        match std::fs::read(path) {
            Ok(bytes) => {
                let state: State =
                    serde_json::from_slice(&bytes).with_context(|| format!("cannot read state {}", path.display()))?;
                if state.version != STATE_VERSION {
                    anyhow::bail!("state {} has version {}, expected {STATE_VERSION}", path.display(), state.version);
                }
                Ok(Some(state))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("cannot read state {}", path.display())),
        }
    }

    /// Write to a temporary file then rename, so a crash never leaves half a state.
    fn save(&self, path: &Path) -> anyhow::Result<()> {
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, serde_json::to_vec(self)?).with_context(|| format!("cannot write {}", tmp.display()))?;
        std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))
    }
}

/// One alert, as printed.
#[derive(Debug, Serialize)]
struct Alert {
    kind: &'static str,
    time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    device: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    device_type: Option<String>,
    client: String,
    protocol: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_agent: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    source_ip: Option<String>,
    network: String,
    /// Exploit detection rule, or the policy rule that denies.
    #[serde(skip_serializing_if = "Option::is_none")]
    rule: Option<String>,
    file: String,
    summary: String,
}

struct Ctx {
    interpreter: Interpreter,
    policy: Option<Policy>,
    since: Option<i64>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let interpreter = super::interpreter(&args.ranges, args.catalog.as_deref())?;
    let policy = match &args.policy {
        Some(path) => Some(super::load_policy(path, args.inventory.as_deref(), &interpreter)?),
        None => None,
    };
    let since = args.since.as_deref().map(parse_time).transpose()?;
    if !args.dir.is_dir() {
        anyhow::bail!("{} is not a folder", args.dir.display());
    }
    let ctx = Ctx { interpreter, policy, since };
    let loaded = match &args.state {
        Some(path) => State::load(path)?,
        None => None,
    };
    // A first run without --since follows from the files' current ends, like `tail -f`.
    let mut tail_existing = loaded.is_none() && since.is_none();
    let mut state = loaded.unwrap_or(State { version: STATE_VERSION, ..State::default() });
    let interval = Duration::from_secs_f64(args.interval.clamp(0.1, 3600.0));
    let mut stdout = std::io::stdout();
    loop {
        let alerts = poll(&args.dir, &ctx, &mut state, tail_existing)?;
        tail_existing = false;
        for alert in &alerts {
            match args.format {
                Format::Json => writeln!(stdout, "{}", serde_json::to_string(alert)?)?,
                Format::Line => writeln!(stdout, "{}", alert_line(alert))?,
            }
        }
        stdout.flush()?;
        if let Some(path) = &args.state {
            state.save(path)?;
        }
        if args.once {
            return Ok(ExitCode::SUCCESS);
        }
        std::thread::sleep(interval);
    }
}

/// `*.log` files under `dir`, sorted (compressed archives are not followed).
fn log_files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries = match std::fs::read_dir(&d) {
            Ok(entries) => entries,
            // A folder removed while walking is not an error.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && d != dir => continue,
            Err(e) => return Err(e).with_context(|| format!("cannot list {}", d.display())),
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(kind) = entry.file_type() else { continue };
            if kind.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("log")) {
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files)
}

fn key_of(dir: &Path, path: &Path) -> String {
    let rel = path.strip_prefix(dir).unwrap_or(path);
    rel.components().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/")
}

/// One pass over the folder: new files, growth of known ones.
fn poll(dir: &Path, ctx: &Ctx, state: &mut State, tail_existing: bool) -> anyhow::Result<Vec<Alert>> {
    let files = log_files(dir)?;
    let keys: BTreeSet<String> = files.iter().map(|p| key_of(dir, p)).collect();
    // Forget files that were deleted (old logs cleaned up).
    state.files.retain(|k, _| keys.contains(k));
    let mut alerts = Vec::new();
    for path in &files {
        let key = key_of(dir, path);
        let Ok(meta) = std::fs::metadata(path) else { continue };
        let len = meta.len();
        if !state.files.contains_key(&key) {
            let start = if tail_existing { tail_start(path)? } else { FileState::default() };
            state.files.insert(key.clone(), start);
        }
        let fs = state.files.get_mut(&key).expect("inserted above");
        if len < fs.offset {
            // Shorter than what was read: the file was replaced. Read it anew.
            *fs = FileState::default();
        }
        while fs.offset < len {
            let (consumed, more) = read_step(path, fs, len, ctx, &key, &mut state.alerts, &mut alerts)?;
            if consumed == 0 || !more {
                break;
            }
        }
    }
    Ok(alerts)
}

/// Where a first run starts following a file: after its last complete line,
/// with the `#Fields` in force there.
fn tail_start(path: &Path) -> anyhow::Result<FileState> {
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut reader = BufReader::new(file);
    let mut line = Vec::new();
    let mut state = FileState::default();
    let mut pos = 0u64;
    loop {
        line.clear();
        let n = reader.read_until(b'\n', &mut line)?;
        if n == 0 || line.last() != Some(&b'\n') {
            break;
        }
        pos += n as u64;
        if let Some(fields) = fields_value(&line) {
            state.fields = Some(fields);
        }
        state.offset = pos;
    }
    Ok(state)
}

/// The value of a `#Fields:` directive line.
fn fields_value(line: &[u8]) -> Option<String> {
    let line = line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line);
    let rest = line.strip_prefix(b"#Fields:")?;
    Some(String::from_utf8_lossy(rest).trim().to_string())
}

/// Read and process one stretch of complete lines. Returns the bytes consumed
/// and whether the file may hold more complete lines.
fn read_step(
    path: &Path,
    fs: &mut FileState,
    len: u64,
    ctx: &Ctx,
    key: &str,
    seen: &mut BTreeSet<String>,
    alerts: &mut Vec<Alert>,
) -> anyhow::Result<(u64, bool)> {
    let mut file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((0, false)),
        Err(e) => return Err(e).with_context(|| format!("cannot open {}", path.display())),
    };
    file.seek(SeekFrom::Start(fs.offset))?;
    let want = (len - fs.offset).min(MAX_READ);
    let mut buf = Vec::with_capacity(want as usize);
    file.take(want).read_to_end(&mut buf)?;
    let Some(last_nl) = buf.iter().rposition(|&b| b == b'\n') else {
        if want == MAX_READ {
            // A "line" longer than the limit: skip it, as the audit would count it malformed.
            fs.offset += want;
            return Ok((want, true));
        }
        return Ok((0, false));
    };
    let complete = &buf[..=last_nl];
    // Feed the scanner the #Fields in force, then the new lines.
    let mut input = Vec::with_capacity(complete.len() + 512);
    if let Some(fields) = &fs.fields {
        input.extend_from_slice(b"#Fields: ");
        input.extend_from_slice(fields.as_bytes());
        input.extend_from_slice(b"\r\n");
    }
    input.extend_from_slice(complete);
    let mut watcher = Watcher { ctx, file: key, seen, alerts, request: Request::default() };
    w3c::scan_bytes(&input, &ScanOptions { parallel: false, ..ScanOptions::default() }, &mut watcher);
    for line in complete.split(|&b| b == b'\n') {
        if let Some(fields) = fields_value(line) {
            fs.fields = Some(fields);
        }
    }
    let consumed = complete.len() as u64;
    fs.offset += consumed;
    Ok((consumed, want == MAX_READ))
}

struct Watcher<'a> {
    ctx: &'a Ctx,
    file: &'a str,
    seen: &'a mut BTreeSet<String>,
    alerts: &'a mut Vec<Alert>,
    request: Request,
}

impl Visitor for Watcher<'_> {
    fn record(&mut self, record: &Record<'_>) {
        self.ctx.interpreter.read_record(record, &mut self.request);
        let req = &self.request;
        if let Some(since) = self.ctx.since {
            if req.time != 0 && req.time < since {
                return;
            }
        }
        for (kind, key, rule) in alert_keys(req, self.ctx) {
            if self.seen.contains(&key) {
                continue;
            }
            self.seen.insert(key);
            self.alerts.push(make_alert(kind, req, rule, self.ctx, self.file));
        }
    }
}

/// The alerts a request could raise, each with the key that makes it new.
fn alert_keys(req: &Request, ctx: &Ctx) -> Vec<(&'static str, String, Option<String>)> {
    let mut out = Vec::new();
    if req.traffic == Traffic::Exploit {
        let rule = req.exploit.unwrap_or("unknown");
        let ip = req.client_ip.map(|ip| ip.to_string()).unwrap_or_else(|| "-".into());
        out.push(("exploit-attempt", format!("exploit-attempt|{rule}|{ip}"), Some(rule.to_string())));
        return out;
    }
    // As in the audit: only people's requests with a user make findings.
    if req.traffic != Traffic::Person || req.user.is_empty() {
        return out;
    }
    let client = ctx.interpreter.catalog().get(req.client);
    let user = &req.user;
    let device = req.device_key();
    if client.cloud_credentials {
        out.push(("cloud-credentials", format!("cloud-credentials|{user}"), None));
    }
    if req.protocol == Protocol::Ews && !client.outlook {
        out.push(("ews-non-outlook", format!("ews-non-outlook|{user}|{}", client.id), None));
    }
    if client.mobile && matches!(req.protocol, Protocol::Ews | Protocol::Owa | Protocol::Rpc | Protocol::Mapi) {
        out.push(("mobile-on-ews", format!("mobile-on-ews|{user}|{device}"), None));
    }
    if let Some(policy) = &ctx.policy {
        let decision = evaluate(policy, req);
        if decision.action == Action::Deny {
            let rule = decision.rule.and_then(|i| policy.rules().get(i)).map_or("default", |r| r.name.as_str());
            out.push(("policy-deny", format!("policy-deny|{user}|{device}"), Some(rule.to_string())));
        }
    }
    out
}

fn make_alert(kind: &'static str, req: &Request, rule: Option<String>, ctx: &Ctx, file: &str) -> Alert {
    let client = ctx.interpreter.catalog().get(req.client);
    let network = ctx.interpreter.networks().name(req.network).to_string();
    let source = req.client_ip.map(|ip| ip.to_string());
    let from = source.as_deref().map(|ip| format!(" from {ip} ({network})")).unwrap_or_default();
    let device = req.device_key();
    let protocol = req.protocol.key();
    let summary = match kind {
        "cloud-credentials" => format!("{}: first {} device {device}{from}", req.user, client.name),
        "ews-non-outlook" => format!("{}: EWS from {} ({}){from}", req.user, client.name, req.user_agent),
        "mobile-on-ews" => format!("{}: mobile client {} on {protocol}, device {device}{from}", req.user, client.name),
        "policy-deny" => format!(
            "{}: {} device {device} on {protocol} would be denied by {}",
            req.user,
            client.name,
            rule.as_deref().unwrap_or("the policy")
        ),
        _ => format!("{} {}{from}: {} {}", rule.as_deref().unwrap_or("exploit"), protocol, req.method, req.stem),
    };
    let some = |s: &str| (!s.is_empty()).then(|| s.to_string());
    Alert {
        kind,
        time: (req.time != 0).then(|| w3c::time::format_rfc3339(req.time)),
        user: some(&req.user),
        device: (req.traffic == Traffic::Person).then(|| device.to_string()),
        device_type: some(&req.activesync.device_type),
        client: client.id.clone(),
        protocol,
        user_agent: some(&req.user_agent),
        source_ip: source,
        network,
        rule,
        file: file.to_string(),
        summary,
    }
}

/// One line for a terminal. Log text is attacker-chosen: control characters
/// (terminal escapes) are shown as `\xNN`, never sent as they are.
fn alert_line(alert: &Alert) -> String {
    let text = format!("{} {} {}", alert.time.as_deref().unwrap_or("-"), alert.kind, alert.summary);
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() {
            out.push_str(&format!("\\x{:02x}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_directive_value() {
        assert_eq!(fields_value(b"#Fields: date time\r\n").as_deref(), Some("date time"));
        assert_eq!(fields_value(b"\xEF\xBB\xBF#Fields: a b\n").as_deref(), Some("a b"));
        assert_eq!(fields_value(b"#Software: IIS"), None);
    }

    #[test]
    fn control_characters_are_escaped() {
        let alert = Alert {
            kind: "ews-non-outlook",
            time: None,
            user: None,
            device: None,
            device_type: None,
            client: "ews-app".into(),
            protocol: "ews",
            user_agent: None,
            source_ip: None,
            network: "external".into(),
            rule: None,
            file: "x.log".into(),
            summary: "bob: EWS from \u{1b}[31mred".into(),
        };
        let line = alert_line(&alert);
        assert!(!line.contains('\u{1b}') && line.contains("\\x1b[31mred"), "{line}");
    }
}
