//! `transport = "tcp"`: the dealer and both servers as processes on 127.0.0.1, the
//! client in the bench process.
//!
//! For each (run, protocol) the bench writes the machine and a development certificate
//! set into a scratch folder, starts `pmsm dealer`, `pmsm serve --party 0` and
//! `--party 1` (one batch session each), then runs the library's batch client
//! ([`client::run`], which holds the machine as the bench does; `pmsm client` knows a
//! service's interface only) on a thread of its own and takes its outputs (verified by
//! the caller). The end-to-end time is the client's, from its first dial to its last
//! output. With phases, a second set of processes runs with `pmsm dealer --predeal`:
//! the online time is the slower server's session time (links up → done) while the
//! dealer only sends. Bytes per link come from each party's own counters (the
//! processes' `--stats` lines, the client's run), and peak memory is the sum of the
//! three processes' peaks and the bench process's peak while its client ran (the
//! counter is reset just before).
//!
//! The scratch folder holds the development CA's keys. SIGINT or SIGTERM only raise a
//! flag ([`Scratch::interrupted`]); every wait for a process or the client watches it,
//! and an interrupted run kills its processes and removes the folder before the bench
//! exits (a second signal exits at once).

use pmsm_engine::dfa::Dfa;
use pmsm_engine::process::{NetOptions, client};
use pmsm_engine::transport::Link;
use pmsm_engine::transport::tls::{Identity, Role};
use pmsm_engine::{Engine, InstanceOutput, LinkBytes};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

/// What a tcp run measured.
pub struct TcpRun {
    pub outputs: Vec<InstanceOutput>,
    pub seconds: f64,
    pub bytes: LinkBytes,
    pub round_p50_ms: Option<f64>,
    pub round_p99_ms: Option<f64>,
    pub peak_rss_bytes: Option<u64>,
    /// Each process's peak: dealer, server 0, server 1, client.
    pub peak_rss_by_party: Option<[u64; 4]>,
}

/// A scratch folder for one bench invocation, removed on drop, and the signal flag
/// that interrupts the processes working in it.
pub struct Scratch {
    dir: PathBuf,
    certs: PathBuf,
    /// The number of the SIGINT or SIGTERM that arrived; 0 while none has.
    signal: Arc<AtomicUsize>,
}

/// How often a wait for a process looks at the signal flag.
const POLL: Duration = Duration::from_millis(20);

impl Scratch {
    /// Catches SIGINT and SIGTERM (before anything is written), then makes the folder
    /// and the development certificates.
    pub fn new() -> Result<Scratch, String> {
        let signal = Arc::new(AtomicUsize::new(0));
        let again = Arc::new(AtomicBool::new(false));
        for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
            // A second signal exits at once (the first is being handled, or hangs).
            signal_hook::flag::register_conditional_shutdown(sig, 128 + sig, again.clone())
                .and_then(|_| signal_hook::flag::register(sig, again.clone()))
                .and_then(|_| signal_hook::flag::register_usize(sig, signal.clone(), sig as usize))
                .map_err(|e| format!("cannot install the signal handler: {e}"))?;
        }
        let dir = std::env::temp_dir().join(format!("pmsm-bench-tcp-{}", std::process::id()));
        let scratch = Scratch { certs: dir.join("certs"), dir, signal };
        std::fs::create_dir_all(&scratch.dir).map_err(|e| format!("{}: {e}", scratch.dir.display()))?;
        pmsm_engine::transport::certs::write_dev_certs(&scratch.certs).map_err(|e| e.to_string())?;
        Ok(scratch)
    }

    /// The folder of the development certificates.
    pub fn certs(&self) -> &std::path::Path {
        &self.certs
    }

    /// The signal (SIGINT or SIGTERM) that interrupted the bench, if one has.
    pub fn interrupted(&self) -> Option<i32> {
        match self.signal.load(Ordering::Relaxed) {
            0 => None,
            sig => Some(sig as i32),
        }
    }

    /// An error if a signal has arrived.
    fn check(&self) -> Result<(), String> {
        self.interrupted().map_or(Ok(()), |sig| Err(format!("interrupted by signal {sig}")))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A child process, killed if still running when dropped; its stderr goes to `log`.
struct Proc {
    name: &'static str,
    child: Child,
    log: PathBuf,
}

impl Proc {
    /// The last lines the process wrote on stderr, for an error message.
    fn tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(5)..].join("\n")
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Proc {
    /// Waits for the process to exit, giving up when a signal interrupts the bench.
    fn wait(&mut self, scratch: &Scratch) -> Result<ExitStatus, String> {
        loop {
            if let Some(status) = self.child.try_wait().map_err(|e| format!("{}: {e}", self.name))? {
                return Ok(status);
            }
            scratch.check()?;
            std::thread::sleep(POLL);
        }
    }
}

fn exe() -> Result<PathBuf, String> {
    std::env::current_exe().map_err(|e| format!("cannot find the pmsm binary: {e}"))
}

fn log_file(log: &Path) -> Result<std::fs::File, String> {
    std::fs::File::create(log).map_err(|e| format!("{}: {e}", log.display()))
}

/// Starts a listening party and reads the address it prints.
fn listen(name: &'static str, args: &[String], log: PathBuf) -> Result<(Proc, String), String> {
    let mut child = Command::new(exe()?)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(log_file(&log)?)
        .spawn()
        .map_err(|e| format!("cannot start {name}: {e}"))?;
    let mut line = String::new();
    let stdout = child.stdout.take().expect("piped");
    BufReader::new(stdout).read_line(&mut line).map_err(|e| format!("{name}: {e}"))?;
    let proc = Proc { name, child, log };
    let addr = line.strip_prefix("listening ").ok_or_else(|| format!("{name} did not start: {}", proc.tail()))?;
    Ok((proc, addr.trim().to_string()))
}

/// Waits for a party and returns its one stats line.
fn stats(mut p: Proc, file: &Path, scratch: &Scratch) -> Result<Value, String> {
    let status = p.wait(scratch)?;
    if !status.success() {
        return Err(format!("{} failed: {}", p.name, p.tail()));
    }
    let text = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
    serde_json::from_str(text.lines().last().unwrap_or("")).map_err(|e| format!("{}: {e}", file.display()))
}

/// Runs one batch session: three processes and the client on a thread here.
pub fn run(
    scratch: &Scratch,
    engine: &Engine,
    dfa: &Dfa,
    inputs: &[Vec<u32>],
    predeal: bool,
) -> Result<TcpRun, String> {
    scratch.check()?;
    let io = |p: &Path, e: std::io::Error| format!("{}: {e}", p.display());
    let machine = scratch.dir.join("machine.json");
    std::fs::write(&machine, pmsm_engine::dfa::json::to_json_string(dfa)).map_err(|e| io(&machine, e))?;
    let stats_file = |name: &str| scratch.dir.join(format!("{name}.stats"));
    for name in ["dealer", "s0", "s1"] {
        let _ = std::fs::remove_file(stats_file(name));
    }
    let s = |x: &Path| x.display().to_string();
    let common = |role: &[&str], name: &str| -> Vec<String> {
        let mut a: Vec<String> = role.iter().map(|r| r.to_string()).collect();
        a.extend(["--certs".into(), s(&scratch.certs), "--dfa".into(), s(&machine)]);
        a.extend(["--sessions".into(), "1".into(), "--stats".into(), s(&stats_file(name))]);
        a
    };
    let mut dealer_args = common(&["dealer"], "dealer");
    if predeal {
        dealer_args.push("--predeal".into());
    }
    let log = |name: &str| scratch.dir.join(format!("{name}.log"));
    let (mut dealer, dealer_addr) = listen("dealer", &dealer_args, log("dealer"))?;
    let s0_args = common(&["serve", "--party", "0", "--dealer", &dealer_addr], "s0");
    let (mut s0, s0_addr) = listen("server 0", &s0_args, log("s0"))?;
    let s1_args = common(&["serve", "--party", "1", "--peer", &s0_addr, "--dealer", &dealer_addr], "s1");
    let (mut s1, s1_addr) = listen("server 1", &s1_args, log("s1"))?;
    // The client runs here, in the bench process, as the library's batch client.
    let identity = Identity::load(&scratch.certs, Role::Client).map_err(|e| e.to_string())?;
    super::reset_peak_rss();
    let client = std::thread::scope(|scope| {
        let c = scope.spawn(|| client::run(&identity, [&s0_addr, &s1_addr], engine, inputs, &NetOptions::default()));
        let mut interrupted = Ok(());
        while !c.is_finished() {
            if let (Ok(()), Err(e)) = (&interrupted, scratch.check()) {
                // Killing the parties ends the client's session, and so its thread.
                interrupted = Err(e);
                for p in [&mut dealer, &mut s0, &mut s1] {
                    let _ = p.child.kill();
                }
            }
            std::thread::sleep(POLL);
        }
        interrupted?;
        c.join().map_err(|_| "the client panicked".to_string())
    });
    let client_peak = pmsm_engine::process::peak_rss_bytes();
    let run = match client {
        Ok(Ok(run)) => run,
        Ok(Err(e)) => {
            let logs: Vec<String> = [&dealer, &s0, &s1].iter().map(|p| format!("{}: {}", p.name, p.tail())).collect();
            return Err(format!("the client failed: {e}\n{}", logs.join("\n")));
        }
        Err(e) => return Err(e),
    };
    let parties = [
        stats(dealer, &stats_file("dealer"), scratch)?,
        stats(s0, &stats_file("s0"), scratch)?,
        stats(s1, &stats_file("s1"), scratch)?,
    ];
    let mut bytes = run.bytes;
    for (k, link) in Link::ALL.iter().enumerate() {
        bytes.0[k] += parties.iter().map(|p| p["bytes"][link.name()].as_u64().unwrap_or(0)).sum::<u64>();
    }
    let server_seconds = parties[1..].iter().filter_map(|p| p["seconds"].as_f64()).fold(0.0, f64::max);
    let seconds = if predeal { server_seconds } else { run.seconds };
    let peaks: Vec<u64> = parties.iter().filter_map(|p| p["peak_rss_bytes"].as_u64()).chain(client_peak).collect();
    Ok(TcpRun {
        outputs: run.outputs,
        seconds,
        bytes,
        round_p50_ms: parties[1]["round_latency_p50_ms"].as_f64(),
        round_p99_ms: parties[1]["round_latency_p99_ms"].as_f64(),
        peak_rss_bytes: (peaks.len() == 4).then(|| peaks.iter().sum()),
        peak_rss_by_party: <[u64; 4]>::try_from(peaks).ok(),
    })
}

/// The service's three long-lived processes (`pmsm dealer` and `pmsm serve --machine`)
/// serving one machine as `bench`; killed on drop.
pub struct ServiceProcs {
    procs: Vec<Proc>,
    /// Server 0's and server 1's addresses.
    pub servers: [String; 2],
    /// The development certificates' folder.
    pub certs: PathBuf,
}

impl ServiceProcs {
    /// Resident bytes of the dealer, server 0 and server 1 now (Linux).
    pub fn rss(&self) -> Option<[u64; 3]> {
        let one = |p: &Proc| -> Option<u64> {
            let statm = std::fs::read_to_string(format!("/proc/{}/statm", p.child.id())).ok()?;
            Some(statm.split_whitespace().nth(1)?.parse::<u64>().ok()? * 4096)
        };
        let v: Vec<u64> = self.procs.iter().map(one).collect::<Option<_>>()?;
        v.try_into().ok()
    }

    /// The last lines each process logged.
    pub fn tails(&self) -> String {
        self.procs.iter().map(|p| format!("{}: {}", p.name, p.tail())).collect::<Vec<_>>().join("\n")
    }
}

/// Starts the dealer and both servers serving `dfa` as `bench` under `protocol` and
/// `reveal`, with session limits above any workload of the bench.
pub fn start_service(
    scratch: &Scratch,
    dfa: &Dfa,
    protocol: pmsm_engine::protocol::Protocol,
    reveal: pmsm_engine::protocol::Reveal,
    store: bool,
) -> Result<ServiceProcs, String> {
    scratch.check()?;
    let machine = scratch.dir.join("service-machine.json");
    std::fs::write(&machine, pmsm_engine::dfa::json::to_json_string(dfa))
        .map_err(|e| format!("{}: {e}", machine.display()))?;
    let spec = format!("bench={},protocol={},reveal={reveal}", machine.display(), protocol.name());
    let s = |x: &Path| x.display().to_string();
    let args = |role: &[&str]| -> Vec<String> {
        let mut a: Vec<String> = role.iter().map(|r| r.to_string()).collect();
        a.extend(["--certs".into(), s(&scratch.certs), "--machine".into(), spec.clone()]);
        a
    };
    let limits = ["--max-sessions-per-client", "4194304", "--max-sessions", "4194304", "--max-connections", "4096"];
    let log = |name: &str| scratch.dir.join(format!("service-{name}.log"));
    let (dealer, d) = listen("dealer", &args(&["dealer"]), log("dealer"))?;
    // Fresh stores each time (a store of an earlier run holds its closed sessions' pages).
    let store_of = |b: usize| -> Result<Vec<String>, String> {
        if !store {
            return Ok(Vec::new());
        }
        let path = scratch.dir.join(format!("service-s{b}.redb"));
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(format!("{}: {e}", path.display())),
            _ => {}
        }
        Ok(vec!["--store".into(), s(&path)])
    };
    let mut a0 = args(&["serve", "--party", "0", "--dealer", &d]);
    a0.extend(limits.map(String::from));
    a0.extend(store_of(0)?);
    let (s0, a) = listen("server 0", &a0, log("s0"))?;
    let mut a1 = args(&["serve", "--party", "1", "--peer", &a, "--dealer", &d]);
    a1.extend(limits.map(String::from));
    a1.extend(store_of(1)?);
    let (s1, b) = listen("server 1", &a1, log("s1"))?;
    Ok(ServiceProcs { procs: vec![dealer, s0, s1], servers: [a, b], certs: scratch.certs.clone() })
}
