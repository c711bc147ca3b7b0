//! `pmsm bench`: runs a profile's workloads through all four parties, verifies every
//! output against the plaintext evaluator and reports throughput, phase rates, round
//! latency, bits per transition per link and peak memory.

pub mod plot;
pub mod profile;
pub mod service;
pub mod set;
pub mod tcp;

use indicatif::{ProgressBar, ProgressStyle};
use pmsm_engine::transport::Link;
use pmsm_engine::{Engine, InstanceOutput, LinkBytes};
use serde_json::{Value, json};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

/// Online-only runs hold every correlation in memory; above this they are skipped.
const PREDEAL_LIMIT_BYTES: u64 = 2 << 30;

/// One measured (run, protocol) pair.
pub struct Measured {
    pub label: String,
    pub value: Value,
}

/// Resets the kernel's peak-RSS counter for this process (Linux; best effort).
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// Runs `f` with a progress bar over `total` rounds on stderr (hidden unless stderr is
/// a terminal); the closure gets the counter to advance.
fn with_progress<T>(msg: String, total: u64, f: impl FnOnce(&AtomicU64) -> T) -> T {
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template("{msg:40} [{bar:30}] {pos}/{len} rounds {elapsed}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_message(msg);
    let counter = AtomicU64::new(0);
    let done = AtomicBool::new(false);
    let out = std::thread::scope(|s| {
        s.spawn(|| {
            while !done.load(Ordering::Relaxed) {
                bar.set_position(counter.load(Ordering::Relaxed));
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        let out = f(&counter);
        done.store(true, Ordering::Relaxed);
        out
    });
    bar.finish_and_clear();
    out
}

fn bits_per_transition(bytes: &LinkBytes, transitions: usize) -> Value {
    let t = transitions.max(1) as f64;
    let sum = |links: &[Link]| links.iter().map(|l| bytes.get(*l) * 8).sum::<u64>() as f64 / t;
    json!({
        "client_to_servers": sum(&[Link::ClientToS0, Link::ClientToS1]),
        "server_to_server": sum(&[Link::S0ToS1, Link::S1ToS0]),
        "dealer_to_servers": sum(&[Link::DealerToS0, Link::DealerToS1]),
        "servers_to_client": sum(&[Link::S0ToClient, Link::S1ToClient]),
    })
}

/// Version of the `--json` object ([`to_json`]'s `format_version`): raised when a field
/// changes meaning or goes away, not when one is added.
pub const FORMAT_VERSION: u64 = 1;

/// A profile's name, description and results, with when and on what they were measured.
pub struct Outcome {
    pub name: String,
    pub description: Option<String>,
    pub results: Vec<Measured>,
    /// The vector kernels' backend ([`pmsm_kernels::active_backend`]).
    pub backend: &'static str,
    /// When the profile started, RFC 3339 UTC.
    pub timestamp: String,
}

/// One end-to-end measurement, whatever the transport.
struct Timed {
    outputs: Vec<InstanceOutput>,
    seconds: f64,
    bytes: LinkBytes,
    round_p50_ms: Option<f64>,
    round_p99_ms: Option<f64>,
    peak_rss_bytes: Option<u64>,
    /// Over tcp, each process's peak: dealer, server 0, server 1, client.
    peak_rss_by_party: Option<[u64; 4]>,
}

/// Runs every (run, protocol) of the profile; `transport` overrides the profile's.
///
/// Over tcp, a SIGINT or SIGTERM stops the parties' processes, removes the scratch
/// folder (it holds the CA keys) and exits with 128 + the signal's number.
pub fn run(file: &Path, transport: Option<&str>) -> Result<Outcome, String> {
    let checked = profile::load(file, transport)?;
    let scratch = if checked.tcp { Some(tcp::Scratch::new()?) } else { None };
    let outcome = measure(&checked, scratch.as_ref());
    if let Some(sig) = scratch.as_ref().and_then(tcp::Scratch::interrupted) {
        drop(scratch);
        eprintln!("pmsm bench: interrupted by signal {sig}: stopped the parties, removed the scratch folder");
        std::process::exit(128 + sig);
    }
    outcome
}

/// Measures every (run, protocol) of a checked profile, over tcp with `scratch`.
fn measure(checked: &profile::Checked, scratch: Option<&tcp::Scratch>) -> Result<Outcome, String> {
    let timestamp = pmsm_engine::process::timestamp::now();
    let p = &checked.profile;
    let transport = if scratch.is_some() { "tcp" } else { "inproc" };
    let mut results = Vec::new();
    for (i, spec) in p.run.iter().enumerate() {
        if set::is_set(checked, i) {
            if scratch.is_some() || checked.service {
                return Err(profile::err(
                    &checked.file,
                    &format!("run[{i}]"),
                    "machine sets run in process, batch mode",
                ));
            }
            results.extend(set::measure(checked, i)?);
            continue;
        }
        let dfa = checked.machine(i)?;
        let inputs = checked.inputs(i, &dfa)?;
        let want: Vec<u32> = dfa.run_batch(&inputs);
        let transitions: usize = inputs.iter().map(Vec::len).sum();
        for protocol in checked.protocols(i) {
            if checked.service {
                let value = service::run(checked, i, &dfa, &inputs, protocol, scratch)?;
                results.push(Measured { label: spec.label.clone(), value });
                continue;
            }
            let key = format!("run[{i}]");
            let builder =
                Engine::builder(dfa.clone()).protocol(protocol).reveal(checked.reveal(i)).classes(checked.classes(i));
            let builder = match p.chunk {
                Some(c) => builder.chunk(c),
                None => builder,
            };
            let engine = builder.build().map_err(|e| profile::err(&checked.file, &key, e))?;
            let msg = format!("{} · {}", spec.label, protocol);
            let failed = |e: &dyn std::fmt::Display| format!("{}: {}: {e}", spec.label, protocol);
            let rounds = engine.rounds(&inputs).map_err(|e| failed(&e))? as u64;
            let timed = match scratch {
                None => {
                    reset_peak_rss();
                    let report = with_progress(msg.clone(), rounds, |c| engine.run_with_progress(&inputs, c))
                        .map_err(|e| failed(&e))?;
                    let peak = pmsm_engine::process::peak_rss_bytes();
                    let [round_p50_ms, round_p99_ms] =
                        pmsm_engine::party::server::round_latency_ms(&report.round_seconds);
                    Timed {
                        outputs: report.outputs,
                        seconds: report.seconds,
                        bytes: report.bytes,
                        round_p50_ms,
                        round_p99_ms,
                        peak_rss_bytes: peak,
                        peak_rss_by_party: None,
                    }
                }
                Some(scratch) => {
                    eprintln!("pmsm bench: {msg}: dealer and two servers as processes on 127.0.0.1, the client here");
                    let r = tcp::run(scratch, &engine, &dfa, &inputs, false).map_err(|e| failed(&e))?;
                    Timed {
                        outputs: r.outputs,
                        seconds: r.seconds,
                        bytes: r.bytes,
                        round_p50_ms: r.round_p50_ms,
                        round_p99_ms: r.round_p99_ms,
                        peak_rss_bytes: r.peak_rss_bytes,
                        peak_rss_by_party: r.peak_rss_by_party,
                    }
                }
            };
            if timed.outputs.len() != want.len() {
                return Err(failed(&format!("{} outputs for {} instances", timed.outputs.len(), want.len())));
            }
            for (n, (o, s)) in timed.outputs.iter().zip(&want).enumerate() {
                let ok = o.symbols == inputs[n].len()
                    && match (o.final_state, o.accept) {
                        (Some(f), _) => f == *s,
                        (_, Some(a)) => a == dfa.is_accepting(*s),
                        _ => false,
                    };
                if !ok {
                    return Err(failed(&format!("instance {n} differs from the plaintext evaluator")));
                }
            }
            let (online, offline) = if p.phases {
                // Bytes of correlations per transition for both servers (held in memory when pre-dealt).
                let per_transition = match (engine.plan(), engine.poly_plan()) {
                    (Some(p), _) => 2 * pmsm_engine::protocol::wire::correlation_bytes(protocol, p.step_bits()),
                    (_, Some(p)) => 2 * 3 * 2 * p.mults_per_transition() as u64,
                    _ => 0,
                };
                let predeal = transitions as u64 * per_transition;
                let online = if predeal > PREDEAL_LIMIT_BYTES {
                    None
                } else if let Some(scratch) = scratch {
                    eprintln!("pmsm bench: {msg} (online only): the dealer deals everything first");
                    let r = tcp::run(scratch, &engine, &dfa, &inputs, true).map_err(|e| failed(&e))?;
                    Some(transitions as f64 / r.seconds.max(1e-12))
                } else {
                    let r = with_progress(format!("{msg} (online only)"), rounds, |c| {
                        engine.run_online_only(&inputs, Some(c))
                    })
                    .map_err(|e| failed(&e))?;
                    Some(r.transitions as f64 / r.seconds.max(1e-12))
                };
                let secs = engine.time_offline(&inputs).map_err(|e| failed(&e))?;
                (online, Some(transitions as f64 / secs.max(1e-12)))
            } else {
                (None, None)
            };
            let steps = inputs.iter().map(Vec::len).max().unwrap_or(0);
            let value = json!({
                "label": spec.label,
                "protocol": protocol.name(),
                "transport": transport,
                "states": dfa.states(),
                "symbols": dfa.symbols(),
                "classes": engine.plan().and_then(|p| p.classes.as_ref().map(|c| c.count)),
                "table_bits": engine.plan().map(|p| p.step_bits()),
                "batch": inputs.len(),
                "steps": steps,
                "transitions": transitions,
                "seconds": timed.seconds,
                "transitions_per_sec": transitions as f64 / timed.seconds.max(1e-12),
                "online_transitions_per_sec": online,
                "offline_transitions_per_sec": offline,
                "round_latency_p50_ms": timed.round_p50_ms,
                "round_latency_p99_ms": timed.round_p99_ms,
                "bits_per_transition": bits_per_transition(&timed.bytes, transitions),
                "peak_rss_bytes": timed.peak_rss_bytes,
                "peak_rss_bytes_by_party": timed.peak_rss_by_party.map(|[d, s0, s1, c]| {
                    serde_json::json!({"dealer": d, "server0": s0, "server1": s1, "client": c})
                }),
                "verified": true,
            });
            eprintln!(
                "pmsm bench: {:<34} {:<11} {:>10.0} transitions/s ({} transitions, {:.2} s, {transport})",
                spec.label,
                protocol.name(),
                value["transitions_per_sec"].as_f64().unwrap_or(0.0),
                transitions,
                timed.seconds,
            );
            results.push(Measured { label: spec.label.clone(), value });
        }
    }
    Ok(Outcome {
        name: checked.name.clone(),
        description: checked.profile.description.clone(),
        results,
        backend: pmsm_kernels::active_backend().name(),
        timestamp,
    })
}

/// The results as one JSON object (the contract documented in `profiles/README.md`).
pub fn to_json(o: &Outcome) -> Value {
    json!({
        "format_version": FORMAT_VERSION,
        "profile": o.name,
        "timestamp": o.timestamp,
        "backend": o.backend,
        "results": o.results.iter().map(|r| r.value.clone()).collect::<Vec<_>>(),
    })
}

/// The results as a Markdown table.
pub fn to_markdown(o: &Outcome) -> String {
    let (name, results) = (&o.name, &o.results);
    let mut s =
        format!("# pmsm bench: `{name}`\n\n{}", o.description.as_deref().map_or(String::new(), |d| format!("{d}\n\n")));
    s.push_str(&format!("Started {}, kernel backend `{}`.\n\n", o.timestamp, o.backend));
    s.push_str(
        "| run | protocol | S × Σ | n | batch × steps | transitions/s | online/s | offline/s | p50 / p99 round ms | bits/transition s↔s | dealer bits/transition | peak RSS MiB |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    let f = |v: &Value| v.as_f64().map_or("–".to_string(), |x| format!("{x:.0}"));
    let ms = |v: &Value| v.as_f64().map_or("–".to_string(), |x| format!("{x:.2}"));
    for r in results {
        let v = &r.value;
        s.push_str(&format!(
            "| {} | {} | {} × {} | {} | {} × {} | {} | {} | {} | {} / {} | {:.1} | {:.0} | {} |\n",
            r.label,
            v["protocol"].as_str().unwrap_or(""),
            v["states"],
            v["symbols"],
            v["table_bits"].as_u64().map_or("–".to_string(), |n| n.to_string()),
            v["batch"],
            v["steps"],
            f(&v["transitions_per_sec"]),
            f(&v["online_transitions_per_sec"]),
            f(&v["offline_transitions_per_sec"]),
            ms(&v["round_latency_p50_ms"]),
            ms(&v["round_latency_p99_ms"]),
            v["bits_per_transition"]["server_to_server"].as_f64().unwrap_or(0.0),
            v["bits_per_transition"]["dealer_to_servers"].as_f64().unwrap_or(0.0),
            v["peak_rss_bytes"].as_f64().map_or("–".into(), |b| format!("{:.0}", b / 1048576.0)),
        ));
    }
    s
}

/// Writes `results.md`, `results.json` and the throughput plots the runs support
/// ([`plot::Plot::supported`]) into `dir`; returns the names of the files written.
pub fn write_out(dir: &Path, o: &Outcome) -> Result<Vec<&'static str>, String> {
    let (name, results) = (&o.name, &o.results);
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let write = |file: &'static str, text: String| {
        std::fs::write(dir.join(file), text).map(|()| file).map_err(|e| format!("{}: {e}", dir.join(file).display()))
    };
    let mut written = vec![write("results.md", to_markdown(o))?];
    written.push(write("results.json", serde_json::to_string_pretty(&to_json(o)).expect("serialisable"))?);
    let values = || results.iter().map(|r| &r.value);
    for p in plot::PLOTS.iter().filter(|p| p.supported(values())) {
        let svg = plot::svg(&format!("{name}: {}", p.title), p.x_label, &plot::series(values(), p.x));
        written.push(write(p.file, svg)?);
    }
    Ok(written)
}
