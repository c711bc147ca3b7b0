//! The lookup protocols end to end: against the plaintext evaluator, statistically
//! private in what a server receives, exact in their online payload, and clear in
//! their errors.

use crate::ab;
use pmsm_engine::dfa::Dfa;
use pmsm_engine::dfa::random::{random_dfa, random_input};
use pmsm_engine::protocol::wire::{HEADER, TAG_OPENINGS};
use pmsm_engine::protocol::{ClassMode, Protocol, Reveal};
use pmsm_engine::transport::Link;
use pmsm_engine::{Engine, Error};
use pmsm_kernels::rng::WorkloadRng;

fn check(dfa: &Dfa, inputs: &[Vec<u32>], protocol: Protocol, reveal: Reveal, classes: ClassMode, chunk: usize) {
    let engine = Engine::builder(dfa.clone())
        .protocol(protocol)
        .reveal(reveal)
        .classes(classes)
        .chunk(chunk)
        .threads(2)
        .build()
        .unwrap();
    let report = engine.run(inputs).unwrap();
    assert_eq!(report.outputs.len(), inputs.len());
    assert_eq!(report.transitions, inputs.iter().map(Vec::len).sum::<usize>());
    for (i, (o, input)) in report.outputs.iter().zip(inputs).enumerate() {
        let want = dfa.run(input);
        let ctx =
            format!("{protocol} {reveal} {classes:?} chunk {chunk} instance {i} ({} symbols, {dfa:?})", input.len());
        assert_eq!(o.symbols, input.len(), "{ctx}");
        match reveal {
            Reveal::State => assert_eq!((o.final_state, o.accept), (Some(want), None), "{ctx}"),
            Reveal::Accept => assert_eq!((o.final_state, o.accept), (None, Some(dfa.is_accepting(want))), "{ctx}"),
        }
    }
}

#[test]
fn equals_the_plaintext_evaluator_on_random_machines() {
    let mut rng = WorkloadRng::seed_from_u64(2026);
    let modes = [ClassMode::Auto, ClassMode::On, ClassMode::Off];
    for case in 0..48 {
        let states = 1 + rng.below(300) as usize;
        let symbols = 1 + rng.below(40) as usize;
        let dfa = random_dfa(states, symbols, &mut rng);
        let batch = 1 + rng.below(100) as usize;
        let inputs: Vec<Vec<u32>> = (0..batch)
            .map(|_| {
                let len = if rng.below(5) == 0 { 0 } else { rng.below(201) as usize };
                random_input(symbols, len, &mut rng)
            })
            .collect();
        let protocol = if case % 2 == 0 { Protocol::LookupXor } else { Protocol::LookupRing };
        let reveal = if (case / 2) % 2 == 0 { Reveal::State } else { Reveal::Accept };
        let chunk = 1 + rng.below(64) as usize;
        check(&dfa, &inputs, protocol, reveal, modes[case % 3], chunk);
    }
    // 300 of 512 state rows live at n = 15: the table read skips the zero tail
    // (Table::Xor's live words) at every mask.
    let dfa = random_dfa(300, 40, &mut rng);
    let inputs: Vec<Vec<u32>> = (0..40).map(|_| random_input(40, 30, &mut rng)).collect();
    check(&dfa, &inputs, Protocol::LookupXor, Reveal::State, ClassMode::Off, 16);
}

#[test]
fn machines_with_few_symbol_classes_use_them() {
    // A byte machine (256 symbols) compiled from a regex has a handful of classes.
    let dfa = pmsm_engine::dfa::regex::compile(&["ab+c".into(), "x[0-9]{2}".into()], &Default::default()).unwrap();
    let engine = Engine::builder(dfa.clone()).build().unwrap();
    assert!(engine.plan().unwrap().classes.is_some());
    let texts: Vec<&[u8]> = vec![b"zzabbbc", b"x1", b"x12", b"", b"abc x99", b"ac"];
    let inputs: Vec<Vec<u32>> = texts.iter().enumerate().map(|(i, t)| dfa.encode(t, i).unwrap()).collect();
    for protocol in [Protocol::LookupXor, Protocol::LookupRing] {
        for reveal in [Reveal::State, Reveal::Accept] {
            check(&dfa, &inputs, protocol, reveal, ClassMode::Auto, 2);
        }
    }
}

#[test]
fn seed_machine_gives_three_after_aaa() {
    for protocol in [Protocol::LookupXor, Protocol::LookupRing] {
        let engine = Engine::builder(ab()).protocol(protocol).build().unwrap();
        let r = engine.run_texts(&["aaa", "ab", ""]).unwrap();
        let finals: Vec<Option<u32>> = r.outputs.iter().map(|o| o.final_state).collect();
        assert_eq!(finals, vec![Some(3), Some(1), Some(0)], "{protocol}");
    }
}

/// The opened values of every opening frame seen on a link.
pub fn openings(frames: &[Vec<u8>], width: u32) -> Vec<u64> {
    let mut out = Vec::new();
    for f in frames.iter().filter(|f| f[0] == TAG_OPENINGS) {
        let count = u32::from_le_bytes(f[5..9].try_into().unwrap()) as usize;
        out.extend(pmsm_engine::protocol::bits::unpack(&f[HEADER..], width, count).unwrap());
    }
    out
}

pub fn histogram(values: &[u64], bins: usize) -> Vec<f64> {
    let mut h = vec![0.0; bins];
    for v in values {
        h[*v as usize] += 1.0;
    }
    h
}

/// Pearson's statistic against the uniform distribution.
pub fn chi_square_uniform(h: &[f64]) -> f64 {
    let n: f64 = h.iter().sum();
    let e = n / h.len() as f64;
    h.iter().map(|o| (o - e) * (o - e) / e).sum()
}

/// Pearson's statistic of homogeneity between two samples.
pub fn chi_square_two_sample(a: &[f64], b: &[f64]) -> f64 {
    let (na, nb): (f64, f64) = (a.iter().sum(), b.iter().sum());
    a.iter()
        .zip(b)
        .filter(|(x, y)| *x + *y > 0.0)
        .map(|(x, y)| {
            let (ea, eb) = ((x + y) * na / (na + nb), (x + y) * nb / (na + nb));
            (x - ea).powi(2) / ea + (y - eb).powi(2) / eb
        })
        .sum()
}

#[test]
fn what_a_server_receives_is_uniform_and_independent_of_the_input() {
    // The seed's machine: n = ks + ka = 3, so openings live in Z_8 (7 degrees of
    // freedom). Two fixed inputs, many instances. The 0.01 % critical value, 29.88,
    // keeps the suite's false alarms rare; a leak moves the statistic far past it.
    const CRITICAL_7_DOF: f64 = 29.88;
    for protocol in [Protocol::LookupXor, Protocol::LookupRing] {
        let engine = Engine::builder(ab())
            .protocol(protocol)
            .classes(ClassMode::Off)
            .reveal(Reveal::Accept)
            .chunk(4000)
            .build()
            .unwrap();
        let n = engine.plan().unwrap().step_bits();
        assert_eq!(n, 3);
        let sample = |text: &[u8]| {
            let inputs = vec![ab().encode(text, 0).unwrap(); 4000];
            let (_, frames) = engine.run_observed(&inputs, Link::S0ToS1).unwrap();
            // Step openings only (3 bits); the final accept round opens 2-bit indices.
            let f: Vec<Vec<u8>> =
                frames.into_iter().filter(|f| f.len() == HEADER + (4000 * 3usize).div_ceil(8)).collect();
            openings(&f, n)
        };
        let (x, y) = (sample(b"ab"), sample(b"bb"));
        assert_eq!(x.len(), 8000);
        let (hx, hy) = (histogram(&x, 8), histogram(&y, 8));
        let (ux, uy, two) = (chi_square_uniform(&hx), chi_square_uniform(&hy), chi_square_two_sample(&hx, &hy));
        assert!(ux < CRITICAL_7_DOF && uy < CRITICAL_7_DOF, "{protocol}: openings not uniform: {ux:.1}, {uy:.1}");
        assert!(two < CRITICAL_7_DOF, "{protocol}: openings depend on the input: {two:.1}");
        // The test can fail: openings of the unmasked index would be constant.
        let unmasked: Vec<f64> = vec![8000.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0];
        assert!(chi_square_uniform(&unmasked) > CRITICAL_7_DOF);
    }
}

#[test]
fn client_shares_are_uniform() {
    // Server 0's symbol shares of "aaaa…" (ka = 1 bit) are fair coins.
    let engine = Engine::builder(ab()).classes(ClassMode::Off).build().unwrap();
    let (_, frames) = engine.run_observed(&[vec![0u32; 20_000]], Link::ClientToS0).unwrap();
    let f = &frames[0];
    let bits: u32 = f[HEADER + 4..].iter().map(|b| b.count_ones()).sum();
    // 20,000 fair bits: mean 10,000, sd ~71; 5 sd bounds.
    assert!((10_000 - 355..=10_000 + 355).contains(&bits), "{bits} ones");
}

#[test]
fn online_payload_is_n_bits_per_transition_per_server() {
    let mut rng = WorkloadRng::seed_from_u64(9);
    let dfa = random_dfa(64, 256, &mut rng);
    let engine = Engine::builder(dfa).classes(ClassMode::Off).chunk(4096).build().unwrap();
    let n = u64::from(engine.plan().unwrap().step_bits());
    assert_eq!(n, 14);
    let inputs: Vec<Vec<u32>> = (0..4096).map(|_| random_input(256, 10, &mut rng)).collect();
    let r = engine.run(&inputs).unwrap();
    let rounds = r.rounds as u64;
    assert_eq!(rounds, 10);
    for link in [Link::S0ToS1, Link::S1ToS0] {
        let bytes = r.bytes.get(link);
        // Exactly the packed openings plus one 9-byte header per round.
        assert_eq!(bytes, rounds * (HEADER as u64 + 4096 * n / 8), "{link}");
        let per_transition = (bytes * 8) as f64 / r.transitions as f64;
        assert!(per_transition >= n as f64 && per_transition < n as f64 + 1.0, "{link}: {per_transition}");
    }
}

#[test]
fn bad_input_is_reported_not_panicked() {
    let engine = Engine::builder(ab()).build().unwrap();
    let e = engine.run_texts(&["ab", "aXb"]).unwrap_err();
    assert_eq!(e.to_string(), "input 1: symbol \"X\" at position 1 is not in the machine's alphabet");
    let e = engine.run(&[vec![0, 1, 2]]).unwrap_err();
    assert!(matches!(e, Error::Dfa(_)) && e.to_string().contains("position 2"), "{e}");
    // Empty inputs: the start state is the answer, and no round is run for them.
    let r = engine.run(&[vec![], vec![]]).unwrap();
    assert_eq!(r.outputs[0].final_state, Some(0));
    assert_eq!(r.rounds, 0);
    let r = engine.run(&[]).unwrap();
    assert!(r.outputs.is_empty());
    // Too large for the protocol: the limit is named.
    let big = random_dfa(1 << 13, 1024, &mut WorkloadRng::seed_from_u64(1));
    let e = Engine::builder(big).protocol(Protocol::LookupRing).classes(ClassMode::Off).build().unwrap_err();
    assert!(e.to_string().contains("lookup-ring supports lookup domains up to 2^22"), "{e}");
    assert!(Engine::builder(ab()).chunk(0).build().is_err());
    // Past what a schedule can number: refused before any work, naming the instance.
    let e = engine.predeal(&[3, (u32::MAX as usize) + 1]).map(|_| ()).unwrap_err();
    assert_eq!(e.to_string(), "invalid parameter: instance 1 has 4294967296 symbols; at most 4294967295");
}

#[test]
fn a_failing_party_is_a_clear_error() {
    use pmsm_engine::party::{server, sharing::Xor};
    use pmsm_engine::protocol::plan::{Plan, Schedule};
    use pmsm_engine::transport::inproc::network;
    use pmsm_kernels::Party;
    let plan = Plan::new(&ab(), Protocol::LookupXor, Reveal::State, ClassMode::Off).unwrap();
    let plan = pmsm_engine::protocol::set::SetPlan::single(plan);
    let schedule = Schedule::new(&plan, &[3], 4);
    let net = network(4, 4, None);
    let [s0, _s1] = net.servers;
    let (mut client, mut dealer) = (net.client, net.dealer);
    let frames = pmsm_engine::party::client::share_inputs::<Xor>(
        &plan,
        &schedule,
        &[vec![0, 0, 0]],
        &mut pmsm_kernels::rng::SecretRng::from_os(),
    );
    client.to_server[0].send(frames[0][0].clone()).unwrap();
    // A truncated correlation frame from the "dealer".
    dealer.to_server[0].send(vec![2, 0, 0]).unwrap();
    let e = server::run_server::<Xor>(Party::P0, &plan, &schedule, s0, None).unwrap_err();
    assert!(e.to_string().starts_with("bad frame on dealer_to_s0: 3 bytes is shorter than the 9-byte header"), "{e}");
    // A dealer that vanishes mid-run.
    let net = network(4, 4, None);
    let [s0, _s1] = net.servers;
    let mut client = net.client;
    client.to_server[0].send(frames[0][0].clone()).unwrap();
    drop(net.dealer);
    let e = server::run_server::<Xor>(Party::P0, &plan, &schedule, s0, None).unwrap_err();
    assert_eq!(e.to_string(), "link dealer_to_s0: the peer disconnected");
}

/// The NFA path (DESIGN §8): what server 1 receives from server 0 — the symbol
/// openings `a ⊕ r` and every AND layer's `d`, `e` — as bytes.
#[test]
fn what_a_server_receives_on_the_nfa_path_is_uniform_and_independent_of_the_input() {
    use pmsm_engine::nfa::circuit::Program;
    use pmsm_engine::nfa::protocol::{HEAD, TAG_AND, TAG_SYMBOLS, run};
    use pmsm_engine::nfa::{NfaConfig, NfaSet};
    // 255 degrees of freedom: the 0.1 % critical value is 330.5.
    const CRITICAL_255_DOF: f64 = 330.5;
    let set = NfaSet::compile(&["ab+c".into(), "\\bx[0-9]{3}".into(), "^a|c$".into()], &NfaConfig::default()).unwrap();
    let program = Program::new(&set);
    // Two inputs of the same lengths, one all matches, one none.
    let observe = |text: &[u8]| {
        let texts: Vec<&[u8]> = vec![text; 1000];
        let (tx, rx) = crossbeam_channel::unbounded();
        let report = run(&program, &texts, Some((Link::S0ToS1, tx))).unwrap();
        let frames: Vec<Vec<u8>> = rx.try_iter().collect();
        assert!(frames.iter().all(|f| f[0] == TAG_SYMBOLS || f[0] == TAG_AND));
        (report, frames.iter().flat_map(|f| f[HEAD..].to_vec()).collect::<Vec<u8>>())
    };
    let bytes = |b: &[u8]| histogram(&b.iter().map(|&x| u64::from(x)).collect::<Vec<_>>(), 256);
    let (ra, a) = observe(b"abbbc x123 a abc");
    let (rb, b) = observe(b"zzzzzzzzzzzzzzzz");
    assert!(ra.hits.iter().all(|h| h == &vec![true, true, true]));
    assert!(rb.hits.iter().all(|h| h == &vec![false, false, false]));
    assert_eq!(a.len(), b.len(), "what travels depends on the lengths only");
    assert!(a.len() > 50_000, "{} bytes observed", a.len());
    let (ha, hb) = (bytes(&a), bytes(&b));
    let (ua, ub, two) = (chi_square_uniform(&ha), chi_square_uniform(&hb), chi_square_two_sample(&ha, &hb));
    assert!(ua < CRITICAL_255_DOF && ub < CRITICAL_255_DOF, "openings not uniform: {ua:.1}, {ub:.1}");
    assert!(two < CRITICAL_255_DOF, "openings depend on the input: {two:.1}");
    // The statistic can fail: the unmasked text bytes are far from uniform.
    let plain: Vec<u8> = b"abbbc x123 a abc".repeat(8000);
    assert!(chi_square_uniform(&bytes(&plain)) > CRITICAL_255_DOF);
    // And each opened bit is a fair coin: ones within 5 sd of half.
    let ones: u64 = a.iter().map(|x| u64::from(x.count_ones())).sum();
    let n = 8.0 * a.len() as f64;
    assert!((ones as f64 - n / 2.0).abs() < 5.0 * (n / 4.0).sqrt(), "{ones} ones of {n}");
}
