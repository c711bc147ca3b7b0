//! The service over the network: the dealer and both servers as `pmsm` processes,
//! clients through the library and the CLI, checked against the plaintext machine,
//! with parties killed (SIGKILL) and restarted while sessions are open.

use crate::process::Scratch;
use pmsm_engine::dfa::Dfa;
use pmsm_engine::dfa::random::{random_dfa, random_input};
use pmsm_engine::service::net::{Connect, connect};
use pmsm_engine::service::{Client, ServiceError};
use pmsm_engine::transport::certs::write_dev_certs;
use pmsm_engine::transport::tls::{Identity, Role};
use pmsm_kernels::rng::WorkloadRng;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A party process (stderr to a file); killed on drop.
pub(crate) struct Proc {
    child: Child,
    pub(crate) addr: String,
}

impl Proc {
    fn start(args: &[String], log: &str) -> Proc {
        let err = std::fs::OpenOptions::new().create(true).append(true).open(log).unwrap();
        let mut child =
            Command::new(env!("CARGO_BIN_EXE_pmsm")).args(args).stdout(Stdio::piped()).stderr(err).spawn().unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let addr = line.strip_prefix("listening ").unwrap_or_else(|| panic!("no address: {line:?}")).trim().to_string();
        Proc { child, addr }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Dealer and two servers serving `machines` (`--machine` values).
pub(crate) struct Cluster {
    pub(crate) dir: Scratch,
    machines: Vec<String>,
    extra: Vec<String>,
    /// Each server's session store, if they keep one.
    stores: Option<[String; 2]>,
    pub(crate) dealer: Option<Proc>,
    pub(crate) s0: Option<Proc>,
    pub(crate) s1: Option<Proc>,
}

impl Cluster {
    pub(crate) fn start(dir: Scratch, machines: &[String], extra: &[&str]) -> Cluster {
        Cluster::start_with(dir, machines, extra, None)
    }

    /// [`Cluster::start`] with a session store for each server: `s0.redb` and
    /// `s1.redb` in the folder.
    pub(crate) fn start_durable(dir: Scratch, machines: &[String], extra: &[&str]) -> Cluster {
        let stores = [dir.path("s0.redb"), dir.path("s1.redb")];
        Cluster::start_with(dir, machines, extra, Some(stores))
    }

    /// [`Cluster::start`] with the servers' session stores at `stores`.
    pub(crate) fn start_durable_at(dir: Scratch, machines: &[String], extra: &[&str], stores: [String; 2]) -> Cluster {
        Cluster::start_with(dir, machines, extra, Some(stores))
    }

    fn start_with(dir: Scratch, machines: &[String], extra: &[&str], stores: Option<[String; 2]>) -> Cluster {
        write_dev_certs(std::path::Path::new(&dir.path("certs"))).unwrap();
        let mut c = Cluster {
            dir,
            machines: machines.to_vec(),
            extra: extra.iter().map(|s| s.to_string()).collect(),
            stores,
            dealer: None,
            s0: None,
            s1: None,
        };
        c.dealer = Some(c.party(&["dealer"], "127.0.0.1:0", "dealer.log"));
        c.restart_s0("127.0.0.1:0");
        c.restart_s1("127.0.0.1:0");
        c
    }

    fn party(&self, role: &[&str], listen: &str, log: &str) -> Proc {
        let mut a: Vec<String> = role.iter().map(|s| s.to_string()).collect();
        a.extend(["--certs".into(), self.dir.path("certs"), "--listen".into(), listen.into()]);
        for m in &self.machines {
            a.extend(["--machine".into(), m.clone()]);
        }
        if role[0] == "serve" {
            a.extend(self.extra.iter().cloned());
            if let Some(stores) = &self.stores {
                let party: usize = role[2].parse().expect("serve --party N");
                a.extend(["--store".into(), stores[party].clone()]);
            }
        }
        Proc::start(&a, &self.dir.path(log))
    }

    /// Starts server 0 (again) on `listen` (its earlier process, if any, killed first).
    pub(crate) fn restart_s0(&mut self, listen: &str) {
        drop(self.s0.take());
        let d = self.dealer.as_ref().unwrap().addr.clone();
        self.s0 = Some(self.party(&["serve", "--party", "0", "--dealer", &d], listen, "s0.log"));
    }

    pub(crate) fn restart_s1(&mut self, listen: &str) {
        drop(self.s1.take());
        let (s0, d) = (self.s0.as_ref().unwrap().addr.clone(), self.dealer.as_ref().unwrap().addr.clone());
        self.s1 = Some(self.party(&["serve", "--party", "1", "--peer", &s0, "--dealer", &d], listen, "s1.log"));
    }

    pub(crate) fn restart_dealer(&mut self) {
        let addr = self.dealer.as_ref().unwrap().addr.clone();
        drop(self.dealer.take());
        self.dealer = Some(self.party(&["dealer"], &addr, "dealer.log"));
    }

    pub(crate) fn servers(&self) -> [String; 2] {
        [self.s0.as_ref().unwrap().addr.clone(), self.s1.as_ref().unwrap().addr.clone()]
    }

    pub(crate) fn connect(&self, machine: &str) -> Result<Client, ServiceError> {
        let identity = Identity::load(std::path::Path::new(&self.dir.path("certs")), Role::Client).unwrap();
        let how =
            Connect { servers: self.servers(), machine: machine.into(), pin: None, timeout: Duration::from_secs(10) };
        connect(&identity, &how)
    }

    /// A client once the servers are linked (a fresh connection answers a session).
    pub(crate) fn connect_when_linked(&self, machine: &str) -> Client {
        let start = Instant::now();
        loop {
            if let Ok(c) = self.connect(machine)
                && let Ok(s) = c.open()
            {
                c.close(s).unwrap();
                return c;
            }
            assert!(start.elapsed() < Duration::from_secs(30), "the servers never linked: {}", self.logs());
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub(crate) fn logs(&self) -> String {
        ["dealer.log", "s0.log", "s1.log"]
            .iter()
            .map(|l| format!("== {l}\n{}", std::fs::read_to_string(self.dir.path(l)).unwrap_or_default()))
            .collect()
    }
}

pub(crate) fn machine_file(dir: &Scratch, seed: u64) -> (Dfa, String) {
    let mut rng = WorkloadRng::seed_from_u64(seed);
    let dfa = random_dfa(9, 5, &mut rng);
    let path = dir.path(&format!("m{seed}.json"));
    std::fs::write(&path, pmsm_engine::dfa::json::to_json_string(&dfa)).unwrap();
    (dfa, path)
}

/// Sessions on `threads` threads, each pushing random pieces and releasing after each
/// one; every release must equal the plaintext machine on the symbols so far.
fn interleave(client: &Client, dfa: &Dfa, threads: usize, seed: u64) {
    std::thread::scope(|scope| {
        for t in 0..threads {
            scope.spawn(move || {
                let mut rng = WorkloadRng::seed_from_u64(seed + t as u64);
                let mut sessions: Vec<(pmsm_engine::service::Session, Vec<u32>)> = Vec::new();
                for step in 0..40 {
                    if sessions.len() < 3 || step % 7 == 0 {
                        sessions.push((client.open().unwrap(), Vec::new()));
                    }
                    let i = rng.below(sessions.len() as u64) as usize;
                    let (s, so_far) = &mut sessions[i];
                    let piece = random_input(dfa.symbols(), 1 + rng.below(12) as usize, &mut rng);
                    client.push(s, &piece).unwrap();
                    so_far.extend(&piece);
                    let out = client.release(s).unwrap();
                    assert_eq!(out.final_state, Some(dfa.run(so_far)), "thread {t} step {step}");
                    if step % 11 == 10 {
                        let (s, _) = sessions.swap_remove(i);
                        client.close(s).unwrap();
                    }
                }
            });
        }
    });
}

#[test]
fn sessions_over_the_network_equal_the_plaintext_machine_through_restarts() {
    let dir = Scratch::new("restarts");
    let (dfa, path) = machine_file(&dir, 11);
    let mut cluster = Cluster::start(dir, &[format!("m={path},reveal=state")], &[]);
    let client = cluster.connect_when_linked("m");
    assert!(client.interface().to_json().contains("\"symbol_bits\""));
    interleave(&client, &dfa, 4, 100);

    // Server 1 killed with a session open: the session fails clearly, never wrongly.
    let mut open = client.open().unwrap();
    client.push(&mut open, &[1, 2]).unwrap();
    let s1_addr = cluster.s1.as_ref().unwrap().addr.clone();
    drop(cluster.s1.take());
    let e = client.release(&mut open).unwrap_err();
    assert!(matches!(e, ServiceError::Stopped { .. } | ServiceError::Unavailable(_)), "{e}");
    cluster.restart_s1(&s1_addr);
    let client = cluster.connect_when_linked("m");
    interleave(&client, &dfa, 2, 200);

    // The dealer killed and restarted: sessions go on or fail clearly, then work again.
    cluster.restart_dealer();
    let start = Instant::now();
    let client = loop {
        let c = cluster.connect_when_linked("m");
        // Enough work to drain the old pools, so the servers link with the new dealer.
        let ok = (0..300).all(|_| {
            let Ok(mut s) = c.open() else { return false };
            let piece = [0u32, 1, 2, 3];
            let r = c.push(&mut s, &piece).and_then(|()| c.release(&mut s));
            match r {
                Ok(out) => {
                    assert_eq!(out.final_state, Some(dfa.run(&piece)));
                    c.close(s).is_ok()
                }
                Err(e) => {
                    assert!(matches!(e, ServiceError::Stopped { .. } | ServiceError::Unavailable(_)), "{e}");
                    false
                }
            }
        });
        if ok {
            break c;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "never recovered: {}", cluster.logs());
    };
    interleave(&client, &dfa, 2, 300);
    let logs = cluster.logs();
    assert!(!logs.contains("panicked"), "{logs}");
    assert!(logs.contains("generation 2"), "server 1's restart made a new generation: {logs}");
}

#[test]
fn the_cli_client_knows_only_the_name_and_matches_eval() {
    let dir = Scratch::new("cli");
    let rules = dir.path("rules.txt");
    std::fs::write(&rules, "abc[0-9]+\nsecret\n").unwrap();
    let inputs = dir.path("in.txt");
    std::fs::write(&inputs, "x abc12 y\nnothing\nmy secret\n\nabc\n").unwrap();
    let toml = dir.path("leaks.toml");
    std::fs::write(&toml, "[[rules]]\nid = \"digits\"\nregex = '''abc[0-9]+'''\n\n[[rules]]\nid = \"word\"\nregex = '''secret'''\n\n[[rules]]\nid = \"end\"\nregex = '''t$'''\n").unwrap();
    let machines = [
        format!("dlp={rules}"),
        format!("leaks={toml}"),
        format!("each={rules},reveal=rules,grouping=alone,protocol=lookup-ring"),
        format!("count={rules},reveal=count"),
        format!("any={rules},reveal=any,grouping=alone"),
    ];
    let cluster = Cluster::start(dir, &machines, &[]);
    let _ = cluster.connect_when_linked("dlp");
    let [s0, s1] = cluster.servers();
    let certs = cluster.dir.path("certs");
    // Run from an empty folder with no machine file: the client has only the name.
    let empty = cluster.dir.path("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let client = |args: &[&str], stdin: &str| {
        let mut child = Command::new(env!("CARGO_BIN_EXE_pmsm"))
            .current_dir(&empty)
            .args(["client", "--certs", &certs, "--server0", &s0, "--server1", &s1])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    };
    let out = client(&["--machine", "dlp", "--inputs", &inputs, "--json"], "");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let eval = Command::new(env!("CARGO_BIN_EXE_pmsm"))
        .args(["eval", "--regex-file", &rules, "--inputs", &inputs, "--json"])
        .output()
        .unwrap();
    let accepts = |o: &[u8]| -> Vec<Option<bool>> {
        String::from_utf8_lossy(o)
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v["type"] == "output")
            .map(|v| v["accept"].as_bool())
            .collect()
    };
    assert_eq!(accepts(&out.stdout), accepts(&eval.stdout));
    assert_eq!(accepts(&out.stdout), [Some(true), Some(false), Some(true), Some(false), Some(false)]);

    // Rule sets: each policy's answer as the plaintext set's (`pmsm eval`), rule ids kept.
    let fields = |o: &[u8], key: &str| -> Vec<serde_json::Value> {
        String::from_utf8_lossy(o)
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v["type"] == "output")
            .map(|v| v[key].clone())
            .collect()
    };
    for (machine, source, policy, key) in [
        ("leaks", ["--gitleaks", &toml], "rules", "rules"),
        ("each", ["--regex-file", &rules], "rules", "rules"),
        ("count", ["--regex-file", &rules], "count", "count"),
        ("any", ["--regex-file", &rules], "any", "accept"),
    ] {
        let out = client(&["--machine", machine, "--inputs", &inputs, "--json"], "");
        assert!(out.status.success(), "{machine}: {}", String::from_utf8_lossy(&out.stderr));
        let eval = Command::new(env!("CARGO_BIN_EXE_pmsm"))
            .args(["eval", source[0], source[1], "--reveal", policy, "--inputs", &inputs, "--json"])
            .output()
            .unwrap();
        assert!(eval.status.success(), "{}", String::from_utf8_lossy(&eval.stderr));
        let got = fields(&out.stdout, key);
        assert_eq!(got, fields(&eval.stdout, key), "{machine}");
        assert_eq!(got.len(), 5, "{machine}");
    }
    let out = client(&["--machine", "leaks", "--inputs", &inputs, "--json"], "");
    let rules_hit: Vec<serde_json::Value> = fields(&out.stdout, "rules");
    assert_eq!(rules_hit[0], serde_json::json!(["digits"]));
    assert_eq!(rules_hit[2], serde_json::json!(["word", "end"]));
    let out = client(&["--machine", "each", "--stream"], "abc\n1 secret\n");
    let lines: Vec<serde_json::Value> =
        String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines[1]["rules"], serde_json::json!(["1", "2"]), "{lines:?}");

    // --stream: one session, one release per line, the state carried across lines.
    let out = client(&["--machine", "dlp", "--stream"], "ab\nc1\nzz\n");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<serde_json::Value> =
        String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let got: Vec<(bool, u64)> =
        lines.iter().map(|v| (v["accept"].as_bool().unwrap(), v["symbols"].as_u64().unwrap())).collect();
    assert_eq!(got, [(false, 2), (true, 4), (true, 6)], "{lines:?}");

    // Refusals: an unknown machine, a wrong pin, an unknown character.
    let out = client(&["--machine", "nope", "--input", "x"], "");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("no machine named \"nope\"") && err.contains("dlp"), "{err}");
    let out = client(&["--machine", "dlp", "--pin", "00000000000000000", "--input", "x"], "");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not the pinned"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let logs = cluster.logs();
    assert!(!logs.contains("panicked"), "{logs}");
}

#[test]
fn slow_handshakes_and_session_floods_do_not_lock_out_a_real_client() {
    let dir = Scratch::new("flood");
    let (dfa, path) = machine_file(&dir, 12);
    let cluster = Cluster::start(
        dir,
        &[format!("m={path},reveal=state")],
        &["--handshake-timeout", "2", "--max-connections", "64", "--max-sessions-per-client", "50"],
    );
    let client = cluster.connect_when_linked("m");
    // 64 connections that never say anything fill every slot, then time out.
    let [s0, _] = cluster.servers();
    let idle: Vec<TcpStream> = (0..64).filter_map(|_| TcpStream::connect(&s0).ok()).collect();
    std::thread::sleep(Duration::from_secs(3));
    let late = cluster.connect_when_linked("m");
    drop(idle);
    // A session flood from one certificate stops at its limit with a clear error.
    let mut held = Vec::new();
    let e = loop {
        match late.open() {
            Ok(s) => held.push(s),
            Err(e) => break e,
        }
        assert!(held.len() <= 60, "no limit");
    };
    assert!(matches!(e, ServiceError::Limit(_)), "{e}");
    for s in held {
        late.close(s).unwrap();
    }
    // ... and the client goes on.
    let mut s = client.open().unwrap();
    client.push(&mut s, &[1, 0, 2]).unwrap();
    assert_eq!(client.release(&mut s).unwrap().final_state, Some(dfa.run(&[1, 0, 2])));
    client.close(s).unwrap();
    let logs = cluster.logs();
    assert!(logs.contains("no TLS handshake and hello within 2 s"), "{logs}");
}

/// A peer that sends the start of a TLS record and then a byte a second (each within
/// the read timeout) is cut off at the handshake deadline by a listener of the
/// blocking kind (the dealer's), and the refusal says why.
#[test]
fn a_dribbling_peer_is_cut_off_at_the_handshake_deadline() {
    let dir = Scratch::new("dribble");
    let (_, path) = machine_file(&dir, 13);
    write_dev_certs(std::path::Path::new(&dir.path("certs"))).unwrap();
    let args: Vec<String> = ["dealer", "--certs", &dir.path("certs"), "--listen", "127.0.0.1:0"]
        .iter()
        .map(|s| s.to_string())
        .chain(["--machine".into(), format!("m={path}"), "--handshake-timeout".into(), "2".into()])
        .collect();
    let dealer = Proc::start(&args, &dir.path("dealer.log"));
    let mut s = TcpStream::connect(&dealer.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    // A handshake record header announcing 512 bytes: the TLS layer waits for them.
    s.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00]).unwrap();
    let start = Instant::now();
    let closed = loop {
        let mut b = [0u8; 64];
        match std::io::Read::read(&mut s, &mut b) {
            Ok(0) => break Some(start.elapsed()),
            Err(e) if e.kind() != std::io::ErrorKind::WouldBlock && e.kind() != std::io::ErrorKind::TimedOut => {
                break Some(start.elapsed());
            }
            _ => {}
        }
        if start.elapsed() > Duration::from_secs(8) {
            break None;
        }
        std::thread::sleep(Duration::from_millis(950));
        if s.write_all(&[0]).is_err() {
            break Some(start.elapsed());
        }
    };
    let closed = closed.expect("the dribbler held its connection for 8 s");
    assert!(closed >= Duration::from_millis(1500) && closed < Duration::from_millis(4500), "{closed:?}");
    std::thread::sleep(Duration::from_millis(200));
    let log = std::fs::read_to_string(dir.path("dealer.log")).unwrap();
    assert!(log.contains("no TLS handshake and hello within 2 s"), "{log}");
}

/// `GET path` on a plain-HTTP address: (status line, body).
fn http_get(addr: &str, path: &str) -> (String, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut text = String::new();
    std::io::Read::read_to_string(&mut s, &mut text).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    (head.lines().next().unwrap().to_string(), body.to_string())
}

/// The metrics address a server logged.
fn metrics_addr(log: &str) -> String {
    let start = Instant::now();
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if let Some(rest) = text.split("metrics on http://").nth(1) {
            return rest.split('/').next().unwrap().to_string();
        }
        assert!(start.elapsed() < Duration::from_secs(10), "no metrics address in {log}: {text}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn gauge(body: &str, name: &str) -> u64 {
    let line =
        body.lines().find(|l| l.starts_with(&format!("pmsm_{name}{{"))).unwrap_or_else(|| panic!("{name}: {body}"));
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

#[test]
fn a_client_that_goes_away_has_its_sessions_closed_on_both_servers() {
    let dir = Scratch::new("cancel");
    let (_, path) = machine_file(&dir, 13);
    let mut cluster = Cluster::start(dir, &[format!("m={path},reveal=state")], &["--metrics", "127.0.0.1:0"]);
    let client = cluster.connect_when_linked("m");
    let metrics = [metrics_addr(&cluster.dir.path("s0.log")), metrics_addr(&cluster.dir.path("s1.log"))];
    let (status, body) = http_get(&metrics[0], "/health");
    assert!(status.contains("200") && body.starts_with("ok"), "{status} {body}");
    let sessions = |b: usize| gauge(&http_get(&metrics[b], "/metrics").1, "sessions");
    let mut held: Vec<_> = (0..5).map(|_| client.open().unwrap()).collect();
    client.push(&mut held[0], &[1, 2, 3]).unwrap();
    // Server 1 forgets the probe session of `connect_when_linked` with the leader's
    // next plan: within milliseconds, longer on a loaded machine.
    let start = Instant::now();
    while [sessions(0), sessions(1)] != [5, 5] {
        assert!(start.elapsed() < Duration::from_secs(5), "sessions open: {} {}", sessions(0), sessions(1));
        std::thread::sleep(Duration::from_millis(20));
    }
    let body = http_get(&metrics[1], "/metrics").1;
    assert!(gauge(&body, "pushes_total") >= 1 && gauge(&body, "linked") == 1, "{body}");
    assert!(body.contains("pmsm_push_seconds_count{party=\"1\"} 1"), "{body}");
    // The client goes away without closing: both servers close its sessions at once.
    drop(held);
    drop(client);
    let start = Instant::now();
    while [sessions(0), sessions(1)] != [0, 0] {
        assert!(start.elapsed() < Duration::from_secs(5), "sessions left open: {} {}", sessions(0), sessions(1));
        std::thread::sleep(Duration::from_millis(20));
    }
    // A `pmsm client --stream` killed with SIGKILL mid-session: the same.
    let [s0, s1] = cluster.servers();
    let mut streaming = Command::new(env!("CARGO_BIN_EXE_pmsm"))
        .args(["client", "--certs", &cluster.dir.path("certs"), "--server0", &s0, "--server1", &s1])
        .args(["--machine", "m", "--stream", "--release-every", "end"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while [sessions(0), sessions(1)] != [1, 1] {
        assert!(start.elapsed() < Duration::from_secs(10), "the streaming client never opened its session");
        std::thread::sleep(Duration::from_millis(20));
    }
    streaming.kill().unwrap();
    let _ = streaming.wait();
    let start = Instant::now();
    while [sessions(0), sessions(1)] != [0, 0] {
        assert!(start.elapsed() < Duration::from_secs(5), "a killed client's session stayed open");
        std::thread::sleep(Duration::from_millis(20));
    }
    // Health follows the links: server 1 gone, server 0 says so.
    drop(cluster.s1.take());
    let start = Instant::now();
    loop {
        let (status, body) = http_get(&metrics[0], "/health");
        if status.contains("503") {
            assert!(body.contains("unavailable"), "{body}");
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(5), "server 0 still healthy: {status} {body}");
        std::thread::sleep(Duration::from_millis(50));
    }
    let (status, _) = http_get(&metrics[0], "/nope");
    assert!(status.contains("404"), "{status}");
}

#[test]
fn many_client_threads_of_one_certificate_with_every_session_in_flight() {
    // The DLP rules: symbol classes, accept bits (class, step and accept waves).
    let dir = Scratch::new("many");
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../datasets/dlp");
    let rules = root.join("rules.txt").display().to_string();
    let texts: Vec<String> =
        std::fs::read_to_string(root.join("positives.txt")).unwrap().lines().map(String::from).collect();
    let patterns = pmsm_engine::dfa::rules::RuleFile::read(std::path::Path::new(&rules)).unwrap();
    let patterns: Vec<String> = patterns.patterns().map(String::from).collect();
    let dfa = pmsm_engine::dfa::regex::compile(&patterns, &Default::default()).unwrap();
    let cluster = Cluster::start(dir, &[format!("dlp={rules}")], &[]);
    let _ = cluster.connect_when_linked("dlp");
    std::thread::scope(|scope| {
        for t in 0..64usize {
            let (cluster, dfa, texts) = (&cluster, &dfa, &texts);
            scope.spawn(move || {
                let client = cluster.connect("dlp").unwrap();
                let mut open = Vec::new();
                for k in 0..40 {
                    let text = &texts[(t * 40 + k) % texts.len()];
                    let mut s = client.open().unwrap();
                    client.push_text(&mut s, text).unwrap_or_else(|e| panic!("thread {t} push {k}: {e}"));
                    open.push((s, text));
                }
                for (mut s, text) in open {
                    let id = s.id();
                    let out = client.release(&mut s).unwrap_or_else(|e| panic!("thread {t} session {id}: {e}"));
                    let want = dfa.is_accepting(dfa.run(&dfa.encode(text.as_bytes(), 0).unwrap()));
                    assert_eq!(out.accept, Some(want));
                    client.close(s).unwrap_or_else(|e| panic!("thread {t} close {id}: {e}"));
                }
            });
        }
    });
}
