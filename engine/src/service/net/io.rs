//! Frames ([`crate::transport::frame`]) on tokio streams: the client links.

use crate::transport::frame::{self, Frame, FrameError, HEAD};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Reads one frame of at most `max` bytes; `Ok(None)` if the stream ended cleanly
/// before a new frame began.
pub async fn read_frame<R: AsyncRead + Unpin>(r: &mut R, max: usize) -> Result<Option<Frame>, FrameError> {
    let mut head = [0u8; HEAD];
    let got = read_full(r, &mut head).await?;
    if got == 0 {
        return Ok(None);
    }
    let (len, kind) = frame::parse_head(&head, got, max)?;
    let mut body = vec![0u8; len];
    let n = read_full(r, &mut body).await?;
    if n < len {
        return Err(FrameError::Truncated { got: HEAD + n, want: HEAD + len });
    }
    frame::into_frame(kind, body).map(Some)
}

/// Writes one data frame (no flush).
pub async fn write_data<W: AsyncWrite + Unpin>(w: &mut W, body: &[u8]) -> std::io::Result<()> {
    w.write_all(&frame::data_bytes(body)).await
}

async fn read_full<R: AsyncRead + Unpin>(r: &mut R, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]).await? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// Most bytes of queued frames joined into one write.
const COALESCE: usize = 64 << 10;

/// Writes the whole frames queued on `rx` to `w`: the frames queued at once (up to
/// [`COALESCE`] bytes) joined into one write and flushed, so a busy connection sends
/// one TLS record and one system call for many answers; when every sender is gone,
/// shuts `w` down (TLS close_notify). Ends at the first write error.
pub fn spawn_writer<W: AsyncWrite + Unpin + Send + 'static>(
    mut w: W,
    mut rx: mpsc::Receiver<Vec<u8>>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        while let Some(mut batch) = rx.recv().await {
            while batch.len() < COALESCE {
                match rx.try_recv() {
                    Ok(frame) => batch.extend_from_slice(&frame),
                    Err(_) => break,
                }
            }
            if w.write_all(&batch).await.is_err() || w.flush().await.is_err() {
                return;
            }
        }
        let _ = w.shutdown().await;
    })
}
