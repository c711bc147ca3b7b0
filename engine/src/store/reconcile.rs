//! Which step both servers agree a session is at, after either of them restarted.
//!
//! Both servers commit at the same checkpoints (plans the leader marks), and each
//! answers a checkpoint only once its previous one is durable: at any moment the two
//! stores are at most one checkpoint apart, and each record holds the checkpoint before
//! (steps and share). Both servers compute the same answer from the same two lists of
//! `(slot, steps, steps at the checkpoint before)`: a session both hold at the same
//! steps continues there; one server a checkpoint ahead (its checkpoint before is the
//! other's steps) falls back to it; any other session (held by one server only, or
//! further apart, which the commit rule rules out) is dropped by both. No client was
//! told of a step only one server committed: a push is acknowledged once both servers
//! committed its last step.

use crate::service::session::Slot;

/// A session as a server's store holds it: its slot, its steps, and its steps at the
/// checkpoint before.
pub type Held = (Slot, u64, u64);

/// The step both servers can continue session `a`/`b` from, if any.
fn meet(a: (u64, u64), b: (u64, u64)) -> Option<u64> {
    if a.0 == b.0 {
        Some(a.0)
    } else if a.1 == b.0 || b.1 == a.0 {
        Some(a.0.min(b.0))
    } else {
        None
    }
}

/// The sessions both lists hold at a step both can continue from, in slot order.
/// Symmetric: `agree(a, b) == agree(b, a)`. Each slot once a list, in any order.
pub fn agree(mine: &[Held], theirs: &[Held]) -> Vec<(Slot, u64)> {
    let sorted = |l: &[Held]| {
        let mut v = l.to_vec();
        v.sort_unstable();
        v
    };
    let (a, b) = (sorted(mine), sorted(theirs));
    let (mut i, mut j, mut out) = (0, 0, Vec::with_capacity(a.len().min(b.len())));
    while i < a.len() && j < b.len() {
        match a[i].0.cmp(&b[j].0) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                if let Some(steps) = meet((a[i].1, a[i].2), (b[j].1, b[j].2)) {
                    out.push((a[i].0, steps));
                }
                i += 1;
                j += 1;
            }
        }
    }
    out
}

/// The list as one frame: a count, then `(slot, steps, steps before)` triples
/// (little-endian u64s).
pub fn encode(list: &[Held]) -> Vec<u8> {
    let mut b = Vec::with_capacity(8 + 24 * list.len());
    b.extend_from_slice(&(list.len() as u64).to_le_bytes());
    for &(slot, steps, before) in list {
        for w in [slot, steps, before] {
            b.extend_from_slice(&w.to_le_bytes());
        }
    }
    b
}

/// A list from its frame, or what is wrong with it (at most `max` entries).
pub fn decode(b: &[u8], max: usize) -> Result<Vec<Held>, String> {
    let word = |at: usize| b.get(at..at + 8).map(|w| u64::from_le_bytes(w.try_into().expect("8 bytes")));
    let n = word(0).ok_or("a session list without its count")? as usize;
    if n > max {
        return Err(format!("a session list of {n} sessions; a server holds at most {max}"));
    }
    if b.len() != 8 + 24 * n {
        return Err(format!("a session list of {n} sessions in {} bytes (want {})", b.len(), 8 + 24 * n));
    }
    let at = |k: usize, w: usize| word(8 + 24 * k + 8 * w).expect("sized");
    Ok((0..n).map(|k| (at(k, 0), at(k, 1), at(k, 2))).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use pmsm_kernels::rng::WorkloadRng;

    #[test]
    fn both_servers_agree_on_the_lower_step_of_sessions_both_hold() {
        let a = [(5, 10, 8), (1, 3, 3), (9, 0, 0), (4, 7, 2), (2, 6, 1)];
        let b = [(1, 9, 3), (4, 7, 7), (9, 5, 2), (3, 1, 0), (2, 1, 0)];
        // 1: b a checkpoint ahead; 2: a ahead; 4: equal; 9: two checkpoints apart
        // (dropped); 5 and 3: one server only.
        assert_eq!(agree(&a, &b), vec![(1, 3), (2, 1), (4, 7)]);
        let mut rng = WorkloadRng::seed_from_u64(3);
        for _ in 0..200 {
            let list = |rng: &mut WorkloadRng| {
                let mut v: Vec<Held> = (0..rng.below(40))
                    .map(|_| {
                        let steps = rng.below(6);
                        (rng.below(50), steps, steps - rng.below(steps + 1).min(2))
                    })
                    .collect();
                v.sort_unstable_by_key(|e| e.0);
                v.dedup_by_key(|e| e.0);
                v
            };
            let (x, y) = (list(&mut rng), list(&mut rng));
            assert_eq!(agree(&x, &y), agree(&y, &x));
            for (slot, steps) in agree(&x, &y) {
                let (p, q) = (x.iter().find(|e| e.0 == slot).unwrap(), y.iter().find(|e| e.0 == slot).unwrap());
                // Both can be at `steps`: now, or at the checkpoint before.
                assert!([p.1, p.2].contains(&steps) && [q.1, q.2].contains(&steps), "{p:?} {q:?} → {steps}");
            }
        }
    }

    #[test]
    fn lists_round_trip_and_broken_frames_are_named() {
        let list = vec![(u64::MAX, 0, 0), (7, 1 << 50, 3)];
        assert_eq!(decode(&encode(&list), 10), Ok(list.clone()));
        assert!(decode(&encode(&list), 1).unwrap_err().contains("at most 1"));
        assert!(decode(&encode(&list)[..20], 10).unwrap_err().contains("in 20 bytes"));
        assert!(decode(&[1, 2], 10).unwrap_err().contains("count"));
    }
}
