//! The runtime's seccomp filter: a hand-written classic BPF program that
//! kills the process on a foreign architecture, denies with `EPERM` the
//! system calls a function never needs (mounts, tracing, kernel modules,
//! keyrings, BPF, namespaces, clock and host settings, io_uring, ...), creating
//! namespaces through `clone`, the x32 ABI, and answers `clone3` with
//! `ENOSYS` (its flags sit behind a pointer the filter cannot read, and C
//! libraries fall back to `clone` on `ENOSYS`). Everything else is allowed.
//!
//! Installed by the runtime child after `no_new_privs`, as its last step
//! before `execve`, so it applies to the runtime and everything it starts.

use libc::{sock_filter, sock_fprog};

/// `AUDIT_ARCH_*` of the build target (`EM_*` | 64-bit | little-endian);
/// the libc crate does not export these.
#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH: u32 = 62 | 0x8000_0000 | 0x4000_0000;
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH: u32 = 183 | 0x8000_0000 | 0x4000_0000;
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
compile_error!("the sandbox seccomp filter supports x86_64 and aarch64 only");

#[cfg(not(target_endian = "little"))]
compile_error!("the sandbox seccomp filter reads syscall arguments as little-endian");

/// Bit set in the numbers of x32-ABI system calls (which share x86_64's
/// audit arch); no native number of a supported architecture has it.
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// Offsets in `struct seccomp_data`: `nr`, `arch`, low word of `args[0]`.
const OFFSET_NR: u32 = 0;
const OFFSET_ARCH: u32 = 4;
const OFFSET_ARG0_LOW: u32 = 16;

/// `clone` flags that create namespaces (all in the low 32 bits).
/// `CLONE_NEWTIME` is left out: for `clone` its bit is part of the exit
/// signal, and it exists only for `clone3`, which is refused anyway.
const CLONE_NAMESPACE_FLAGS: u32 = (libc::CLONE_NEWNS
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWUSER
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWNET
    | libc::CLONE_NEWCGROUP) as u32;

/// System calls denied with `EPERM` on every supported architecture.
const DENIED_COMMON: &[libc::c_long] = &[
    libc::SYS_mount,
    libc::SYS_umount2,
    libc::SYS_pivot_root,
    libc::SYS_chroot,
    libc::SYS_ptrace,
    libc::SYS_process_vm_readv,
    libc::SYS_process_vm_writev,
    libc::SYS_kexec_load,
    libc::SYS_kexec_file_load,
    libc::SYS_init_module,
    libc::SYS_finit_module,
    libc::SYS_delete_module,
    libc::SYS_keyctl,
    libc::SYS_add_key,
    libc::SYS_request_key,
    libc::SYS_bpf,
    libc::SYS_perf_event_open,
    libc::SYS_reboot,
    libc::SYS_swapon,
    libc::SYS_swapoff,
    libc::SYS_setns,
    libc::SYS_unshare,
    libc::SYS_open_by_handle_at,
    libc::SYS_name_to_handle_at,
    libc::SYS_acct,
    libc::SYS_settimeofday,
    libc::SYS_clock_settime,
    libc::SYS_clock_adjtime,
    libc::SYS_adjtimex,
    libc::SYS_sethostname,
    libc::SYS_setdomainname,
    libc::SYS_userfaultfd,
    libc::SYS_lookup_dcookie,
    libc::SYS_quotactl,
    libc::SYS_syslog,
    libc::SYS_fsopen,
    libc::SYS_fsmount,
    libc::SYS_fsconfig,
    libc::SYS_move_mount,
    libc::SYS_open_tree,
    libc::SYS_fspick,
    libc::SYS_mount_setattr,
    // io_uring bypasses this filter (its operations are not system calls)
    // and has been a steady source of kernel exploits.
    libc::SYS_io_uring_setup,
    libc::SYS_io_uring_enter,
    libc::SYS_io_uring_register,
];

/// Architecture-specific additions to [`DENIED_COMMON`].
#[cfg(target_arch = "x86_64")]
const DENIED_ARCH: &[libc::c_long] = &[libc::SYS_iopl, libc::SYS_ioperm];
#[cfg(target_arch = "aarch64")]
const DENIED_ARCH: &[libc::c_long] = &[];

/// The program could not be built or installed.
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    /// A conditional jump would need an offset classic BPF cannot encode.
    #[error("seccomp filter: jump of {0} instructions does not fit in 8 bits")]
    JumpOutOfRange(usize),
    /// The program is longer than the kernel accepts.
    #[error("seccomp filter: {0} instructions exceed the kernel's limit of 4096")]
    TooLong(usize),
    /// The kernel refused the program.
    #[error("installing the seccomp filter: {0}")]
    Install(#[source] std::io::Error),
}

fn stmt(code: u32, k: u32) -> sock_filter {
    sock_filter {
        code: code as u16,
        jt: 0,
        jf: 0,
        k,
    }
}

fn jump(code: u32, k: u32, jt: usize, jf: usize) -> Result<sock_filter, SeccompError> {
    let offset = |n: usize| u8::try_from(n).map_err(|_| SeccompError::JumpOutOfRange(n));
    Ok(sock_filter {
        code: code as u16,
        jt: offset(jt)?,
        jf: offset(jf)?,
        k,
    })
}

fn load(offset: u32) -> sock_filter {
    stmt(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, offset)
}

fn ret(action: u32) -> sock_filter {
    stmt(libc::BPF_RET | libc::BPF_K, action)
}

fn errno(code: i32) -> u32 {
    libc::SECCOMP_RET_ERRNO | (code as u32 & libc::SECCOMP_RET_DATA)
}

/// Every system call number the filter denies with `EPERM` outright.
pub fn denied_syscalls() -> impl Iterator<Item = u32> {
    DENIED_COMMON.iter().chain(DENIED_ARCH).map(|&nr| nr as u32)
}

/// Builds the filter program for [`denied_syscalls`]:
///
/// ```text
///   ld arch;  jeq AUDIT_ARCH ? next : kill
///   ld nr;    jset X32_BIT ? deny
///   jeq clone3 ? enosys
///   jeq clone ? check_clone
///   jeq nr_1 ? deny  …  jeq nr_n ? deny
///   ret ALLOW
/// check_clone: ld arg0;  jset NAMESPACE_FLAGS ? deny : allow
/// deny: ret ERRNO(EPERM)     enosys: ret ERRNO(ENOSYS)     kill: ret KILL_PROCESS
/// ```
pub fn build_program() -> Result<Vec<sock_filter>, SeccompError> {
    let denied: Vec<u32> = denied_syscalls().collect();
    // Instruction indexes of the fixed layout.
    let first_deny_check = 6;
    let allow = first_deny_check + denied.len();
    let check_clone = allow + 1;
    let deny = check_clone + 3;
    let enosys = deny + 1;
    let kill = enosys + 1;
    // A conditional jump at `at` to `target` encodes `target - (at + 1)`.
    let to = |at: usize, target: usize| target - (at + 1);

    let jeq = libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K;
    let jset = libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K;
    let mut program = vec![
        load(OFFSET_ARCH),
        jump(jeq, AUDIT_ARCH, 0, to(1, kill))?,
        load(OFFSET_NR),
        jump(jset, X32_SYSCALL_BIT, to(3, deny), 0)?,
        jump(jeq, libc::SYS_clone3 as u32, to(4, enosys), 0)?,
        jump(jeq, libc::SYS_clone as u32, to(5, check_clone), 0)?,
    ];
    for (i, nr) in denied.iter().enumerate() {
        let at = first_deny_check + i;
        program.push(jump(jeq, *nr, to(at, deny), 0)?);
    }
    program.push(ret(libc::SECCOMP_RET_ALLOW));
    program.push(load(OFFSET_ARG0_LOW));
    program.push(jump(
        jset,
        CLONE_NAMESPACE_FLAGS,
        to(check_clone + 1, deny),
        0,
    )?);
    program.push(ret(libc::SECCOMP_RET_ALLOW));
    program.push(ret(errno(libc::EPERM)));
    program.push(ret(errno(libc::ENOSYS)));
    program.push(ret(libc::SECCOMP_RET_KILL_PROCESS));
    debug_assert_eq!(program.len(), kill + 1);
    if program.len() > 4096 {
        return Err(SeccompError::TooLong(program.len()));
    }
    Ok(program)
}

/// Installs the filter on the calling thread. Requires `no_new_privs` (or
/// `CAP_SYS_ADMIN`); the caller is single-threaded.
pub fn install() -> Result<(), SeccompError> {
    let mut program = build_program()?;
    let fprog = sock_fprog {
        len: program.len() as libc::c_ushort,
        filter: program.as_mut_ptr(),
    };
    // SAFETY: `fprog` points at `program`, a live, initialised array of
    // `fprog.len` instructions; the kernel copies it before returning, and
    // neither outlives this call's borrow.
    let rc = unsafe {
        libc::prctl(
            libc::PR_SET_SECCOMP,
            libc::SECCOMP_MODE_FILTER as libc::c_ulong,
            &fprog as *const sock_fprog,
        )
    };
    if rc != 0 {
        return Err(SeccompError::Install(std::io::Error::last_os_error()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tiny classic-BPF interpreter for the instructions the builder
    /// emits, so the tests check what the program decides, not its shape.
    fn run(program: &[sock_filter], nr: u32, arch: u32, arg0: u64) -> u32 {
        let mut acc = 0u32;
        let mut pc = 0usize;
        loop {
            let ins = program[pc];
            let code = u32::from(ins.code);
            match code {
                c if c == libc::BPF_LD | libc::BPF_W | libc::BPF_ABS => {
                    acc = match ins.k {
                        OFFSET_NR => nr,
                        OFFSET_ARCH => arch,
                        OFFSET_ARG0_LOW => arg0 as u32,
                        other => panic!("load of unexpected offset {other}"),
                    };
                    pc += 1;
                }
                c if c == libc::BPF_RET | libc::BPF_K => return ins.k,
                c if c == libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K
                    || c == libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K =>
                {
                    let taken = if c & 0xf0 == libc::BPF_JEQ {
                        acc == ins.k
                    } else {
                        acc & ins.k != 0
                    };
                    let skip = if taken { ins.jt } else { ins.jf };
                    pc += 1 + usize::from(skip);
                }
                other => panic!("unexpected opcode {other:#x}"),
            }
        }
    }

    #[test]
    fn every_jump_lands_inside_the_program_and_it_ends_in_returns() {
        let program = build_program().unwrap();
        let jmp = libc::BPF_JMP as u16;
        for (i, ins) in program.iter().enumerate() {
            if ins.code & 0x07 == jmp {
                assert!(i + 1 + usize::from(ins.jt) < program.len(), "jt at {i}");
                assert!(i + 1 + usize::from(ins.jf) < program.len(), "jf at {i}");
            }
        }
        let last = program.last().unwrap();
        assert_eq!(last.code, (libc::BPF_RET | libc::BPF_K) as u16);
        // Six fixed checks, one per denied call, allow, the clone check (3),
        // and the deny, enosys and kill returns.
        assert_eq!(program.len(), 6 + denied_syscalls().count() + 1 + 3 + 3);
    }

    #[test]
    fn decisions() {
        let p = build_program().unwrap();
        let eperm = errno(libc::EPERM);
        let allow = libc::SECCOMP_RET_ALLOW;
        let sys = |nr: libc::c_long| nr as u32;
        for nr in denied_syscalls() {
            assert_eq!(run(&p, nr, AUDIT_ARCH, 0), eperm, "syscall {nr}");
        }
        for nr in [
            libc::SYS_read,
            libc::SYS_write,
            libc::SYS_openat,
            libc::SYS_execve,
            libc::SYS_mmap,
            libc::SYS_exit_group,
            libc::SYS_close_range,
        ] {
            assert_eq!(run(&p, sys(nr), AUDIT_ARCH, 0), allow, "syscall {nr}");
        }
        assert_eq!(
            run(&p, sys(libc::SYS_read), 0x4000_0003, 0),
            libc::SECCOMP_RET_KILL_PROCESS,
            "a foreign architecture is killed"
        );
        assert_eq!(run(&p, X32_SYSCALL_BIT | 1, AUDIT_ARCH, 0), eperm);
        assert_eq!(
            run(&p, sys(libc::SYS_clone3), AUDIT_ARCH, 0),
            errno(libc::ENOSYS)
        );
        let fork_flags = (libc::CLONE_CHILD_SETTID | libc::SIGCHLD) as u64;
        let thread_flags = (libc::CLONE_VM | libc::CLONE_THREAD | libc::CLONE_SIGHAND) as u64;
        let clone = sys(libc::SYS_clone);
        assert_eq!(run(&p, clone, AUDIT_ARCH, fork_flags), allow);
        assert_eq!(run(&p, clone, AUDIT_ARCH, thread_flags), allow);
        for flag in [libc::CLONE_NEWUSER, libc::CLONE_NEWNS, libc::CLONE_NEWNET] {
            let flags = fork_flags | flag as u64;
            assert_eq!(run(&p, clone, AUDIT_ARCH, flags), eperm, "{flag:#x}");
        }
    }

    #[test]
    fn the_required_calls_are_denied() {
        let denied: Vec<u32> = denied_syscalls().collect();
        for nr in [
            libc::SYS_mount,
            libc::SYS_ptrace,
            libc::SYS_bpf,
            libc::SYS_unshare,
            libc::SYS_setns,
            libc::SYS_keyctl,
            libc::SYS_init_module,
            libc::SYS_finit_module,
            libc::SYS_reboot,
            libc::SYS_mount_setattr,
        ] {
            assert!(denied.contains(&(nr as u32)), "{nr} not denied");
        }
    }
}
