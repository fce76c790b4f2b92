//! The disk-backed `/tmp` of a sandbox: an ext4 filesystem (no journal) in
//! a sparse file on a loop device, sized per function. Its page cache is
//! ordinary, reclaimable file cache, so a function can write far more to
//! `/tmp` than its memory limit (a tmpfs `/tmp` is charged to memory and
//! gets a small function OOM-killed); writing past the size gives ENOSPC.
//!
//! Cold starts stay fast: `mkfs.ext4` runs once per size, into a template
//! image kept under the state directory; an instance's image is a sparse
//! copy of the template (only the few hundred KB of metadata are data). The
//! loop device is attached with `LO_FLAGS_AUTOCLEAR` (it detaches itself
//! once the last mount and descriptor are gone, i.e. when the sandbox's
//! mount namespace dies) and direct I/O (no second copy of the data in the
//! page cache), and the image file is unlinked right after attaching: a
//! sandbox leaves nothing on disk. The root directory is handed to the
//! runtime's uid after mounting.

use std::fs::{File, OpenOptions};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use nix::unistd::Whence;

/// Sub-directory of the state directory holding the template images.
pub const TEMPLATE_DIR: &str = ".tmp-templates";

/// `ioctl`s and flags of the loop driver (linux/loop.h).
const LOOP_CTL_GET_FREE: libc::c_ulong = 0x4C82;
const LOOP_CONFIGURE: libc::c_ulong = 0x4C0A;
const LO_FLAGS_AUTOCLEAR: u32 = 4;
const LO_FLAGS_DIRECT_IO: u32 = 16;

/// `struct loop_info64`.
#[repr(C)]
struct LoopInfo64 {
    lo_device: u64,
    lo_inode: u64,
    lo_rdevice: u64,
    lo_offset: u64,
    lo_sizelimit: u64,
    lo_number: u32,
    lo_encrypt_type: u32,
    lo_encrypt_key_size: u32,
    lo_flags: u32,
    lo_file_name: [u8; 64],
    lo_crypt_name: [u8; 64],
    lo_encrypt_key: [u8; 32],
    lo_init: [u64; 2],
}

/// `struct loop_config`.
#[repr(C)]
struct LoopConfig {
    fd: u32,
    block_size: u32,
    info: LoopInfo64,
    reserved: [u64; 8],
}

/// A step of preparing a `/tmp` disk failed.
#[derive(Debug, thiserror::Error)]
#[error("/tmp disk: {step} {}: {source}", path.display())]
pub struct TmpDiskError {
    /// What was being done.
    pub step: &'static str,
    /// The file or device.
    pub path: PathBuf,
    /// The OS error.
    #[source]
    pub source: std::io::Error,
}

fn failed(step: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> TmpDiskError {
    let path = path.to_path_buf();
    move |source| TmpDiskError { step, path, source }
}

/// The image size that gives a function at least `size_mb` MB of free
/// space: ext4's metadata takes 3–8 % (48 MB → 44 MB free, 512 → 493), so
/// the image is 4 % + 4 MB larger than asked.
fn image_bytes(size_mb: u32) -> u64 {
    let mb = u64::from(size_mb);
    (mb + mb / 25 + 4) * 1024 * 1024
}

/// Serialises template creation (one `mkfs` per size, ever).
static TEMPLATES: Mutex<()> = Mutex::new(());

/// The template image of a `size_mb` filesystem under `state_dir`, made
/// now if missing.
pub fn template(state_dir: &Path, size_mb: u32) -> Result<PathBuf, TmpDiskError> {
    let dir = state_dir.join(TEMPLATE_DIR);
    let image = dir.join(format!("ext4-{size_mb}m-v3.img"));
    let _one_at_a_time = TEMPLATES.lock().unwrap_or_else(|p| p.into_inner());
    if image.exists() {
        return Ok(image);
    }
    std::fs::create_dir_all(&dir).map_err(failed("creating", &dir))?;
    let partial = dir.join(format!("ext4-{size_mb}m-v3.partial"));
    let made = make_ext4(&partial, image_bytes(size_mb))
        // A function's /tmp starts empty, as on Lambda: no lost+found.
        .and_then(|()| run_tool("debugfs", &["-w", "-R", "rmdir lost+found"], &partial));
    if let Err(e) = made {
        let _ = std::fs::remove_file(&partial);
        return Err(e);
    }
    std::fs::rename(&partial, &image).map_err(failed("renaming", &partial))?;
    Ok(image)
}

/// Makes a sparse `bytes`-long file at `image` holding an empty ext4
/// filesystem (no journal, no reserved blocks).
fn make_ext4(image: &Path, bytes: u64) -> Result<(), TmpDiskError> {
    File::create(image)
        .and_then(|f| f.set_len(bytes))
        .map_err(failed("creating", image))?;
    run_tool(
        "mkfs.ext4",
        &[
            "-q",
            "-F",
            "-O",
            "^has_journal",
            "-E",
            "nodiscard",
            "-m",
            "0",
        ],
        image,
    )
}

/// Runs an e2fsprogs `tool` with `args` on `image`.
fn run_tool(tool: &'static str, args: &[&str], image: &Path) -> Result<(), TmpDiskError> {
    let output = std::process::Command::new(tool)
        .args(args)
        .arg(image)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(failed(tool, image))?;
    if output.status.success() {
        return Ok(());
    }
    Err(failed(tool, image)(std::io::Error::other(format!(
        "{}: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr).trim()
    ))))
}

/// Copies `from` to `to` keeping holes (only the data extents are copied).
fn sparse_copy(from: &Path, to: &Path) -> Result<(), TmpDiskError> {
    let source = File::open(from).map_err(failed("opening", from))?;
    let length = source.metadata().map_err(failed("inspecting", from))?.len();
    let target = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(to)
        .map_err(failed("creating", to))?;
    target.set_len(length).map_err(failed("sizing", to))?;
    let mut offset: i64 = 0;
    let mut buffer = vec![0u8; 1 << 20];
    while (offset as u64) < length {
        let data = match nix::unistd::lseek(&source, offset, Whence::SeekData) {
            Ok(data) => data,
            Err(nix::errno::Errno::ENXIO) => break,
            Err(e) => return Err(failed("seeking data in", from)(e.into())),
        };
        let hole = nix::unistd::lseek(&source, data, Whence::SeekHole)
            .map_err(|e| failed("seeking a hole in", from)(e.into()))?;
        let mut at = data as u64;
        while at < hole as u64 {
            let want = buffer.len().min((hole as u64 - at) as usize);
            let read = source
                .read_at(&mut buffer[..want], at)
                .map_err(failed("reading", from))?;
            if read == 0 {
                break;
            }
            target
                .write_all_at(&buffer[..read], at)
                .map_err(failed("writing", to))?;
            at += read as u64;
        }
        offset = hole;
    }
    Ok(())
}

/// An instance's `/tmp` filesystem on an attached loop device.
#[derive(Debug)]
pub struct TmpDisk {
    /// The loop device, e.g. `/dev/loop3`.
    pub device: PathBuf,
    /// Keeps the device attached until the sandbox has mounted it.
    _open: File,
}

impl TmpDisk {
    /// Prepares a `size_mb` filesystem for instance `id`: copies the
    /// template, attaches it, unlinks the image.
    pub fn create(state_dir: &Path, id: &str, size_mb: u32) -> Result<TmpDisk, TmpDiskError> {
        let template = template(state_dir, size_mb)?;
        let image = state_dir.join(format!("{id}.tmp.img"));
        Self::made_attached_unlinked(&image, |image| sparse_copy(&template, image))
    }

    /// A new, empty `size_mb` filesystem made at `image` (sparse: it takes
    /// disk space only as it fills), attached, and unlinked at once: it
    /// disappears with its last mount.
    pub fn fresh(image: &Path, size_mb: u32) -> Result<TmpDisk, TmpDiskError> {
        Self::made_attached_unlinked(image, |image| make_ext4(image, u64::from(size_mb) << 20))
    }

    /// Writes `image` with `make`, attaches it to a loop device and unlinks
    /// it (whatever happened).
    fn made_attached_unlinked(
        image: &Path,
        make: impl FnOnce(&Path) -> Result<(), TmpDiskError>,
    ) -> Result<TmpDisk, TmpDiskError> {
        let _ = std::fs::remove_file(image);
        let made = make(image).and_then(|()| {
            let backing = OpenOptions::new()
                .read(true)
                .write(true)
                .open(image)
                .map_err(failed("opening", image))?;
            attach(&backing)
        });
        let _ = std::fs::remove_file(image);
        let (device, open) = made?;
        Ok(TmpDisk {
            device,
            _open: open,
        })
    }

    /// Mounts the filesystem as a detached mount (nosuid, nodev) whose root
    /// belongs to `uid`/`gid`, for a sandbox to move onto its `/tmp`.
    pub fn detached_mount(&self, uid: u32, gid: u32) -> Result<OwnedFd, TmpDiskError> {
        let device = &self.device;
        let fs = fsopen("ext4").map_err(failed("fsopen ext4 for", device))?;
        let source = std::ffi::CString::new(device.as_os_str().as_encoded_bytes())
            .map_err(|_| failed("naming", device)(std::io::Error::other("NUL byte")))?;
        fsconfig(&fs, FSCONFIG_SET_STRING, Some(c"source"), Some(&source))
            .and_then(|()| fsconfig(&fs, FSCONFIG_CMD_CREATE, None, None))
            .map_err(failed("creating the filesystem context of", device))?;
        // SAFETY: fsmount takes the context descriptor and plain flags and
        // returns a new descriptor (or -1).
        let mount = unsafe {
            libc::syscall(
                libc::SYS_fsmount,
                fs.as_raw_fd(),
                0,
                libc::MOUNT_ATTR_NOSUID | libc::MOUNT_ATTR_NODEV,
            )
        };
        if mount < 0 {
            return Err(failed("fsmount", device)(std::io::Error::last_os_error()));
        }
        // SAFETY: the kernel just returned this descriptor; we own it now.
        let mount = unsafe { OwnedFd::from_raw_fd(mount as i32) };
        // A detached mount's descriptor is a path descriptor: fchown(2)
        // refuses it (EBADF); fchownat with AT_EMPTY_PATH acts on it.
        nix::unistd::fchownat(
            &mount,
            "",
            Some(nix::unistd::Uid::from_raw(uid)),
            Some(nix::unistd::Gid::from_raw(gid)),
            nix::fcntl::AtFlags::AT_EMPTY_PATH,
        )
        .map_err(|e| failed("chown of the root of", device)(e.into()))?;
        Ok(mount)
    }
}

const FSCONFIG_SET_STRING: libc::c_uint = 1;
const FSCONFIG_CMD_CREATE: libc::c_uint = 6;

fn fsopen(fstype: &str) -> std::io::Result<OwnedFd> {
    let name = std::ffi::CString::new(fstype).map_err(std::io::Error::other)?;
    // SAFETY: fsopen reads the NUL-terminated name and returns a new
    // descriptor (or -1).
    let fd = unsafe { libc::syscall(libc::SYS_fsopen, name.as_ptr(), libc::FSOPEN_CLOEXEC) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this descriptor; we own it now.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

fn fsconfig(
    fs: &OwnedFd,
    command: libc::c_uint,
    key: Option<&std::ffi::CStr>,
    value: Option<&std::ffi::CStr>,
) -> std::io::Result<()> {
    let key = key.map_or(std::ptr::null(), |k| k.as_ptr());
    let value = value.map_or(std::ptr::null(), |v| v.as_ptr());
    // SAFETY: fsconfig reads the NUL-terminated key and value (or null
    // pointers, which these commands accept), both alive for the call.
    let rc = unsafe { libc::syscall(libc::SYS_fsconfig, fs.as_raw_fd(), command, key, value, 0) };
    if rc < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Attaches `backing` to a free loop device (auto-clearing, direct I/O).
fn attach(backing: &File) -> Result<(PathBuf, File), TmpDiskError> {
    let control_path = Path::new("/dev/loop-control");
    let control = File::open(control_path).map_err(failed("opening", control_path))?;
    for _ in 0..16 {
        // SAFETY: LOOP_CTL_GET_FREE takes no argument and returns a number.
        let number = unsafe { libc::ioctl(control.as_raw_fd(), LOOP_CTL_GET_FREE as _) };
        if number < 0 {
            return Err(failed("finding a free loop device via", control_path)(
                std::io::Error::last_os_error(),
            ));
        }
        let device = PathBuf::from(format!("/dev/loop{number}"));
        let open = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&device)
            .map_err(failed("opening", &device))?;
        let config = LoopConfig {
            fd: backing.as_raw_fd() as u32,
            block_size: 0,
            info: LoopInfo64 {
                lo_device: 0,
                lo_inode: 0,
                lo_rdevice: 0,
                lo_offset: 0,
                lo_sizelimit: 0,
                lo_number: 0,
                lo_encrypt_type: 0,
                lo_encrypt_key_size: 0,
                lo_flags: LO_FLAGS_AUTOCLEAR | LO_FLAGS_DIRECT_IO,
                lo_file_name: [0; 64],
                lo_crypt_name: [0; 64],
                lo_encrypt_key: [0; 32],
                lo_init: [0; 2],
            },
            reserved: [0; 8],
        };
        // SAFETY: LOOP_CONFIGURE reads a `struct loop_config`, which
        // `config` matches in layout and outlives the call.
        let rc = unsafe {
            libc::ioctl(
                open.as_raw_fd(),
                LOOP_CONFIGURE as _,
                &config as *const LoopConfig,
            )
        };
        if rc == 0 {
            return Ok((device, open));
        }
        let mut error = std::io::Error::last_os_error();
        if error.raw_os_error() == Some(libc::EINVAL) {
            // A backing filesystem without direct I/O: buffered then.
            let mut buffered = config;
            buffered.info.lo_flags = LO_FLAGS_AUTOCLEAR;
            // SAFETY: as above.
            let rc = unsafe {
                libc::ioctl(
                    open.as_raw_fd(),
                    LOOP_CONFIGURE as _,
                    &buffered as *const LoopConfig,
                )
            };
            if rc == 0 {
                return Ok((device, open));
            }
            error = std::io::Error::last_os_error();
        }
        // Taken by someone else between GET_FREE and CONFIGURE: next one.
        if error.raw_os_error() != Some(libc::EBUSY) {
            return Err(failed("attaching a loop device", &device)(error));
        }
    }
    Err(failed("attaching a loop device", control_path)(
        std::io::Error::other("every free loop device was taken meanwhile"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sparse_copy_keeps_data_and_holes() {
        let dir = tempfile::tempdir().unwrap();
        let from = dir.path().join("a");
        let file = File::create(&from).unwrap();
        file.set_len(64 << 20).unwrap();
        file.write_all_at(b"head", 0).unwrap();
        file.write_all_at(b"middle", 32 << 20).unwrap();
        drop(file);
        let to = dir.path().join("b");
        sparse_copy(&from, &to).unwrap();
        assert_eq!(std::fs::read(&from).unwrap(), std::fs::read(&to).unwrap());
        let blocks = std::os::unix::fs::MetadataExt::blocks(&std::fs::metadata(&to).unwrap());
        assert!(blocks * 512 < 1 << 20, "{blocks} blocks: holes were filled");
    }
}
