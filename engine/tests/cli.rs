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

#[test]
fn run_prints_outputs_and_a_summary() {
    let o = pmsm(&["run", "--dfa", "datasets/ab.json", "--input", "aaa", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let lines: Vec<serde_json::Value> = stdout(&o).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines[0], serde_json::json!({"instance": 0, "final_state": 3, "accept": null, "symbols": 3}));
    let s = &lines[1]["summary"];
    assert_eq!(
        (s["protocol"].as_str(), s["instances"].as_u64(), s["transitions"].as_u64()),
        (Some("lookup-xor"), Some(1), Some(3))
    );
    assert!(s["bits"]["s0_to_s1"].as_u64().unwrap() > 0);
    let o = pmsm(&["run", "--regex", "b", "--input", "abc"]);
    assert!(stdout(&o).contains("instance 0: accept"), "{}", stdout(&o));
}

#[test]
fn bench_runs_a_profile_and_reports_the_json_contract() {
    let dir = std::env::temp_dir().join(format!("pmsm-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let profile = dir.join("tiny.toml");
    std::fs::write(
        &profile,
        format!(
            "protocols = [\"lookup-xor\", \"lookup-ring\"]\n[[run]]\nlabel = \"ab\"\nmachine = {{ dfa = \"{}\" }}\ninputs = {{ random = {{ batch = 50, length = 7 }} }}\n",
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../datasets/ab.json").display()
        ),
    )
    .unwrap();
    let out = dir.join("out");
    let o = pmsm(&["bench", "--profile", profile.to_str().unwrap(), "--json", "--out", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["profile"], "tiny");
    let r = &v["results"][1];
    assert_eq!(
        (r["protocol"].as_str(), r["transport"].as_str(), r["verified"].as_bool()),
        (Some("lookup-ring"), Some("inproc"), Some(true))
    );
    assert_eq!((r["batch"].as_u64(), r["steps"].as_u64(), r["transitions"].as_u64()), (Some(50), Some(7), Some(350)));
    for k in ["transitions_per_sec", "online_transitions_per_sec", "offline_transitions_per_sec", "seconds"] {
        assert!(r[k].as_f64().unwrap() > 0.0, "{k}");
    }
    assert!(r["bits_per_transition"]["server_to_server"].as_f64().unwrap() >= 6.0);
    for f in ["results.md", "results.json"] {
        assert!(out.join(f).exists(), "{f}");
    }
    // The same profile over TCP + TLS: four processes, the same contract and payload.
    let o = pmsm(&["bench", "--profile", profile.to_str().unwrap(), "--json", "--transport", "tcp"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let t: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    for k in 0..2 {
        let (a, b) = (&v["results"][k], &t["results"][k]);
        assert_eq!((b["transport"].as_str(), b["verified"].as_bool()), (Some("tcp"), Some(true)));
        assert_eq!(a["bits_per_transition"], b["bits_per_transition"], "the same frames on both transports");
        for key in ["transitions_per_sec", "online_transitions_per_sec", "offline_transitions_per_sec"] {
            assert!(b[key].as_f64().unwrap() > 0.0, "{key}");
        }
        assert!(b["peak_rss_bytes"].as_u64().unwrap() > 0);
    }
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn bad_profiles_name_the_file_and_key() {
    let dir = std::env::temp_dir().join(format!("pmsm-badprof-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cases = [
        (
            "unknown.toml",
            "colour = 1\n[[run]]\nlabel = \"x\"\nmachine = { dfa = \"a.json\" }\ninputs = { random = { batch = 1, length = 1 } }\n",
            "unknown field `colour`",
        ),
        (
            "missing.toml",
            "[[run]]\nlabel = \"x\"\nmachine = { dfa = \"no-such.json\" }\ninputs = { random = { batch = 1, length = 1 } }\n",
            "`run[0].machine`",
        ),
        (
            "size.toml",
            "[[run]]\nlabel = \"x\"\nmachine = { random = { states = 0, symbols = 2 } }\ninputs = { random = { batch = 1, length = 1 } }\n",
            "`run[0].machine.random`: impossible size 0 × 2",
        ),
        (
            "tcp.toml",
            "transport = \"udp\"\n[[run]]\nlabel = \"x\"\nmachine = { random = { states = 2, symbols = 2 } }\ninputs = { random = { batch = 1, length = 1 } }\n",
            "`transport`",
        ),
    ];
    for (name, text, want) in cases {
        let f = dir.join(name);
        std::fs::write(&f, text).unwrap();
        let o = pmsm(&["bench", "--profile", f.to_str().unwrap()]);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{name}: {err}");
        assert!(err.contains(name) && err.contains(want), "{name}: {err}");
    }
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn comm_at_the_seeds_scale_meets_the_documented_bounds() {
    let o = pmsm(&["comm", "--states", "1024", "--symbols", "256", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let p = |name: &str, k: &str| v["protocols"][name][k].as_f64().unwrap();
    assert_eq!(v["seed"]["naive_total_bits"], 26214416);
    assert_eq!(v["seed"]["optimised_total_bits"], 156512);
    // lookup-xor: 2·(10 + 8) = 36 online bits, framing amortised to under one more.
    let online = p("lookup-xor", "online_bits");
    assert!((36.0..37.0).contains(&online), "{online}");
    assert!(p("seed-dpf", "online_bits") >= 1000.0 * online);
    let total = p("lookup-xor", "total_bits");
    assert!(total <= 4000.0, "{total}");
    assert!(156512.0 / total >= 39.0 && 26214416.0 / total >= 6500.0, "{total}");
    assert_eq!(p("lookup-xor", "rounds"), 1.0);
    for name in ["naive", "seed-dpf", "lookup-ring", "lookup-xor"] {
        let sum = p(name, "client_bits") + p(name, "online_bits") + p(name, "offline_bits") + p(name, "output_bits");
        assert!((sum - p(name, "total_bits")).abs() < 1e-6, "{name}");
    }
}
