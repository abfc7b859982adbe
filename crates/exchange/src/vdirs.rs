//! Exchange's virtual directories and the scripts it ships in each
//! (`data/exchange-files.toml`): what makes a request for a script a web
//! shell, and a folder a place Exchange does not serve.
//!
//! Looked up on every log line, so nothing here allocates: the shipped
//! scripts are kept lower-cased and sorted, and compared without case.

use std::cmp::Ordering;

use serde::Deserialize;

use crate::data_file;

#[derive(Debug, thiserror::Error)]
pub enum VdirError {
    #[error("exchange files line {line}: {message}")]
    Toml { line: usize, message: String },
    #[error("exchange files: virtual directory `{path}` does not start with '/'")]
    BadPath { path: String },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileDef {
    script_extensions: Vec<String>,
    #[serde(default)]
    other_extensions: Vec<String>,
    #[serde(default)]
    other_folders: Vec<String>,
    vdir: Vec<VdirDef>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VdirDef {
    path: String,
    #[serde(default)]
    #[allow(dead_code)]
    physical: Vec<String>,
    #[serde(default)]
    aliases: Vec<String>,
    #[serde(default)]
    handlers: Vec<String>,
    #[serde(default)]
    scripts: Vec<String>,
}

/// One virtual directory: the paths it is served at (lower-case, without
/// the trailing `/`; empty for the site root) and what it ships.
#[derive(Clone, Debug)]
struct Vdir {
    paths: Vec<Box<str>>,
    /// Scripts and handlers, lower-cased, sorted.
    shipped: Vec<Box<str>>,
}

/// Exchange's virtual directories and scripts, compiled for lookups.
#[derive(Clone, Debug)]
pub struct ExchangeFiles {
    /// Lower-case, without the dot: the script types Exchange ships.
    script_extensions: Vec<Box<str>>,
    /// Script types no Exchange build ships.
    other_extensions: Vec<Box<str>>,
    /// First path segments legitimate on a Client Access server besides the vdirs.
    other_folders: Vec<Box<str>>,
    vdirs: Vec<Vdir>,
}

const BUILTIN: &str = include_str!("../../../data/exchange-files.toml");

/// What a request path is to Exchange.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PathFacts {
    /// The path names a script (any script type, shipped or not).
    pub script: bool,
    /// A script Exchange does not ship where it was asked for.
    pub unshipped_script: bool,
    /// Under a folder that is none of Exchange's virtual directories.
    pub outside_vdirs: bool,
}

impl ExchangeFiles {
    /// The lists shipped in `data/exchange-files.toml`.
    pub fn builtin() -> ExchangeFiles {
        ExchangeFiles::from_toml(BUILTIN).expect("built-in exchange files are valid")
    }

    pub fn from_toml(text: &str) -> Result<ExchangeFiles, VdirError> {
        let file: FileDef = data_file::parse(text).map_err(|(line, message)| VdirError::Toml { line, message })?;
        let lower = |v: Vec<String>| v.into_iter().map(|s| s.to_ascii_lowercase().into_boxed_str()).collect::<Vec<_>>();
        let mut vdirs = Vec::with_capacity(file.vdir.len());
        for def in file.vdir {
            let mut paths = Vec::new();
            for path in std::iter::once(def.path).chain(def.aliases) {
                let Some(rest) = path.strip_prefix('/') else { return Err(VdirError::BadPath { path }) };
                paths.push(rest.trim_end_matches('/').to_ascii_lowercase().into_boxed_str());
            }
            let mut shipped = lower(def.scripts);
            shipped.extend(lower(def.handlers));
            shipped.sort_unstable();
            shipped.dedup();
            vdirs.push(Vdir { paths, shipped });
        }
        Ok(ExchangeFiles {
            script_extensions: lower(file.script_extensions),
            other_extensions: lower(file.other_extensions),
            other_folders: lower(file.other_folders),
            vdirs,
        })
    }

    /// What `stem` (decoded, as IIS routes it) is to Exchange. On a back-end
    /// site (`backend`) only paths under a known virtual directory are
    /// judged: the back end also serves Exchange's own sites under other names.
    pub fn facts(&self, stem: &str, backend: bool) -> PathFacts {
        let path = stem.strip_prefix('/').unwrap_or(stem);
        let first = path.split('/').next().unwrap_or("");
        let in_folder = path.len() > first.len();
        // The site root serves only the files directly in it, and no hidden
        // one (`/.env`, `/.DS_Store`): IIS's wwwroot has none, and scanners
        // fish for them; `/.well-known/` is an other folder.
        let hidden = first.starts_with('.');
        let vdir = self.vdir_of(path).filter(|&(_, prefix)| prefix > 0 || !(in_folder || hidden));
        let known_folder = vdir.is_some() || self.is_other_folder(first);
        let outside_vdirs = !backend && !known_folder;
        let Some((end, shipped_type)) = self.script_end(path) else {
            return PathFacts { script: false, unshipped_script: false, outside_vdirs };
        };
        let unshipped = match vdir {
            _ if !shipped_type => true,
            // The script lies in the vdir (not in the part of the path the prefix covers).
            Some((vdir, prefix)) if end > prefix => {
                let relative = path[prefix..end].trim_start_matches('/');
                vdir.shipped.binary_search_by(|s| cmp_ignore_case(s, relative)).is_err()
            }
            _ => !backend,
        };
        PathFacts { script: true, unshipped_script: unshipped, outside_vdirs }
    }

    /// The virtual directory `path` (without its leading `/`) lies in, and the
    /// length of the prefix that names it: the longest path that matches
    /// whole segments. The site root matches with a prefix of 0.
    fn vdir_of(&self, path: &str) -> Option<(&Vdir, usize)> {
        let mut best: Option<(&Vdir, usize)> = None;
        for vdir in &self.vdirs {
            for p in &vdir.paths {
                let matches = path.len() >= p.len()
                    && path.as_bytes()[..p.len()].eq_ignore_ascii_case(p.as_bytes())
                    && (p.is_empty() || matches!(path.as_bytes().get(p.len()), None | Some(b'/')));
                if matches && best.is_none_or(|(_, len)| p.len() > len) {
                    best = Some((vdir, p.len()));
                }
            }
        }
        best
    }

    fn is_other_folder(&self, segment: &str) -> bool {
        self.other_folders.iter().any(|f| f.eq_ignore_ascii_case(segment))
    }

    /// The end of the first path segment with a script extension, and
    /// whether Exchange ships scripts of that type.
    fn script_end(&self, path: &str) -> Option<(usize, bool)> {
        let mut start = 0;
        for segment in path.split('/') {
            let end = start + segment.len();
            if let Some(dot) = segment.rfind('.') {
                let ext = &segment[dot + 1..];
                if self.script_extensions.iter().any(|e| e.eq_ignore_ascii_case(ext)) {
                    return Some((end, true));
                }
                if self.other_extensions.iter().any(|e| e.eq_ignore_ascii_case(ext)) {
                    return Some((end, false));
                }
            }
            start = end + 1;
        }
        None
    }
}

/// Compare a lower-cased `a` with `b` as if `b` were lower-cased too.
fn cmp_ignore_case(a: &str, b: &str) -> Ordering {
    a.bytes().cmp(b.bytes().map(|c| c.to_ascii_lowercase()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(stem: &str) -> (bool, bool, bool) {
        let f = ExchangeFiles::builtin().facts(stem, false);
        (f.script, f.unshipped_script, f.outside_vdirs)
    }

    #[test]
    fn shipped_scripts_and_handlers_are_exchanges() {
        for stem in [
            "/owa/auth/logon.aspx",
            "/OWA/AUTH/LOGON.ASPX",
            "/owa/auth/RedirSuiteServiceProxy.aspx",
            "/owa/service.svc",
            "/owa/service.svc/s/GetFileAttachment",
            "/owa/Calendar/anonymouscalendar.aspx",
            "/ecp/DDI/DDIService.svc/GetList",
            "/ecp/RulesEditor/InboxRules.svc/NewObject",
            "/EWS/Exchange.asmx",
            "/ews/exchange.asmx/wssecurity",
            "/EWS/mrsproxy.svc",
            "/autodiscover/autodiscover.svc/WSSecurity",
            "/PushNotifications/service.svc",
        ] {
            assert_eq!(facts(stem), (true, false, false), "{stem}");
        }
    }

    #[test]
    fn handlers_and_files_that_are_not_scripts() {
        for stem in [
            "/",
            "/owa/",
            "/owa/auth.owa",
            "/Microsoft-Server-ActiveSync",
            "/Microsoft-Server-ActiveSync/default.eas",
            "/autodiscover/autodiscover.json",
            "/Autodiscover/Autodiscover.xml",
            "/mapi/emsmdb/",
            "/rpc/rpcproxy.dll",
            "/OAB/5d0b2dcc-1d15-4b4c-b58f-4f1d1e5e3c4b/oab.xml",
            "/owa/HealthCheck.htm",
            "/favicon.ico",
            "/.well-known/acme-challenge/abc",
            "/powershell",
        ] {
            assert_eq!(facts(stem), (false, false, false), "{stem}");
        }
    }

    #[test]
    fn web_shells_from_public_write_ups() {
        // tests/data/SOURCES-real.md: HelseCERT, winterfell-hunt, artefacts.help, trustedsec.
        for stem in [
            "/owa/auth/RedirSuiteServerProxy.aspx",
            "/owa/auth/errorFS.aspx",
            "/owa/auth/Current/themes/resources/x.aspx",
            "/owa/auth/aKdMadOeT.aspx",
            "/Microsoft-Server-ActiveSync/error.aspx",
            "/aspnet_client/system_web/shell.aspx",
            "/shell.aspx",
            "/owa/auth/x.php",
            "/ecp/y.asp",
        ] {
            let (script, unshipped, _) = facts(stem);
            assert!(script && unshipped, "{stem}");
        }
        assert_eq!(facts("/1/shell.aspx"), (true, true, true));
    }

    #[test]
    fn folders_outside_exchange() {
        assert_eq!(facts("/1/CEO.pst"), (false, false, true));
        assert_eq!(facts("/wp-admin/"), (false, false, true));
        assert_eq!(facts("/owafoo/x"), (false, false, true));
        assert_eq!(facts("/robots.txt"), (false, false, false));
        // Hidden files at the site root are no more IIS's than Exchange's.
        for stem in ["/.env", "/.DS_Store", "/.git/config", "/.aws/credentials", "/.ENV"] {
            assert_eq!(facts(stem), (false, false, true), "{stem}");
        }
        assert_eq!(facts("/.well-known/acme-challenge/abc"), (false, false, false));
        // The back end: only known virtual directories are judged.
        let files = ExchangeFiles::builtin();
        assert_eq!(
            files.facts("/rancertloc/CertMgmt/EditCertificate.aspx", true),
            PathFacts { script: true, unshipped_script: false, outside_vdirs: false }
        );
        assert!(files.facts("/owa/auth/x.aspx", true).unshipped_script);
        assert!(!files.facts("/PowerShell-Proxy/x", true).outside_vdirs);
    }

    #[test]
    fn errors() {
        assert!(matches!(ExchangeFiles::from_toml("script_extensions = 1"), Err(VdirError::Toml { line: 1, .. })));
        let bad = "script_extensions = []\n[[vdir]]\npath = \"owa\"\n";
        assert!(matches!(ExchangeFiles::from_toml(bad), Err(VdirError::BadPath { .. })));
    }
}
