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

/// A server's symbol-class read for one round of 1,024 lookups at the DLP rules' size
/// (2^8 symbols, 5 class bits): the table's permuted copies against the kernel's
/// per-lookup permutation.
fn class_table_read(c: &mut Criterion) {
    use pmsm_engine::protocol::plan::Table;
    let mut rng = WorkloadRng::seed_from_u64(2);
    let table = Table::build(Protocol::LookupXor, 8, 5, |a| (a as u64 * 7) % 30);
    let ts: Vec<u64> = (0..4 * 1024).map(|_| rng.below(u64::MAX)).collect();
    let us: Vec<u64> = (0..1024).map(|_| rng.below(256)).collect();
    let mut out = vec![0u64; 1024];
    let mut g = c.benchmark_group("class_read");
    g.throughput(Throughput::Elements(1024));
    g.bench_function("permuted_copies_1024_n8_ks5", |b| b.iter(|| table.lookup_xor_batch(&ts, &us, &mut out)));
    g.bench_function("kernel_1024_n8_ks5", |b| {
        b.iter(|| {
            for ((t, &u), o) in ts.chunks_exact(4).zip(&us).zip(out.iter_mut()) {
                *o = table.lookup_xor(t, u);
            }
        })
    });
    g.finish();
}

criterion_group!(benches, lookup_online_step, class_table_read);
criterion_main!(benches);
