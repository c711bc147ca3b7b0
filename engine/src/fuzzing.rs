//! One entry point for fuzzers: every decoder that reads bytes a peer sent.
//!
//! The `fuzz/` crate's `frame_decoder` target (cargo fuzz, libFuzzer) and the engine's
//! own randomized test call [`decode_untrusted`]; both fail on a panic, an abort or a
//! runaway allocation. Decoders must answer any input with a value or an error.
//!
//! The target's seed corpus, `fuzz/seeds/frame_decoder/`, is one valid message of each
//! kind, written by this module's tests from the same messages the randomized test
//! mutates (a test fails when the files and the messages differ; rerun it with
//! `PMSM_WRITE_SEEDS=1` to rewrite them after a format change).

use crate::process::hello::{Ack, Hello};
use crate::process::spec::Spec;
use crate::protocol::wire;
use crate::transport::Link;
use crate::transport::frame;
use pmsm_kernels::Party;
use pmsm_kernels::dpf::{BitLeaf, DpfGroup, DpfKey, RingLeaf};
use pmsm_kernels::field::F65521;

/// Feeds `data` to every decoder of untrusted bytes. The first byte picks the small
/// schedule the protocol frames are checked against (value width and count).
pub fn decode_untrusted(data: &[u8]) {
    // The stream envelope: frames until the stream ends or breaks.
    let mut stream = std::io::Cursor::new(data);
    while let Ok(Some(_)) = frame::read_frame(&mut stream, 1 << 16) {}
    // Handshake messages.
    let _ = Hello::decode(data);
    let _ = Ack::decode(data);
    let _ = Spec::decode(data);
    // Protocol frames.
    let Some((&p, body)) = data.split_first() else { return };
    let width = u32::from(p & 31) + 1;
    let count = usize::from(p >> 5) + 1;
    let link = Link::S0ToS1;
    let _ = wire::decode_input(body, link, 0, &[count as u32, 1], width);
    let _ = wire::decode_input_payload(body, link, 0, &[count as u32]);
    let _ = wire::decode_openings(body, link, 0, count, width);
    let _ = wire::decode_triples(body, link, 0, count, 16);
    let _ = wire::decode_output(body, link, &[count, 2], width);
    if let Ok(c) = wire::decode_correlations::<BitLeaf>(body.to_vec(), link, Party::P0, 0, count, width) {
        expand_all(c.into_parts().1);
    }
    if let Ok(c) = wire::decode_correlations::<RingLeaf>(body.to_vec(), link, Party::P0, 0, count, width) {
        expand_all(c.into_parts().1);
    }
    let _ = DpfKey::<BitLeaf>::from_bytes(body);
    let _ = DpfKey::<RingLeaf>::from_bytes(body);
    let _ = DpfKey::<F65521>::from_bytes(body);
}

/// Expands every share of a decoded round, where its outputs are small enough to hold.
fn expand_all<G: DpfGroup>(keys: wire::EncodedKeys<G>) {
    let leaves = keys.len().saturating_mul(DpfKey::<G>::leaves_for(keys.width()));
    if leaves <= 1 << 16 {
        let _ = keys.expand(0..keys.len(), &mut vec![G::default(); leaves], None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Settings;
    use crate::process::{Fingerprint, SessionId, hello_for};
    use pmsm_kernels::dpf::Dpf;
    use pmsm_kernels::rng::{RngCore, SecretRng, WorkloadRng};

    /// Valid messages of every kind, to mutate, each with its seed file's name.
    fn seeds() -> Vec<(&'static str, Vec<u8>)> {
        let mut rng = SecretRng::from_seed([3; 32]);
        let keys = Dpf::<BitLeaf>::keygen_batch(10, &[(5, true), (7, true)], &mut rng).unwrap();
        let key_bytes: Vec<u8> = keys.iter().flat_map(|[k, _]| k.to_bytes()).collect();
        let spec = Spec {
            settings: Settings {
                protocol: crate::protocol::Protocol::LookupXor,
                reveal: crate::protocol::Reveal::State,
                classes: crate::protocol::ClassMode::Auto,
                chunk: Some(4),
                powers: Default::default(),
                full_length_keys: false,
            },
            lengths: vec![1, 2, 3],
        };
        let mut enveloped = Vec::new();
        frame::write_data(&mut enveloped, &wire::encode_openings(0, &[1, 2], 9)).unwrap();
        frame::write_abort(&mut enveloped, "stop").unwrap();
        // A protocol frame's first byte picks the schedule `decode_untrusted` checks it
        // against: width − 1 in the low five bits, count − 1 above.
        vec![
            ("openings", [&[0b0010_1000u8][..], &wire::encode_openings(0, &[1, 2], 9)].concat()),
            (
                "correlations",
                [
                    &[0b0010_1001u8][..],
                    &wire::encode_correlations(0, &[3, 4], 10, &key_bytes, DpfKey::<BitLeaf>::encoded_len(10)),
                ]
                .concat(),
            ),
            ("output", [&[0u8][..], &wire::encode_output(0, &[1], 1)].concat()),
            ("input", [&[0b0010_0000u8][..], &wire::encode_input(0, &[2, 1], &[1, 0, 1], 1)].concat()),
            ("hello", hello_for(Link::ClientToS0, SessionId([1; 16]), Fingerprint([2; 32]), spec.encode()).encode()),
            ("spec", spec.encode()),
            ("stream", enveloped),
        ]
    }

    /// The checked-in seed corpus of the `frame_decoder` target is exactly [`seeds`].
    #[test]
    fn the_fuzz_seed_corpus_is_the_seed_messages() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/seeds/frame_decoder");
        let seeds = seeds();
        if std::env::var_os("PMSM_WRITE_SEEDS").is_some() {
            std::fs::create_dir_all(&dir).unwrap();
            for (name, bytes) in &seeds {
                std::fs::write(dir.join(name), bytes).unwrap();
            }
        }
        let rerun = "rerun with PMSM_WRITE_SEEDS=1 to rewrite the seeds";
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e} ({rerun})", dir.display()))
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        let mut want: Vec<String> = seeds.iter().map(|(n, _)| n.to_string()).collect();
        want.sort();
        assert_eq!(names, want, "files in {} ({rerun})", dir.display());
        for (name, bytes) in &seeds {
            assert!(std::fs::read(dir.join(name)).unwrap() == *bytes, "{name} differs from its message ({rerun})");
        }
    }

    #[test]
    fn decoders_survive_random_and_mutated_bytes() {
        let mut rng = WorkloadRng::seed_from_u64(99);
        let seeds = seeds();
        for round in 0..20_000u64 {
            let mut data = if round % 4 == 0 {
                let mut d = vec![0u8; rng.below(200) as usize];
                rng.fill_bytes(&mut d);
                d
            } else {
                seeds[rng.below(seeds.len() as u64) as usize].1.clone()
            };
            for _ in 0..=rng.below(4) {
                if data.is_empty() {
                    break;
                }
                let at = rng.below(data.len() as u64) as usize;
                match rng.below(3) {
                    0 => data[at] ^= 1 << rng.below(8),
                    1 => data.truncate(at),
                    _ => data.insert(at, rng.next_u32() as u8),
                }
            }
            decode_untrusted(&data);
        }
        for (_, s) in &seeds {
            decode_untrusted(s);
        }
    }
}
