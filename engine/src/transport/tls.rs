//! Mutual TLS between parties (rustls, `ring` provider): identities, roles and the
//! development CA.
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
//! (certificate) and `ROLE.key` (PKCS#8 private key). `pmsm certs --out DIR` writes a
//! development set ([`write_dev_certs`]); production deployments bring their own CA.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, ClientConnection, RootCertStore, ServerConfig, ServerConnection, StreamOwned};
use std::fmt;
use std::io::Write;
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
        let file = |name: String| dir.join(name);
        let ca = file("ca.pem".into());
        let cert = file(format!("{role}.pem"));
        let key = file(format!("{role}.key"));
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
            .with_safe_default_protocol_versions()
            .map_err(tls_err)?
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain.clone(), private.clone_key())
            .map_err(|e| tls_err(format!("{} with {}: {e}", cert.display(), key.display())))?;
        let client = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
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

/// Writes a development CA and one certificate and key per role into `dir` (created if
/// missing); returns the files written. Keys are written with mode 0600 on Unix.
pub fn write_dev_certs(dir: &Path) -> Result<Vec<PathBuf>, TlsError> {
    use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose};
    std::fs::create_dir_all(dir).map_err(|e| tls_err(format!("{}: {e}", dir.display())))?;
    let mut written = Vec::new();
    let mut write = |name: String, text: String, secret: bool| -> Result<(), TlsError> {
        let path = dir.join(name);
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        if secret {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let _ = secret;
        opts.open(&path)
            .and_then(|mut f| f.write_all(text.as_bytes()))
            .map_err(|e| tls_err(format!("{}: {e}", path.display())))?;
        written.push(path);
        Ok(())
    };
    let ca_key = KeyPair::generate().map_err(tls_err)?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(tls_err)?;
    ca_params.distinguished_name.push(DnType::CommonName, "pmsm development CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca = ca_params.self_signed(&ca_key).map_err(tls_err)?;
    write("ca.pem".into(), ca.pem(), false)?;
    for role in Role::ALL {
        let key = KeyPair::generate().map_err(tls_err)?;
        let mut params = CertificateParams::new(vec![role.dns_name()]).map_err(tls_err)?;
        params.distinguished_name.push(DnType::CommonName, format!("pmsm {role}"));
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        // Every party both accepts and dials connections.
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
        let cert = params.signed_by(&key, &ca, &ca_key).map_err(tls_err)?;
        write(format!("{role}.pem"), cert.pem(), false)?;
        write(format!("{role}.key"), key.serialize_pem(), true)?;
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dev_certs_load_for_their_role_and_name_only_it() {
        let dir = std::env::temp_dir().join(format!("pmsm-tls-test-{}", std::process::id()));
        let files = write_dev_certs(&dir).unwrap();
        assert_eq!(files.len(), 9);
        for role in Role::ALL {
            let id = Identity::load(&dir, role).unwrap();
            assert_eq!(id.role(), role);
            let chain: Vec<CertificateDer<'static>> =
                CertificateDer::pem_file_iter(dir.join(format!("{role}.pem"))).unwrap().map(Result::unwrap).collect();
            for other in Role::ALL {
                assert_eq!(peer_has_role(&chain, other), other == role, "{role} cert names {other}?");
            }
        }
        // A certificate presented under another role's name is refused at load.
        std::fs::copy(dir.join("client.pem"), dir.join("dealer.pem")).unwrap();
        let err = Identity::load(&dir, Role::Dealer).unwrap_err().to_string();
        assert!(err.contains("not for dealer.pmsm"), "{err}");
        let err = Identity::load(&dir.join("missing"), Role::Dealer).unwrap_err().to_string();
        assert!(err.contains("ca.pem"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
