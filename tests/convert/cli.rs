//! The `overdracht` binary as a user runs it.

use crate::common;

use std::io::Write;
use std::process::{Command, Output, Stdio};

use common::*;

fn overdracht(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_overdracht")).args(args).current_dir(root()).output().expect("run overdracht")
}

fn with_stdin(args: &[&str], input: &[u8], dir: &std::path::Path) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_overdracht"))
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    // Feed standard input from another thread: the child writes output while it reads, and
    // a full stdout pipe would otherwise block both sides.
    let mut stdin = child.stdin.take().expect("stdin");
    let input = input.to_vec();
    let feeder = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output().expect("wait");
    feeder.join().expect("feeder thread").expect("write stdin");
    out
}

#[test]
fn converts_the_examples_and_exits_0() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("out/");
    let rejects = dir.path().join("rejects.ndjson");
    let o = overdracht(&[
        "convert",
        "examples/records",
        "--out",
        out.to_str().expect("utf8"),
        "--rejects",
        rejects.to_str().expect("utf8"),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.contains("converted 2, rejected 0"), "{stderr}");
    for name in ["gp-frail-elderly.stu3.bundle.json", "paediatrician-young-adult.flat.bundle.json"] {
        let text = std::fs::read_to_string(out.join(name)).expect("output file");
        let bundle = serde_json::from_str(&text).expect("bundle JSON");
        check_bundle(&bundle);
        fhirbolt::assert_round_trips(name, &bundle);
    }
    assert!(!rejects.exists(), "no rejects file when nothing is rejected");
}

#[test]
fn rejected_records_are_kept_with_their_reason_and_exit_1() {
    let dir = tempfile::tempdir().expect("tempdir");
    let good = std::fs::read_to_string(root().join("tests/fixtures/stu3-condition.json")).expect("fixture");
    let good_line: serde_json::Value = serde_json::from_str(&good).expect("json");
    let stream = format!(
        "{}\n{{\"format\": \"overdracht-flat/1\", \"patient\": {{\"bsn\": \"123456789\"}}}}\n{{not json\n",
        serde_json::to_string(&good_line).expect("json")
    );
    let o =
        with_stdin(&["convert", "-", "--output", "ndjson", "--rejects", "rej.ndjson"], stream.as_bytes(), dir.path());
    assert_eq!(o.status.code(), Some(1), "{}", String::from_utf8_lossy(&o.stderr));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert_eq!(stdout.lines().count(), 1, "one resource from the one good record: {stdout}");
    for line in stdout.lines() {
        fhirbolt::assert_round_trips("ndjson output", &serde_json::from_str(line).expect("json line"));
    }
    let rejects = std::fs::read_to_string(dir.path().join("rej.ndjson")).expect("rejects file");
    let lines: Vec<serde_json::Value> = rejects.lines().map(|l| serde_json::from_str(l).expect("json line")).collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["line"], 2);
    assert!(lines[0]["reason"].as_str().expect("reason").contains("eleven test"));
    assert_eq!(lines[0]["outcome"]["resourceType"], "OperationOutcome");
    fhirbolt::assert_round_trips("rejects outcome", &lines[0]["outcome"]);
    assert!(lines[0]["record"].as_str().expect("record kept").contains("123456789"));
    assert_eq!(lines[1]["line"], 3);
    assert!(lines[1]["outcome"]["issue"][0]["diagnostics"].as_str().expect("d").contains("line 3"));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.contains("rejected <stdin>:2"), "{stderr}");
    assert!(stderr.contains("converted 1, rejected 2"), "{stderr}");
}

/// Text from a record reaches the operator's terminal escaped: an element name holding terminal
/// control sequences (here: set the window title, turn the text red) is shown as `\u{1b}`, not
/// obeyed by the terminal.
#[test]
fn control_characters_from_a_record_do_not_reach_the_terminal() {
    let dir = tempfile::tempdir().expect("tempdir");
    let record = concat!(
        r#"{"resourceType": "Bundle", "type": "collection", "entry": [{"resource": "#,
        r#"{"resourceType": "Patient", "id": "p", "x\u001b]0;pwned\u0007\u001b[31mfoo": 1}}]}"#
    );
    let o =
        with_stdin(&["convert", "-", "--output", "ndjson", "--rejects", "rej.ndjson"], record.as_bytes(), dir.path());
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.contains("CLINICAL"), "the leftover is reported: {stderr}");
    assert!(!o.stderr.iter().any(|&b| b == 0x1b || b == 0x07), "raw control characters on the terminal: {stderr:?}");
    assert!(stderr.contains("x\\u{1b}]0;pwned\\u{7}\\u{1b}[31mfoo"), "{stderr}");
    // `validate` names the same element in its findings, on standard output.
    let file = dir.path().join("patient.json");
    std::fs::write(&file, r#"{"resourceType": "Patient", "id": "p", "x\u001b[31mfoo": 1}"#).expect("write");
    let o = overdracht(&["validate", file.to_str().expect("path")]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "an unknown element is an error: {stdout}");
    assert!(!o.stdout.contains(&0x1b), "raw control characters on the terminal: {stdout:?}");
    assert!(stdout.contains("x\\u{1b}[31mfoo"), "{stdout}");
}

#[test]
fn usage_and_io_errors_exit_2() {
    let o = overdracht(&["convert", "does-not-exist.json"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no such file"));
    let o = overdracht(&["convert", "examples/records", "--from", "banana"]);
    assert_eq!(o.status.code(), Some(2));
    let o = overdracht(&["frobnicate"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn parallel_output_is_identical_to_sequential_and_repeatable() {
    let dir = tempfile::tempdir().expect("tempdir");
    // A stream of 40 dossiers: the examples and fixtures repeated.
    let mut stream = String::new();
    let mut inputs = vec![
        root().join("examples/records/gp-frail-elderly.stu3.json"),
        root().join("examples/records/paediatrician-young-adult.flat.json"),
    ];
    for e in std::fs::read_dir(root().join("tests/fixtures")).expect("fixtures") {
        let path = e.expect("entry").path();
        if path.extension().and_then(|x| x.to_str()) == Some("json") {
            inputs.push(path);
        }
    }
    for _ in 0..3 {
        for p in &inputs {
            let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(p).expect("read")).expect("json");
            stream.push_str(&serde_json::to_string(&v).expect("json"));
            stream.push('\n');
        }
    }
    let one = with_stdin(&["convert", "-", "--jobs", "1"], stream.as_bytes(), dir.path());
    let two = with_stdin(&["convert", "-", "--jobs", "2"], stream.as_bytes(), dir.path());
    let again = with_stdin(&["convert", "-", "--jobs", "2"], stream.as_bytes(), dir.path());
    assert_eq!(one.status.code(), Some(0), "{}", String::from_utf8_lossy(&one.stderr));
    assert_eq!(one.stdout.len(), two.stdout.len());
    assert!(one.stdout == two.stdout, "--jobs 2 output differs from --jobs 1");
    assert!(two.stdout == again.stdout, "output is not byte-identical across runs");
    assert_eq!(String::from_utf8_lossy(&one.stdout).lines().count(), inputs.len() * 3);
}

#[test]
fn hl7v3_is_detected_and_non_fhir_xml_is_refused_clearly() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("x.xml"), "<?xml version=\"1.0\"?><note>hi</note>").expect("write");
    let o = with_stdin(&["convert", "x.xml", "--rejects", "r.ndjson"], b"", dir.path());
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("not an NHG Professional Summary"));
}
