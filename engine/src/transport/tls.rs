//! Mutual TLS between parties (rustls, `ring` provider): identities and roles.
//!
//! Every party holds a certificate for its [`Role`], signed by a CA all parties trust.
//! A role is a DNS name in the certificate (`server-0.pmsm`, `server-1.pmsm`,
//! `dealer.pmsm`, `client.pmsm`). The dialing side checks the accepting side's name as
//! any TLS client does; the accepting side verifies the dialer's chain during the
//! handshake and then its role name against the role the link requires
//! ([`peer_has_role`]). A certificate from another CA fails the handshake; a valid one
//! for the wrong role is refused by name.
//!
//! Files, in one directory: `ca.pem` (the CA certificate), and per role `ROLE.pem`
//! (certificate) and `ROLE.key` (PKCS#8 private key); a named client's identity is
//! `client-NAME.pem` and `client-NAME.key` ([`ClientName`]). `pmsm certs --out DIR`
//! writes a development set (`transport::certs`); production deployments bring their
//! own CA.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, ClientConnection, RootCertStore, ServerConfig, ServerConnection, StreamOwned};
use std::fmt;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A party's role, as its certificate names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// Server 0.
    Server0,
    /// Server 1.
    Server1,
    /// The dealer.
    Dealer,
    /// A client.
    Client,
}

impl Role {
    /// Every role.
    pub const ALL: [Role; 4] = [Role::Server0, Role::Server1, Role::Dealer, Role::Client];

    /// The file stem and display name (`server-0`, `server-1`, `dealer`, `client`).
    pub fn name(self) -> &'static str {
        match self {
            Role::Server0 => "server-0",
            Role::Server1 => "server-1",
            Role::Dealer => "dealer",
            Role::Client => "client",
        }
    }

    /// The DNS name its certificate carries.
    pub fn dns_name(self) -> String {
        format!("{}.pmsm", self.name())
    }

    /// Server `b`'s role.
    pub fn server(b: usize) -> Role {
        if b == 0 { Role::Server0 } else { Role::Server1 }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A client's own name under the shared `client` role: 1 to 63 characters of `a-z`,
/// `0-9` and `-`, not starting or ending with `-` (a DNS label). Its certificate names
/// both `client.pmsm` and `NAME.client.pmsm`, in files `client-NAME.pem` and `.key`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ClientName(String);

impl ClientName {
    /// The file stem of its certificate and key (`client-NAME`).
    pub fn file_stem(&self) -> String {
        format!("{}-{}", Role::Client.name(), self.0)
    }

    /// The DNS name its certificate carries besides `client.pmsm` (`NAME.client.pmsm`).
    pub fn dns_name(&self) -> String {
        format!("{}.{}", self.0, Role::Client.dns_name())
    }
}

impl std::str::FromStr for ClientName {
    type Err = String;
    fn from_str(s: &str) -> Result<ClientName, String> {
        let label = (1..=63).contains(&s.len())
            && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !s.starts_with('-')
            && !s.ends_with('-');
        if label {
            Ok(ClientName(s.to_string()))
        } else {
            Err(format!("{s:?} is not a client name (1 to 63 of a-z, 0-9 and '-', no '-' at either end)"))
        }
    }
}

impl fmt::Display for ClientName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Loading certificates or setting up a TLS session failed.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TlsError(pub String);

fn tls_err(what: impl fmt::Display) -> TlsError {
    TlsError(what.to_string())
}

/// A party's TLS identity: its role, and client and server configurations that present
/// its certificate and trust only the CA.
#[derive(Clone)]
pub struct Identity {
    role: Role,
    server: Arc<ServerConfig>,
    client: Arc<ClientConfig>,
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity").field("role", &self.role).finish_non_exhaustive()
    }
}

/// The accepting side's end of a TLS connection.
pub type ServerStream = StreamOwned<ServerConnection, TcpStream>;
/// The dialing side's end of a TLS connection.
pub type ClientStream = StreamOwned<ClientConnection, TcpStream>;

impl Identity {
    /// Loads `DIR/ca.pem`, `DIR/ROLE.pem` and `DIR/ROLE.key`.
    pub fn load(dir: &Path, role: Role) -> Result<Identity, TlsError> {
        Identity::load_named(dir, role, role.name())
    }

    /// Loads `DIR/ca.pem`, `DIR/STEM.pem` and `DIR/STEM.key`, a certificate for `role`
    /// (e.g. a named client's, [`ClientName::file_stem`]).
    pub fn load_named(dir: &Path, role: Role, stem: &str) -> Result<Identity, TlsError> {
        let file = |name: String| dir.join(name);
        Identity::from_files(role, &file("ca.pem".into()), &file(format!("{stem}.pem")), &file(format!("{stem}.key")))
    }

    /// Loads an identity for `role` from three files of any names: the CA certificate
    /// `ca`, this party's certificate chain `cert` and its PKCS#8 private key `key`
    /// (PEM). Errors name the file.
    pub fn from_files(role: Role, ca: &Path, cert: &Path, key: &Path) -> Result<Identity, TlsError> {
        let (ca, cert, key) = (ca.to_path_buf(), cert.to_path_buf(), key.to_path_buf());
        let read_certs = |p: &PathBuf| -> Result<Vec<CertificateDer<'static>>, TlsError> {
            let certs = CertificateDer::pem_file_iter(p)
                .and_then(|it| it.collect::<Result<Vec<_>, _>>())
                .map_err(|e| tls_err(format!("{}: {e}", p.display())))?;
            if certs.is_empty() {
                return Err(tls_err(format!("{}: no certificate in the file", p.display())));
            }
            Ok(certs)
        };
        let mut roots = RootCertStore::empty();
        for c in read_certs(&ca)? {
            roots.add(c).map_err(|e| tls_err(format!("{}: not a usable CA certificate: {e}", ca.display())))?;
        }
        let chain = read_certs(&cert)?;
        let private = PrivateKeyDer::from_pem_file(&key).map_err(|e| tls_err(format!("{}: {e}", key.display())))?;
        if !peer_has_role(&chain, role) {
            return Err(tls_err(format!("{}: the certificate is not for {}", cert.display(), role.dns_name())));
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let roots = Arc::new(roots);
        let verifier = WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone())
            .build()
            .map_err(|e| tls_err(format!("{}: {e}", ca.display())))?;
        let server = ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(tls_err)?
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain.clone(), private.clone_key())
            .map_err(|e| tls_err(format!("{} with {}: {e}", cert.display(), key.display())))?;
        let client = ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(tls_err)?
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, private)
            .map_err(|e| tls_err(format!("{} with {}: {e}", cert.display(), key.display())))?;
        Ok(Identity { role, server: Arc::new(server), client: Arc::new(client) })
    }

    /// This party's role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The configuration for accepting connections (TLS 1.3, client certificates
    /// verified against the CA).
    pub fn server_config(&self) -> Arc<ServerConfig> {
        self.server.clone()
    }

    /// The configuration for dialing (TLS 1.3, presenting this party's certificate).
    pub fn client_config(&self) -> Arc<ClientConfig> {
        self.client.clone()
    }

    /// Completes the TLS handshake as the accepting side (the dialer's chain is
    /// verified; its role is checked later, against the link it asks for).
    pub fn accept(&self, sock: TcpStream) -> Result<ServerStream, TlsError> {
        let conn = ServerConnection::new(self.server.clone()).map_err(tls_err)?;
        let mut s = StreamOwned::new(conn, sock);
        while s.conn.is_handshaking() {
            s.conn.complete_io(&mut s.sock).map_err(|e| tls_err(format!("TLS handshake failed: {e}")))?;
        }
        Ok(s)
    }

    /// Completes the TLS handshake as the dialing side, requiring the other side to
    /// hold a certificate for `peer`.
    pub fn connect(&self, sock: TcpStream, peer: Role) -> Result<ClientStream, TlsError> {
        let name = ServerName::try_from(peer.dns_name()).map_err(tls_err)?;
        let conn = ClientConnection::new(self.client.clone(), name).map_err(tls_err)?;
        let mut s = StreamOwned::new(conn, sock);
        while s.conn.is_handshaking() {
            s.conn.complete_io(&mut s.sock).map_err(|e| tls_err(format!("TLS handshake with {peer} failed: {e}")))?;
        }
        Ok(s)
    }
}

/// Whether the end-entity certificate of `chain` names `role` (the chain itself is
/// verified by the TLS handshake).
pub fn peer_has_role(chain: &[CertificateDer<'_>], role: Role) -> bool {
    let Some(first) = chain.first() else { return false };
    let Ok(cert) = webpki::EndEntityCert::try_from(first) else { return false };
    let Ok(name) = ServerName::try_from(role.dns_name()) else { return false };
    cert.verify_is_valid_for_subject_name(&name).is_ok()
}

/// Checks that the end-entity certificate of `chain` names `role` and no other role:
/// a certificate that could act as two parties is refused.
pub fn check_peer_role(chain: &[CertificateDer<'_>], role: Role) -> Result<(), String> {
    if !peer_has_role(chain, role) {
        return Err(format!("the peer's certificate is not for {}", role.dns_name()));
    }
    let others: Vec<String> =
        Role::ALL.iter().filter(|&&r| r != role && peer_has_role(chain, r)).map(|r| r.dns_name()).collect();
    if !others.is_empty() {
        return Err(format!(
            "the peer's certificate names more than one role ({} and {})",
            role.dns_name(),
            others.join(", ")
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_names_are_dns_labels() {
        let n: ClientName = "team-7".parse().unwrap();
        assert_eq!((n.file_stem(), n.dns_name()), ("client-team-7".into(), "team-7.client.pmsm".into()));
        for bad in ["", "-a", "a-", "Alice", "a.b", "a_b", &"a".repeat(64)] {
            let e = bad.parse::<ClientName>().unwrap_err();
            assert!(e.contains("is not a client name"), "{bad}: {e}");
        }
    }
}
