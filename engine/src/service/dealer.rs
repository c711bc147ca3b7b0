//! The service's dealer: keeps every pool full, one thread per lookup width.
//!
//! Each thread deals blocks of [`BLOCK`] correlations (the batch dealer's [`deal`] on
//! the service's rayon threads) and sends block `k` to server 0, then to server 1.
//! The links are bounded, so a full pool blocks only its own width's thread: a pool
//! that drains never waits behind another that is full. A thread ends when a server
//! drops its pool (the service stopped).

use super::pool::BLOCK;
use crate::party::dealer::deal;
use crate::party::sharing::Sharing;
use crate::protocol::ProtocolError;
use crate::transport::{BoxTx, TransportError};
use pmsm_kernels::rng::SecretRng;

/// Deals `width`-bit correlations to both servers until one of them is gone.
pub fn fill<S: Sharing>(width: u32, to: [BoxTx; 2], threads: &rayon::ThreadPool) -> Result<(), ProtocolError> {
    let [mut to0, mut to1] = to;
    let mut rng = SecretRng::from_os();
    let mut block = 0u64;
    loop {
        let [f0, f1] = threads.install(|| deal::<S>(block as u32, BLOCK, width, &mut rng))?;
        match to0.send(f0).and_then(|()| to1.send(f1)) {
            Ok(()) => {}
            Err(TransportError::Disconnected { .. }) => return Ok(()),
            Err(e) => return Err(e.into()),
        }
        block += 1;
    }
}
