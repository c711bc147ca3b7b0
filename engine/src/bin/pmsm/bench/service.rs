//! `pmsm bench` in service mode (`mode = "service"`): every input is one session,
//! opened, pushed its whole input, released and closed through the in-process service
//! by `clients` threads; every release is checked against the plaintext machine. The
//! same inputs also run through the batch engine in the same invocation, so the two
//! rates are measured side by side.
//!
//! Each client thread opens all of its sessions and pushes each its input before it
//! asks for any release, so every session is in flight at once (10^4 sessions over 64
//! threads: 157 a thread). A push's latency is from the push call to its release's
//! answer (the output covering that push is available).

use super::profile::{Checked, err};
use super::tcp;
use pmsm_engine::Engine;
use pmsm_engine::dfa::Dfa;
use pmsm_engine::dfa::random::random_input;
use pmsm_engine::protocol::Protocol;
use pmsm_engine::protocol::Reveal;
use pmsm_engine::service::net::Connect;
use pmsm_engine::service::{Client, Options, Service, Session};
use pmsm_engine::transport::tls::{Identity, Role};
use pmsm_kernels::rng::WorkloadRng;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// Where the bench's service runs: in this process, or as three processes on
/// 127.0.0.1 reached over TLS.
enum Backend {
    InProc(Service),
    Tcp(tcp::ServiceProcs, Identity),
}

impl Backend {
    /// A new client (its own identity in process; its own two connections over tcp).
    fn connect(&self) -> Result<Client, String> {
        match self {
            Backend::InProc(s) => s.connect("bench").map_err(|e| e.to_string()),
            Backend::Tcp(p, identity) => {
                let how = Connect {
                    servers: p.servers.clone(),
                    machine: "bench".into(),
                    pin: None,
                    timeout: Duration::from_secs(10),
                };
                pmsm_engine::service::net::connect(identity, &how).map_err(|e| e.to_string())
            }
        }
    }

    /// Waits until the servers are linked (a session opens).
    fn ready(&self) -> Result<(), String> {
        let start = Instant::now();
        loop {
            let tried = self.connect().and_then(|c| {
                let s = c.open().map_err(|e| e.to_string())?;
                c.close(s).map_err(|e| e.to_string())
            });
            match tried {
                Ok(()) => return Ok(()),
                Err(e) if start.elapsed() > Duration::from_secs(30) => {
                    return Err(format!("the service never became ready: {e}{}", self.logs()));
                }
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }

    /// The parties' last log lines (over tcp), for an error message.
    fn logs(&self) -> String {
        match self {
            Backend::Tcp(p, _) => format!("\n{}", p.tails()),
            Backend::InProc(_) => String::new(),
        }
    }

    fn transport(&self) -> &'static str {
        match self {
            Backend::InProc(_) => "inproc",
            Backend::Tcp(..) => "tcp",
        }
    }

    /// Resident bytes by party (in process: the one process).
    fn rss(&self) -> Option<Vec<(&'static str, u64)>> {
        match self {
            Backend::InProc(_) => rss_bytes().map(|b| vec![("all_parties_in_process", b)]),
            Backend::Tcp(p, _) => p.rss().map(|[d, s0, s1]| vec![("dealer", d), ("server_0", s0), ("server_1", s1)]),
        }
    }
}

/// `n` sessions opened by `threads` clients at once; each client with its sessions.
fn open_many(backend: &Backend, n: usize, threads: usize) -> Result<Vec<(Client, Vec<Session>)>, String> {
    let threads = threads.clamp(1, n.max(1));
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                scope.spawn(move || -> Result<(Client, Vec<Session>), String> {
                    let client = backend.connect()?;
                    let mine = (t..n).step_by(threads).count();
                    let sessions = (0..mine).map(|_| client.open()).collect::<Result<Vec<_>, _>>();
                    Ok((client, sessions.map_err(|e| e.to_string())?))
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or_else(|_| Err("a client thread panicked".into()))).collect()
    })
}

fn close_many(opened: Vec<(Client, Vec<Session>)>) -> Result<(), String> {
    std::thread::scope(|scope| {
        let handles: Vec<_> = opened
            .into_iter()
            .map(|(c, sessions)| {
                scope.spawn(move || sessions.into_iter().try_for_each(|s| c.close(s)).map_err(|e| e.to_string()))
            })
            .collect();
        handles.into_iter().try_for_each(|h| h.join().unwrap_or_else(|_| Err("a client thread panicked".into())))
    })
}

/// Resident bytes of this process now (Linux).
fn rss_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

/// `{"p50", "p99"}` of latencies in seconds, in milliseconds (nearest rank, as the
/// batch report's round latencies).
fn latency_ms(seconds: &[f64]) -> Value {
    let [p50, p99] = pmsm_engine::party::server::round_latency_ms(seconds);
    json!({"p50": p50, "p99": p99})
}

/// Runs run `i` of the profile through the service (in process, or over tcp with
/// `scratch`) and through the batch engine.
pub fn run(
    checked: &Checked,
    i: usize,
    dfa: &Dfa,
    inputs: &[Vec<u32>],
    protocol: Protocol,
    scratch: Option<&tcp::Scratch>,
) -> Result<Value, String> {
    let spec = &checked.profile.run[i];
    let reveal = checked.reveal(i);
    let failed = |e: &dyn std::fmt::Display| format!("{}: {} (service): {e}", spec.label, protocol);
    let want: Vec<u32> = dfa.run_batch(inputs);
    let transitions: usize = inputs.iter().map(Vec::len).sum();

    // The batch run of the same inputs.
    let engine = Engine::builder(dfa.clone())
        .protocol(protocol)
        .reveal(reveal)
        .classes(checked.classes(i))
        .build()
        .map_err(|e| err(&checked.file, &format!("run[{i}]"), e))?;
    let batch = engine.run(inputs).map_err(|e| failed(&e))?;
    for (n, (o, s)) in batch.outputs.iter().zip(&want).enumerate() {
        if (o.final_state, o.accept) != expected(dfa, reveal, *s) {
            return Err(failed(&format!("batch instance {n} differs from the plaintext evaluator")));
        }
    }
    let batch_rate = transitions as f64 / batch.seconds.max(1e-12);
    let batch_bits = super::bits_per_transition(&batch.bytes, transitions);
    drop(engine);

    let backend = start(dfa, protocol, reveal, scratch, None).map_err(|e| failed(&e))?;
    backend.ready().map_err(|e| failed(&e))?;
    let clients = checked.profile.clients.min(inputs.len()).max(1);
    eprintln!(
        "pmsm bench: {} · {} (service, {}): {} sessions over {clients} client threads",
        spec.label,
        protocol,
        backend.transport(),
        inputs.len()
    );
    let (seconds, latencies, connections) =
        sessions_workload(&backend, checked.profile.connections, clients, dfa, reveal, inputs, &want)
            .map_err(|e| failed(&e))?;
    // Over tcp the parties count their own frames; only the in-process service sees
    // every link's bytes.
    let bits = match &backend {
        Backend::InProc(service) => Some(super::bits_per_transition(&service.bytes(), transitions)),
        Backend::Tcp(..) => None,
    };

    // Memory of idle sessions: each party's growth from `idle` to `2 · idle` open
    // sessions (the first `idle` also take up memory the runs above freed, which would
    // hide their cost).
    let idle = checked.profile.idle_sessions;
    let per_idle = if idle > 0 {
        let first = open_many(&backend, idle, clients).map_err(|e| failed(&e))?;
        let before = backend.rss();
        let second = open_many(&backend, idle, clients).map_err(|e| failed(&e))?;
        let after = backend.rss();
        close_many(first).and_then(|()| close_many(second)).map_err(|e| failed(&e))?;
        before.zip(after).map(|(b, a)| {
            let by_party: serde_json::Map<String, Value> = b
                .iter()
                .zip(&a)
                .map(|((name, b), (_, a))| (name.to_string(), json!(a.saturating_sub(*b) as f64 / idle as f64)))
                .collect();
            Value::Object(by_party)
        })
    } else {
        None
    };
    let idle_latency = idle_latency(&backend, dfa, reveal, &inputs[0]).map_err(|e| failed(&e))?;
    let stream = match checked.profile.stream_sessions {
        0 => None,
        n => Some(stream(&backend, dfa, reveal, n, checked.profile.stream_pushes, clients).map_err(|e| failed(&e))?),
    };
    let transport = backend.transport();
    if let Backend::InProc(service) = backend {
        service.shutdown().map_err(|e| failed(&e))?;
    }
    let rate = transitions as f64 / seconds.max(1e-12);
    // The same workload with session stores: the cost of durability, in this run.
    let durable = if checked.profile.store {
        let stores = StoreDir::new()?;
        let backend = start(dfa, protocol, reveal, scratch, Some(&stores)).map_err(|e| failed(&e))?;
        backend.ready().map_err(|e| failed(&e))?;
        let (secs, lat, _) =
            sessions_workload(&backend, checked.profile.connections, clients, dfa, reveal, inputs, &want)
                .map_err(|e| failed(&e))?;
        let mut commits = None;
        if let Backend::InProc(service) = backend {
            let st = service.stats();
            let load = |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
            let (n, written, micros) = (load(&st.commits), load(&st.committed_sessions), load(&st.commit_micros));
            commits = Some(json!({
                "commits": n,
                "sessions_per_commit": written as f64 / n.max(1) as f64,
                "ms_per_commit": micros as f64 / 1e3 / n.max(1) as f64,
            }));
            service.shutdown().map_err(|e| failed(&e))?;
        }
        let durable_rate = transitions as f64 / secs.max(1e-12);
        eprintln!(
            "pmsm bench: {:<34} {:<11} {:>10.0} transitions/s with session stores ({:.0} % of the service without)",
            spec.label,
            protocol.name(),
            durable_rate,
            100.0 * durable_rate / rate
        );
        Some(json!({
            "seconds": secs,
            "transitions_per_sec": durable_rate,
            "ratio_to_service": durable_rate / rate,
            "push_latency_ms": latency_ms(&lat),
            // In process: both servers' commits.
            "commits": commits,
        }))
    } else {
        None
    };
    let reopen = match checked.profile.store_sessions {
        0 => None,
        _ if scratch.is_some() => return Err(failed(&"store_sessions is measured in process (transport inproc)")),
        n => Some(reopen(dfa, protocol, reveal, n).map_err(|e| failed(&e))?),
    };
    eprintln!(
        "pmsm bench: {:<34} {:<11} {:>10.0} transitions/s as a service, {:>10.0} as one batch ({:.0} %)",
        spec.label,
        protocol.name(),
        rate,
        batch_rate,
        100.0 * rate / batch_rate
    );
    Ok(json!({
        "label": spec.label,
        "mode": "service",
        "protocol": protocol.name(),
        "transport": transport,
        "states": dfa.states(),
        "symbols": dfa.symbols(),
        "batch": inputs.len(),
        "sessions": inputs.len(),
        "clients": clients,
        "connections": connections,
        "transitions": transitions,
        "seconds": seconds,
        "transitions_per_sec": rate,
        "batch_transitions_per_sec": batch_rate,
        "push_latency_ms": latency_ms(&latencies),
        "bits_per_transition": bits,
        "batch_bits_per_transition": batch_bits,
        // Growth per idle session from `idle_sessions` to twice as many open: of each
        // party's process over tcp; in process every party shares one address space.
        "bytes_per_session_by_party": per_idle,
        "idle_sessions": idle,
        "idle_push_latency_ms": idle_latency,
        "stream": stream,
        "durable": durable,
        "store_reopen": reopen,
        "verified": true,
    }))
}

/// A future of the bench's client threads.
type Pending<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + 'a>>;

/// Runs `futures` together on this thread and returns their outputs in order. Each
/// future has a waker of its own and is polled again only once woken; the thread
/// sleeps while none is (polling them all on a timer took a quarter of the machine's
/// CPU from the servers while durable pushes waited for their commits).
fn all<T>(mut futures: Vec<Pending<'_, T>>) -> Vec<T> {
    use std::sync::{Arc, Mutex};
    /// Future `index` was woken: queue it and wake the thread.
    struct Woken {
        index: usize,
        queue: Arc<Mutex<Vec<usize>>>,
        thread: std::thread::Thread,
    }
    impl std::task::Wake for Woken {
        fn wake(self: Arc<Self>) {
            self.wake_by_ref();
        }
        fn wake_by_ref(self: &Arc<Self>) {
            self.queue.lock().unwrap_or_else(|p| p.into_inner()).push(self.index);
            self.thread.unpark();
        }
    }
    let queue = Arc::new(Mutex::new((0..futures.len()).collect::<Vec<_>>()));
    let wakers: Vec<std::task::Waker> = (0..futures.len())
        .map(|index| {
            let woken = Woken { index, queue: Arc::clone(&queue), thread: std::thread::current() };
            std::task::Waker::from(Arc::new(woken))
        })
        .collect();
    let mut out: Vec<Option<T>> = futures.iter().map(|_| None).collect();
    let mut left = futures.len();
    while left > 0 {
        let woken = std::mem::take(&mut *queue.lock().unwrap_or_else(|p| p.into_inner()));
        if woken.is_empty() {
            std::thread::park();
            continue;
        }
        for i in woken {
            if out[i].is_some() {
                continue;
            }
            let mut cx = std::task::Context::from_waker(&wakers[i]);
            if let std::task::Poll::Ready(v) = futures[i].as_mut().poll(&mut cx) {
                out[i] = Some(v);
                left -= 1;
            }
        }
    }
    out.into_iter().map(|o| o.expect("every future is done")).collect()
}

/// A scratch folder for session stores, removed on drop.
struct StoreDir(std::path::PathBuf);

impl StoreDir {
    fn new() -> Result<StoreDir, String> {
        let dir = std::env::temp_dir().join(format!("pmsm-bench-stores-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        Ok(StoreDir(dir))
    }

    fn path(&self, b: usize) -> std::path::PathBuf {
        self.0.join(format!("s{b}.redb"))
    }
}

impl Drop for StoreDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The service for the bench's machine: in process (with session stores in `stores`,
/// if given), or as processes over tcp (with stores of their own, if `stores`).
fn start(
    dfa: &Dfa,
    protocol: Protocol,
    reveal: Reveal,
    scratch: Option<&tcp::Scratch>,
    stores: Option<&StoreDir>,
) -> Result<Backend, String> {
    match scratch {
        None => {
            let mut b = Service::builder().machine("bench", dfa.clone(), protocol, reveal).options(Options::default());
            if let Some(d) = stores {
                b = b.stores(d.path(0), d.path(1));
            }
            b.start().map(Backend::InProc).map_err(|e| e.to_string())
        }
        Some(scratch) => {
            let procs = tcp::start_service(scratch, dfa, protocol, reveal, stores.is_some())?;
            let identity = Identity::load(&procs.certs, Role::Client).map_err(|e| e.to_string())?;
            Ok(Backend::Tcp(procs, identity))
        }
    }
}

/// Writes `n` sessions into a fresh store per server (as a service of this machine
/// leaves them), then starts a service on the stores: the seconds until it serves
/// (both stores reopened, the session lists exchanged and agreed) and the bytes per
/// session on disk.
fn reopen(dfa: &Dfa, protocol: Protocol, reveal: Reveal, n: usize) -> Result<Value, String> {
    use pmsm_engine::process::Fingerprint;
    use pmsm_engine::store::{SessionRecord, Store, record_now};
    use pmsm_kernels::Party;
    let stores = StoreDir::new()?;
    let family = u8::from(protocol == Protocol::LookupRing);
    let filled = Instant::now();
    // Stand-in shares (a workload: nothing is ever revealed from them).
    let mut rng = WorkloadRng::seed_from_u64(5);
    for (b, party) in [Party::P0, Party::P1].into_iter().enumerate() {
        let store = Store::open(&stores.path(b), party).map_err(|e| e.to_string())?;
        let id = store.machine_ids(&[("bench", Fingerprint::of(dfa))]).map_err(|e| e.to_string())?[0];
        let now = record_now();
        for chunk in (0..n as u64).collect::<Vec<_>>().chunks(100_000) {
            let records: Vec<_> = chunk
                .iter()
                .map(|&slot| {
                    let state = rng.below(1 << 16);
                    let steps = slot % 1000;
                    (
                        slot,
                        SessionRecord {
                            machine: id,
                            group: 0,
                            owner: 1,
                            steps,
                            state,
                            prev_steps: steps,
                            prev: state,
                            created: now,
                            last_used: now,
                        },
                    )
                })
                .collect();
            store.commit(family, &records, &[]).map_err(|e| e.to_string())?;
        }
    }
    let fill_seconds = filled.elapsed().as_secs_f64();
    let bytes: Vec<u64> = (0..2).map(|b| std::fs::metadata(stores.path(b)).map_or(0, |m| m.len())).collect();
    let started = Instant::now();
    let options = Options { max_sessions: n + 64, ..Options::default() };
    let service = Service::builder()
        .machine("bench", dfa.clone(), protocol, reveal)
        .options(options)
        .stores(stores.path(0), stores.path(1))
        .start()
        .map_err(|e| e.to_string())?;
    let client = service.connect("bench").map_err(|e| e.to_string())?;
    let s = client.open().map_err(|e| e.to_string())?;
    let seconds = started.elapsed().as_secs_f64();
    // Both servers hold every stored session and the new one.
    let held = service.stats().sessions.load(std::sync::atomic::Ordering::Relaxed);
    client.close(s).map_err(|e| e.to_string())?;
    service.shutdown().map_err(|e| e.to_string())?;
    if held != 2 * (n as u64 + 1) {
        return Err(format!("the reopened service holds {held} group sessions, not {} (both servers)", 2 * (n + 1)));
    }
    let per_session: Vec<f64> = bytes.iter().map(|&b| b as f64 / n as f64).collect();
    eprintln!(
        "pmsm bench: a store of {n} sessions per server: reopened and reconciled in {seconds:.2} s; \
         {:.0} / {:.0} bytes a session on disk (server 0 / 1); filled in {fill_seconds:.1} s",
        per_session[0], per_session[1]
    );
    Ok(json!({
        "sessions": n,
        "seconds": seconds,
        "bytes_per_session": per_session,
        "fill_seconds": fill_seconds,
    }))
}

/// Every input one session over `clients` threads (sharing `connections` over tcp; 0:
/// one each): each thread opens and pushes all of its sessions, then releases (checked
/// against `want`) and closes them. Returns the seconds, each push's latency to its
/// release, and the connections used.
fn sessions_workload(
    backend: &Backend,
    connections: usize,
    clients: usize,
    dfa: &Dfa,
    reveal: Reveal,
    inputs: &[Vec<u32>],
    want: &[u32],
) -> Result<(f64, Vec<f64>, usize), String> {
    // Over tcp the threads may share fewer connections (`connections`), whose requests
    // then travel together; in process each thread is a client of its own.
    let shared: Vec<Client> = match (backend, connections) {
        (Backend::Tcp(..), n) if n > 0 => (0..n.min(clients)).map(|_| backend.connect()).collect::<Result<_, _>>()?,
        _ => Vec::new(),
    };
    let connections = match backend {
        Backend::Tcp(..) if shared.is_empty() => clients,
        Backend::Tcp(..) => shared.len(),
        Backend::InProc(_) => 0,
    };
    let start = Instant::now();
    let per_thread: Vec<Result<Vec<f64>, String>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..clients)
            .map(|t| {
                let shared = &shared;
                scope.spawn(move || -> Result<Vec<f64>, String> {
                    let own;
                    let client = match shared.get(t % shared.len().max(1)) {
                        Some(c) => c,
                        None => {
                            own = backend.connect()?;
                            &own
                        }
                    };
                    let mine: Vec<usize> = (t..inputs.len()).step_by(clients).collect();
                    // Every session opened and pushed at once (a durable push returns
                    // only once committed, so one after the other would keep a single
                    // session in flight).
                    let opens = mine.iter().map(|_| Box::pin(client.open_async()) as Pending<'_, _>).collect();
                    let opened = all(opens)
                        .into_iter()
                        .collect::<Result<Vec<Session>, pmsm_engine::service::ServiceError>>()
                        .map_err(|e| e.to_string())?;
                    let mut sessions: Vec<(usize, Session, Instant)> =
                        mine.iter().zip(opened).map(|(&n, s)| (n, s, Instant::now())).collect();
                    let pushes = sessions
                        .iter_mut()
                        .map(|(n, s, pushed)| {
                            Box::pin(async move {
                                *pushed = Instant::now();
                                client.push_async(s, &inputs[*n]).await.map_err(|e| format!("session {n}: {e}"))
                            }) as Pending<'_, _>
                        })
                        .collect();
                    all(pushes).into_iter().collect::<Result<(), String>>()?;
                    let mut latencies = Vec::with_capacity(mine.len());
                    for (n, mut s, pushed) in sessions {
                        let o = client.release(&mut s).map_err(|e| format!("session {n}: {e}"))?;
                        latencies.push(pushed.elapsed().as_secs_f64());
                        if (o.final_state, o.accept) != expected(dfa, reveal, want[n]) || o.symbols != inputs[n].len() {
                            return Err(format!("session {n} differs from the plaintext evaluator"));
                        }
                        client.close(s).map_err(|e| format!("session {n}: {e}"))?;
                    }
                    Ok(latencies)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or_else(|_| Err("a client thread panicked".into()))).collect()
    });
    let seconds = start.elapsed().as_secs_f64();
    let mut latencies = Vec::with_capacity(inputs.len());
    for r in per_thread {
        latencies.extend(r.map_err(|e| format!("{e}{}", backend.logs()))?);
    }
    Ok((seconds, latencies, connections))
}

/// Pushes of this many symbols into one session of an otherwise idle service, each
/// followed by its release, for the latency of a lone push.
const IDLE_PUSH_SYMBOLS: usize = 100;
const IDLE_PUSHES: usize = 100;

/// p50 and p99 of a lone 100-symbol push and its release on an idle service.
fn idle_latency(backend: &Backend, dfa: &Dfa, reveal: Reveal, text: &[u32]) -> Result<Value, String> {
    let client = backend.connect()?;
    let mut s = client.open().map_err(|e| e.to_string())?;
    let mut history = Vec::new();
    let mut lat = Vec::with_capacity(IDLE_PUSHES);
    let mut rng = WorkloadRng::seed_from_u64(7);
    for _ in 0..IDLE_PUSHES {
        let push: Vec<u32> = if text.is_empty() {
            random_input(dfa.symbols(), IDLE_PUSH_SYMBOLS, &mut rng)
        } else {
            text.iter().copied().cycle().take(IDLE_PUSH_SYMBOLS).collect()
        };
        let t = Instant::now();
        client.push(&mut s, &push).map_err(|e| e.to_string())?;
        let o = client.release(&mut s).map_err(|e| e.to_string())?;
        lat.push(t.elapsed().as_secs_f64());
        history.extend_from_slice(&push);
        if (o.final_state, o.accept) != expected(dfa, reveal, dfa.run(&history)) {
            return Err("an idle-service release differs from the plaintext evaluator".into());
        }
    }
    client.close(s).map_err(|e| e.to_string())?;
    let mut v = latency_ms(&lat);
    v["symbols"] = json!(IDLE_PUSH_SYMBOLS);
    v["pushes"] = json!(IDLE_PUSHES);
    Ok(v)
}

/// `sessions` sessions over `clients` threads; each thread picks one of its sessions
/// at random, pushes it 1 to 20 random symbols and releases it, until every session
/// had `pushes` pushes. Every release is checked; latency is push call → release answer.
fn stream(
    backend: &Backend,
    dfa: &Dfa,
    reveal: Reveal,
    sessions: usize,
    pushes: usize,
    clients: usize,
) -> Result<Value, String> {
    let clients = clients.min(sessions).max(1);
    let start = Instant::now();
    let results: Vec<Result<(Vec<f64>, usize), String>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..clients)
            .map(|t| {
                scope.spawn(move || -> Result<(Vec<f64>, usize), String> {
                    let client = backend.connect()?;
                    let mut rng = WorkloadRng::seed_from_u64(1000 + t as u64);
                    let mine = (t..sessions).step_by(clients).count();
                    let mut open = Vec::with_capacity(mine);
                    for _ in 0..mine {
                        open.push((client.open().map_err(|e| e.to_string())?, Vec::new(), 0usize));
                    }
                    let (mut lat, mut symbols) = (Vec::new(), 0usize);
                    let mut live: Vec<usize> = (0..mine).collect();
                    while !live.is_empty() {
                        let k = rng.below(live.len() as u64) as usize;
                        let (s, history, done) = &mut open[live[k]];
                        let push = random_input(dfa.symbols(), 1 + rng.below(20) as usize, &mut rng);
                        let t0 = Instant::now();
                        client.push(s, &push).map_err(|e| e.to_string())?;
                        let o = client.release(s).map_err(|e| e.to_string())?;
                        lat.push(t0.elapsed().as_secs_f64());
                        history.extend_from_slice(&push);
                        symbols += push.len();
                        if (o.final_state, o.accept) != expected(dfa, reveal, dfa.run(history)) {
                            return Err("a streaming release differs from the plaintext evaluator".into());
                        }
                        *done += 1;
                        if *done == pushes {
                            live.swap_remove(k);
                        }
                    }
                    for (s, _, _) in open {
                        client.close(s).map_err(|e| e.to_string())?;
                    }
                    Ok((lat, symbols))
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or_else(|_| Err("a client thread panicked".into()))).collect()
    });
    let seconds = start.elapsed().as_secs_f64();
    let (mut lat, mut symbols) = (Vec::new(), 0usize);
    for r in results {
        let (l, n) = r?;
        lat.extend(l);
        symbols += n;
    }
    let latency = latency_ms(&lat);
    eprintln!(
        "pmsm bench: streaming: {sessions} sessions × {pushes} pushes of 1-20 symbols: {:.0} transitions/s, push p50 {:.2} ms, p99 {:.2} ms",
        symbols as f64 / seconds,
        latency["p50"].as_f64().unwrap_or(0.0),
        latency["p99"].as_f64().unwrap_or(0.0)
    );
    Ok(json!({
        "sessions": sessions,
        "pushes_per_session": pushes,
        "transitions": symbols,
        "seconds": seconds,
        "transitions_per_sec": symbols as f64 / seconds.max(1e-12),
        "push_latency_ms": latency,
        "verified": true,
    }))
}

fn expected(dfa: &Dfa, reveal: Reveal, state: u32) -> (Option<u32>, Option<bool>) {
    match reveal {
        Reveal::State => (Some(state), None),
        Reveal::Accept => (None, Some(dfa.is_accepting(state))),
    }
}
