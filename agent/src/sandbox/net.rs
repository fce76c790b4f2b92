//! Network set-up inside a fresh network namespace: only `lo` exists there,
//! and it starts down.

use std::os::fd::AsRawFd;

use nix::sys::socket::{socket, AddressFamily, SockFlag, SockType};

/// Brings the loopback interface up in the current network namespace.
pub fn bring_up_loopback() -> std::io::Result<()> {
    bring_up(&control_socket()?, "lo")
}

/// A socket to issue interface ioctls on.
fn control_socket() -> std::io::Result<std::os::fd::OwnedFd> {
    Ok(socket(
        AddressFamily::Inet,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        None,
    )?)
}

/// Sets the UP flag of interface `name`.
fn bring_up(sock: &std::os::fd::OwnedFd, name: &str) -> std::io::Result<()> {
    let mut request = named_request(name)?;
    // SAFETY: SIOCGIFFLAGS reads the flags of the interface named in
    // `request` into it; `request` is a valid, properly sized ifreq.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut request) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: the union member written by SIOCGIFFLAGS is `ifru_flags`.
    unsafe {
        request.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
    }
    // SAFETY: SIOCSIFFLAGS reads the flags from a valid ifreq.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &request) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// `SIOCBRADDIF` from linux/sockios.h (not in the libc crate for glibc).
const SIOCBRADDIF: libc::c_ulong = 0x89a2;

/// Attaches the (host-side) interface `port` to `bridge`, isolates it from
/// the bridge's other isolated ports and brings it up.
pub fn join_bridge(port: &str, bridge: &str) -> std::io::Result<()> {
    let sock = control_socket()?;
    let index = nix::net::if_::if_nametoindex(port)?;
    let mut request = named_request(bridge)?;
    request.ifr_ifru.ifru_ifindex = index as libc::c_int;
    // SAFETY: SIOCBRADDIF reads the bridge name and the port's index from a
    // valid ifreq.
    if unsafe { libc::ioctl(sock.as_raw_fd(), SIOCBRADDIF, &request) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    std::fs::write(format!("/sys/class/net/{port}/brport/isolated"), "1")?;
    bring_up(&sock, port)
}

/// An all-zero `ifreq` naming `name`.
fn named_request(name: &str) -> std::io::Result<libc::ifreq> {
    if name.len() >= libc::IFNAMSIZ {
        return Err(std::io::Error::from(std::io::ErrorKind::InvalidInput));
    }
    // SAFETY: `ifreq` is plain old data; all-zero is a valid value.
    let mut request: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in request.ifr_name.iter_mut().zip(name.bytes()) {
        *dst = src as libc::c_char;
    }
    Ok(request)
}
