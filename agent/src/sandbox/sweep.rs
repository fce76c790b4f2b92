//! What a killed agent (SIGKILL: no clean-up of any kind) leaves behind,
//! removed by its successor at start, before it takes work: instance
//! cgroups under the agent's cgroup parent (their processes thawed and
//! killed), mounts under the state directory, loop devices backed by files
//! there, and the scratch directories and image files themselves. Template
//! images stay (they are reused).

use std::path::{Path, PathBuf};

use super::cgroup::InstanceCgroup;
use super::tmp_disk::TEMPLATE_DIR;

/// `ioctl` detaching a loop device (linux/loop.h).
const LOOP_CLR_FD: libc::c_ulong = 0x4C01;

/// What the sweep found and removed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Swept {
    /// Instance cgroups removed.
    pub cgroups: usize,
    /// Mounts under the state directory detached.
    pub mounts: usize,
    /// Loop devices detached.
    pub loop_devices: usize,
    /// Scratch directories and files removed.
    pub scratch: usize,
    /// What could not be removed (each naming the step and path).
    pub failures: Vec<String>,
}

/// Removes everything a previous agent with these settings left behind.
pub fn sweep(cgroup_parent: &str, state_dir: &Path) -> Swept {
    let mut swept = Swept::default();
    for id in InstanceCgroup::children(cgroup_parent) {
        match InstanceCgroup::load(cgroup_parent, &id).remove() {
            Ok(()) => swept.cgroups += 1,
            Err(e) => swept.failures.push(e.to_string()),
        }
    }
    // Deepest first.
    let mut mounts = mounts_under(state_dir);
    mounts.sort_by_key(|m| std::cmp::Reverse(m.as_os_str().len()));
    for mount in mounts {
        match nix::mount::umount2(&mount, nix::mount::MntFlags::MNT_DETACH) {
            Ok(()) => swept.mounts += 1,
            Err(e) => swept
                .failures
                .push(format!("unmounting {}: {e}", mount.display())),
        }
    }
    for device in loop_devices_backed_under(state_dir) {
        match detach_loop(&device) {
            Ok(()) => swept.loop_devices += 1,
            Err(e) => swept
                .failures
                .push(format!("detaching {}: {e}", device.display())),
        }
    }
    let entries = std::fs::read_dir(state_dir).into_iter().flatten().flatten();
    for entry in entries {
        let path = entry.path();
        let removed = if entry.file_name() == TEMPLATE_DIR {
            remove_partial_templates(&path, &mut swept.failures);
            continue;
        } else if entry.file_type().is_ok_and(|t| t.is_dir()) {
            std::fs::remove_dir(&path)
        } else {
            std::fs::remove_file(&path)
        };
        match removed {
            Ok(()) => swept.scratch += 1,
            Err(e) => swept
                .failures
                .push(format!("removing {}: {e}", path.display())),
        }
    }
    swept
}

/// Half-written templates (an agent killed during `mkfs`).
fn remove_partial_templates(dir: &Path, failures: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "partial") {
            if let Err(e) = std::fs::remove_file(&path) {
                failures.push(format!("removing {}: {e}", path.display()));
            }
        }
    }
}

/// Mount points at or below `dir` in this mount namespace.
pub fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    text.lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(unescape_mount_path)
        .filter(|mount| mount.starts_with(dir))
        .collect()
}

/// Undoes mountinfo's octal escapes (`\040` for a space, ...).
fn unescape_mount_path(field: &str) -> PathBuf {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 4 <= bytes.len() {
            let digits = std::str::from_utf8(&bytes[i + 1..i + 4]).ok();
            if let Some(value) = digits.and_then(|d| u8::from_str_radix(d, 8).ok()) {
                out.push(value);
                i += 4;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    PathBuf::from(std::ffi::OsString::from(
        <std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(&out),
    ))
}

/// Loop devices whose backing file is (or was, before being unlinked)
/// under `dir`.
pub fn loop_devices_backed_under(dir: &Path) -> Vec<PathBuf> {
    let prefix = dir.to_string_lossy().into_owned();
    std::fs::read_dir("/sys/block")
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("loop"))
        .filter(|e| {
            std::fs::read_to_string(e.path().join("loop/backing_file"))
                .is_ok_and(|file| file.starts_with(&format!("{prefix}/")))
        })
        .map(|e| Path::new("/dev").join(e.file_name()))
        .collect()
}

fn detach_loop(device: &Path) -> std::io::Result<()> {
    let file = std::fs::File::open(device)?;
    // SAFETY: LOOP_CLR_FD takes no argument.
    let rc = unsafe { libc::ioctl(std::os::fd::AsRawFd::as_raw_fd(&file), LOOP_CLR_FD as _) };
    if rc < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_escapes_are_undone() {
        assert_eq!(
            unescape_mount_path(r"/var/lib/a\040b/x"),
            PathBuf::from("/var/lib/a b/x")
        );
        assert_eq!(unescape_mount_path("/plain"), PathBuf::from("/plain"));
    }

    #[test]
    fn scratch_entries_go_and_templates_stay() {
        let state = tempfile::tempdir().unwrap();
        std::fs::create_dir(state.path().join("abc-f")).unwrap();
        std::fs::write(state.path().join("abc-f.tmp.img"), b"").unwrap();
        let templates = state.path().join(TEMPLATE_DIR);
        std::fs::create_dir(&templates).unwrap();
        std::fs::write(templates.join("ext4-512m.img"), b"").unwrap();
        std::fs::write(templates.join("ext4-600m.partial"), b"").unwrap();
        let swept = sweep("kumo-sweep-unit-test-no-such-parent", state.path());
        assert_eq!(swept.scratch, 2, "{swept:?}");
        assert!(swept.failures.is_empty(), "{swept:?}");
        assert!(templates.join("ext4-512m.img").exists());
        assert!(!templates.join("ext4-600m.partial").exists());
        assert!(!state.path().join("abc-f").exists());
    }
}
