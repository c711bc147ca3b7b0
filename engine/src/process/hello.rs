//! The handshake on every connection, after TLS: the dialer's [`Hello`], then the
//! acceptor's [`Ack`]. Both travel as data frames ([`crate::transport::frame`]).
//!
//! ```text
//! Hello: "PMSM" | version u16 LE | link u8 | session [16] | fingerprint [32] | spec (rest)
//! Ack:   0                      (accepted: frames follow on the link)
//!        1 | reason (UTF-8)     (refused; the connection closes)
//! ```
//!
//! `link` is the directed link the connection carries ([`Link::index`]); the dialer's
//! certificate must name the role that link needs. `fingerprint` is the SHA-256 of the
//! machine ([`super::Fingerprint`]): both servers, the dealer and the client must hold
//! the same one. `spec` is the session spec ([`super::spec`]) on connections that open
//! or join a session, empty on the others.

use super::{Fingerprint, SessionId};
use crate::transport::Link;

/// The handshake version this build speaks.
pub const VERSION: u16 = 1;
const MAGIC: &[u8; 4] = b"PMSM";
const FIXED: usize = 4 + 2 + 1 + 16 + 32;

/// The dialer's opening message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hello {
    /// Handshake version.
    pub version: u16,
    /// The link this connection carries.
    pub link: Link,
    /// The session.
    pub session: SessionId,
    /// The machine's fingerprint.
    pub fingerprint: Fingerprint,
    /// The encoded session spec, or empty.
    pub spec: Vec<u8>,
}

impl Hello {
    /// Encodes the hello.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(FIXED + self.spec.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&self.version.to_le_bytes());
        out.push(self.link.index() as u8);
        out.extend_from_slice(&self.session.0);
        out.extend_from_slice(&self.fingerprint.0);
        out.extend_from_slice(&self.spec);
        out
    }

    /// Decodes a hello. A wrong version is reported before anything else is read, so
    /// later versions may change the rest.
    pub fn decode(b: &[u8]) -> Result<Hello, String> {
        if b.len() < 6 || &b[..4] != MAGIC {
            return Err("not a pmsm handshake (bad magic)".into());
        }
        let version = u16::from_le_bytes([b[4], b[5]]);
        if version != VERSION {
            return Err(format!("handshake version {version} is not supported (this party speaks {VERSION})"));
        }
        if b.len() < FIXED {
            return Err(format!("handshake of {} bytes is shorter than {FIXED}", b.len()));
        }
        let link = Link::from_index(usize::from(b[6])).ok_or_else(|| format!("unknown link code {}", b[6]))?;
        Ok(Hello {
            version,
            link,
            session: SessionId(b[7..23].try_into().expect("16 bytes")),
            fingerprint: Fingerprint(b[23..55].try_into().expect("32 bytes")),
            spec: b[FIXED..].to_vec(),
        })
    }
}

/// The acceptor's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ack {
    /// Accepted.
    Ok,
    /// Refused, with the reason.
    Refused(String),
}

impl Ack {
    /// Encodes the answer.
    pub fn encode(&self) -> Vec<u8> {
        match self {
            Ack::Ok => vec![0],
            Ack::Refused(r) => [&[1u8][..], r.as_bytes()].concat(),
        }
    }

    /// Decodes an answer.
    pub fn decode(b: &[u8]) -> Result<Ack, String> {
        match b.split_first() {
            Some((0, [])) => Ok(Ack::Ok),
            Some((1, r)) => Ok(Ack::Refused(String::from_utf8_lossy(r).into_owned())),
            _ => Err(format!("malformed handshake answer ({} bytes)", b.len())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hello() -> Hello {
        Hello {
            version: VERSION,
            link: Link::S1ToS0,
            session: SessionId([7; 16]),
            fingerprint: Fingerprint([9; 32]),
            spec: vec![1, 2, 3],
        }
    }

    #[test]
    fn hellos_and_acks_round_trip() {
        assert_eq!(Hello::decode(&hello().encode()).unwrap(), hello());
        for a in [Ack::Ok, Ack::Refused("unknown session".into())] {
            assert_eq!(Ack::decode(&a.encode()).unwrap(), a);
        }
    }

    #[test]
    fn bad_hellos_are_named() {
        let mut h = hello();
        h.version = 2;
        assert!(Hello::decode(&h.encode()).unwrap_err().contains("version 2 is not supported"));
        assert!(Hello::decode(b"HTTP/1.1").unwrap_err().contains("bad magic"));
        assert!(Hello::decode(&hello().encode()[..30]).unwrap_err().contains("shorter"));
        let mut b = hello().encode();
        b[6] = 8;
        assert!(Hello::decode(&b).unwrap_err().contains("link code 8"));
        assert!(Ack::decode(&[0, 0]).is_err());
        assert!(Ack::decode(&[]).is_err());
    }
}
