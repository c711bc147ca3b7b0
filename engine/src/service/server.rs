//! The two servers of the service: the leader (server 0) forms waves from every
//! session that has work, whichever client it came from; the follower (server 1) runs
//! each wave as the leader's plan says. Both read their correlations from numbered
//! pools and expand and read tables with the batch engine's kernels
//! ([`crate::party::server::lookup_range`]).
//!
//! A wave is one lookup round: the leader takes the next correlations of the wave's
//! width, sends the plan with its openings, and keeps up to `window` waves in flight;
//! the follower answers each plan with its openings at once and finishes the wave, and
//! the leader finishes its oldest wave when those arrive. A session is in at most one
//! wave in flight, so a wave never reads a share an earlier wave has yet to write.
//!
//! With session stores ([`crate::store`]) both servers commit at *checkpoints*: the
//! leader marks a plan of no lookups as one (when it is idle, or [`COMMIT_EVERY`] after
//! the last), the follower commits when it reaches it, the leader when it finishes it,
//! so each commits its sessions exactly as the waves before the checkpoint left them.
//! One transaction carries every step since the last checkpoint; it is a snapshot of
//! records handed to the store's writer thread ([`crate::store::writer`]), so waves go
//! on while it is written, and what waits for it (opens, syncs) is answered once it is
//! durable. The leader sends a checkpoint only once its commit of the previous one is
//! durable, and the follower answers one only once its commit of the previous one is,
//! so the stores are never more than one checkpoint apart. A new session's record may
//! be committed at any time (it has no step yet). Each run of the servers starts by
//! exchanging their session lists and agreeing on every session's step
//! ([`crate::store::reconcile`]).
//!
//! A store whose disk is read-only or under its reserve ([`Options::store_reserve`])
//! takes no new work: its server refuses opens, and server 1, which takes every push
//! first, refuses pushes when its own store or the leader's is short (each plan says
//! whether the leader's is), so a push never reaches one server only.

use super::pool::{Pool, Taken};
use super::reply::Promise;
use super::session::{NOT_STORED, OutputShare, Owner, Release, Request, Session, SetSession, Slot, SlotMap, SlotSet};
use super::wave::{WaveKind, WavePlan};
use super::{Catalog, Machine, Options, Part, ServiceError, Stats};
use crate::party::server::{level_index, local_levels, lookup_range};
use crate::party::sharing::Sharing;
use crate::protocol::ProtocolError;
use crate::protocol::bits::{low_mask, unpack};
use crate::protocol::plan::Table;
use crate::protocol::wire::{decode_openings, encode_openings};
use crate::store::writer::{Writer, Written};
use crate::store::{SessionRecord, Store, reconcile};
use crate::transport::{BoxRx, BoxTx, TransportError};
use crossbeam_channel::Receiver;
use pmsm_kernels::Party;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// Unclassified symbols of one session mapped to classes in one class wave.
pub const CLASS_AHEAD: usize = 256;

/// Fewest sessions a wave is cut to when the ready ones are split in two (the batch
/// engine's smallest chunk).
const MIN_SPLIT: usize = 64;

/// The longest the leader lets steps, opens and syncs wait for a checkpoint while it
/// has other work (an idle leader checkpoints at once). A commit costs about the same
/// for a few sessions as for thousands (its `fsync` dominates: 4 ms on this project's
/// machine), so a checkpoint carries every step since the last.
pub const COMMIT_EVERY: Duration = Duration::from_millis(200);

/// How long a store's room check ([`Store::room`]) stands before it is made again.
const ROOM_EVERY: Duration = Duration::from_millis(100);

/// How often the leader looks for idle sessions to evict.
const SWEEP: Duration = Duration::from_millis(500);
/// An idle leader sends an empty wave this often, so either server learns within a
/// beat that the other is gone (a link that carries nothing reports nothing).
pub const HEARTBEAT: Duration = Duration::from_secs(1);

/// A request whose count of pushed symbols differs from this server's: an earlier
/// request reached one server only (its caller gave up on it). Refusing it keeps the
/// two servers' shares paired; the session can still be closed.
fn out_of_step(slot: Slot, here: u64, asked: u64) -> ServiceError {
    ServiceError::BadRequest(format!(
        "session {slot}: this server holds {here} symbols, the request is for {asked} \
         (an earlier push was interrupted: close the session)"
    ))
}

/// The store's writer thread ended without an outcome (it panicked).
fn writer_stopped() -> ProtocolError {
    ProtocolError::Parameter("the session store's writer stopped".into())
}

/// A session whose shares no longer pair (server 1 missed a step the leader took).
fn broken(slot: Slot) -> ServiceError {
    ServiceError::BadRequest(format!(
        "session {slot} is broken: server 1 lacks symbols server 0 applied (an interrupted request); close it"
    ))
}

/// A server's session store and what changed since its last commit.
struct Durable {
    store: Arc<Store>,
    /// Per lane: the store's number of its machine and the group (group lanes only).
    lanes: Vec<Option<(u32, u16)>>,
    /// Group sessions stepped since the last checkpoint, with their steps and state
    /// share at it.
    dirty: SlotMap<(u64, u64)>,
    /// Sessions opened since they were last committed.
    fresh: SlotSet,
    /// Sessions forgotten since the last commit.
    gone: Vec<Slot>,
    /// Opens, answered once committed.
    opens: Vec<(Promise<Result<Slot, ServiceError>>, Slot)>,
    /// Loaded sessions' steps and shares at the checkpoint before (until the servers
    /// agree).
    loaded_prev: SlotMap<(u64, u64)>,
    /// When the last checkpoint was.
    last: Instant,
    /// Writes the commits on a thread of its own.
    writer: Writer,
    /// Commits handed to the writer and not yet durable, oldest first.
    writing: VecDeque<Batch>,
    /// The last room check: when, and why the store is short of room (if it is).
    room: (Instant, Option<String>),
    /// Server 1: the leader's store was short of room at its last plan.
    peer_short: bool,
}

/// A commit handed to the writer and what waits for it to be durable.
struct Batch {
    /// A checkpoint's (not only new sessions').
    checkpoint: bool,
    /// The sessions written and the steps their records hold.
    records: Vec<(Slot, u64)>,
    /// Opens answered once it is durable.
    opens: Vec<(Promise<Result<Slot, ServiceError>>, Slot)>,
}

/// A sync waiting for its session's steps: the step and where the answer goes.
type Sync = (u64, Promise<Result<u64, ServiceError>>);

/// What both servers keep: the machines, the sessions and the pools.
pub struct Core<'a, S: Sharing> {
    party: Party,
    machines: &'a Catalog,
    options: &'a Options,
    stats: &'a Stats,
    sessions: SlotMap<Session>,
    /// Set sessions' releases being combined, by the slot of their first group.
    sets: SlotMap<SetSession>,
    /// Per client: sessions open and symbols pending.
    per_owner: HashMap<Owner, (usize, usize)>,
    /// Symbols pending over every session.
    pending: usize,
    /// Server 1 only: accept shares computed by a wave that reached this server before
    /// the release it answers (over the network the leader's plan can overtake a
    /// client's release to this server), by session: the share and its step.
    early: SlotMap<OutputShare>,
    pools: HashMap<u32, Pool<S>>,
    stopping: bool,
    /// The session store, if sessions are durable.
    durable: Option<Durable>,
    /// Syncs not yet answered, by the client's slot.
    syncs: SlotMap<Vec<Sync>>,
}

impl<'a, S: Sharing> Core<'a, S> {
    /// A server drawing correlations from `pools` (one per width), with no sessions,
    /// or with those `store` holds for share family `family` (sessions of machines no
    /// longer served stay in the store, untouched).
    pub fn new(
        party: Party,
        machines: &'a Catalog,
        options: &'a Options,
        stats: &'a Stats,
        pools: Vec<Pool<S>>,
        store: Option<(Arc<Store>, u8)>,
    ) -> Result<Self, ProtocolError> {
        let pools = pools.into_iter().map(|p| (p.width(), p)).collect();
        let mut core = Core {
            party,
            machines,
            options,
            stats,
            sessions: SlotMap::default(),
            sets: SlotMap::default(),
            per_owner: HashMap::new(),
            pending: 0,
            early: SlotMap::default(),
            pools,
            stopping: false,
            durable: None,
            syncs: SlotMap::default(),
        };
        if let Some((store, family)) = store {
            core.load(store, family)?;
        }
        Ok(core)
    }

    /// Takes the sessions of `store` (family `family`) whose machine is served.
    fn load(&mut self, store: Arc<Store>, family: u8) -> Result<(), ProtocolError> {
        let named: Vec<_> = self.machines.machines.iter().map(|m| (m.name.as_str(), m.interface.fingerprint)).collect();
        let ids = store.machine_ids(&named)?;
        let mut lanes = Vec::new();
        let mut by_id = HashMap::new();
        for (m, &id) in self.machines.machines.iter().zip(&ids) {
            by_id.insert(id, m);
            let groups = m.plan.groups.len();
            lanes.resize(usize::from(m.first_lane) + groups + m.plan.levels.len(), None);
            for g in 0..groups {
                lanes[usize::from(m.first_lane) + g] = Some((id, g as u16));
            }
        }
        let mut loaded_prev = SlotMap::default();
        let records = store.load(family)?;
        self.sessions.reserve(records.len());
        loaded_prev.reserve(records.len());
        for (slot, r) in records {
            let Some(m) = by_id.get(&r.machine).filter(|m| usize::from(r.group) < m.plan.groups.len()) else {
                continue;
            };
            let mut s = Session::new(m.first_lane + r.group, r.owner, r.state);
            s.steps = r.steps;
            s.behind = 0;
            self.sessions.insert(slot, s);
            loaded_prev.insert(slot, (r.prev_steps, r.prev));
            if r.group == 0 && m.is_set() {
                self.sets.insert(slot, SetSession::default());
            }
            self.per_owner.entry(r.owner).or_default().0 += 1;
            self.stats.sessions.fetch_add(1, Ordering::Relaxed);
        }
        let (dirty, fresh, gone, opens, last) =
            (SlotMap::default(), SlotSet::default(), Vec::new(), Vec::new(), Instant::now());
        let (writer, writing) = (Writer::spawn(Arc::clone(&store), family)?, VecDeque::new());
        let room = (last, store.room(self.options.store_reserve).err().map(|e| e.to_string()));
        self.durable = Some(Durable {
            store,
            lanes,
            dirty,
            fresh,
            gone,
            opens,
            loaded_prev,
            last,
            writer,
            writing,
            room,
            peer_short: false,
        });
        Ok(())
    }

    /// Every session this server holds, its steps and its steps at the checkpoint
    /// before (for the servers to agree on).
    fn held(&self) -> Vec<reconcile::Held> {
        let before = |slot: &Slot, s: &Session| {
            self.durable.as_ref().and_then(|d| d.loaded_prev.get(slot)).map_or(s.steps, |p| p.0)
        };
        self.sessions.iter().map(|(&slot, s)| (slot, s.steps, before(&slot, s))).collect()
    }

    /// Keeps the sessions both servers agreed on, at the agreed step (back to the
    /// checkpoint before where this server was a checkpoint ahead); forgets the rest,
    /// and a set session missing any group; commits.
    fn settle_agreed(&mut self, agreed: &[(Slot, u64)]) -> Result<(), ProtocolError> {
        let agreed: SlotMap<u64> = agreed.iter().copied().collect();
        let mut drop: Vec<Slot> = self.sessions.keys().filter(|s| !agreed.contains_key(s)).copied().collect();
        let catalog = self.machines;
        for (&slot, s) in &self.sessions {
            if matches!(catalog.lane(s.lane), Some((_, Part::Group(0))))
                && self.members(slot).any(|g| !agreed.contains_key(&g))
            {
                drop.extend(self.members(slot));
            }
        }
        drop.sort_unstable();
        drop.dedup();
        for slot in drop {
            self.forget(slot);
        }
        let prevs = self.durable.as_mut().map(|d| std::mem::take(&mut d.loaded_prev)).unwrap_or_default();
        for (slot, &steps) in &agreed {
            let Some(s) = self.sessions.get_mut(slot) else { continue };
            if s.steps != steps {
                let Some(&(prev_steps, prev)) = prevs.get(slot).filter(|p| p.0 == steps) else {
                    return Err(ProtocolError::Parameter(format!("session {slot} cannot go back to step {steps}")));
                };
                s.state = prev;
                s.steps = prev_steps;
                s.behind = 0;
                if let Some(d) = self.durable.as_mut() {
                    // Committed at the other server's checkpoint, which is its own
                    // checkpoint before too.
                    d.dirty.insert(*slot, (prev_steps, prev));
                }
            }
        }
        self.commit()
    }

    /// Starts a run of the servers: sends this server's session list (whether it keeps
    /// a store, and the store's id) as the first frame to the other server, reads the
    /// other's with `first`, and keeps the sessions both agree on
    /// ([`reconcile::agree`]). Both servers keep a store or neither does, and each store
    /// runs only beside the store it first ran with (a store lost, replaced or from
    /// another pair of servers is refused rather than let its sessions be dropped).
    fn agree(
        &mut self,
        to_peer: &mut BoxTx,
        first: impl FnOnce(crate::transport::Link) -> Result<Vec<u8>, TransportError>,
    ) -> Result<(), ProtocolError> {
        let durable = self.durable.is_some();
        let mine = self.held();
        let id = self.durable.as_ref().map_or([0; 16], |d| d.store.id());
        to_peer.send([&[u8::from(durable)][..], &id, &reconcile::encode(&mine)].concat())?;
        let link =
            if self.party == Party::P0 { crate::transport::Link::S1ToS0 } else { crate::transport::Link::S0ToS1 };
        let frame = first(link)?;
        let bad = |detail: String| ProtocolError::Frame { link, detail };
        let (&flag, rest) = frame.split_first().ok_or_else(|| bad("an empty session list".into()))?;
        if flag > 1 || rest.len() < 16 {
            return Err(bad(format!("a session list flagged {flag} of {} bytes", frame.len())));
        }
        let (peer_id, list) = rest.split_at(16);
        let peer_id: [u8; 16] = peer_id.try_into().expect("16 bytes");
        if (flag == 1) != durable {
            let (me, peer) = (self.party.index(), 1 - self.party.index());
            let (with, without) = if durable { (me, peer) } else { (peer, me) };
            return Err(ProtocolError::Parameter(format!(
                "server {with} keeps a session store and server {without} does not: give both --store, or neither"
            )));
        }
        let theirs = reconcile::decode(list, self.options.max_sessions).map_err(bad)?;
        if !durable {
            return Ok(());
        }
        if let Some(d) = &self.durable {
            d.store.pair_with(peer_id)?;
        }
        self.settle_agreed(&reconcile::agree(&mine, &theirs))?;
        self.wait_written(|_| false)
    }

    /// Whether the leader should send a checkpoint now: something waits for one, and
    /// `idle` (nothing else to plan) or [`COMMIT_EVERY`] passed.
    fn checkpoint_due(&self, idle: bool) -> bool {
        self.durable.as_ref().is_some_and(|d| {
            let waiting = !d.dirty.is_empty() || !d.fresh.is_empty() || !d.gone.is_empty() || !d.opens.is_empty();
            waiting && (idle || d.last.elapsed() >= COMMIT_EVERY)
        })
    }

    /// Whether opened sessions wait for their first commit (the follower commits them
    /// when idle: a session without a step may be committed at any time).
    fn fresh_waiting(&self) -> bool {
        self.durable.as_ref().is_some_and(|d| !d.fresh.is_empty())
    }

    /// Commits, at a checkpoint, every change since the last (nothing to write without a
    /// store or without changes); the opens and syncs it covers are answered once it is
    /// durable ([`Core::note_written`]).
    pub(crate) fn commit(&mut self) -> Result<(), ProtocolError> {
        self.write(false)
    }

    /// Commits the sessions opened since their last commit only (not a checkpoint).
    fn commit_fresh(&mut self) -> Result<(), ProtocolError> {
        self.write(true)
    }

    /// Hands the changes to the writer as one commit (a snapshot: the loop goes on).
    fn write(&mut self, fresh_only: bool) -> Result<(), ProtocolError> {
        let Some(d) = self.durable.as_mut() else { return Ok(()) };
        if !fresh_only {
            d.last = Instant::now();
        }
        let opens = std::mem::take(&mut d.opens);
        let changed = !d.fresh.is_empty() || (!fresh_only && (!d.dirty.is_empty() || !d.gone.is_empty()));
        if !changed {
            // Nothing to write: durable once the commits before it are.
            match d.writing.back_mut() {
                Some(last) => {
                    last.opens.extend(opens);
                    last.checkpoint |= !fresh_only;
                }
                None => opens.into_iter().for_each(|(reply, slot)| reply.fulfil(Ok(slot))),
            }
            return Ok(());
        }
        let now = crate::store::record_now();
        let mut upserts = Vec::with_capacity(d.dirty.len() + d.fresh.len());
        let mut record = |slot: Slot, at: Option<(u64, u64)>| {
            let Some(s) = self.sessions.get(&slot) else { return };
            let Some(&Some((machine, group))) = d.lanes.get(usize::from(s.lane)) else { return };
            let (owner, steps, state) = (s.owner, s.steps, s.state);
            let (prev_steps, prev) = at.unwrap_or((steps, state));
            let r = SessionRecord { machine, group, owner, steps, state, prev_steps, prev, created: 0, last_used: now };
            upserts.push((slot, r));
        };
        for slot in std::mem::take(&mut d.fresh) {
            // A fresh session stepped since (it cannot before its open is committed at
            // both servers) waits for the checkpoint.
            if !d.dirty.contains_key(&slot) {
                record(slot, None);
            }
        }
        if !fresh_only {
            for (slot, at) in std::mem::take(&mut d.dirty) {
                record(slot, Some(at));
            }
        }
        let gone = if fresh_only { Vec::new() } else { std::mem::take(&mut d.gone) };
        let records = upserts.iter().map(|(slot, r)| (*slot, r.steps)).collect();
        d.writer.submit(upserts, gone);
        d.writing.push_back(Batch { checkpoint: !fresh_only, records, opens });
        Ok(())
    }

    /// The writer's outcomes, to wait on beside other work (`None` without a store).
    fn written(&self) -> Option<Receiver<Written>> {
        self.durable.as_ref().map(|d| d.writer.written().clone())
    }

    /// Takes the oldest commit's outcome: once durable, its sessions' records count as
    /// committed, its opens are answered and so are the syncs it covers. A failed commit
    /// (a full or read-only disk) ends the run with the store's error.
    fn note_written(&mut self, w: Written) -> Result<(), ProtocolError> {
        let Some(d) = self.durable.as_mut() else { return Ok(()) };
        let batch = d.writing.pop_front().expect("one outcome per commit handed over");
        w.result?;
        if w.transaction {
            self.stats.commits.fetch_add(1, Ordering::Relaxed);
            self.stats.commit_micros.fetch_add(w.micros, Ordering::Relaxed);
        }
        self.stats.committed_sessions.fetch_add(batch.records.len() as u64, Ordering::Relaxed);
        for (reply, slot) in batch.opens {
            reply.fulfil(Ok(slot));
        }
        let mut heads = Vec::with_capacity(batch.records.len());
        for (slot, steps) in batch.records {
            if let Some(s) = self.sessions.get_mut(&slot) {
                s.note_stored(steps);
                heads.extend(self.machines.lane(s.lane).and_then(|(_, p)| match p {
                    Part::Group(g) => Some(slot.wrapping_sub(u64::from(g))),
                    Part::Level(_) => None,
                }));
            }
        }
        heads.sort_unstable();
        heads.dedup();
        for head in heads {
            self.answer_syncs(head);
        }
        Ok(())
    }

    /// Takes every outcome the writer has ready, without waiting.
    fn poll_written(&mut self) -> Result<(), ProtocolError> {
        while let Some(w) = self.durable.as_ref().and_then(|d| d.writer.written().try_recv().ok()) {
            self.note_written(w)?;
        }
        Ok(())
    }

    /// Why this server's store cannot take new work (its disk is read-only or under the
    /// reserve), checked at most every [`ROOM_EVERY`]; `None` with room or no store.
    fn short_of_room(&mut self) -> Option<String> {
        let reserve = self.options.store_reserve;
        let d = self.durable.as_mut()?;
        if d.room.0.elapsed() >= ROOM_EVERY {
            d.room = (Instant::now(), d.store.room(reserve).err().map(|e| e.to_string()));
        }
        d.room.1.clone()
    }

    /// Why a push must be refused for room: server 1 takes every push first and
    /// decides for both (its own store, and the leader's as its last plan said), so a
    /// push never reaches one server only.
    fn push_refused_for_room(&mut self) -> Option<String> {
        if self.party != Party::P1 {
            return None;
        }
        let peer_short = self.durable.as_ref().is_some_and(|d| d.peer_short);
        self.short_of_room().or_else(|| {
            peer_short.then(|| {
                "server 0's session store is short of disk room; new sessions and pushes are refused until \
                 there is room (what was acknowledged is kept)"
                    .to_string()
            })
        })
    }

    /// Whether a checkpoint's commit is not yet durable.
    fn checkpoint_writing(&self) -> bool {
        self.durable.as_ref().is_some_and(|d| d.writing.iter().any(|b| b.checkpoint))
    }

    /// Waits for the writer's outcomes until `enough` holds of what is still being
    /// written (`|_| false`: until every commit handed over is durable).
    fn wait_written(&mut self, enough: impl Fn(&VecDeque<Batch>) -> bool) -> Result<(), ProtocolError> {
        while let Some(d) = self.durable.as_ref().filter(|d| !d.writing.is_empty() && !enough(&d.writing)) {
            let w = d.writer.written().recv().map_err(|_| writer_stopped())?;
            self.note_written(w)?;
        }
        Ok(())
    }

    /// Stops writing to the store (the run is ending: what is in memory goes, what is
    /// committed stays).
    fn detach_store(&mut self) {
        self.durable = None;
    }

    /// The steps of session `slot` (a client's) every group has applied and, with a
    /// store, committed; `None` while a group's open is not yet committed.
    fn settled_steps(&self, head: Slot) -> Option<u64> {
        let durable = self.durable.is_some();
        let mut least = u64::MAX;
        for g in self.members(head) {
            let s = self.sessions.get(&g)?;
            least = least.min(if durable { s.stored_steps()? } else { s.steps });
        }
        Some(least)
    }

    /// Answers the syncs of session `head` its groups' settled steps now cover.
    fn answer_syncs(&mut self, head: Slot) {
        if !self.syncs.contains_key(&head) {
            return;
        }
        let Some(at) = self.settled_steps(head) else { return };
        let waiting = self.syncs.remove(&head).unwrap_or_default();
        let (done, left): (Vec<Sync>, Vec<Sync>) = waiting.into_iter().partition(|(want, _)| *want <= at);
        for (_, reply) in done {
            reply.fulfil(Ok(at));
        }
        if !left.is_empty() {
            self.syncs.insert(head, left);
        }
    }

    /// Records how many correlations the pools hold ready (a metric).
    fn note_pools(&self) {
        let ready: usize = self.pools.values().map(Pool::available).sum();
        self.stats.pool_ready.store(ready as u64, Ordering::Relaxed);
    }

    fn width(&self, lane: u16, kind: WaveKind) -> Option<u32> {
        self.machines.table(lane, kind).map(Table::domain_bits)
    }

    /// The machine session `slot` (a client's: its first group) belongs to.
    fn machine_of(&self, slot: Slot) -> Option<&'a Machine> {
        let lane = self.sessions.get(&slot)?.lane;
        self.machines.lane(lane).map(|(m, _)| m)
    }

    /// The slots of the groups of the session the client knows as `slot`.
    fn members(&self, slot: Slot) -> Members {
        Members { next: slot, left: self.machine_of(slot).map_or(1, |m| m.plan.groups.len() as u64) }
    }

    fn unknown(&self, slot: Slot) -> ServiceError {
        ServiceError::UnknownSession { session: slot, idle_seconds: self.options.idle_timeout.as_secs() }
    }

    /// The session `slot` if `owner` may use it.
    fn session(&mut self, slot: Slot, owner: Owner) -> Result<&mut Session, ServiceError> {
        match self.owned(slot, owner)? {
            s if s.broken => Err(broken(slot)),
            s => Ok(s),
        }
    }

    /// The session `slot` if `owner` may close it (a broken session too). Only the
    /// first group of a set session is the client's to name.
    fn owned(&mut self, slot: Slot, owner: Owner) -> Result<&mut Session, ServiceError> {
        let unknown = self.unknown(slot);
        let catalog = self.machines;
        match self.sessions.get_mut(&slot) {
            Some(s) if s.closed || !matches!(catalog.lane(s.lane), Some((_, Part::Group(0)))) => Err(unknown),
            Some(s) if s.owner != owner => Err(ServiceError::NotOwner { session: slot }),
            Some(s) => {
                s.last_used = super::session::clock_ms();
                Ok(s)
            }
            None => Err(unknown),
        }
    }

    /// Whether a group session of the set session `slot` is broken (server 1).
    fn any_broken(&self, slot: Slot) -> bool {
        self.members(slot).any(|m| self.sessions.get(&m).is_some_and(|s| s.broken))
    }

    /// Opens `slot` (and, for a set, one slot per further group after it) for `owner`,
    /// within the limits.
    fn open(&mut self, machine: u16, owner: Owner, slot: Slot) -> Result<Slot, ServiceError> {
        let m =
            self.machines.machines.get(machine as usize).ok_or(ServiceError::Limit(format!("no machine {machine}")))?;
        if self.stopping {
            return Err(ServiceError::Stopped { reason: "the server is shutting down".into() });
        }
        if let Some(why) = self.short_of_room() {
            return Err(ServiceError::Limit(why));
        }
        let groups = m.plan.groups.len();
        if self.sessions.len() + groups > self.options.max_sessions {
            return Err(ServiceError::Limit(format!(
                "{} sessions are open, the most a server holds",
                self.sessions.len()
            )));
        }
        let mine = self.per_owner.get(&owner).map_or(0, |o| o.0);
        if mine + groups > self.options.max_sessions_per_client {
            return Err(ServiceError::Limit(format!("this client has {mine} sessions open, the most it may")));
        }
        let slots = (0..groups as u64).map(|g| slot.wrapping_add(g));
        if let Some(taken) = slots.clone().find(|s| self.sessions.contains_key(s)) {
            return Err(ServiceError::Limit(format!("session {taken} is already open")));
        }
        for (g, at) in slots.enumerate() {
            let state = S::init(self.party, m.plan.groups[g].start);
            self.sessions.insert(at, Session::new(m.first_lane + g as u16, owner, state));
            if let Some(d) = self.durable.as_mut() {
                // A slot forgotten since the last commit (server 1 opens the slot a
                // client names) is written again, not deleted after.
                d.gone.retain(|&g| g != at);
                d.fresh.insert(at);
            }
        }
        if m.is_set() {
            self.sets.insert(slot, SetSession::default());
        }
        self.per_owner.entry(owner).or_default().0 += groups;
        self.stats.sessions.fetch_add(groups as u64, Ordering::Relaxed);
        Ok(slot)
    }

    /// Appends a push's shares to every group of the session; returns the session's
    /// symbols pushed in all.
    fn push(
        &mut self,
        slot: Slot,
        owner: Owner,
        offset: u64,
        count: usize,
        shares: &[u8],
    ) -> Result<u64, ServiceError> {
        if self.stopping {
            return Err(ServiceError::Stopped { reason: "the server is shutting down".into() });
        }
        if let Some(why) = self.push_refused_for_room() {
            return Err(ServiceError::Limit(why));
        }
        // Server 1 takes a push first and decides the limit; server 0 may hold one
        // symbol more of a session than server 1 while a step of it is in flight (the
        // follower applies a wave before the leader), so it allows one more.
        let max = self.options.max_pending + usize::from(self.party == Party::P0);
        let s = self.session(slot, owner)?;
        if offset != s.pushed() {
            return Err(out_of_step(slot, s.pushed(), offset));
        }
        let m = self.machine_of(slot).expect("an open session has a machine");
        let width = m.interface.symbol_bits;
        let members = self.members(slot);
        if self.any_broken(slot) {
            return Err(broken(slot));
        }
        let most = members.map(|g| self.sessions.get(&g).map_or(0, |s| s.symbols.len())).max().unwrap_or(0);
        if most + count > max {
            return Err(ServiceError::Limit(format!(
                "session {slot} would hold {} symbols not yet applied; at most {max}",
                most + count
            )));
        }
        let values = unpack(shares, width, count).ok_or_else(|| {
            ServiceError::BadRequest(format!("push of {count} symbols: shares are not {count} values of {width} bits"))
        })?;
        // Every group holds its copy of the symbols, and each copy counts. Server 0 may
        // hold up to the lookups in flight more than server 1 (which decides), as for
        // one session above.
        let held = count * members.left as usize;
        let slack = if self.party == Party::P0 { 4 * self.options.window * self.options.max_wave } else { 0 };
        let mine = self.per_owner.get(&owner).map_or(0, |o| o.1);
        if mine + held > self.options.max_pending_per_client + slack {
            return Err(ServiceError::Limit(format!(
                "this client would hold {} symbols not yet applied; at most {}",
                mine + held,
                self.options.max_pending_per_client
            )));
        }
        if self.pending + held > self.options.max_pending_total + slack {
            return Err(ServiceError::Limit(format!(
                "the server would hold {} symbols not yet applied; at most {}",
                self.pending + held,
                self.options.max_pending_total
            )));
        }
        for g in members {
            let s = self.sessions.get_mut(&g).expect("a set session's groups stay together");
            s.symbols.extend(values.iter().map(|&v| v as u32));
        }
        self.pending += held;
        self.per_owner.entry(owner).or_default().1 += held;
        Ok(offset + count as u64)
    }

    /// Records a release; answers it at once when it reveals the state and is due (or,
    /// at server 1, when its output was computed before it arrived).
    fn release(&mut self, slot: Slot, owner: Owner, at: u64, reply: Promise<Result<OutputShare, ServiceError>>) {
        if self.stopping {
            return reply.fulfil(Err(ServiceError::Stopped { reason: "the server is shutting down".into() }));
        }
        let early = self.early.get(&slot).is_some_and(|e| e.1 == at);
        let leader = self.party == Party::P0;
        let pushed = match self.session(slot, owner) {
            Err(e) => return reply.fulfil(Err(e)),
            Ok(s) => s.pushed(),
        };
        if pushed != at {
            return reply.fulfil(Err(out_of_step(slot, pushed, at)));
        }
        let m = self.machine_of(slot).expect("an open session has a machine");
        if m.is_set() {
            if self.any_broken(slot) {
                return reply.fulfil(Err(broken(slot)));
            }
            // The leader plans each group's output lookup from a marker; the follower
            // follows the plans and needs none.
            if leader {
                for g in self.members(slot) {
                    let s = self.sessions.get_mut(&g).expect("a set session's groups stay together");
                    s.releases.push_back(Release { at, reply: None });
                }
            }
            let set = self.sets.get_mut(&slot).expect("a set session has its combination");
            set.replies.push_back(Release { at, reply: Some(reply) });
            settle::<S>(m, set);
            return;
        }
        if early {
            let (share, steps) = self.early.remove(&slot).expect("checked");
            return reply.fulfil(Ok((share, steps)));
        }
        let plan = &m.plan.groups[0];
        let s = self.sessions.get_mut(&slot).expect("checked");
        s.releases.push_back(Release { at, reply: Some(reply) });
        if plan.accept.is_none() {
            s.answer_state_releases(low_mask(plan.output_bits()));
        }
    }

    /// Answers an open: at once, or with a store once the session is committed.
    fn answer_open(&mut self, r: Result<Slot, ServiceError>, reply: Promise<Result<Slot, ServiceError>>) {
        match (r, self.durable.as_mut()) {
            (Ok(slot), Some(d)) => d.opens.push((reply, slot)),
            (r, _) => reply.fulfil(r),
        }
    }

    /// Answers with the session's steps once every symbol before `at` is applied (and,
    /// with a store, committed) at this server.
    fn sync(&mut self, slot: Slot, owner: Owner, at: u64, reply: Promise<Result<u64, ServiceError>>) {
        let pushed = match self.session(slot, owner) {
            Err(e) => return reply.fulfil(Err(e)),
            Ok(s) => s.pushed(),
        };
        if at > pushed {
            return reply.fulfil(Err(out_of_step(slot, pushed, at)));
        }
        self.syncs.entry(slot).or_default().push((at, reply));
        self.answer_syncs(slot);
    }

    /// Closes the session `slot` of `owner` (every group of a set). From here it no
    /// longer counts against the client's sessions, though waves in flight (and, at
    /// server 1, plans until the leader's drop arrives) may still name it: a client that
    /// closed a session may open another at once.
    fn close(&mut self, slot: Slot, owner: Owner) -> Result<(), ServiceError> {
        self.owned(slot, owner)?;
        for g in self.members(slot) {
            if let Some(s) = self.sessions.get_mut(&g)
                && !s.closed
            {
                s.closed = true;
                if let Some(o) = self.per_owner.get_mut(&s.owner) {
                    o.0 -= 1;
                }
            }
        }
        Ok(())
    }

    /// Forgets a session (one group's, or a client's first group and its set's
    /// combination): its pending releases fail.
    fn forget(&mut self, slot: Slot) {
        self.early.remove(&slot);
        let unknown = self.unknown(slot);
        for (_, reply) in self.syncs.remove(&slot).unwrap_or_default() {
            reply.fulfil(Err(unknown.clone()));
        }
        if let Some(d) = self.durable.as_mut()
            && self.sessions.contains_key(&slot)
        {
            d.dirty.remove(&slot);
            d.fresh.remove(&slot);
            d.gone.push(slot);
        }
        if let Some(mut set) = self.sets.remove(&slot) {
            set.fail_releases(|| unknown.clone());
        }
        if let Some(mut s) = self.sessions.remove(&slot) {
            s.fail_releases(|| unknown.clone());
            self.pending -= s.symbols.len();
            if let Some(o) = self.per_owner.get_mut(&s.owner) {
                // A closed session stopped counting when it was closed.
                if !s.closed {
                    o.0 -= 1;
                }
                o.1 -= s.symbols.len();
                if o.0 == 0 && o.1 == 0 {
                    self.per_owner.remove(&s.owner);
                }
            }
            self.stats.sessions.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// This server's index shares for a wave, in plan order, and the entries it cannot
    /// serve. At the leader every entry is served (it planned from its own sessions), so
    /// any gap is a protocol error. The follower serves a gap left by an interrupted
    /// client request (a release it refused as out of step; a session it lacks symbols
    /// of) with index 0 under the wave's fresh mask, so the wave stays whole, and then
    /// [`Core::apply`] skips it: no client gets an answer from it, and a session that
    /// missed a step is marked broken, so no later release pairs diverged shares.
    fn indices(&self, plan: &WavePlan, tolerant: bool) -> Result<(Vec<u64>, Vec<bool>), String> {
        let mut out = Vec::with_capacity(plan.lookups());
        let mut void = vec![false; plan.entries.len()];
        let lane = self.machines.lane(plan.lane);
        for (e, &(slot, k)) in plan.entries.iter().enumerate() {
            let gap = match (lane, plan.kind) {
                (Some((m, Part::Level(l))), WaveKind::Combine) => self.level_index(m, l as usize, slot, k, &mut out),
                (Some((m, Part::Group(g))), kind) if kind != WaveKind::Combine => {
                    self.group_index(&m.plan.groups[g as usize], plan, slot, k, tolerant, &mut out)
                }
                _ => Some(format!("lane {} has no {:?} lookups", plan.lane, plan.kind)),
            };
            if let Some(gap) = gap {
                if !tolerant {
                    return Err(gap);
                }
                void[e] = true;
                out.extend(std::iter::repeat_n(0, k as usize));
            }
        }
        Ok((out, void))
    }

    /// Appends the index shares of group session `slot`'s `k` lookups in `plan` (a wave
    /// of group machine `group`), or says why it cannot.
    fn group_index(
        &self,
        group: &crate::protocol::plan::Plan,
        plan: &WavePlan,
        slot: Slot,
        k: u32,
        tolerant: bool,
        out: &mut Vec<u64>,
    ) -> Option<String> {
        let s = match self.sessions.get(&slot) {
            None => return Some(format!("session {slot} is not open here")),
            Some(s) if s.lane != plan.lane => return Some(format!("session {slot} is not on lane {}", plan.lane)),
            Some(s) => s,
        };
        match plan.kind {
            WaveKind::Class => {
                let raw = s.symbols.range(s.classified as usize..);
                if raw.len() < k as usize {
                    return Some(format!("session {slot} has {} symbols to classify, not {k}", raw.len()));
                }
                out.extend(raw.take(k as usize).map(|&a| u64::from(a)));
            }
            WaveKind::Step => {
                let ready = if group.classes.is_some() { s.classified as usize } else { s.symbols.len() };
                if ready == 0 {
                    return Some(format!("session {slot} has no symbol to step on"));
                }
                out.push(S::index(s.state, u64::from(s.symbols[0]), group.kx()));
            }
            // The follower serves an output lookup whose release has not arrived yet
            // too (its share waits in `early`, or in the set's combination): the lookup
            // reads only the state share, which both servers hold at this step.
            WaveKind::Accept => {
                if !tolerant && s.releases.front().is_none_or(|r| r.at != s.steps) {
                    return Some(format!("session {slot} has no release due at step {}", s.steps));
                }
                out.push(s.state);
            }
            WaveKind::Combine => return Some(format!("session {slot}: a group has no combine lookups")),
        }
        None
    }

    /// Appends the index shares of combination level `l` of set session `slot`
    /// (`k` nodes), or says why it cannot.
    fn level_index(&self, m: &Machine, l: usize, slot: Slot, k: u32, out: &mut Vec<u64>) -> Option<String> {
        let levels = &m.plan.levels;
        let Some(set) = self.sets.get(&slot) else { return Some(format!("set session {slot} is not open here")) };
        let Some(c) = set.current(levels.len()).map(|i| &set.combining[i]) else {
            return Some(format!("set session {slot} has no release to combine"));
        };
        if c.values.len() != l + 1 || levels[l].nodes.len() != k as usize {
            return Some(format!("set session {slot} is not at level {l} of its combination"));
        }
        out.extend(level_index::<S>(&levels[l], &c.values[l], 1));
        None
    }

    /// Writes a finished wave's output shares into its sessions.
    fn apply(&mut self, plan: &WavePlan, out: &[u64], void: &[bool]) {
        let catalog = self.machines;
        let Some((m, part)) = catalog.lane(plan.lane) else { return };
        let mut at = 0;
        for (&(slot, k), &void) in plan.entries.iter().zip(void) {
            let shares = &out[at..at + k as usize];
            at += k as usize;
            match part {
                Part::Level(l) if !void => self.apply_level(m, l as usize, slot, shares),
                Part::Level(_) => {}
                Part::Group(g) => self.apply_group(m, g as usize, plan.kind, slot, shares, void),
            }
        }
        // Waves of no lookups (drops, heartbeats) are not counted.
        if !plan.entries.is_empty() {
            self.stats.waves.fetch_add(1, Ordering::Relaxed);
        }
        self.stats.lookups.fetch_add(out.len() as u64, Ordering::Relaxed);
        if plan.kind == WaveKind::Step {
            self.stats.transitions.fetch_add(out.len() as u64, Ordering::Relaxed);
        }
    }

    /// Writes one group session's output shares of a wave of `kind`; a `void` entry
    /// (the follower lacked what the wave read) breaks the session.
    fn apply_group(&mut self, m: &Machine, g: usize, kind: WaveKind, slot: Slot, out: &[u64], void: bool) {
        let plan = &m.plan.groups[g];
        let head = slot.wrapping_sub(g as u64);
        if void {
            if kind != WaveKind::Accept {
                for broke in [slot, head] {
                    if let Some(s) = self.sessions.get_mut(&broke) {
                        s.broken = true;
                        s.fail_releases(|| broken(head));
                    }
                }
                if let Some(set) = self.sets.get_mut(&head) {
                    set.fail_releases(|| broken(head));
                }
            }
            return;
        }
        let s = self.sessions.get_mut(&slot).expect("indices() checked every session");
        match kind {
            WaveKind::Class => {
                for (j, &c) in out.iter().enumerate() {
                    s.symbols[s.classified as usize + j] = c as u32;
                }
                s.classified += out.len() as u32;
            }
            WaveKind::Step => {
                let before = std::mem::replace(&mut s.state, out[0]);
                if let Some(d) = self.durable.as_mut() {
                    // The first step since the last checkpoint keeps where it was.
                    d.dirty.entry(slot).or_insert((s.steps, before));
                    if s.behind != NOT_STORED {
                        s.behind += 1;
                    }
                }
                s.symbols.pop_front();
                self.pending -= 1;
                if let Some(o) = self.per_owner.get_mut(&s.owner) {
                    o.1 -= 1;
                }
                s.classified = s.classified.saturating_sub(1);
                s.steps += 1;
                if plan.accept.is_none() {
                    s.answer_state_releases(low_mask(plan.output_bits()));
                } else if !m.is_set() {
                    s.fail_passed_releases();
                }
            }
            // A set's group output goes to the set's combination (the leader's marker
            // for it is done); the shares stay as the lookup gave them, since additive
            // counts are summed before any reduction.
            WaveKind::Accept if m.is_set() => {
                if s.releases.front().is_some_and(|r| r.at == s.steps) {
                    s.releases.pop_front();
                }
                let steps = s.steps;
                if let Some(set) = self.sets.get_mut(&head) {
                    set.record(g, m.plan.groups.len(), steps, out[0]);
                    settle::<S>(m, set);
                }
            }
            WaveKind::Accept => {
                let share = (vec![out[0] & low_mask(plan.output_bits())], s.steps);
                match s.releases.front() {
                    Some(r) if r.at == s.steps => s.releases.pop_front().expect("checked").answer(Ok(share)),
                    // Server 1, before the release arrived (see `early`).
                    _ => {
                        self.early.insert(slot, share);
                    }
                }
            }
            WaveKind::Combine => {}
        }
        // Without a store a step is settled once applied; with one, once committed.
        if kind == WaveKind::Step && self.durable.is_none() {
            self.answer_syncs(head);
        }
    }

    /// Writes level `l`'s node shares into set session `slot`'s combination.
    fn apply_level(&mut self, m: &Machine, l: usize, slot: Slot, out: &[u64]) {
        let Some(set) = self.sets.get_mut(&slot) else { return };
        let Some(i) = set.current(m.plan.levels.len()) else { return };
        let c = &mut set.combining[i];
        if c.values.len() == l + 1 {
            c.values.push(out.to_vec());
            settle::<S>(m, set);
        }
    }

    /// One server's output shares for a wave's lookups.
    fn lookup(&self, plan: &WavePlan, taken: &Taken<S>, u: &[u64]) -> Result<Vec<u64>, ProtocolError> {
        let table = self.machines.table(plan.lane, plan.kind).expect("width() checked the table");
        let mut out = vec![0u64; u.len()];
        let mut at = 0;
        for (keys, range) in &taken.parts {
            let n = range.len();
            lookup_range::<S>(table, keys, range.clone(), &u[at..at + n], &mut out[at..at + n])?;
            at += n;
        }
        Ok(out)
    }

    /// Handles the requests both servers treat alike; returns those it does not.
    fn handle_common(&mut self, req: Request) -> Option<Request> {
        match req {
            Request::Push { slot, owner, offset, count, shares, reply } => {
                let r = self.push(slot, owner, offset, count, &shares);
                self.stats.pushes.fetch_add(1, Ordering::Relaxed);
                reply.fulfil(r);
                None
            }
            Request::Release { slot, owner, at, reply } => {
                self.release(slot, owner, at, reply);
                None
            }
            Request::Sync { slot, owner, at, reply } => {
                self.sync(slot, owner, at, reply);
                None
            }
            Request::Stop => {
                self.stopping = true;
                None
            }
            other => Some(other),
        }
    }
}

/// Runs the local levels of every release of a set session whose groups' outputs
/// are in, then answers the releases whose combination is done.
fn settle<S: Sharing>(m: &Machine, set: &mut SetSession) {
    for c in set.combining.iter_mut().filter(|c| !c.values.is_empty()) {
        local_levels::<S>(&m.plan, &mut c.values, 1);
    }
    answer_combined(set, m.plan.levels.len(), low_mask(m.plan.out_bits));
}

/// Answers the client's releases whose combination (of `levels` levels) is done,
/// oldest first. At server 1 a combination done before its release arrived waits for
/// it, and one whose release never came (its client gave up) gives way to a later
/// release.
fn answer_combined(set: &mut SetSession, levels: usize, mask: u64) {
    while let Some(c) = set.combining.front().filter(|c| c.values.len() == levels + 1) {
        match set.replies.front() {
            Some(r) if r.at == c.at => {
                let c = set.combining.pop_front().expect("checked");
                let r = set.replies.pop_front().expect("checked");
                let values = c.values.into_iter().last().expect("at least the groups' outputs");
                r.answer(Ok((values.into_iter().map(|v| v & mask).collect(), c.at)));
            }
            Some(r) if r.at > c.at => {
                set.combining.pop_front();
            }
            _ => break,
        }
    }
}

/// The most lookups of a wave of `kind` formed from `ready` waiting
/// sessions: like the batch engine's chunks, at least two waves above [`MIN_SPLIT`]
/// ready sessions, so a server has one to compute while the other's openings travel.
/// Class and combine waves take several lookups a session, up to four times as many.
fn wave_lookups(ready: usize, o: &Options, kind: WaveKind) -> usize {
    let max = ready.div_ceil(2).max(MIN_SPLIT).min(o.max_wave);
    if matches!(kind, WaveKind::Class | WaveKind::Combine) { max * 4 } else { max }
}

/// The slots of a session's groups, in order: the client's slot, then one more per
/// further group of a set.
#[derive(Clone, Copy, Debug)]
struct Members {
    next: Slot,
    left: u64,
}

impl Iterator for Members {
    type Item = Slot;
    fn next(&mut self) -> Option<Slot> {
        (self.left > 0).then(|| {
            self.left -= 1;
            self.next = self.next.wrapping_add(1);
            self.next.wrapping_sub(1)
        })
    }
}

/// A wave the leader has sent and not yet finished.
struct InFlight<S: Sharing> {
    plan: WavePlan,
    width: u32,
    open: Vec<u64>,
    taken: Taken<S>,
}

/// Server 0.
pub struct Leader<'a, S: Sharing> {
    core: Core<'a, S>,
    /// Sessions with work and no wave in flight, per machine and wave kind.
    ready: BTreeMap<(u16, WaveKind), VecDeque<Slot>>,
    /// Which ready queue the next wave comes from (round robin).
    turn: usize,
    next_slot: Slot,
    /// Sessions forgotten here, to be forgotten by the follower with the next plan.
    drops: Vec<Slot>,
    wave: u32,
    flight: VecDeque<InFlight<S>>,
    /// A checkpoint is in flight (durable only).
    checkpointing: bool,
}

impl<'a, S: Sharing> Leader<'a, S> {
    /// The leader over `core`, numbering sessions from `first_slot` (a fresh random
    /// base each time the servers' link is made, so a session of an earlier link is
    /// never mistaken for one of this link's).
    pub fn new(core: Core<'a, S>, first_slot: Slot) -> Self {
        Leader {
            core,
            ready: BTreeMap::new(),
            turn: 0,
            next_slot: first_slot,
            drops: Vec::new(),
            wave: 0,
            flight: VecDeque::new(),
            checkpointing: false,
        }
    }

    /// Serves until stopped (a [`Request::Stop`], or every client handle dropped) and
    /// no wave is in flight. Errors are a broken link or a peer out of step.
    pub fn run(
        mut self,
        inbox: &Receiver<Request>,
        mut to_peer: BoxTx,
        mut from_peer: BoxRx,
    ) -> Result<(), ProtocolError> {
        let mut swept = Instant::now();
        let mut beat = Instant::now();
        let mut open = true;
        self.core.agree(&mut to_peer, |_| from_peer.recv())?;
        let written = self.core.written().unwrap_or_else(crossbeam_channel::never);
        loop {
            while let Ok(req) = inbox.try_recv() {
                self.handle(req);
            }
            self.core.poll_written()?;
            if swept.elapsed() >= SWEEP {
                self.evict_idle();
                swept = Instant::now();
            }
            // A checkpoint when nothing else can be planned, or when due; one at a time
            // (the next leaves once this server's commit of the last is durable).
            let idle = self.ready.values().all(VecDeque::is_empty);
            let one_at_a_time = !self.checkpointing && !self.core.checkpoint_writing();
            if one_at_a_time && self.flight.len() < self.core.options.window && self.core.checkpoint_due(idle) {
                let mut plan = self.empty_plan();
                plan.checkpoint = true;
                plan.drops = std::mem::take(&mut self.drops);
                plan.drops.sort_unstable();
                self.checkpointing = true;
                self.open(plan, &mut to_peer)?;
            }
            while !self.core.stopping && self.flight.len() < self.core.options.window {
                match self.form() {
                    Some(plan) => {
                        self.open(plan, &mut to_peer)?;
                        beat = Instant::now();
                    }
                    None => break,
                }
            }
            if self.flight.is_empty() && !self.core.stopping && beat.elapsed() >= HEARTBEAT {
                let plan = self.empty_plan();
                self.open(plan, &mut to_peer)?;
                beat = Instant::now();
            }
            if !self.flight.is_empty() {
                self.finish(&mut from_peer)?;
                continue;
            }
            if self.core.stopping || !open {
                break;
            }
            crossbeam_channel::select! {
                recv(inbox) -> req => match req {
                    Ok(req) => self.handle(req),
                    Err(_) => open = false,
                },
                recv(written) -> w => self.core.note_written(w.map_err(|_| writer_stopped())?)?,
                default(SWEEP) => {}
            }
        }
        let slots: Vec<Slot> = self.core.sessions.keys().copied().collect();
        for slot in slots {
            if let Some(s) = self.core.sessions.get_mut(&slot) {
                s.fail_releases(|| ServiceError::Stopped { reason: "the server shut down".into() });
            }
        }
        Ok(())
    }

    fn handle(&mut self, req: Request) {
        let touched = match &req {
            Request::Push { slot, .. } | Request::Release { slot, .. } => Some(*slot),
            _ => None,
        };
        let Some(req) = self.core.handle_common(req) else {
            if let Some(slot) = touched {
                for g in self.core.members(slot) {
                    self.enqueue(g);
                }
            }
            return;
        };
        match req {
            Request::Open { machine, owner, reply, .. } => {
                // Past any kept session (from the store) the slots would run into.
                let groups =
                    self.core.machines.machines.get(machine as usize).map_or(1, |m| m.plan.groups.len() as u64);
                while (0..groups).any(|g| self.core.sessions.contains_key(&self.next_slot.wrapping_add(g))) {
                    self.next_slot = self.next_slot.wrapping_add(1);
                }
                let slot = self.next_slot;
                let r = self.core.open(machine, owner, slot);
                if r.is_ok() {
                    self.next_slot = self.next_slot.wrapping_add(self.core.members(slot).left);
                }
                self.core.answer_open(r, reply);
            }
            Request::Close { slot, owner, reply } => {
                let r = self.core.close(slot, owner);
                if r.is_ok() {
                    for g in self.core.members(slot) {
                        let s = self.core.sessions.get_mut(&g).expect("a set session's groups stay together");
                        if !s.in_flight {
                            self.core.forget(g);
                            self.drops.push(g);
                        }
                    }
                }
                reply.fulfil(r);
            }
            _ => {}
        }
    }

    /// Puts a session that has work into its ready queue (after a request or a wave
    /// touched it).
    fn enqueue(&mut self, slot: Slot) {
        let Some(s) = self.core.sessions.get_mut(&slot) else { return };
        if s.queued {
            return;
        }
        let plan = self.core.machines.group(s.lane).expect("sessions are on group lanes");
        if let Some(kind) = s.next_wave(plan.classes.is_some(), plan.accept.is_some()) {
            s.queued = true;
            self.ready.entry((s.lane, kind)).or_default().push_back(slot);
        }
    }

    /// Puts a set session whose oldest release waits for a level of its combination
    /// into that level's ready queue.
    fn enqueue_set(&mut self, slot: Slot) {
        let Some(m) = self.core.machine_of(slot) else { return };
        let Some(set) = self.core.sets.get_mut(&slot) else { return };
        if set.queued || set.in_flight {
            return;
        }
        if let Some(i) = set.current(m.plan.levels.len()) {
            let level = set.combining[i].values.len() - 1;
            set.queued = true;
            let lane = m.first_lane + (m.plan.groups.len() + level) as u16;
            self.ready.entry((lane, WaveKind::Combine)).or_default().push_back(slot);
        }
    }

    /// The next wave: sessions of one machine needing one kind of lookup, up to the
    /// wave limit; a plan of no lookups when only drops are waiting.
    fn form(&mut self) -> Option<WavePlan> {
        self.ready.retain(|_, q| !q.is_empty());
        let plan = match self.ready.keys().nth(self.turn % self.ready.len().max(1)).copied() {
            Some((lane, kind)) => {
                self.turn = self.turn.wrapping_add(1);
                let entries = if kind == WaveKind::Combine { self.gather_sets(lane) } else { self.gather(lane, kind) };
                if entries.is_empty() {
                    return self.form();
                }
                WavePlan {
                    wave: self.wave,
                    lane,
                    kind,
                    epoch: 0,
                    first: 0,
                    entries,
                    drops: Vec::new(),
                    checkpoint: false,
                    short: false,
                }
            }
            None if !self.drops.is_empty() => self.empty_plan(),
            None => return None,
        };
        let mut plan = plan;
        plan.drops = std::mem::take(&mut self.drops);
        plan.drops.sort_unstable();
        Some(plan)
    }

    /// A wave of no lookups: it carries drops, or is a heartbeat.
    fn empty_plan(&self) -> WavePlan {
        WavePlan {
            wave: self.wave,
            lane: 0,
            kind: WaveKind::Step,
            epoch: 0,
            first: 0,
            entries: Vec::new(),
            drops: Vec::new(),
            checkpoint: false,
            short: false,
        }
    }

    /// Takes sessions from the `(lane, kind)` queue into a wave's entries.
    fn gather(&mut self, lane: u16, kind: WaveKind) -> Vec<(Slot, u32)> {
        let m = self.core.machines.group(lane).expect("group lanes queue group sessions");
        let (classes, accept) = (m.classes.is_some(), m.accept.is_some());
        let queue = self.ready.get_mut(&(lane, kind)).expect("chosen among the queues");
        let cap = wave_lookups(queue.len(), self.core.options, kind);
        let (mut entries, mut moved, mut lookups) = (Vec::new(), Vec::new(), 0usize);
        while lookups < cap {
            let Some(slot) = queue.pop_front() else { break };
            let Some(s) = self.core.sessions.get_mut(&slot) else { continue };
            s.queued = false;
            match s.next_wave(classes, accept) {
                Some(k) if k == kind => {
                    let n = match kind {
                        WaveKind::Class => {
                            (s.symbols.len() - s.classified as usize).min(CLASS_AHEAD).min(cap - lookups)
                        }
                        _ => 1,
                    };
                    s.in_flight = true;
                    entries.push((slot, n as u32));
                    lookups += n;
                }
                Some(_) => moved.push(slot),
                None => {}
            }
        }
        for slot in moved {
            self.enqueue(slot);
        }
        entries.sort_unstable();
        entries
    }

    /// Takes set sessions from combine lane `lane`'s queue into a wave's entries: each
    /// looks up every node of the level for its oldest release.
    fn gather_sets(&mut self, lane: u16) -> Vec<(Slot, u32)> {
        let Some((m, Part::Level(level))) = self.core.machines.lane(lane) else { return Vec::new() };
        let (levels, nodes) = (m.plan.levels.len(), m.plan.levels[level as usize].nodes.len());
        let queue = self.ready.get_mut(&(lane, WaveKind::Combine)).expect("chosen among the queues");
        // A level has at most 4 × max_wave nodes (checked when the service starts).
        let cap = wave_lookups(queue.len(), self.core.options, WaveKind::Combine).max(nodes);
        let (mut entries, mut lookups) = (Vec::new(), 0usize);
        while lookups + nodes <= cap {
            let Some(slot) = queue.pop_front() else { break };
            let Some(set) = self.core.sets.get_mut(&slot) else { continue };
            set.queued = false;
            let at = set.current(levels).map(|i| set.combining[i].values.len() - 1);
            if set.in_flight || at != Some(level as usize) {
                continue;
            }
            set.in_flight = true;
            entries.push((slot, nodes as u32));
            lookups += nodes;
        }
        entries.sort_unstable();
        entries
    }

    /// Sends a wave's plan and openings.
    fn open(&mut self, mut plan: WavePlan, to_peer: &mut BoxTx) -> Result<(), ProtocolError> {
        let width = self.core.width(plan.lane, plan.kind).expect("waves are formed for existing lookups");
        let pool = self.core.pools.get_mut(&width).expect("a pool per width");
        (plan.epoch, plan.first) = (pool.epoch(), pool.next());
        let taken = pool.take(plan.lookups())?;
        self.core.note_pools();
        plan.short = self.core.short_of_room().is_some();
        let (index, _) =
            self.core.indices(&plan, false).map_err(|detail| ProtocolError::Frame { link: to_peer.link(), detail })?;
        let open: Vec<u64> = taken.masks.iter().zip(&index).map(|(&r, &i)| S::open(i, r, width)).collect();
        to_peer.send(plan.encode(&open, width))?;
        self.wave = self.wave.wrapping_add(1);
        self.flight.push_back(InFlight { plan, width, open, taken });
        Ok(())
    }

    /// Finishes the oldest wave in flight once the follower's openings arrive.
    fn finish(&mut self, from_peer: &mut BoxRx) -> Result<(), ProtocolError> {
        let f = self.flight.pop_front().expect("a wave is in flight");
        let n = f.plan.lookups();
        let peer = decode_openings(&from_peer.recv()?, from_peer.link(), f.plan.wave, n, f.width)?;
        let u: Vec<u64> = f.open.iter().zip(&peer).map(|(&m, &p)| S::combine(m, p, f.width)).collect();
        let out = self.core.lookup(&f.plan, &f.taken, &u)?;
        drop(f.taken);
        self.core.apply(&f.plan, &out, &vec![false; f.plan.entries.len()]);
        if f.plan.checkpoint {
            // Every wave before it is finished here, none after it: the follower
            // commits the same state from when it reached the checkpoint.
            self.core.commit()?;
            self.checkpointing = false;
            return Ok(());
        }
        if f.plan.kind == WaveKind::Combine {
            // A set closed meanwhile is gone; the others go on to their next level.
            for &(slot, _) in &f.plan.entries {
                if let Some(set) = self.core.sets.get_mut(&slot) {
                    set.in_flight = false;
                }
                self.enqueue_set(slot);
            }
            return Ok(());
        }
        let set_group = match self.core.machines.lane(f.plan.lane) {
            Some((m, Part::Group(g))) if m.is_set() && f.plan.kind == WaveKind::Accept => Some(u64::from(g)),
            _ => None,
        };
        for &(slot, _) in &f.plan.entries {
            let s = self.core.sessions.get_mut(&slot).expect("sessions in flight stay");
            s.in_flight = false;
            if s.closed {
                self.core.forget(slot);
                self.drops.push(slot);
            } else {
                self.enqueue(slot);
            }
            if let Some(g) = set_group {
                self.enqueue_set(slot.wrapping_sub(g));
            }
        }
        Ok(())
    }

    /// Forgets sessions idle for longer than the options allow (none waiting for a
    /// release, in a wave, or with symbols still to apply; a set session when every
    /// group is so and nothing is being combined).
    fn evict_idle(&mut self) {
        let (limit, now) = (self.core.options.idle_timeout.as_millis() as u64, super::session::clock_ms());
        let core = &self.core;
        let quiet = |slot: &Slot| {
            core.sessions.get(slot).is_some_and(|s| !s.in_flight && s.releases.is_empty() && s.symbols.is_empty())
        };
        let idle: Vec<Members> = core
            .sessions
            .iter()
            .filter(|(slot, s)| {
                matches!(core.machines.lane(s.lane), Some((_, Part::Group(0))))
                    && now.saturating_sub(s.last_used) > limit
                    && core.sets.get(slot).is_none_or(|set| !set.in_flight && set.replies.is_empty())
            })
            .map(|(&slot, _)| core.members(slot))
            .filter(|&members| {
                let mut each = members;
                each.all(|m| quiet(&m))
            })
            .collect();
        for members in idle {
            for slot in members {
                self.core.forget(slot);
                self.drops.push(slot);
            }
            self.core.stats.evicted.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Server 1.
pub struct Follower<'a, S: Sharing> {
    core: Core<'a, S>,
    wave: u32,
}

impl<'a, S: Sharing> Follower<'a, S> {
    /// The follower over `core`.
    pub fn new(core: Core<'a, S>) -> Self {
        Follower { core, wave: 0 }
    }

    /// Serves client requests and the leader's plans until the leader's link closes.
    pub fn run(
        mut self,
        inbox: &Receiver<Request>,
        mut to_peer: BoxTx,
        plans: Receiver<Result<Vec<u8>, TransportError>>,
    ) -> Result<(), ProtocolError> {
        let (mut inbox_open, never) = (true, crossbeam_channel::never());
        let first = |link| match plans.recv() {
            Ok(frame) => frame,
            Err(_) => Err(TransportError::Disconnected { link }),
        };
        self.core.agree(&mut to_peer, first)?;
        let written = self.core.written().unwrap_or_else(crossbeam_channel::never);
        loop {
            crossbeam_channel::select! {
                recv(written) -> w => self.core.note_written(w.map_err(|_| writer_stopped())?)?,
                recv(if inbox_open { inbox } else { &never }) -> req => match req {
                    Ok(req) => self.handle(req),
                    Err(_) => inbox_open = false,
                },
                recv(plans) -> frame => match frame {
                    Ok(Ok(frame)) => {
                        // Whatever a client sent here before the leader planned with it is
                        // in the inbox already in process (clients send to this server
                        // first): take it before the plan. A release is not acknowledged
                        // before it goes to the leader; over the network it can still
                        // arrive after the plan, and then waits for it in `early`.
                        while let Ok(req) = inbox.try_recv() {
                            self.handle(req);
                        }
                        self.follow(&frame, &mut to_peer)?
                    }
                    // The leader stopped (its link closed): so does the follower.
                    Ok(Err(TransportError::Disconnected { .. })) | Err(_) => break,
                    Ok(Err(e)) => return Err(e.into()),
                },
                default(COMMIT_EVERY) => {}
            }
            // New sessions have no step yet: committed whenever this server is idle.
            if self.core.fresh_waiting() && plans.is_empty() && inbox.is_empty() {
                self.core.commit_fresh()?;
            }
        }
        // What was committed at the last checkpoint stays in the store for the next run
        // (committing more here could put this store two checkpoints ahead).
        self.core.detach_store();
        let slots: Vec<Slot> = self.core.sessions.keys().copied().collect();
        for slot in slots {
            self.core.forget(slot);
        }
        Ok(())
    }

    fn handle(&mut self, req: Request) {
        let Some(req) = self.core.handle_common(req) else {
            return;
        };
        match req {
            Request::Open { machine, owner, slot, reply } => {
                let r = match slot {
                    Some(slot) => self.core.open(machine, owner, slot),
                    None => Err(ServiceError::BadRequest("server 1 opens the slot server 0 gave".into())),
                };
                self.core.answer_open(r, reply);
            }
            // The leader forgets the session and tells this server with its next plan:
            // until then waves may still name it.
            Request::Close { slot, owner, reply } => reply.fulfil(self.core.close(slot, owner)),
            _ => {}
        }
    }

    /// Runs one wave as the leader planned it.
    fn follow(&mut self, frame: &[u8], to_peer: &mut BoxTx) -> Result<(), ProtocolError> {
        let link = crate::transport::Link::S0ToS1;
        let catalog = self.core.machines;
        let width_of = |lane: u16, k: WaveKind| catalog.table(lane, k).map(Table::domain_bits);
        let (plan, leader) = WavePlan::decode(frame, link, self.wave, width_of)?;
        let bad = |detail: String| ProtocolError::Frame { link, detail };
        for &slot in &plan.drops {
            self.core.forget(slot);
        }
        if let Some(d) = self.core.durable.as_mut() {
            d.peer_short = plan.short;
        }
        // Every wave before the checkpoint is applied here, none after it: the leader
        // commits the same state when it finishes it. This server answers a checkpoint
        // only once its commit of the one before is durable (the stores stay at most
        // one checkpoint apart); its own commit is written while the waves go on.
        if plan.checkpoint {
            self.core.wait_written(|writing| !writing.iter().any(|b| b.checkpoint))?;
            self.core.commit()?;
        }
        let width = width_of(plan.lane, plan.kind).expect("decode checked the lane");
        let pool = self.core.pools.get_mut(&width).ok_or_else(|| bad(format!("no correlations of width {width}")))?;
        if (pool.epoch(), pool.next()) != (plan.epoch, plan.first) {
            return Err(bad(format!(
                "wave {} draws correlation {} of epoch {:x}; this server's pool is at {} of epoch {:x}",
                plan.wave,
                plan.first,
                plan.epoch,
                pool.next(),
                pool.epoch()
            )));
        }
        let taken = pool.take(plan.lookups())?;
        self.core.note_pools();
        let (index, void) = self.core.indices(&plan, true).map_err(|d| bad(format!("wave {}: {d}", plan.wave)))?;
        let open: Vec<u64> = taken.masks.iter().zip(&index).map(|(&r, &i)| S::open(i, r, width)).collect();
        to_peer.send(encode_openings(plan.wave, &open, width))?;
        let u: Vec<u64> = open.iter().zip(&leader).map(|(&m, &p)| S::combine(m, p, width)).collect();
        let out = self.core.lookup(&plan, &taken, &u)?;
        drop(taken);
        self.core.apply(&plan, &out, &void);
        self.wave = self.wave.wrapping_add(1);
        Ok(())
    }
}
