//! The session spec: what a client asks the servers (and they the dealer) to run.
//!
//! It carries the [`Settings`] and every instance's input length — public by the
//! protocol's design (DESIGN §1): lengths fix the round schedule, and the dealer needs
//! them to deal. Symbols never appear here.
//!
//! ```text
//! protocol u8 | reveal u8 | classes u8 | powers u8 | full_length_keys u8 |
//! chunk u32 | instances u32 | length u32 × instances        (all LE)
//! ```

use crate::Settings;
use crate::poly::plan::PowerSchedule;
use crate::protocol::{ClassMode, Protocol, Reveal};

/// Most instances one session may carry.
pub const MAX_INSTANCES: usize = 10_000_000;
/// Longest input one instance may have.
pub const MAX_LENGTH: usize = 1 << 30;
/// Largest chunk a session may ask for.
pub const MAX_CHUNK: usize = 1 << 20;
/// Most symbols one session may carry: servers hold every symbol share of a session
/// (8 bytes each), so this bounds what a client can make a server allocate (1 GiB).
pub const MAX_SYMBOLS: usize = 1 << 27;
/// Most chunk-steps (the sum over chunks of their longest input) one session may
/// schedule: the schedule holds one round per chunk-step and protocol round.
pub const MAX_CHUNK_STEPS: usize = 1 << 20;
const FIXED: usize = 5 + 4 + 4;

/// A decoded session spec.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Spec {
    /// The settings all parties use.
    pub settings: Settings,
    /// Every instance's input length.
    pub lengths: Vec<usize>,
}

const PROTOCOLS: [Protocol; 4] = [Protocol::LookupXor, Protocol::LookupRing, Protocol::Naive, Protocol::SeedDpf];
const CLASSES: [ClassMode; 3] = [ClassMode::Auto, ClassMode::On, ClassMode::Off];

fn code<T: PartialEq>(all: &[T], v: &T) -> u8 {
    all.iter().position(|x| x == v).expect("every value is listed") as u8
}

impl Spec {
    /// Encodes the spec.
    pub fn encode(&self) -> Vec<u8> {
        let s = &self.settings;
        let mut out = Vec::with_capacity(FIXED + 4 * self.lengths.len());
        out.push(code(&PROTOCOLS, &s.protocol));
        out.push(u8::from(s.reveal == Reveal::Accept));
        out.push(code(&CLASSES, &s.classes));
        out.push(u8::from(s.powers == PowerSchedule::Sequential));
        out.push(u8::from(s.full_length_keys));
        // 0: automatic.
        out.extend_from_slice(&(s.chunk.unwrap_or(0) as u32).to_le_bytes());
        out.extend_from_slice(&(self.lengths.len() as u32).to_le_bytes());
        for l in &self.lengths {
            out.extend_from_slice(&(*l as u32).to_le_bytes());
        }
        out
    }

    /// Decodes and checks a spec; the error says which field is wrong.
    pub fn decode(b: &[u8]) -> Result<Spec, String> {
        if b.len() < FIXED {
            return Err(format!("session spec of {} bytes is shorter than its {FIXED}-byte header", b.len()));
        }
        let pick = |v: u8, n: usize, what: &str| -> Result<usize, String> {
            (usize::from(v) < n)
                .then_some(usize::from(v))
                .ok_or_else(|| format!("session spec: unknown {what} code {v}"))
        };
        let flag = |v: u8, what: &str| -> Result<bool, String> { pick(v, 2, what).map(|x| x == 1) };
        let u32_at = |i: usize| u32::from_le_bytes(b[i..i + 4].try_into().expect("4 bytes")) as usize;
        let settings = Settings {
            protocol: PROTOCOLS[pick(b[0], PROTOCOLS.len(), "protocol")?],
            reveal: if flag(b[1], "output policy")? { Reveal::Accept } else { Reveal::State },
            classes: CLASSES[pick(b[2], CLASSES.len(), "class mode")?],
            powers: if flag(b[3], "power schedule")? { PowerSchedule::Sequential } else { PowerSchedule::Doubling },
            full_length_keys: flag(b[4], "key form")?,
            // 0: automatic.
            chunk: Some(u32_at(5)).filter(|c| *c != 0),
        };
        if let Some(c) = settings.chunk.filter(|c| *c > MAX_CHUNK) {
            return Err(format!("session spec: chunk {c} is outside 1..={MAX_CHUNK}"));
        }
        let n = u32_at(9);
        if n > MAX_INSTANCES {
            return Err(format!("session spec: {n} instances is above the limit of {MAX_INSTANCES}"));
        }
        if b.len() != FIXED + 4 * n {
            return Err(format!("session spec: {} bytes where {n} instances need {}", b.len(), FIXED + 4 * n));
        }
        let lengths: Vec<usize> = (0..n).map(|i| u32_at(FIXED + 4 * i)).collect();
        if let Some(i) = lengths.iter().position(|l| *l > MAX_LENGTH) {
            return Err(format!("session spec: instance {i} has length {} (limit {MAX_LENGTH})", lengths[i]));
        }
        let symbols: usize = lengths.iter().sum();
        if symbols > MAX_SYMBOLS {
            return Err(format!(
                "session spec: {symbols} symbols in one session (limit {MAX_SYMBOLS}); split the inputs"
            ));
        }
        // Chunks hold instances in decreasing length: a chunk's steps are its first length.
        let mut sorted = lengths.clone();
        sorted.sort_unstable_by(|a, b| b.cmp(a));
        let steps: usize = sorted.iter().step_by(settings.chunk_for(lengths.len())).sum();
        if steps > MAX_CHUNK_STEPS {
            return Err(format!(
                "session spec: {steps} chunk-steps (limit {MAX_CHUNK_STEPS}); use larger chunks or split the inputs"
            ));
        }
        Ok(Spec { settings, lengths })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> Spec {
        Spec {
            settings: Settings {
                protocol: Protocol::SeedDpf,
                reveal: Reveal::Accept,
                classes: ClassMode::Off,
                chunk: Some(77),
                powers: PowerSchedule::Sequential,
                full_length_keys: true,
            },
            lengths: vec![0, 3, 200],
        }
    }

    #[test]
    fn specs_round_trip() {
        for protocol in PROTOCOLS {
            let mut s = spec();
            s.settings.protocol = protocol;
            assert_eq!(Spec::decode(&s.encode()).unwrap(), s);
        }
        let mut auto = spec();
        auto.settings.chunk = None;
        assert_eq!(Spec::decode(&auto.encode()).unwrap(), auto);
    }

    #[test]
    fn automatic_chunks_keep_two_or_more() {
        let s = Settings { chunk: None, ..spec().settings };
        assert_eq!([1, 100, 129, 1000, 2048, 5000].map(|n| s.chunk_for(n)), [64, 64, 65, 500, 1024, 1024]);
        let fixed = Settings { chunk: Some(7), ..s };
        assert_eq!(fixed.chunk_for(1000), 7);
    }

    #[test]
    fn bad_specs_name_the_field() {
        let good = spec().encode();
        let with = |i: usize, v: u8| {
            let mut b = good.clone();
            b[i] = v;
            Spec::decode(&b).unwrap_err()
        };
        assert!(with(0, 9).contains("protocol code 9"));
        assert!(with(1, 2).contains("output policy"));
        assert!(with(2, 3).contains("class mode"));
        assert!(with(8, 0xff).contains("chunk"));
        assert!(Spec::decode(&good[..good.len() - 1]).unwrap_err().contains("instances need"));
        assert!(Spec::decode(&good[..4]).unwrap_err().contains("shorter"));
        let mut huge = good.clone();
        huge[9..13].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(Spec::decode(&huge).unwrap_err().contains("above the limit"));
        // Sizes a server would have to allocate for are refused before anything else.
        let mut s = spec();
        s.lengths = vec![MAX_LENGTH, MAX_LENGTH];
        assert!(Spec::decode(&s.encode()).unwrap_err().contains("symbols in one session"));
        s.lengths = vec![MAX_CHUNK_STEPS / 2 + 1; 2];
        s.settings.chunk = Some(1);
        assert!(Spec::decode(&s.encode()).unwrap_err().contains("chunk-steps"));
        s.settings.chunk = Some(2);
        assert_eq!(Spec::decode(&s.encode()).unwrap(), s);
    }
}
