//! `casguard gateway` as an admin runs it: fail closed on a bad policy,
//! serve, reload on SIGHUP, stop on SIGTERM, and leave an access log that
//! `casguard audit` and `simulate` read.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::util::{bin, refused, temp_file, unwritable};

/// A minimal keep-alive upstream: 200 "ok" to every request without a body.
pub(crate) fn upstream() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { return };
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    match s.read(&mut chunk) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                    while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        buf.drain(..end + 4);
                        if s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok").is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    addr
}

/// One request on a fresh connection; the status code.
fn get(addr: SocketAddr, path: &str, ua: &str, auth: &str) -> u16 {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let auth = if auth.is_empty() { String::new() } else { format!("Authorization: {auth}\r\n") };
    write!(s, "GET {path} HTTP/1.1\r\nHost: mail.contoso.com\r\nUser-Agent: {ua}\r\n{auth}Connection: close\r\n\r\n")
        .unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0)
}

pub(crate) fn kill(child: &Child, signal: &str) {
    let ok = Command::new("kill").args([signal, &child.id().to_string()]).status().unwrap().success();
    assert!(ok);
}

/// Start the gateway; returns it, its address, and its stderr lines.
fn start(policy: &Path, dir: &Path, up: SocketAddr) -> (Child, SocketAddr, mpsc::Receiver<String>) {
    let (child, rx) = spawn_with_stderr(
        bin()
            .args(["gateway", "--policy"])
            .arg(policy)
            .args(["--listen", "127.0.0.1:0", "--upstream", &format!("http://{up}"), "--access-log"])
            .arg(dir.join("logs"))
            .args(["--reload-interval", "60", "--drain-timeout", "5"]),
    );
    let addr = plain_listener(&rx);
    (child, addr, rx)
}

/// Spawns `cmd` with its stderr piped; the child, and its stderr a line at a
/// time, read on a thread of its own.
pub(crate) fn spawn_with_stderr(cmd: &mut Command) -> (Child, mpsc::Receiver<String>) {
    let mut child = cmd.stderr(Stdio::piped()).spawn().unwrap();
    let (tx, rx) = mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    (child, rx)
}

/// Waits for the line naming the plain-HTTP listener; its address.
pub(crate) fn plain_listener(rx: &mpsc::Receiver<String>) -> SocketAddr {
    let line = wait_for(rx, "listening on http://");
    line.rsplit("http://").next().unwrap().trim().parse().unwrap()
}

pub(crate) fn wait_for(rx: &mpsc::Receiver<String>, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) if line.contains(needle) => return line,
            Ok(_) => {}
            Err(_) => panic!("no '{needle}' on stderr"),
        }
    }
}

#[test]
fn refuses_to_start_with_a_bad_policy() {
    let (_dir, policy) = temp_file("p.toml", "default = 'allow'\n[[rule]]\nname = 'x'\naction = 'perhaps'\n");
    let out = bin()
        .args(["gateway", "--policy"])
        .arg(&policy)
        .args(["--listen", "127.0.0.1:0", "--upstream", "http://127.0.0.1:9"])
        .output()
        .unwrap();
    let err = refused(out);
    assert!(err.contains("p.toml:4") && err.contains("perhaps"), "the file, its line and the value: {err}");
}

#[test]
fn config_file_keys_and_flags_override() {
    let (_dir, config) =
        temp_file("gw.toml", "policy = 'missing.toml'\nlisten = ['127.0.0.1:0']\nupstream = ['http://127.0.0.1:9']\n");
    // The file's policy is missing: fail closed.
    let err = refused(bin().args(["gateway", "--config"]).arg(&config).output().unwrap());
    assert!(err.contains("missing.toml"), "{err}");
    // Unknown keys are errors too, named file:line on one line.
    std::fs::write(&config, "listen = ['127.0.0.1:0']\npolcy = 'x'\n").unwrap();
    let err = refused(bin().args(["gateway", "--config"]).arg(&config).output().unwrap());
    assert!(err.contains(&format!("{}:2: unknown field `polcy`", config.display())), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
}

#[cfg(unix)]
#[test]
fn serves_reloads_on_sighup_stops_on_sigterm_and_audit_reads_its_log() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("p.toml");
    let deny = |ua: &str| {
        format!(
            "default = 'allow'\n[[rule]]\nname = 'no {ua}'\naction = 'deny'\nuser_agent = {{ prefix = ['{ua}'] }}\n"
        )
    };
    std::fs::write(&policy, deny("Legacy")).unwrap();
    let up = upstream();
    let (child, addr, rx) = start(&policy, dir.path(), up);
    let auth = "Basic Q09OVE9TT1xqZG9lOnMzY3JldA=="; // CONTOSO\jdoe:s3cret
    assert_eq!(get(addr, "/owa/", "Legacy/1.0", auth), 403);
    assert_eq!(get(addr, "/owa/", "Mozilla/5.0", auth), 200);

    // A bad policy on SIGHUP is rejected; the old one stays.
    std::fs::write(&policy, "default = 'allow'\n[[rule]]\n").unwrap();
    kill(&child, "-HUP");
    wait_for(&rx, "reload rejected");
    assert_eq!(get(addr, "/owa/", "Legacy/1.0", auth), 403);
    // A good one applies.
    std::fs::write(&policy, deny("Mozilla")).unwrap();
    kill(&child, "-HUP");
    wait_for(&rx, "policy reloaded");
    assert_eq!(get(addr, "/owa/", "Legacy/1.0", auth), 200);
    assert_eq!(get(addr, "/ews/exchange.asmx", "Mozilla/5.0", auth), 403);

    kill(&child, "-TERM");
    let mut child = child;
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "gateway did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}");

    // The access log is a CAS log to audit and simulate.
    let logs = dir.path().join("logs");
    let text: String =
        std::fs::read_dir(&logs).unwrap().map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap()).collect();
    assert!(!text.contains("s3cret") && !text.contains("Q09OVE9TT1xqZG9lOnMzY3JldA"), "{text}");
    assert_eq!(text.lines().filter(|l| !l.starts_with('#')).count(), 5, "{text}");
    let out = bin().args(["audit", "--format", "json"]).arg(&logs).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(report.contains("jdoe"), "{report}");
    let out = bin().args(["simulate", "--policy"]).arg(&policy).arg(&logs).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("no Mozilla"));
}

/// Under a low open-files limit the gateway raises its soft limit to the hard
/// one and warns how many clients that serves; `--threads 1` still serves.
#[cfg(target_os = "linux")]
#[test]
fn raises_a_low_open_files_limit_and_warns_when_the_hard_one_is_too_low() {
    let (_dir, policy) = temp_file("p.toml", "default = 'allow'\n");
    let up = upstream();
    let (mut child, rx) = spawn_with_stderr(
        Command::new("sh")
            .args(["-c", "ulimit -Sn 200 && ulimit -Hn 300 && exec \"$0\" \"$@\""])
            .arg(env!("CARGO_BIN_EXE_casguard"))
            .args(["--threads", "1", "gateway", "--policy"])
            .arg(&policy)
            .args(["--listen", "127.0.0.1:0", "--upstream", &format!("http://{up}"), "--max-connections", "1000"]),
    );
    let warning = wait_for(&rx, "open-files limit");
    assert!(warning.contains("is 300, below the 2064") && warning.contains("about 118 clients"), "{warning}");
    let addr = plain_listener(&rx);
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", child.id())).unwrap();
    let open_files = limits.lines().find(|l| l.starts_with("Max open files")).unwrap();
    assert_eq!(open_files.split_whitespace().collect::<Vec<_>>()[3..5], ["300", "300"], "{open_files}");
    assert_eq!(get(addr, "/owa/", "Mozilla/5.0", ""), 200);
    child.kill().unwrap();
    child.wait().unwrap();
}

/// A self-signed certificate for localhost and its key, written to `dir`
/// as `<name>.crt` and `<name>.key`.
pub(crate) fn certificate(dir: &Path, name: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let (cert, key) = (dir.join(format!("{name}.crt")), dir.join(format!("{name}.key")));
    std::fs::write(&cert, ck.cert.pem()).unwrap();
    std::fs::write(&key, ck.signing_key.serialize_pem()).unwrap();
    (cert, key)
}

#[test]
fn check_loads_everything_binds_nothing_and_exits_0() {
    let (dir, policy) =
        temp_file("p.toml", "default = 'allow'\n[[rule]]\nname = 'no EWS'\naction = 'deny'\npath = '/EWS'\n");
    let (cert, key) = certificate(dir.path(), "a");
    // The address is taken (by a running gateway, say): --check does not bind.
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let out = bin()
        .args(["gateway", "--check", "--policy"])
        .arg(&policy)
        .args(["--listen", &taken.local_addr().unwrap().to_string(), "--tls-cert"])
        .arg(&cert)
        .arg("--tls-key")
        .arg(&key)
        .args(["--upstream", "https://cas1.contoso.local", "--access-log"])
        .arg(dir.path().join("logs"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}{stdout}", String::from_utf8_lossy(&out.stderr));
    assert!(
        stdout.contains("p.toml (1 rule)") && stdout.contains("a.crt with key") && stdout.contains("configuration OK")
    );
    assert!(
        stdout.contains("upstream https://cas1.contoso.local") && stdout.contains("health pages of owa, ews"),
        "{stdout}"
    );
    assert!(!dir.path().join("logs").exists(), "--check writes nothing");
    assert!(!stdout.contains("warning"), "{stdout}");

    // A deny rule on users cannot see Kerberos sign-ins: --check says so; an
    // exception on users is safe and says nothing.
    let check = |text: &str| {
        std::fs::write(&policy, text).unwrap();
        let mut cmd = bin();
        cmd.args(["gateway", "--check", "--policy"]).arg(&policy).args(["--listen-plain", "127.0.0.1:0"]);
        let out = cmd.args(["--upstream", "http://cas1.contoso.local"]).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let warned = check("default = 'allow'\n[[rule]]\nname = 'bad user'\naction = 'deny'\nuser = 'baduser'\n");
    assert!(
        warned.contains("warning: rule 'bad user' (line 3) denies by user") && warned.contains("Kerberos"),
        "{warned}"
    );
    let excepted =
        "default = 'allow'\n[[rule]]\nname = 'no EWS'\naction = 'deny'\npath = '/EWS'\nunless = { user = 'boss' }\n";
    assert!(!check(excepted).contains("warning"));
}

#[test]
fn check_names_what_would_stop_the_gateway_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.toml");
    std::fs::write(&good, "default = 'allow'\n").unwrap();
    let empty = dir.path().join("empty.toml");
    std::fs::write(&empty, "").unwrap();
    let (a_cert, a_key) = certificate(dir.path(), "a");
    let (_, b_key) = certificate(dir.path(), "b");
    let junk = dir.path().join("junk.crt");
    std::fs::write(&junk, "not a certificate").unwrap();
    let check = |policy: &Path, cert: &Path, key: &Path, extra: &[&str]| {
        let out = bin()
            .args(["gateway", "--check", "--policy"])
            .arg(policy)
            .args(["--listen", "127.0.0.1:0", "--upstream", "http://127.0.0.1:9", "--tls-cert"])
            .arg(cert)
            .arg("--tls-key")
            .arg(key)
            .args(extra)
            .output()
            .unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    assert_eq!(check(&good, &a_cert, &a_key, &[]).0, Some(0));
    let (code, err) = check(&empty, &a_cert, &a_key, &[]);
    assert!(code == Some(2) && err.contains("empty.toml"), "{code:?} {err}");
    let (code, err) = check(&good, &a_cert, &b_key, &[]);
    assert!(code == Some(2) && err.contains("the key does not belong to the certificate"), "{code:?} {err}");
    let (code, err) = check(&good, &junk, &a_key, &[]);
    assert!(code == Some(2) && err.contains("junk.crt"), "{code:?} {err}");
    let (code, err) = check(&good, &a_cert, &a_key, &["--health-checks", "owa,imap"]);
    assert!(code == Some(2) && err.contains("'imap' has no health page"), "{code:?} {err}");

    // An access-log folder it cannot create or write in: said by --check, and
    // a start refuses both rather than serve with no access log.
    let no = unwritable(dir.path());
    for logs in [no.clone(), no.join("casguard")] {
        let logs = logs.to_str().unwrap();
        let (code, err) = check(&good, &a_cert, &a_key, &["--access-log", logs]);
        assert!(code == Some(2) && err.contains(&format!("--access-log {logs}: cannot write in")), "{code:?} {err}");
        let mut start = bin();
        start.args(["gateway", "--policy"]).arg(&good).args(["--listen", "127.0.0.1:0"]);
        let out = start.args(["--upstream", "http://127.0.0.1:9", "--access-log", logs]).output().unwrap();
        assert!(refused(out).contains(&format!("--access-log {logs}: cannot write in")));
    }
}

#[cfg(unix)]
#[test]
fn sighup_reloads_the_certificate_and_a_bad_one_keeps_the_current_one() {
    let (dir, policy) = temp_file("p.toml", "default = 'allow'\n");
    let (cert, key) = certificate(dir.path(), "live");
    let up = upstream();
    let (mut child, rx) = spawn_with_stderr(
        bin()
            .args(["gateway", "--policy"])
            .arg(&policy)
            .args(["--listen", "127.0.0.1:0", "--listen-plain", "127.0.0.1:0", "--tls-cert"])
            .arg(&cert)
            .arg("--tls-key")
            .arg(&key)
            .args(["--upstream", &format!("http://{up}"), "--reload-interval", "60"]),
    );
    wait_for(&rx, "listening on https://");
    let addr = plain_listener(&rx);

    let (renewed, renewed_key) = certificate(dir.path(), "renewed");
    std::fs::rename(&renewed, &cert).unwrap();
    std::fs::rename(&renewed_key, &key).unwrap();
    kill(&child, "-HUP");
    wait_for(&rx, "TLS certificate reloaded");

    std::fs::write(&cert, "not a certificate").unwrap();
    kill(&child, "-HUP");
    let line = wait_for(&rx, "TLS certificate reload rejected");
    assert!(line.contains("live.crt"), "{line}");
    assert_eq!(get(addr, "/owa/", "Mozilla/5.0", ""), 200, "still serving");

    kill(&child, "-TERM");
    assert!(child.wait().unwrap().success());
}

/// `--devices`: the partnerships of a device export are the known devices of
/// `device = "new"` rules; a bad row fails closed, naming file and line.
#[cfg(unix)]
#[test]
fn a_device_export_is_the_inventory_of_known_devices() {
    let dir = tempfile::tempdir().unwrap();
    let root = crate::util::workspace();
    let policy = root.join("examples/policies/block-new-outlook-devices.toml");
    let devices = root.join("tests/data/devices/ps51-export-csv-unicode.csv");
    let up = upstream();
    let (mut child, rx) =
        spawn_with_stderr(bin().args(["gateway", "--policy"]).arg(&policy).arg("--devices").arg(&devices).args([
            "--listen",
            "127.0.0.1:0",
            "--upstream",
            &format!("http://{up}"),
            "--drain-timeout",
            "1",
        ]));
    let addr = plain_listener(&rx);
    let auth = "Basic Q09OVE9TT1xqZG9lOnMzY3JldA=="; // CONTOSO\jdoe:s3cret
    let provision = |id: &str| {
        format!("/Microsoft-Server-ActiveSync/default.eas?Cmd=Provision&User=jdoe&DeviceId={id}&DeviceType=Outlook")
    };
    // Jane's Outlook has a partnership; a device id she never paired is new.
    assert_eq!(get(addr, &provision("4A1E5C7D9B2F40E8A6C3D1B0F9E8D7C6"), "Outlook-iOS-Android/1.0", auth), 200);
    assert_eq!(get(addr, &provision("FFFF0000FFFF0000FFFF0000FFFF0000"), "Outlook-iOS-Android/1.0", auth), 403);
    kill(&child, "-TERM");
    let _ = child.wait();

    let bad = dir.path().join("devices.csv");
    let mut text = std::fs::read_to_string(root.join("tests/data/devices/ps7-export-csv.csv")).unwrap();
    text = text.replacen("\"3/14/2025 9:02:11 AM\"", "\"someday\"", 1);
    std::fs::write(&bad, text).unwrap();
    let out = bin()
        .args(["gateway", "--policy"])
        .arg(&policy)
        .arg("--devices")
        .arg(&bad)
        .args(["--listen", "127.0.0.1:0", "--upstream", "http://127.0.0.1:9"])
        .output()
        .unwrap();
    let err = refused(out);
    assert!(err.contains(&format!("{}:2: FirstSyncTime: cannot read \"someday\"", bad.display())), "{err}");
}
