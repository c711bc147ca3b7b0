//! `pmsm certs`: a development CA and party certificates, or further client
//! identities from an existing CA.

use super::Failure;
use pmsm_engine::transport::certs::{CertError, DevCa, Replace, create_dev_set};
use pmsm_engine::transport::tls::ClientName;
use std::path::PathBuf;

/// `pmsm certs`.
#[derive(clap::Args)]
pub struct CertsArgs {
    /// Folder to write into (created if missing): a new CA (ca.pem, ca.key) and
    /// ROLE.pem / ROLE.key for server-0, server-1, dealer and client. With --ca: where
    /// the client identities go [default: the CA's folder].
    #[arg(long, required_unless_present = "ca")]
    out: Option<PathBuf>,
    /// Issue from the CA in this folder (its ca.pem and ca.key) instead of making one.
    #[arg(long, requires = "client", value_name = "DIR")]
    ca: Option<PathBuf>,
    /// Also issue an identity for this client: client-NAME.pem and client-NAME.key,
    /// accepted as `client` and naming NAME.client.pmsm; use it with
    /// `pmsm client --identity NAME`. Repeat for several.
    #[arg(long, value_name = "NAME")]
    client: Vec<ClientName>,
    /// Replace files that exist. A replaced CA no longer trusts what the old one signed.
    #[arg(long)]
    force: bool,
}

fn failure(e: CertError) -> Failure {
    match e {
        CertError::Exists(p) => {
            Failure { message: format!("{} already exists: pass --force to replace it", p.display()), code: 2 }
        }
        CertError::BadCa(message) => Failure { message, code: 2 },
        other => Failure { message: other.to_string(), code: 1 },
    }
}

/// Writes the certificates; reports what was written on stderr.
pub fn run(args: &CertsArgs) -> Result<(), Failure> {
    let replace = if args.force { Replace::Yes } else { Replace::No };
    let (ca, dir, mut files) = match &args.ca {
        Some(ca_dir) => {
            let ca = DevCa::load(ca_dir).map_err(failure)?;
            (ca, args.out.clone().unwrap_or_else(|| ca_dir.clone()), Vec::new())
        }
        None => {
            let dir = args.out.clone().expect("clap requires --out without --ca");
            let (ca, files) = create_dev_set(&dir, replace).map_err(failure)?;
            (ca, dir, files)
        }
    };
    for name in &args.client {
        files.extend(ca.issue_client(&dir, name, replace).map_err(failure)?);
    }
    eprintln!("pmsm: wrote {} files into {} (a development CA: not for production)", files.len(), dir.display());
    Ok(())
}
