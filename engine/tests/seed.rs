//! The seed's protocols (naive, seed-dpf): against the plaintext evaluator, and their
//! measured rounds against the documented schedule.

use crate::ab;
use pmsm_engine::Engine;
use pmsm_engine::dfa::random::{random_dfa, random_input};
use pmsm_engine::poly::plan::PowerSchedule;
use pmsm_engine::protocol::{Protocol, Reveal};
use pmsm_engine::transport::Link;
use pmsm_kernels::rng::WorkloadRng;

#[test]
fn equal_the_plaintext_evaluator_on_random_machines() {
    let mut rng = WorkloadRng::seed_from_u64(77);
    for case in 0..24 {
        let dfa = random_dfa(1 + rng.below(40) as usize, 1 + rng.below(12) as usize, &mut rng);
        let batch = 1 + rng.below(12) as usize;
        let inputs: Vec<Vec<u32>> =
            (0..batch).map(|_| random_input(dfa.symbols(), rng.below(9) as usize, &mut rng)).collect();
        let protocol = if case % 2 == 0 { Protocol::Naive } else { Protocol::SeedDpf };
        let reveal = if (case / 2) % 2 == 0 { Reveal::State } else { Reveal::Accept };
        let powers = if (case / 4) % 2 == 0 { PowerSchedule::Doubling } else { PowerSchedule::Sequential };
        let engine = Engine::builder(dfa.clone())
            .protocol(protocol)
            .reveal(reveal)
            .powers(powers)
            .full_length_keys(case % 3 == 0)
            .chunk(1 + rng.below(5) as usize)
            .build()
            .unwrap();
        let r = engine.run(&inputs).unwrap();
        for (i, (o, input)) in r.outputs.iter().zip(&inputs).enumerate() {
            let want = dfa.run(input);
            let ctx = format!("case {case} {protocol} {reveal} {powers:?} instance {i} ({dfa:?})");
            match reveal {
                Reveal::State => assert_eq!(o.final_state, Some(want), "{ctx}"),
                Reveal::Accept => assert_eq!(o.accept, Some(dfa.is_accepting(want)), "{ctx}"),
            }
        }
    }
}

#[test]
fn seed_machine_gives_three_after_aaa() {
    for protocol in [Protocol::Naive, Protocol::SeedDpf] {
        let r = Engine::builder(ab()).protocol(protocol).build().unwrap().run_texts(&["aaa"]).unwrap();
        assert_eq!(r.outputs[0].final_state, Some(3), "{protocol}");
    }
}

#[test]
fn measured_rounds_follow_the_schedule() {
    // One instance, one symbol: every round is one frame each way.
    let mut rng = WorkloadRng::seed_from_u64(5);
    let dfa = random_dfa(20, 6, &mut rng);
    for (protocol, powers, want_rounds, want_mults) in [
        // Powers s^2..s^19 by doubling: ⌈log2 19⌉ = 5 rounds (a^2..a^5 fit in 3), then the cross products.
        (Protocol::Naive, PowerSchedule::Doubling, 5 + 1, 18 + 4 + 19 * 5),
        (Protocol::Naive, PowerSchedule::Sequential, 18 + 1, 18 + 4 + 19 * 5),
        // seed-dpf: powers of s, then one multiplication per symbol.
        (Protocol::SeedDpf, PowerSchedule::Doubling, 5 + 1, 18 + 6),
        (Protocol::SeedDpf, PowerSchedule::Sequential, 18 + 1, 18 + 6),
    ] {
        let engine = Engine::builder(dfa.clone()).protocol(protocol).powers(powers).build().unwrap();
        let plan = engine.poly_plan().unwrap();
        assert_eq!(
            (plan.rounds_per_transition(), plan.mults_per_transition()),
            (want_rounds, want_mults),
            "{protocol} {powers:?}"
        );
        let r = engine.run(&[vec![1]]).unwrap();
        assert_eq!(r.rounds, want_rounds, "{protocol} {powers:?}");
        // Each multiplication opens 2 elements of 16 bits each way; 9-byte header per round.
        assert_eq!(r.bytes.get(Link::S0ToS1), (want_mults * 4 + want_rounds * 9) as u64, "{protocol} {powers:?}");
        // The dealer sends 3 elements per multiplication to each server.
        assert_eq!(r.bytes.get(Link::DealerToS1), (want_mults * 6 + want_rounds * 9) as u64, "{protocol} {powers:?}");
    }
}

#[test]
fn oversized_machines_are_refused() {
    let big = random_dfa(2048, 256, &mut WorkloadRng::seed_from_u64(1));
    let e = Engine::builder(big).protocol(Protocol::Naive).build().unwrap_err();
    assert!(e.to_string().contains("naive supports |S|·|Σ| up to 262144"), "{e}");
}
