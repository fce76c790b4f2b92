//! The agent's file store: a filesystem of its own, mounted at
//! `<data_dir>/files` for the agent's lifetime, holding everything a
//! sandbox is shown from the agent's side — the package cache
//! (`packages/<digest>`, bound at `/var/task`), the python3 runtime client
//! (`runtime/`, bound at `/var/runtime`) and the outbound mode's
//! `resolv.conf` (`network/`).
//!
//! Why: the root field (4th) of a bind mount's line in
//! `/proc/self/mountinfo` is the bound directory's path *within its
//! filesystem*. A package bound straight from the host's root filesystem
//! shows the agent's data directory to every function
//! (`/var/lib/kumo-agent/packages/<digest>`); bound from this store it
//! shows `/packages/<digest>` — the function's own code digest, nothing of
//! the host. The source field shows the store's device (`/dev/loopN`, or
//! `tmpfs`). The rule: a sandbox's mounts show only standard system paths
//! (`/usr`, `/lib*`, `/etc/…`, `/dev/…`, bound read-only from the host) and
//! paths inside Kumo's own filesystems (this store, the root and `/dev`
//! tmpfs, the `/tmp` disk), never an agent or host-specific directory.
//!
//! The store is an ext4 filesystem (no journal) in a sparse image on a loop
//! device, made fresh at each agent start (`mkfs` of a sparse image takes
//! ~20 ms) and unlinked at once: the image takes disk space only as
//! packages fill it, and it vanishes with the last mount — at agent stop, or
//! when the next agent unmounts a killed predecessor's store. The package
//! cache therefore starts empty at each agent start (packages are fetched
//! again on first use). Cold starts pay nothing: binds from the store cost
//! what binds from the data directory cost. Without loop devices (some
//! containers) the store is a tmpfs of the same size (packages then live
//! in memory), with a warning.

use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags};

use super::tmp_disk::TmpDisk;

/// Name of the store's mount point under the data directory.
pub const MOUNT_POINT: &str = "files";

/// Sub-directories of the store.
pub const PACKAGES: &str = "packages";
/// See [`PACKAGES`].
pub const RUNTIME: &str = "runtime";
/// See [`PACKAGES`].
pub const NETWORK: &str = "network";

/// Directories earlier agents kept straight in the data directory (cleared
/// at start: they would otherwise linger unused).
const LEGACY_DIRS: &[&str] = &["packages", "runtime", "network"];

/// The store could not be mounted.
#[derive(Debug, thiserror::Error)]
#[error("file store {}: {step}: {message}", path.display())]
pub struct FileStoreError {
    /// What was being done.
    pub step: &'static str,
    /// The mount point or image.
    pub path: PathBuf,
    /// What went wrong.
    pub message: String,
}

/// What backs a mounted store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backing {
    /// An ext4 filesystem on a loop device.
    Disk,
    /// A tmpfs (no loop device available).
    Memory,
}

/// The mounted store (unmounted by [`FileStore::unmount`]).
#[derive(Debug)]
pub struct FileStore {
    mount_point: PathBuf,
    backing: Backing,
}

impl FileStore {
    /// Mounts a fresh `size_mb` store at `<data_dir>/files` (unmounting a
    /// predecessor's first) and creates its sub-directories. Blocking.
    pub fn mount(data_dir: &Path, size_mb: u32) -> Result<FileStore, FileStoreError> {
        let mount_point = data_dir.join(MOUNT_POINT);
        for legacy in LEGACY_DIRS {
            let _ = std::fs::remove_dir_all(data_dir.join(legacy));
        }
        // A killed agent's store is still mounted: detach it (its loop
        // device clears itself once the last user is gone).
        while is_mount_point(&mount_point) {
            nix::mount::umount2(&mount_point, MntFlags::MNT_DETACH)
                .map_err(|e| failed("unmounting the previous store", &mount_point, e))?;
        }
        std::fs::create_dir_all(&mount_point).map_err(|e| failed("creating", &mount_point, e))?;
        let image = data_dir.join(format!("{MOUNT_POINT}.img"));
        let backing = match TmpDisk::fresh(&image, size_mb) {
            Ok(disk) => {
                nix::mount::mount(
                    Some(disk.device.as_path()),
                    &mount_point,
                    Some("ext4"),
                    MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
                    // No background zeroing of inode tables nobody reads.
                    Some("noinit_itable"),
                )
                .map_err(|e| {
                    failed(
                        "mounting",
                        &mount_point,
                        format!("{}: {e}", disk.device.display()),
                    )
                })?;
                Backing::Disk
            }
            Err(err) => {
                tracing::warn!(%err, "no loop device for the file store; keeping packages in a tmpfs (memory)");
                nix::mount::mount(
                    Some("tmpfs"),
                    &mount_point,
                    Some("tmpfs"),
                    MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
                    Some(format!("size={size_mb}m,mode=0755").as_str()),
                )
                .map_err(|e| failed("mounting a tmpfs on", &mount_point, e))?;
                Backing::Memory
            }
        };
        let store = FileStore {
            mount_point,
            backing,
        };
        for dir in [PACKAGES, RUNTIME, NETWORK] {
            let path = store.mount_point.join(dir);
            if let Err(e) = std::fs::create_dir_all(&path) {
                store.unmount();
                return Err(failed("creating", &path, e));
            }
        }
        Ok(store)
    }

    /// Where the store is mounted.
    pub fn mount_point(&self) -> &Path {
        &self.mount_point
    }

    /// What backs it.
    pub fn backing(&self) -> Backing {
        self.backing
    }

    /// Detaches the store (the filesystem goes once no sandbox uses it).
    pub fn unmount(&self) {
        if let Err(err) = nix::mount::umount2(&self.mount_point, MntFlags::MNT_DETACH) {
            tracing::warn!(%err, path = %self.mount_point.display(), "unmounting the file store");
        }
    }
}

fn failed(step: &'static str, path: &Path, message: impl std::fmt::Display) -> FileStoreError {
    FileStoreError {
        step,
        path: path.to_path_buf(),
        message: message.to_string(),
    }
}

/// Whether `path` is a mount point in this mount namespace.
fn is_mount_point(path: &Path) -> bool {
    super::sweep::mounts_under(path)
        .iter()
        .any(|mount| mount == path)
}
