//! The development CA of `pmsm certs` (rcgen): a CA that keeps its key, a certificate
//! per role, and further client identities issued from the same CA later.
//!
//! Files, in one folder (what [`super::tls::Identity`] loads): `ca.pem` and `ca.key`
//! (the CA's certificate and PKCS#8 key), `ROLE.pem` and `ROLE.key` for the four roles,
//! and `client-NAME.pem` and `client-NAME.key` for each named client. A named client's
//! certificate carries both `client.pmsm`, the role every server checks, and
//! `NAME.client.pmsm`, its own identity, so each client of a service holds its own key
//! under one CA. Keys are written with mode 0600 on Unix.
//!
//! Nothing is overwritten unless asked ([`Replace::Yes`]): replacing a CA silently
//! would cut off every party holding a certificate it signed. A CA is loaded back only
//! with its own key (the key's public half must be the certificate's), and every
//! certificate issued is verified against the `ca.pem` on disk before it is written.
//!
//! This is a **development** CA: its key sits unencrypted beside the certificates. A
//! deployment brings its own CA and gives each organisation only its own key.

use super::tls::{ClientName, Role};
use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, UnixTime};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The CA's common name (it names the issuer of every certificate it signs).
const CA_NAME: &str = "pmsm development CA";

/// Making, loading or writing certificates failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CertError {
    /// A file to be written exists, and replacing was not asked for.
    #[error("{} already exists", .0.display())]
    Exists(PathBuf),
    /// The CA folder does not hold a usable CA.
    #[error("{0}")]
    BadCa(String),
    /// Reading, writing or generating failed.
    #[error("{0}")]
    Io(String),
}

/// Whether existing files may be replaced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Replace {
    /// Refuse if any file to be written exists.
    No,
    /// Replace existing files.
    Yes,
}

fn generation(e: rcgen::Error) -> CertError {
    CertError::Io(format!("certificate generation failed: {e}"))
}

/// A CA that can sign: its certificate as on disk, and its key.
pub struct DevCa {
    /// `ca.pem` as written (or read).
    pem: String,
    /// The CA's parameters, self-signed again with its key: what rcgen signs with
    /// (issuer name and key identifier, identical to those of `pem`).
    cert: Certificate,
    key: KeyPair,
}

impl std::fmt::Debug for DevCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevCa").finish_non_exhaustive()
    }
}

fn ca_params() -> Result<CertificateParams, CertError> {
    let mut params = CertificateParams::new(Vec::<String>::new()).map_err(generation)?;
    params.distinguished_name.push(DnType::CommonName, CA_NAME);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    Ok(params)
}

impl DevCa {
    /// A fresh CA.
    pub fn generate() -> Result<DevCa, CertError> {
        let key = KeyPair::generate().map_err(generation)?;
        let cert = ca_params()?.self_signed(&key).map_err(generation)?;
        Ok(DevCa { pem: cert.pem(), cert, key })
    }

    /// The CA in `dir` (`ca.pem`, `ca.key`), made by [`DevCa::generate`].
    pub fn load(dir: &Path) -> Result<DevCa, CertError> {
        let read = |name: &str| {
            let path = dir.join(name);
            std::fs::read_to_string(&path).map_err(|e| CertError::BadCa(format!("{}: {e}", path.display())))
        };
        let pem = read("ca.pem")?;
        let key_path = dir.join("ca.key");
        let key = KeyPair::from_pem(&read("ca.key")?)
            .map_err(|e| CertError::BadCa(format!("{}: not a private key: {e}", key_path.display())))?;
        let der = CertificateDer::from_pem_slice(pem.as_bytes())
            .map_err(|e| CertError::BadCa(format!("{}: {e}", dir.join("ca.pem").display())))?;
        let spki = key.public_key_der();
        if !der.windows(spki.len()).any(|w| w == spki.as_slice()) {
            return Err(CertError::BadCa(format!(
                "{} is not the key of {}",
                key_path.display(),
                dir.join("ca.pem").display()
            )));
        }
        let cert = ca_params()?.self_signed(&key).map_err(generation)?;
        Ok(DevCa { pem, cert, key })
    }

    /// Writes `ca.pem` and `ca.key` into `dir` (created if missing).
    pub fn write(&self, dir: &Path, replace: Replace) -> Result<Vec<PathBuf>, CertError> {
        let files = [("ca.pem", self.pem.clone(), false), ("ca.key", self.key.serialize_pem(), true)];
        write_all(dir, &files, replace)
    }

    /// Writes a certificate and key for `role` into `dir` (`ROLE.pem`, `ROLE.key`).
    pub fn issue_role(&self, dir: &Path, role: Role, replace: Replace) -> Result<Vec<PathBuf>, CertError> {
        self.issue(dir, role.name(), vec![role.dns_name()], &format!("pmsm {role}"), replace)
    }

    /// Writes an identity for the client `name` into `dir` (`client-NAME.pem`,
    /// `client-NAME.key`): a client certificate that also names `NAME.client.pmsm`.
    pub fn issue_client(&self, dir: &Path, name: &ClientName, replace: Replace) -> Result<Vec<PathBuf>, CertError> {
        let names = vec![Role::Client.dns_name(), name.dns_name()];
        self.issue(dir, &name.file_stem(), names, &format!("pmsm client {name}"), replace)
    }

    fn issue(
        &self,
        dir: &Path,
        stem: &str,
        names: Vec<String>,
        common_name: &str,
        replace: Replace,
    ) -> Result<Vec<PathBuf>, CertError> {
        let key = KeyPair::generate().map_err(generation)?;
        let mut params = CertificateParams::new(names).map_err(generation)?;
        params.distinguished_name.push(DnType::CommonName, common_name);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        // Every party both accepts and dials connections.
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
        let cert = params.signed_by(&key, &self.cert, &self.key).map_err(generation)?;
        self.check_signed(cert.der())?;
        let files =
            [(&*format!("{stem}.pem"), cert.pem(), false), (&*format!("{stem}.key"), key.serialize_pem(), true)];
        write_all(dir, &files, replace)
    }

    /// Checks that `cert` chains to this CA's certificate as written, so a CA that
    /// rcgen would sign for under another name is caught before anything is written.
    fn check_signed(&self, cert: &CertificateDer<'_>) -> Result<(), CertError> {
        let ca = CertificateDer::from_pem_slice(self.pem.as_bytes()).map_err(|e| CertError::BadCa(e.to_string()))?;
        let anchor = webpki::anchor_from_trusted_cert(&ca).map_err(|e| CertError::BadCa(format!("ca.pem: {e}")))?;
        let ee = webpki::EndEntityCert::try_from(cert).map_err(|e| CertError::Io(e.to_string()))?;
        ee.verify_for_usage(
            webpki::ALL_VERIFICATION_ALGS,
            &[anchor],
            &[],
            UnixTime::now(),
            webpki::KeyUsage::client_auth(),
            None,
            None,
        )
        .map(|_| ())
        .map_err(|e| {
            CertError::BadCa(format!(
                "ca.pem is not a CA made by pmsm certs (a certificate it issued does not verify: {e})"
            ))
        })
    }
}

/// Writes `files` (name, text, secret) into `dir`: none if one exists and `replace` is
/// [`Replace::No`]. Secret files get mode 0600 on Unix.
fn write_all(dir: &Path, files: &[(&str, String, bool)], replace: Replace) -> Result<Vec<PathBuf>, CertError> {
    std::fs::create_dir_all(dir).map_err(|e| CertError::Io(format!("{}: {e}", dir.display())))?;
    if replace == Replace::No
        && let Some(p) = files.iter().map(|(name, ..)| dir.join(name)).find(|p| p.exists())
    {
        return Err(CertError::Exists(p));
    }
    let mut written = Vec::new();
    for (name, text, secret) in files {
        let path = dir.join(name);
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        if *secret {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let _ = secret;
        opts.open(&path)
            .and_then(|mut f| f.write_all(text.as_bytes()))
            .map_err(|e| CertError::Io(format!("{}: {e}", path.display())))?;
        written.push(path);
    }
    Ok(written)
}

/// A new CA and a certificate and key per role in `dir`; returns the CA (to issue
/// more from) and the files written.
pub fn create_dev_set(dir: &Path, replace: Replace) -> Result<(DevCa, Vec<PathBuf>), CertError> {
    let ca = DevCa::generate()?;
    if replace == Replace::No {
        let mut names = vec!["ca.pem".to_string(), "ca.key".to_string()];
        names.extend(Role::ALL.iter().flat_map(|r| [format!("{r}.pem"), format!("{r}.key")]));
        if let Some(p) = names.iter().map(|n| dir.join(n)).find(|p| p.exists()) {
            return Err(CertError::Exists(p));
        }
    }
    let mut files = ca.write(dir, replace)?;
    for role in Role::ALL {
        files.extend(ca.issue_role(dir, role, replace)?);
    }
    Ok((ca, files))
}

/// A new CA and a certificate and key per role in `dir`, replacing what is there
/// (scratch folders of tests and benchmarks); returns the files written.
pub fn write_dev_certs(dir: &Path) -> Result<Vec<PathBuf>, CertError> {
    create_dev_set(dir, Replace::Yes).map(|(_, files)| files)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::tls::{Identity, peer_has_role};

    struct Dir(PathBuf);
    impl Dir {
        fn new(name: &str) -> Dir {
            Dir(std::env::temp_dir().join(format!("pmsm-certs-{name}-{}", std::process::id())))
        }
    }
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn chain(path: PathBuf) -> Vec<CertificateDer<'static>> {
        CertificateDer::pem_file_iter(path).unwrap().map(Result::unwrap).collect()
    }

    #[test]
    fn dev_certs_load_for_their_role_and_name_only_it() {
        let dir = Dir::new("roles");
        let dir = &dir.0;
        let files = write_dev_certs(dir).unwrap();
        assert_eq!(files.len(), 10);
        for role in Role::ALL {
            let id = Identity::load(dir, role).unwrap();
            assert_eq!(id.role(), role);
            let chain = chain(dir.join(format!("{role}.pem")));
            for other in Role::ALL {
                assert_eq!(peer_has_role(&chain, other), other == role, "{role} cert names {other}?");
            }
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.join("ca.key")).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // A certificate presented under another role's name is refused at load.
        std::fs::copy(dir.join("client.pem"), dir.join("dealer.pem")).unwrap();
        let err = Identity::load(dir, Role::Dealer).unwrap_err().to_string();
        assert!(err.contains("not for dealer.pmsm"), "{err}");
        let err = Identity::load(&dir.join("missing"), Role::Dealer).unwrap_err().to_string();
        assert!(err.contains("ca.pem"), "{err}");
    }

    #[test]
    fn an_existing_set_is_kept_unless_replacing() {
        let dir = Dir::new("keep");
        let dir = &dir.0;
        create_dev_set(dir, Replace::No).unwrap();
        let ca = std::fs::read(dir.join("ca.pem")).unwrap();
        let e = create_dev_set(dir, Replace::No).unwrap_err();
        assert!(matches!(&e, CertError::Exists(p) if p == &dir.join("ca.pem")), "{e}");
        assert_eq!(std::fs::read(dir.join("ca.pem")).unwrap(), ca, "the CA is untouched");
        // A lone role file is not overwritten either.
        std::fs::remove_file(dir.join("ca.pem")).unwrap();
        std::fs::remove_file(dir.join("ca.key")).unwrap();
        assert!(matches!(create_dev_set(dir, Replace::No), Err(CertError::Exists(_))));
        create_dev_set(dir, Replace::Yes).unwrap();
        assert_ne!(std::fs::read(dir.join("ca.pem")).unwrap(), ca);
    }

    #[test]
    fn a_kept_ca_issues_named_clients_that_its_servers_accept() {
        let dir = Dir::new("clients");
        let dir = &dir.0;
        create_dev_set(dir, Replace::No).unwrap();
        let ca = DevCa::load(dir).unwrap();
        let alice: ClientName = "alice".parse().unwrap();
        let files = ca.issue_client(dir, &alice, Replace::No).unwrap();
        assert_eq!(files, vec![dir.join("client-alice.pem"), dir.join("client-alice.key")]);
        let id = Identity::load_named(dir, Role::Client, &alice.file_stem()).unwrap();
        assert_eq!(id.role(), Role::Client);
        let chain = chain(dir.join("client-alice.pem"));
        assert!(peer_has_role(&chain, Role::Client));
        let cert = webpki::EndEntityCert::try_from(&chain[0]).unwrap();
        let own = rustls::pki_types::ServerName::try_from("alice.client.pmsm").unwrap();
        let other = rustls::pki_types::ServerName::try_from("bob.client.pmsm").unwrap();
        assert!(cert.verify_is_valid_for_subject_name(&own).is_ok());
        assert!(cert.verify_is_valid_for_subject_name(&other).is_err());
        assert!(matches!(ca.issue_client(dir, &alice, Replace::No), Err(CertError::Exists(_))));
    }

    #[test]
    fn a_ca_loads_only_with_its_own_key() {
        let (a, b) = (Dir::new("ca-a"), Dir::new("ca-b"));
        create_dev_set(&a.0, Replace::No).unwrap();
        create_dev_set(&b.0, Replace::No).unwrap();
        std::fs::copy(b.0.join("ca.key"), a.0.join("ca.key")).unwrap();
        let e = DevCa::load(&a.0).unwrap_err().to_string();
        assert!(e.ends_with(&format!("ca.key is not the key of {}", a.0.join("ca.pem").display())), "{e}");
        std::fs::remove_file(a.0.join("ca.key")).unwrap();
        let e = DevCa::load(&a.0).unwrap_err().to_string();
        assert!(e.contains("ca.key"), "{e}");
        // A CA of another name, with its own key: loaded, but nothing is issued from it.
        let key = KeyPair::generate().unwrap();
        let mut params = ca_params().unwrap();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, "someone else's CA");
        std::fs::write(a.0.join("ca.pem"), params.self_signed(&key).unwrap().pem()).unwrap();
        std::fs::write(a.0.join("ca.key"), key.serialize_pem()).unwrap();
        let ca = DevCa::load(&a.0).unwrap();
        let e = ca.issue_client(&a.0, &"x".parse().unwrap(), Replace::No).unwrap_err().to_string();
        assert!(e.starts_with("ca.pem is not a CA made by pmsm certs"), "{e}");
        assert!(!a.0.join("client-x.pem").exists());
    }
}
