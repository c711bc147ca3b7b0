//! What a server holds for each session, and the requests clients send it.
//!
//! A session at server `b` is an XOR (or additive) share of the current state, the
//! number of steps applied, the shares of the symbols pushed but not yet applied, and
//! the releases asked for but not yet answered. Both servers apply the same waves to
//! the same sessions in the same order, so their shares stay consistent without any
//! per-session message between them.
//!
//! # Memory
//! An idle session (nothing pending) is the struct below, 112 bytes, plus its 8-byte
//! key and control byte in the hash map: at most 242 bytes a session a server at the
//! map's lowest load factor (1/2, just after it doubles), within the service's target
//! of 256 (a test checks the arithmetic).

use super::ServiceError;
use super::reply::Promise;
use super::wave::WaveKind;
use std::collections::VecDeque;
use std::sync::OnceLock;
use std::time::Instant;

/// Milliseconds since the first call in this process (a monotonic clock).
pub fn clock_ms() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_millis() as u64
}

/// A client's identity at a server (one per connection in process; one per client
/// certificate over the network).
pub type Owner = u64;

/// A session's number at both servers: server 0 assigns it when the session opens;
/// the client passes it to server 1.
pub type Slot = u64;

/// Hashes a [`Slot`] with two multiplies (murmur3's 64-bit finaliser, full
/// avalanche) over the slot XOR a key drawn once per process, where std's SipHash takes
/// tens of cycles: the servers look sessions up by slot on every wave and request.
/// Server 1 opens the slot a client names, so the key keeps a client from choosing
/// slots that collide (it cannot invert the finaliser without it); not a
/// cryptographic PRF, which a hash table does not need.
#[derive(Clone, Copy, Debug)]
pub struct SlotHasher(u64);

impl std::hash::Hasher for SlotHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Not a slot (the maps below hash only slots): fold the bytes in, still correct.
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }
    fn write_u64(&mut self, x: u64) {
        let mut h = self.0 ^ x;
        h = (h ^ (h >> 33)).wrapping_mul(0xff51_afd7_ed55_8ccd);
        h = (h ^ (h >> 33)).wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        self.0 = h ^ (h >> 33);
    }
}

/// Builds [`SlotHasher`]s with this process's key (from the operating system's
/// random source, once).
#[derive(Clone, Copy, Debug, Default)]
pub struct SlotHash;

impl std::hash::BuildHasher for SlotHash {
    type Hasher = SlotHasher;
    fn build_hasher(&self) -> SlotHasher {
        static KEY: OnceLock<u64> = OnceLock::new();
        SlotHasher(*KEY.get_or_init(|| {
            use pmsm_kernels::rng::{RngCore, SecretRng};
            SecretRng::from_os().next_u64()
        }))
    }
}

/// A map keyed by slot ([`SlotHasher`]).
pub type SlotMap<V> = std::collections::HashMap<Slot, V, SlotHash>;
/// A set of slots ([`SlotHasher`]).
pub type SlotSet = std::collections::HashSet<Slot, SlotHash>;

/// A release's output shares (one value for a machine, one per group or one combined
/// value for a set) and the steps they cover.
pub type OutputShare = (Vec<u64>, u64);

/// A client request, as a server receives it. `Debug` shows no share.
pub enum Request {
    /// Opens a session of `machine`; server 0 picks the slot, server 1 is told it.
    Open {
        /// Index of the machine in the servers' list.
        machine: u16,
        /// Who asks.
        owner: Owner,
        /// The slot server 0 gave (server 1 only).
        slot: Option<Slot>,
        /// The slot.
        reply: Promise<Result<Slot, ServiceError>>,
    },
    /// Appends `count` symbol shares (packed at the machine's symbol share width).
    Push {
        /// The session.
        slot: Slot,
        /// Who asks.
        owner: Owner,
        /// Symbols the client had pushed before this push: a server whose count differs
        /// refuses it (a push that reached only one server, its caller cancelled, can
        /// never pair one server's shares with the other's).
        offset: u64,
        /// Symbols in the push.
        count: usize,
        /// The packed shares.
        shares: Vec<u8>,
        /// Symbols pushed into the session in all, this push included.
        reply: Promise<Result<u64, ServiceError>>,
    },
    /// This server's share of the output after every symbol pushed so far.
    Release {
        /// The session.
        slot: Slot,
        /// Who asks.
        owner: Owner,
        /// Symbols the client has pushed: the release covers exactly these (checked as a
        /// push's offset is).
        at: u64,
        /// The output share and the step count it is for.
        reply: Promise<Result<OutputShare, ServiceError>>,
    },
    /// Answers with the session's steps once every symbol before `at` is applied here
    /// (and, with a session store, committed): a durable push is acknowledged so.
    Sync {
        /// The session.
        slot: Slot,
        /// Who asks.
        owner: Owner,
        /// The symbols that must be settled (at most those pushed).
        at: u64,
        /// The session's settled steps.
        reply: Promise<Result<u64, ServiceError>>,
    },
    /// Ends the session; pending releases fail.
    Close {
        /// The session.
        slot: Slot,
        /// Who asks.
        owner: Owner,
        /// Done.
        reply: Promise<Result<(), ServiceError>>,
    },
    /// Stops the server: no new requests are taken; waves in flight finish.
    Stop,
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Request::Open { machine, slot, .. } => write!(f, "Open(machine {machine}, slot {slot:?})"),
            Request::Push { slot, offset, count, .. } => {
                write!(f, "Push(slot {slot}, {count} symbols at {offset}, <redacted>)")
            }
            Request::Release { slot, at, .. } => write!(f, "Release(slot {slot} at {at})"),
            Request::Sync { slot, at, .. } => write!(f, "Sync(slot {slot} at {at})"),
            Request::Close { slot, .. } => write!(f, "Close(slot {slot})"),
            Request::Stop => f.write_str("Stop"),
        }
    }
}

/// A release waiting for its step.
#[derive(Debug)]
pub struct Release {
    /// Steps the output must cover (every symbol pushed before the release).
    pub at: u64,
    /// Where the share goes; `None` in a set's group session, whose output goes to its
    /// [`SetSession`].
    pub reply: Option<Promise<Result<OutputShare, ServiceError>>>,
}

/// One session at one server. `Debug` shows counts, never shares.
pub struct Session {
    /// Which lane (a group of a served machine: [`super::Lane`]).
    pub lane: u16,
    /// Who opened it.
    pub owner: Owner,
    /// This server's share of the current state.
    pub state: u64,
    /// Steps applied.
    pub steps: u64,
    /// Shares of the symbols pushed and not yet applied, oldest first; for machines
    /// with symbol classes the first `classified` are already class shares.
    pub symbols: VecDeque<u32>,
    /// How many of `symbols` are class shares (at most `max_pending`: under 2^32).
    pub classified: u32,
    /// Releases not yet answered, oldest first (their `at` is non-decreasing).
    pub releases: VecDeque<Release>,
    /// In a wave that is in flight (the leader puts a session in one wave at a time).
    pub in_flight: bool,
    /// Waiting in one of the leader's ready queues.
    pub queued: bool,
    /// Closed by its client; forgotten when no wave holds it.
    pub closed: bool,
    /// Server 1 only: a wave stepped this session where this server lacked its symbol
    /// (an interrupted request); it answers nothing more but a close.
    pub broken: bool,
    /// Last request, in milliseconds of [`clock_ms`] (8 bytes where an `Instant` takes 16).
    pub last_used: u64,
    /// With a session store: its steps not yet durable there ([`NOT_STORED`] until its
    /// first commit is). A count rather than the step itself keeps an idle session in
    /// its budget (see the test below).
    pub behind: u32,
}

/// [`Session::behind`] of a session whose first commit is not yet durable.
pub const NOT_STORED: u32 = u32::MAX;

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("lane", &self.lane)
            .field("steps", &self.steps)
            .field("pending", &self.symbols.len())
            .field("classified", &self.classified)
            .field("releases", &self.releases.len())
            .field("in_flight", &self.in_flight)
            .field("closed", &self.closed)
            .finish_non_exhaustive()
    }
}

impl Session {
    /// A fresh session on `lane` whose state share is `state`.
    pub fn new(lane: u16, owner: Owner, state: u64) -> Session {
        Session {
            lane,
            owner,
            state,
            steps: 0,
            symbols: VecDeque::new(),
            classified: 0,
            releases: VecDeque::new(),
            in_flight: false,
            queued: false,
            closed: false,
            broken: false,
            last_used: clock_ms(),
            behind: NOT_STORED,
        }
    }

    /// With a session store: the steps durable there (`None` before its first commit is).
    pub fn stored_steps(&self) -> Option<u64> {
        (self.behind != NOT_STORED).then(|| self.steps - u64::from(self.behind))
    }

    /// With a session store: notes that its record of `steps` steps is durable. A gap
    /// of 2^32 - 1 steps or more (never, between two commits) counts as not stored,
    /// which only delays answers.
    pub fn note_stored(&mut self, steps: u64) {
        self.behind = u32::try_from(self.steps.saturating_sub(steps)).unwrap_or(NOT_STORED);
    }

    /// Symbols pushed in all.
    pub fn pushed(&self) -> u64 {
        self.steps + self.symbols.len() as u64
    }

    /// The wave this session needs next, if any (leader only; `classes`: the machine
    /// maps symbols to classes first; `accept`: releases are accept lookups). A due
    /// release comes before further steps; symbols are classified before they step.
    pub fn next_wave(&self, classes: bool, accept: bool) -> Option<WaveKind> {
        if self.in_flight || self.closed {
            return None;
        }
        if accept && self.releases.front().is_some_and(|r| r.at == self.steps) {
            return Some(WaveKind::Accept);
        }
        if !self.symbols.is_empty() && (!classes || self.classified > 0) {
            return Some(WaveKind::Step);
        }
        (classes && self.symbols.len() > self.classified as usize).then_some(WaveKind::Class)
    }

    /// Answers every release that is due, when releases reveal the state share.
    pub fn answer_state_releases(&mut self, mask: u64) {
        while self.releases.front().is_some_and(|r| r.at == self.steps) {
            let r = self.releases.pop_front().expect("checked");
            r.answer(Ok((vec![self.state & mask], self.steps)));
        }
    }

    /// Fails the releases due at a step this session has passed (server 1, accept
    /// policy): the leader answers each of its releases before the session steps on,
    /// so such a release reached server 1 only (its client's link to server 0 was lost
    /// between the two requests) and would otherwise hold back every later one.
    pub fn fail_passed_releases(&mut self) {
        while self.releases.front().is_some_and(|r| r.at < self.steps) {
            let r = self.releases.pop_front().expect("checked");
            let at = r.at;
            r.answer(Err(ServiceError::BadRequest(format!(
                "a release at {at} symbols reached server 1 only (the link to server 0 was lost); release again"
            ))));
        }
    }

    /// Fails every pending release (the session is going away).
    pub fn fail_releases(&mut self, why: impl Fn() -> ServiceError) {
        for r in self.releases.drain(..) {
            r.answer(Err(why()));
        }
    }
}

impl Release {
    /// Answers the client, if this release is a client's.
    pub fn answer(self, r: Result<OutputShare, ServiceError>) {
        if let Some(reply) = self.reply {
            reply.fulfil(r);
        }
    }
}

/// One release of a set session being combined: every group's output at step `at`,
/// then the values of each level of the combination.
#[derive(Debug)]
pub struct Combining {
    /// The step the release covers.
    pub at: u64,
    /// Each group's output share, as its output lookup finishes.
    pub outputs: Vec<Option<u64>>,
    /// `values[0]`: the groups' outputs once all are in; `values[l + 1]`: what level `l`
    /// produced.
    pub values: Vec<Vec<u64>>,
}

/// What a server keeps for a set session besides its groups' sessions (kept under the
/// slot of the first group, the one the client names). `Debug` shows counts only.
#[derive(Default)]
pub struct SetSession {
    /// Releases being combined, oldest first (their `at` is non-decreasing).
    pub combining: VecDeque<Combining>,
    /// The client's releases not yet answered, oldest first.
    pub replies: VecDeque<Release>,
    /// In a combine wave that is in flight (leader).
    pub in_flight: bool,
    /// Waiting in the leader's ready queue of a combine lane.
    pub queued: bool,
}

impl std::fmt::Debug for SetSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SetSession")
            .field("combining", &self.combining.len())
            .field("replies", &self.replies.len())
            .field("in_flight", &self.in_flight)
            .finish_non_exhaustive()
    }
}

impl SetSession {
    /// Records group `g`'s output share at step `at` (of `groups`): the first release at
    /// that step still without it takes it.
    pub fn record(&mut self, g: usize, groups: usize, at: u64, share: u64) {
        let slot = match self.combining.iter().position(|c| c.at == at && c.outputs[g].is_none()) {
            Some(i) => i,
            None => {
                self.combining.push_back(Combining { at, outputs: vec![None; groups], values: Vec::new() });
                self.combining.len() - 1
            }
        };
        let c = &mut self.combining[slot];
        c.outputs[g] = Some(share);
        if c.values.is_empty() && c.outputs.iter().all(Option::is_some) {
            c.values.push(c.outputs.iter().map(|o| o.expect("all in")).collect());
        }
    }

    /// Where the oldest release not fully combined (of `levels` levels) is, if its
    /// groups' outputs are all in: the level it needs next is `values.len() − 1`.
    pub fn current(&self, levels: usize) -> Option<usize> {
        let i = self.combining.iter().position(|c| c.values.len() <= levels)?;
        (!self.combining[i].values.is_empty()).then_some(i)
    }

    /// Fails every pending release (the session is going away).
    pub fn fail_releases(&mut self, why: impl Fn() -> ServiceError) {
        for r in self.replies.drain(..) {
            r.answer(Err(why()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slot_hashes_spread_counting_slots() {
        // Consecutive slots (the leader counts up) fill a table's buckets evenly and
        // differ in their top bits (the table's tags). The key is random: the bounds
        // are 6 standard deviations wide (a false alarm about once in 10^8 runs).
        let hash = |slot: Slot| std::hash::BuildHasher::hash_one(&SlotHash, slot);
        let base = 0x1234_5678_9abc_def0u64;
        let mut buckets = [0u32; 64];
        let mut tags = std::collections::HashSet::new();
        for i in 0..64 * 64 {
            let h = hash(base + i);
            buckets[(h % 64) as usize] += 1;
            tags.insert(h >> 57);
        }
        assert!(buckets.iter().all(|&n| (16..=112).contains(&n)), "{buckets:?}");
        assert_eq!(tags.len(), 128);
        let mut map = SlotMap::default();
        map.insert(base, 1);
        assert_eq!(map.get(&base), Some(&1));
    }

    #[test]
    fn releases_a_session_stepped_past_are_failed_in_order() {
        let mut s = Session::new(0, 1, 0);
        let (r1, t1) = super::super::reply::pair();
        let (r2, t2) = super::super::reply::pair();
        s.releases.push_back(Release { at: 3, reply: Some(r1) });
        s.releases.push_back(Release { at: 5, reply: Some(r2) });
        s.steps = 4;
        s.fail_passed_releases();
        assert_eq!(s.releases.len(), 1, "the release at 5 is still due");
        assert!(t1.wait().unwrap().unwrap_err().to_string().contains("server 1 only"));
        s.steps = 5;
        s.fail_passed_releases();
        assert_eq!(s.releases.len(), 1, "a release due now is not failed");
        drop(s);
        assert!(t2.wait().is_err(), "dropped with the session");
    }

    #[test]
    fn an_idle_session_stays_small() {
        // The service's budget is 256 bytes an idle session a server, hash map included
        // (8-byte key, a control byte, load factor down to 1/2 after a resize).
        let size = std::mem::size_of::<Session>();
        assert!(2 * (size + 9) <= 256, "{size}");
    }
}
