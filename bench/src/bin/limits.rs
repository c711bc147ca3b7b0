//! `limits`: this machine's speed limits for pmsm's kernels, measured in one run on
//! one core, beside their references (DESIGN §7).
//!
//! ```text
//! cargo run --release -p pmsm-bench --bin limits -- [--json] [--quick]
//! ```

use mimalloc::MiMalloc;
use pmsm_bench::{rate, si};
use pmsm_kernels::dpf::{BitLeaf, Dpf, DpfKey, RingLeaf};
use pmsm_kernels::prg::FixedKeyPrg;
use pmsm_kernels::rng::SecretRng;
use pmsm_kernels::{Backend, gf2, ring};
use serde_json::json;
use std::hint::black_box;
use std::process::Command;

#[global_allocator]
static GLOBAL: MiMalloc = MiMalloc;

/// AES-128-ECB blocks per second from `openssl speed` (16 KiB buffers), if installed.
fn openssl_aes_blocks_per_sec() -> Option<f64> {
    let out = Command::new("openssl")
        .args(["speed", "-seconds", "2", "-bytes", "16384", "-evp", "aes-128-ecb"])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    // Last line: "AES-128-ECB  <kB/s>k" (figures in thousands of bytes per second).
    let line = text.lines().rev().find(|l| l.to_ascii_lowercase().starts_with("aes-128-ecb"))?;
    let kbytes: f64 = line.split_whitespace().last()?.trim_end_matches('k').parse().ok()?;
    Some(kbytes * 1000.0 / 16.0)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let json_out = args.iter().any(|a| a == "--json");
    let quick = args.iter().any(|a| a == "--quick");
    if let Some(bad) = args.iter().find(|a| !matches!(a.as_str(), "--json" | "--quick")) {
        eprintln!("limits: unknown argument {bad:?} (expected --json and/or --quick)");
        std::process::exit(2);
    }
    let (rounds, secs) = if quick { (2, 0.05) } else { (5, 0.3) };
    // One core: rayon is not used by any kernel measured here.
    let openssl = openssl_aes_blocks_per_sec();

    let prg = FixedKeyPrg::get();
    let mut blocks: Vec<u128> = (0..4096u128).collect();
    let aes = rate(4096.0, rounds, secs, || prg.hash_in_place(black_box(&mut blocks)));

    let mut rng = SecretRng::from_os();
    let n = 20;
    let [kb, _] = Dpf::<BitLeaf>::keygen(n, 12345, true, &mut rng).expect("valid domain");
    let mut out_b = vec![BitLeaf::default(); kb.leaves()];
    let dpf_bits = rate((1u64 << n) as f64, rounds, secs, || kb.eval_full_into(black_box(&mut out_b)).expect("sized"));
    let [kr, _] = Dpf::<RingLeaf>::keygen(n, 12345, 1, &mut rng).expect("valid domain");
    let mut out_r = vec![RingLeaf::default(); kr.leaves()];
    let dpf_u64 = rate((1u64 << n) as f64, rounds, secs, || kr.eval_full_into(black_box(&mut out_r)).expect("sized"));
    let key_bits = Dpf::<BitLeaf>::keygen(18, 7, true, &mut rng).expect("valid domain")[0].material_bits();
    let key_bytes = DpfKey::<BitLeaf>::encoded_len(18);

    let nn = 4096usize;
    let t: Vec<u64> = (0..nn as u64).map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15)).collect();
    let e: Vec<u64> = (0..nn as u64).map(|i| i ^ 0xdead_beef).collect();
    let dot = rate(nn as f64, rounds, secs, || {
        black_box(ring::rotated_dot(black_box(&t), 1234, black_box(&e)));
    });
    let portable = Backend::Portable.kernels().expect("portable always exists");
    let dot_portable = rate(nn as f64, rounds, secs, || {
        black_box(portable.dot(black_box(&t), black_box(&e)));
    });

    let w = (1usize << 16) / 64;
    let tv: Vec<u64> = (0..w as u64).map(|i| i.wrapping_mul(0xbf58_476d_1ce4_e5b9)).collect();
    let planes: Vec<u64> = (0..10 * w as u64).map(|i| i.wrapping_mul(0x94d0_49bb_1331_11eb)).collect();
    let parity1 = rate((1u64 << 16) as f64, rounds, secs, || {
        black_box(gf2::permuted_parities(black_box(&tv), 40_001, &planes[..w], 1));
    });
    let parity10 = rate(10.0 * (1u64 << 16) as f64, rounds, secs, || {
        black_box(gf2::permuted_parities(black_box(&tv), 40_001, &planes, 10));
    });
    let parity1_portable = rate((1u64 << 16) as f64, rounds, secs, || {
        black_box(portable.permuted_parities(black_box(&tv), 40_001, &planes[..w], 1));
    });

    let backend = pmsm_kernels::active_backend();
    if json_out {
        let v = json!({
            "backend": backend.name(),
            "openssl_aes_blocks_per_sec": openssl,
            "prg_aes_blocks_per_sec": aes,
            "dpf_bit_points_per_sec": dpf_bits,
            "dpf_u64_points_per_sec": dpf_u64,
            "dot_u64_macs_per_sec": dot,
            "dot_u64_macs_per_sec_portable": dot_portable,
            "parity_bits_per_sec": parity1,
            "parity_plane_bits_per_sec_10_planes": parity10,
            "parity_bits_per_sec_portable": parity1_portable,
            "dpf_key_bits_2p18_bit_output": key_bits,
            "dpf_key_encoded_bytes_2p18_bit_output": key_bytes,
        });
        println!("{v}");
        return;
    }
    let ratio = |x: f64, r: Option<f64>| {
        r.map_or("n/a (openssl not installed)".to_string(), |r| format!("{:.2}× openssl AES blocks/s", x / r))
    };
    println!("pmsm limits — one core, kernels backend: {backend}");
    println!("{:<44} {:>12}  reference", "figure", "value");
    let row = |name: &str, v: String, r: String| println!("{name:<44} {v:>12}  {r}");
    row("openssl AES-128-ECB blocks/s", openssl.map_or("n/a".into(), si), "openssl speed -evp aes-128-ecb".into());
    row("pmsm PRG (fixed-key AES MMO) blocks/s", si(aes), ratio(aes, openssl));
    row("DPF full eval, 1-bit outputs, points/s", si(dpf_bits), ratio(dpf_bits, openssl));
    row("DPF full eval, u64 outputs, points/s", si(dpf_u64), ratio(dpf_u64, openssl));
    row(
        "rotated dot u64 (N=4096) MACs/s",
        si(dot),
        format!("{:.2}× portable loop ({})", dot / dot_portable, si(dot_portable)),
    );
    row(
        "XOR-permuted parity, 2^16 bits, bits/s",
        si(parity1),
        format!("{:.2}× portable ({})", parity1 / parity1_portable, si(parity1_portable)),
    );
    row("  same, 10 planes, plane-bits/s", si(parity10), String::new());
    row(
        "DPF key, 2^18 points, 1-bit output",
        format!("{key_bits} bits"),
        format!("{key_bytes} bytes encoded; 130·9+640 = 1810 (fan-out 4; plain BGI, DESIGN §4: 1686)"),
    );
}
