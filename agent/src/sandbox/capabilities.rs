//! Capabilities of the runtime: none. In two steps around the uid change of
//! the runtime child:
//!
//! 1. [`restrict_while_root`], still as root (dropping from the bounding set
//!    and setting securebits need `CAP_SETPCAP`): empty the bounding set,
//!    clear the ambient set, and lock the securebits so that uid 0 grants
//!    nothing at exec, the uid change clears the capability sets and
//!    ambient capabilities can never be raised again.
//! 2. [`clear_and_verify`], after `setresuid`: empty the permitted,
//!    effective and inheritable sets (the uid change leaves inheritable
//!    alone) and check every set, bounding and ambient included, is empty.

use super::syscall::Syscall;

/// A capability operation failed or left something behind.
#[derive(Debug, thiserror::Error)]
pub enum CapabilityError {
    /// A prctl/capset/capget call failed.
    #[error("{op}: {source}")]
    Call {
        /// The call and its argument.
        op: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A set still holds capabilities after clearing.
    #[error("capabilities left after dropping: {0}")]
    NotEmpty(String),
}

fn call(op: impl Into<String>, rc: libc::c_int) -> Result<libc::c_int, CapabilityError> {
    if rc < 0 {
        return Err(CapabilityError::Call {
            op: op.into(),
            source: std::io::Error::last_os_error(),
        });
    }
    Ok(rc)
}

fn prctl(option: libc::c_int, arg: libc::c_ulong) -> libc::c_int {
    // SAFETY: the capability prctls used here take integer arguments only
    // and do not touch this process's memory.
    unsafe { libc::prctl(option, arg, 0 as libc::c_ulong, 0 as libc::c_ulong, 0) }
}

fn ambient(op: libc::c_int, cap: libc::c_ulong) -> libc::c_int {
    // SAFETY: as in `prctl`: integer arguments only.
    unsafe { libc::prctl(libc::PR_CAP_AMBIENT, op as libc::c_ulong, cap, 0, 0) }
}

/// Highest capability number the kernel knows: `/proc/sys/kernel/cap_last_cap`,
/// else probed with `PR_CAPBSET_READ` (which fails past the last one).
pub fn last_cap() -> u32 {
    if let Some(n) = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
    {
        return n;
    }
    (0..64u32)
        .take_while(|&cap| prctl(libc::PR_CAPBSET_READ, cap.into()) >= 0)
        .last()
        .unwrap_or(0)
}

/// Securebits of the runtime: no capabilities for uid 0 (`NOROOT`), the
/// uid change clears the sets (`NO_SETUID_FIXUP` and `KEEP_CAPS` stay off),
/// ambient capabilities cannot be raised; every bit locked.
const SECUREBITS: libc::c_int = libc::SECBIT_NOROOT
    | libc::SECBIT_NOROOT_LOCKED
    | libc::SECBIT_NO_SETUID_FIXUP_LOCKED
    | libc::SECBIT_KEEP_CAPS_LOCKED
    | libc::SECBIT_NO_CAP_AMBIENT_RAISE
    | libc::SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED;

/// Step 1, still root: empties the bounding and ambient sets and locks the
/// securebits.
pub fn restrict_while_root(sys: &dyn Syscall) -> Result<(), CapabilityError> {
    restrict_up_to(sys, last_cap())
}

/// [`restrict_while_root`] for a kernel whose highest capability is `last`.
fn restrict_up_to(sys: &dyn Syscall, last: u32) -> Result<(), CapabilityError> {
    let failed = |op: String| move |source| CapabilityError::Call { op, source };
    for cap in 0..=last {
        sys.drop_bounding_capability(cap)
            .map_err(failed(format!("prctl(PR_CAPBSET_DROP, {cap})")))?;
    }
    sys.clear_ambient_capabilities()
        .map_err(failed("prctl(PR_CAP_AMBIENT_CLEAR_ALL)".into()))?;
    sys.set_securebits(SECUREBITS)
        .map_err(failed(format!("prctl(PR_SET_SECUREBITS, {SECUREBITS:#x})")))
}

fn io_result(rc: libc::c_int) -> std::io::Result<()> {
    if rc < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Drops `cap` from the bounding set.
pub fn drop_bounding(cap: u32) -> std::io::Result<()> {
    io_result(prctl(libc::PR_CAPBSET_DROP, cap.into()))
}

/// Clears the ambient set.
pub fn clear_ambient() -> std::io::Result<()> {
    io_result(ambient(libc::PR_CAP_AMBIENT_CLEAR_ALL, 0))
}

/// Sets (and with the `_LOCKED` bits, locks) the securebits.
pub fn set_securebits(bits: libc::c_int) -> std::io::Result<()> {
    io_result(prctl(libc::PR_SET_SECUREBITS, bits as libc::c_ulong))
}

/// `struct __user_cap_header_struct` (not in the libc crate).
#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

/// `struct __user_cap_data_struct`; version 3 uses two of them (64 bits).
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;

/// Step 2, after the uid change: empties permitted, effective and
/// inheritable, then checks that no set (bounding and ambient included)
/// holds anything and that the securebits stuck.
pub fn clear_and_verify() -> Result<(), CapabilityError> {
    let mut header = CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let empty = [CapData::default(); 2];
    // SAFETY: `header` and `empty` are valid, properly laid out
    // (`#[repr(C)]`) version-3 capability structures (one header, two data
    // elements) that live across the call; capset only reads them.
    let rc = unsafe { libc::syscall(libc::SYS_capset, &mut header, empty.as_ptr()) };
    call("capset(empty)", rc as libc::c_int)?;

    let mut data = [CapData::default(); 2];
    // SAFETY: as above; capget writes at most two data elements into
    // `data`, which has room for exactly two.
    let rc = unsafe { libc::syscall(libc::SYS_capget, &mut header, data.as_mut_ptr()) };
    call("capget", rc as libc::c_int)?;
    let mut left = Vec::new();
    let set = |f: fn(&CapData) -> u32| u64::from(f(&data[0])) | u64::from(f(&data[1])) << 32;
    for (name, bits) in [
        ("effective", set(|d| d.effective)),
        ("permitted", set(|d| d.permitted)),
        ("inheritable", set(|d| d.inheritable)),
    ] {
        if bits != 0 {
            left.push(format!("{name} {bits:#x}"));
        }
    }
    for cap in 0..=last_cap() {
        if call(
            "prctl(PR_CAPBSET_READ)",
            prctl(libc::PR_CAPBSET_READ, cap.into()),
        )? != 0
        {
            left.push(format!("bounding {cap}"));
        }
        let raised = ambient(libc::PR_CAP_AMBIENT_IS_SET, cap.into());
        if call("prctl(PR_CAP_AMBIENT_IS_SET)", raised)? != 0 {
            left.push(format!("ambient {cap}"));
        }
    }
    let bits = call(
        "prctl(PR_GET_SECUREBITS)",
        prctl(libc::PR_GET_SECUREBITS, 0),
    )?;
    if bits & SECUREBITS != SECUREBITS {
        left.push(format!("securebits {bits:#x} lack {SECUREBITS:#x}"));
    }
    if left.is_empty() {
        Ok(())
    } else {
        Err(CapabilityError::NotEmpty(left.join(", ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::syscall::{Call, Recorder};

    #[test]
    fn restricting_drops_every_bounding_capability_then_ambient_then_locks() {
        let sys = Recorder::default();
        restrict_up_to(&sys, 40).unwrap();
        let calls = sys.calls.into_inner();
        let mut expected: Vec<Call> = (0..=40).map(Call::DropBounding).collect();
        expected.push(Call::ClearAmbient);
        expected.push(Call::SetSecurebits(SECUREBITS));
        assert_eq!(calls, expected);
        // uid 0 grants nothing and nothing can be raised again, for good.
        for bit in [
            libc::SECBIT_NOROOT,
            libc::SECBIT_NOROOT_LOCKED,
            libc::SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED,
            libc::SECBIT_KEEP_CAPS_LOCKED,
        ] {
            assert_ne!(SECUREBITS & bit, 0, "{bit:#x}");
        }
        assert_eq!(SECUREBITS & libc::SECBIT_KEEP_CAPS, 0);
        assert_eq!(SECUREBITS & libc::SECBIT_NO_SETUID_FIXUP, 0);
    }
}
