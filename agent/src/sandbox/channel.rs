//! The control channel between the agent and a sandbox's init processes: a
//! Unix `SOCK_SEQPACKET` socketpair (one message per send, boundaries kept).
//!
//! Agent → init: the [`InitSpec`](super::spec::InitSpec) as JSON.
//! Init → agent: [`InitMessage`]s, the listener travelling as SCM_RIGHTS.

use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use nix::sys::socket::{
    recvmsg, sendmsg, socketpair, AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags,
    SockFlag, SockType,
};

/// Largest message on the channel (the spec is well below: env ≤ 4 KB).
pub const MAX_MESSAGE: usize = 64 * 1024;

/// What the init processes report to the agent.
#[derive(Debug)]
pub enum InitMessage {
    /// The Runtime API listener bound inside the sandbox's network namespace.
    Listener(OwnedFd),
    /// Host pid of the sandbox's PID 1.
    Pid1(i32),
    /// The runtime process has been exec'd.
    Ready,
    /// A set-up step failed.
    Error(String),
    /// The runtime process ended with this raw wait status.
    Exit(i32),
    /// A blank sandbox was claimed: the package and `/tmp` are mounted and
    /// the runtime has its assignment.
    Claimed,
}

const TAG_LISTENER: u8 = b'L';
const TAG_PID1: u8 = b'P';
const TAG_READY: u8 = b'R';
const TAG_ERROR: u8 = b'E';
const TAG_EXIT: u8 = b'X';
const TAG_CLAIMED: u8 = b'C';

/// Creates the socketpair: (agent end, init end). Both close-on-exec; the
/// init end is dup'ed onto the init's fd 3 when it is spawned.
pub fn pair() -> nix::Result<(OwnedFd, OwnedFd)> {
    socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
}

/// Sends one message (blocking).
pub fn send(fd: RawFd, message: &InitMessage) -> nix::Result<()> {
    let mut bytes = Vec::with_capacity(16);
    let mut fds: Vec<RawFd> = Vec::new();
    match message {
        InitMessage::Listener(listener) => {
            bytes.push(TAG_LISTENER);
            fds.push(listener.as_raw_fd());
        }
        InitMessage::Pid1(pid) => {
            bytes.push(TAG_PID1);
            bytes.extend_from_slice(&pid.to_le_bytes());
        }
        InitMessage::Ready => bytes.push(TAG_READY),
        InitMessage::Error(text) => {
            bytes.push(TAG_ERROR);
            bytes.extend_from_slice(&text.as_bytes()[..text.len().min(MAX_MESSAGE - 1)]);
        }
        InitMessage::Exit(status) => {
            bytes.push(TAG_EXIT);
            bytes.extend_from_slice(&status.to_le_bytes());
        }
        InitMessage::Claimed => bytes.push(TAG_CLAIMED),
    }
    send_raw(fd, &bytes, &fds)
}

/// Sends raw bytes, optionally with descriptors.
pub fn send_raw(fd: RawFd, bytes: &[u8], fds: &[RawFd]) -> nix::Result<()> {
    let iov = [IoSlice::new(bytes)];
    let cmsgs = [ControlMessage::ScmRights(fds)];
    let cmsgs: &[ControlMessage] = if fds.is_empty() { &[] } else { &cmsgs };
    sendmsg::<()>(fd, &iov, cmsgs, MsgFlags::MSG_NOSIGNAL, None).map(|_| ())
}

/// Receives one raw message; `Ok(None)` when the peer has closed.
pub fn recv_raw(fd: RawFd) -> nix::Result<Option<(Vec<u8>, Vec<OwnedFd>)>> {
    let mut buf = vec![0u8; MAX_MESSAGE];
    let mut cmsg = nix::cmsg_space!([RawFd; 4]);
    let (len, fds) = {
        let mut iov = [IoSliceMut::new(&mut buf)];
        let msg = loop {
            match recvmsg::<()>(fd, &mut iov, Some(&mut cmsg), MsgFlags::MSG_CMSG_CLOEXEC) {
                Err(nix::errno::Errno::EINTR) => continue,
                other => break other?,
            }
        };
        let mut fds = Vec::new();
        for c in msg.cmsgs()? {
            if let ControlMessageOwned::ScmRights(raw) = c {
                for r in raw {
                    // SAFETY: the kernel just installed `r` in our fd table for
                    // this message; nothing else owns it.
                    fds.push(unsafe { OwnedFd::from_raw_fd(r) });
                }
            }
        }
        (msg.bytes, fds)
    };
    if len == 0 && fds.is_empty() {
        return Ok(None);
    }
    buf.truncate(len);
    Ok(Some((buf, fds)))
}

/// Receives and decodes one init message; `Ok(None)` when the peer closed.
pub fn recv(fd: RawFd) -> nix::Result<Option<InitMessage>> {
    let Some((bytes, mut fds)) = recv_raw(fd)? else {
        return Ok(None);
    };
    let int = |b: &[u8]| -> i32 {
        let mut raw = [0u8; 4];
        if b.len() >= 5 {
            raw.copy_from_slice(&b[1..5]);
        }
        i32::from_le_bytes(raw)
    };
    Ok(Some(match bytes.first() {
        Some(&TAG_LISTENER) if !fds.is_empty() => InitMessage::Listener(fds.remove(0)),
        Some(&TAG_PID1) => InitMessage::Pid1(int(&bytes)),
        Some(&TAG_READY) => InitMessage::Ready,
        Some(&TAG_CLAIMED) => InitMessage::Claimed,
        Some(&TAG_EXIT) => InitMessage::Exit(int(&bytes)),
        Some(&TAG_ERROR) => InitMessage::Error(String::from_utf8_lossy(&bytes[1..]).into_owned()),
        _ => InitMessage::Error(format!(
            "unexpected control message of {} bytes",
            bytes.len()
        )),
    }))
}
