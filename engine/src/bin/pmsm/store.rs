//! `pmsm store`: a session store (`pmsm serve --store FILE`) seen from outside.

use super::Failure;
use pmsm_engine::store::{Store, StoreStats, stats_of, unix_now};
use pmsm_kernels::Party;
use std::path::PathBuf;

/// `pmsm store …`.
#[derive(clap::Subcommand)]
pub enum StoreCommand {
    /// What a store holds: its server, sessions, size and last commit. Refused while a
    /// running server holds the store (read its /metrics instead).
    Stats {
        /// The store's file.
        path: PathBuf,
        /// One JSON object instead of lines.
        #[arg(long)]
        json: bool,
    },
    /// Removes the sessions that have not stepped for SECONDS (the server's eviction
    /// does the same while it runs). Run it on both servers' stores with the same
    /// SECONDS, while the servers are stopped.
    Expire {
        /// The store's file.
        path: PathBuf,
        /// Idle time after which a session goes.
        #[arg(long, value_name = "SECONDS")]
        idle: u64,
    },
}

fn failed(e: pmsm_engine::store::StoreError) -> Failure {
    Failure { message: e.to_string(), code: 2 }
}

/// Runs a `pmsm store` command; returns what to print.
pub fn run(cmd: &StoreCommand) -> Result<String, Failure> {
    match cmd {
        StoreCommand::Stats { path, json } => {
            let s = stats_of(path).map_err(failed)?;
            Ok(if *json { to_json(&s).to_string() } else { to_lines(path, &s) })
        }
        StoreCommand::Expire { path, idle } => {
            let party = stats_of(path).map_err(failed)?.party;
            let store = Store::open(path, if party == 0 { Party::P0 } else { Party::P1 }).map_err(failed)?;
            let gone = store.expire(unix_now().saturating_sub(*idle)).map_err(failed)?;
            Ok(format!("{}: removed {gone} sessions idle for over {idle} s\n", path.display()))
        }
    }
}

fn to_json(s: &StoreStats) -> serde_json::Value {
    serde_json::json!({
        "server": s.party,
        "host": s.host,
        "sessions": s.sessions,
        "machines": s.machines,
        "bytes": s.bytes,
        "bytes_per_session": (s.sessions > 0).then(|| s.bytes as f64 / s.sessions as f64),
        "created": s.created,
        "last_commit": s.last_commit,
    })
}

fn to_lines(path: &std::path::Path, s: &StoreStats) -> String {
    let ago = |t: u64| match t {
        0 => "never".to_string(),
        t => format!("{} s ago (unix {t})", unix_now().saturating_sub(t)),
    };
    format!(
        "store        {}\nserver       {}\nhost         {}\nsessions     {} (group sessions: a set session counts once per group)\nmachines     {}\nsize         {} bytes{}\ncreated      {}\nlast commit  {}\n",
        path.display(),
        s.party,
        s.host,
        s.sessions,
        s.machines,
        s.bytes,
        if s.sessions > 0 { format!(" ({:.0} a session)", s.bytes as f64 / s.sessions as f64) } else { String::new() },
        ago(s.created),
        ago(s.last_commit),
    )
}
