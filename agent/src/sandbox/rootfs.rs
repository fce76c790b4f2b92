//! The sandbox's root filesystem, built by its PID 1 inside the new mount
//! namespace: a tmpfs root holding read-only binds of the host's `/usr`,
//! `/lib*` and the needed parts of `/etc`, the package at `/var/task`, the
//! layers at `/opt`, the runtime at `/var/runtime`, a private disk-backed `/tmp` (see `tmp_disk`),
//! a fresh `/proc` and a minimal `/dev` (whose `shm` is a link to `/tmp`);
//! then `pivot_root` and a read-only remount of `/`.

use std::path::Path;

use nix::mount::MsFlags;

use super::init_error::InitError;
use super::spec::InitSpec;
use super::syscall::{HostEntry, Syscall};

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

type Result<T> = std::result::Result<T, InitError>;

fn mount_err(what: &str, target: &Path) -> impl FnOnce(std::io::Error) -> InitError {
    InitError::path(format!("mount {what} on"), target.to_path_buf())
}

fn mkdir(sys: &dyn Syscall, path: &Path, mode: u32) -> Result<()> {
    sys.mkdir(path, mode)
        .map_err(InitError::path("mkdir", path))
}

fn touch(sys: &dyn Syscall, path: &Path) -> Result<()> {
    sys.create_file(path)
        .map_err(InitError::path("create", path))
}

fn symlink(sys: &dyn Syscall, target: &Path, link: &Path) -> Result<()> {
    sys.symlink(target, link)
        .map_err(InitError::path("symlink", link))
}

/// Bind-mounts `source` at `target` read-only, nosuid, nodev.
fn bind_read_only(sys: &dyn Syscall, source: &Path, target: &Path) -> Result<()> {
    sys.mount(
        Some(source),
        target,
        None,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None,
    )
    .map_err(mount_err(&source.display().to_string(), target))?;
    sys.mount(
        None,
        target,
        None,
        MsFlags::MS_BIND
            | MsFlags::MS_REMOUNT
            | MsFlags::MS_RDONLY
            | MsFlags::MS_NOSUID
            | MsFlags::MS_NODEV,
        None,
    )
    .map_err(mount_err("read-only remount", target))
}

fn tmpfs(sys: &dyn Syscall, target: &Path, options: &str, flags: MsFlags) -> Result<()> {
    sys.mount(
        Some(Path::new("tmpfs")),
        target,
        Some("tmpfs"),
        flags,
        Some(options),
    )
    .map_err(mount_err(&format!("tmpfs ({options})"), target))
}

/// The options of a `/tmp` of `size_mb` owned by `uid`/`gid`.
pub fn tmp_options(size_mb: u32, uid: u32, gid: u32) -> String {
    format!("size={size_mb}m,mode=1777,uid={uid},gid={gid}")
}

/// Mounts a private tmpfs `/tmp` of `size_mb` at `target` (only where no
/// loop device is available: it is charged to the memory limit).
pub fn mount_tmp(sys: &dyn Syscall, target: &Path, size_mb: u32, uid: u32, gid: u32) -> Result<()> {
    tmpfs(
        sys,
        target,
        &tmp_options(size_mb, uid, gid),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
    )
}

/// Mounts the ext4 filesystem on `device` at `target` (nosuid, nodev) and
/// gives its root to `uid`/`gid`.
pub fn mount_tmp_disk(
    sys: &dyn Syscall,
    device: &Path,
    target: &Path,
    uid: u32,
    gid: u32,
) -> Result<()> {
    sys.mount(
        Some(device),
        target,
        Some("ext4"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        None,
    )
    .map_err(mount_err(&device.display().to_string(), target))?;
    sys.chown(target, uid, gid)
        .map_err(InitError::path("chown", target))
}

/// Builds the root under `spec.root_dir` and pivots into it.
pub fn build(sys: &dyn Syscall, spec: &InitSpec) -> Result<()> {
    sys.mount(
        None,
        Path::new("/"),
        None,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None,
    )
    .map_err(InitError::call("making mounts private"))?;
    let root = spec.root_dir.as_path();
    tmpfs(
        sys,
        root,
        "size=4m,mode=0755",
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
    )?;
    for name in SYSTEM_DIRS {
        let host = Path::new("/").join(name);
        let inside = root.join(name);
        match sys.host_entry_no_follow(&host) {
            HostEntry::Symlink(target) => symlink(sys, &target, &inside)?,
            HostEntry::Dir => {
                mkdir(sys, &inside, 0o755)?;
                bind_read_only(sys, &host, &inside)?;
            }
            _ => {}
        }
    }
    build_etc(sys, root, spec)?;
    let task = root.join("var/task");
    mkdir(sys, &task, 0o755)?;
    if !spec.deferred {
        bind_read_only(sys, &spec.task_dir, &task)?;
    }
    if let Some(runtime_dir) = &spec.runtime_dir {
        let runtime = root.join("var/runtime");
        mkdir(sys, &runtime, 0o755)?;
        bind_read_only(sys, runtime_dir, &runtime)?;
    }
    let opt = root.join("opt");
    mkdir(sys, &opt, 0o755)?;
    if spec.deferred {
        // The dynamic linker marks a missing LD_LIBRARY_PATH directory as
        // absent for good the first time it searches it: a blank's runtime
        // must find `/opt/lib` present before the claim mounts the layers
        // over `/opt`.
        mkdir(sys, &opt.join("lib"), 0o755)?;
    } else if let Some(opt_dir) = &spec.opt_dir {
        bind_read_only(sys, opt_dir, &opt)?;
    }
    let tmp = root.join("tmp");
    mkdir(sys, &tmp, 0o1777)?;
    if !spec.deferred {
        match &spec.tmp_device {
            Some(device) => mount_tmp_disk(sys, device, &tmp, spec.uid, spec.gid)?,
            None => mount_tmp(sys, &tmp, spec.tmp_size_mb, spec.uid, spec.gid)?,
        }
    }
    let proc_dir = root.join("proc");
    mkdir(sys, &proc_dir, 0o555)?;
    sys.mount(
        Some(Path::new("proc")),
        &proc_dir,
        Some("proc"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        None,
    )
    .map_err(mount_err("proc", &proc_dir))?;
    build_dev(sys, root)?;
    pivot(sys, root)
}

fn build_etc(sys: &dyn Syscall, root: &Path, spec: &InitSpec) -> Result<()> {
    let etc = root.join("etc");
    mkdir(sys, &etc, 0o755)?;
    for name in ETC_ENTRIES {
        let host = match (&spec.resolv_conf, *name) {
            (Some(replacement), "resolv.conf") => replacement.clone(),
            _ => Path::new("/etc").join(name),
        };
        let inside = etc.join(name);
        match sys.host_entry(&host) {
            HostEntry::Missing => continue,
            HostEntry::Dir => mkdir(sys, &inside, 0o755)?,
            _ => touch(sys, &inside)?,
        }
        bind_read_only(sys, &host, &inside)?;
    }
    let user = format!("sbx_user{}", spec.uid);
    let write = |name: &str, contents: String| {
        let path = etc.join(name);
        sys.write_file(&path, &contents)
            .map_err(InitError::path("writing", path))
    };
    write(
        "passwd",
        format!(
            "root:x:0:0:root:/root:/usr/sbin/nologin\n{user}:x:{uid}:{gid}::/tmp:/usr/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
            uid = spec.uid,
            gid = spec.gid
        ),
    )?;
    write(
        "group",
        format!(
            "root:x:0:\n{user}:x:{gid}:\nnogroup:x:65534:\n",
            gid = spec.gid
        ),
    )?;
    write("hostname", format!("{}\n", spec.hostname))
}

fn build_dev(sys: &dyn Syscall, root: &Path) -> Result<()> {
    let dev = root.join("dev");
    mkdir(sys, &dev, 0o755)?;
    tmpfs(
        sys,
        &dev,
        "size=64k,mode=0755",
        MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
    )?;
    for name in DEVICES {
        let host = Path::new("/dev").join(name);
        if sys.host_entry(&host) == HostEntry::Missing {
            continue;
        }
        let inside = dev.join(name);
        touch(sys, &inside)?;
        sys.mount(Some(&host), &inside, None, MsFlags::MS_BIND, None)
            .map_err(mount_err(&host.display().to_string(), &inside))?;
    }
    for (link, target) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        symlink(sys, Path::new(target), &dev.join(link))?;
    }
    // POSIX shared memory lives in `/tmp`: disk-backed, limited by the
    // `/tmp` size, not an uncounted tmpfs.
    symlink(sys, Path::new("/tmp"), &dev.join("shm"))
}

fn pivot(sys: &dyn Syscall, root: &Path) -> Result<()> {
    sys.chdir(root).map_err(InitError::path("chdir", root))?;
    sys.pivot_root_here()
        .map_err(InitError::call("pivot_root"))?;
    sys.umount_detach(Path::new("."))
        .map_err(InitError::call("detaching the old root"))?;
    sys.chdir(Path::new("/"))
        .map_err(InitError::path("chdir", "/"))?;
    sys.mount(
        None,
        Path::new("/"),
        None,
        MsFlags::MS_REMOUNT
            | MsFlags::MS_BIND
            | MsFlags::MS_RDONLY
            | MsFlags::MS_NOSUID
            | MsFlags::MS_NODEV,
        None,
    )
    .map_err(InitError::call("remounting / read-only"))
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::sandbox::syscall::{Call, Recorder};

    fn spec(deferred: bool) -> InitSpec {
        InitSpec {
            join_network: false,
            resolv_conf: None,
            argv: vec!["/var/task/bootstrap".into()],
            env: vec![],
            task_dir: "/srv/pkg".into(),
            opt_dir: None,
            runtime_dir: None,
            root_dir: "/state/i1".into(),
            tmp_size_mb: 512,
            tmp_device: Some("/dev/loop7".into()),
            private_network: true,
            listen: None,
            uid: 100_001,
            gid: 100_002,
            hostname: "kumo-x".into(),
            deferred,
            cgroup_procs: vec![],
        }
    }

    fn host() -> Recorder {
        Recorder::with_host(&[
            ("/usr", HostEntry::Dir),
            ("/bin", HostEntry::Symlink("usr/bin".into())),
            ("/etc/resolv.conf", HostEntry::File),
            ("/etc/ssl", HostEntry::Dir),
            ("/dev/null", HostEntry::File),
        ])
    }

    fn mount(
        source: Option<&str>,
        target: &str,
        fstype: Option<&str>,
        flags: MsFlags,
        data: Option<&str>,
    ) -> Call {
        Call::Mount {
            source: source.map(PathBuf::from),
            target: target.into(),
            fstype: fstype.map(str::to_owned),
            flags,
            data: data.map(str::to_owned),
        }
    }

    fn ro_bind(source: &str, target: &str) -> [Call; 2] {
        [
            mount(
                Some(source),
                target,
                None,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None,
            ),
            mount(
                None,
                target,
                None,
                MsFlags::MS_BIND
                    | MsFlags::MS_REMOUNT
                    | MsFlags::MS_RDONLY
                    | MsFlags::MS_NOSUID
                    | MsFlags::MS_NODEV,
                None,
            ),
        ]
    }

    #[test]
    fn a_function_root_gets_these_mounts_in_this_order() {
        let sys = host();
        build(&sys, &spec(false)).unwrap();
        let nosuid_nodev = MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
        let mut expected = vec![
            mount(None, "/", None, MsFlags::MS_REC | MsFlags::MS_PRIVATE, None),
            mount(
                Some("tmpfs"),
                "/state/i1",
                Some("tmpfs"),
                nosuid_nodev,
                Some("size=4m,mode=0755"),
            ),
        ];
        expected.extend(ro_bind("/usr", "/state/i1/usr"));
        expected.extend(ro_bind("/etc/resolv.conf", "/state/i1/etc/resolv.conf"));
        expected.extend(ro_bind("/etc/ssl", "/state/i1/etc/ssl"));
        expected.extend(ro_bind("/srv/pkg", "/state/i1/var/task"));
        expected.push(mount(
            Some("/dev/loop7"),
            "/state/i1/tmp",
            Some("ext4"),
            nosuid_nodev,
            None,
        ));
        expected.push(mount(
            Some("proc"),
            "/state/i1/proc",
            Some("proc"),
            nosuid_nodev | MsFlags::MS_NOEXEC,
            None,
        ));
        expected.push(mount(
            Some("tmpfs"),
            "/state/i1/dev",
            Some("tmpfs"),
            MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
            Some("size=64k,mode=0755"),
        ));
        expected.push(mount(
            Some("/dev/null"),
            "/state/i1/dev/null",
            None,
            MsFlags::MS_BIND,
            None,
        ));
        expected.push(mount(
            None,
            "/",
            None,
            MsFlags::MS_REMOUNT
                | MsFlags::MS_BIND
                | MsFlags::MS_RDONLY
                | MsFlags::MS_NOSUID
                | MsFlags::MS_NODEV,
            None,
        ));
        assert_eq!(sys.mounts(), expected);
        let calls = sys.calls.borrow();
        assert!(calls.contains(&Call::Symlink("usr/bin".into(), "/state/i1/bin".into())));
        assert!(calls.contains(&Call::Mkdir("/state/i1/tmp".into(), 0o1777)));
        assert!(calls.contains(&Call::Chown("/state/i1/tmp".into(), 100_001, 100_002)));
        assert!(calls.contains(&Call::Symlink("/tmp".into(), "/state/i1/dev/shm".into())));
        assert!(calls.contains(&Call::WriteFile(
            "/state/i1/etc/hostname".into(),
            "kumo-x\n".into()
        )));
        let pivot: Vec<&Call> = calls
            .iter()
            .skip_while(|c| **c != Call::Chdir("/state/i1".into()))
            .take(4)
            .collect();
        assert_eq!(
            pivot,
            [
                &Call::Chdir("/state/i1".into()),
                &Call::PivotRoot,
                &Call::UmountDetach(".".into()),
                &Call::Chdir("/".into()),
            ]
        );
    }

    #[test]
    fn without_a_loop_device_tmp_is_a_size_limited_tmpfs() {
        let sys = host();
        let mut spec = spec(false);
        spec.tmp_device = None;
        build(&sys, &spec).unwrap();
        let tmp: Vec<Call> = sys
            .mounts()
            .into_iter()
            .filter(
                |c| matches!(c, Call::Mount { target, .. } if target == Path::new("/state/i1/tmp")),
            )
            .collect();
        assert_eq!(
            tmp,
            [mount(
                Some("tmpfs"),
                "/state/i1/tmp",
                Some("tmpfs"),
                MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
                Some("size=512m,mode=1777,uid=100001,gid=100002"),
            )]
        );
    }

    #[test]
    fn a_blank_root_leaves_task_and_tmp_unmounted() {
        let sys = host();
        build(&sys, &spec(true)).unwrap();
        let targets: Vec<PathBuf> = sys
            .mounts()
            .into_iter()
            .filter_map(|c| match c {
                Call::Mount { target, .. } => Some(target),
                _ => None,
            })
            .collect();
        assert!(
            !targets.contains(&"/state/i1/var/task".into()),
            "{targets:?}"
        );
        assert!(!targets.contains(&"/state/i1/tmp".into()), "{targets:?}");
        assert!(targets.contains(&"/state/i1/proc".into()));
    }
}
