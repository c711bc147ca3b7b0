//! Durable sessions: one crash-safe store per server (`README.md` in this folder draws
//! where it sits on a push's path).
//!
//! A [`Store`] is one redb file holding, per session, the committed step count and this
//! server's state share at that step and at the step before ([`SessionRecord`]), with
//! the machine (name and fingerprint) and the owner. Both servers commit at the same
//! *checkpoints*, wave plans the leader marks: each commits its sessions as every wave
//! before the checkpoint left them, in one transaction. A server answers a checkpoint
//! only once its previous one is durable, so the two stores are at most one checkpoint
//! apart; each record keeps the checkpoint before, and after a restart both servers
//! reopen their stores and agree, session by session, on the checkpoint both hold
//! ([`reconcile::agree`]). A push is acknowledged only once both servers
//! committed its last step, so nothing acknowledged is ever lost.
//!
//! The file is created owner-only (mode 600 in a folder it creates 700), and a store
//! is refused when it is not this server's: another party's, another machine's, or not
//! a store at all. No share ever appears in an error or log line.
//!
//! Costs: one transaction with one `fsync` per checkpoint per server, whatever the
//! number of waves and sessions since the last, written by a thread of its own
//! ([`writer`]) while the waves go on; 54 bytes of record and 9 of key a session, plus
//! redb's B-tree pages (measured per session in the README).

pub mod reconcile;
pub mod record;
pub mod writer;

pub use record::SessionRecord;

use crate::process::Fingerprint;
use crate::service::session::Slot;
use pmsm_kernels::Party;
use pmsm_kernels::rng::{RngCore, SecretRng};
use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// The store's format (meta key `format`); a store of another format is refused.
pub const FORMAT: u64 = 1;

/// `meta`: format, party, store id, host, created, last commit.
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
/// `machines`: fingerprint (32 bytes) then name → machine id.
const MACHINES: TableDefinition<&[u8], u32> = TableDefinition::new("machines");
/// `sessions`: (share family, slot) → [`SessionRecord`] bytes.
const SESSIONS: TableDefinition<(u8, u64), &[u8]> = TableDefinition::new("sessions");

/// Why a store cannot be used. Names the file and never holds a share.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The file cannot be opened or created as a store.
    #[error("session store {path}: {detail}")]
    Open {
        /// The store's file.
        path: PathBuf,
        /// What went wrong.
        detail: String,
    },
    /// The file is a store, but not this server's.
    #[error("session store {path} is not this server's: {detail}")]
    Foreign {
        /// The store's file.
        path: PathBuf,
        /// Whose it is.
        detail: String,
    },
    /// The store's disk is read-only, or has less free room than the reserve: new
    /// sessions and pushes are refused until there is room (releases, closes and
    /// commits of what was taken go on, within the reserve).
    #[error(
        "session store {path}: {detail}; new sessions and pushes are refused until there is room \
         (what was acknowledged is kept)"
    )]
    NoRoom {
        /// The store's file.
        path: PathBuf,
        /// What is short.
        detail: String,
    },
    /// Reading or committing failed (a full or read-only disk, a damaged file).
    #[error("session store {path}: {op} failed: {detail}")]
    Io {
        /// The store's file.
        path: PathBuf,
        /// What was being done.
        op: &'static str,
        /// The cause.
        detail: String,
    },
}

/// One commit's change: records to write (upserts), then sessions to delete.
pub type Change<'a> = (&'a [(Slot, SessionRecord)], &'a [Slot]);

/// A session store, open for one server. Thread-safe (both share families commit into
/// it; redb runs one write transaction at a time).
pub struct Store {
    db: Database,
    path: PathBuf,
    party: Party,
    /// Drawn when the store was made (meta key `id`).
    id: [u8; 16],
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).field("party", &self.party).finish_non_exhaustive()
    }
}

/// What `pmsm store stats` reports of a store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreStats {
    /// Which server's.
    pub party: u8,
    /// The host it was made on.
    pub host: String,
    /// Sessions held (group sessions: a set session counts one per group).
    pub sessions: u64,
    /// Machines named by sessions, ever.
    pub machines: u64,
    /// The file's size in bytes.
    pub bytes: u64,
    /// When it was made (unix seconds).
    pub created: u64,
    /// When the last commit was (unix seconds; 0 if none).
    pub last_commit: u64,
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// [`unix_now`] as a record holds it (u32 seconds, enough to 2106).
pub fn record_now() -> u32 {
    u32::try_from(unix_now()).unwrap_or(u32::MAX)
}

/// This host's name for the store: `/etc/machine-id`, else the kernel's host name.
fn host_id() -> String {
    ["/etc/machine-id", "/proc/sys/kernel/hostname"]
        .iter()
        .find_map(|p| std::fs::read_to_string(p).ok().map(|s| s.trim().to_string()).filter(|s| !s.is_empty()))
        .unwrap_or_else(|| "unknown".into())
}

impl Store {
    /// Opens server `party`'s store at `path`, creating it (and its folder) if missing.
    /// Refuses a file readable by others, another server's or another host's store, a
    /// file of another format, and a file that is not a store.
    pub fn open(path: &Path, party: Party) -> Result<Store, StoreError> {
        let open_err = |detail: String| StoreError::Open { path: path.to_path_buf(), detail };
        let fresh = !path.exists();
        if fresh {
            create_private(path).map_err(|e| open_err(format!("cannot create it: {e}")))?;
        } else {
            check_private(path).map_err(open_err)?;
        }
        let db = Database::create(path).map_err(|e| open_err(describe_open(&e)))?;
        let mut store = Store { db, path: path.to_path_buf(), party, id: [0; 16] };
        store.check_meta(fresh)?;
        store.id = store.meta("id")?.and_then(|v| v.try_into().ok()).ok_or_else(|| StoreError::Foreign {
            path: path.to_path_buf(),
            detail: "its header's id is not 16 bytes (not a pmsm session store)".into(),
        })?;
        Ok(store)
    }

    /// The store's id, drawn from the CSPRNG when it was made.
    pub fn id(&self) -> [u8; 16] {
        self.id
    }

    fn meta(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let err = self.io("reading its header");
        let txn = self.db.begin_read().map_err(|e| err(e.to_string()))?;
        let meta = txn.open_table(META).map_err(|e| err(e.to_string()))?;
        Ok(meta.get(key).map_err(|e| err(e.to_string()))?.map(|g| g.value().to_vec()))
    }

    /// Pairs this store with the other server's store `peer` (its id): recorded the
    /// first time, refused afterwards for any other store (one lost and made anew,
    /// replaced by a copy, or another pair's), since agreeing with it would drop or
    /// mismatch sessions.
    pub fn pair_with(&self, peer: [u8; 16]) -> Result<(), StoreError> {
        let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
        match self.meta("peer")? {
            Some(known) if known == peer => Ok(()),
            Some(known) => Err(StoreError::Foreign {
                path: self.path.clone(),
                detail: format!(
                    "it ran beside the other server's store {}, and the other server now has store {}: \
                     was a store lost or replaced? Start both servers on the stores they ran with, or \
                     move both aside to start afresh",
                    hex(&known),
                    hex(&peer)
                ),
            }),
            None => {
                let err = self.io("recording the other server's store");
                let txn = self.db.begin_write().map_err(|e| err(e.to_string()))?;
                {
                    let mut meta = txn.open_table(META).map_err(|e| err(e.to_string()))?;
                    meta.insert("peer", peer.as_slice()).map_err(|e| err(e.to_string()))?;
                }
                txn.commit().map_err(|e| err(e.to_string()))
            }
        }
    }

    /// The store's file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn io(&self, op: &'static str) -> impl Fn(String) -> StoreError + '_ {
        move |detail| StoreError::Io { path: self.path.clone(), op, detail: hint(&detail) }
    }

    /// Writes the meta of a fresh store, or checks an existing store's.
    fn check_meta(&self, fresh: bool) -> Result<(), StoreError> {
        let err = self.io("reading its header");
        let host = host_id();
        let txn = self.db.begin_write().map_err(|e| err(e.to_string()))?;
        {
            let mut meta = txn.open_table(META).map_err(|e| err(e.to_string()))?;
            let empty = meta.len().map_err(|e| err(e.to_string()))? == 0;
            if empty {
                if !fresh {
                    return Err(StoreError::Foreign {
                        path: self.path.clone(),
                        detail: "the file is a database without a pmsm header (not a session store)".into(),
                    });
                }
                let mut id = [0u8; 16];
                SecretRng::from_os().fill_bytes(&mut id);
                let put = |m: &mut redb::Table<&str, &[u8]>, k: &str, v: &[u8]| {
                    m.insert(k, v).map(|_| ()).map_err(|e| err(e.to_string()))
                };
                put(&mut meta, "format", &FORMAT.to_le_bytes())?;
                put(&mut meta, "party", &[self.party.index() as u8])?;
                put(&mut meta, "id", &id)?;
                put(&mut meta, "host", host.as_bytes())?;
                put(&mut meta, "created", &unix_now().to_le_bytes())?;
            } else {
                let get = |k: &str| -> Result<Vec<u8>, StoreError> {
                    let v = meta.get(k).map_err(|e| err(e.to_string()))?;
                    v.map(|g| g.value().to_vec()).ok_or_else(|| StoreError::Foreign {
                        path: self.path.clone(),
                        detail: format!("its header lacks {k:?} (not a pmsm session store)"),
                    })
                };
                let foreign = |detail: String| StoreError::Foreign { path: self.path.clone(), detail };
                let format = get("format")?;
                if format != FORMAT.to_le_bytes() {
                    return Err(foreign(format!("it is of format {format:?}, this pmsm reads format {FORMAT}")));
                }
                let party = get("party")?;
                if party != [self.party.index() as u8] {
                    return Err(foreign(format!(
                        "it belongs to server {} (this is server {}): each server keeps its own store",
                        party.first().copied().unwrap_or(u8::MAX),
                        self.party.index()
                    )));
                }
                let made_on = String::from_utf8_lossy(&get("host")?).into_owned();
                if made_on != host {
                    return Err(foreign(format!(
                        "it was made on host {made_on:?}, this is {host:?}: a store holds one host's shares \
                         and is not moved between hosts"
                    )));
                }
            }
        }
        txn.open_table(MACHINES).map_err(|e| err(e.to_string()))?;
        txn.open_table(SESSIONS).map_err(|e| err(e.to_string()))?;
        txn.commit().map_err(|e| err(e.to_string()))
    }

    /// The store's numbers for machines `(name, fingerprint)`, registering new ones. A
    /// machine whose table changed under the same name gets a new number, so sessions
    /// of the old table never run on the new one.
    pub fn machine_ids(&self, machines: &[(&str, Fingerprint)]) -> Result<Vec<u32>, StoreError> {
        let err = self.io("registering machines");
        let txn = self.db.begin_write().map_err(|e| err(e.to_string()))?;
        let ids = {
            let mut t = txn.open_table(MACHINES).map_err(|e| err(e.to_string()))?;
            let mut next = t.len().map_err(|e| err(e.to_string()))? as u32;
            let mut ids = Vec::with_capacity(machines.len());
            for (name, fp) in machines {
                let key = [&fp.0[..], name.as_bytes()].concat();
                let known = t.get(key.as_slice()).map_err(|e| err(e.to_string()))?.map(|g| g.value());
                let id = match known {
                    Some(id) => id,
                    None => {
                        t.insert(key.as_slice(), next).map_err(|e| err(e.to_string()))?;
                        next += 1;
                        next - 1
                    }
                };
                ids.push(id);
            }
            ids
        };
        txn.commit().map_err(|e| err(e.to_string()))?;
        Ok(ids)
    }

    /// Every session of share family `family`, in slot order.
    pub fn load(&self, family: u8) -> Result<Vec<(Slot, SessionRecord)>, StoreError> {
        let err = self.io("loading sessions");
        let txn = self.db.begin_read().map_err(|e| err(e.to_string()))?;
        let t = txn.open_table(SESSIONS).map_err(|e| err(e.to_string()))?;
        let mut out = Vec::new();
        for entry in t.range((family, 0)..=(family, u64::MAX)).map_err(|e| err(e.to_string()))? {
            let (k, v) = entry.map_err(|e| err(e.to_string()))?;
            let slot = k.value().1;
            let r = SessionRecord::decode(v.value())
                .ok_or_else(|| err(format!("session {slot}'s record is {} bytes, not a record", v.value().len())))?;
            out.push((slot, r));
        }
        Ok(out)
    }

    /// Commits `upserts` and `deletes` of family `family` as one transaction, durable
    /// when this returns. An upsert whose `created` is 0 keeps the stored session's
    /// (a new session's is now).
    pub fn commit(&self, family: u8, upserts: &[(Slot, SessionRecord)], deletes: &[Slot]) -> Result<(), StoreError> {
        self.commit_parts(family, &[(upserts, deletes)])
    }

    /// Commits several changes of family `family`, in order (each part's upserts, then
    /// its deletes), as one transaction: what [`commit`](Self::commit) would do for each
    /// part, with one `fsync` for all.
    pub fn commit_parts(&self, family: u8, parts: &[Change<'_>]) -> Result<(), StoreError> {
        let err = self.io("committing sessions");
        let now = record_now();
        let txn = self.db.begin_write().map_err(|e| err(e.to_string()))?;
        {
            let mut t = txn.open_table(SESSIONS).map_err(|e| err(e.to_string()))?;
            for &(upserts, deletes) in parts {
                for &(slot, mut r) in upserts {
                    if r.created == 0 {
                        let stored = t.get((family, slot)).map_err(|e| err(e.to_string()))?;
                        r.created =
                            stored.and_then(|v| SessionRecord::decode(v.value())).map_or(now, |old| old.created);
                    }
                    t.insert((family, slot), r.encode().as_slice()).map_err(|e| err(e.to_string()))?;
                }
                for slot in deletes {
                    t.remove((family, *slot)).map_err(|e| err(e.to_string()))?;
                }
            }
            let mut meta = txn.open_table(META).map_err(|e| err(e.to_string()))?;
            meta.insert("last_commit", unix_now().to_le_bytes().as_slice()).map_err(|e| err(e.to_string()))?;
        }
        txn.commit().map_err(|e| err(e.to_string()))
    }

    /// Whether the store's disk can take new work: it is not mounted read-only and has
    /// at least `reserve` bytes free for unprivileged writers. A statvfs call (about a
    /// microsecond); on platforms without one, always room.
    pub fn room(&self, reserve: u64) -> Result<(), StoreError> {
        #[cfg(unix)]
        {
            use rustix::fs::{StatVfsMountFlags, statvfs};
            let fs = statvfs(&self.path).map_err(|e| self.io("checking its disk")(e.to_string()))?;
            let no_room = |detail: String| StoreError::NoRoom { path: self.path.clone(), detail };
            if fs.f_flag.contains(StatVfsMountFlags::RDONLY) {
                return Err(no_room("its file system is mounted read-only".into()));
            }
            let free = fs.f_bavail.saturating_mul(fs.f_frsize);
            if free < reserve {
                return Err(no_room(format!("its disk has {free} bytes free, under the reserve of {reserve}")));
            }
        }
        #[cfg(not(unix))]
        let _ = reserve;
        Ok(())
    }

    /// Removes sessions that have not stepped since `before` (unix seconds); returns how
    /// many (group sessions).
    pub fn expire(&self, before: u64) -> Result<u64, StoreError> {
        let err = self.io("expiring sessions");
        let txn = self.db.begin_write().map_err(|e| err(e.to_string()))?;
        let mut gone = 0;
        {
            let mut t = txn.open_table(SESSIONS).map_err(|e| err(e.to_string()))?;
            t.retain(|_, v| {
                let keep = SessionRecord::decode(v).is_none_or(|r| u64::from(r.last_used) >= before);
                gone += u64::from(!keep);
                keep
            })
            .map_err(|e| err(e.to_string()))?;
        }
        txn.commit().map_err(|e| err(e.to_string()))?;
        Ok(gone)
    }

    /// What the store holds.
    pub fn stats(&self) -> Result<StoreStats, StoreError> {
        let err = self.io("reading its statistics");
        let txn = self.db.begin_read().map_err(|e| err(e.to_string()))?;
        let meta = txn.open_table(META).map_err(|e| err(e.to_string()))?;
        let get = |k: &str| meta.get(k).ok().flatten().map(|g| g.value().to_vec()).unwrap_or_default();
        let word = |b: Vec<u8>| b.try_into().map_or(0, u64::from_le_bytes);
        let count = |n: Result<u64, redb::StorageError>| n.map_err(|e| err(e.to_string()));
        Ok(StoreStats {
            party: get("party").first().copied().unwrap_or(u8::MAX),
            host: String::from_utf8_lossy(&get("host")).into_owned(),
            sessions: count(txn.open_table(SESSIONS).map_err(|e| err(e.to_string()))?.len())?,
            machines: count(txn.open_table(MACHINES).map_err(|e| err(e.to_string()))?.len())?,
            bytes: std::fs::metadata(&self.path).map_or(0, |m| m.len()),
            created: word(get("created")),
            last_commit: word(get("last_commit")),
        })
    }
}

/// Reads a store's statistics without knowing whose it is (`pmsm store stats`): opens
/// it as the party its header names (repairing a store whose server was killed, as
/// that server's next start would). Refuses a store a running server holds open.
pub fn stats_of(path: &Path) -> Result<StoreStats, StoreError> {
    let open_err = |detail: String| StoreError::Open { path: path.to_path_buf(), detail };
    if !path.exists() {
        return Err(open_err("no such file".into()));
    }
    check_private(path).map_err(open_err)?;
    let db = Database::open(path).map_err(|e| open_err(describe_open(&e)))?;
    let party = (|| {
        let txn = db.begin_read().ok()?;
        let meta = txn.open_table(META).ok()?;
        let p = meta.get("party").ok()??.value().first().copied()?;
        Some(p)
    })()
    .ok_or_else(|| StoreError::Foreign {
        path: path.to_path_buf(),
        detail: "its header lacks \"party\" (not a pmsm session store)".into(),
    })?;
    drop(db);
    let party = if party == 0 { Party::P0 } else { Party::P1 };
    Store::open(path, party)?.stats()
}

/// Creates `path` (and missing folders, 700) as an empty owner-only (600) file.
fn create_private(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty() && !d.exists()) {
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    }
    std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path).map(drop)
}

/// Refuses a store file that others may read or write.
fn check_private(path: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).map_err(|e| format!("cannot read it: {e}"))?.permissions().mode();
    if mode & 0o077 != 0 {
        return Err(format!(
            "its mode is {:o}: others may read this server's shares; `chmod 600` it first",
            mode & 0o777
        ));
    }
    Ok(())
}

/// A redb open error in words.
fn describe_open(e: &redb::DatabaseError) -> String {
    match e {
        redb::DatabaseError::DatabaseAlreadyOpen => {
            "it is open in another process (a running server holds it; stop that server first)".into()
        }
        redb::DatabaseError::Storage(redb::StorageError::Corrupted(why)) => {
            format!("it is damaged or not a session store ({why})")
        }
        other => hint(&other.to_string()),
    }
}

/// Adds what to do to the causes an operator can act on.
fn hint(detail: &str) -> String {
    if detail.contains("No space left") {
        format!("{detail}: the disk is full; new pushes are refused, committed sessions are intact")
    } else if detail.contains("Read-only file system") || detail.contains("Permission denied") {
        format!("{detail}: the store cannot be written; new pushes are refused, committed sessions are intact")
    } else {
        detail.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("pmsm-store-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir.join("s0.redb")
    }

    fn record(steps: u64) -> SessionRecord {
        SessionRecord {
            machine: 0,
            group: 0,
            owner: 9,
            steps,
            state: steps * 3,
            prev_steps: steps.saturating_sub(2),
            prev: 1,
            created: 5,
            last_used: 6,
        }
    }

    #[test]
    fn an_update_keeps_the_sessions_opening_time() {
        let path = scratch("created");
        let s = Store::open(&path, Party::P0).unwrap();
        s.commit(0, &[(1, SessionRecord { created: 0, ..record(0) })], &[]).unwrap();
        let first = s.load(0).unwrap()[0].1.created;
        assert!(first >= 1_700_000_000);
        s.commit(0, &[(1, SessionRecord { created: 0, ..record(1) })], &[]).unwrap();
        assert_eq!(s.load(0).unwrap()[0].1, SessionRecord { created: first, ..record(1) });
    }

    #[test]
    fn commits_survive_reopening_and_machines_keep_their_numbers() {
        let path = scratch("reopen");
        let fp = |b: u8| Fingerprint([b; 32]);
        {
            let s = Store::open(&path, Party::P0).unwrap();
            assert_eq!(s.machine_ids(&[("a", fp(1)), ("b", fp(2))]).unwrap(), vec![0, 1]);
            s.commit(0, &[(7, record(3)), (8, record(4))], &[]).unwrap();
            s.commit(1, &[(7, record(1))], &[]).unwrap();
            s.commit(0, &[(9, record(5))], &[8]).unwrap();
        }
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let s = Store::open(&path, Party::P0).unwrap();
        assert_eq!(s.load(0).unwrap(), vec![(7, record(3)), (9, record(5))]);
        assert_eq!(s.load(1).unwrap(), vec![(7, record(1))]);
        // The same machine keeps its number; a changed table under the same name is new.
        assert_eq!(s.machine_ids(&[("b", fp(2)), ("a", fp(3))]).unwrap(), vec![1, 2]);
        let st = s.stats().unwrap();
        assert_eq!((st.party, st.sessions, st.machines), (0, 3, 3));
        assert!(st.last_commit >= st.created && st.bytes > 0);
        assert_eq!(s.expire(6).unwrap(), 0);
        assert_eq!(s.expire(7).unwrap(), 3);
        drop(s);
        assert_eq!(stats_of(&path).unwrap().sessions, 0);
    }

    #[test]
    fn a_store_runs_only_beside_the_store_it_first_ran_with() {
        let path = scratch("pair");
        let s = Store::open(&path, Party::P0).unwrap();
        s.pair_with([1; 16]).unwrap();
        s.pair_with([1; 16]).unwrap();
        drop(s);
        let s = Store::open(&path, Party::P0).unwrap();
        let e = s.pair_with([2; 16]).unwrap_err().to_string();
        assert!(e.contains("01010101") && e.contains("02020202") && e.contains("lost or replaced"), "{e}");
        assert_ne!(s.id(), [0; 16]);
    }

    #[test]
    fn foreign_damaged_and_open_stores_are_refused_by_name() {
        let path = scratch("foreign");
        let s = Store::open(&path, Party::P1).unwrap();
        // A running server holds it.
        let held = Store::open(&path, Party::P1).unwrap_err().to_string();
        assert!(held.contains("open in another process"), "{held}");
        drop(s);
        let other = Store::open(&path, Party::P0).unwrap_err().to_string();
        assert!(other.contains("belongs to server 1") && other.contains("s0.redb"), "{other}");
        // Open to others.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let open = Store::open(&path, Party::P1).unwrap_err().to_string();
        assert!(open.contains("mode is 644"), "{open}");
        // Not a store at all.
        let junk = path.with_file_name("junk.redb");
        std::fs::write(&junk, vec![7u8; 4096]).unwrap();
        std::fs::set_permissions(&junk, std::fs::Permissions::from_mode(0o600)).unwrap();
        let bad = Store::open(&junk, Party::P0).unwrap_err().to_string();
        assert!(bad.contains("junk.redb"), "{bad}");
        assert!(stats_of(&path.with_file_name("none.redb")).unwrap_err().to_string().contains("no such file"));
    }
}
