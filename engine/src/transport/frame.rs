//! Length-prefixed frames on a byte stream (the TCP transport's envelope).
//!
//! ```text
//! length: u32 LE (bytes after this field) | kind: u8 | body: length − 1 bytes
//! ```
//!
//! Kind [`DATA`] carries one protocol frame ([`crate::protocol::wire`]) or a handshake
//! message; kind [`ABORT`] carries a UTF-8 reason: the sender's session failed and it
//! will send nothing more. A stream that ends exactly at a frame boundary ended cleanly;
//! one that ends inside a frame was truncated. Lengths above the reader's limit are
//! refused before anything is allocated, so a corrupted length cannot exhaust memory.
//! The envelope's version is the one agreed in the handshake
//! ([`crate::process::hello`]).

use std::io::{self, Read, Write};

/// A frame carrying protocol bytes.
pub const DATA: u8 = 0;
/// A frame carrying the reason the sender aborted its session.
pub const ABORT: u8 = 1;
/// Default largest frame accepted (256 MiB): far above any frame a schedule produces
/// with the default chunk of 1024 instances.
pub const MAX_FRAME: usize = 1 << 28;
/// Longest abort reason sent (longer reasons are cut).
const MAX_REASON: usize = 1024;

/// What was wrong with the byte stream.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The stream ended inside a frame.
    #[error("the stream ended inside a frame ({got} of {want} bytes)")]
    Truncated {
        /// Bytes of the frame (length field included) that arrived.
        got: usize,
        /// Bytes the frame should have had.
        want: usize,
    },
    /// A length above the limit (or zero: every frame has a kind byte).
    #[error("frame length {len} is outside 1..={max}")]
    BadLength {
        /// The announced length.
        len: u64,
        /// The limit.
        max: usize,
    },
    /// A kind byte that is neither data nor abort.
    #[error("unknown frame kind {0}")]
    UnknownKind(u8),
    /// An abort reason that is not UTF-8.
    #[error("abort reason is not UTF-8")]
    BadReason,
    /// The stream itself failed.
    #[error("{0}")]
    Io(#[from] io::Error),
}

/// One decoded frame.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    /// Protocol bytes.
    Data(Vec<u8>),
    /// The sender aborted its session, for this reason.
    Abort(String),
}

/// Writes one data frame (no flush).
pub fn write_data<W: Write + ?Sized>(w: &mut W, body: &[u8]) -> io::Result<()> {
    write_kind(w, DATA, body)
}

/// Writes one abort frame carrying `reason` (cut to 1 KiB at a character boundary).
pub fn write_abort<W: Write + ?Sized>(w: &mut W, reason: &str) -> io::Result<()> {
    write_kind(w, ABORT, cut(reason, MAX_REASON).as_bytes())
}

/// `s` cut to at most `max` bytes at a character boundary.
pub fn cut(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

fn write_kind<W: Write + ?Sized>(w: &mut W, kind: u8, body: &[u8]) -> io::Result<()> {
    let len = u32::try_from(body.len() + 1)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "frame longer than 4 GiB"))?;
    w.write_all(&len.to_le_bytes())?;
    w.write_all(&[kind])?;
    w.write_all(body)
}

/// Reads one frame of at most `max` bytes; `Ok(None)` if the stream ended cleanly
/// before a new frame began.
pub fn read_frame<R: Read + ?Sized>(r: &mut R, max: usize) -> Result<Option<Frame>, FrameError> {
    let mut head = [0u8; HEAD];
    let got = read_full(r, &mut head)?;
    if got == 0 {
        return Ok(None);
    }
    let (len, kind) = parse_head(&head, got, max)?;
    let mut body = super::buffers::zeroed(len);
    let n = read_full(r, &mut body)?;
    if n < body.len() {
        return Err(FrameError::Truncated { got: HEAD + n, want: HEAD + len });
    }
    into_frame(kind, body).map(Some)
}

/// Bytes of a frame's head (length and kind).
pub const HEAD: usize = 5;

/// Checks a frame's head of which `got` bytes arrived: its body's length and kind.
/// Readers of other streams (the async client links) share it.
pub fn parse_head(head: &[u8; HEAD], got: usize, max: usize) -> Result<(usize, u8), FrameError> {
    let len = u64::from(u32::from_le_bytes(head[..4].try_into().expect("4 bytes")));
    if len == 0 || len > max as u64 {
        return Err(FrameError::BadLength { len, max });
    }
    if got < HEAD {
        return Err(FrameError::Truncated { got, want: 4 + len as usize });
    }
    let kind = head[4];
    if kind != DATA && kind != ABORT {
        return Err(FrameError::UnknownKind(kind));
    }
    Ok((len as usize - 1, kind))
}

/// A frame of `kind` with `body` (as [`parse_head`] gave them).
pub fn into_frame(kind: u8, body: Vec<u8>) -> Result<Frame, FrameError> {
    match kind {
        DATA => Ok(Frame::Data(body)),
        _ => String::from_utf8(body).map(Frame::Abort).map_err(|_| FrameError::BadReason),
    }
}

/// A data frame's bytes: head and body (for writers that send whole buffers).
pub fn data_bytes(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEAD + body.len());
    write_data(&mut out, body).expect("writing to a Vec cannot fail");
    out
}

/// Reads until `buf` is full or the stream ends; returns the bytes read.
fn read_full<R: Read + ?Sized>(r: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn read_all(bytes: &[u8]) -> Vec<Result<Option<Frame>, String>> {
        let mut r = Cursor::new(bytes);
        let mut out = Vec::new();
        loop {
            match read_frame(&mut r, 64) {
                Ok(None) => return out,
                Ok(f) => out.push(Ok(f)),
                Err(e) => {
                    out.push(Err(e.to_string()));
                    return out;
                }
            }
        }
    }

    #[test]
    fn frames_round_trip_and_end_cleanly() {
        let mut w = Vec::new();
        write_data(&mut w, b"abc").unwrap();
        write_data(&mut w, b"").unwrap();
        write_abort(&mut w, "server 1 failed").unwrap();
        let got = read_all(&w);
        assert_eq!(
            got,
            vec![
                Ok(Some(Frame::Data(b"abc".to_vec()))),
                Ok(Some(Frame::Data(Vec::new()))),
                Ok(Some(Frame::Abort("server 1 failed".into())))
            ]
        );
    }

    #[test]
    fn every_truncation_is_an_error_not_a_frame() {
        let mut w = Vec::new();
        write_data(&mut w, b"abcdef").unwrap();
        for cut in 1..w.len() {
            let got = read_all(&w[..cut]);
            assert_eq!(got.len(), 1, "cut {cut}");
            assert!(got[0].as_ref().is_err_and(|e| e.contains("ended inside a frame")), "cut {cut}: {got:?}");
        }
    }

    #[test]
    fn bad_lengths_kinds_and_reasons_are_refused() {
        let long = [&65u32.to_le_bytes()[..], &[0]].concat();
        assert!(read_all(&long)[0].as_ref().is_err_and(|e| e.contains("outside 1..=64")));
        assert!(read_all(&[0, 0, 0, 0, 0])[0].as_ref().is_err_and(|e| e.contains("outside")));
        assert!(read_all(&[1, 0, 0, 0, 7])[0].as_ref().is_err_and(|e| e.contains("unknown frame kind 7")));
        assert!(read_all(&[2, 0, 0, 0, 1, 0xff])[0].as_ref().is_err_and(|e| e.contains("UTF-8")));
    }

    #[test]
    fn long_abort_reasons_are_cut_at_a_character_boundary() {
        let mut w = Vec::new();
        write_abort(&mut w, &"é".repeat(1000)).unwrap();
        let Some(Frame::Abort(r)) = read_frame(&mut Cursor::new(&w), MAX_FRAME).unwrap() else { panic!("abort") };
        assert_eq!(r.len(), 1024);
    }
}
