//! The public HttpProxy files of Exchange 2016 CU23 (tests/data/httpproxy,
//! CC0, see tests/data/SOURCES-real.md): every line is read, none is malformed.

use std::path::{Path, PathBuf};

use httpproxy::{is_httpproxy_file, scan_file, Field, Record};
use w3c::ScanOptions;

fn samples() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/httpproxy/artefacts-help");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap()
        .flat_map(|d| std::fs::read_dir(d.unwrap().path()).unwrap())
        .map(|f| f.unwrap().path())
        .collect();
    files.sort();
    files
}

/// (protocol folder, method, stem, auth type, user, status) of every line.
fn rows(path: &Path) -> (Vec<[String; 7]>, w3c::FileStats) {
    let mut rows = Vec::new();
    let stats = scan_file(path, &ScanOptions::default(), &mut |r: &Record<'_>| {
        assert_eq!(r.len(), 74, "Exchange 2016 CU23 writes 74 fields");
        let text = |f: Field| {
            let mut s = String::new();
            r.value_into(f, &mut s);
            s
        };
        assert!(r.timestamp().is_some_and(|t| (1_672_000_000..1_674_000_000).contains(&t)));
        rows.push([
            text(Field::Protocol),
            text(Field::Method),
            text(Field::UrlStem),
            text(Field::AuthenticationType),
            text(Field::AuthenticatedUser),
            text(Field::HttpStatus),
            text(Field::UserAgent),
        ]);
    })
    .unwrap();
    (rows, stats)
}

#[test]
fn every_public_line_is_read_and_none_is_malformed() {
    let files = samples();
    assert_eq!(files.len(), 8);
    let mut all = Vec::new();
    for path in &files {
        assert!(is_httpproxy_file(path).unwrap(), "{} is recognised by content", path.display());
        let (rows, stats) = rows(path);
        assert_eq!(stats.malformed_total(), 0, "{}: {:?}", path.display(), stats.first_malformed);
        assert_eq!(stats.directives, 5, "{}", path.display());
        assert_eq!(stats.records(), rows.len() as u64);
        all.extend(rows);
    }
    assert_eq!(all.len(), 11);
    let find = |protocol: &str| all.iter().find(|r| r[0] == protocol).unwrap();
    assert_eq!(
        find("Eas")[1..],
        [
            "OPTIONS",
            "/Microsoft-Server-ActiveSync/default.eas",
            "Basic",
            "DOMAIN\\username",
            "403",
            "Outlook-iOS-Android/1.0"
        ]
    );
    assert_eq!(find("Autodiscover")[3..6], ["NTLM", "DOMAIN\\username", "200"]);
    assert_eq!(find("Ecp")[3..], ["FBA", "", "200", "Mozilla/5.0 zgrab/0.x"]);
    assert_eq!(find("PowerShell")[3], "Kerberos");
    assert_eq!(find("Mapi")[3], "Negotiate");
    // Commas in the user agent were replaced by spaces when the line was written.
    assert!(find("RpcHttp")[6].contains("(KHTML  like Gecko)"));
}

#[test]
fn a_w3c_log_is_not_taken_for_an_httpproxy_log() {
    let iis = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/iis/helsecert-owa-auth-webshell.log");
    assert!(!is_httpproxy_file(&iis).unwrap());
}
