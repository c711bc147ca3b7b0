//! The client side of the service: knows only a machine's [`Interface`].
//!
//! A [`Client`] shares each pushed symbol between the servers (one share each, from
//! the CSPRNG) and reconstructs released outputs. It holds no machine: the alphabet
//! and the share widths are all it needs. Every operation exists blocking and as an
//! `async fn` (usable from any executor; it never blocks the executor's thread
//! except, briefly, when a server's request queue is full).
//!
//! Requests go to server 1 first and to server 0 once server 1 has taken them, so the
//! leader (server 0), which plans every wave, never plans one the follower lacks the
//! shares for.

use super::interface::Interface;
#[cfg(feature = "net")]
use super::net::remote::Sent;
use super::reply::{self, Promise, Ticket};
use super::session::{OutputShare, Owner, Request, Slot};
use super::{Route, ServiceError};
use crate::InstanceOutput;
use crate::party::sharing::{Ring, Sharing, Xor};
use crate::protocol::bits::{low_mask, pack};
use crate::protocol::{Protocol, Reveal};
use crate::transport::{Counters, Link};
use crossbeam_channel::TrySendError;
use pmsm_kernels::rng::{RngCore, SecretRng};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};

/// Most symbols in one push request (longer pushes are split).
pub const MAX_PUSH: usize = 1 << 16;

/// Header bytes counted per request or answer on a client link (kind, slot, count),
/// besides its packed shares: what the network form of the request carries.
const REQUEST_HEADER: u64 = 13;

/// A session opened by a [`Client`]. Not `Clone`: pushes into one session are
/// applied in the order they are made, so one handle makes them.
#[derive(Debug)]
pub struct Session {
    slot: Slot,
    pushed: u64,
}

impl Session {
    /// The session's number at the servers.
    pub fn id(&self) -> u64 {
        self.slot
    }
    /// Symbols pushed so far.
    pub fn pushed(&self) -> u64 {
        self.pushed
    }
}

/// A connection to the service for one machine. Thread-safe: many threads may use one
/// client, each with its own sessions.
#[derive(Debug)]
pub struct Client {
    pub(super) interface: Interface,
    pub(super) machine: u16,
    pub(super) owner: Owner,
    pub(super) route: super::Route,
    pub(super) counters: Counters,
    pub(super) failure: Arc<Mutex<Option<String>>>,
}

impl Client {
    /// The machine's public interface.
    pub fn interface(&self) -> &Interface {
        &self.interface
    }

    /// Opens a session at its start state.
    pub fn open(&self) -> Result<Session, ServiceError> {
        block_on(self.open_async())
    }

    /// Pushes symbol indices (each below the alphabet's size, checked before anything
    /// is sent); they are applied in order after every earlier push. Returns once both
    /// servers hold the push; when they keep session stores ([`Interface::durable`]),
    /// once both committed its last step, so it survives a restart of either.
    pub fn push(&self, session: &mut Session, symbols: &[u32]) -> Result<(), ServiceError> {
        block_on(self.push_async(session, symbols))
    }

    /// Pushes text, encoded with the machine's alphabet (an unknown character is an
    /// error naming its position, before anything is sent).
    pub fn push_text(&self, session: &mut Session, text: impl AsRef<[u8]>) -> Result<(), ServiceError> {
        let symbols = self.interface.encode(text.as_ref(), session.slot as usize)?;
        self.push(session, &symbols)
    }

    /// The output after every symbol pushed so far (final state or accept bit, as the
    /// machine's policy says). The session goes on from the same state. Takes the
    /// session mutably: one request of a session at a time, so both servers answer the
    /// same release with the same lookup.
    pub fn release(&self, session: &mut Session) -> Result<InstanceOutput, ServiceError> {
        block_on(self.release_async(session))
    }

    /// Ends the session.
    pub fn close(&self, session: Session) -> Result<(), ServiceError> {
        block_on(self.close_async(session))
    }

    /// Takes up session `id`, opened earlier by this client's identity (another
    /// connection, another process, or before the servers restarted on their stores),
    /// at the steps both servers settled: pushes go on from [`Session::pushed`]. A push
    /// that never returned may be applied in part or not at all (never beyond what was
    /// sent): resend its symbols from there.
    pub fn resume(&self, id: u64) -> Result<Session, ServiceError> {
        block_on(self.resume_async(id))
    }

    /// [`Client::resume`] once both servers settled at least the first `at` symbols of
    /// session `id` (a push this client sent whole: it waits for its commits). A
    /// server that holds fewer refuses at once, as out of step.
    pub fn resume_at(&self, id: u64, at: u64) -> Result<Session, ServiceError> {
        block_on(async { Ok(Session { slot: id, pushed: self.settled(id, at).await? }) })
    }

    /// [`Client::open`] without blocking the caller's thread.
    pub async fn open_async(&self) -> Result<Session, ServiceError> {
        let (machine, owner) = (self.machine, self.owner);
        let slot = self.call(0, |reply| Request::Open { machine, owner, slot: None, reply }).await?;
        let opened = self.call(1, |reply| Request::Open { machine, owner, slot: Some(slot), reply }).await;
        if let Err(e) = opened {
            // Best effort: server 0 forgets the half-open session.
            let _ = self.call(0, |reply| Request::Close { slot, owner, reply }).await;
            return Err(e);
        }
        Ok(Session { slot, pushed: 0 })
    }

    /// [`Client::resume`] without blocking the caller's thread.
    pub async fn resume_async(&self, id: u64) -> Result<Session, ServiceError> {
        let steps = self.settled(id, 0).await?;
        Ok(Session { slot: id, pushed: steps })
    }

    /// Waits until both servers settled (applied and, durable, committed) the first
    /// `at` symbols of session `slot`; returns the steps they agree on. Two servers a
    /// commit apart are asked again for the larger count (a few times at most).
    async fn settled(&self, slot: Slot, mut at: u64) -> Result<u64, ServiceError> {
        let owner = self.owner;
        for _ in 0..4 {
            let t1 = self.ticket(1, |reply| Request::Sync { slot, owner, at, reply }).await?;
            let t0 = self.ticket(0, |reply| Request::Sync { slot, owner, at, reply }).await?;
            let (n0, n1) = (self.answer(t0).await?, self.answer(t1).await?);
            if n0 == n1 {
                return Ok(n0);
            }
            at = n0.max(n1);
        }
        Err(ServiceError::BadRequest(format!(
            "session {slot}: the servers settled different steps, up to {at} (a push is still being applied; retry)"
        )))
    }

    /// [`Client::push`] without blocking the caller's thread.
    ///
    /// A push of more than [`MAX_PUSH`] symbols travels as several requests, each
    /// applied whole or not at all; if one fails, those before it stay applied and
    /// [`Session::pushed`] says how far the session got.
    pub async fn push_async(&self, session: &mut Session, symbols: &[u32]) -> Result<(), ServiceError> {
        self.interface.check(symbols, session.slot as usize)?;
        for part in symbols.chunks(MAX_PUSH) {
            self.push_part(session, part).await?;
        }
        Ok(())
    }

    async fn push_part(&self, session: &mut Session, symbols: &[u32]) -> Result<(), ServiceError> {
        let width = self.interface.symbol_bits;
        let mut rng = SecretRng::from_os();
        let mut shares = [Vec::with_capacity(symbols.len()), Vec::with_capacity(symbols.len())];
        for &a in symbols {
            let a0 = rng.next_u64() & low_mask(width);
            shares[0].push(a0);
            shares[1].push(complement(self.interface.protocol, u64::from(a), a0, width));
        }
        let [p0, p1] = shares.map(|s| pack(&s, width));
        let (slot, owner, count, offset) = (session.slot, self.owner, symbols.len(), session.pushed);
        let want = offset + count as u64;
        for (b, packed) in [(1, p1), (0, p0)] {
            self.counters.add(Link::ALL[b], REQUEST_HEADER + packed.len() as u64);
            let push = |reply| Request::Push { slot, owner, offset, count, shares: packed, reply };
            let total = self.call(b, push).await?;
            if total != want {
                return Err(ServiceError::BadRequest(format!(
                    "server {b} holds {total} symbols of session {slot}, this client pushed {want}"
                )));
            }
        }
        session.pushed = want;
        if self.interface.durable {
            self.settled(slot, want).await?;
        }
        Ok(())
    }

    /// [`Client::release`] without blocking the caller's thread.
    pub async fn release_async(&self, session: &mut Session) -> Result<InstanceOutput, ServiceError> {
        let (slot, owner, at) = (session.slot, self.owner, session.pushed);
        let t1 = self.ticket(1, |reply| Request::Release { slot, owner, at, reply }).await?;
        let t0 = self.ticket(0, |reply| Request::Release { slot, owner, at, reply }).await?;
        let (s0, n0): OutputShare = self.answer(t0).await?;
        let (s1, n1): OutputShare = self.answer(t1).await?;
        let (width, values) = (self.interface.output_bits, self.interface.values());
        for (b, n, s) in [(0, n0, &s0), (1, n1, &s1)] {
            let bytes = REQUEST_HEADER + (values as u64 * u64::from(width)).div_ceil(8);
            self.counters.add([Link::S0ToClient, Link::S1ToClient][b], bytes);
            if n != session.pushed {
                return Err(ServiceError::BadRequest(format!(
                    "server {b} released session {slot} after {n} symbols, this client pushed {}",
                    session.pushed
                )));
            }
            if s.len() != values {
                return Err(ServiceError::BadRequest(format!(
                    "server {b} released {} values of session {slot}, the machine's interface says {values}",
                    s.len()
                )));
            }
        }
        let v: Vec<u64> =
            s0.iter().zip(&s1).map(|(&a, &b)| reconstruct(self.interface.protocol, a, b, width)).collect();
        let symbols = session.pushed as usize;
        let wrong = |what: &str| {
            ServiceError::BadRequest(format!("session {slot}: the servers' output shares do not add up to {what}"))
        };
        if let Some(answer) = self.interface.answer(&v) {
            let answer = answer.map_err(wrong)?;
            return Ok(InstanceOutput { final_state: None, accept: Some(answer.any()), symbols, answer: Some(answer) });
        }
        Ok(match self.interface.reveal {
            Reveal::State => InstanceOutput { final_state: Some(v[0] as u32), accept: None, symbols, answer: None },
            Reveal::Accept if v[0] > 1 => return Err(wrong("an accept bit (0 or 1)")),
            Reveal::Accept => InstanceOutput { final_state: None, accept: Some(v[0] == 1), symbols, answer: None },
        })
    }

    /// [`Client::close`] without blocking the caller's thread.
    pub async fn close_async(&self, session: Session) -> Result<(), ServiceError> {
        let (slot, owner) = (session.slot, self.owner);
        let r1 = self.call(1, |reply| Request::Close { slot, owner, reply }).await;
        let r0 = self.call(0, |reply| Request::Close { slot, owner, reply }).await;
        r1.and(r0)
    }

    /// Sends a request to server `b` and waits for its answer.
    async fn call<T>(
        &self,
        b: usize,
        make: impl FnOnce(Promise<Result<T, ServiceError>>) -> Request,
    ) -> Result<T, ServiceError> {
        let ticket = self.ticket(b, make).await?;
        self.answer(ticket).await
    }

    /// Sends a request to server `b`; the ticket gives its answer.
    async fn ticket<T>(
        &self,
        b: usize,
        make: impl FnOnce(Promise<Result<T, ServiceError>>) -> Request,
    ) -> Result<Ticket<Result<T, ServiceError>>, ServiceError> {
        let (promise, ticket) = reply::pair();
        let mut req = Some(make(promise));
        let full = |cx: &mut std::task::Context<'_>| {
            // The server's queue (or the connection's) is full: back off briefly, retry.
            std::thread::sleep(std::time::Duration::from_micros(200));
            cx.waker().wake_by_ref();
            Poll::Pending
        };
        std::future::poll_fn(|cx| {
            let r = req.take().expect("sent once");
            match &self.route {
                Route::InProcess(inbox) => match inbox.to[b].try_send(r) {
                    Ok(()) => Poll::Ready(Ok(())),
                    Err(TrySendError::Full(r)) => {
                        req = Some(r);
                        full(cx)
                    }
                    Err(TrySendError::Disconnected(_)) => Poll::Ready(Err(self.stopped())),
                },
                #[cfg(feature = "net")]
                Route::Network(remote) => match remote.send(b, r) {
                    Sent::Queued => Poll::Ready(Ok(())),
                    Sent::Full(r) => {
                        req = Some(r);
                        full(cx)
                    }
                    Sent::Down => Poll::Ready(Err(self.stopped())),
                },
            }
        })
        .await?;
        // A server that stopped fails what it finds queued, then sets the flag first: a
        // request queued after its last look is answered here.
        if let Route::InProcess(inbox) = &self.route
            && inbox.closed[b].load(std::sync::atomic::Ordering::SeqCst)
        {
            return Err(self.stopped());
        }
        Ok(ticket)
    }

    async fn answer<T>(&self, ticket: Ticket<Result<T, ServiceError>>) -> Result<T, ServiceError> {
        ticket.await.map_err(|_| self.stopped())?
    }

    fn stopped(&self) -> ServiceError {
        let reason = self.failure.lock().unwrap_or_else(|p| p.into_inner()).clone();
        ServiceError::Stopped { reason: reason.unwrap_or_else(|| "the service stopped".into()) }
    }
}

fn complement(protocol: Protocol, value: u64, x0: u64, width: u32) -> u64 {
    match protocol {
        Protocol::LookupRing => Ring::complement(value, x0, width),
        _ => Xor::complement(value, x0, width),
    }
}

fn reconstruct(protocol: Protocol, a: u64, b: u64, width: u32) -> u64 {
    match protocol {
        Protocol::LookupRing => Ring::reconstruct(a, b, width),
        _ => Xor::reconstruct(a, b, width),
    }
}

/// Runs a future on the calling thread, parking it while the future waits.
pub(crate) fn block_on<F: Future>(f: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
        fn wake_by_ref(self: &Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut f = std::pin::pin!(f);
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::park();
    }
}
