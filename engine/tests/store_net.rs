//! Durable sessions over the network: the dealer and both servers as `pmsm` processes
//! with session stores, killed with SIGKILL at random moments of a streaming workload
//! and restarted. Every acknowledged push survives, every release equals the plaintext
//! machine on the symbols the servers settled, and a push that did not return is
//! applied up to the step both servers committed, never beyond what was sent; a
//! [`Reconnecting`](pmsm_engine::service::net::Reconnecting) client beside it sees every
//! push of its return. A store whose disk fills or turns read-only refuses new work
//! and keeps what was acknowledged.

use crate::process::Scratch;
use crate::service_net::{Cluster, machine_file};
use pmsm_engine::dfa::random::random_input;
use pmsm_engine::service::{Client, ServiceError, Session};
use pmsm_kernels::rng::WorkloadRng;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Kills across the three parties (`PMSM_CRASH_KILLS` overrides; the issue asks ≥ 50).
fn kills_wanted() -> usize {
    std::env::var("PMSM_CRASH_KILLS").ok().and_then(|v| v.parse().ok()).unwrap_or(50)
}

/// Pushes that did not return, and how many of their symbols the servers had settled.
static INTERRUPTED: AtomicU64 = AtomicU64::new(0);
static APPLIED: AtomicU64 = AtomicU64::new(0);

/// One session as the client knows it: its handle, the symbols acknowledged, and a
/// push that did not return (it may be applied in part or not at all).
struct Tracked {
    session: Session,
    acked: Vec<u32>,
    unsure: Vec<u32>,
}

/// A client once both servers answer, with every tracked session taken up again: the
/// settled steps must lie between the acknowledged symbols and those plus the push
/// that did not return; what was applied of that push becomes acknowledged.
fn recover(connect: &dyn Fn() -> Option<Client>, tracked: &mut [Tracked], deadline: Instant) -> Client {
    loop {
        assert!(Instant::now() < deadline, "the servers never came back");
        let Some(client) = connect() else {
            std::thread::sleep(Duration::from_millis(100));
            continue;
        };
        let resumed: Result<Vec<Session>, _> = tracked.iter().map(|t| client.resume(t.session.id())).collect();
        let resumed = match resumed {
            Ok(r) => r,
            // A party is down or the servers are linking again: retry.
            Err(ServiceError::Stopped { .. } | ServiceError::Unavailable(_)) => {
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
            Err(e) => panic!("a session did not survive: {e}"),
        };
        for (t, s) in tracked.iter_mut().zip(resumed) {
            let n = s.pushed() as usize;
            let (lo, hi) = (t.acked.len(), t.acked.len() + t.unsure.len());
            assert!(lo <= n && n <= hi, "session {}: settled {n} steps, acknowledged {lo}, sent {hi}", s.id());
            if !t.unsure.is_empty() {
                INTERRUPTED.fetch_add(1, Ordering::Relaxed);
                APPLIED.fetch_add((n - lo) as u64, Ordering::Relaxed);
            }
            t.acked.extend_from_slice(&t.unsure[..n - lo]);
            t.unsure.clear();
            t.session = s;
        }
        return client;
    }
}

#[test]
fn killed_parties_lose_no_acknowledged_push() {
    let dir = Scratch::new("crash");
    let (dfa, path) = machine_file(&dir, 21);
    let mut cluster = Cluster::start_durable(dir, &[format!("m={path},reveal=state")], &[]);
    let first = cluster.connect_when_linked("m");
    assert!(first.interface().durable);
    let mut tracked: Vec<Tracked> =
        (0..8).map(|_| Tracked { session: first.open().unwrap(), acked: Vec::new(), unsure: Vec::new() }).collect();
    drop(first);
    let stop = AtomicBool::new(false);
    let mut kills = [0usize; 3];
    let (pushes, checked) = (AtomicU64::new(0), AtomicU64::new(0));
    // Parties restart on their addresses.
    let (servers, certs) = (cluster.servers(), cluster.dir.path("certs"));
    let connect = || {
        use pmsm_engine::service::net::{Connect, connect};
        use pmsm_engine::transport::tls::{Identity, Role};
        let identity = Identity::load(std::path::Path::new(&certs), Role::Client).unwrap();
        let how = Connect { servers: servers.clone(), machine: "m".into(), pin: None, timeout: Duration::from_secs(5) };
        connect(&identity, &how).ok()
    };
    let symbols = dfa.symbols();
    // A second client leaves the mending to the library: every push of its returns,
    // resent from the servers' committed steps across every kill.
    let reconnecting = {
        use pmsm_engine::service::net::{Connect, Reconnecting};
        use pmsm_engine::transport::tls::{Identity, Role};
        let identity = Identity::load(std::path::Path::new(&certs), Role::Client).unwrap();
        let how = Connect { servers: servers.clone(), machine: "m".into(), pin: None, timeout: Duration::from_secs(5) };
        Reconnecting::connect(&identity, &how, Duration::from_secs(60)).unwrap()
    };
    std::thread::scope(|scope| {
        let mending = scope.spawn(|| {
            let mut rng = WorkloadRng::seed_from_u64(76);
            let mut held: Vec<(Session, Vec<u32>)> =
                (0..4).map(|_| (reconnecting.open().unwrap(), Vec::new())).collect();
            while !stop.load(Ordering::SeqCst) {
                let (s, acked) = &mut held[rng.below(4) as usize];
                let piece = random_input(symbols, 1 + rng.below(12) as usize, &mut rng);
                reconnecting.push(s, &piece).unwrap_or_else(|e| panic!("session {}: {e}", s.id()));
                acked.extend_from_slice(&piece);
                if rng.below(4) == 0 {
                    let out = reconnecting.release(s).unwrap();
                    assert_eq!(out.final_state, Some(dfa.run(acked)), "mended session {}", s.id());
                }
            }
            for (s, acked) in &mut held {
                let out = reconnecting.release(s).unwrap();
                assert_eq!(out.final_state, Some(dfa.run(acked)), "mended session {} at the end", s.id());
            }
        });
        let worker = scope.spawn(|| {
            let mut rng = WorkloadRng::seed_from_u64(77);
            let deadline = Instant::now() + Duration::from_secs(180);
            let mut client = recover(&connect, &mut tracked, deadline);
            while !stop.load(Ordering::SeqCst) {
                let i = rng.below(tracked.len() as u64) as usize;
                let t = &mut tracked[i];
                let piece = random_input(symbols, 1 + rng.below(12) as usize, &mut rng);
                match client.push(&mut t.session, &piece) {
                    Ok(()) => {
                        t.acked.extend_from_slice(&piece);
                        pushes.fetch_add(1, Ordering::Relaxed);
                        if rng.below(4) == 0 {
                            match client.release(&mut t.session) {
                                Ok(out) => {
                                    assert_eq!(out.final_state, Some(dfa.run(&t.acked)), "session {}", t.session.id());
                                    checked.fetch_add(1, Ordering::Relaxed);
                                }
                                Err(_) => client = recover(&connect, &mut tracked, deadline),
                            }
                        }
                    }
                    Err(_) => {
                        t.unsure = piece;
                        client = recover(&connect, &mut tracked, deadline);
                    }
                }
            }
            // After the last kill: every session's release equals the plaintext machine
            // on everything acknowledged.
            let client = recover(&connect, &mut tracked, deadline);
            for t in &mut tracked {
                let out = client.release(&mut t.session).unwrap();
                assert_eq!(out.final_state, Some(dfa.run(&t.acked)), "session {} at the end", t.session.id());
            }
        });
        let mut rng = WorkloadRng::seed_from_u64(78);
        while kills.iter().sum::<usize>() < kills_wanted() && !worker.is_finished() && !mending.is_finished() {
            std::thread::sleep(Duration::from_millis(150 + rng.below(600)));
            let who = rng.below(3) as usize;
            match who {
                0 => {
                    let addr = cluster.s0.as_ref().unwrap().addr.clone();
                    cluster.restart_s0(&addr);
                }
                1 => {
                    let addr = cluster.s1.as_ref().unwrap().addr.clone();
                    cluster.restart_s1(&addr);
                }
                _ => cluster.restart_dealer(),
            }
            kills[who] += 1;
        }
        stop.store(true, Ordering::SeqCst);
        for w in [worker, mending] {
            if let Err(e) = w.join() {
                std::panic::resume_unwind(e);
            }
        }
    });
    let logs = cluster.logs();
    assert!(!logs.contains("panicked"), "{logs}");
    // The follower refuses a plan drawing a correlation its pool is not at: none did.
    assert!(!logs.contains("draws correlation"), "{logs}");
    let (pushes, checked) = (pushes.load(Ordering::Relaxed), checked.load(Ordering::Relaxed));
    assert!(pushes >= 20 && checked >= 5, "too little got through: {pushes} pushes, {checked} releases");
    let (interrupted, applied) = (INTERRUPTED.load(Ordering::Relaxed), APPLIED.load(Ordering::Relaxed));
    eprintln!(
        "kills (server 0, server 1, dealer) {kills:?}: {pushes} pushes acknowledged, {checked} releases checked, \
         {interrupted} pushes interrupted ({applied} of their symbols had been committed); the reconnecting \
         client connected again {} times",
        reconnecting.reconnects()
    );
    assert!(reconnecting.reconnects() > 0, "the kills never reached the reconnecting client");
}

/// `pmsm` on `args` (from the test's folder).
fn pmsm(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_pmsm")).args(args).output().unwrap()
}

#[test]
fn a_kept_session_outlives_its_client_process_and_both_servers() {
    let dir = Scratch::new("keep");
    let rules = dir.path("rules.txt");
    std::fs::write(&rules, "abc[0-9]+z\n").unwrap();
    let mut cluster = Cluster::start_durable(dir, &[format!("dlp={rules}")], &[]);
    let _ = cluster.connect_when_linked("dlp");
    let certs = cluster.dir.path("certs");
    let o = pmsm(&["certs", "--ca", &certs, "--client", "other"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // Parties restart on their addresses.
    let [s0, s1] = cluster.servers();
    let client = |extra: &[&str]| {
        let mut a = vec!["client", "--certs", &certs, "--server0", &s0, "--server1", &s1, "--machine", "dlp"];
        a.extend_from_slice(extra);
        let a: Vec<String> = a.iter().map(|s| s.to_string()).collect();
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        pmsm(&a)
    };
    let err = |o: &std::process::Output| String::from_utf8_lossy(&o.stderr).into_owned();
    let lines = |o: &std::process::Output| -> Vec<serde_json::Value> {
        String::from_utf8_lossy(&o.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect()
    };
    let accepts = |o: &std::process::Output| -> Vec<bool> {
        lines(o).iter().filter(|v| v["type"] == "output").map(|v| v["accept"].as_bool().unwrap()).collect()
    };
    let o = client(&["--keep", "--json", "--input", "xx abc"]);
    assert!(o.status.success(), "{}", err(&o));
    let first = lines(&o);
    assert_eq!(first[0]["type"], "session", "{first:?}");
    let id = first[0]["session"].as_str().expect("the session id, as a string").to_string();
    assert_eq!(accepts(&o), [false]);
    // Another process of the same identity goes on where it stood.
    let o = client(&["--session", &id, "--keep", "--json", "--input", "12"]);
    assert!(o.status.success(), "{}", err(&o));
    assert_eq!(accepts(&o), [false]);
    // Both servers killed and restarted: the session is still there.
    let (a0, a1) = (cluster.s0.as_ref().unwrap().addr.clone(), cluster.s1.as_ref().unwrap().addr.clone());
    cluster.restart_s0(&a0);
    cluster.restart_s1(&a1);
    let _ = cluster.connect_when_linked("dlp");
    // Another identity may not use it.
    let o = client(&["--identity", "other", "--session", &id, "--input", "z"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(err(&o).contains("belongs to another client"), "{}", err(&o));
    // "xx abc" + "12" + "z" matches: the whole history counts; without --keep it closes.
    let o = client(&["--session", &id, "--json", "--input", "z"]);
    assert!(o.status.success(), "{}", err(&o));
    assert_eq!(accepts(&o), [true]);
    let o = client(&["--session", &id, "--input", "z"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(err(&o).contains(&format!("session {id}")), "{}", err(&o));
    // The stores, once the servers stop: one per server, no session left.
    drop(cluster.s0.take());
    drop(cluster.s1.take());
    for b in 0..2 {
        let path = cluster.dir.path(&format!("s{b}.redb"));
        let o = pmsm(&["store", "stats", &path, "--json"]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!((v["server"].as_u64(), v["sessions"].as_u64()), (Some(b), Some(0)), "{v}");
    }
    let o = pmsm(&["store", "stats", &cluster.dir.path("s9.redb")]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("s9.redb: no such file"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// A tmpfs mounted for a test (root only) on a folder of its own, unmounted and removed
/// on drop (whatever else the test left).
struct Tmpfs(String);

impl Tmpfs {
    /// Mounts a tmpfs of `size` (as `mount -o size=` takes it) on a new folder named
    /// for `name`; `None` when this process may not mount, unless `PMSM_REQUIRE_MOUNT`
    /// is set (CI sets it where it runs as root): then that fails the test.
    fn mount(name: &str, size: &str) -> Option<Tmpfs> {
        let at = std::env::temp_dir().join(format!("pmsm-tmpfs-{name}-{}", std::process::id()));
        let at = at.display().to_string();
        std::fs::create_dir_all(&at).unwrap();
        let opts = format!("size={size},mode=700");
        let mounted = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &opts, "tmpfs", &at])
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !mounted {
            let _ = std::fs::remove_dir(&at);
            assert!(
                std::env::var_os("PMSM_REQUIRE_MOUNT").is_none(),
                "PMSM_REQUIRE_MOUNT is set: cannot mount a tmpfs"
            );
        }
        mounted.then_some(Tmpfs(at))
    }

    /// `mount -o remount,<how>` (`ro` or `rw`).
    fn remount(&self, how: &str) {
        let opts = format!("remount,{how}");
        let s = std::process::Command::new("mount").args(["-o", &opts, &self.0]).status().unwrap();
        assert!(s.success(), "mount -o {opts} {}", self.0);
    }

    /// Bytes free for unprivileged writers, as `df` reports them.
    fn free(&self) -> u64 {
        let o = std::process::Command::new("df").args(["-B1", "--output=avail", &self.0]).output().unwrap();
        let text = String::from_utf8_lossy(&o.stdout);
        text.lines().nth(1).and_then(|l| l.trim().parse().ok()).unwrap_or_else(|| panic!("df said {text:?}"))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").args(["-l", &self.0]).status();
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Calls `attempt` every 100 ms until it gives an answer, for at most `limit`.
fn until<T>(limit: Duration, what: &str, mut attempt: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = attempt() {
            return v;
        }
        assert!(Instant::now() < deadline, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Sessions as a client holds them: each with the symbols acknowledged.
type Held = Vec<(Session, Vec<u32>)>;

#[test]
fn a_store_short_of_disk_room_refuses_new_pushes_and_keeps_what_was_acknowledged() {
    let dir = Scratch::new("room");
    let Some(disk) = Tmpfs::mount("room", "16m") else {
        eprintln!("skipped: mounting a tmpfs needs root (this test fills and remounts a real file system)");
        return;
    };
    let at = disk.0.clone();
    let (dfa, path) = machine_file(&dir, 22);
    // Server 0's store on the small disk, with 4 MiB kept in reserve; server 1's beside.
    let s0_store = format!("{at}/s0.redb");
    let stores = [s0_store.clone(), dir.path("s1.redb")];
    let machines = [format!("m={path},reveal=state")];
    let mut cluster = Cluster::start_durable_at(dir, &machines, &["--store-reserve", "4"], stores);
    let client = cluster.connect_when_linked("m");
    let mut rng = WorkloadRng::seed_from_u64(79);
    let mut held: Held = (0..4).map(|_| (client.open().unwrap(), Vec::new())).collect();
    let symbols = dfa.symbols();
    // One push into session `i`: acknowledged (kept in its history) or refused (why).
    let mut push = |client: &Client, held: &mut Held, i: usize| {
        let piece = random_input(symbols, 1 + rng.below(20) as usize, &mut rng);
        let (s, acked) = &mut held[i];
        match client.push(s, &piece) {
            Ok(()) => {
                acked.extend(piece);
                None
            }
            Err(e) => Some(e.to_string()),
        }
    };
    let check = |client: &Client, held: &mut Held, when: &str| {
        for (s, acked) in held.iter_mut() {
            let out = client.release(s).unwrap_or_else(|e| panic!("{when}: session {}: {e}", s.id()));
            assert_eq!(out.final_state, Some(dfa.run(acked)), "{when}: session {}", s.id());
        }
    };
    for i in 0..held.len() {
        assert_eq!(push(&client, &mut held, i), None);
    }

    // Server 0's disk filled to under its reserve: server 1, which takes every push
    // first, refuses them once a plan of the leader's says so (a heartbeat a second).
    let ballast = format!("{at}/ballast");
    std::fs::write(&ballast, vec![0u8; (disk.free() - (2 << 20)) as usize]).unwrap();
    let refused = until(Duration::from_secs(10), "a push refused", || push(&client, &mut held, 0));
    assert!(refused.contains("server 0's session store is short of disk room"), "{refused}");
    assert!(refused.contains("what was acknowledged is kept"), "{refused}");
    let opened = client.open().map(|s| s.id()).unwrap_err().to_string();
    assert!(opened.contains("s0.redb") && opened.contains("under the reserve of 4194304"), "{opened}");
    check(&client, &mut held, "disk short");
    // Room again: pushes are taken again.
    std::fs::remove_file(&ballast).unwrap();
    until(Duration::from_secs(10), "a push taken again", || push(&client, &mut held, 1).is_none().then_some(()));
    check(&client, &mut held, "room again");

    // A store on a read-only file system (it cannot be remounted so while open for
    // writing): server 0 restarted on it refuses to start, naming the file and why;
    // once writable again it goes on with every acknowledged push.
    drop(client);
    let s0_addr = cluster.s0.as_ref().unwrap().addr.clone();
    drop(cluster.s0.take());
    disk.remount("ro");
    let dealer = cluster.dealer.as_ref().unwrap().addr.clone();
    let certs = cluster.dir.path("certs");
    let o = pmsm(&[
        "serve",
        "--party",
        "0",
        "--dealer",
        &dealer,
        "--certs",
        &certs,
        "--listen",
        "127.0.0.1:0",
        "--machine",
        &machines[0],
        "--store",
        &s0_store,
    ]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(&s0_store) && stderr.contains("Read-only file system"), "{stderr}");
    disk.remount("rw");
    cluster.restart_s0(&s0_addr);
    let client = cluster.connect_when_linked("m");
    for (s, acked) in held.iter_mut() {
        *s = until(Duration::from_secs(10), "resumed", || client.resume(s.id()).ok());
        assert_eq!(s.pushed() as usize, acked.len(), "session {}", s.id());
    }
    check(&client, &mut held, "writable again");
    assert_eq!(push(&client, &mut held, 3), None);
    check(&client, &mut held, "pushed again");
    let logs = cluster.logs();
    assert!(!logs.contains("panicked"), "{logs}");
}

#[test]
fn a_stream_goes_on_across_restarts_of_both_servers() {
    use std::io::{BufRead, Write};
    let dir = Scratch::new("stream");
    let rules = dir.path("rules.txt");
    std::fs::write(&rules, "abc[0-9]+z\n").unwrap();
    let mut cluster = Cluster::start_durable(dir, &[format!("dlp={rules}")], &[]);
    let _ = cluster.connect_when_linked("dlp");
    let (certs, [s0, s1]) = (cluster.dir.path("certs"), cluster.servers());
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_pmsm"))
        .args(["client", "--certs", &certs, "--server0", &s0, "--server1", &s1, "--machine", "dlp", "--stream"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let mut send = |text: &str| -> serde_json::Value {
        writeln!(stdin, "{text}").unwrap();
        stdin.flush().unwrap();
        serde_json::from_str(&lines.next().expect("a release line").unwrap()).unwrap()
    };
    assert_eq!(send("xx abc")["accept"], false);
    assert_eq!(send("12")["accept"], false);
    // Both servers killed and started again: the client connects again and goes on.
    cluster.restart_s0(&s0);
    cluster.restart_s1(&s1);
    let out = send("z");
    assert_eq!((out["accept"].as_bool(), out["symbols"].as_u64()), (Some(true), Some(9)), "{out}");
    // End of input: the client releases nothing more, closes the session and exits.
    drop(stdin);
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}
