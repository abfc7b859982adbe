//! `casguard ranges update` on saved answers of Microsoft's endpoints web
//! service (never the network), and audit's warning about old ranges.

use crate::util::{casguard, json, ok, refused, source_networks, text, workspace};

fn data(name: &str) -> String {
    workspace().join("tests/data/ranges").join(name).display().to_string()
}

/// Runs `casguard ranges update --endpoints ENDPOINTS --endpoints-version VERSION [EXTRA..]`.
fn update(endpoints: &str, version: &str, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["ranges", "update", "--endpoints", endpoints, "--endpoints-version", version];
    args.extend(extra);
    casguard(&args)
}

/// Today as an endpoints version, `YYYYMMDD00`.
fn today_version() -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let date = w3c::time::format_rfc3339(now);
    format!("{}{}{}00", &date[..4], &date[5..7], &date[8..10])
}

#[test]
fn update_writes_the_exchange_ranges_with_their_version_and_autodetect() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("m365.txt");
    let endpoints = data("m365-endpoints-exchange-2023073100.derived.json");
    let all_instances = data("m365-version-all-instances.example.json");
    let run = ok(update(&endpoints, &all_instances, &["--out", out.to_str().unwrap()]));
    assert!(text(&run.stderr).contains("36 ranges, endpoints version"), "{}", text(&run.stderr));
    let written = std::fs::read_to_string(&out).unwrap();
    let version = written.lines().find_map(|l| l.strip_prefix("# endpoints-version: ")).unwrap();
    assert_eq!(version.len(), 10);
    // IDs 1 and 2 share their addresses: each range once.
    assert_eq!(written.matches("40.96.0.0/13 microsoft365").count(), 1);
    assert!(written.contains("52.125.128.0/20 microsoft365"), "AutoDetect, which the service does not list");

    // A version given as such; the China instance of the all-instances answer.
    let china = ok(update(&endpoints, &all_instances, &["--instance", "China"]));
    assert!(text(&china.stdout).contains("# endpoints-version: "));
    let bad = refused(update(&endpoints, "next-week", &[]));
    assert!(bad.contains("next-week"), "{bad}");
    let wrong = refused(update(&data("ServiceTags_Public_20251028.json"), "2026080100", &[]));
    assert!(wrong.contains("ServiceTags_Public_20251028.json"), "{wrong}");
}

#[test]
fn audit_warns_when_the_ranges_in_use_are_old_and_a_current_list_quiets_it() {
    let logs = workspace().join("examples/logs/EX01/W3SVC1");
    let logs = logs.to_str().unwrap();
    // The built-in list is endpoints version 2023073100, last found current
    // on 2026-08-14: the note counts from that day.
    let old = casguard(&["audit", "--format", "json", logs]);
    let stderr = text(&old.stderr);
    assert!(stderr.contains("endpoints version 2023073100, last checked against Microsoft's list"), "{stderr}");
    assert!(stderr.contains("days ago (2026-08-14)"), "{stderr}");
    let report: serde_json::Value = serde_json::from_slice(&old.stdout).unwrap();
    assert!(report["notes"].to_string().contains("ranges update"));

    let dir = tempfile::tempdir().unwrap();
    let current = dir.path().join("m365.txt");
    let endpoints = data("m365-endpoints-exchange-2023073100.derived.json");
    ok(update(&endpoints, &today_version(), &["--out", current.to_str().unwrap()]));
    let fresh = casguard(&["audit", "--format", "json", "--ranges", current.to_str().unwrap(), logs]);
    assert!(!text(&fresh.stderr).contains("ranges update"), "{}", text(&fresh.stderr));
    let report = json(&["audit", "--format", "json", "--ranges", current.to_str().unwrap(), logs]);
    assert!(!report["notes"].to_string().contains("ranges update"));
    // Outlook mobile's cloud addresses are still Microsoft's.
    let networks: Vec<String> = source_networks(&report).collect();
    assert!(networks.iter().any(|n| n == "microsoft365"), "{networks:?}");
}

/// A stand-in for endpoints.office.com: the saved answers by path, each
/// request line sent back on `seen`.
#[cfg(unix)]
fn endpoints_service(seen: std::sync::mpsc::Sender<String>) -> std::net::SocketAddr {
    use std::io::{BufRead, BufReader, Write};
    let version = std::fs::read(data("m365-version-worldwide.example.json")).unwrap();
    let endpoints = std::fs::read(data("m365-endpoints-exchange-2023073100.derived.json")).unwrap();
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { return };
            let mut reader = BufReader::new(s.try_clone().unwrap());
            let mut first = String::new();
            let _ = reader.read_line(&mut first);
            // The rest of the head.
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                line.clear();
            }
            let body: &[u8] = if first.contains("/version/") { &version } else { &endpoints };
            let _ = seen.send(first.trim().to_string());
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                body.len()
            );
            let _ = s.write_all(body);
        }
    });
    addr
}

/// `--fetch` asks the service over HTTPS (here our own gateway with a
/// certificate of its own, in front of the saved answers) and writes what
/// the saved files give; a server it does not trust is refused.
#[cfg(unix)]
#[test]
fn fetch_asks_the_service_over_https_and_trusts_only_what_it_should() {
    use crate::gateway::{certificate, kill, spawn_with_stderr, wait_for};
    let dir = tempfile::tempdir().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let service = endpoints_service(tx);
    let policy = dir.path().join("p.toml");
    std::fs::write(&policy, "default = 'allow'\n").unwrap();
    let (cert, key) = certificate(dir.path(), "service");
    let (child, lines) = spawn_with_stderr(
        crate::util::bin()
            .args(["gateway", "--policy"])
            .arg(&policy)
            .args(["--listen", "127.0.0.1:0", "--tls-cert"])
            .arg(&cert)
            .arg("--tls-key")
            .arg(&key)
            .args(["--upstream", &format!("http://{service}"), "--drain-timeout", "1"]),
    );
    // Stopped however the test ends: a gateway left running holds the test's output open.
    struct Stop(std::process::Child);
    impl Drop for Stop {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let line = wait_for(&lines, "listening on https://");
    let port = line.rsplit(':').next().unwrap().trim().to_string();
    let url = format!("https://localhost:{port}");
    let child = Stop(child);

    let fetched = ok(casguard(&["ranges", "update", "--fetch", "--service", &url, "--ca", cert.to_str().unwrap()]));
    let endpoints = data("m365-endpoints-exchange-2023073100.derived.json");
    let saved = ok(update(&endpoints, &data("m365-version-worldwide.example.json"), &[]));
    let ranges = |out: &std::process::Output| -> Vec<String> {
        text(&out.stdout).lines().filter(|l| !l.starts_with('#')).map(str::to_string).collect()
    };
    assert!(ranges(&fetched).len() > 30);
    assert_eq!(ranges(&fetched), ranges(&saved));
    assert_eq!(
        text(&fetched.stdout).lines().find(|l| l.starts_with("# endpoints-version:")),
        text(&saved.stdout).lines().find(|l| l.starts_with("# endpoints-version:"))
    );
    let asked: Vec<String> = rx.try_iter().collect();
    assert_eq!(asked.len(), 2, "{asked:?}");
    assert!(asked[0].starts_with("GET /version/Worldwide?ClientRequestId="), "{asked:?}");
    assert!(asked[1].starts_with("GET /endpoints/Worldwide?ServiceAreas=Exchange&ClientRequestId="), "{asked:?}");
    let id = |l: &str| l.split("ClientRequestId=").nth(1).unwrap().split(' ').next().unwrap().to_string();
    assert_eq!(id(&asked[0]), id(&asked[1]), "one ClientRequestId per run");
    assert_eq!(id(&asked[0]).len(), 36);

    // Without --ca the test certificate is no one's: refused, nothing written.
    let untrusted = casguard(&["ranges", "update", "--fetch", "--service", &url]);
    assert!(text(&untrusted.stdout).is_empty());
    let err = refused(untrusted);
    assert!(err.contains(&url), "{err}");
    let plain = casguard(&["ranges", "update", "--fetch", "--service", &format!("http://{service}")]);
    assert!(text(&plain.stderr).contains("only https://"), "{}", text(&plain.stderr));
    kill(&child.0, "-TERM");
}

#[test]
fn the_help_shows_the_curl_commands_on_lines_of_their_own_to_paste() {
    // The README sends an admin without Internet on the CAS here for them.
    let help = text(&ok(casguard(&["ranges", "update", "--help"])).stdout);
    let lines: Vec<&str> = help.lines().map(str::trim).collect();
    for method in ["version/Worldwide?", "endpoints/Worldwide?ServiceAreas=Exchange&"] {
        let curl = lines.iter().find(|l| l.contains(method)).unwrap_or_else(|| panic!("{method}: {help}"));
        assert!(curl.starts_with("curl -o ") && curl.ends_with("ClientRequestId=$id\""), "{curl}\n{help}");
    }
    assert!(lines.contains(&"id=$(uuidgen)"), "{help}");
}

#[test]
fn an_endpoints_version_that_is_no_version_and_no_file_is_named_so() {
    let endpoints = data("m365-endpoints-exchange-2023073100.derived.json");
    for given in ["2026133100", "version.json"] {
        let e = refused(update(&endpoints, given, &[]));
        assert!(
            e.contains(&format!(
                "--endpoints-version {given}: neither a version (YYYYMMDDNN, such as 2026120400) nor a file"
            )),
            "{e}"
        );
    }
}

#[test]
fn without_answers_it_names_both_ways_the_saved_answers_and_fetch() {
    let e = refused(casguard(&["ranges", "update"]));
    assert!(e.contains("--endpoints <FILE>") && e.contains("--fetch"), "{e}");
    // The saved answers go in pairs, and are not fetched as well.
    let e = refused(casguard(&["ranges", "update", "--endpoints", "endpoints.json"]));
    assert!(e.contains("--endpoints-version"), "{e}");
    let e = refused(casguard(&["ranges", "update", "--endpoints-version", "2026120400"]));
    assert!(e.contains("--endpoints <FILE>"), "{e}");
    let e =
        refused(casguard(&["ranges", "update", "--fetch", "--endpoints", "e.json", "--endpoints-version", "v.json"]));
    assert!(e.contains("cannot be used with"), "{e}");
}
