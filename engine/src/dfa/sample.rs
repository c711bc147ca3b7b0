//! Strings that match a pattern, by a seeded walk of its parsed form (HIR).
//!
//! Literals are copied, a class gives one of its bytes (printable ASCII other than
//! space first, so a sample stays one line of text), a repetition runs its minimum
//! plus a few, an alternation takes a random branch. Look-around (anchors, word
//! boundaries) produces nothing: the caller plants the sample between spaces and
//! checks the text against the pattern, retrying with other choices when a look
//! fails. The walk is a generator, not a decision procedure: a pattern whose
//! look-around no choice satisfies gives no sample.

use pmsm_kernels::rng::WorkloadRng;
use regex_syntax::hir::{Class, Hir, HirKind};

/// Repetitions run at most this many times beyond their minimum.
const EXTRA: u32 = 3;

/// One string the walk of `hir` produces (it matches `hir` unless a look fails).
pub fn sample(hir: &Hir, rng: &mut WorkloadRng) -> Vec<u8> {
    let mut out = Vec::new();
    walk(hir, rng, &mut out);
    out
}

fn walk(h: &Hir, rng: &mut WorkloadRng, out: &mut Vec<u8>) {
    match h.kind() {
        HirKind::Empty | HirKind::Look(_) => {}
        HirKind::Literal(l) => out.extend_from_slice(&l.0),
        HirKind::Class(c) => out.extend(class_byte(c, rng)),
        HirKind::Repetition(r) => {
            let room = r.max.map_or(EXTRA, |max| (max - r.min).min(EXTRA));
            let n = r.min + rng.below(u64::from(room) + 1) as u32;
            for _ in 0..n {
                walk(&r.sub, rng, out);
            }
        }
        HirKind::Capture(c) => walk(&c.sub, rng, out),
        HirKind::Concat(items) => items.iter().for_each(|i| walk(i, rng, out)),
        HirKind::Alternation(alts) => walk(&alts[rng.below(alts.len() as u64) as usize], rng, out),
    }
}

/// A member of `c` as bytes: printable non-space ASCII when the class has some.
fn class_byte(c: &Class, rng: &mut WorkloadRng) -> Vec<u8> {
    match c {
        Class::Bytes(b) => {
            let all: Vec<u8> = b.iter().flat_map(|r| r.start()..=r.end()).collect();
            let nice: Vec<u8> = all.iter().copied().filter(|b| b.is_ascii_graphic()).collect();
            let pool = if nice.is_empty() { &all } else { &nice };
            pool.get(rng.below(pool.len().max(1) as u64) as usize).map(|&b| vec![b]).unwrap_or_default()
        }
        Class::Unicode(u) => {
            let nice: Vec<char> = u
                .iter()
                .flat_map(|r| (r.start() as u32..=(r.end() as u32).min(0x7e)).filter_map(char::from_u32))
                .filter(|c| c.is_ascii_graphic())
                .collect();
            let c = if nice.is_empty() {
                u.iter().next().map(|r| r.start())
            } else {
                Some(nice[rng.below(nice.len() as u64) as usize])
            };
            c.map(|c| c.to_string().into_bytes()).unwrap_or_default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use regex_automata::util::syntax;

    #[test]
    fn samples_match_their_patterns() {
        let mut rng = WorkloadRng::seed_from_u64(3);
        for p in ["ab", "x[0-9]{3,5}", "(?i)key[a-f]+", "(?:aws|gcp)_[A-Z]{4}", "(?-u)\\w{2}\\d", "é+", "\\bk\\b"] {
            let re = regex::bytes::Regex::new(p).unwrap();
            let hir = syntax::parse_with(p, &syntax::Config::new().utf8(false)).unwrap();
            for _ in 0..20 {
                let mut text = b" ".to_vec();
                text.extend(sample(&hir, &mut rng));
                text.push(b' ');
                assert!(re.is_match(&text), "{p}: {:?}", String::from_utf8_lossy(&text));
            }
        }
    }
}
