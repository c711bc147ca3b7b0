//! Parties as processes: the dealer and both servers as `pmsm` processes on loopback
//! over mutual TLS, in batch mode, and the library's batch client (which holds the
//! machine; `pmsm client` only speaks to the service), checked against the plaintext
//! evaluator, and every fault of the network layer: each side reports a clear error,
//! exits non-zero and never panics.

use pmsm_engine::dfa::Dfa;
use pmsm_engine::dfa::random::{random_dfa, random_input};
use pmsm_engine::process::client::{self, ClientRun};
use pmsm_engine::process::hello::Hello;
use pmsm_engine::process::spec::Spec;
use pmsm_engine::process::{Conn, Fingerprint, NetError, NetOptions, SessionId, await_ack, dial, hello_for};
use pmsm_engine::protocol::wire::encode_input;
use pmsm_engine::protocol::{ClassMode, Protocol, Reveal};
use pmsm_engine::transport::Link;
use pmsm_engine::transport::certs::write_dev_certs;
use pmsm_engine::transport::frame;
use pmsm_engine::transport::tls::{Identity, Role};
use pmsm_engine::{Engine, Settings};
use pmsm_kernels::rng::WorkloadRng;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// A scratch folder, removed on drop (the network service's tests use it too).
pub struct Scratch(PathBuf);

impl Scratch {
    pub fn new(name: &str) -> Scratch {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("pmsm-process-{name}-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
    pub fn path(&self, name: &str) -> String {
        self.0.join(name).display().to_string()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A listening party process; killed on drop if still running.
struct Party {
    child: Child,
    addr: String,
}

impl Party {
    fn start(args: &[&str]) -> Party {
        let mut child = Command::new(env!("CARGO_BIN_EXE_pmsm"))
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let addr = line.strip_prefix("listening ").unwrap_or_else(|| panic!("no address: {line:?}")).trim().to_string();
        Party { child, addr }
    }

    /// Waits for the process to exit (within `limit`) and returns its status and stderr.
    fn finish(mut self, limit: Duration) -> (bool, String) {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                let mut err = String::new();
                if let Some(e) = self.child.stderr.as_mut() {
                    std::io::Read::read_to_string(e, &mut err).unwrap();
                }
                return (status.success(), err);
            }
            assert!(start.elapsed() < limit, "party {} did not exit", self.addr);
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Party {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Dealer, server 0 and server 1 for `dfa_file`, each serving `sessions` sessions (0:
/// until a signal).
struct Cluster {
    dealer: Party,
    s0: Party,
    s1: Party,
}

impl Cluster {
    fn start(certs: &str, machine: &[&str], sessions: usize, extra: &[&str]) -> Cluster {
        let n = sessions.to_string();
        let common = |role: &[&str]| -> Vec<String> {
            let mut a: Vec<String> = role.iter().map(|s| s.to_string()).collect();
            a.extend(["--certs", certs].map(String::from));
            if sessions > 0 {
                a.extend(["--sessions", &n].map(String::from));
            }
            a.extend(machine.iter().chain(extra).map(|s| s.to_string()));
            a
        };
        fn args(v: &[String]) -> Vec<&str> {
            v.iter().map(String::as_str).collect()
        }
        let dealer = Party::start(&args(&common(&["dealer"])));
        let s0 = Party::start(&args(&common(&["serve", "--party", "0", "--dealer", &dealer.addr])));
        let s1 = Party::start(&args(&common(&["serve", "--party", "1", "--peer", &s0.addr, "--dealer", &dealer.addr])));
        Cluster { dealer, s0, s1 }
    }

    /// Server 0's and server 1's addresses.
    fn servers(&self) -> [String; 2] {
        [self.s0.addr.clone(), self.s1.addr.clone()]
    }

    /// Waits for all three to exit; returns (all succeeded, their stderr joined).
    fn finish(self) -> (bool, String) {
        let limit = Duration::from_secs(60);
        let results = [self.dealer.finish(limit), self.s0.finish(limit), self.s1.finish(limit)];
        (results.iter().all(|r| r.0), results.map(|r| r.1).join("\n"))
    }
}

/// One batch session of `engine` on `inputs` with `s0` and `s1`, as the client
/// identity in `certs`.
fn batch(certs: &str, [s0, s1]: &[String; 2], engine: &Engine, inputs: &[Vec<u32>]) -> Result<ClientRun, NetError> {
    let identity = Identity::load(Path::new(certs), Role::Client).unwrap();
    client::run(&identity, [s0, s1], engine, inputs, &NetOptions::default())
}

/// `ab.json` under the default settings, and `text` in its symbols.
fn ab(text: &str) -> (Engine, Vec<Vec<u32>>) {
    let dfa = crate::ab();
    let input = dfa.encode(text.as_bytes(), 0).unwrap();
    (Engine::builder(dfa).build().unwrap(), vec![input])
}

/// The final states of a batch run.
fn states(run: &ClientRun) -> Vec<Option<u32>> {
    run.outputs.iter().map(|o| o.final_state).collect()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn random_machine(dir: &Scratch, states: usize, symbols: usize, seed: u64) -> (Dfa, String) {
    let dfa = random_dfa(states, symbols, &mut WorkloadRng::seed_from_u64(seed));
    let file = dir.path("machine.json");
    std::fs::write(&file, pmsm_engine::dfa::json::to_json_string(&dfa)).unwrap();
    (dfa, file)
}

/// Reads `p`'s stderr until its session has started; returns a thread collecting all
/// of its stderr (what was read, then the rest until it exits).
fn wait_for_start(p: &mut Party) -> std::thread::JoinHandle<String> {
    let mut err = BufReader::new(p.child.stderr.take().unwrap());
    let mut seen = String::new();
    while !seen.contains("started") {
        let mut line = String::new();
        assert!(err.read_line(&mut line).unwrap() > 0, "the party ended before its session started: {seen}");
        seen.push_str(&line);
    }
    std::thread::spawn(move || {
        let mut rest = String::new();
        std::io::Read::read_to_string(&mut err, &mut rest).unwrap();
        seen + &rest
    })
}

/// A scratch folder with certificates, a random 64 × 256 machine and `batch` random
/// inputs of `length` symbols (a symbol-inputs file): enough work for a session to be
/// interrupted while it runs.
struct Workload {
    dir: Scratch,
    certs: String,
    file: String,
    engine: Engine,
    inputs: Vec<Vec<u32>>,
}

impl Workload {
    fn new(name: &str, seed: u64, batch: usize, length: usize) -> Workload {
        let dir = Scratch::new(name);
        let certs = dir.path("certs");
        write_dev_certs(Path::new(&certs)).unwrap();
        let (dfa, file) = random_machine(&dir, 64, 256, seed);
        let mut rng = WorkloadRng::seed_from_u64(seed + 1);
        let inputs: Vec<Vec<u32>> = (0..batch).map(|_| random_input(dfa.symbols(), length, &mut rng)).collect();
        Workload { dir, certs, file, engine: Engine::builder(dfa).build().unwrap(), inputs }
    }
}

fn no_panics(text: &str) {
    assert!(!text.contains("panicked"), "a party panicked:\n{text}");
}

#[test]
fn three_processes_and_the_batch_client_run_every_protocol_like_the_plaintext_evaluator() {
    let dir = Scratch::new("all");
    let certs = dir.path("certs");
    write_dev_certs(Path::new(&certs)).unwrap();
    let (dfa, file) = random_machine(&dir, 9, 5, 7);
    let mut rng = WorkloadRng::seed_from_u64(11);
    let inputs: Vec<Vec<u32>> = (0..37).map(|i| random_input(5, (i * 7) % 23, &mut rng)).collect();
    let machine = ["--dfa", file.as_str()];
    let runs: [(&str, &str); 5] = [
        ("lookup-xor", "state"),
        ("lookup-xor", "accept"),
        ("lookup-ring", "state"),
        ("seed-dpf", "accept"),
        ("naive", "state"),
    ];
    let cluster = Cluster::start(&certs, &machine, runs.len(), &[]);
    for (protocol, reveal) in runs {
        let engine = Engine::builder(dfa.clone())
            .protocol(protocol.parse().unwrap())
            .reveal(reveal.parse().unwrap())
            .chunk(8)
            .build()
            .unwrap();
        let run =
            batch(&certs, &cluster.servers(), &engine, &inputs).unwrap_or_else(|e| panic!("{protocol} {reveal}: {e}"));
        assert_eq!(run.outputs.len(), inputs.len());
        assert_eq!(run.transitions, inputs.iter().map(Vec::len).sum::<usize>());
        for (i, (input, got)) in inputs.iter().zip(&run.outputs).enumerate() {
            let want = dfa.run(input);
            assert_eq!(got.symbols, input.len());
            match reveal {
                "state" => assert_eq!(got.final_state, Some(want), "{protocol} instance {i}"),
                _ => assert_eq!(got.accept, Some(dfa.is_accepting(want)), "{protocol} instance {i}"),
            }
        }
        // The client's frames are byte for byte the in-process ones.
        let report = engine.run(&inputs).unwrap();
        for link in [Link::ClientToS0, Link::ClientToS1] {
            assert_eq!(run.bytes.get(link), report.bytes.get(link), "{protocol} {link}");
        }
    }
    let (ok, logs) = cluster.finish();
    assert!(ok, "every session should succeed:\n{logs}");
    assert_eq!(logs.matches("transitions in").count(), 3 * runs.len(), "{logs}");
}

fn settings() -> Settings {
    Settings {
        protocol: Protocol::LookupXor,
        reveal: Reveal::State,
        classes: ClassMode::Auto,
        chunk: Some(4),
        powers: Default::default(),
        full_length_keys: false,
    }
}

fn refused(identity: &Identity, addr: &str, peer: Role, hello: &Hello, opts: &NetOptions) -> String {
    let mut conn = dial(identity, addr, peer, hello, opts).unwrap();
    await_ack(&mut conn, peer, addr, hello.link).unwrap_err().to_string()
}

#[test]
fn bad_handshakes_are_refused_with_the_reason() {
    let dir = Scratch::new("handshake");
    let certs = dir.path("certs");
    write_dev_certs(Path::new(&certs)).unwrap();
    let machine = ["--dfa", "../datasets/ab.json"];
    let cluster = Cluster::start(&certs, &machine, 1, &["--session-timeout", "1"]);
    let opts = NetOptions::default();
    let client_id = Identity::load(Path::new(&certs), Role::Client).unwrap();
    let fp = Fingerprint::of(&crate::ab());
    let spec = Spec { settings: settings(), lengths: vec![3] }.encode();
    let s0 = cluster.s0.addr.as_str();

    let mut h = hello_for(Link::ClientToS0, SessionId::random(), fp, spec.clone());
    h.version = 2;
    let e = refused(&client_id, s0, Role::Server0, &h, &opts);
    assert!(e.contains("version 2 is not supported"), "{e}");

    let other = Fingerprint([1; 32]);
    let e = refused(
        &client_id,
        s0,
        Role::Server0,
        &hello_for(Link::ClientToS0, SessionId::random(), other, spec.clone()),
        &opts,
    );
    assert!(e.contains("DFA fingerprint mismatch"), "{e}");

    // A client certificate cannot stand in for server 1.
    let e =
        refused(&client_id, s0, Role::Server0, &hello_for(Link::S1ToS0, SessionId::random(), fp, spec.clone()), &opts);
    assert!(e.contains("needs a server-1 certificate"), "{e}");

    // Server 1's certificate, but a session no client opened.
    let s1_id = Identity::load(Path::new(&certs), Role::Server1).unwrap();
    let e = refused(&s1_id, s0, Role::Server0, &hello_for(Link::S1ToS0, SessionId::random(), fp, spec.clone()), &opts);
    assert!(e.contains("unknown session"), "{e}");

    // The dialer checks the acceptor's role too: server 1's address is not server 0.
    let e = dial(&client_id, &cluster.s1.addr, Role::Server0, &h, &opts).map(|_| ()).unwrap_err().to_string();
    assert!(e.contains("TLS handshake") && e.contains("server-0"), "{e}");

    // A client whose machine differs fails, naming the mismatch.
    let servers = &cluster.servers();
    let other = pmsm_engine::dfa::regex::compile(&["ab+".to_string()], &Default::default()).unwrap();
    let input = other.encode(b"ab", 0).unwrap();
    let e = batch(&certs, servers, &Engine::builder(other).build().unwrap(), &[input]).unwrap_err().to_string();
    assert!(e.contains("DFA fingerprint mismatch"), "{e}");

    // A certificate set from another CA fails the TLS handshake, on the client's side.
    let rogue = dir.path("rogue");
    write_dev_certs(Path::new(&rogue)).unwrap();
    let (engine, inputs) = ab("ab");
    let e = batch(&rogue, servers, &engine, &inputs).unwrap_err().to_string();
    assert!(e.contains("TLS handshake with server-0 failed") && e.contains("invalid peer certificate"), "{e}");

    // The servers refused all of that and still serve a good session.
    let (engine, inputs) = ab("aaa");
    let run = batch(&certs, servers, &engine, &inputs).unwrap();
    assert_eq!(states(&run), [Some(3)]);
    let (ok, logs) = cluster.finish();
    assert!(ok, "{logs}");
    assert!(logs.contains("refused a connection"), "{logs}");
    no_panics(&logs);
}

/// Opens a session by hand with both servers; returns the four connections (inputs
/// to server 0 and 1, outputs from server 0 and 1), answered.
fn open_session(certs: &str, cluster: &Cluster, lengths: Vec<usize>) -> Vec<Conn> {
    let id = Identity::load(Path::new(certs), Role::Client).unwrap();
    let opts = NetOptions::default();
    let session = SessionId::random();
    let spec = Spec { settings: settings(), lengths }.encode();
    let fp = Fingerprint::of(&crate::ab());
    let plan = [
        (Link::ClientToS0, Role::Server0, &cluster.s0.addr, spec.clone()),
        (Link::ClientToS1, Role::Server1, &cluster.s1.addr, spec),
        (Link::S0ToClient, Role::Server0, &cluster.s0.addr, vec![]),
        (Link::S1ToClient, Role::Server1, &cluster.s1.addr, vec![]),
    ];
    let mut conns: Vec<(Link, Role, &String, Conn)> = plan
        .into_iter()
        .map(|(link, role, addr, spec)| {
            (link, role, addr, dial(&id, addr, role, &hello_for(link, session, fp, spec), &opts).unwrap())
        })
        .collect();
    for (link, role, addr, conn) in &mut conns {
        await_ack(conn, *role, addr, *link).unwrap();
    }
    conns.into_iter().map(|c| c.3).collect()
}

fn write_raw(conn: &mut Conn, bytes: &[u8]) {
    let Conn::Dialed(s) = conn else { panic!("dialed") };
    s.write_all(bytes).unwrap();
    s.flush().unwrap();
}

fn read_abort(conn: &mut Conn) -> String {
    let Conn::Dialed(s) = conn else { panic!("dialed") };
    match frame::read_frame(s.as_mut(), 1 << 20) {
        Ok(Some(frame::Frame::Abort(r))) => r,
        other => panic!("expected an abort frame, got {other:?}"),
    }
}

#[test]
fn corrupted_and_truncated_frames_stop_every_party_with_the_cause() {
    let dir = Scratch::new("frames");
    let certs = dir.path("certs");
    write_dev_certs(Path::new(&certs)).unwrap();
    let machine = ["--dfa", "../datasets/ab.json"];
    for (name, corrupt) in [("corrupted", true), ("truncated", false)] {
        let cluster = Cluster::start(&certs, &machine, 1, &[]);
        let mut conns = open_session(&certs, &cluster, vec![3]);
        // Server 1 gets a good input frame, so it reaches the rounds with server 0.
        let mut good = Vec::new();
        frame::write_data(&mut good, &encode_input(0, &[3], &[0, 1, 0], 1)).unwrap();
        write_raw(&mut conns[1], &good);
        if corrupt {
            // A well-formed envelope around a frame with the wrong tag.
            let mut bytes = Vec::new();
            frame::write_data(&mut bytes, &[9, 0, 0, 0, 0, 1, 0, 0, 0, 3, 0, 0, 0, 0]).unwrap();
            write_raw(&mut conns[0], &bytes);
        } else {
            // Half an envelope, then a clean TLS close.
            write_raw(&mut conns[0], &[20, 0, 0, 0, 0, 1, 2]);
            let Conn::Dialed(s) = &mut conns[0] else { unreachable!() };
            s.conn.send_close_notify();
            s.flush().unwrap();
        }
        let reason = read_abort(&mut conns[2]);
        let want =
            if corrupt { "bad frame on client_to_s0: tag 9 where 1 was expected" } else { "ended inside a frame" };
        assert!(reason.contains(want), "{name}: {reason}");
        // Server 1 learns why from server 0 and tells its client the same.
        let reason1 = read_abort(&mut conns[3]);
        assert!(
            reason1.contains("s0_to_s1: the peer aborted the session") && reason1.contains(want),
            "{name}: {reason1}"
        );
        drop(conns);
        let (ok, logs) = cluster.finish();
        assert!(!ok, "{name}: the parties must exit non-zero:\n{logs}");
        assert!(logs.contains(want), "{name}: {logs}");
        no_panics(&logs);
    }
}

#[test]
fn a_server_that_vanishes_mid_round_fails_the_session_everywhere() {
    let Workload { dir: _dir, certs, file, engine, inputs } = Workload::new("vanish", 3, 20_000, 60);
    let machine = ["--dfa", file.as_str()];
    let Cluster { dealer, mut s0, mut s1 } = Cluster::start(&certs, &machine, 1, &["--session-timeout", "5"]);
    let started = Instant::now();
    let servers = [s0.addr.clone(), s1.addr.clone()];
    let (out, s0_log) = std::thread::scope(|scope| {
        let c = scope.spawn(|| batch(&certs, &servers, &engine, &inputs));
        // Kill server 1 once the session runs (server 0 says so on stderr).
        let s0_log = wait_for_start(&mut s0);
        s1.child.kill().unwrap();
        (c.join().unwrap(), s0_log)
    });
    assert!(started.elapsed() < Duration::from_secs(60));
    // No output is presented: the run fails as a whole, with one clear line.
    let e = out.map(|r| r.outputs.len()).unwrap_err().to_string();
    eprintln!("client after server 1 vanished: {e}");
    assert!(!e.is_empty() && e.lines().count() == 1, "one clear line: {e}");
    let (ok0, log0) = s0.finish(Duration::from_secs(60));
    let log0 = s0_log.join().unwrap() + &log0;
    eprintln!("server 0 after server 1 vanished: {log0}");
    assert!(!ok0, "server 0 must fail: {log0}");
    assert!(log0.contains("session") && log0.contains("failed"), "{log0}");
    let (okd, logd) = dealer.finish(Duration::from_secs(60));
    assert!(!okd, "dealer must fail: {logd}");
    no_panics(&(e + &log0 + &logd));
}

#[test]
fn sigterm_stops_new_sessions_and_lets_the_running_one_finish() {
    let Workload { dir: _dir, certs, file, engine, inputs } = Workload::new("sigterm", 8, 20_000, 40);
    let machine = ["--dfa", file.as_str()];
    let mut cluster = Cluster::start(&certs, &machine, 0, &[]);
    let servers = cluster.servers();
    let Cluster { dealer, s0, s1 } = &mut cluster;
    let (out, rest) = std::thread::scope(|scope| {
        let c = scope.spawn(|| batch(&certs, &servers, &engine, &inputs));
        // Signal once server 0 runs the session (its stderr says so).
        let rest = wait_for_start(s0);
        for p in [&*dealer, &*s0, &*s1] {
            assert!(Command::new("kill").args(["-TERM", &p.child.id().to_string()]).status().unwrap().success());
        }
        (c.join().unwrap(), rest)
    });
    let run = out.unwrap_or_else(|e| panic!("the running session finishes: {e}"));
    assert_eq!(run.outputs.len(), inputs.len());
    let (ok, logs) = cluster.finish();
    let logs = logs + &rest.join().unwrap();
    assert!(ok, "every party exits cleanly after its running session:\n{logs}");
    assert_eq!(logs.matches("stopping: no new sessions").count(), 3, "{logs}");
    assert_eq!(logs.matches("transitions in").count(), 3, "{logs}");
}

#[test]
fn a_flood_of_idle_connections_is_capped_and_then_served() {
    let dir = Scratch::new("flood");
    let certs = dir.path("certs");
    write_dev_certs(Path::new(&certs)).unwrap();
    let machine = ["--dfa", "../datasets/ab.json"];
    let mut cluster = Cluster::start(&certs, &machine, 1, &["--max-connections", "4"]);
    // Four silent TCP connections fill server 0's handshake slots; a fifth is closed at once.
    let idle: Vec<std::net::TcpStream> =
        (0..4).map(|_| std::net::TcpStream::connect(&cluster.s0.addr).unwrap()).collect();
    std::thread::sleep(Duration::from_millis(200));
    let mut fifth = std::net::TcpStream::connect(&cluster.s0.addr).unwrap();
    fifth.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut byte = [0u8; 1];
    assert_eq!(std::io::Read::read(&mut fifth, &mut byte).unwrap(), 0, "closed without a handshake");
    // Once they go, a real session gets through.
    drop(idle);
    std::thread::sleep(Duration::from_millis(300));
    let (engine, inputs) = ab("aaa");
    let run = batch(&certs, &cluster.servers(), &engine, &inputs).unwrap();
    assert_eq!(states(&run), [Some(3)]);
    let mut log = String::new();
    std::io::Read::read_to_string(cluster.s0.child.stderr.as_mut().unwrap(), &mut log).unwrap();
    assert!(log.contains("too many connections waiting"), "{log}");
    let (ok, logs) = cluster.finish();
    assert!(ok, "{logs}");
}

fn pmsm(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pmsm")).args(args).output().unwrap()
}

#[test]
fn certs_keeps_its_ca_and_issues_named_clients_that_the_servers_accept() {
    let dir = Scratch::new("certs");
    let certs = dir.path("certs");
    let o = pmsm(&["certs", "--out", &certs]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(Path::new(&certs).join("ca.key").exists(), "the CA keeps its key");
    let ca = std::fs::read(Path::new(&certs).join("ca.pem")).unwrap();
    // A second run does not replace the CA (which would orphan every certificate).
    let o = pmsm(&["certs", "--out", &certs]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("ca.pem already exists: pass --force to replace it"), "{}", stderr(&o));
    assert_eq!(std::fs::read(Path::new(&certs).join("ca.pem")).unwrap(), ca);
    // Further identities from the same CA, one per client.
    let o = pmsm(&["certs", "--ca", &certs, "--client", "alice", "--client", "bob"]);
    assert!(o.status.success(), "{}", stderr(&o));
    for f in ["client-alice.pem", "client-alice.key", "client-bob.pem", "client-bob.key"] {
        assert!(Path::new(&certs).join(f).exists(), "{f}");
    }
    let o = pmsm(&["certs", "--ca", &certs, "--client", "alice"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("client-alice.pem already exists"), "{}", stderr(&o));
    let o = pmsm(&["certs", "--ca", &certs, "--client", "Alice!"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("is not a client name"), "{}", stderr(&o));
    let o = pmsm(&["certs", "--ca", &dir.path("nowhere"), "--client", "carol"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("nowhere/ca.pem"), "{}", stderr(&o));
    // Servers of that CA accept each named client; an unknown name is refused at load.
    let machine = ["--dfa", "../datasets/ab.json"];
    let cluster = Cluster::start(&certs, &machine, 2, &[]);
    let (engine, inputs) = ab("ab");
    for name in ["alice", "bob"] {
        let identity = Identity::load_named(Path::new(&certs), Role::Client, &format!("client-{name}")).unwrap();
        let servers = [cluster.s0.addr.as_str(), cluster.s1.addr.as_str()];
        let run = client::run(&identity, servers, &engine, &inputs, &NetOptions::default())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(states(&run), [Some(1)], "{name}");
    }
    let e = Identity::load_named(Path::new(&certs), Role::Client, "client-carol").unwrap_err().to_string();
    assert!(e.contains("client-carol.pem"), "{e}");
    // `pmsm client --identity carol` names the missing file before it dials anyone.
    let (s0, s1) = (cluster.s0.addr.as_str(), cluster.s1.addr.as_str());
    let o = pmsm(&[
        "client",
        "--certs",
        &certs,
        "--server0",
        s0,
        "--server1",
        s1,
        "--machine",
        "ab",
        "--identity",
        "carol",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("client-carol.pem"), "{}", stderr(&o));
    let (ok, logs) = cluster.finish();
    assert!(ok, "{logs}");
    // --force replaces the set: a new CA.
    let o = pmsm(&["certs", "--out", &certs, "--force"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_ne!(std::fs::read(Path::new(&certs).join("ca.pem")).unwrap(), ca);
}

#[test]
fn stats_lines_say_what_they_are_and_when() {
    let dir = Scratch::new("stats");
    let certs = dir.path("certs");
    write_dev_certs(Path::new(&certs)).unwrap();
    let stats = dir.path("stats.jsonl");
    let machine = ["--dfa", "../datasets/ab.json"];
    let before = pmsm_engine::process::timestamp::now();
    let cluster = Cluster::start(&certs, &machine, 1, &["--stats", &stats]);
    let (engine, inputs) = ab("ab");
    batch(&certs, &cluster.servers(), &engine, &inputs).unwrap();
    let (ok, logs) = cluster.finish();
    assert!(ok, "{logs}");
    let after = pmsm_engine::process::timestamp::now();
    let text = std::fs::read_to_string(&stats).unwrap();
    let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 3, "{text}");
    for l in &lines {
        assert_eq!((l["type"].as_str(), l["ok"].as_bool()), (Some("session"), Some(true)), "{l}");
        // RFC 3339 UTC with milliseconds: compares as text, within the run.
        let t = l["timestamp"].as_str().unwrap();
        assert!(t.len() == 24 && t.ends_with('Z') && &t[10..11] == "T", "{t}");
        assert!(before.as_str() <= t && t <= after.as_str(), "{before} <= {t} <= {after}");
    }
}
