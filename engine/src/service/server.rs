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

use super::pool::{Pool, Taken};
use super::session::{OutputShare, Owner, Release, Request, Session, Slot};
use super::wave::{WaveKind, WavePlan};
use super::{Machine, Options, ServiceError, Stats};
use crate::party::server::lookup_range;
use crate::party::sharing::Sharing;
use crate::protocol::ProtocolError;
use crate::protocol::bits::{low_mask, unpack};
use crate::protocol::plan::Table;
use crate::protocol::wire::{decode_openings, encode_openings};
use crate::transport::{BoxRx, BoxTx, TransportError};
use crossbeam_channel::{Receiver, RecvTimeoutError};
use pmsm_kernels::Party;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// Unclassified symbols of one session mapped to classes in one class wave.
pub const CLASS_AHEAD: usize = 256;

/// Fewest sessions a wave is cut to when the ready ones are split in two (the batch
/// engine's smallest chunk).
const MIN_SPLIT: usize = 64;

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

/// A session whose shares no longer pair (server 1 missed a step the leader took).
fn broken(slot: Slot) -> ServiceError {
    ServiceError::BadRequest(format!(
        "session {slot} is broken: server 1 lacks symbols server 0 applied (an interrupted request); close it"
    ))
}

/// The table a wave of `kind` reads on `machine`, if the machine has such lookups.
pub fn table_of(machine: &Machine, kind: WaveKind) -> Option<&Table> {
    match kind {
        WaveKind::Class => machine.plan.classes.as_ref().map(|c| &c.table),
        WaveKind::Step => Some(&machine.plan.step),
        WaveKind::Accept => machine.plan.accept.as_ref(),
    }
}

/// What both servers keep: the machines, the sessions and the pools.
pub struct Core<'a, S: Sharing> {
    party: Party,
    machines: &'a [Machine],
    options: &'a Options,
    stats: &'a Stats,
    sessions: HashMap<Slot, Session>,
    /// Per client: sessions open and symbols pending.
    per_owner: HashMap<Owner, (usize, usize)>,
    /// Symbols pending over every session.
    pending: usize,
    /// Server 1 only: accept shares computed by a wave that reached this server before
    /// the release it answers (over the network the leader's plan can overtake a
    /// client's release to this server), by session: the share and its step.
    early: HashMap<Slot, OutputShare>,
    pools: HashMap<u32, Pool<S>>,
    stopping: bool,
}

impl<'a, S: Sharing> Core<'a, S> {
    /// A server with no sessions, drawing correlations from `pools` (one per width).
    pub fn new(
        party: Party,
        machines: &'a [Machine],
        options: &'a Options,
        stats: &'a Stats,
        pools: Vec<Pool<S>>,
    ) -> Self {
        let pools = pools.into_iter().map(|p| (p.width(), p)).collect();
        Core {
            party,
            machines,
            options,
            stats,
            sessions: HashMap::new(),
            per_owner: HashMap::new(),
            pending: 0,
            early: HashMap::new(),
            pools,
            stopping: false,
        }
    }

    /// Records how many correlations the pools hold ready (a metric).
    fn note_pools(&self) {
        let ready: usize = self.pools.values().map(Pool::available).sum();
        self.stats.pool_ready.store(ready as u64, Ordering::Relaxed);
    }

    fn width(&self, machine: u16, kind: WaveKind) -> Option<u32> {
        table_of(self.machines.get(machine as usize)?, kind).map(Table::domain_bits)
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

    /// The session `slot` if `owner` may close it (a broken session too).
    fn owned(&mut self, slot: Slot, owner: Owner) -> Result<&mut Session, ServiceError> {
        let unknown = self.unknown(slot);
        match self.sessions.get_mut(&slot) {
            Some(s) if s.closed => Err(unknown),
            Some(s) if s.owner != owner => Err(ServiceError::NotOwner { session: slot }),
            Some(s) => {
                s.last_used = super::session::clock_ms();
                Ok(s)
            }
            None => Err(unknown),
        }
    }

    /// Opens `slot` for `owner`, within the limits.
    fn open(&mut self, machine: u16, owner: Owner, slot: Slot) -> Result<Slot, ServiceError> {
        let m = self.machines.get(machine as usize).ok_or(ServiceError::Limit(format!("no machine {machine}")))?;
        if self.stopping {
            return Err(ServiceError::Stopped { reason: "the server is shutting down".into() });
        }
        if self.sessions.len() >= self.options.max_sessions {
            return Err(ServiceError::Limit(format!(
                "{} sessions are open, the most a server holds",
                self.sessions.len()
            )));
        }
        let mine = self.per_owner.get(&owner).map_or(0, |o| o.0);
        if mine >= self.options.max_sessions_per_client {
            return Err(ServiceError::Limit(format!("this client has {mine} sessions open, the most it may")));
        }
        if self.sessions.contains_key(&slot) {
            return Err(ServiceError::Limit(format!("session {slot} is already open")));
        }
        self.sessions.insert(slot, Session::new(machine, owner, S::init(self.party, m.plan.start)));
        self.per_owner.entry(owner).or_default().0 += 1;
        self.stats.sessions.fetch_add(1, Ordering::Relaxed);
        Ok(slot)
    }

    /// Appends a push's shares; returns the session's symbols pushed in all.
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
        // Server 1 takes a push first and decides the limit; server 0 may hold one
        // symbol more of a session than server 1 while a step of it is in flight (the
        // follower applies a wave before the leader), so it allows one more.
        let max = self.options.max_pending + usize::from(self.party == Party::P0);
        let machines = self.machines;
        let s = self.session(slot, owner)?;
        let width = machines[s.machine as usize].plan.symbol_share_bits();
        if offset != s.pushed() {
            return Err(out_of_step(slot, s.pushed(), offset));
        }
        if s.symbols.len() + count > max {
            return Err(ServiceError::Limit(format!(
                "session {slot} would hold {} symbols not yet applied; at most {max}",
                s.symbols.len() + count
            )));
        }
        let values = unpack(shares, width, count).ok_or_else(|| {
            ServiceError::BadRequest(format!("push of {count} symbols: shares are not {count} values of {width} bits"))
        })?;
        // Server 0 may hold up to the lookups in flight more than server 1 (which
        // decides), as for one session above.
        let slack = if self.party == Party::P0 { 4 * self.options.window * self.options.max_wave } else { 0 };
        let mine = self.per_owner.get(&owner).map_or(0, |o| o.1);
        if mine + count > self.options.max_pending_per_client + slack {
            return Err(ServiceError::Limit(format!(
                "this client would hold {} symbols not yet applied; at most {}",
                mine + count,
                self.options.max_pending_per_client
            )));
        }
        if self.pending + count > self.options.max_pending_total + slack {
            return Err(ServiceError::Limit(format!(
                "the server would hold {} symbols not yet applied; at most {}",
                self.pending + count,
                self.options.max_pending_total
            )));
        }
        let s = self.session(slot, owner)?;
        s.symbols.extend(values.into_iter().map(|v| v as u32));
        let pushed = s.pushed();
        self.pending += count;
        self.per_owner.entry(owner).or_default().1 += count;
        Ok(pushed)
    }

    /// Records a release; answers it at once when it reveals the state and is due.
    fn release(
        &mut self,
        slot: Slot,
        owner: Owner,
        at: u64,
        reply: super::reply::Promise<Result<(u64, u64), ServiceError>>,
    ) {
        let machines = self.machines;
        if self.stopping {
            return reply.fulfil(Err(ServiceError::Stopped { reason: "the server is shutting down".into() }));
        }
        let early = self.early.get(&slot).copied();
        match self.session(slot, owner) {
            Err(e) => reply.fulfil(Err(e)),
            Ok(s) if s.pushed() != at => reply.fulfil(Err(out_of_step(slot, s.pushed(), at))),
            Ok(s) => {
                let plan = &machines[s.machine as usize].plan;
                if let Some((share, steps)) = early
                    && steps == at
                {
                    self.early.remove(&slot);
                    return reply.fulfil(Ok((share, steps)));
                }
                s.releases.push_back(Release { at: s.pushed(), reply });
                if plan.accept.is_none() {
                    s.answer_state_releases(low_mask(plan.output_bits()));
                }
            }
        }
    }

    /// Forgets a session: its pending releases fail.
    fn forget(&mut self, slot: Slot) {
        self.early.remove(&slot);
        if let Some(mut s) = self.sessions.remove(&slot) {
            let unknown = self.unknown(slot);
            s.fail_releases(|| unknown.clone());
            self.pending -= s.symbols.len();
            if let Some(o) = self.per_owner.get_mut(&s.owner) {
                o.0 -= 1;
                o.1 -= s.symbols.len();
                if o.0 == 0 {
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
        let m = &self.machines[plan.machine as usize];
        let kx = m.plan.kx();
        let mut out = Vec::with_capacity(plan.lookups());
        let mut void = vec![false; plan.entries.len()];
        for (e, &(slot, k)) in plan.entries.iter().enumerate() {
            let gap = match self.sessions.get(&slot) {
                None => Some(format!("session {slot} is not open here")),
                Some(s) if s.machine != plan.machine => {
                    Some(format!("session {slot} is not a session of machine {}", plan.machine))
                }
                Some(s) => match plan.kind {
                    WaveKind::Class => {
                        let raw = s.symbols.range(s.classified..);
                        if raw.len() < k as usize {
                            Some(format!("session {slot} has {} symbols to classify, not {k}", raw.len()))
                        } else {
                            out.extend(raw.take(k as usize).map(|&a| u64::from(a)));
                            None
                        }
                    }
                    WaveKind::Step => {
                        let ready = if m.plan.classes.is_some() { s.classified } else { s.symbols.len() };
                        if ready == 0 {
                            Some(format!("session {slot} has no symbol to step on"))
                        } else {
                            out.push(S::index(s.state, u64::from(s.symbols[0]), kx));
                            None
                        }
                    }
                    // The follower serves an accept lookup whose release has not
                    // arrived yet too (its share waits in `early`): the lookup reads
                    // only the state share, which both servers hold at this step.
                    WaveKind::Accept => {
                        if !tolerant && s.releases.front().is_none_or(|r| r.at != s.steps) {
                            Some(format!("session {slot} has no release due at step {}", s.steps))
                        } else {
                            out.push(s.state);
                            None
                        }
                    }
                },
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

    /// Writes a finished wave's output shares into its sessions.
    fn apply(&mut self, plan: &WavePlan, out: &[u64], void: &[bool]) {
        let m = &self.machines[plan.machine as usize];
        let mask = low_mask(m.plan.output_bits());
        let state_releases = m.plan.accept.is_none();
        let mut at = 0;
        for (&(slot, k), &void) in plan.entries.iter().zip(void) {
            let k = k as usize;
            if void {
                if plan.kind != WaveKind::Accept
                    && let Some(s) = self.sessions.get_mut(&slot)
                {
                    s.broken = true;
                    s.fail_releases(|| broken(slot));
                }
                at += k;
                continue;
            }
            let s = self.sessions.get_mut(&slot).expect("indices() checked every session");
            match plan.kind {
                WaveKind::Class => {
                    for (j, &c) in out[at..at + k].iter().enumerate() {
                        s.symbols[s.classified + j] = c as u32;
                    }
                    s.classified += k;
                }
                WaveKind::Step => {
                    s.state = out[at];
                    s.symbols.pop_front();
                    self.pending -= 1;
                    if let Some(o) = self.per_owner.get_mut(&s.owner) {
                        o.1 -= 1;
                    }
                    s.classified = s.classified.saturating_sub(1);
                    s.steps += 1;
                    if state_releases {
                        s.answer_state_releases(mask);
                    }
                }
                WaveKind::Accept => match s.releases.front() {
                    Some(r) if r.at == s.steps => {
                        let r = s.releases.pop_front().expect("checked");
                        r.reply.fulfil(Ok((out[at] & mask, s.steps)));
                    }
                    // Server 1, before the release arrived (see `early`).
                    _ => {
                        self.early.insert(slot, (out[at] & mask, s.steps));
                    }
                },
            }
            at += k;
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

    /// One server's output shares for a wave's lookups.
    fn lookup(&self, plan: &WavePlan, taken: &Taken<S>, u: &[u64]) -> Result<Vec<u64>, ProtocolError> {
        let table = table_of(&self.machines[plan.machine as usize], plan.kind).expect("width() checked the table");
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
            Request::Stop => {
                self.stopping = true;
                None
            }
            other => Some(other),
        }
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
        loop {
            while let Ok(req) = inbox.try_recv() {
                self.handle(req);
            }
            if swept.elapsed() >= SWEEP {
                self.evict_idle();
                swept = Instant::now();
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
            match inbox.recv_timeout(SWEEP) {
                Ok(req) => self.handle(req),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => open = false,
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
                self.enqueue(slot);
            }
            return;
        };
        match req {
            Request::Open { machine, owner, reply, .. } => {
                let slot = self.next_slot;
                let r = self.core.open(machine, owner, slot);
                if r.is_ok() {
                    self.next_slot = self.next_slot.wrapping_add(1);
                }
                reply.fulfil(r);
            }
            Request::Close { slot, owner, reply } => {
                let r = self.core.owned(slot, owner).map(|s| s.closed = true);
                if r.is_ok() && !self.core.sessions[&slot].in_flight {
                    self.core.forget(slot);
                    self.drops.push(slot);
                }
                reply.fulfil(r);
            }
            _ => {}
        }
    }

    /// Puts every session that has work into its ready queue (after a request or a
    /// wave touched it).
    fn enqueue(&mut self, slot: Slot) {
        let Some(s) = self.core.sessions.get_mut(&slot) else { return };
        if s.queued {
            return;
        }
        let plan = &self.core.machines[s.machine as usize].plan;
        if let Some(kind) = s.next_wave(plan.classes.is_some(), plan.accept.is_some()) {
            s.queued = true;
            self.ready.entry((s.machine, kind)).or_default().push_back(slot);
        }
    }

    /// The next wave: sessions of one machine needing one kind of lookup, up to the
    /// wave limit; a plan of no lookups when only drops are waiting.
    fn form(&mut self) -> Option<WavePlan> {
        self.ready.retain(|_, q| !q.is_empty());
        let plan = match self.ready.keys().nth(self.turn % self.ready.len().max(1)).copied() {
            Some((machine, kind)) => {
                self.turn = self.turn.wrapping_add(1);
                let entries = self.gather(machine, kind);
                if entries.is_empty() {
                    return self.form();
                }
                WavePlan { wave: self.wave, machine, kind, epoch: 0, first: 0, entries, drops: Vec::new() }
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
            machine: 0,
            kind: WaveKind::Step,
            epoch: 0,
            first: 0,
            entries: Vec::new(),
            drops: Vec::new(),
        }
    }

    /// Takes sessions from the `(machine, kind)` queue into a wave's entries.
    fn gather(&mut self, machine: u16, kind: WaveKind) -> Vec<(Slot, u32)> {
        let m = &self.core.machines[machine as usize].plan;
        let (classes, accept) = (m.classes.is_some(), m.accept.is_some());
        let queue = self.ready.get_mut(&(machine, kind)).expect("chosen among the queues");
        // Like the batch engine's chunks: at least two waves above MIN_SPLIT ready
        // sessions, so a server has one to compute while the other's openings travel.
        let max = queue.len().div_ceil(2).max(MIN_SPLIT).min(self.core.options.max_wave);
        let cap = if kind == WaveKind::Class { max * 4 } else { max };
        let (mut entries, mut moved, mut lookups) = (Vec::new(), Vec::new(), 0usize);
        while lookups < cap {
            let Some(slot) = queue.pop_front() else { break };
            let Some(s) = self.core.sessions.get_mut(&slot) else { continue };
            s.queued = false;
            match s.next_wave(classes, accept) {
                Some(k) if k == kind => {
                    let n = match kind {
                        WaveKind::Class => (s.symbols.len() - s.classified).min(CLASS_AHEAD).min(cap - lookups),
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

    /// Sends a wave's plan and openings.
    fn open(&mut self, mut plan: WavePlan, to_peer: &mut BoxTx) -> Result<(), ProtocolError> {
        let width = self.core.width(plan.machine, plan.kind).expect("waves are formed for existing lookups");
        let pool = self.core.pools.get_mut(&width).expect("a pool per width");
        (plan.epoch, plan.first) = (pool.epoch(), pool.next());
        let taken = pool.take(plan.lookups())?;
        self.core.note_pools();
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
        for &(slot, _) in &f.plan.entries {
            let s = self.core.sessions.get_mut(&slot).expect("sessions in flight stay");
            s.in_flight = false;
            if s.closed {
                self.core.forget(slot);
                self.drops.push(slot);
            } else {
                self.enqueue(slot);
            }
        }
        Ok(())
    }

    /// Forgets sessions idle for longer than the options allow (none waiting for a
    /// release, in a wave, or with symbols still to apply).
    fn evict_idle(&mut self) {
        let (limit, now) = (self.core.options.idle_timeout.as_millis() as u64, super::session::clock_ms());
        let idle: Vec<Slot> = self
            .core
            .sessions
            .iter()
            .filter(|(_, s)| {
                !s.in_flight && s.releases.is_empty() && s.symbols.is_empty() && now.saturating_sub(s.last_used) > limit
            })
            .map(|(&slot, _)| slot)
            .collect();
        for slot in idle {
            self.core.forget(slot);
            self.drops.push(slot);
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
        loop {
            crossbeam_channel::select! {
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
            }
        }
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
                reply.fulfil(r);
            }
            // The leader forgets the session and tells this server with its next plan:
            // until then waves may still name it.
            Request::Close { slot, owner, reply } => {
                reply.fulfil(self.core.owned(slot, owner).map(|s| s.closed = true))
            }
            _ => {}
        }
    }

    /// Runs one wave as the leader planned it.
    fn follow(&mut self, frame: &[u8], to_peer: &mut BoxTx) -> Result<(), ProtocolError> {
        let link = crate::transport::Link::S0ToS1;
        let machines = self.core.machines;
        let width_of =
            |m: u16, k: WaveKind| machines.get(m as usize).and_then(|m| table_of(m, k)).map(Table::domain_bits);
        let (plan, leader) = WavePlan::decode(frame, link, self.wave, width_of)?;
        let bad = |detail: String| ProtocolError::Frame { link, detail };
        for &slot in &plan.drops {
            self.core.forget(slot);
        }
        let width = width_of(plan.machine, plan.kind).expect("decode checked the machine");
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
