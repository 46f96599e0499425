//! The private directory of one job: `mkdtemp("$TMPDIR/distccd_XXXXXX")`,
//! mode 0700, removed with everything in it when the job ends, whatever
//! happens (unless `DISTCC_SAVE_TEMPS=1`).
//!
//! Layout: `in.<ext>` (v1/v2 source), `out.o`, `deps.d`, `stdout`,
//! `stderr`, and for protocol 3 the client's tree under `root/`. Only
//! `root/` is shaped by the client, so nothing it sends can pre-empt the
//! paths the compiler writes.

use distcc::{Error, Result};
use std::ffi::CString;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};

/// A job directory, removed on drop.
pub struct JobDir {
    path: PathBuf,
    keep: bool,
}

impl JobDir {
    /// Creates a fresh directory below `tmpdir`.
    pub fn create(tmpdir: &Path, keep: bool) -> Result<JobDir> {
        let template = tmpdir.join("distccd_XXXXXX");
        let mut bytes = template.into_os_string().into_vec();
        bytes.push(0);
        let mut buf = bytes;
        // SAFETY: mkdtemp rewrites the X's of a NUL-terminated buffer we own.
        let p = unsafe { libc::mkdtemp(buf.as_mut_ptr().cast()) };
        if p.is_null() {
            return Err(Error::io(
                format!("creating a job directory in {}", tmpdir.display()),
                std::io::Error::last_os_error(),
            ));
        }
        buf.pop();
        let path = PathBuf::from(std::ffi::OsString::from_vec(buf));
        Ok(JobDir { path, keep })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A path inside the directory.
    pub fn join(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }
}

impl Drop for JobDir {
    fn drop(&mut self) {
        if self.keep {
            return;
        }
        // remove_dir_all does not follow symlinks, so links a pump client
        // planted under root/ are removed, never their targets.
        if let Err(e) = std::fs::remove_dir_all(&self.path) {
            log::warn!("removing {}: {e}", self.path.display());
        }
    }
}

/// A C string for a path component (no NUL possible: the decoder refuses them).
pub fn cstr(bytes: &[u8]) -> Result<CString> {
    CString::new(bytes).map_err(|_| {
        Error::new(
            distcc::Kind::Protocol,
            "path contains a NUL byte".to_string(),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_private_and_removed() {
        let base = std::env::temp_dir();
        let path = {
            let d = JobDir::create(&base, false).unwrap();
            std::fs::write(d.join("x"), b"1").unwrap();
            assert!(
                d.path()
                    .file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with("distccd_")
            );
            d.path().to_path_buf()
        };
        assert!(!path.exists());
    }
}
