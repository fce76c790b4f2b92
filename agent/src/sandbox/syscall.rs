//! The sandbox core's seam to the kernel (after youki's `Syscall`): every
//! privileged step the root filesystem and capability set-up take goes
//! through [`Syscall`], so the decisions (which mounts, in which order, with
//! which flags; which capabilities are dropped) are unit-tested with
//! `Recorder` (tests only) without root, and [`Linux`] does the real calls.

use std::fs;
use std::os::unix::fs::{symlink, DirBuilderExt};
use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags};

use super::capabilities;

/// What a host path is, as far as building the root cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostEntry {
    /// Does not exist (or cannot be inspected).
    Missing,
    /// A directory (following symlinks unless asked not to).
    Dir,
    /// Anything else that exists (a file, a device node).
    File,
    /// A symbolic link to this target (only from [`Syscall::host_entry_no_follow`]).
    Symlink(PathBuf),
}

/// The kernel calls the sandbox core makes. All results are plain OS errors;
/// callers add the operation and path ([`super::init_error::InitError`]).
pub trait Syscall {
    /// `mount(2)`.
    fn mount(
        &self,
        source: Option<&Path>,
        target: &Path,
        fstype: Option<&str>,
        flags: MsFlags,
        data: Option<&str>,
    ) -> std::io::Result<()>;
    /// `umount2(target, MNT_DETACH)`.
    fn umount_detach(&self, target: &Path) -> std::io::Result<()>;
    /// `chdir(2)`.
    fn chdir(&self, path: &Path) -> std::io::Result<()>;
    /// `pivot_root(".", ".")` in the current directory.
    fn pivot_root_here(&self) -> std::io::Result<()>;
    /// `mkdir -p` with `mode` for created directories.
    fn mkdir(&self, path: &Path, mode: u32) -> std::io::Result<()>;
    /// Creates (or truncates) an empty file, e.g. a bind-mount target.
    fn create_file(&self, path: &Path) -> std::io::Result<()>;
    /// Writes `contents` to `path`.
    fn write_file(&self, path: &Path, contents: &str) -> std::io::Result<()>;
    /// Creates the symbolic link `link` pointing at `target`.
    fn symlink(&self, target: &Path, link: &Path) -> std::io::Result<()>;
    /// `chown(2)`.
    fn chown(&self, path: &Path, uid: u32, gid: u32) -> std::io::Result<()>;
    /// What `path` is on the host, following symlinks.
    fn host_entry(&self, path: &Path) -> HostEntry;
    /// What `path` is on the host, not following a final symlink.
    fn host_entry_no_follow(&self, path: &Path) -> HostEntry;
    /// `prctl(PR_CAPBSET_DROP, cap)`.
    fn drop_bounding_capability(&self, cap: u32) -> std::io::Result<()>;
    /// `prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL)`.
    fn clear_ambient_capabilities(&self) -> std::io::Result<()>;
    /// `prctl(PR_SET_SECUREBITS, bits)`.
    fn set_securebits(&self, bits: libc::c_int) -> std::io::Result<()>;
}

/// The real kernel.
#[derive(Debug, Default, Clone, Copy)]
pub struct Linux;

fn entry(meta: std::io::Result<fs::Metadata>, path: &Path) -> HostEntry {
    match meta {
        Ok(m) if m.file_type().is_symlink() => fs::read_link(path)
            .map(HostEntry::Symlink)
            .unwrap_or(HostEntry::Missing),
        Ok(m) if m.is_dir() => HostEntry::Dir,
        Ok(_) => HostEntry::File,
        Err(_) => HostEntry::Missing,
    }
}

impl Syscall for Linux {
    fn mount(
        &self,
        source: Option<&Path>,
        target: &Path,
        fstype: Option<&str>,
        flags: MsFlags,
        data: Option<&str>,
    ) -> std::io::Result<()> {
        Ok(nix::mount::mount(source, target, fstype, flags, data)?)
    }

    fn umount_detach(&self, target: &Path) -> std::io::Result<()> {
        Ok(nix::mount::umount2(target, MntFlags::MNT_DETACH)?)
    }

    fn chdir(&self, path: &Path) -> std::io::Result<()> {
        Ok(nix::unistd::chdir(path)?)
    }

    fn pivot_root_here(&self) -> std::io::Result<()> {
        Ok(nix::unistd::pivot_root(".", ".")?)
    }

    fn mkdir(&self, path: &Path, mode: u32) -> std::io::Result<()> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(mode)
            .create(path)
    }

    fn create_file(&self, path: &Path) -> std::io::Result<()> {
        fs::File::create(path).map(|_| ())
    }

    fn write_file(&self, path: &Path, contents: &str) -> std::io::Result<()> {
        fs::write(path, contents)
    }

    fn symlink(&self, target: &Path, link: &Path) -> std::io::Result<()> {
        symlink(target, link)
    }

    fn chown(&self, path: &Path, uid: u32, gid: u32) -> std::io::Result<()> {
        std::os::unix::fs::chown(path, Some(uid), Some(gid))
    }

    fn host_entry(&self, path: &Path) -> HostEntry {
        entry(fs::metadata(path), path)
    }

    fn host_entry_no_follow(&self, path: &Path) -> HostEntry {
        entry(fs::symlink_metadata(path), path)
    }

    fn drop_bounding_capability(&self, cap: u32) -> std::io::Result<()> {
        capabilities::drop_bounding(cap)
    }

    fn clear_ambient_capabilities(&self) -> std::io::Result<()> {
        capabilities::clear_ambient()
    }

    fn set_securebits(&self, bits: libc::c_int) -> std::io::Result<()> {
        capabilities::set_securebits(bits)
    }
}

/// One call seen by [`Recorder`].
#[cfg(test)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    Mount {
        source: Option<PathBuf>,
        target: PathBuf,
        fstype: Option<String>,
        flags: MsFlags,
        data: Option<String>,
    },
    UmountDetach(PathBuf),
    Chdir(PathBuf),
    PivotRoot,
    Mkdir(PathBuf, u32),
    CreateFile(PathBuf),
    WriteFile(PathBuf, String),
    Symlink(PathBuf, PathBuf),
    Chown(PathBuf, u32, u32),
    DropBounding(u32),
    ClearAmbient,
    SetSecurebits(libc::c_int),
}

/// Test double: records every call and succeeds; host paths are answered
/// from a fixed table (anything not in it is missing).
#[cfg(test)]
#[derive(Debug, Default)]
pub struct Recorder {
    pub calls: std::cell::RefCell<Vec<Call>>,
    pub host: std::collections::HashMap<PathBuf, HostEntry>,
}

#[cfg(test)]
impl Recorder {
    /// A recorder whose host has these entries.
    pub fn with_host(entries: &[(&str, HostEntry)]) -> Self {
        Self {
            calls: Default::default(),
            host: entries
                .iter()
                .map(|(p, e)| (PathBuf::from(p), e.clone()))
                .collect(),
        }
    }

    fn push(&self, call: Call) -> std::io::Result<()> {
        self.calls.borrow_mut().push(call);
        Ok(())
    }

    /// The mounts recorded so far, in order.
    pub fn mounts(&self) -> Vec<Call> {
        self.calls
            .borrow()
            .iter()
            .filter(|c| matches!(c, Call::Mount { .. }))
            .cloned()
            .collect()
    }
}

#[cfg(test)]
impl Syscall for Recorder {
    fn mount(
        &self,
        source: Option<&Path>,
        target: &Path,
        fstype: Option<&str>,
        flags: MsFlags,
        data: Option<&str>,
    ) -> std::io::Result<()> {
        self.push(Call::Mount {
            source: source.map(Path::to_path_buf),
            target: target.to_path_buf(),
            fstype: fstype.map(str::to_owned),
            flags,
            data: data.map(str::to_owned),
        })
    }
    fn umount_detach(&self, target: &Path) -> std::io::Result<()> {
        self.push(Call::UmountDetach(target.to_path_buf()))
    }
    fn chdir(&self, path: &Path) -> std::io::Result<()> {
        self.push(Call::Chdir(path.to_path_buf()))
    }
    fn pivot_root_here(&self) -> std::io::Result<()> {
        self.push(Call::PivotRoot)
    }
    fn mkdir(&self, path: &Path, mode: u32) -> std::io::Result<()> {
        self.push(Call::Mkdir(path.to_path_buf(), mode))
    }
    fn create_file(&self, path: &Path) -> std::io::Result<()> {
        self.push(Call::CreateFile(path.to_path_buf()))
    }
    fn write_file(&self, path: &Path, contents: &str) -> std::io::Result<()> {
        self.push(Call::WriteFile(path.to_path_buf(), contents.to_owned()))
    }
    fn symlink(&self, target: &Path, link: &Path) -> std::io::Result<()> {
        self.push(Call::Symlink(target.to_path_buf(), link.to_path_buf()))
    }
    fn chown(&self, path: &Path, uid: u32, gid: u32) -> std::io::Result<()> {
        self.push(Call::Chown(path.to_path_buf(), uid, gid))
    }
    fn host_entry(&self, path: &Path) -> HostEntry {
        match self.host.get(path) {
            Some(HostEntry::Symlink(_)) => HostEntry::Dir,
            Some(e) => e.clone(),
            None => HostEntry::Missing,
        }
    }
    fn host_entry_no_follow(&self, path: &Path) -> HostEntry {
        self.host.get(path).cloned().unwrap_or(HostEntry::Missing)
    }
    fn drop_bounding_capability(&self, cap: u32) -> std::io::Result<()> {
        self.push(Call::DropBounding(cap))
    }
    fn clear_ambient_capabilities(&self) -> std::io::Result<()> {
        self.push(Call::ClearAmbient)
    }
    fn set_securebits(&self, bits: libc::c_int) -> std::io::Result<()> {
        self.push(Call::SetSecurebits(bits))
    }
}
