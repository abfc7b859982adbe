//! The file layout of a copy of `C:\inetpub\logs\LogFiles` from several
//! servers, and the writing of one file: directives, BOM, gzip members,
//! the truncated tail.

use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use flate2::Compression;

use crate::events::{Event, BE, FE};
use crate::model::Kind;
use crate::population::Population;
use crate::render::{time_string, Field, Renderer, FE_FIELDS, PLAIN_FIELDS, REORDERED_FIELDS};
use crate::truth::Acc;
use crate::GzipMode;

const H: u32 = 3600;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Gz {
    None,
    Single,
    /// Two gzip members concatenated.
    Multi,
    /// Two members, the second cut short; its lines are not in the truth.
    Truncated,
}

#[derive(Clone, Debug)]
pub(crate) struct FilePlan {
    pub day: u32,
    pub server: usize,
    pub site: u8,
    pub path: PathBuf,
    pub gz: Gz,
    pub bom: bool,
    /// The server crashed while writing this file (see [`CRASH_LOST`]).
    pub crash: bool,
    /// (from time of day, fields); the first starts at 0.
    pub layouts: Vec<(u32, &'static [Field])>,
}

pub(crate) struct PlanOptions {
    pub days: u32,
    pub yymmdd: Vec<String>,
    pub servers: Vec<String>,
    pub gzip: GzipMode,
    pub write_fe: bool,
    pub backend: bool,
    pub truncate: bool,
    pub crash: bool,
}

pub(crate) fn plan(o: &PlanOptions) -> Vec<FilePlan> {
    let mut plans = Vec::new();
    for day in 0..o.days {
        for (server, name) in o.servers.iter().enumerate() {
            for site in [FE, BE] {
                if (site == FE && !o.write_fe) || (site == BE && !o.backend) {
                    continue;
                }
                let gz = match o.gzip {
                    GzipMode::None => false,
                    GzipMode::All => true,
                    GzipMode::Some => (day as usize + server + site as usize) % 2 == 1,
                };
                let file = if site == FE {
                    format!("W3SVC1/u_ex{}_x.log", o.yymmdd[day as usize])
                } else {
                    format!("W3SVC2/u_ex{}.log", o.yymmdd[day as usize])
                };
                plans.push(FilePlan {
                    day,
                    server,
                    site,
                    path: Path::new(name).join(file),
                    gz: if gz { Gz::Single } else { Gz::None },
                    bom: false,
                    crash: false,
                    layouts: vec![(0, if site == FE { FE_FIELDS } else { PLAIN_FIELDS })],
                });
            }
        }
    }
    if o.truncate {
        let i = plans.iter().rposition(|p| p.gz != Gz::None).unwrap_or(plans.len() - 1);
        plans[i].gz = Gz::Truncated;
    }
    if let Some(p) = plans.iter_mut().find(|p| p.gz == Gz::Single) {
        p.gz = Gz::Multi;
    }
    let plain_fe = |p: &FilePlan| p.site == FE && p.gz == Gz::None;
    // Morning without X-Forwarded-For, then the custom field is added.
    let first = plans.iter().position(plain_fe).or_else(|| plans.iter().position(|p| p.site == FE));
    if let Some(i) = first {
        plans[i].layouts = vec![(0, PLAIN_FIELDS), (8 * H, FE_FIELDS)];
    }
    // A reordered list with an extra field in the afternoon of another file.
    let n_servers = o.servers.len();
    let want = |p: &FilePlan| p.server == 1 % n_servers && p.day == 1 % o.days;
    let second = plans
        .iter()
        .enumerate()
        .position(|(i, p)| Some(i) != first && plain_fe(p) && want(p))
        .or_else(|| plans.iter().enumerate().position(|(i, p)| Some(i) != first && p.site == FE));
    if let Some(i) = second {
        plans[i].layouts = vec![(0, FE_FIELDS), (13 * H, REORDERED_FIELDS)];
    }
    let bom = plans
        .iter()
        .enumerate()
        .position(|(i, p)| Some(i) != first && Some(i) != second && p.gz == Gz::None)
        .unwrap_or(0);
    if let Some(p) = plans.get_mut(bom) {
        p.bom = true;
    }
    if o.crash {
        let others = |i: usize| Some(i) != first && Some(i) != second && i != bom;
        let plain = |p: &FilePlan| p.gz == Gz::None;
        let crashed = (0..plans.len())
            .find(|&i| others(i) && plain(&plans[i]) && plans[i].site == FE)
            .or_else(|| (0..plans.len()).find(|&i| others(i) && plain(&plans[i])));
        if let Some(i) = crashed {
            plans[i].crash = true;
        }
    }
    for p in &mut plans {
        if p.gz != Gz::None {
            let mut s = p.path.clone().into_os_string();
            s.push(".gz");
            p.path = s.into();
        }
    }
    plans
}

/// Which files get the malformed lines: plain ones first, never the truncated one.
pub(crate) fn malformed_spots(plans: &[FilePlan], n: u32) -> Vec<(u32, usize, u8)> {
    let mut cands: Vec<&FilePlan> = plans.iter().filter(|p| p.gz == Gz::None).collect();
    if cands.is_empty() {
        cands = plans.iter().filter(|p| p.gz != Gz::Truncated).collect();
    }
    if cands.is_empty() {
        cands = plans.iter().collect();
    }
    (0..n as usize)
        .map(|i| {
            let p = cands[i * cands.len() / n as usize];
            (p.day, p.server, p.site)
        })
        .collect()
}

/// Removes files a previous run may have left under our own names.
pub(crate) fn clean(root: &Path, servers: &[String]) -> io::Result<()> {
    for s in servers {
        let proxy = root.join(s).join("Logging/HttpProxy");
        if let Ok(folders) = fs::read_dir(&proxy) {
            for folder in folders {
                let Ok(files) = fs::read_dir(folder?.path()) else { continue };
                for e in files {
                    let e = e?;
                    if e.file_name().to_string_lossy().starts_with("HttpProxy_") {
                        fs::remove_file(e.path())?;
                    }
                }
            }
        }
        for site in ["W3SVC1", "W3SVC2"] {
            let dir = root.join(s).join(site);
            let Ok(rd) = fs::read_dir(&dir) else { continue };
            for e in rd {
                let e = e?;
                let name = e.file_name();
                let name = name.to_string_lossy();
                if name.starts_with("u_ex") && (name.ends_with(".log") || name.ends_with(".log.gz")) {
                    fs::remove_file(e.path())?;
                }
            }
        }
    }
    Ok(())
}

struct Counting<W> {
    inner: W,
    n: u64,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let k = self.inner.write(buf)?;
        self.n += k as u64;
        Ok(k)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

type Out = Counting<BufWriter<File>>;

enum Sink {
    Plain(Out),
    Gz(Box<GzEncoder<Out>>),
}

impl Sink {
    fn write_all(&mut self, b: &[u8]) -> io::Result<()> {
        match self {
            Sink::Plain(w) => w.write_all(b),
            Sink::Gz(w) => w.write_all(b),
        }
    }
    fn finish(self) -> io::Result<Out> {
        match self {
            Sink::Plain(w) => Ok(w),
            Sink::Gz(w) => w.finish(),
        }
    }
}

pub(crate) struct FileCtx<'a> {
    pub pop: &'a Population,
    pub root: &'a Path,
    pub date_iso: &'a str,
    pub day_start: i64,
    pub backend_only: bool,
    /// HttpProxy logs are written beside the IIS logs: the front-end lines of
    /// requests HttpProxy logs are duplicates (joined by their `cafeReqId=`).
    pub beside_httpproxy: bool,
}

fn directives(buf: &mut Vec<u8>, date: &str, t: u32, fields: &[Field]) {
    buf.extend_from_slice(b"#Software: Microsoft Internet Information Services 10.0\r\n#Version: 1.0\r\n#Date: ");
    buf.extend_from_slice(date.as_bytes());
    buf.push(b' ');
    buf.extend_from_slice(time_string(t).as_bytes());
    buf.extend_from_slice(b"\r\n#Fields:");
    for f in fields {
        buf.push(b' ');
        buf.extend_from_slice(f.name().as_bytes());
    }
    buf.extend_from_slice(b"\r\n");
}

pub(crate) fn write_file(ctx: &FileCtx, plan: &FilePlan, events: &[Event], acc: &mut Acc) -> io::Result<u64> {
    let path = ctx.root.join(&plan.path);
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)?;
    }
    let out = Counting { inner: BufWriter::with_capacity(1 << 20, File::create(&path)?), n: 0 };
    let gz = |o: Out| Box::new(GzEncoder::new(o, Compression::fast()));
    let mut sink = if plan.gz == Gz::None { Sink::Plain(out) } else { Sink::Gz(gz(out)) };
    let mut r = Renderer::new(ctx.pop);
    r.set_date(ctx.date_iso);
    let mut buf = Vec::with_capacity(1 << 18);
    if plan.bom {
        buf.extend_from_slice(b"\xEF\xBB\xBF");
    }
    let first_t = events.first().map_or(0, Event::t);
    let mut layout_i = 0;
    directives(&mut buf, ctx.date_iso, first_t, plan.layouts[0].1);
    let split = match plan.gz {
        Gz::Multi => events.len() / 2,
        Gz::Truncated => events.len() * 3 / 4,
        _ => usize::MAX,
    };
    let crash = if plan.crash { crash_point(events) } else { None };
    let mut lost = Vec::new();
    let mut total = 0u64;
    let mut member1: Option<u64> = None;
    let mut counting = true;
    for (i, ev) in events.iter().enumerate() {
        if let Some(at) = crash {
            if i == at {
                // The first bytes of the line, then the zeros NTFS leaves
                // where a crashed writer had made room: one malformed line.
                let start = buf.len();
                r.line(ev, plan.layouts[layout_i].1, &mut buf);
                buf.truncate(start + CRASH_KEPT);
                buf.resize(buf.len() + 4096, 0);
                acc.truncated();
                continue;
            }
            if i > at && i < at + CRASH_LOST {
                // Rendered all the same, so the renderer's draws stay those of a file without the crash.
                lost.clear();
                r.line(ev, plan.layouts[layout_i].1, &mut lost);
                continue;
            }
            if i == at + CRASH_LOST {
                directives(&mut buf, ctx.date_iso, ev.t(), plan.layouts[layout_i].1);
            }
        }
        if i == split {
            sink.write_all(&buf)?;
            total += buf.len() as u64;
            buf.clear();
            let o = sink.finish()?;
            member1 = Some(o.n);
            sink = Sink::Gz(gz(o));
            counting = plan.gz != Gz::Truncated;
        }
        while layout_i + 1 < plan.layouts.len() && plan.layouts[layout_i + 1].0 <= ev.t() {
            layout_i += 1;
            directives(&mut buf, ctx.date_iso, ev.t(), plan.layouts[layout_i].1);
        }
        r.line(ev, plan.layouts[layout_i].1, &mut buf);
        // A 401 counts from the IIS line (substatus and Windows error say why).
        let twin = ctx.beside_httpproxy
            && plan.site == FE
            && ev.logged_by_proxy(ctx.pop)
            && ev.kind != Kind::Malformed
            && r.last_status != 401;
        if counting && twin {
            acc.duplicate();
        } else if counting {
            acc.count(ctx.pop, ev, ctx.day_start, ctx.backend_only);
        }
        if buf.len() >= 1 << 18 {
            sink.write_all(&buf)?;
            total += buf.len() as u64;
            buf.clear();
        }
    }
    sink.write_all(&buf)?;
    total += buf.len() as u64;
    if member1.is_none() && matches!(plan.gz, Gz::Multi | Gz::Truncated) {
        let o = sink.finish()?;
        member1 = Some(o.n);
        sink = Sink::Gz(gz(o));
    }
    let mut out = sink.finish()?;
    out.flush()?;
    drop(out);
    if plan.gz == Gz::Truncated {
        let start = member1.expect("split done");
        cut_second_member(&path, start)?;
        acc.truncated();
    }
    Ok(total)
}

/// Lines a crash loses: the one cut short and those after it.
pub(crate) const CRASH_LOST: usize = 6;
/// Bytes of the cut line that were written: its date, time and part of
/// `s-ip`, so it is malformed whatever the layout.
const CRASH_KEPT: usize = 24;

/// Where the crash starts in a file: two thirds in, at the first run of
/// [`CRASH_LOST`] lines of people that follow a line of a person. Only
/// people are lost: the attacks, probes and sign-in failures the truth
/// counts by their own rules stay whole.
fn crash_point(events: &[Event]) -> Option<usize> {
    let person = |e: &Event| e.kind.is_person();
    (1.max(events.len() * 2 / 3)..events.len().saturating_sub(CRASH_LOST + 1))
        .find(|&i| person(&events[i - 1]) && events[i..=i + CRASH_LOST].iter().all(person))
}

/// Cuts the file inside the second member so that no byte of it decodes:
/// a reader then gets exactly the first member and an error, whatever its
/// buffer sizes.
fn cut_second_member(path: &Path, start: u64) -> io::Result<()> {
    let mut f = File::open(path)?;
    let mut tail = Vec::new();
    io::Seek::seek(&mut f, io::SeekFrom::Start(start))?;
    f.read_to_end(&mut tail)?;
    drop(f);
    for k in [40usize, 32, 24, 16, 12, 8, 4] {
        if k >= tail.len() {
            continue;
        }
        let mut d = GzDecoder::new(&tail[..k]);
        let mut sink = Vec::new();
        let failed = d.read_to_end(&mut sink).is_err();
        if failed && sink.is_empty() {
            let f = fs::OpenOptions::new().write(true).open(path)?;
            f.set_len(start + k as u64)?;
            return Ok(());
        }
    }
    Err(io::Error::other("no cut point yields a clean truncation"))
}
