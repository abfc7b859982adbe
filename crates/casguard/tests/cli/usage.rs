//! The README walked as a new admin walks it: its Usage lines name flags
//! that exist, and what cannot be written or read is refused by name, before
//! the logs are read.

use std::path::Path;

use crate::util::{casguard, example, ok, refused, text, unwritable, workspace};

/// The example logs, which hold malformed lines: a scan warns of them.
fn logs() -> String {
    workspace().join("examples/logs").display().to_string()
}

/// The `casguard ...` lines of the README's Usage block.
fn usage_lines() -> Vec<String> {
    let readme = std::fs::read_to_string(workspace().join("README.md")).unwrap();
    let usage = readme.split("## Usage").nth(1).expect("a Usage section");
    let block = usage.split("```").nth(1).expect("a code block in Usage");
    block.lines().filter(|l| l.starts_with("casguard ")).map(str::to_string).collect()
}

#[test]
fn every_flag_of_the_readme_usage_is_in_its_commands_help() {
    let lines = usage_lines();
    assert!(lines.len() >= 10, "{lines:?}");
    for line in &lines {
        let words: Vec<&str> = line.split_whitespace().collect();
        // `casguard inventory build ...`: the command is the words before the first flag or operand.
        let command: Vec<&str> =
            words[1..].iter().take_while(|w| w.chars().all(|c| c.is_ascii_lowercase())).copied().collect();
        assert!(!command.is_empty(), "{line}");
        let mut args = command.clone();
        args.push("--help");
        let help = text(&ok(casguard(&args)).stdout);
        for flag in line.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-')).filter(|w| w.starts_with('-')) {
            let named = help.match_indices(flag).any(|(i, _)| {
                let after = help[i + flag.len()..].chars().next();
                help[..i].ends_with(' ') && matches!(after, Some(' ' | ',' | '\n'))
            });
            assert!(named, "`{line}`: {flag} is not in `{args:?}`:\n{help}");
        }
    }
}

#[test]
fn an_out_that_cannot_be_written_is_refused_by_name_before_the_logs_are_read() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("report.json");
    std::fs::write(&file, "").unwrap();
    let missing = dir.path().join("no-such-folder").join("report.json");
    let (file, missing, folder) =
        (file.to_str().unwrap(), missing.to_str().unwrap(), dir.path().to_str().unwrap().to_string());
    let logs = logs();
    let scanned = |e: &str| e.contains("field-count");
    let lockdown = example("outlook-mobile-lockdown.toml");
    let cases: [(Vec<&str>, String); 5] = [
        (vec!["audit", "--format", "csv", "--out", file], format!("--out {file} is a file: --format csv writes")),
        (vec!["audit", "--format", "json", "--out", &folder], format!("--out {folder} is a folder: --format json")),
        (vec!["audit", "--format", "html", "--out", missing], format!("--out {missing}: ")),
        (vec!["simulate", "--policy", &lockdown, "--out", missing], "does not exist".to_string()),
        (vec!["posture", "--policy", &lockdown, "--format", "csv", "--out", file], format!("--out {file} is a file")),
    ];
    for (args, expected) in cases {
        let mut args = args;
        args.push(&logs);
        let e = refused(casguard(&args));
        assert!(e.contains(&expected), "{args:?}: {e}");
        assert!(!scanned(&e), "{args:?}: refused only after reading the logs: {e}");
        assert!(!e.contains("os error"), "{args:?}: {e}");
    }
    assert_eq!(std::fs::read(file).unwrap(), b"", "the file given is left alone");
    assert!(!Path::new(missing).parent().unwrap().exists());

    // The commands that write a folder say so too, rather than "File exists".
    let e = refused(casguard(&["export", "--format", "parquet", "--out", file, &logs]));
    assert!(e.contains(&format!("--out {file} is a file: --format parquet")) && !scanned(&e), "{e}");
    let e = refused(casguard(&["inventory", "build", "--until", "2026-11-03", "-o", missing, &logs]));
    assert!(e.contains(&format!("--out {missing}: ")) && e.contains("does not exist") && !scanned(&e), "{e}");
    let e = refused(casguard(&["emit", "--policy", &lockdown, "--target", "iis", "--out", file]));
    assert!(e.contains(&format!("--out {file} is a file: emit writes")), "{e}");

    // What can be written still is.
    let out = dir.path().join("new.json");
    ok(casguard(&["audit", "-q", "--format", "json", "--out", out.to_str().unwrap(), &logs]));
    assert!(std::fs::read(&out).unwrap().starts_with(b"{"));
}

#[test]
fn an_out_where_nothing_can_be_written_is_refused_before_the_logs_are_read_and_leaves_files_alone() {
    let dir = tempfile::tempdir().unwrap();
    let no = unwritable(dir.path());
    let at = |name: &str| no.join(name).display().to_string();
    let (report, csv, parquet, inventory, state) =
        (at("report.json"), at("csv"), at("parquet"), at("inventory.json"), at("watch.json"));
    let logs = logs();
    let lockdown = example("outlook-mobile-lockdown.toml");
    let cases: [(Vec<&str>, String); 6] = [
        (vec!["audit", "--format", "json", "--out", &report, &logs], format!("--out {report}: cannot write there: ")),
        (
            vec!["audit", "--format", "csv", "--out", &csv, &logs],
            format!("--out {csv}: cannot write in {}: ", no.display()),
        ),
        (
            vec!["simulate", "--policy", &lockdown, "--out", &report, &logs],
            format!("--out {report}: cannot write there"),
        ),
        (vec!["export", "--format", "parquet", "--out", &parquet, &logs], format!("--out {parquet}: cannot write in")),
        (vec!["inventory", "build", "--until", "2026-11-03", "-o", &inventory, &logs], format!("--out {inventory}: ")),
        // The alerts would be printed, then all printed again by the next run.
        (vec!["watch", "--once", "--since", "2026-11-01", "--state", &state, &logs], format!("--state {state}: ")),
    ];
    for (args, expected) in cases {
        let out = casguard(&args);
        assert!(out.stdout.is_empty(), "{args:?}: {}", text(&out.stdout));
        let e = refused(out);
        assert!(e.contains(&expected), "{args:?}: {e}");
        assert!(!e.contains("field-count"), "{args:?}: refused only after reading the logs: {e}");
    }

    // The check writes nothing: a file that exists keeps its bytes when the run
    // then fails (--strict, on the examples' malformed lines), a new one is
    // not left behind, nor is anything else.
    let ours = tempfile::tempdir().unwrap();
    let kept = ours.path().join("kept.json");
    std::fs::write(&kept, "yesterday's report").unwrap();
    let new = ours.path().join("new.json");
    for out in [&kept, &new] {
        refused(casguard(&["audit", "-q", "--strict", "--format", "json", "--out", out.to_str().unwrap(), &logs]));
    }
    assert_eq!(std::fs::read_to_string(&kept).unwrap(), "yesterday's report");
    let left: Vec<_> = std::fs::read_dir(ours.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(left, [std::ffi::OsString::from("kept.json")]);
}

#[test]
fn an_out_that_holds_a_log_is_not_written_over() {
    // `--out` then a log's path, a word too early: export truncated the log
    // before reading it, audit wrote its report over it.
    let dir = tempfile::tempdir().unwrap();
    let examples = workspace().join("examples/logs/EX01/W3SVC1");
    let log = dir.path().join("u_ex261102_x.log");
    std::fs::copy(examples.join("u_ex261102_x.log"), &log).unwrap();
    let gz = dir.path().join("u_ex261103_x.log.gz");
    std::fs::copy(examples.join("u_ex261103_x.log.gz"), &gz).unwrap();
    let before = (std::fs::read(&log).unwrap(), std::fs::read(&gz).unwrap());
    let (l, g, d) = (log.to_str().unwrap(), gz.to_str().unwrap(), dir.path().to_str().unwrap());
    for args in [
        vec!["export", "--out", l, d],
        vec!["audit", "--format", "json", "--out", g, d],
        vec!["inventory", "build", "--until", "2026-11-03", "-o", l, d],
    ] {
        let e = refused(casguard(&args));
        assert!(e.contains("holds a log: casguard does not write over one"), "{args:?}: {e}");
    }
    assert_eq!((std::fs::read(&log).unwrap(), std::fs::read(&gz).unwrap()), before);
    // A report written before, under any name, is written over as ever.
    let old = dir.path().join("report.log");
    std::fs::write(&old, "casguard audit: 1 file(s)").unwrap();
    ok(casguard(&["audit", "-q", "--out", old.to_str().unwrap(), l]));
}

#[test]
fn one_file_outputs_given_a_folder_and_a_missing_watch_folder_are_named_so() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().to_str().unwrap();
    let import = workspace().join("tests/data/import/contoso");
    let e = refused(casguard(&["export", "-q", "--format", "jsonl", "--out", folder, &logs()]));
    assert!(e.contains(&format!("--out {folder} is a folder: --format jsonl writes one file")), "{e}");
    let e = refused(casguard(&["policy", "import", import.to_str().unwrap(), "-o", folder]));
    assert!(e.contains(&format!("--out {folder} is a folder: policy import writes one file")), "{e}");
    assert!(!e.contains("os error"), "{e}");

    let missing = dir.path().join("W3SVC1");
    let e = refused(casguard(&["watch", "--once", missing.to_str().unwrap()]));
    assert!(e.contains(&format!("{} does not exist", missing.display())), "{e}");
}

#[test]
fn an_inventory_that_is_neither_an_inventory_nor_a_device_export_is_named_so() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("devices.csv");
    std::fs::write(&csv, "a,b,c\n1,2,3\n").unwrap();
    let csv = csv.to_str().unwrap();
    let logs = logs();
    let new_devices = example("block-new-outlook-devices.toml");
    for args in [
        vec!["simulate", "-q", "--policy", &new_devices, "--inventory", csv, &logs],
        vec!["export", "-q", "--policy", &new_devices, "--inventory", csv, &logs],
    ] {
        let e = refused(casguard(&args));
        assert!(
            e.contains(&format!("{csv}: neither an inventory (`casguard inventory build`) nor a device export"))
                && e.contains("(found a, b, c)")
                && !e.contains("expected value"),
            "{args:?}: {e}"
        );
    }
}

#[test]
fn policy_import_of_a_folder_with_nothing_it_reads_writes_no_allow_everything_policy() {
    let empty = tempfile::tempdir().unwrap();
    let out = empty.path().join("in-force.toml");
    let policies = workspace().join("examples/policies");
    for folder in [empty.path(), policies.as_path()] {
        let folder = folder.to_str().unwrap();
        let e = refused(casguard(&["policy", "import", folder, "-o", out.to_str().unwrap()]));
        assert!(e.contains(&format!("{folder}: no export or IIS configuration that policy import reads")), "{e}");
        assert!(!out.exists(), "no policy is written");
    }
    // A web.config alone, which cannot be placed: the refusal says why it was not read.
    let web = empty.path().join("web.config");
    std::fs::write(&web, "<configuration><system.webServer></system.webServer></configuration>").unwrap();
    let e = refused(casguard(&["policy", "import", empty.path().to_str().unwrap()]));
    assert!(e.contains("web.config: this web.config cannot be imported exactly: casguard cannot tell which"), "{e}");
    assert!(e.contains("name it like <Site>-<VDir>_web.config"), "{e}");
}

#[test]
fn a_watch_state_that_cannot_be_written_is_named_as_given() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("no-such-folder").join("watch.json");
    let e = refused(casguard(&["watch", "-q", "--once", "--state", state.to_str().unwrap(), &logs()]));
    assert!(e.contains(&format!("--state {}: ", state.display())) && e.contains("does not exist"), "{e}");
    assert!(!e.contains("watch.tmp"), "{e}");
}

#[test]
fn a_fields_list_without_time_is_refused_and_a_misspelt_iis_field_is_named() {
    let logs = logs();
    let e = refused(casguard(&["audit", "-q", "--fields", "c-ip cs-username cs-uri-stem", &logs]));
    assert!(e.contains("needs `date` and `time`"), "{e}");
    let out = ok(casguard(&["audit", "-q", "--fields", "date time cs-uri-stm c-ip X-Custom cs(Cookie)", &logs]));
    let e = text(&out.stderr);
    assert!(e.contains("--fields: `cs-uri-stm` is not one of IIS's W3C fields"), "{e}");
    assert!(!e.contains("`X-Custom`") && !e.contains("`cs(Cookie)`"), "custom fields are named freely: {e}");
    // Names apart by commas are one name to a #Fields line: the error says so.
    for fields in ["date,time,c-ip", "date time,c-ip"] {
        let e = refused(casguard(&["audit", "-q", "--fields", fields, &logs]));
        assert!(e.contains("separate the names with spaces, as a #Fields line does"), "{fields}: {e}");
    }
    let e = refused(casguard(&["audit", "-q", "--fields", "foo bar", &logs]));
    assert!(!e.contains("separate the names"), "{e}");
}

#[test]
fn a_status_that_is_no_http_status_is_refused_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("p.toml");
    let f = file.to_str().unwrap();
    // The gateway would answer 403 where simulate reported 99: the two would disagree.
    std::fs::write(&file, "default = \"allow\"\n[[rule]]\nname = \"x\"\naction = \"deny\"\nstatus = 99\n").unwrap();
    let e = refused(casguard(&["policy", "check", f]));
    // The line is the status's, not the rule's.
    assert!(e.contains(&format!("{f}:5: rule 'x': status 99 is not an HTTP status (100 to 599)")), "{e}");
    std::fs::write(&file, "default = \"deny\"\ndefault_status = 1000\n").unwrap();
    let e = refused(casguard(&["policy", "check", f]));
    assert!(e.contains(&format!("{f}:2: default_status 1000 is not an HTTP status")), "{e}");
    // The Exchange sections' statuses too: the gateway answered 1000 as 403.
    std::fs::write(&file, "[ews_access]\news_enabled = false\nstatus = 1000\n").unwrap();
    let e = refused(casguard(&["policy", "check", f]));
    assert!(e.contains(&format!("{f}:3: ews_access status 1000 is not an HTTP status")), "{e}");
    std::fs::write(&file, "default = \"allow\"\n[[rule]]\nname = \"x\"\naction = \"deny\"\nstatus = 451\n").unwrap();
    ok(casguard(&["policy", "check", f]));
}

#[test]
fn a_thread_count_of_none_or_thousands_is_refused_at_once() {
    for n in ["0", "100000", "two"] {
        let e = refused(casguard(&["--threads", n, "audit", &logs()]));
        assert!(
            e.contains(&format!("invalid value '{n}' for '--threads <N>': give a number of threads from 1 to 1024")),
            "{e}"
        );
    }
}

#[test]
fn an_inventory_cut_over_before_the_logs_begin_is_warned_of() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("inventory.json");
    let out = out.to_str().unwrap();
    let logs = logs();
    // 2025 for 2026: every device would be new, and a `device = "new"` rule would block them all.
    let run = ok(casguard(&["inventory", "build", "-q", "--until", "2025-11-03", "-o", out, &logs]));
    let e = text(&run.stderr);
    assert!(
        e.contains("warning: --until 2025-11-03T00:00:00Z is not after the logs' first request (2026-11-02T00:12:44Z)"),
        "{e}"
    );
    let run = ok(casguard(&["inventory", "build", "-q", "--until", "2026-11-03", "-o", out, &logs]));
    assert!(!text(&run.stderr).contains("--until"), "{}", text(&run.stderr));
}

#[test]
fn a_wildcard_no_shell_expanded_is_expanded_by_casguard() {
    // What PowerShell and cmd pass on as typed (the README's "On Windows").
    let site = workspace().join("examples/logs/EX01/W3SVC1");
    let glob = site.join("u_ex2611*.log");
    let glob = glob.to_str().unwrap();
    let files =
        |out: &std::process::Output| text(&out.stdout).lines().find(|l| l.contains("file(s)")).map(String::from);
    // The two plain logs of the site, not its .gz.
    let named = ok(casguard(&[
        "audit",
        site.join("u_ex261102_x.log").to_str().unwrap(),
        site.join("u_ex261104_x.log").to_str().unwrap(),
    ]));
    let expanded = ok(casguard(&["audit", glob]));
    assert!(files(&named).is_some_and(|l| l.contains("2 file(s)")), "{:?}", files(&named));
    assert_eq!(named.stdout, expanded.stdout);
    assert_eq!(files(&named), files(&expanded));
    // In a folder's name too, and `?` for one character.
    let sites = workspace().join("examples/logs/EX0?/W3SVC*");
    let all = ok(casguard(&["audit", "-q", "--format", "json", sites.to_str().unwrap()]));
    let whole = ok(casguard(&["audit", "-q", "--format", "json", workspace().join("examples/logs").to_str().unwrap()]));
    assert_eq!(all.stdout, whole.stdout);
    // A wildcard that matches nothing is named, for every command that reads logs.
    let nothing = site.join("u_ex1999*.log");
    let nothing = nothing.to_str().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let inventory = dir.path().join("inventory.json");
    for args in [
        vec!["audit", "-q", nothing],
        vec!["inventory", "build", "-q", "--until", "2026-11-03", "-o", inventory.to_str().unwrap(), nothing],
    ] {
        let e = refused(casguard(&args));
        assert!(e.contains(&format!("{nothing}: no file or folder matches")), "{e}");
    }
}

#[test]
fn brackets_in_a_wildcard_are_part_of_a_name() {
    let dir = tempfile::tempdir().unwrap();
    let site = dir.path().join("W3SVC1 [old]");
    std::fs::create_dir(&site).unwrap();
    std::fs::copy(workspace().join("examples/logs/EX01/W3SVC1/u_ex261102_x.log"), site.join("u_ex261102_x.log"))
        .unwrap();
    let glob = site.join("u_ex*.log");
    let run = ok(casguard(&["audit", glob.to_str().unwrap()]));
    assert!(text(&run.stdout).contains(" 1 file(s)"), "{}", text(&run.stdout));
}
