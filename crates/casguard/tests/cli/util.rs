//! What the CLI tests share: running the binary, the repository's files,
//! generated logs with their truth, and reading the JSON reports.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use casguard_loggen::{generate, Options, Truth};
use serde_json::Value;

/// The binary under test, to be given arguments.
pub fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_casguard"))
}

/// Runs casguard with `args` and waits for it.
pub fn casguard(args: &[&str]) -> Output {
    bin().args(args).output().expect("run casguard")
}

/// `out`, after checking that casguard succeeded.
pub fn ok(out: Output) -> Output {
    assert!(out.status.success(), "casguard failed: {}", String::from_utf8_lossy(&out.stderr));
    out
}

/// What casguard printed on stderr, after checking that it refused to run
/// (exit code 2).
pub fn refused(out: Output) -> String {
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    stderr
}

/// The JSON that a successful run prints.
pub fn json(args: &[&str]) -> Value {
    serde_json::from_slice(&ok(casguard(args)).stdout).expect("JSON output")
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The root of the repository.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A shipped example policy, `examples/policies/<name>`, as an argument.
pub fn example(name: &str) -> String {
    workspace().join("examples/policies").join(name).display().to_string()
}

/// Logs made by the generator in a fresh temporary folder, with their truth.
pub fn generated(options: impl FnOnce(&mut Options)) -> (tempfile::TempDir, Truth) {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = Options::new(dir.path());
    options(&mut opts);
    let truth = generate(&opts).expect("generate logs");
    (dir, truth)
}

/// `casguard audit --format json EXTRA PATHS`; the report.
pub fn audit(paths: &[&str], extra: &[&str]) -> Value {
    let mut args = vec!["audit", "--format", "json"];
    args.extend_from_slice(extra);
    args.extend_from_slice(paths);
    json(&args)
}

/// `audit` of one folder.
pub fn audit_json(dir: &Path, extra: &[&str]) -> Value {
    audit(&[dir.to_str().unwrap()], extra)
}

/// `casguard simulate --quiet --format json --policy POLICY EXTRA LOGS` with a
/// shipped example policy; the report.
pub fn simulate(policy: &str, logs: &Path, extra: &[&str]) -> Value {
    simulate_file(&example(policy), logs, extra)
}

/// [`simulate`] with the policy file at `policy`.
pub fn simulate_file(policy: &str, logs: &Path, extra: &[&str]) -> Value {
    let mut args = vec!["simulate", "--quiet", "--format", "json", "--policy", policy];
    args.extend_from_slice(extra);
    args.push(logs.to_str().unwrap());
    json(&args)
}

/// The strings of a JSON array.
pub fn strings(v: &Value) -> Vec<String> {
    v.as_array().unwrap().iter().map(|u| u.as_str().unwrap().to_string()).collect()
}

/// The network of every source of every device of every user of an audit
/// report, in report order.
pub fn source_networks(report: &Value) -> impl Iterator<Item = String> + '_ {
    report["users"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|u| u["devices"].as_array().unwrap().iter())
        .flat_map(|d| d["sources"].as_array().unwrap().iter())
        .map(|s| s["network"].as_str().unwrap().to_string())
}

/// Runs `casguard inventory build --quiet --until UNTIL [EXTRA..] -o OUT LOGS`
/// and checks that it succeeded.
pub fn inventory_build(until: &str, extra: &[&str], out: &Path, logs: &Path) {
    let mut args = vec!["inventory", "build", "--quiet", "--until", until];
    args.extend(extra);
    args.extend(["-o", out.to_str().unwrap(), logs.to_str().unwrap()]);
    ok(casguard(&args));
}

/// A JSON object of counts, such as a report's `protocols`.
pub fn counts(v: &Value) -> BTreeMap<String, u64> {
    v.as_object().unwrap().iter().map(|(k, n)| (k.clone(), n.as_u64().unwrap())).collect()
}

/// The counts an audit report's summary gives for `keys` (names apart by
/// spaces), in their order; a count the summary lacks fails the test.
pub fn summary(report: &Value, keys: &str) -> Vec<u64> {
    let s = &report["summary"];
    keys.split_whitespace().map(|k| s[k].as_u64().unwrap_or_else(|| panic!("no summary count {k}: {s}"))).collect()
}

/// The findings of `kind` in an audit report.
pub fn findings<'a>(report: &'a Value, kind: &str) -> Vec<&'a Value> {
    report["findings"].as_array().unwrap().iter().filter(|f| f["kind"] == kind).collect()
}

/// The users with a finding of `kind` in an audit report, sorted, each once.
pub fn finding_users(report: &Value, kind: &str) -> Vec<String> {
    let users: BTreeSet<String> =
        findings(report, kind).into_iter().map(|f| f["user"].as_str().unwrap().to_string()).collect();
    users.into_iter().collect()
}

/// A Python that can import `modules` (comma-separated): $CASGUARD_PYTHON,
/// target/pyenv (made by scripts/test), or python3.
pub fn python_with(modules: &str) -> Option<PathBuf> {
    let root = workspace();
    let mut candidates: Vec<PathBuf> = std::env::var_os("CASGUARD_PYTHON").map(PathBuf::from).into_iter().collect();
    candidates.push(root.join("target/pyenv/bin/python"));
    candidates.push(root.join("target/pyenv/Scripts/python.exe"));
    candidates.push("python3".into());
    let import = format!("import {modules}");
    candidates
        .into_iter()
        .find(|p| Command::new(p).args(["-c", &import]).output().map(|o| o.status.success()).unwrap_or(false))
}

/// Runs tests/browser/check.sh on `page` (its screenshot to `shot`) and checks
/// that it found no failure; what check.py reports, or `None` when Chromium
/// is missing outside CI.
pub fn browser_check(page: &Path, shot: &Path) -> Option<Value> {
    let script = workspace().join("tests/browser/check.sh");
    let out = Command::new("bash").arg(&script).arg(page).arg(shot).output().expect("run check.sh");
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    match out.status.code() {
        Some(0) => {}
        Some(77) if std::env::var("CI").as_deref() != Ok("true") => {
            eprintln!("browser check skipped: {stderr}");
            return None;
        }
        _ => panic!("browser check failed:\n{stdout}\n{stderr}"),
    }
    let result: Value = serde_json::from_str(&stdout).expect("check.py prints JSON");
    assert_eq!(result["failures"], Value::Array(vec![]), "{result}");
    Some(result)
}

/// A temporary folder holding one file, `name`, written with `text`: the
/// folder (removed when dropped) and the file's path.
pub fn temp_file(name: &str, text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    (dir, path)
}

/// [`python_with`], or `None` once [`skip`] has said `why` the test cannot run.
pub fn python_or_skip(modules: &str, why: &str) -> Option<PathBuf> {
    let python = python_with(modules);
    if python.is_none() {
        skip(why);
    }
    python
}

/// A test that cannot run here says why; under CI=true that is a failure.
pub fn skip(why: &str) {
    assert_ne!(std::env::var("CI").as_deref(), Ok("true"), "CI cannot skip: {why} (run scripts/test)");
    eprintln!("skipped: {why} (scripts/test installs it)");
}

/// A folder the test cannot create a file in: a read-only temporary folder,
/// or where that is no obstacle (root), `/sys`.
pub fn unwritable(dir: &Path) -> PathBuf {
    let read_only = dir.join("read-only");
    std::fs::create_dir(&read_only).unwrap();
    let mut perms = std::fs::metadata(&read_only).unwrap().permissions();
    perms.set_readonly(true);
    std::fs::set_permissions(&read_only, perms).unwrap();
    [read_only, PathBuf::from("/sys")]
        .into_iter()
        .find(|d| d.is_dir() && std::fs::write(d.join("casguard-probe"), "").is_err())
        .expect("a folder no file can be created in")
}
