//! `pmsm bench` as a user runs it: the JSON header and the plots `--out` draws.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn pmsm() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_pmsm"));
    c.current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join(".."));
    c
}

/// A fresh folder for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("pmsm-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn bench(profile: &Path, extra: &[&str]) -> Output {
    pmsm().args(["bench", "--profile", profile.to_str().unwrap()]).args(extra).output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

const AB: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../datasets/ab.json");

#[test]
fn bench_json_says_its_format_backend_and_time() {
    let dir = scratch("bench-json");
    let profile = dir.join("tiny.toml");
    let run = "[[run]]\nlabel = \"ab\"\nmachine = { dfa = \"AB\" }\ninputs = { random = { batch = 20, length = 5 } }\n";
    std::fs::write(&profile, format!("phases = false\n{}", run.replace("AB", AB))).unwrap();
    let before = pmsm_engine::process::clock::now_rfc3339();
    let o = bench(&profile, &["--json", "--out", dir.join("out").to_str().unwrap()]);
    let after = pmsm_engine::process::clock::now_rfc3339();
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["format_version"], 1);
    assert_eq!(v["profile"], "tiny");
    // The same CPU and environment: the binary picks the backend this process does.
    let backend = pmsm_kernels::active_backend().name();
    assert_eq!(v["backend"], backend);
    let t = v["timestamp"].as_str().unwrap();
    let shape: String = t.chars().map(|c| if c.is_ascii_digit() { '0' } else { c }).collect();
    assert_eq!(shape, "0000-00-00T00:00:00Z", "{t}");
    // One format, so string order is time order.
    assert!(before.as_str() <= t && t <= after.as_str(), "{before} <= {t} <= {after}");
    // --out writes the same object, and results.md says when and on what.
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("out/results.json")).unwrap()).unwrap();
    assert_eq!(saved, v);
    let md = std::fs::read_to_string(dir.join("out/results.md")).unwrap();
    assert!(md.contains(&format!("Started {t}, kernel backend `{backend}`.")), "{md}");
    std::fs::remove_dir_all(dir).ok();
}

/// The SVG files `--out` wrote.
fn plots(out: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".svg"))
        .collect();
    names.sort();
    names
}

#[test]
fn bench_out_draws_only_the_plots_its_runs_support() {
    let dir = scratch("bench-plots");
    let run = |label: &str, machine: &str, batch: u32| {
        format!(
            "[[run]]\nlabel = \"{label}\"\nmachine = {machine}\ninputs = {{ random = {{ batch = {batch}, length = 4 }} }}\n"
        )
    };
    let ab = format!("{{ dfa = \"{AB}\" }}");
    let random = |states: u32| format!("{{ random = {{ states = {states}, symbols = 16 }} }}");
    let cases = [
        // One machine at three batch sizes: a batch sweep.
        (
            "batch",
            [run("b10", &ab, 10), run("b20", &ab, 20), run("b40", &ab, 40)].concat(),
            vec!["throughput_vs_batch.svg"],
        ),
        // Growing tables over one alphabet, batches repeated: a table-size sweep.
        (
            "table",
            [run("n6", &random(4), 30), run("n8", &random(16), 30), run("n10", &random(64), 10)].concat(),
            vec!["throughput_vs_table.svg"],
        ),
        // One run per protocol: no sweep at all.
        ("one", run("ab", &ab, 10), vec![]),
    ];
    for (name, runs, want) in cases {
        let profile = dir.join(format!("{name}.toml"));
        std::fs::write(&profile, format!("phases = false\nclasses = \"off\"\n{runs}")).unwrap();
        let out = dir.join(name);
        let o = bench(&profile, &["--out", out.to_str().unwrap()]);
        assert!(o.status.success(), "{}", stderr(&o));
        assert_eq!(plots(&out), want, "{name}");
        assert!(out.join("results.md").exists() && out.join("results.json").exists());
        let files = ["results.md", "results.json"].iter().chain(&want).copied().collect::<Vec<_>>().join(", ");
        assert!(stderr(&o).contains(&format!("pmsm: wrote {files} into ")), "{}", stderr(&o));
    }
    std::fs::remove_dir_all(dir).ok();
}
