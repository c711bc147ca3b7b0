//! `pmsm comm`: measured bits per transition per link for every protocol at one size,
//! beside the seed's analytical table (DESIGN §2), and the NFA path's row for a rule set.
//!
//! Like with like: the seed's totals include its dealer's Beaver triples, so ours
//! include the dealer's correlations. Per transition: client = client → servers,
//! online = server ↔ server (both directions), offline = dealer → servers (both),
//! output = servers → client amortised over the run; rounds = sequential server ↔
//! server rounds per transition.
//!
//! The NFA path's row ([`measure_nfa`]) is per input byte (a transition of one text):
//! [`NFA_TEXTS`] texts of [`NFA_TEXT_LEN`] random bytes run privately through the
//! rules' circuit, every hit checked against `regex::bytes`, each link's bytes from the
//! transport's counters and the rounds from the frames server 0 sends server 1.

use pmsm_engine::dfa::Dfa;
use pmsm_engine::dfa::random::random_input;
use pmsm_engine::nfa::circuit::Program;
use pmsm_engine::nfa::{NfaConfig, NfaSet, protocol as nfa_protocol};
use pmsm_engine::protocol::{ClassMode, Protocol, ProtocolError, Reveal};
use pmsm_engine::transport::Link;
use pmsm_engine::{Engine, Report};
use pmsm_kernels::rng::{RngCore, WorkloadRng};
use serde_json::{Value, json};

/// The seed's table at its own scale (1024 states, 8-bit symbols), as printed.
const SEED_NAIVE_TOTAL: u64 = 26_214_416;
const SEED_OPTIMISED_TOTAL: u64 = 156_512;

/// The seed's totals: its printed table at 1024 × 256, otherwise its formulas
/// (naive: 2·log2|Σ| + 100·|S|·|Σ|; optimised: 2|Σ| + 100·(|S| + 2|Σ|)).
fn seed_totals(states: usize, symbols: usize) -> (u64, u64) {
    if (states, symbols) == (1024, 256) {
        return (SEED_NAIVE_TOTAL, SEED_OPTIMISED_TOTAL);
    }
    let (s, a) = (states as u64, symbols as u64);
    let kab = u64::from(pmsm_engine::dfa::ceil_log2(symbols).max(1));
    (2 * kab + 100 * s * a, 2 * a + 100 * (s + 2 * a))
}

fn per_transition(r: &Report, steps: usize) -> Value {
    let t = r.transitions.max(1) as f64;
    let sum = |links: &[Link]| links.iter().map(|l| r.bytes.get(*l) * 8).sum::<u64>() as f64 / t;
    let client = sum(&[Link::ClientToS0, Link::ClientToS1]);
    let online = sum(&[Link::S0ToS1, Link::S1ToS0]);
    let offline = sum(&[Link::DealerToS0, Link::DealerToS1]);
    let output = sum(&[Link::S0ToClient, Link::S1ToClient]);
    json!({
        "client_bits": client,
        "online_bits": online,
        "offline_bits": offline,
        "output_bits": output,
        "total_bits": client + online + offline + output,
        "rounds": r.rounds as f64 / steps.max(1) as f64,
    })
}

/// Instances measured per protocol: enough to amortise framing, few enough for the
/// seed's protocols at large sizes.
fn batch(protocol: Protocol, dfa: &Dfa) -> usize {
    let table = dfa.states() * dfa.symbols();
    match protocol {
        Protocol::LookupXor => 1024,
        Protocol::LookupRing => (1 << 22) / table.max(1 << 12),
        Protocol::SeedDpf => (1 << 16) / table.max(1 << 12),
        Protocol::Naive => (1 << 14) / table.max(1 << 12),
    }
    .max(2)
}

/// Measures every protocol on `dfa` (`steps` symbols per instance). A protocol that
/// cannot take a machine of this size is skipped, with the reason in `skipped` and in
/// the notes.
pub fn measure(dfa: &Dfa, steps: usize) -> Result<Value, String> {
    let mut protocols = serde_json::Map::new();
    let mut skipped = serde_json::Map::new();
    let mut notes = Vec::new();
    for protocol in [Protocol::Naive, Protocol::SeedDpf, Protocol::LookupRing, Protocol::LookupXor] {
        let b = batch(protocol, dfa);
        let built = Engine::builder(dfa.clone())
            .protocol(protocol)
            .reveal(Reveal::State)
            .classes(ClassMode::Auto)
            .chunk(b)
            .build();
        let engine = match built {
            Ok(e) => e,
            Err(pmsm_engine::Error::Protocol(e @ (ProtocolError::TooLarge { .. } | ProtocolError::Parameter(_)))) => {
                notes.push(format!("{protocol}: skipped, {e}"));
                skipped.insert(protocol.name().to_string(), json!(e.to_string()));
                continue;
            }
            Err(e) => return Err(format!("{protocol}: {e}")),
        };
        let mut rng = WorkloadRng::seed_from_u64(1);
        let inputs: Vec<Vec<u32>> = (0..b).map(|_| random_input(dfa.symbols(), steps, &mut rng)).collect();
        let r = engine.run(&inputs).map_err(|e| format!("{protocol}: {e}"))?;
        for (o, i) in r.outputs.iter().zip(&inputs) {
            if o.final_state != Some(dfa.run(i)) {
                return Err(format!("{protocol}: an output differs from the plaintext evaluator"));
            }
        }
        let v = per_transition(&r, steps);
        notes.push(match (protocol, engine.poly_plan(), engine.plan()) {
            (Protocol::Naive, Some(p), _) => format!(
                "naive: {} Beaver multiplications per transition ({} rounds), each 2 × 16-bit openings each way online and 3 × 16-bit triple shares per server offline; the seed prices elements at 10 bits and its formula as written gives 100·|S|·|Σ|",
                p.mults_per_transition(),
                p.rounds_per_transition()
            ),
            (Protocol::SeedDpf, Some(p), _) => format!(
                "seed-dpf: {} multiplications per transition (|S|−2 powers + one per symbol; the seed spends two per symbol), and the client sends tree-DPF keys over 2^{} points instead of the seed's |Σ| field elements per server",
                p.mults_per_transition(),
                p.ka
            ),
            (_, _, Some(plan)) => format!(
                "{protocol}: not in the seed; one round, {} bits each way online (n = ks + kx{}), the dealer's DPF key and mask are what remains",
                plan.step_bits(),
                plan.classes.as_ref().map_or(String::new(), |c| format!(", {} symbol classes, plus one class lookup per symbol", c.count))
            ),
            _ => String::new(),
        });
        protocols.insert(protocol.name().to_string(), v);
    }
    if protocols.is_empty() {
        return Err(format!("no protocol can take a machine of this size ({})", notes.join("; ")));
    }
    let (naive, optimised) = seed_totals(dfa.states(), dfa.symbols());
    Ok(json!({
        "states": dfa.states(),
        "symbols": dfa.symbols(),
        "steps": steps,
        "protocols": protocols,
        "skipped": skipped,
        "seed": {"naive_total_bits": naive, "optimised_total_bits": optimised},
        "notes": notes,
    }))
}

/// The NFA row's rules when `--rules` is not given: three DLP rules (AWS key id, US SSN
/// shape, PEM header; `datasets/dlp/rules.txt`), a small set with counted repetitions,
/// a word boundary and an alternation.
pub const DEFAULT_NFA_RULES: [&str; 3] = [
    "(?:AKIA|ASIA)[0-9A-Z]{16}",
    "\\b[0-9]{3}-[0-9]{2}-[0-9]{4}\\b",
    "-----BEGIN (?:RSA |EC |DSA |OPENSSH )?PRIVATE KEY-----",
];

/// Texts of the NFA row's run: four full 64-instance words, so no lane idles.
pub const NFA_TEXTS: usize = 256;

/// Bytes of each text of the NFA row's run: the first step and the release (with fewer
/// ANDs than a step) weigh `2 / NFA_TEXT_LEN` of the figures.
pub const NFA_TEXT_LEN: usize = 64;

/// The NFA path's row: `patterns` (named by `source` in the output) run privately on
/// [`NFA_TEXTS`] random texts of [`NFA_TEXT_LEN`] bytes; measured bits per input byte on
/// every link, rounds per step (server 0's frames to server 1 over the steps: the
/// symbol-lookup round and the release amortised), beside the circuit's own counts.
pub fn measure_nfa(patterns: &[String], source: &str) -> Result<Value, String> {
    let set = NfaSet::compile(patterns, &NfaConfig::default()).map_err(|e| format!("the NFA row's rules: {e}"))?;
    let program = Program::new(&set);
    let mut rng = WorkloadRng::seed_from_u64(1);
    let texts: Vec<Vec<u8>> = (0..NFA_TEXTS)
        .map(|_| {
            let mut t = vec![0u8; NFA_TEXT_LEN];
            rng.fill_bytes(&mut t);
            t
        })
        .collect();
    let refs: Vec<&[u8]> = texts.iter().map(Vec::as_slice).collect();
    let (tx, rx) = crossbeam_channel::unbounded();
    let r = nfa_protocol::run(&program, &refs, Some((Link::S0ToS1, tx))).map_err(|e| format!("NFA path: {e}"))?;
    let frames = rx.try_iter().count();
    for (k, p) in patterns.iter().enumerate() {
        let re = regex::bytes::Regex::new(&format!("(?-u){p}")).map_err(|e| format!("{p}: {e}"))?;
        if refs.iter().zip(&r.hits).any(|(t, h)| h[k] != re.is_match(t)) {
            return Err(format!("NFA path: rule {} differs from regex::bytes", k + 1));
        }
    }
    let bytes = (NFA_TEXTS * NFA_TEXT_LEN) as f64;
    let per_byte = |l: Link| r.link_bytes(l) as f64 * 8.0 / bytes;
    let links: serde_json::Map<String, Value> =
        Link::ALL.iter().map(|l| (l.name().to_string(), json!(per_byte(*l)))).collect();
    let sum = |ls: &[Link]| ls.iter().map(|l| per_byte(*l)).sum::<f64>();
    let (client, online, offline, output) = (
        sum(&[Link::ClientToS0, Link::ClientToS1]),
        sum(&[Link::S0ToS1, Link::S1ToS0]),
        sum(&[Link::DealerToS0, Link::DealerToS1]),
        sum(&[Link::S0ToClient, Link::S1ToClient]),
    );
    let cost = program.cost();
    Ok(json!({
        "rules": source,
        "patterns": patterns,
        "texts": NFA_TEXTS,
        "text_bytes": NFA_TEXT_LEN,
        "bits_per_byte": links,
        "client_bits": client,
        "online_bits": online,
        "offline_bits": offline,
        "output_bits": output,
        "total_bits": client + online + offline + output,
        "rounds": frames as f64 / NFA_TEXT_LEN as f64,
        "circuit": {"ands_per_step": cost.ands[1], "and_layers_per_step": cost.rounds[1],
            "ands": cost.ands, "and_layers": cost.rounds, "positions": cost.positions, "classes": cost.classes},
        "verified": true,
    }))
}

/// The readable table.
pub fn text(v: &Value) -> String {
    let mut s = format!(
        "pmsm comm — measured bits per transition, |S| = {}, |Σ| = {} ({} steps per instance)\n{:<12} {:>10} {:>12} {:>12} {:>8} {:>12} {:>7}  seed naive ÷ total, seed optimised ÷ total\n",
        v["states"], v["symbols"], v["steps"], "protocol", "client", "online", "offline", "output", "total", "rounds"
    );
    let (naive, opt) = (
        v["seed"]["naive_total_bits"].as_f64().unwrap_or(0.0),
        v["seed"]["optimised_total_bits"].as_f64().unwrap_or(0.0),
    );
    for (name, p) in v["protocols"].as_object().into_iter().flatten() {
        let f = |k: &str| p[k].as_f64().unwrap_or(0.0);
        s.push_str(&format!(
            "{name:<12} {:>10.1} {:>12.1} {:>12.1} {:>8.2} {:>12.1} {:>7.1}  {:.1}×, {:.2}×\n",
            f("client_bits"),
            f("online_bits"),
            f("offline_bits"),
            f("output_bits"),
            f("total_bits"),
            f("rounds"),
            naive / f("total_bits"),
            opt / f("total_bits"),
        ));
    }
    if let Some(p) = v.get("nfa") {
        let f = |k: &str| p[k].as_f64().unwrap_or(0.0);
        s.push_str(&format!(
            "{:<12} {:>10.1} {:>12.1} {:>12.1} {:>8.2} {:>12.1} {:>7.2}  (per input byte of a rule set)\n",
            "nfa-path",
            f("client_bits"),
            f("online_bits"),
            f("offline_bits"),
            f("output_bits"),
            f("total_bits"),
            f("rounds"),
        ));
    }
    s.push_str(&format!("seed (analytical totals): naive {naive:.0}, optimised {opt:.0}\n"));
    for n in v["notes"].as_array().into_iter().flatten() {
        s.push_str(&format!("- {}\n", n.as_str().unwrap_or("")));
    }
    if let Some(p) = v.get("nfa") {
        let c = &p["circuit"];
        s.push_str(&format!(
            "- nfa-path: {} ({} patterns, {} positions, {} symbol classes) on {} random texts of {} bytes, every hit checked against regex::bytes; the circuit has {} ANDs in {} layers a step (2 bits per AND each way between the servers, one c bit per AND from the dealer to server 1); rounds = server 0's frames to server 1 per step, the symbol-lookup round and the release included. Bits per input byte, per link:\n",
            p["rules"].as_str().unwrap_or(""),
            p["patterns"].as_array().map_or(0, Vec::len),
            c["positions"],
            c["classes"],
            p["texts"],
            p["text_bytes"],
            c["ands_per_step"],
            c["and_layers_per_step"],
        ));
        for (name, x) in p["bits_per_byte"].as_object().into_iter().flatten() {
            s.push_str(&format!("    {name:<14} {:>12.1}\n", x.as_f64().unwrap_or(0.0)));
        }
    }
    s
}
