//! A network client that outlives restarts of the servers and the dealer, for durable
//! services (servers with session stores).
//!
//! A [`Reconnecting`] client keeps what it needs to connect again (identity and
//! addresses). When a request fails because the service went away (a connection lost
//! or a run of the servers ended, [`ServiceError::Stopped`]) it connects again; while
//! the servers are down or linking again ([`ServiceError::Unavailable`]) it asks again
//! on the same connection; it pauses between attempts and gives up when its patience
//! runs out. A push it still holds is then taken up where both servers settled it:
//! once both hold every symbol of it and committed them, nothing is sent again;
//! otherwise (a restart dropped what was not committed) the session is taken up at
//! the steps both committed ([`Client::resume`]) and the rest is sent. Closes and, for
//! machines that reveal their state, releases are asked again. Other errors (a
//! refusal, an unknown session) are returned as they are.
//!
//! What it cannot mend:
//! - a push that reached server 1 only while both servers kept running (the client's
//!   own link to server 0 broke between the two requests): that session stays out of
//!   step (every later request says so) until it is closed;
//! - a release of an accept or rule-set machine cut off by a lost connection: the
//!   servers pair each output lookup with the releases in the order they reached them,
//!   so server 1 may still hold the lost release; it is returned as the error rather
//!   than asked again. Server 1 fails such a release once the session steps on, so
//!   push before releasing again (a release at the same step may wait behind it); a
//!   session of servers that restarted since is not affected.

use super::remote::{Connect, connect};
use crate::InstanceOutput;
use crate::protocol::Reveal;
use crate::service::ServiceError;
use crate::service::client::{Client, MAX_PUSH, Session};
use crate::transport::tls::Identity;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Pause before each new attempt to reach the servers.
const RETRY: Duration = Duration::from_millis(100);

/// A [`Client`] that connects again when the service went away (see the module docs).
/// Thread-safe: the connection is shared and replaced once for every thread that lost it.
#[derive(Debug)]
pub struct Reconnecting {
    identity: Identity,
    how: Connect,
    patience: Duration,
    client: Mutex<Arc<Client>>,
    /// Connections made after the first.
    reconnects: AtomicU64,
}

impl Reconnecting {
    /// Connects as [`connect`] does; each later request waits for the servers to come
    /// back for at most `patience`.
    pub fn connect(identity: &Identity, how: &Connect, patience: Duration) -> Result<Reconnecting, ServiceError> {
        Ok(Reconnecting::new(connect(identity, how)?, identity, how, patience))
    }

    /// Wraps `client`, connected with `identity` as `how` says. Servers without session
    /// stores get no patience: their sessions do not outlive a restart, so a lost
    /// service is reported at once.
    pub fn new(client: Client, identity: &Identity, how: &Connect, patience: Duration) -> Reconnecting {
        let patience = if client.interface().durable { patience } else { Duration::ZERO };
        let client = Mutex::new(Arc::new(client));
        Reconnecting { identity: identity.clone(), how: how.clone(), patience, client, reconnects: AtomicU64::new(0) }
    }

    /// The connection in use now.
    pub fn client(&self) -> Arc<Client> {
        Arc::clone(&self.client.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// How many times it connected again.
    pub fn reconnects(&self) -> u64 {
        self.reconnects.load(Ordering::Relaxed)
    }

    /// A connection in place of `lost`: the one another thread made already, or a new
    /// one (made outside the lock), tried until `deadline`.
    fn replace(&self, lost: &Arc<Client>, deadline: Instant, why: &ServiceError) -> Result<Arc<Client>, ServiceError> {
        loop {
            let current = self.client();
            if !Arc::ptr_eq(&current, lost) {
                return Ok(current);
            }
            if let Ok(c) = connect(&self.identity, &self.how) {
                let mut slot = self.client.lock().unwrap_or_else(|p| p.into_inner());
                if Arc::ptr_eq(&slot, lost) {
                    *slot = Arc::new(c);
                    self.reconnects.fetch_add(1, Ordering::Relaxed);
                }
                return Ok(Arc::clone(&slot));
            }
            if Instant::now() >= deadline {
                return Err(self.gave_up(why));
            }
            std::thread::sleep(RETRY);
        }
    }

    fn gave_up(&self, why: &ServiceError) -> ServiceError {
        ServiceError::Unavailable(format!("the servers did not come back within {:?} ({why})", self.patience))
    }

    /// Runs `attempt` on the connection in use; when the service went away, again
    /// after a pause (on a new connection if this one was lost), until `patience` from
    /// now. `attempt` learns whether it is a retry.
    fn retrying<T>(
        &self,
        mut attempt: impl FnMut(&Client, bool) -> Result<T, ServiceError>,
    ) -> Result<T, ServiceError> {
        let now = Instant::now();
        let deadline = now.checked_add(self.patience).unwrap_or(now + Duration::from_secs(86_400 * 365));
        let mut client = self.client();
        let mut again = false;
        loop {
            let e = match attempt(&client, again) {
                Err(e @ (ServiceError::Stopped { .. } | ServiceError::Unavailable(_))) => e,
                other => return other,
            };
            if Instant::now() + RETRY >= deadline {
                return Err(if self.patience.is_zero() { e } else { self.gave_up(&e) });
            }
            std::thread::sleep(RETRY);
            if matches!(e, ServiceError::Stopped { .. }) {
                client = self.replace(&client, deadline, &e)?;
            }
            again = true;
        }
    }

    /// Opens a session (asked again if the service went away: a session opened on one
    /// server only is evicted there when idle).
    pub fn open(&self) -> Result<Session, ServiceError> {
        self.retrying(|c, _| c.open())
    }

    /// Takes up session `id` at the steps both servers committed.
    pub fn resume(&self, id: u64) -> Result<Session, ServiceError> {
        self.retrying(|c, _| c.resume(id))
    }

    /// Pushes `symbols` into `session`; returns once both servers committed them. When
    /// the service goes away meanwhile, takes the session up again (see the module
    /// docs) and sends what of `symbols` both servers had not committed.
    pub fn push(&self, session: &mut Session, symbols: &[u32]) -> Result<(), ServiceError> {
        let (id, start) = (session.id(), session.pushed());
        let end = start + symbols.len() as u64;
        self.retrying(|c, again| {
            if again {
                // The part in flight when the service went away (a push travels in
                // parts of MAX_PUSH symbols, each acknowledged before the next).
                let part_end = (session.pushed() + MAX_PUSH as u64).min(end);
                *session = match c.resume_at(id, part_end) {
                    // Both servers hold that part: once it is committed, on from there.
                    Ok(s) => s,
                    // A server holds less (a restart dropped what was not committed):
                    // where both committed it.
                    Err(ServiceError::BadRequest(_)) => c.resume(id)?,
                    Err(e) => return Err(e),
                };
                if !(start..=end).contains(&session.pushed()) {
                    return Err(ServiceError::BadRequest(format!(
                        "session {id}: the servers hold {} symbols, this client acknowledged {start} and sent {end}",
                        session.pushed()
                    )));
                }
            }
            let from = (session.pushed() - start) as usize;
            c.push(session, &symbols[from..])
        })
    }

    /// Releases `session` (as [`Client::release`]); for a machine that reveals its
    /// state, asked again if the service went away. For the others a lost release is
    /// returned as the error (see the module docs); the next request connects again.
    pub fn release(&self, session: &mut Session) -> Result<InstanceOutput, ServiceError> {
        let client = self.client();
        let i = client.interface();
        if i.reveal == Reveal::State && i.set.is_none() {
            return self.retrying(|c, _| c.release(session));
        }
        client.release(session)
    }

    /// Closes `session`, asked again if the service went away (a session one server
    /// closed already counts as closed).
    pub fn close(&self, session: Session) -> Result<(), ServiceError> {
        let id = session.id();
        let mut first = Some(session);
        self.retrying(|c, _| match first.take() {
            Some(s) => c.close(s),
            None => match c.resume(id) {
                Ok(s) => c.close(s),
                Err(ServiceError::UnknownSession { .. }) => Ok(()),
                Err(e) => Err(e),
            },
        })
    }
}
