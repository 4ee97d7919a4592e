//! The fleet lease: while a process creates a fleet's nodes (`deploy`, `deploy --resume`) it
//! holds an exclusive OS lock on `$CAPSULE_HOME/leases/<group>.lock`, so a second process cannot
//! create the same fleet's nodes at the same time.
//!
//! The lock is the operating system's (`flock`), so a process killed with `kill -9` releases it
//! at once. The file records the holder's pid, and the holder touches its modification time
//! about every [`HEARTBEAT`] while it works: the next holder learns when the previous one was
//! last alive, and so how recently a create of its may still have been in flight.
//!
//! This is local to one machine; on a shared PostgreSQL store, `deploy` also takes the fleet's
//! team-wide advisory lock (`Store::lock_group`).

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// How often a holder touches its lease file.
pub const HEARTBEAT: Duration = Duration::from_secs(1);

/// A held lease; dropping it releases the lock.
#[derive(Debug)]
pub struct Lease {
    file: File,
    path: PathBuf,
    /// The previous holder's last heartbeat, when the file existed before.
    pub previous_beat: Option<SystemTime>,
}

/// What [`acquire`] found.
#[derive(Debug)]
pub enum Acquired {
    Held(Lease),
    /// Another live process holds it (its pid, when readable).
    Busy {
        pid: Option<u32>,
    },
}

/// The lease file of a fleet.
pub fn path(home: &Path, group: &str) -> PathBuf {
    // Group ids are capsule's own hex ids; anything else is reduced to a safe file name.
    let safe: String = group
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    home.join("leases").join(format!("{safe}.lock"))
}

/// Try to take the lease of a fleet without waiting.
pub fn acquire(home: &Path, group: &str) -> anyhow::Result<Acquired> {
    let path = path(home, group);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| {
            anyhow::anyhow!("cannot create the lease directory {}: {e}", dir.display())
        })?;
    }
    let existed = path.exists();
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| anyhow::anyhow!("cannot open the fleet lease {}: {e}", path.display()))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            let mut text = String::new();
            let _ = file.read_to_string(&mut text);
            return Ok(Acquired::Busy {
                pid: text.trim().parse().ok(),
            });
        }
        Err(TryLockError::Error(e)) => {
            return Err(anyhow::anyhow!(
                "cannot lock the fleet lease {}: {e}",
                path.display()
            ))
        }
    }
    let previous_beat = if existed {
        file.metadata().and_then(|m| m.modified()).ok()
    } else {
        None
    };
    file.set_len(0)?;
    file.seek(SeekFrom::Start(0))?;
    write!(file, "{}", std::process::id())?;
    file.flush()?;
    Ok(Acquired::Held(Lease {
        file,
        path,
        previous_beat,
    }))
}

impl Lease {
    /// Record that the holder is alive now.
    pub fn beat(&self) {
        let _ = self.file.set_modified(SystemTime::now());
    }

    /// A handle for a heartbeat task (shares the lock; the lock ends when every handle is gone
    /// or the process ends).
    pub fn handle(&self) -> std::io::Result<File> {
        self.file.try_clone()
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// How long to wait before creates the previous holder may have had in flight have
    /// certainly reached the provider: until `grace` after its last heartbeat (plus one beat).
    pub fn settle_wait(&self, grace: Duration, now: SystemTime) -> Duration {
        let Some(beat) = self.previous_beat else {
            return Duration::ZERO;
        };
        let until = beat + HEARTBEAT + grace;
        until.duration_since(now).unwrap_or(Duration::ZERO)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_holder_at_a_time_and_released_on_drop() {
        let home = tempfile::tempdir().unwrap();
        let Acquired::Held(a) = acquire(home.path(), "g1").unwrap() else {
            panic!("first acquire must hold");
        };
        assert!(a.previous_beat.is_none());
        match acquire(home.path(), "g1").unwrap() {
            Acquired::Busy { pid } => assert_eq!(pid, Some(std::process::id())),
            Acquired::Held(_) => panic!("a second holder"),
        }
        // Another fleet is independent.
        assert!(matches!(
            acquire(home.path(), "g2").unwrap(),
            Acquired::Held(_)
        ));
        drop(a);
        let Acquired::Held(b) = acquire(home.path(), "g1").unwrap() else {
            panic!("released on drop");
        };
        let beat = b.previous_beat.expect("the previous holder's heartbeat");
        let grace = Duration::from_secs(10);
        assert!(b.settle_wait(grace, beat) > grace);
        assert_eq!(
            b.settle_wait(grace, beat + Duration::from_secs(60)),
            Duration::ZERO
        );
    }

    #[test]
    fn odd_group_ids_stay_inside_the_lease_directory() {
        let p = path(Path::new("/h"), "../../etc/x");
        assert_eq!(p, Path::new("/h/leases/______etc_x.lock"));
    }
}
