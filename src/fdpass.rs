//! Passing one file descriptor along with the bytes of a unix-socket
//! stream (`SCM_RIGHTS`): the include server hands our client the
//! ready-made pump file list this way (`includes::bundle`).
//!
//! A reader that does not ask for descriptors (stock distcc's `read`) gets
//! the bytes alone: the kernel closes the descriptor for it.

use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};

/// Writes the start of `data` with `fd` attached (`SCM_RIGHTS`). A reader
/// that does not ask for descriptors gets the bytes alone (the kernel
/// closes the descriptor for it).
pub fn send_with_fd(
    socket: BorrowedFd<'_>,
    data: &[u8],
    fd: BorrowedFd<'_>,
) -> std::io::Result<usize> {
    let raw = fd.as_raw_fd();
    // SAFETY: CMSG_SPACE only computes a size.
    let space = unsafe { libc::CMSG_SPACE(std::mem::size_of::<libc::c_int>() as u32) } as usize;
    let mut control = vec![0u8; space];
    let mut iov = libc::iovec {
        iov_base: data.as_ptr() as *mut libc::c_void,
        iov_len: data.len(),
    };
    // SAFETY: an all-zero msghdr is valid; the fields are filled below.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = space as _;
    // SAFETY: `msg` describes `control`, which has room for one header and
    // one descriptor (CMSG_SPACE above); the macros stay inside it.
    unsafe {
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        (*cmsg).cmsg_level = libc::SOL_SOCKET;
        (*cmsg).cmsg_type = libc::SCM_RIGHTS;
        (*cmsg).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<libc::c_int>() as u32) as _;
        std::ptr::copy_nonoverlapping(
            (&raw as *const libc::c_int).cast::<u8>(),
            libc::CMSG_DATA(cmsg),
            std::mem::size_of::<libc::c_int>(),
        );
    }
    // SAFETY: sendmsg on our socket with the message built above.
    let n = unsafe { libc::sendmsg(socket.as_raw_fd(), &msg, libc::MSG_NOSIGNAL) };
    if n < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(n as usize)
}

/// One `recvmsg` appending to `buf` (into its spare capacity: nothing is
/// zeroed first, and pages the bytes do not reach stay untouched),
/// accepting one passed descriptor (others, and any when the reply is not
/// ours, are closed). Returns the number of bytes appended.
pub fn recv_with_fd(
    socket: BorrowedFd<'_>,
    buf: &mut Vec<u8>,
) -> std::io::Result<(usize, Option<OwnedFd>)> {
    let spare = buf.spare_capacity_mut();
    // Room for a few descriptors: a surplus is closed, not left open.
    let fd_room = 4 * std::mem::size_of::<libc::c_int>() as u32;
    // SAFETY: CMSG_SPACE only computes a size.
    let space = unsafe { libc::CMSG_SPACE(fd_room) } as usize;
    let mut control = vec![0u8; space];
    // Bounded: only interrupted calls are repeated.
    for _ in 0..1000 {
        let mut iov = libc::iovec {
            iov_base: spare.as_mut_ptr().cast(),
            iov_len: spare.len(),
        };
        // SAFETY: an all-zero msghdr is valid; the fields are set below.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = space as _;
        // SAFETY: recvmsg into the spare capacity and `control`, both
        // described by msg.
        let n = unsafe { libc::recvmsg(socket.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        let mut fds = Vec::new();
        // SAFETY: the CMSG macros walk the control buffer the kernel filled
        // (msg_controllen bytes); each SCM_RIGHTS payload holds descriptors
        // now owned by this process.
        unsafe {
            let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
            while !cmsg.is_null() {
                if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_RIGHTS {
                    let data = libc::CMSG_DATA(cmsg);
                    let bytes = (*cmsg).cmsg_len as usize - (data as usize - cmsg as usize);
                    for i in 0..bytes / std::mem::size_of::<libc::c_int>() {
                        let fd = std::ptr::read_unaligned(
                            data.add(i * std::mem::size_of::<libc::c_int>())
                                .cast::<libc::c_int>(),
                        );
                        fds.push(<OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd));
                    }
                }
                cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
            }
        }
        // One list; anything else is dropped (closed).
        let list = if fds.len() == 1 { fds.pop() } else { None };
        let n = n as usize;
        // SAFETY: the kernel wrote `n` (at most the spare length) bytes
        // into the spare capacity.
        unsafe { buf.set_len(buf.len() + n) };
        return Ok((n, list));
    }
    Err(std::io::ErrorKind::Interrupted.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Seek, Write};
    use std::os::fd::AsFd;
    use std::os::unix::net::UnixStream;

    #[test]
    fn a_descriptor_travels_with_the_first_bytes() {
        let (a, b) = UnixStream::pair().unwrap();
        let mut file =
            std::fs::File::from(crate::includes::bundle::to_memfd(&[], &[], false).unwrap());
        file.write_all(b"payload").unwrap();
        file.rewind().unwrap();
        assert_eq!(send_with_fd(a.as_fd(), b"hello", file.as_fd()).unwrap(), 5);
        let mut buf = Vec::with_capacity(16);
        let (n, fd) = recv_with_fd(b.as_fd(), &mut buf).unwrap();
        assert_eq!((n, &buf[..]), (5, &b"hello"[..]));
        let mut got = String::new();
        std::fs::File::from(fd.expect("a descriptor"))
            .read_to_string(&mut got)
            .unwrap();
        assert!(got.starts_with("payload"), "{got:?}");
        // Plain bytes: no descriptor.
        (&a).write_all(b"more").unwrap();
        let (n, fd) = recv_with_fd(b.as_fd(), &mut buf).unwrap();
        assert_eq!((n, &buf[..], fd.is_none()), (4, &b"hellomore"[..], true));
        // A full buffer takes nothing more (and the bytes wait).
        let mut full = Vec::with_capacity(4);
        full.extend_from_slice(b"abcd");
        (&a).write_all(b"z").unwrap();
        let (n, _) = recv_with_fd(b.as_fd(), &mut full).unwrap();
        assert_eq!((n, &full[..]), (0, &b"abcd"[..]));
        let (n, _) = recv_with_fd(b.as_fd(), &mut buf).unwrap();
        assert_eq!(&buf[buf.len() - n..], b"z");
        // A reader that does not ask gets the bytes only.
        send_with_fd(a.as_fd(), b"x", file.as_fd()).unwrap();
        let mut one = [0u8; 1];
        (&b).read_exact(&mut one).unwrap();
        assert_eq!(&one, b"x");
    }
}
