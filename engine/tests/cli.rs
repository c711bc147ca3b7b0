//! The `pmsm` binary: outputs and clear errors with non-zero exits.

use serde_json::json;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn pmsm(args: &[&str]) -> Output {
    pmsm_with_stdin(args, b"")
}

/// Runs `pmsm` with `stdin` as its standard input.
fn pmsm_with_stdin(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_pmsm"))
        .args(args)
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join(".."))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut pipe = child.stdin.take().unwrap();
    // A command that does not read its input may exit first: a broken pipe is fine.
    let _ = pipe.write_all(stdin);
    drop(pipe);
    child.wait_with_output().unwrap()
}

/// A scratch folder, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("pmsm-cli-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
    /// `name` in the folder, written with `text`.
    fn file(&self, name: &str, text: &str) -> String {
        let p = self.0.join(name);
        std::fs::write(&p, text).unwrap();
        p.display().to_string()
    }
    fn path(&self, name: &str) -> String {
        self.0.join(name).display().to_string()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The JSON lines of an output.
fn json_lines(o: &Output) -> Vec<serde_json::Value> {
    stdout(o).lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}"))).collect()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn eval_prints_one_line_per_input() {
    let o = pmsm(&["eval", "--dfa", "datasets/ab.json", "--input", "aaa"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "instance 0: final state 3, reject (3 symbols)\n");
    let o = pmsm(&["eval", "--dfa", "datasets/ab.json", "--input", "aaa", "--json"]);
    let lines = json_lines(&o);
    assert_eq!(lines[0], json!({"type": "output", "instance": 0, "final_state": 3, "accept": false, "symbols": 3}));
    assert_eq!(
        (lines[1]["type"].as_str(), lines[1]["summary"]["protocol"].as_str()),
        (Some("summary"), Some("plaintext"))
    );
    let o = pmsm(&["eval", "--regex-file", "datasets/dlp/rules.txt", "--inputs", "datasets/dlp/negatives.txt"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o).lines().count(), 12);
    assert!(stdout(&o).lines().all(|l| l.contains(", reject (")), "{}", stdout(&o));
}

#[test]
fn eval_and_run_print_the_same_fields_and_say_what_each_line_is() {
    let texts = "-----BEGIN RSA PRIVATE KEY-----\nnothing here\n";
    let eval = pmsm_with_stdin(&["eval", "-e", "PRIVATE KEY", "--inputs", "-", "--json"], texts.as_bytes());
    let run = pmsm_with_stdin(&["run", "-e", "PRIVATE KEY", "--inputs", "-", "--json"], texts.as_bytes());
    assert!(eval.status.success() && run.status.success(), "{}{}", stderr(&eval), stderr(&run));
    let (e, r) = (json_lines(&eval), json_lines(&run));
    assert_eq!((e.len(), r.len()), (3, 3));
    for (a, b) in e.iter().zip(&r) {
        let keys = |v: &serde_json::Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
        assert_eq!(keys(a), keys(b));
    }
    for (i, want) in [true, false].into_iter().enumerate() {
        assert_eq!((e[i]["type"].as_str(), e[i]["accept"].as_bool()), (Some("output"), Some(want)));
        assert_eq!(
            r[i],
            json!({"type": "output", "instance": i, "final_state": null, "accept": want,
            "symbols": texts.lines().nth(i).unwrap().len()})
        );
    }
    assert_eq!((e[2]["type"].as_str(), r[2]["type"].as_str()), (Some("summary"), Some("summary")));
    assert_eq!(r[2]["summary"]["instances"], 2);
    // As text, the same outputs on stdout and the summary on stderr.
    let o = pmsm_with_stdin(&["run", "-e", "PRIVATE KEY", "--inputs", "-"], texts.as_bytes());
    assert_eq!(stdout(&o), "instance 0: accept (31 symbols)\ninstance 1: reject (12 symbols)\n");
    assert!(stderr(&o).starts_with("pmsm: 2 instances, 43 transitions in "), "{}", stderr(&o));
}

#[test]
fn standard_input_and_output_are_dash() {
    let o = pmsm_with_stdin(&["eval", "--dfa", "datasets/ab.json", "--symbol-inputs", "-"], b"0 1\n1\n");
    assert_eq!(
        stdout(&o),
        "instance 0: final state 1, accept (2 symbols)\ninstance 1: final state 3, reject (1 symbol)\n"
    );
    let o = pmsm_with_stdin(&["eval", "--dfa", "datasets/ab.json", "--inputs", "-"], b"ab\nac\n");
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("standard input: line 2: input 1: symbol \"c\""), "{}", stderr(&o));
    // compile -o - writes the machine on stdout (and nothing else).
    let o = pmsm(&["compile", "--regex", "ab", "--full-match", "-o", "-"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let m = pmsm_engine::dfa::json::from_json_str(&stdout(&o), "stdout").unwrap();
    assert_eq!(m.states(), 4);
    assert!(!Path::new(env!("CARGO_MANIFEST_DIR")).join("../-").exists());
    let o = pmsm(&["random-dfa", "--states", "3", "--symbols", "2", "-o", "-"]);
    assert_eq!(pmsm_engine::dfa::json::from_json_str(&stdout(&o), "stdout").unwrap().states(), 3);
}

#[test]
fn exit_status_is_greps_when_asked_and_documented() {
    let code = |args: &[&str]| pmsm(args).status.code();
    assert_eq!(code(&["run", "-e", "b", "--input", "abc", "--exit-status"]), Some(0));
    assert_eq!(code(&["run", "-e", "b", "--input", "aaa", "--exit-status"]), Some(1));
    assert_eq!(code(&["run", "-e", "b", "--input", "aaa"]), Some(0));
    assert_eq!(code(&["eval", "--dfa", "datasets/ab.json", "--input", "ab", "--exit-status"]), Some(0));
    assert_eq!(code(&["eval", "--dfa", "datasets/ab.json", "--input", "aa", "--exit-status"]), Some(1));
    // Every error is 2 under --exit-status, so 1 always means "nothing accepted".
    assert_eq!(code(&["eval", "-e", "a(", "--input", "a", "--exit-status"]), Some(2));
    assert_eq!(code(&["eval", "--dfa", "no/such.json", "--input", "a", "--exit-status"]), Some(2));
    let o = pmsm(&["run", "--dfa", "datasets/ab.json", "--input", "ab", "--exit-status"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--exit-status needs accept bits: add --reveal accept"), "{}", stderr(&o));
    for args in [&["--help"][..], &["run", "--help"], &["eval", "--help"], &["client", "--help"]] {
        let help = stdout(&pmsm(args));
        assert!(help.contains("Exit status:") && help.contains("2  bad input or usage"), "{args:?}: {help}");
    }
}

#[test]
fn line_numbers_count_from_one() {
    let dir = Scratch::new("lines");
    let inputs = dir.file("in.txt", "ab\nba\naxb\n");
    let o = pmsm(&["eval", "--dfa", "datasets/ab.json", "--inputs", &inputs]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains(&format!("{inputs}: line 3: input 2: symbol \"x\" at position 1")), "{}", stderr(&o));
    let rules = dir.file("rules.txt", "# two rules\nab\n\na(b\n");
    let o = pmsm(&["eval", "--regex-file", &rules, "--input", "a"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains(&format!("{rules}: line 4: regex 1 (\"a(b\")")), "{}", stderr(&o));
    let empty = dir.file("m.json", "");
    let o = pmsm(&["info", &empty]);
    assert!(stderr(&o).contains(&format!("{empty}: line 1, column 1: EOF")), "{}", stderr(&o));
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
    let lines = json_lines(&o);
    assert_eq!(lines[0], json!({"type": "output", "instance": 0, "final_state": 3, "accept": null, "symbols": 3}));
    assert_eq!(lines[1]["type"], "summary");
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

/// `pmsm comm`'s NFA row: measured from a private run's counters, it must agree with
/// the circuit's own counts (2 bits per AND each way, one `c` bit per AND to server 1).
#[test]
fn comm_has_the_nfa_paths_row_and_it_agrees_with_the_circuit() {
    let check = |v: &serde_json::Value| {
        let n = &v["nfa"];
        let ands = n["circuit"]["ands_per_step"].as_f64().unwrap();
        let layers = n["circuit"]["and_layers_per_step"].as_f64().unwrap();
        assert!(ands > 0.0 && layers > 0.0, "{n}");
        let link = |l: &str| n["bits_per_byte"][l].as_f64().unwrap();
        // Each way: 2 bits per AND plus the 8-bit symbol opening; the first step and the
        // release (fewer ANDs) and frame headers stay within 5 %.
        for l in ["s0_to_s1", "s1_to_s0"] {
            let want = 2.0 * ands + 8.0;
            assert!((link(l) - want).abs() <= 0.05 * want, "{l}: {} against {want}", link(l));
        }
        // The dealer sends server 1 one c bit per AND more than server 0.
        let extra = link("dealer_to_s1") - link("dealer_to_s0");
        assert!((extra - ands).abs() <= 0.05 * ands, "dealer: {extra} against {ands}");
        // The client sends one 8-bit share of each byte to each server (and headers).
        assert!((8.0..8.2).contains(&link("client_to_s0")) && (8.0..8.2).contains(&link("client_to_s1")), "{n}");
        // Rounds: the step's layers, the lookup round and the release amortised.
        let rounds = n["rounds"].as_f64().unwrap();
        assert!(rounds >= layers - 0.5 && rounds <= layers + 0.5, "{rounds} rounds against {layers} layers");
        assert_eq!(n["verified"], true);
        n["total_bits"].as_f64().unwrap()
    };
    let o = pmsm(&["comm", "--states", "64", "--symbols", "16", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["nfa"]["rules"], "the default DLP rules");
    let small = check(&v);
    // A rule file with a longer counted rule: more ANDs, more bits.
    let s = Scratch::new("comm-nfa");
    let rules = s.file("rules.txt", "# three rules\nAKIA[0-9A-Z]{16}\n[0-9a-f]{64}\nghp_[0-9A-Za-z]{36}\\b\n");
    let o = pmsm(&["comm", "--states", "64", "--symbols", "16", "--rules", &rules, "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(check(&v) > small, "a larger circuit sends more");
    let o = pmsm(&["comm", "--states", "64", "--symbols", "16"]);
    let text = stdout(&o);
    assert!(text.contains("\nnfa-path ") && text.contains("s0_to_s1") && text.contains("ANDs in"), "{text}");
    let bad = s.file("bad.txt", "a(\n");
    let o = pmsm(&["comm", "--states", "64", "--symbols", "16", "--rules", &bad]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("the NFA row's rules"), "{}", stderr(&o));
}

#[test]
fn patterns_may_start_with_a_hyphen() {
    let header = "-----BEGIN ([A-Z]+ )?PRIVATE KEY-----";
    for flag in ["--regex", "-e"] {
        let o = pmsm(&["run", flag, header, "--input", "-----BEGIN RSA PRIVATE KEY-----"]);
        assert!(o.status.success(), "{flag}: {}", stderr(&o));
        assert!(stdout(&o).starts_with("instance 0: accept"), "{flag}: {}", stdout(&o));
    }
    // Every subcommand taking a machine takes such a pattern (and several -e).
    let o = pmsm(&["info", "--json", "-e", header, "-e", "-x-"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = pmsm(&["compile", "-e", "--", "-o", "/dev/null"]);
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn rule_files_hold_a_pattern_and_compiled_rules_answer_with_accept_bits() {
    let dir = Scratch::new("rules");
    let empty = dir.file("empty.txt", "# nothing yet\n\n   \n");
    let cases: [&[&str]; 3] = [
        &["run", "--regex-file", &empty, "--input", "a"],
        &["eval", "--regex-file", &empty, "--input", "a"],
        &["compile", "--regex-file", &empty, "-o", "/dev/null"],
    ];
    for args in cases {
        let o = pmsm(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(&format!("{empty} holds no pattern")), "{args:?}: {}", stderr(&o));
    }
    // A machine compiled from rules records that it answers with its accept bit, so
    // running the compiled file answers as running the rules did.
    let compiled = dir.path("dlp.json");
    let o = pmsm(&["compile", "--regex-file", "datasets/dlp/rules.txt", "-o", &compiled]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(std::fs::read_to_string(&compiled).unwrap().contains("\"output\": \"accept\""));
    let outputs = |machine: &[&str]| {
        let mut args = vec!["run", "--inputs", "datasets/dlp/positives.txt", "--json"];
        args.extend_from_slice(machine);
        let o = pmsm(&args);
        assert!(o.status.success(), "{machine:?}: {}", stderr(&o));
        json_lines(&o).into_iter().filter(|l| l["type"] == "output").collect::<Vec<_>>()
    };
    let by_rules = outputs(&["--regex-file", "datasets/dlp/rules.txt"]);
    assert!(!by_rules.is_empty() && by_rules.iter().all(|l| l["accept"] == true && l["final_state"].is_null()));
    assert_eq!(outputs(&["--dfa", &compiled]), by_rules);
}

#[test]
fn info_speaks_plainly_of_tiny_machines() {
    let dir = Scratch::new("tiny");
    let one = dir.file("one.json", r#"{"states": 1, "alphabet": ["a"], "start": 0, "accepting": [0], "delta": [[0]]}"#);
    let o = pmsm(&["info", &one]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(text.contains("states      1 state, 1 accepting\nsymbols     1 symbol (alphabet: a)"), "{text}");
    assert!(text.contains("classes     1 symbol class\n") && text.contains("ks = 1, ka = 1"), "{text}");
    assert!(!text.contains(" 0 bytes") && !text.contains("1 symbols") && !text.contains("1 states"), "{text}");
    let v: serde_json::Value = serde_json::from_slice(&pmsm(&["info", "--json", &one]).stdout).unwrap();
    assert_eq!((v["accepting_states"].as_u64(), v.get("accepting")), (Some(1), None));
    assert!(v["lookup_xor_table_bytes"].as_u64().unwrap() > 0 && v["lookup_ring_table_bytes"].as_u64().unwrap() > 0);
    assert_eq!(v["output"], "state");
    let text = stdout(&pmsm(&["info", "-e", "ab"]));
    assert!(text.contains("output      accept bit"), "{text}");
}

#[test]
fn comm_skips_a_protocol_the_size_is_too_large_for() {
    // |S|·|Σ| = 264,000: above naive's 2^18, within seed-dpf's 2^20.
    let o = pmsm(&["comm", "--states", "1100", "--symbols", "240", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let measured: Vec<&str> = v["protocols"].as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(measured, ["seed-dpf", "lookup-ring", "lookup-xor"]);
    let why = v["skipped"]["naive"].as_str().unwrap();
    assert!(why.contains("naive supports |S|·|Σ| up to 262144"), "{why}");
    assert!(v["notes"].as_array().unwrap().iter().any(|n| n.as_str().unwrap().starts_with("naive: skipped")));
    let o = pmsm(&["comm", "--states", "1100", "--symbols", "240"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(
        text.contains("\n- naive: skipped, ") && text.contains("naive supports") && !text.contains("\nnaive "),
        "{text}"
    );
}

#[test]
fn flags_are_where_they_apply_and_named_when_wrong() {
    // --max-connections bounds a listener's unclaimed connections: not a client's flag.
    assert!(!stdout(&pmsm(&["client", "--help"])).contains("--max-connections"));
    for cmd in ["serve", "dealer"] {
        assert!(stdout(&pmsm(&[cmd, "--help"])).contains("--max-connections"), "{cmd}");
    }
    let o = pmsm(&["client", "--certs", "x", "--server0", "a", "--server1", "b", "--max-connections", "9"]);
    assert_eq!(o.status.code(), Some(2));
    // The client knows a served machine by name only: it cannot load one or pick how it runs.
    let help = stdout(&pmsm(&["client", "--help"]));
    for flag in ["--dfa", "--regex", "--protocol", "--reveal", "--chunk"] {
        assert!(!help.contains(&format!("{flag} <")), "{flag}: {help}");
    }
    let o = pmsm(&["client", "--certs", "x", "--server0", "a", "--server1", "b", "--dfa", "datasets/ab.json"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--dfa"), "{}", stderr(&o));
    // A bad --transport names the flag, not a profile key.
    let o = pmsm(&["bench", "--profile", "profiles/default.toml", "--transport", "udp"]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(err.contains("'udp'") && err.contains("--transport") && !err.contains("default.toml"), "{err}");
}

/// Rule sets: `--reveal rules|any|count` over a rule file (ids: line numbers) or a
/// gitleaks file (ids kept), one JSON object per instance; `info` shows the groups.
#[test]
fn rule_sets_answer_per_rule_with_their_ids() {
    let s = Scratch::new("sets");
    let rules = s.file("rules.txt", "# ids are line numbers\nab\nc+d\n\nxyz\n");
    let inputs = s.file("in.txt", "zab\nccd ab\nnothing\nxyz\n");
    let gitleaks = s.file(
        "g.toml",
        "[[rules]]\nid = \"two\"\nregex = '''ab'''\n[[rules]]\nid = \"cd\"\nregex = '''c+d'''\n[[rules]]\nid = \"look\"\nregex = '''a(?=b)'''\n[[rules]]\nid = \"paths\"\npath = '''x'''\n",
    );
    for cmd in ["run", "eval"] {
        let o = pmsm(&[cmd, "--regex-file", &rules, "--reveal", "rules", "--inputs", &inputs, "--json"]);
        assert!(o.status.success(), "{}", stderr(&o));
        let lines = json_lines(&o);
        assert_eq!(lines[0], json!({"type": "output", "instance": 0, "rules": ["2"], "symbols": 3}));
        assert_eq!(lines[1]["rules"], json!(["2", "3"]));
        assert_eq!(lines[2]["rules"], json!([]));
        assert_eq!(lines[3]["rules"], json!(["5"]));
        assert_eq!(lines[4]["type"], "summary");
        let o = pmsm(&[cmd, "--regex-file", &rules, "--reveal", "count", "--inputs", &inputs, "--json"]);
        let counts: Vec<_> = json_lines(&o)[..4].iter().map(|l| l["count"].clone()).collect();
        assert_eq!(counts, vec![json!(1), json!(2), json!(0), json!(1)]);
        let o = pmsm(&[cmd, "--regex-file", &rules, "--reveal", "any", "--inputs", &inputs, "--json"]);
        let any: Vec<_> = json_lines(&o)[..4].iter().map(|l| l["accept"].clone()).collect();
        assert_eq!(any, vec![json!(true), json!(true), json!(false), json!(true)]);
        // gitleaks ids, and the refused rules named with their reasons.
        let o = pmsm(&[cmd, "--gitleaks", &gitleaks, "--inputs", &inputs, "--json"]);
        assert!(o.status.success(), "{}", stderr(&o));
        assert_eq!(json_lines(&o)[1]["rules"], json!(["two", "cd"]));
        assert!(stderr(&o).contains("rule look refused: ") && stderr(&o).contains("rule paths refused: no regex"));
    }
    let o = pmsm(&["info", "--regex-file", &rules, "--reveal", "any", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let groups = v["set"]["groups"].as_array().unwrap();
    assert_eq!(groups.iter().map(|g| g["rules"].as_array().unwrap().len()).sum::<usize>(), 3);
    assert!(groups.iter().all(|g| g["n"].as_u64().unwrap() > 0));
    assert!(v["set"]["predicted_ns_per_symbol"].as_f64().unwrap() > 0.0);
    let o = pmsm(&["info", "--gitleaks", &gitleaks]);
    assert!(stdout(&o).contains("look\trefused: ") && stdout(&o).contains("2 rules in "), "{}", stdout(&o));
    let o = pmsm(&["run", "--gitleaks", &gitleaks, "--reveal", "state", "--input", "x"]);
    assert!(stderr(&o).contains("a rule set releases any, rules or count"), "{}", stderr(&o));
}

#[test]
fn the_nfa_path_is_described_and_benchmarked() {
    let o = pmsm(&["info", "--path", "nfa", "-e", "a[0-9]{3}\\b", "-e", "^x", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["cost"]["rules"], 2);
    assert_eq!(v["cost"]["positions"], 5);
    assert!(v["cost"]["ands"][1].as_u64().unwrap() > 0 && v["cost"]["rounds"][1].as_u64().unwrap() > 0);
    let o = pmsm(&["info", "--path", "nfa", "-e", "(?m)^a"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("rule 1 (\"(?m)^a\"): unsupported on the NFA path: the look-around multi-line"),
        "{}",
        stderr(&o)
    );
    let o = pmsm(&["info", "--path", "nfa", "-e", "ab", "--full-match"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--full-match is not supported there"), "{}", stderr(&o));
    let dir = Scratch::new("nfa");
    let texts = dir.file("texts.txt", "xa123 b\nno match here\na1234\n");
    let o = pmsm(&["bench-nfa", "-e", "a[0-9]{3}\\b", "-e", "^x", "--texts", &texts, "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!((v["texts"].clone(), v["hits"].clone(), v["verified"].clone()), (json!(3), json!(2), json!(true)));
    assert!(v["bits_per_input_byte"]["s0_to_s1"].as_f64().unwrap() > 0.0);
    // The same over loopback TLS: the same answers and the same bytes on every link.
    let o = pmsm(&["bench-nfa", "-e", "a[0-9]{3}\\b", "-e", "^x", "--texts", &texts, "--transport", "tcp", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let t: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!((t["transport"].clone(), t["hits"].clone()), (json!("tcp"), json!(2)));
    assert_eq!(t["bits_per_input_byte"], v["bits_per_input_byte"]);
    let o = pmsm(&["bench-nfa", "-e", "ab", "--texts", &texts, "--transport", "tcp", "--path", "dfa"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("over tcp only the NFA path runs here"), "{}", stderr(&o));
}

/// `--path auto`: each rule on the cheaper path by the model, a rule the DFA path
/// refuses on the NFA path; `bench-nfa --compare` measures both per rule and counts the
/// picks that were the faster path; `--calibrate` fits the constants to its runs.
#[test]
fn the_path_of_each_rule_is_chosen_by_the_cost_model_and_measured() {
    // 2^21 states on the DFA path (refused at 1,000), 22 positions on the NFA path.
    let big = "[ab]*a[ab]{20}";
    let o =
        pmsm(&["info", "--path", "auto", "-e", "ab", "-e", big, "-e", "x[0-9]{3}", "--max-states", "1000", "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let rows = v["rules"].as_array().unwrap();
    assert_eq!(rows.len(), 3);
    assert!(rows[1]["dfa"]["refused"].as_str().unwrap().contains("1000"), "{}", rows[1]);
    assert_eq!(rows[1]["path"], "nfa", "a rule the DFA path refuses goes to the NFA path");
    for r in rows {
        let (d, n) = (r["dfa"]["predicted_ns_per_byte"].as_f64(), r["nfa"]["predicted_ns_per_byte"].as_f64().unwrap());
        assert!(n > 0.0 && d.is_none_or(|d| d > 0.0), "{r}");
    }
    // In one circuit the NFA path's fixed costs are shared: the two small rules join the
    // one only it runs (each alone would be cheaper on the DFA path).
    let (dp, np) = (&v["dfa_part"], &v["nfa_part"]);
    assert_eq!((dp.clone(), np["rules"].clone()), (json!(null), json!(3)), "{v}");
    let o = pmsm(&["info", "--path", "auto", "-e", "ab", "-e", big, "--max-states", "1000"]);
    assert!(
        stdout(&o).contains("→ nfa") && stdout(&o).contains("path auto: DFA part: no rule; NFA part: 2 rules"),
        "{}",
        stdout(&o)
    );
    let o = pmsm(&["info", "--path", "dfa", "-e", "ab", "-e", "x[0-9]{3}", "--max-states", "1000"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = pmsm(&["info", "--path", "auto", "--dfa", "x.json"]);
    assert_eq!(o.status.code(), Some(2));
    let o = pmsm(&["info", "--path", "auto", "-e", "ab", "--full-match"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--full-match"), "{}", stderr(&o));

    let dir = Scratch::new("paths");
    let texts =
        dir.file("texts.txt", "xa123 b ab\nno match here\na1234 x999\nbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\n");
    let o = pmsm(&[
        "bench-nfa",
        "--compare",
        "-e",
        "ab",
        "-e",
        big,
        "-e",
        "x[0-9]{3}",
        "--max-states",
        "1000",
        "--texts",
        &texts,
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!((v["rules"].clone(), v["both_paths"].clone(), v["measured"].clone()), (json!(3), json!(2), json!(2)));
    let rows = v["rows"].as_array().unwrap();
    let right = rows.iter().filter(|r| r["path"] == r["faster"]).count();
    assert_eq!(v["picked_faster"], json!(right));
    for r in rows {
        let (d, n) =
            (r["dfa"]["measured_ns_per_byte"].as_f64().unwrap(), r["nfa"]["measured_ns_per_byte"].as_f64().unwrap());
        assert!(d > 0.0 && n > 0.0);
        assert_eq!(r["faster"], if n < d { "nfa" } else { "dfa" }, "{r}");
    }
    assert!(v["picked_over_best"].as_f64().unwrap() >= 1.0);
    let o = pmsm(&["bench-nfa", "--compare", "-e", big, "--max-states", "1000", "--texts", &texts]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("no rule that both paths run"), "{}", stderr(&o));
    // Each rule on its path in the set (here all on the circuit; the library's tests run
    // mixed sets), every hit checked; on the DFA path alone the rule it refuses is
    // listed and left out.
    let three = ["-e", "ab", "-e", big, "-e", "x[0-9]{3}", "--max-states", "1000", "--texts", &texts, "--json"];
    let o = pmsm(&[&["bench-nfa", "--path", "auto"][..], &three].concat());
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let on = |v: &serde_json::Value, part: &str| v[part]["rules"].as_u64().unwrap_or(0);
    assert_eq!(on(&v, "dfa_part") + on(&v, "nfa_part"), 3, "{v}");
    assert_eq!((v["verified"].clone(), v["refused"].clone()), (json!(true), json!([])));
    let o = pmsm(&[&["bench-nfa", "--path", "dfa"][..], &three].concat());
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!((v["rules"].clone(), on(&v, "dfa_part"), v["nfa_part"].clone()), (json!(2), 2, json!(null)));
    assert!(v["refused"][0]["reason"].as_str().unwrap().contains("dfa: "), "{v}");
    let o = pmsm(&["bench-nfa", "--path", "dfa", "-e", big, "--max-states", "1000", "--texts", &texts]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("no rule runs on the dfa path"), "{}", stderr(&o));
    let o = pmsm(&[
        "bench-nfa",
        "--calibrate",
        "-e",
        "ab",
        "-e",
        big,
        "-e",
        "x[0-9]{3}",
        "-e",
        "[ab][ac]?[ad]?[ae]?z",
        "--texts",
        &texts,
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["nfa"]["rules"].as_array().unwrap().len(), 4);
    assert!(v["nfa"]["fit"]["and_ns"].as_f64().unwrap().is_finite());
    let ladder = v["dfa"]["ladder"].as_array().unwrap();
    assert!(ladder.len() >= 5 && ladder.iter().all(|r| r["ns_per_lookup"].as_f64().unwrap() > 0.0));
    assert!(v["dfa"]["fit"]["entry_ns"].as_f64().unwrap().is_finite());
    let o = pmsm(&["bench-nfa", "--calibrate", "--compare", "-e", "ab", "--texts", &texts]);
    assert_eq!(o.status.code(), Some(2));
}
