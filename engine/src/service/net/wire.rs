//! The client link's messages: a hello and its answer, then requests and answers
//! tagged with the client's request number, each in one data frame of
//! [`crate::transport::frame`].
//!
//! ```text
//! Hello:    "PMSC" | version u16 LE | machine name (UTF-8, ≤ 128 bytes)
//! Welcome:  0 | interface JSON               (the machine's public interface)
//!           1 | error (see `encode_error`)   (refused; the connection closes)
//! Request:  id u32 | op u8 | slot u64 | op's fields (all LE)
//!           open 0: slot is u64::MAX at server 0, server 0's slot at server 1
//!           push 1: offset u64 | count u32 | packed shares
//!           release 2: at u64
//!           close 3: —
//! Answer:   id u32 | 0 | open: slot u64 · push: total u64 ·
//!                      release: steps u64 | width u8 | values u16 | shares packed at width
//!           id u32 | 1 | error (see `encode_error`)
//! ```
//!
//! Every message but a push is at most [`MAX_CONTROL`] bytes; a push carries at most
//! [`MAX_PUSH_SYMBOLS`] symbols (the client splits longer pushes), so a server's read
//! limit is small and fixed. Nothing here is secret except the push's shares, which
//! `Debug` never shows.

use crate::protocol::bits::{pack_into, packed_len, unpack};
use crate::service::ServiceError;
use crate::service::session::Slot;
use crate::transport::frame::cut;

/// The client link's version.
pub const VERSION: u16 = 1;
/// The hello's first bytes (distinct from the parties' `PMSM`).
pub const MAGIC: &[u8; 4] = b"PMSC";
/// Longest machine name.
pub const MAX_NAME: usize = 128;
/// Largest message but a push (hello, welcome without its interface, requests,
/// answers, errors).
pub const MAX_CONTROL: usize = 2048;
/// Most symbols in one push message.
pub const MAX_PUSH_SYMBOLS: usize = crate::service::client::MAX_PUSH;
/// Largest push message: its header and 64 Ki shares of up to 64 bits.
pub const MAX_PUSH: usize = 4 + 1 + 8 + 8 + 4 + 8 * MAX_PUSH_SYMBOLS;
/// Most values one release gives (a set's groups under its `rules` policy: at 64 bits
/// a value, an answer stays within [`MAX_CONTROL`]).
pub const MAX_RELEASED: usize = 240;
/// Largest welcome (the interface's alphabet can name up to 2^16 symbols).
pub const MAX_WELCOME: usize = 4 << 20;

/// A client request on the wire.
#[derive(Clone, PartialEq, Eq)]
pub enum Op {
    /// Open a session (server 1 is told server 0's slot).
    Open(Option<Slot>),
    /// Push shares.
    Push {
        /// Symbols pushed before.
        offset: u64,
        /// Symbols in this push.
        count: u32,
        /// Packed shares.
        shares: Vec<u8>,
    },
    /// Release at `at` symbols.
    Release(u64),
    /// Answer once the first `at` symbols are settled (applied, and committed by a
    /// durable server).
    Sync(u64),
    /// Close.
    Close,
}

impl std::fmt::Debug for Op {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Op::Open(s) => write!(f, "Open({s:?})"),
            Op::Push { offset, count, .. } => write!(f, "Push({count} at {offset}, <redacted>)"),
            Op::Release(at) => write!(f, "Release(at {at})"),
            Op::Sync(at) => write!(f, "Sync(at {at})"),
            Op::Close => f.write_str("Close"),
        }
    }
}

/// A request: its number on the connection, its session and what it asks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestMsg {
    /// The client's number for it (answers carry it back).
    pub id: u32,
    /// The session (ignored by an open at server 0).
    pub slot: Slot,
    /// What it asks.
    pub op: Op,
}

/// A successful answer's value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    /// An opened session's slot.
    Opened(Slot),
    /// Symbols pushed into the session in all.
    Pushed(u64),
    /// The output shares (one per value the machine releases: [`MAX_RELEASED`] at
    /// most) and the steps they cover.
    Released(Vec<u64>, u64),
    /// Closed.
    Closed,
    /// The session's settled steps.
    Synced(u64),
}

/// An answer on the wire.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AnswerMsg {
    /// The request it answers.
    pub id: u32,
    /// Its outcome.
    pub result: Result<Value, ServiceError>,
}

/// The hello naming `machine`.
pub fn encode_hello(machine: &str) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(machine.as_bytes());
    out
}

/// Whether `b` starts like a client hello (the front end tells clients from peers so).
pub fn is_client_hello(b: &[u8]) -> bool {
    b.starts_with(MAGIC)
}

/// The machine a hello names.
pub fn decode_hello(b: &[u8]) -> Result<String, String> {
    if b.len() < 6 || !is_client_hello(b) {
        return Err("not a pmsm client hello (bad magic)".into());
    }
    let version = u16::from_le_bytes([b[4], b[5]]);
    if version != VERSION {
        return Err(format!("client link version {version} is not supported (this server speaks {VERSION})"));
    }
    let name = &b[6..];
    if name.is_empty() || name.len() > MAX_NAME {
        return Err(format!("a machine name has 1 to {MAX_NAME} bytes, not {}", name.len()));
    }
    String::from_utf8(name.to_vec()).map_err(|_| "the machine name is not UTF-8".into())
}

/// A welcome carrying the interface's JSON, or a refusal.
pub fn encode_welcome(r: Result<&str, &ServiceError>) -> Vec<u8> {
    match r {
        Ok(json) => [&[0u8][..], json.as_bytes()].concat(),
        Err(e) => {
            let mut out = vec![1];
            encode_error(e, &mut out);
            out
        }
    }
}

/// The interface JSON of a welcome, or the refusal; `Err` if it is no welcome.
pub fn decode_welcome(b: &[u8]) -> Result<Result<String, ServiceError>, String> {
    match b.first() {
        Some(0) => Ok(Ok(String::from_utf8(b[1..].to_vec()).map_err(|_| "a welcome that is not UTF-8".to_string())?)),
        Some(1) => {
            let mut r = Reader(&b[1..]);
            let e = decode_error(&mut r)?;
            r.end()?;
            Ok(Err(e))
        }
        _ => Err("not a welcome".into()),
    }
}

impl RequestMsg {
    /// Encodes the request.
    pub fn encode(&self) -> Vec<u8> {
        let (code, extra) = match &self.op {
            Op::Open(_) => (0, 0),
            Op::Push { shares, .. } => (1, 12 + shares.len()),
            Op::Release(_) => (2, 8),
            Op::Close => (3, 0),
            Op::Sync(_) => (4, 8),
        };
        let slot = match self.op {
            Op::Open(s) => s.unwrap_or(u64::MAX),
            _ => self.slot,
        };
        let mut out = Vec::with_capacity(13 + extra);
        out.extend_from_slice(&self.id.to_le_bytes());
        out.push(code);
        out.extend_from_slice(&slot.to_le_bytes());
        match &self.op {
            Op::Push { offset, count, shares } => {
                out.extend_from_slice(&offset.to_le_bytes());
                out.extend_from_slice(&count.to_le_bytes());
                out.extend_from_slice(shares);
            }
            Op::Release(at) | Op::Sync(at) => out.extend_from_slice(&at.to_le_bytes()),
            Op::Open(_) | Op::Close => {}
        }
        out
    }

    /// Decodes a request; `share_bits` is the machine's symbol share width, so a push's
    /// length is checked against its count.
    pub fn decode(b: &[u8], share_bits: u32) -> Result<RequestMsg, String> {
        let mut r = Reader(b);
        let id = r.u32()?;
        let code = r.u8()?;
        let slot = r.u64()?;
        let op = match code {
            0 => Op::Open((slot != u64::MAX).then_some(slot)),
            1 => {
                let (offset, count) = (r.u64()?, r.u32()?);
                if count == 0 || count as usize > MAX_PUSH_SYMBOLS {
                    return Err(format!("a push carries 1 to {MAX_PUSH_SYMBOLS} symbols, not {count}"));
                }
                let want = (count as usize * share_bits as usize).div_ceil(8);
                if r.0.len() != want {
                    return Err(format!(
                        "a push of {count} symbols of {share_bits} bits carries {want} bytes of shares, not {}",
                        r.0.len()
                    ));
                }
                Op::Push { offset, count, shares: std::mem::take(&mut r.0).to_vec() }
            }
            2 => Op::Release(r.u64()?),
            3 => Op::Close,
            4 => Op::Sync(r.u64()?),
            c => return Err(format!("unknown request code {c}")),
        };
        r.end()?;
        // An open's slot travels in its op.
        let slot = if code == 0 { 0 } else { slot };
        Ok(RequestMsg { id, slot, op })
    }
}

impl AnswerMsg {
    /// Encodes the answer.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = self.id.to_le_bytes().to_vec();
        match &self.result {
            Ok(v) => {
                out.push(0);
                match v {
                    Value::Opened(s) => out.extend_from_slice(&[&[0u8][..], &s.to_le_bytes()].concat()),
                    Value::Pushed(n) => out.extend_from_slice(&[&[1u8][..], &n.to_le_bytes()].concat()),
                    Value::Released(shares, steps) => {
                        // Shares are at most the machine's output width: packed at the
                        // width of the widest, a set's many values stay small.
                        let width = 64 - shares.iter().fold(0, |a, &v| a | v).leading_zeros().min(63);
                        out.push(2);
                        out.extend_from_slice(&steps.to_le_bytes());
                        out.push(width as u8);
                        out.extend_from_slice(&(shares.len() as u16).to_le_bytes());
                        pack_into(shares, width, &mut out);
                    }
                    Value::Closed => out.push(3),
                    Value::Synced(n) => out.extend_from_slice(&[&[4u8][..], &n.to_le_bytes()].concat()),
                }
            }
            Err(e) => {
                out.push(1);
                encode_error(e, &mut out);
            }
        }
        out
    }

    /// Decodes an answer.
    pub fn decode(b: &[u8]) -> Result<AnswerMsg, String> {
        let mut r = Reader(b);
        let id = r.u32()?;
        let result = match r.u8()? {
            0 => Ok(match r.u8()? {
                0 => Value::Opened(r.u64()?),
                1 => Value::Pushed(r.u64()?),
                2 => {
                    let steps = r.u64()?;
                    let width = u32::from(r.u8()?);
                    let n = u16::from_le_bytes(r.take(2)?.try_into().expect("2 bytes")) as usize;
                    if !(1..=64).contains(&width) || n == 0 || n > MAX_RELEASED {
                        return Err(format!("a release of {n} values of {width} bits"));
                    }
                    let rest = r.take(packed_len(n, width))?;
                    Value::Released(unpack(rest, width, n).ok_or("release shares")?, steps)
                }
                3 => Value::Closed,
                4 => Value::Synced(r.u64()?),
                c => return Err(format!("unknown answer value {c}")),
            }),
            1 => Err(decode_error(&mut r)?),
            c => return Err(format!("unknown answer status {c}")),
        };
        r.end()?;
        Ok(AnswerMsg { id, result })
    }
}

/// An error as code | fields; texts are cut to 1 KiB.
fn encode_error(e: &ServiceError, out: &mut Vec<u8>) {
    let text = |out: &mut Vec<u8>, s: &str| {
        let s = cut(s, 1024);
        out.extend_from_slice(&(s.len() as u16).to_le_bytes());
        out.extend_from_slice(s.as_bytes());
    };
    match e {
        ServiceError::UnknownMachine { name, served } => {
            out.push(0);
            text(out, name);
            text(out, served);
        }
        ServiceError::UnknownSession { session, idle_seconds } => {
            out.push(1);
            out.extend_from_slice(&session.to_le_bytes());
            out.extend_from_slice(&idle_seconds.to_le_bytes());
        }
        ServiceError::NotOwner { session } => {
            out.push(2);
            out.extend_from_slice(&session.to_le_bytes());
        }
        ServiceError::Limit(m) => {
            out.push(3);
            text(out, m);
        }
        ServiceError::Stopped { reason } => {
            out.push(5);
            text(out, reason);
        }
        ServiceError::Unavailable(m) => {
            out.push(6);
            text(out, m);
        }
        ServiceError::BadRequest(m) => {
            out.push(4);
            text(out, m);
        }
        // Symbol errors are the client's own; anything else travels as a bad request.
        other => {
            out.push(4);
            text(out, &other.to_string());
        }
    }
}

fn decode_error(r: &mut Reader<'_>) -> Result<ServiceError, String> {
    Ok(match r.u8()? {
        0 => ServiceError::UnknownMachine { name: r.text()?, served: r.text()? },
        1 => ServiceError::UnknownSession { session: r.u64()?, idle_seconds: r.u64()? },
        2 => ServiceError::NotOwner { session: r.u64()? },
        3 => ServiceError::Limit(r.text()?),
        4 => ServiceError::BadRequest(r.text()?),
        5 => ServiceError::Stopped { reason: r.text()? },
        6 => ServiceError::Unavailable(r.text()?),
        c => return Err(format!("unknown error code {c}")),
    })
}

/// Peer-supplied text made safe to log: cut to 1 KiB, control characters escaped.
pub fn loggable(s: &str) -> String {
    cut(s, 1024)
        .chars()
        .flat_map(|c| if c.is_control() { c.escape_default().collect::<Vec<_>>() } else { vec![c] })
        .collect()
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], String> {
        if self.0.len() < n {
            return Err(format!("message ends {} bytes early", n - self.0.len()));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().expect("4 bytes")))
    }
    fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().expect("8 bytes")))
    }
    fn text(&mut self) -> Result<String, String> {
        let n = u16::from_le_bytes(self.take(2)?.try_into().expect("2 bytes")) as usize;
        String::from_utf8(self.take(n)?.to_vec()).map_err(|_| "a text that is not UTF-8".to_string())
    }
    fn end(&self) -> Result<(), String> {
        if self.0.is_empty() { Ok(()) } else { Err(format!("{} bytes after the message", self.0.len())) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_answers_round_trip() {
        let ops = [
            (0, Op::Open(None)),
            (0, Op::Open(Some(7))),
            (9, Op::Push { offset: 3, count: 3, shares: vec![1, 2, 3] }),
            (9, Op::Release(6)),
            (9, Op::Sync(1 << 33)),
            (9, Op::Close),
        ];
        for (i, (slot, op)) in ops.into_iter().enumerate() {
            let m = RequestMsg { id: i as u32, slot, op };
            assert_eq!(RequestMsg::decode(&m.encode(), 8).unwrap(), m);
        }
        let results = [
            Ok(Value::Opened(5)),
            Ok(Value::Pushed(9)),
            Ok(Value::Released(vec![1], 2)),
            Ok(Value::Released(vec![0], 7)),
            Ok(Value::Released((0..200).map(|v| v * 3).collect(), 1 << 40)),
            Ok(Value::Closed),
            Ok(Value::Synced(1 << 33)),
            Err(ServiceError::UnknownSession { session: 4, idle_seconds: 600 }),
            Err(ServiceError::NotOwner { session: 4 }),
            Err(ServiceError::Limit("too many".into())),
            Err(ServiceError::BadRequest("bad".into())),
            Err(ServiceError::Stopped { reason: "gone".into() }),
            Err(ServiceError::UnknownMachine { name: "x".into(), served: "a, b".into() }),
            Err(ServiceError::Unavailable("later".into())),
        ];
        for (i, result) in results.into_iter().enumerate() {
            let m = AnswerMsg { id: i as u32, result };
            assert_eq!(AnswerMsg::decode(&m.encode()).unwrap(), m);
        }
    }

    #[test]
    fn malformed_messages_are_refused_with_a_reason() {
        let push = RequestMsg { id: 1, slot: 2, op: Op::Push { offset: 0, count: 4, shares: vec![0; 4] } }.encode();
        let e = RequestMsg::decode(&push, 4).unwrap_err();
        assert!(e.contains("carries 2 bytes of shares, not 4"), "{e}");
        assert!(RequestMsg::decode(&push[..7], 8).unwrap_err().contains("ends"));
        let mut bad = RequestMsg { id: 1, slot: 2, op: Op::Close }.encode();
        bad[4] = 9;
        assert!(RequestMsg::decode(&bad, 8).unwrap_err().contains("unknown request code 9"));
        bad[4] = 3;
        bad.push(0);
        assert!(RequestMsg::decode(&bad, 8).unwrap_err().contains("1 bytes after"));
        assert!(decode_hello(b"PMSM\x01\x00ab").unwrap_err().contains("bad magic"));
        assert!(decode_hello(b"PMSC\x02\x00ab").unwrap_err().contains("version 2"));
        assert!(decode_hello(&encode_hello(&"a".repeat(MAX_NAME + 1))).unwrap_err().contains("1 to 128"));
        assert_eq!(decode_hello(&encode_hello("dlp")).unwrap(), "dlp");
        let refused = ServiceError::Unavailable("shutting down".into());
        assert_eq!(decode_welcome(&encode_welcome(Err(&refused))).unwrap(), Err(refused));
        assert_eq!(decode_welcome(&encode_welcome(Ok("{}"))).unwrap(), Ok("{}".to_string()));
    }

    #[test]
    fn peer_text_is_cut_and_escaped_before_logging() {
        assert_eq!(loggable("a\nb\x1b[31m"), "a\\nb\\u{1b}[31m");
        assert_eq!(loggable(&"é".repeat(1000)).len(), 1024);
    }
}
