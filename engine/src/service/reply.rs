//! One-shot replies from a server to a waiting caller, awaited blocking or as a
//! `Future` (so an async caller does not block its runtime's thread).
//!
//! A server answers each request through its [`Promise`]; the caller holds the
//! matching [`Ticket`]. A promise dropped unanswered (its server stopped) wakes the
//! ticket with [`Gone`].

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex};
use std::task::{Context, Poll, Waker};

struct Slot<T> {
    value: Option<T>,
    gone: bool,
    waker: Option<Waker>,
}

type Shared<T> = Arc<(Mutex<Slot<T>>, Condvar)>;

/// The server's half: answer once.
pub struct Promise<T>(Option<Shared<T>>);

/// The caller's half: wait for the answer.
pub struct Ticket<T>(Shared<T>);

/// The server stopped without answering.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Gone;

/// A connected pair.
pub fn pair<T>() -> (Promise<T>, Ticket<T>) {
    let shared: Shared<T> = Arc::new((Mutex::new(Slot { value: None, gone: false, waker: None }), Condvar::new()));
    (Promise(Some(Arc::clone(&shared))), Ticket(shared))
}

fn lock<T>(m: &Mutex<Slot<T>>) -> std::sync::MutexGuard<'_, Slot<T>> {
    // A panic while holding this lock cannot leave the slot inconsistent (plain stores).
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl<T> Promise<T> {
    /// Answers the request.
    pub fn fulfil(mut self, value: T) {
        if let Some(shared) = self.0.take() {
            let mut slot = lock(&shared.0);
            slot.value = Some(value);
            if let Some(w) = slot.waker.take() {
                w.wake();
            }
            shared.1.notify_all();
        }
    }
}

impl<T> Drop for Promise<T> {
    fn drop(&mut self) {
        if let Some(shared) = self.0.take() {
            let mut slot = lock(&shared.0);
            slot.gone = true;
            if let Some(w) = slot.waker.take() {
                w.wake();
            }
            shared.1.notify_all();
        }
    }
}

impl<T> std::fmt::Debug for Promise<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Promise")
    }
}

impl<T> std::fmt::Debug for Ticket<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Ticket")
    }
}

impl<T> Ticket<T> {
    /// Blocks until the answer arrives.
    pub fn wait(self) -> Result<T, Gone> {
        let (m, cv) = &*self.0;
        let mut slot = lock(m);
        loop {
            if let Some(v) = slot.value.take() {
                return Ok(v);
            }
            if slot.gone {
                return Err(Gone);
            }
            slot = cv.wait(slot).unwrap_or_else(|p| p.into_inner());
        }
    }
}

impl<T> Future for Ticket<T> {
    type Output = Result<T, Gone>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut slot = lock(&self.0.0);
        if let Some(v) = slot.value.take() {
            return Poll::Ready(Ok(v));
        }
        if slot.gone {
            return Poll::Ready(Err(Gone));
        }
        slot.waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_arrive_across_threads_and_a_dropped_promise_is_gone() {
        let (p, t) = pair::<u32>();
        std::thread::spawn(move || p.fulfil(7));
        assert_eq!(t.wait(), Ok(7));
        let (p, t) = pair::<u32>();
        drop(p);
        assert_eq!(t.wait(), Err(Gone));
    }

    #[test]
    fn a_ticket_is_a_future() {
        struct Flag(std::sync::atomic::AtomicBool);
        impl std::task::Wake for Flag {
            fn wake(self: Arc<Self>) {
                self.0.store(true, std::sync::atomic::Ordering::SeqCst);
            }
        }
        let flag = Arc::new(Flag(false.into()));
        let waker = Waker::from(Arc::clone(&flag));
        let mut cx = Context::from_waker(&waker);
        let (p, mut t) = pair::<u32>();
        assert!(Pin::new(&mut t).poll(&mut cx).is_pending());
        p.fulfil(3);
        assert!(flag.0.load(std::sync::atomic::Ordering::SeqCst));
        assert_eq!(Pin::new(&mut t).poll(&mut cx), Poll::Ready(Ok(3)));
    }
}
