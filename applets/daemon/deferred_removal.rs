//! Removal of the daemon's directories after it has exited.
//!
//! A daemon that served pump jobs for long holds many files: its pump store
//! (up to 100,000) and a tree of links to them per worker. Unlinking them
//! all took seconds, and after a long soak over twenty, between SIGTERM and
//! the daemon's exit (sweep X, D4): a restart waited for it, and a service
//! manager's stop timeout could kill the daemon first, leaving it all.
//!
//! So once the daemon stops ([`defer`]), a job directory or store that is
//! dropped is not removed but listed, still open with its shared `flock`.
//! When the daemon is done, [`finish`] hands the list to `rm -rf` in a
//! process of its own (a new session, so a terminal's signals miss it)
//! that inherits the locked descriptors: until it is done, another daemon
//! starting on the same TMPDIR takes none of them for orphans. If `rm`
//! cannot be started the directories are removed here, as before. If it is
//! killed half-way, the next daemon removes what is left
//! ([`super::jobdir::remove_orphans`]): the names carry a pid that no
//! longer runs, and the lock went with `rm`.

use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::sync::Mutex;

/// A directory waiting for removal, with its held descriptor.
type Waiting = (PathBuf, Option<std::fs::File>);

/// `Some` once the daemon stops.
static WAITING: Mutex<Option<Vec<Waiting>>> = Mutex::new(None);

fn waiting() -> std::sync::MutexGuard<'static, Option<Vec<Waiting>>> {
    WAITING.lock().unwrap_or_else(|e| e.into_inner())
}

/// From now on, directories dropped are listed for [`finish`].
pub fn defer() {
    waiting().get_or_insert_with(Vec::new);
}

/// Takes `dir` for later removal if removals are deferred; gives it back
/// otherwise.
pub fn take(dir: PathBuf, held: Option<std::fs::File>) -> Option<(PathBuf, Option<std::fs::File>)> {
    match waiting().as_mut() {
        Some(list) => {
            list.push((dir, held));
            None
        }
        None => Some((dir, held)),
    }
}

/// Removes the directories listed since [`defer`]: in the background by
/// `rm -rf`, or here if that cannot start.
pub fn finish() {
    let Some(list) = waiting().take() else {
        return;
    };
    if list.is_empty() {
        return;
    }
    let held: Vec<i32> = (list.iter())
        .filter_map(|(_, f)| f.as_ref().map(|f| f.as_raw_fd()))
        .collect();
    let mut rm = std::process::Command::new("rm");
    rm.arg("-rf")
        .arg("--")
        .args(list.iter().map(|(p, _)| p))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    // SAFETY: between fork and exec only setsid and fcntl run, both
    // async-signal-safe, on descriptors this process holds open.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut rm, move || {
            libc::setsid();
            for &fd in &held {
                let flags = libc::fcntl(fd, libc::F_GETFD);
                if flags >= 0 {
                    libc::fcntl(fd, libc::F_SETFD, flags & !libc::FD_CLOEXEC);
                }
            }
            Ok(())
        });
    }
    match rm.spawn() {
        Ok(child) => log::info!(
            "removing {} job director{} in the background (rm -rf, pid {})",
            list.len(),
            if list.len() == 1 { "y" } else { "ies" },
            child.id()
        ),
        Err(e) => {
            log::info!("cannot start rm ({e}): removing the job directories now");
            for (dir, _held) in &list {
                if let Err(e) = std::fs::remove_dir_all(dir) {
                    log::warn!("removing {}: {e}", dir.display());
                }
            }
        }
    }
}
