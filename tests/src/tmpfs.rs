//! A small tmpfs the test mounts (as root) and fills: a disk that runs out
//! of space under a storage node, without touching any other filesystem.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

/// A mounted tmpfs, unmounted when dropped (after the processes using it
/// are gone: drop it last).
pub struct Tmpfs {
    path: PathBuf,
    _dir: tempfile::TempDir,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` (`mount -o size=`, e.g. `64m`) on a new
    /// temporary directory.
    pub fn mount(size: &str) -> Result<Self> {
        let dir = tempfile::tempdir()?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output()
            .context("running mount")?;
        if !out.status.success() {
            bail!(
                "mounting a tmpfs on {} failed (this test needs root, as CI has): {}",
                dir.path().display(),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(Self {
            path: dir.path().to_path_buf(),
            _dir: dir,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes `name` until the filesystem is full; returns the bytes
    /// written.
    pub fn fill(&self, name: &str) -> Result<u64> {
        let mut f = std::fs::File::create(self.path.join(name))?;
        let block = vec![0xa5u8; 1 << 20];
        let mut written = 0u64;
        loop {
            match f.write(&block) {
                Ok(0) => break,
                Ok(n) => written += n as u64,
                Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => break,
                Err(e) => return Err(e.into()),
            }
        }
        Ok(written)
    }

    /// Bytes available on the filesystem (as the storage node's free-space
    /// guard reads them).
    pub fn available(&self) -> Result<u64> {
        Ok(storage_node::writer::disk_space::available_bytes(
            &self.path,
        )?)
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // Lazily: a process still holding a file there does not keep the
        // mount (or the test) alive.
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}
