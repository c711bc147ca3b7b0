//! A network client that outlives restarts of the servers and the dealer, for durable
//! services (servers with session stores).
//!
//! A [`Reconnecting`] client keeps what it needs to connect again (identity and
//! addresses). When a request fails because the service went away (a connection lost
//! or a run of the servers ended, [`ServiceError::Stopped`]; a server down or its
//! servers linking again, [`ServiceError::Unavailable`]) it connects again, retrying
//! until its patience runs out, and takes the session up at the steps both servers
//! committed ([`Client::resume`]). A push it still holds is then sent again from
//! there: the symbols both servers had committed are not sent twice, the rest are.
//! Releases and closes are asked again. Other errors (a refusal, an unknown session)
//! are returned as they are.
//!
//! What it cannot mend: a push that reached one server only while both kept running
//! (the client's own link to server 0 broke between the two requests). That session
//! stays out of step (every later request says so) until it is closed.

use super::remote::{Connect, connect};
use crate::InstanceOutput;
use crate::service::ServiceError;
use crate::service::client::{Client, Session};
use crate::transport::tls::Identity;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Pause between attempts to reach the servers again.
const RETRY: Duration = Duration::from_millis(100);

/// A [`Client`] that connects again when the service went away (see the module docs).
/// Thread-safe: the connection is shared and replaced once for every thread that lost it.
#[derive(Debug)]
pub struct Reconnecting {
    identity: Identity,
    how: Connect,
    patience: Duration,
    client: Mutex<Arc<Client>>,
}

/// Whether `e` says the service went away (and another connection may find it back).
fn went_away(e: &ServiceError) -> bool {
    matches!(e, ServiceError::Stopped { .. } | ServiceError::Unavailable(_))
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
        Reconnecting { identity: identity.clone(), how: how.clone(), patience, client }
    }

    /// The connection in use now.
    pub fn client(&self) -> Arc<Client> {
        Arc::clone(&self.client.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// A connection other than `lost`: the one another thread made already, or a new
    /// one, retried until `deadline`.
    fn replace(&self, lost: &Arc<Client>, deadline: Instant, why: &ServiceError) -> Result<Arc<Client>, ServiceError> {
        loop {
            {
                let mut current = self.client.lock().unwrap_or_else(|p| p.into_inner());
                if !Arc::ptr_eq(&current, lost) {
                    return Ok(Arc::clone(&current));
                }
                if let Ok(c) = connect(&self.identity, &self.how) {
                    *current = Arc::new(c);
                    return Ok(Arc::clone(&current));
                }
            }
            if Instant::now() >= deadline {
                return Err(ServiceError::Unavailable(format!(
                    "the servers did not come back within {:?} (the connection was lost: {why})",
                    self.patience
                )));
            }
            std::thread::sleep(RETRY);
        }
    }

    /// Runs `attempt` on the connection in use; when the service went away, on the next
    /// one, until `patience` from now.
    fn retrying<T>(&self, mut attempt: impl FnMut(&Client) -> Result<T, ServiceError>) -> Result<T, ServiceError> {
        let deadline = Instant::now() + self.patience;
        let mut client = self.client();
        loop {
            match attempt(&client) {
                Err(e) if went_away(&e) && Instant::now() < deadline => {
                    client = self.replace(&client, deadline, &e)?;
                }
                other => return other,
            }
        }
    }

    /// Opens a session (again on a new connection if the service went away: a session
    /// opened on one server only is evicted there when idle).
    pub fn open(&self) -> Result<Session, ServiceError> {
        self.retrying(Client::open)
    }

    /// Takes up session `id` at the steps both servers committed.
    pub fn resume(&self, id: u64) -> Result<Session, ServiceError> {
        self.retrying(|c| c.resume(id))
    }

    /// Pushes `symbols` into `session`; returns once both servers committed them. When
    /// the service goes away meanwhile, takes the session up again and sends what of
    /// `symbols` both servers had not committed.
    pub fn push(&self, session: &mut Session, symbols: &[u32]) -> Result<(), ServiceError> {
        let (id, start) = (session.id(), session.pushed());
        let end = start + symbols.len() as u64;
        let mut again = false;
        self.retrying(|c| {
            if std::mem::replace(&mut again, true) {
                // A new connection: the servers settled the session somewhere between
                // the acknowledged symbols and the end of this push.
                let at = c.resume(id)?;
                if !(start..=end).contains(&at.pushed()) {
                    return Err(ServiceError::BadRequest(format!(
                        "session {id}: the servers hold {} symbols, this client acknowledged {start} and sent {end}",
                        at.pushed()
                    )));
                }
                *session = at;
            }
            let from = (session.pushed() - start) as usize;
            c.push(session, &symbols[from..])
        })
    }

    /// Releases `session` (as [`Client::release`]), asked again on a new connection
    /// if the service went away.
    pub fn release(&self, session: &mut Session) -> Result<InstanceOutput, ServiceError> {
        self.retrying(|c| c.release(session))
    }

    /// Closes `session`, asked again on a new connection if the service went away.
    pub fn close(&self, session: Session) -> Result<(), ServiceError> {
        let id = session.id();
        let mut first = Some(session);
        self.retrying(|c| match first.take() {
            Some(s) => c.close(s),
            None => c.resume(id).and_then(|s| c.close(s)),
        })
    }
}
