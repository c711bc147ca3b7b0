//! Criterion benches of one protocol step per protocol: 1024 instances of a random
//! 64 × 256 machine advance by one symbol, all four parties in this process (each
//! party on its own thread; dealer included).
//!
//! ```sh
//! cargo bench -p pmsm-bench --bench protocol
//! ```

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use pmsm_engine::Engine;
use pmsm_engine::dfa::random::{random_dfa, random_input};
use pmsm_engine::protocol::{ClassMode, Protocol};
use pmsm_kernels::rng::WorkloadRng;

fn lookup_online_step(c: &mut Criterion) {
    let mut rng = WorkloadRng::seed_from_u64(1);
    let dfa = random_dfa(64, 256, &mut rng);
    let inputs: Vec<Vec<u32>> = (0..1024).map(|_| random_input(256, 1, &mut rng)).collect();
    let mut g = c.benchmark_group("lookup_step");
    g.throughput(Throughput::Elements(1024));
    for protocol in [Protocol::LookupXor, Protocol::LookupRing] {
        let engine = Engine::builder(dfa.clone()).protocol(protocol).classes(ClassMode::Off).build().unwrap();
        g.bench_function(protocol.name(), |b| b.iter(|| engine.run(&inputs).unwrap()));
    }
    g.finish();
}

criterion_group!(benches, lookup_online_step);
criterion_main!(benches);
