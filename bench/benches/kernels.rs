//! Criterion benches of the kernels, named `<primitive>_<phase>`, on the active backend
//! (`PMSM_BACKEND=… cargo bench` to pick another).
//!
//! ```sh
//! cargo bench -p pmsm-bench --bench kernels
//! ```

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use pmsm_kernels::dpf::{BitLeaf, Dpf, DpfKey, DpfKeyBatch, ReadWindow, RingLeaf, table};
use pmsm_kernels::prg::FixedKeyPrg;
use pmsm_kernels::rng::SecretRng;
use pmsm_kernels::{gf2, ring};
use std::hint::black_box;

fn prg(c: &mut Criterion) {
    let mut g = c.benchmark_group("prg_hash");
    let mut blocks: Vec<u128> = (0..4096).collect();
    g.throughput(Throughput::Elements(4096));
    g.bench_function("4096_blocks", |b| b.iter(|| FixedKeyPrg::get().hash_in_place(black_box(&mut blocks))));
    g.finish();
}

fn dpf(c: &mut Criterion) {
    let mut rng = SecretRng::from_os();
    let mut g = c.benchmark_group("dpf_full_eval");
    for n in [14u32, 20] {
        g.throughput(Throughput::Elements(1 << n));
        let [k, _] = Dpf::<BitLeaf>::keygen(n, 5, true, &mut rng).unwrap();
        let mut out = vec![BitLeaf::default(); k.leaves()];
        g.bench_with_input(BenchmarkId::new("bits", n), &n, |b, _| {
            b.iter(|| k.eval_full_into(black_box(&mut out)).unwrap())
        });
        let [k, _] = Dpf::<RingLeaf>::keygen(n, 5, 1, &mut rng).unwrap();
        let mut out = vec![RingLeaf::default(); k.leaves()];
        g.bench_with_input(BenchmarkId::new("u64", n), &n, |b, _| {
            b.iter(|| k.eval_full_into(black_box(&mut out)).unwrap())
        });
    }
    // Sixteen small trees expanded together (the server's grouping at N = 2^14).
    let points: Vec<(u64, bool)> = (0..16).map(|i| (i * 1000, true)).collect();
    let keys: Vec<DpfKey<BitLeaf>> =
        Dpf::<BitLeaf>::keygen_batch(14, &points, &mut rng).unwrap().into_iter().map(|[k, _]| k).collect();
    let mut out = vec![BitLeaf::default(); 16 * keys[0].leaves()];
    g.throughput(Throughput::Elements(16 << 14));
    g.bench_function("bits_many_16x14", |b| b.iter(|| DpfKey::eval_full_many(black_box(&keys), &mut out).unwrap()));
    // The server's group at the DLP rules' N = 2^15: eight keys.
    let keys: Vec<DpfKey<BitLeaf>> =
        Dpf::<BitLeaf>::keygen_batch(15, &points[..8], &mut rng).unwrap().into_iter().map(|[k, _]| k).collect();
    let mut out = vec![BitLeaf::default(); 8 * keys[0].leaves()];
    g.throughput(Throughput::Elements(8 << 15));
    g.bench_function("bits_many_8x15", |b| b.iter(|| DpfKey::eval_full_many(black_box(&keys), &mut out).unwrap()));
    // The same keys from a decoded batch, in full and windowed to what the DLP step
    // table's read reaches (25,088 of 32,768 outputs under each key's mask).
    let bytes: Vec<u8> = keys.iter().flat_map(DpfKey::to_bytes).collect();
    let batch = DpfKeyBatch::<BitLeaf>::decode(&bytes, 8, 15).unwrap();
    let masks: Vec<u64> = (0..8).map(|i| (i * 7919) % (1 << 15)).collect();
    g.bench_function("bits_batch_8x15", |b| b.iter(|| batch.eval_full_range(0..8, black_box(&mut out)).unwrap()));
    let window = ReadWindow { masks: &masks, live: 25_088 };
    g.bench_function("bits_window_8x15", |b| {
        b.iter(|| batch.eval_read_range(0..8, black_box(&mut out), window).unwrap())
    });
    // A round's symbol-class keys at the DLP rules' 2^8 symbols: 1,024 trees of two leaves.
    let points: Vec<(u64, bool)> = (0..1024).map(|i| (i % 256, true)).collect();
    let keys: Vec<DpfKey<BitLeaf>> =
        Dpf::<BitLeaf>::keygen_batch(8, &points, &mut rng).unwrap().into_iter().map(|[k, _]| k).collect();
    let mut out = vec![BitLeaf::default(); 1024 * keys[0].leaves()];
    g.throughput(Throughput::Elements(1024 << 8));
    g.bench_function("bits_many_1024x8", |b| b.iter(|| DpfKey::eval_full_many(black_box(&keys), &mut out).unwrap()));
    g.finish();

    let mut g = c.benchmark_group("dpf_keygen");
    let points: Vec<(u64, bool)> = (0..1024).map(|i| (i * 13, true)).collect();
    g.throughput(Throughput::Elements(1024));
    g.bench_function("batch_1024_n14", |b| {
        b.iter(|| Dpf::<BitLeaf>::keygen_batch(14, black_box(&points), &mut rng).unwrap())
    });
    // The dealer's path: encodings written straight into frame buffers.
    let len = DpfKey::<BitLeaf>::encoded_len(15);
    let mut frames = [vec![0u8; 1024 * len], vec![0u8; 1024 * len]];
    g.bench_function("into_1024_n15", |b| {
        b.iter(|| {
            let [f0, f1] = &mut frames;
            Dpf::<BitLeaf>::keygen_batch_into(15, black_box(&points), &mut rng, [f0, f1]).unwrap()
        })
    });
    // The DLP rules' symbol-class keys (2^8 points).
    let points8: Vec<(u64, bool)> = (0..1024).map(|i| (i * 13 % 256, true)).collect();
    let len8 = DpfKey::<BitLeaf>::encoded_len(8);
    let mut frames8 = [vec![0u8; 1024 * len8], vec![0u8; 1024 * len8]];
    g.bench_function("into_1024_n8", |b| {
        b.iter(|| {
            let [f0, f1] = &mut frames8;
            Dpf::<BitLeaf>::keygen_batch_into(8, black_box(&points8), &mut rng, [f0, f1]).unwrap()
        })
    });
    // What the dealer sends instead at that size: shares of the one-hot table.
    let table8 = table::table_len::<BitLeaf>(8).expect("a table is smaller at 2^8");
    let mut tables8 = [vec![0u8; 1024 * table8], vec![0u8; 1024 * table8]];
    g.bench_function("tables_1024_n8", |b| {
        b.iter(|| {
            let [f0, f1] = &mut tables8;
            table::deal_tables_into::<BitLeaf, _>(8, black_box(&points8), &mut rng, [f0, f1]).unwrap()
        })
    });
    g.finish();

    // A server decoding one dealer frame's keys (1,024 at n = 15).
    let mut g = c.benchmark_group("dpf_decode");
    g.throughput(Throughput::Elements(1024));
    let [f0, f1] = &mut frames;
    Dpf::<BitLeaf>::keygen_batch_into(15, &points, &mut rng, [f0, f1]).unwrap();
    let f0 = &frames[0];
    g.bench_function("batch_1024_n15", |b| b.iter(|| DpfKeyBatch::<BitLeaf>::decode(black_box(f0), 1024, 15).unwrap()));
    g.finish();
}

fn ring_dot(c: &mut Criterion) {
    let mut g = c.benchmark_group("ring_rotated_dot");
    for n in [4096usize, 1 << 16] {
        let t: Vec<u64> = (0..n as u64).map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15)).collect();
        let e: Vec<u64> = (0..n as u64).collect();
        g.throughput(Throughput::Elements(n as u64));
        g.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter(|| ring::rotated_dot(black_box(&t), 1234, black_box(&e)))
        });
    }
    g.finish();
}

fn parity(c: &mut Criterion) {
    let mut g = c.benchmark_group("gf2_permuted_parities");
    for (n, ks) in [(8u32, 5usize), (14, 6), (15, 10), (18, 10), (20, 12), (22, 14)] {
        let w = (1usize << n) / 64;
        let planes: Vec<u64> = (0..(ks * w) as u64).map(|i| i.wrapping_mul(0xbf58_476d_1ce4_e5b9)).collect();
        let ts: Vec<u64> = (0..(16 * w) as u64).map(|i| i.wrapping_mul(0x94d0_49bb_1331_11eb)).collect();
        let us: Vec<usize> = (0..16).map(|i| (i * 7919) % (1 << n)).collect();
        let mut out = vec![0u64; 16];
        g.throughput(Throughput::Elements(16 << n));
        g.bench_function(BenchmarkId::new("batch16", format!("n{n}_ks{ks}")), |b| {
            b.iter(|| gf2::permuted_parities_batch(black_box(&ts), &us, &planes, ks, w, &mut out))
        });
    }
    g.finish();
}

criterion_group!(benches, prg, dpf, ring_dot, parity);
criterion_main!(benches);
