//! `pmsm bench` as a user runs it: the JSON header, the plots `--out` draws, and an
//! interrupted tcp bench cleaning up after itself.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

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
    let before = pmsm_engine::process::timestamp::now();
    let o = bench(&profile, &["--json", "--out", dir.join("out").to_str().unwrap()]);
    let after = pmsm_engine::process::timestamp::now();
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["format_version"], 1);
    assert_eq!(v["profile"], "tiny");
    // The same CPU and environment: the binary picks the backend this process does.
    let backend = pmsm_kernels::active_backend().name();
    assert_eq!(v["backend"], backend);
    let t = v["timestamp"].as_str().unwrap();
    let shape: String = t.chars().map(|c| if c.is_ascii_digit() { '0' } else { c }).collect();
    assert_eq!(shape, "0000-00-00T00:00:00.000Z", "{t}");
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

/// Processes whose parent is `pid` (Linux `/proc`).
fn children(pid: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|p| {
            let stat = std::fs::read_to_string(format!("/proc/{p}/stat")).unwrap_or_default();
            // `pid (comm) state ppid …`; the name may hold spaces and parentheses.
            let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
            rest.split_whitespace().nth(1).and_then(|pp| pp.parse::<u32>().ok()) == Some(pid)
        })
        .collect()
}

/// A tcp bench stopped by SIGINT or SIGTERM while its three processes run (the client
/// is a thread of the bench): it exits with 128 + the signal, no party survives it and
/// its folder of CA keys is gone.
#[test]
fn an_interrupted_tcp_bench_stops_its_parties_and_removes_its_folder() {
    let tmp = scratch("bench-signal");
    let profile = tmp.join("long.toml");
    std::fs::write(
        &profile,
        "phases = false\ntransport = \"tcp\"\n[[run]]\nlabel = \"long\"\nmachine = { random = { states = 64, symbols = 256 } }\ninputs = { random = { batch = 50000, length = 100 } }\n",
    )
    .unwrap();
    for (signal, code) in [("INT", 130), ("TERM", 143)] {
        let mut b = pmsm()
            .args(["bench", "--profile", profile.to_str().unwrap()])
            .env("TMPDIR", &tmp)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let folder = tmp.join(format!("pmsm-bench-tcp-{}", b.id()));
        // Wait for the dealer and both servers.
        let start = Instant::now();
        let kids = loop {
            let kids = children(b.id());
            if kids.len() == 3 || start.elapsed() > Duration::from_secs(120) {
                break kids;
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        assert_eq!(kids.len(), 3, "the three parties did not start");
        assert!(folder.join("certs").exists());
        let sent = Command::new("kill").args([format!("-{signal}"), b.id().to_string()]).status().unwrap();
        assert!(sent.success());
        let deadline = Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(s) = b.try_wait().unwrap() {
                break Some(s);
            }
            if Instant::now() > deadline {
                break None;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let Some(status) = status else {
            for k in &kids {
                let _ = Command::new("kill").args(["-KILL", &k.to_string()]).status();
            }
            let _ = b.kill();
            panic!("SIG{signal}: the bench did not stop within 30 s");
        };
        assert_eq!(status.code(), Some(code), "SIG{signal}");
        let alive: Vec<&u32> = kids.iter().filter(|k| Path::new(&format!("/proc/{k}")).exists()).collect();
        assert!(alive.is_empty(), "SIG{signal}: parties {alive:?} survived the bench");
        assert!(!folder.exists(), "SIG{signal}: {} is left behind", folder.display());
    }
    std::fs::remove_dir_all(tmp).ok();
}
