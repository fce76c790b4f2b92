//! The sandbox's root filesystem, built by its PID 1 inside the new mount
//! namespace: a tmpfs root holding read-only binds of the host's `/usr`,
//! `/lib*` and the needed parts of `/etc`, the package at `/var/task`, the
//! runtime at `/var/runtime`, a private `/tmp`, a fresh `/proc` and a minimal
//! `/dev`; then `pivot_root` and a read-only remount of `/`.

use std::fs;
use std::os::unix::fs::{symlink, DirBuilderExt};
use std::path::Path;

use nix::mount::{mount, umount2, MntFlags, MsFlags};

use super::spec::InitSpec;

/// Top-level host directories shared read-only (as symlinks where the host
/// has symlinks, e.g. a merged-/usr `/bin -> usr/bin`).
const SYSTEM_DIRS: &[&str] = &["usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32"];

/// Parts of `/etc` a runtime needs (name resolution, TLS roots, the dynamic
/// linker cache, time zone data); shared read-only when present.
const ETC_ENTRIES: &[&str] = &[
    "resolv.conf",
    "hosts",
    "nsswitch.conf",
    "host.conf",
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "ssl",
    "ca-certificates",
    "ca-certificates.conf",
    "localtime",
    "mime.types",
    "protocols",
    "services",
    "alternatives",
];

/// Device nodes bind-mounted from the host into the sandbox's `/dev`.
const DEVICES: &[&str] = &["null", "zero", "full", "random", "urandom", "tty"];

type Result<T> = std::result::Result<T, String>;

fn mount_err(what: &str, target: &Path, e: nix::Error) -> String {
    format!("mount {what} on {}: {e}", target.display())
}

fn mkdir(path: &Path, mode: u32) -> Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(mode)
        .create(path)
        .map_err(|e| format!("mkdir {}: {e}", path.display()))
}

fn touch(path: &Path) -> Result<()> {
    fs::File::create(path)
        .map(|_| ())
        .map_err(|e| format!("create {}: {e}", path.display()))
}

/// Bind-mounts `source` at `target` read-only, nosuid, nodev.
fn bind_read_only(source: &Path, target: &Path) -> Result<()> {
    mount(
        Some(source),
        target,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(|e| mount_err(&source.display().to_string(), target, e))?;
    mount(
        None::<&str>,
        target,
        None::<&str>,
        MsFlags::MS_BIND
            | MsFlags::MS_REMOUNT
            | MsFlags::MS_RDONLY
            | MsFlags::MS_NOSUID
            | MsFlags::MS_NODEV,
        None::<&str>,
    )
    .map_err(|e| mount_err("read-only remount", target, e))
}

fn tmpfs(target: &Path, options: &str, flags: MsFlags) -> Result<()> {
    mount(Some("tmpfs"), target, Some("tmpfs"), flags, Some(options))
        .map_err(|e| mount_err(&format!("tmpfs ({options})"), target, e))
}

/// Builds the root under `spec.root_dir` and pivots into it.
pub fn build(spec: &InitSpec) -> Result<()> {
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .map_err(|e| format!("making mounts private: {e}"))?;
    let root = spec.root_dir.as_path();
    tmpfs(
        root,
        "size=4m,mode=0755",
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
    )?;
    for name in SYSTEM_DIRS {
        let host = Path::new("/").join(name);
        let inside = root.join(name);
        match fs::symlink_metadata(&host) {
            Ok(meta) if meta.file_type().is_symlink() => {
                let target = fs::read_link(&host)
                    .map_err(|e| format!("readlink {}: {e}", host.display()))?;
                symlink(&target, &inside)
                    .map_err(|e| format!("symlink {}: {e}", inside.display()))?;
            }
            Ok(meta) if meta.is_dir() => {
                mkdir(&inside, 0o755)?;
                bind_read_only(&host, &inside)?;
            }
            _ => {}
        }
    }
    build_etc(root, spec)?;
    let task = root.join("var/task");
    mkdir(&task, 0o755)?;
    if !spec.deferred {
        bind_read_only(&spec.task_dir, &task)?;
    }
    if let Some(runtime_dir) = &spec.runtime_dir {
        let runtime = root.join("var/runtime");
        mkdir(&runtime, 0o755)?;
        bind_read_only(runtime_dir, &runtime)?;
    }
    mkdir(&root.join("opt"), 0o755)?;
    let tmp = root.join("tmp");
    mkdir(&tmp, 0o1777)?;
    if !spec.deferred {
        tmpfs(
            &tmp,
            &format!(
                "size={}m,mode=1777,uid={},gid={}",
                spec.tmp_size_mb, spec.uid, spec.gid
            ),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        )?;
    }
    let proc_dir = root.join("proc");
    mkdir(&proc_dir, 0o555)?;
    mount(
        Some("proc"),
        &proc_dir,
        Some("proc"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        None::<&str>,
    )
    .map_err(|e| mount_err("proc", &proc_dir, e))?;
    build_dev(root)?;
    pivot(root)
}

fn build_etc(root: &Path, spec: &InitSpec) -> Result<()> {
    let etc = root.join("etc");
    mkdir(&etc, 0o755)?;
    for name in ETC_ENTRIES {
        let host = Path::new("/etc").join(name);
        let Ok(meta) = fs::metadata(&host) else {
            continue;
        };
        let inside = etc.join(name);
        if meta.is_dir() {
            mkdir(&inside, 0o755)?;
        } else {
            touch(&inside)?;
        }
        bind_read_only(&host, &inside)?;
    }
    let user = format!("sbx_user{}", spec.uid);
    fs::write(
        etc.join("passwd"),
        format!(
            "root:x:0:0:root:/root:/usr/sbin/nologin\n{user}:x:{uid}:{gid}::/tmp:/usr/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
            uid = spec.uid,
            gid = spec.gid
        ),
    )
    .map_err(|e| format!("writing /etc/passwd: {e}"))?;
    fs::write(
        etc.join("group"),
        format!(
            "root:x:0:\n{user}:x:{gid}:\nnogroup:x:65534:\n",
            gid = spec.gid
        ),
    )
    .map_err(|e| format!("writing /etc/group: {e}"))?;
    fs::write(etc.join("hostname"), format!("{}\n", spec.hostname))
        .map_err(|e| format!("writing /etc/hostname: {e}"))
}

fn build_dev(root: &Path) -> Result<()> {
    let dev = root.join("dev");
    mkdir(&dev, 0o755)?;
    tmpfs(
        &dev,
        "size=64k,mode=0755",
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
    )?;
    for name in DEVICES {
        let host = Path::new("/dev").join(name);
        if !host.exists() {
            continue;
        }
        let inside = dev.join(name);
        touch(&inside)?;
        mount(
            Some(&host),
            &inside,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(|e| mount_err(&host.display().to_string(), &inside, e))?;
    }
    for (link, target) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        symlink(target, dev.join(link)).map_err(|e| format!("symlink /dev/{link}: {e}"))?;
    }
    let shm = dev.join("shm");
    mkdir(&shm, 0o1777)?;
    tmpfs(
        &shm,
        "size=64m,mode=1777",
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
    )
}

fn pivot(root: &Path) -> Result<()> {
    nix::unistd::chdir(root).map_err(|e| format!("chdir {}: {e}", root.display()))?;
    nix::unistd::pivot_root(".", ".").map_err(|e| format!("pivot_root: {e}"))?;
    umount2(".", MntFlags::MNT_DETACH).map_err(|e| format!("detaching the old root: {e}"))?;
    nix::unistd::chdir("/").map_err(|e| format!("chdir /: {e}"))?;
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REMOUNT
            | MsFlags::MS_BIND
            | MsFlags::MS_RDONLY
            | MsFlags::MS_NOSUID
            | MsFlags::MS_NODEV,
        None::<&str>,
    )
    .map_err(|e| format!("remounting / read-only: {e}"))
}
