//! The `pmsm` binary: outputs and clear errors with non-zero exits.

use std::path::Path;
use std::process::{Command, Output};

fn pmsm(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pmsm"))
        .args(args)
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join(".."))
        .output()
        .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn eval_prints_one_json_line_per_input() {
    let o = pmsm(&["eval", "--dfa", "datasets/ab.json", "--input", "aaa"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "{\"instance\":0,\"final_state\":3,\"accept\":false}\n");
    let o = pmsm(&["eval", "--regex-file", "datasets/dlp/rules.txt", "--inputs", "datasets/dlp/negatives.txt"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o).lines().count(), 12);
    assert!(stdout(&o).lines().all(|l| l.ends_with("\"accept\":false}")));
}

#[test]
fn compile_then_info() {
    let dir = std::env::temp_dir().join(format!("pmsm-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join("dna.json");
    let o = pmsm(&[
        "compile",
        "--regex-file",
        "datasets/dna/motifs.txt",
        "--alphabet",
        "ACGT",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = pmsm(&["info", "--json", out.to_str().unwrap()]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        (v["states"].as_u64(), v["symbols"].as_u64(), v["ks"].as_u64(), v["ka"].as_u64()),
        (Some(36), Some(4), Some(6), Some(2))
    );
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn bad_input_gets_one_clear_line_and_exit_2() {
    let cases: &[(&[&str], &str)] = &[
        (
            &["eval", "--dfa", "datasets/ab.json", "--input", "abc"],
            "input 0: symbol \"c\" at position 2 is not in the machine's alphabet",
        ),
        (&["eval", "--dfa", "no/such.json", "--input", "a"], "no/such.json"),
        (&["eval", "--regex", "a(b", "--input", "a"], "unclosed group"),
        (&["info", "datasets/README.md"], "datasets/README.md: line 1, column 1"),
        (&["eval", "--regex", "a[ab]{14}", "--max-states", "50", "--input", "a"], "more than 50 DFA states"),
        (&["random-dfa", "--states", "0", "--symbols", "2", "-o", "/dev/null"], "--states must be in"),
    ];
    for (args, want) in cases {
        let o = pmsm(args);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.starts_with("pmsm: error: ") && err.contains(want), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}
