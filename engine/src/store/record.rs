//! One session as a server's store keeps it: a fixed 54-byte record.
//!
//! Little-endian, in this order: store machine id (u32), group (u16), owner (u64),
//! committed steps (u64) and the state share at those steps (u64), the steps and share
//! of the checkpoint before (u64 each; the same at a session's first), when the session
//! opened and when it was last committed (unix seconds, u32 each: to 2106). The checkpoint before lets
//! a server that committed one checkpoint more than the other fall back to the other's
//! ([`super::reconcile`]).

/// Bytes of a record.
pub const RECORD_BYTES: usize = 54;

/// A session's committed state at one server. `Debug` shows counts, never shares.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SessionRecord {
    /// The machine, as numbered in the store's machine table.
    pub machine: u32,
    /// Which group of the machine (0 for a single machine).
    pub group: u16,
    /// Who opened it (a client certificate's owner number).
    pub owner: u64,
    /// Steps applied and committed.
    pub steps: u64,
    /// This server's state share after `steps` steps.
    pub state: u64,
    /// Steps at the checkpoint before.
    pub prev_steps: u64,
    /// This server's state share after `prev_steps` steps.
    pub prev: u64,
    /// When the session opened (unix seconds).
    pub created: u32,
    /// When it was last committed: stepped, or opened (unix seconds).
    pub last_used: u32,
}

impl std::fmt::Debug for SessionRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionRecord")
            .field("machine", &self.machine)
            .field("group", &self.group)
            .field("steps", &self.steps)
            .field("last_used", &self.last_used)
            .finish_non_exhaustive()
    }
}

impl SessionRecord {
    /// The record's bytes.
    pub fn encode(&self) -> [u8; RECORD_BYTES] {
        let mut b = [0u8; RECORD_BYTES];
        b[0..4].copy_from_slice(&self.machine.to_le_bytes());
        b[4..6].copy_from_slice(&self.group.to_le_bytes());
        let words = [self.owner, self.steps, self.state, self.prev_steps, self.prev];
        for (i, w) in words.iter().enumerate() {
            b[6 + 8 * i..14 + 8 * i].copy_from_slice(&w.to_le_bytes());
        }
        b[46..50].copy_from_slice(&self.created.to_le_bytes());
        b[50..54].copy_from_slice(&self.last_used.to_le_bytes());
        b
    }

    /// A record from its bytes, or `None` if they are not one.
    pub fn decode(b: &[u8]) -> Option<SessionRecord> {
        if b.len() != RECORD_BYTES {
            return None;
        }
        let word = |i: usize| u64::from_le_bytes(b[6 + 8 * i..14 + 8 * i].try_into().expect("8 bytes"));
        Some(SessionRecord {
            machine: u32::from_le_bytes(b[0..4].try_into().expect("4 bytes")),
            group: u16::from_le_bytes(b[4..6].try_into().expect("2 bytes")),
            owner: word(0),
            steps: word(1),
            state: word(2),
            prev_steps: word(3),
            prev: word(4),
            created: u32::from_le_bytes(b[46..50].try_into().expect("4 bytes")),
            last_used: u32::from_le_bytes(b[50..54].try_into().expect("4 bytes")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_refuse_other_lengths() {
        let r = SessionRecord {
            machine: 7,
            group: 3,
            owner: u64::MAX - 1,
            steps: 1 << 40,
            state: 0xdead_beef,
            prev_steps: (1 << 40) - 3,
            prev: 42,
            created: 1_764_600_000,
            last_used: 1_764_600_123,
        };
        assert_eq!(SessionRecord::decode(&r.encode()), Some(r));
        assert_eq!(SessionRecord::decode(&r.encode()[1..]), None);
        // No share in the debug form.
        assert!(!format!("{r:?}").contains(&0xdead_beef_u64.to_string()));
    }
}
