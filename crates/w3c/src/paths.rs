//! Expanding command-line paths into the log files to read, with one rule
//! for links and for what is not a regular file, wherever a path comes from.

use std::collections::{HashMap, HashSet};
use std::ffi::OsStr;
use std::fs::{self, FileType};
use std::io::{BufRead, BufReader, Read, Seek};
use std::path::{Path, PathBuf};

use crate::Error;

/// True for names IIS gives its logs: `*.log`, and `*.gz` for compressed archives
/// (e.g. `u_ex210101_x.log`, `ex2101.log.gz`), compared case-insensitively.
pub fn is_log_name(name: &OsStr) -> bool {
    [&b".log"[..], b".gz"].iter().any(|s| ends_with_ci(name, s))
}

/// Whether `name` ends with `suffix`, ASCII case ignored.
fn ends_with_ci(name: &OsStr, suffix: &[u8]) -> bool {
    let name = name.as_encoded_bytes();
    name.len() >= suffix.len() && name[name.len() - suffix.len()..].eq_ignore_ascii_case(suffix)
}

/// True for names of archives that logs are often kept in (`.zip`, `.7z`,
/// `.rar`, `.tar`, `.tgz`, `.bz2`, `.xz`, `.zst`), compared case-insensitively:
/// none is read, but a reader that lists them can say so rather than leave
/// the logs inside unread without a word.
pub fn is_archive_name(name: &OsStr) -> bool {
    [&b".zip"[..], b".7z", b".rar", b".tar", b".tgz", b".bz2", b".xz", b".zst"].iter().any(|s| ends_with_ci(name, s))
}

/// Expands files and folders into the log files to read: [`collect_paths_named`]
/// with the names of [`is_log_name`].
pub fn collect_paths(paths: &[PathBuf]) -> Result<Vec<PathBuf>, Error> {
    collect_paths_named(paths, is_log_name)
}

/// Expands files and folders into the files to read, taking from folders
/// the files whose name is `wanted`; a file named explicitly is always taken.
///
/// Symbolic links are followed, given or found, to folders as to files (as
/// `rg --follow` does): a `W3SVC1` that links elsewhere is read like one that
/// does not. A folder already walked, reached again through a link (a link
/// to a folder above it would loop), is not walked twice, and a file reached
/// by two paths is listed once, under the first path that reaches it (paths
/// in the order given, folders walked in name order). A missing
/// path, a link given or of a wanted name that leads nowhere
/// ([`Error::BrokenLink`]), and a path given or a wanted name found that is
/// neither a regular file nor a folder (a FIFO, socket or device: see
/// [`Error::NotAFile`]) are errors. The result is
/// sorted by path.
pub fn collect_paths_named(paths: &[PathBuf], wanted: impl Fn(&OsStr) -> bool) -> Result<Vec<PathBuf>, Error> {
    let mut walk = Walk { wanted: &wanted, walked: HashSet::new(), found: Vec::new() };
    for p in paths {
        let meta = fs::metadata(p).map_err(|e| unreadable(p, e))?;
        if meta.is_dir() {
            walk.folder(p, false)?;
        } else if let Some(kind) = special_kind(&meta.file_type()) {
            return Err(Error::NotAFile { path: p.clone(), kind });
        } else {
            walk.found.push(p.clone());
        }
    }
    let mut found = walk.found;
    found.sort();
    let mut seen = HashSet::with_capacity(found.len());
    found.retain(|p| seen.insert(canonical(p).unwrap_or_else(|_| p.clone())));
    Ok(found)
}

/// The error of a path whose metadata cannot be read: a link that leads
/// nowhere is named as one, with where it points, rather than as the
/// "No such file or directory" of a path that seems to be there.
fn unreadable(path: &Path, e: std::io::Error) -> Error {
    if e.kind() == std::io::ErrorKind::NotFound {
        if let Ok(target) = fs::read_link(path) {
            return Error::BrokenLink { path: path.to_path_buf(), target };
        }
    }
    Error::io(path, e)
}

/// `path` with every link resolved, as a folder's or file's identity. Where
/// the platform cannot say for a path that exists (Wine answers "more data
/// available" past MAX_PATH), the path as given stands in: the walk goes on,
/// and only loops through links on such paths go unnoticed.
fn canonical(path: &Path) -> std::io::Result<PathBuf> {
    match fs::canonicalize(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Ok(path.to_path_buf()),
        other => other,
    }
}

struct Walk<'a> {
    wanted: &'a dyn Fn(&OsStr) -> bool,
    /// Folders walked, by their canonical path.
    walked: HashSet<PathBuf>,
    found: Vec<PathBuf>,
}

impl Walk<'_> {
    /// Walks `dir`, a folder given (`found` false) or found while walking:
    /// one removed since it was listed (old logs cleaned up) is skipped.
    fn folder(&mut self, dir: &Path, found: bool) -> Result<(), Error> {
        let gone = |e: &std::io::Error| found && e.kind() == std::io::ErrorKind::NotFound;
        let listed = canonical(dir).map(|id| self.walked.insert(id).then(|| fs::read_dir(dir)));
        let entries = match listed {
            Ok(Some(Ok(entries))) => entries,
            // Walked already: through another link, or a link back up that would loop.
            Ok(None) => return Ok(()),
            Ok(Some(Err(e))) | Err(e) if gone(&e) => return Ok(()),
            Ok(Some(Err(e))) | Err(e) => return Err(Error::io(dir, e)),
        };
        // In name order, so that which path a file is listed under does not
        // depend on the order the file system lists a folder in.
        let mut entries = entries.collect::<Result<Vec<_>, _>>().map_err(|e| Error::io(dir, e))?;
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let path = entry.path();
            let wanted = (self.wanted)(&entry.file_name());
            let mut ty = entry.file_type().map_err(|e| Error::io(&path, e))?;
            if ty.is_symlink() {
                ty = match fs::metadata(&path) {
                    Ok(meta) => meta.file_type(),
                    // Removed since it was listed.
                    Err(_) if fs::symlink_metadata(&path).is_err() => continue,
                    Err(e) if wanted => return Err(unreadable(&path, e)),
                    // A dangling link of another name is none of ours.
                    Err(_) => continue,
                };
            }
            if ty.is_dir() {
                self.folder(&path, true)?;
            } else if wanted {
                if let Some(kind) = special_kind(&ty) {
                    return Err(Error::NotAFile { path, kind });
                }
                self.found.push(path);
            }
        }
        Ok(())
    }
}

/// For each of `paths`, the index of an earlier one that holds the same
/// bytes, if any: a log copied into two folders (a share filled twice, a
/// backup beside the original) would be counted twice. Files are told apart
/// by length, then by their first 4 KiB; only those alike in both are
/// compared whole, so a tree without copies costs a `stat` a file and a
/// small read for the few of one length. Empty files are no one's copy. A
/// `.gz` file is the copy of a plain one it decompresses to (a log
/// compressed and kept both ways, in one folder or two), found by the
/// length gzip's trailer keeps, or beside its `NAME`.
pub fn copies(paths: &[PathBuf]) -> Result<Vec<Option<usize>>, Error> {
    let mut copy_of = vec![None; paths.len()];
    let lens = paths
        .iter()
        .map(|path| fs::metadata(path).map(|m| m.len()).map_err(|e| Error::io(path, e)))
        .collect::<Result<Vec<u64>, Error>>()?;
    let mut by_len: HashMap<u64, Vec<usize>> = HashMap::new();
    for (i, &len) in lens.iter().enumerate() {
        if len > 0 {
            by_len.entry(len).or_default().push(i);
        }
    }
    let mut alike: Vec<Vec<usize>> = by_len.into_values().filter(|group| group.len() > 1).collect();
    alike.sort_unstable();
    for group in alike {
        let mut by_head: HashMap<Vec<u8>, Vec<usize>> = HashMap::new();
        for &i in &group {
            by_head.entry(head(&paths[i])?).or_default().push(i);
        }
        for (_, mut same) in by_head {
            same.sort_unstable();
            // Each file against the earlier ones that are no copy themselves.
            let mut originals: Vec<usize> = Vec::new();
            for i in same {
                let mut found = None;
                for &o in &originals {
                    if same_bytes(&paths[o], &paths[i])? {
                        found = Some(o);
                        break;
                    }
                }
                match found {
                    Some(o) => copy_of[i] = Some(o),
                    None => originals.push(i),
                }
            }
        }
    }
    let is_gz = |p: &Path| p.extension().is_some_and(|e| e.eq_ignore_ascii_case("gz"));
    let index: HashMap<&Path, usize> = paths.iter().enumerate().map(|(i, p)| (p.as_path(), i)).collect();
    // Plain originals by their length as gzip's trailer keeps it (mod 2^32).
    let mut plain_by_size: HashMap<u32, Vec<usize>> = HashMap::new();
    for (i, path) in paths.iter().enumerate() {
        if !is_gz(path) && copy_of[i].is_none() && lens[i] > 0 {
            plain_by_size.entry(lens[i] as u32).or_default().push(i);
        }
    }
    for (i, path) in paths.iter().enumerate() {
        if !is_gz(path) || copy_of[i].is_some() {
            continue;
        }
        // `NAME` beside it first (its trailer only sizes the last member of
        // a gzip of several), then any plain file of the size it inflates to.
        let beside = index.get(path.with_extension("").as_path()).copied();
        let sized = gzip_size(path)?.and_then(|size| plain_by_size.get(&size));
        for o in beside.into_iter().chain(sized.into_iter().flatten().copied()) {
            if copy_of[o].is_none() && !is_gz(&paths[o]) && same_decompressed(path, &paths[o])? {
                copy_of[i] = Some(o);
                break;
            }
        }
    }
    Ok(copy_of)
}

/// The length a gzip file says it inflates to (its trailer's ISIZE, mod
/// 2^32, of its last member); `None` for a file too short to be gzip.
fn gzip_size(path: &Path) -> Result<Option<u32>, Error> {
    let io_err = |e| Error::io(path, e);
    let mut file = fs::File::open(path).map_err(io_err)?;
    if file.metadata().map_err(io_err)?.len() < 18 {
        return Ok(None);
    }
    file.seek(std::io::SeekFrom::End(-4)).map_err(io_err)?;
    let mut size = [0u8; 4];
    file.read_exact(&mut size).map_err(io_err)?;
    Ok(Some(u32::from_le_bytes(size)))
}

/// The first 4 KiB of `path`.
fn head(path: &Path) -> Result<Vec<u8>, Error> {
    let mut head = Vec::with_capacity(4096);
    let file = fs::File::open(path).map_err(|e| Error::io(path, e))?;
    file.take(4096).read_to_end(&mut head).map_err(|e| Error::io(path, e))?;
    Ok(head)
}

/// Whether two files hold the same bytes, read side by side.
fn same_bytes(a: &Path, b: &Path) -> Result<bool, Error> {
    same_reads(buffered(a)?, buffered(b)?).map_err(|(second, e)| Error::io(if second { b } else { a }, e))
}

/// Whether the gzip file `gz` decompresses to the bytes of `plain`; a
/// damaged gzip is no copy.
fn same_decompressed(gz: &Path, plain: &Path) -> Result<bool, Error> {
    let inflated = BufReader::with_capacity(64 << 10, flate2::read::MultiGzDecoder::new(buffered(gz)?));
    match same_reads(inflated, buffered(plain)?) {
        Err((false, _)) => Ok(false),
        Err((true, e)) => Err(Error::io(plain, e)),
        Ok(same) => Ok(same),
    }
}

fn buffered(path: &Path) -> Result<BufReader<fs::File>, Error> {
    fs::File::open(path).map(|f| BufReader::with_capacity(64 << 10, f)).map_err(|e| Error::io(path, e))
}

/// Whether two streams hold the same bytes; an error says whether it was the second's.
fn same_reads(mut a: impl BufRead, mut b: impl BufRead) -> Result<bool, (bool, std::io::Error)> {
    loop {
        let da = a.fill_buf().map_err(|e| (false, e))?;
        let db = b.fill_buf().map_err(|e| (true, e))?;
        let n = da.len().min(db.len());
        if n == 0 {
            return Ok(da.is_empty() && db.is_empty());
        }
        if da[..n] != db[..n] {
            return Ok(false);
        }
        a.consume(n);
        b.consume(n);
    }
}

/// Opens the file at `path` to read it, having refused what is neither a
/// regular file nor a folder ([`Error::NotAFile`]): opening a FIFO waits
/// for a writer. Every reader of a named log file opens it so.
pub fn open_file(path: &Path) -> Result<fs::File, Error> {
    regular_file(path)?;
    fs::File::open(path).map_err(|e| Error::io(path, e))
}

/// Fails for what exists but is neither a regular file nor a folder, before
/// anything opens it: opening a FIFO waits for a writer.
pub(crate) fn regular_file(path: &Path) -> Result<(), Error> {
    let meta = fs::metadata(path).map_err(|e| unreadable(path, e))?;
    match special_kind(&meta.file_type()) {
        Some(kind) => Err(Error::NotAFile { path: path.to_path_buf(), kind }),
        None => Ok(()),
    }
}

/// What a file that is neither regular nor a folder is; `None` for those two.
fn special_kind(ty: &FileType) -> Option<&'static str> {
    if ty.is_file() || ty.is_dir() {
        return None;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if ty.is_fifo() {
            return Some("a FIFO");
        }
        if ty.is_socket() {
            return Some("a socket");
        }
        if ty.is_block_device() || ty.is_char_device() {
            return Some("a device");
        }
    }
    Some("a special file")
}
