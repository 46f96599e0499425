//! How the preprocessed source reaches the compiler's standard input.
//!
//! The source is handed over complete before the compiler starts. A pipe
//! the compiler reads while we still write it costs the daemon a lot: the
//! reader holds the pipe's mutex while it copies, and a write arriving
//! meanwhile spins on that mutex (a quarter of the daemon's CPU on
//! multi-megabyte C++ sources, and gcc's reads of doubling size make the
//! overlap unavoidable). So:
//!
//! - a source that fits in a pipe we may enlarge to its size (an
//!   unprivileged process may go up to /proc/sys/fs/pipe-max-size, 1 MiB
//!   by default) goes in with `vmsplice`: our pages are lent, not copied
//!   (the caller keeps the buffer unchanged until the compiler and its
//!   group are gone), and the write end is closed before the spawn;
//! - a bigger one is copied into a memfd that each worker keeps mapped
//!   from job to job, so its pages are allocated and mapped once rather
//!   than per job; the compiler reads it as a regular file;
//! - should neither work, the pipe takes what it can and the rest is
//!   written as the compiler reads (see `process`).
//!
//! An LZO source is decoded into a buffer each worker keeps from job to
//! job (its pages stay resident: no page faults), then handed over alike.

use std::cell::RefCell;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// What the compiler's stdin is, and what is left for us to write to it.
pub enum SourceFeed {
    /// No source on stdin: /dev/null.
    Null,
    /// The read end for the compiler. `rest`: the write end and the offset
    /// from which the source still has to go in (only when the pipe could
    /// not take it all before the spawn).
    Pipe {
        read: OwnedFd,
        rest: Option<(OwnedFd, usize)>,
    },
    /// A regular file holding the whole source, at offset 0.
    File(OwnedFd),
}

/// Largest decode buffer a worker keeps between jobs.
const KEPT_BUFFER_CAP: usize = 64 * 1024 * 1024;

/// Largest source the kept file holds on to between jobs.
const KEPT_FILE_CAP: usize = 64 * 1024 * 1024;

thread_local! {
    /// Each worker's decode buffer, reused by its next LZO job.
    static DECODE_BUFFER: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    /// Each worker's source file, reused by its next big source.
    static SOURCE_FILE: RefCell<Option<SourceFile>> = const { RefCell::new(None) };
}

impl SourceFeed {
    /// Prepares the compiler's stdin for `data` (None: /dev/null).
    pub fn prepare(data: Option<&[u8]>) -> std::io::Result<SourceFeed> {
        let Some(data) = data.filter(|d| !d.is_empty()) else {
            return Ok(SourceFeed::Null);
        };
        let (read, write) = pipe()?;
        if !enlarge_for(&write, data)
            && let Ok(file) = SOURCE_FILE.with_borrow_mut(|kept| copy_to_kept_file(kept, data))
        {
            return Ok(SourceFeed::File(file));
        }
        let written = fill(&write, data)?;
        let rest = (written < data.len()).then_some((write, written));
        Ok(SourceFeed::Pipe { read, rest })
    }

    /// A default-sized pipe holding what it takes of `data`, the rest left
    /// to write as the reader goes: the path taken when neither enlarging
    /// the pipe nor the kept file works.
    #[cfg(test)]
    pub fn small_pipe(data: &[u8]) -> std::io::Result<SourceFeed> {
        let (read, write) = pipe()?;
        let written = fill(&write, data)?;
        let rest = (written < data.len()).then_some((write, written));
        Ok(SourceFeed::Pipe { read, rest })
    }

    /// The compiler's stdin, and what is still to be written into it.
    pub fn into_parts(self) -> (std::process::Stdio, Option<(OwnedFd, usize)>) {
        match self {
            SourceFeed::Null => (std::process::Stdio::null(), None),
            SourceFeed::Pipe { read, rest } => (read.into(), rest),
            SourceFeed::File(fd) => (fd.into(), None),
        }
    }
}

/// Decodes the LZO stream `wire` (at most `max` bytes out) into the
/// worker's kept buffer, which the caller hands back with
/// [`give_back_buffer`] once the compiler is gone.
pub fn decode_in_kept_buffer(wire: &[u8], max: usize) -> distcc::Result<Vec<u8>> {
    let mut buf = DECODE_BUFFER.with_borrow_mut(std::mem::take);
    buf.clear();
    let len = distcc::compress::decompress_into(wire, max, &mut buf)?;
    // SAFETY: decompress_into wrote the first len bytes.
    unsafe { buf.set_len(len) };
    Ok(buf)
}

/// Keeps `buf` for the worker's next LZO job, unless it is oversized.
pub fn give_back_buffer(buf: Vec<u8>) {
    if buf.capacity() <= KEPT_BUFFER_CAP {
        DECODE_BUFFER.with_borrow_mut(|kept| *kept = buf);
    }
}

/// A pipe, both ends close-on-exec (the child's stdin is dup2'd anyway);
/// our write end is non-blocking, the compiler's read end is not.
fn pipe() -> std::io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills the two descriptors on success.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: both were just returned to us.
    let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    // SAFETY: fcntl on our own descriptor.
    unsafe {
        let fl = libc::fcntl(write.as_raw_fd(), libc::F_GETFL);
        libc::fcntl(write.as_raw_fd(), libc::F_SETFL, fl | libc::O_NONBLOCK);
    }
    Ok((read, write))
}

/// Pages the pipe needs for `data`: vmsplice takes one slot per page the
/// buffer touches.
fn pages_spanned(data: &[u8]) -> usize {
    const PAGE: usize = 4096;
    let start = data.as_ptr() as usize % PAGE;
    (start + data.len()).div_ceil(PAGE)
}

/// The most an unprivileged process may enlarge a pipe to.
const UNPRIVILEGED_PIPE_MAX: libc::c_int = 1024 * 1024;

/// Enlarges the pipe to hold `data` whole if the system lets us (true),
/// else as far as an unprivileged process may (false).
fn enlarge_for(write: &OwnedFd, data: &[u8]) -> bool {
    let need = pages_spanned(data) * 4096;
    if need <= 16 * 4096 {
        return true;
    }
    let want = libc::c_int::try_from(need).unwrap_or(libc::c_int::MAX);
    // SAFETY: fcntl on our own pipe; the kernel rounds up to a power of 2.
    unsafe {
        if libc::fcntl(write.as_raw_fd(), libc::F_SETPIPE_SZ, want) >= want {
            return true;
        }
        libc::fcntl(
            write.as_raw_fd(),
            libc::F_SETPIPE_SZ,
            want.min(UNPRIVILEGED_PIPE_MAX),
        );
    }
    false
}

/// Copies `data` into the worker's kept file (created on first use) and
/// returns a descriptor for the compiler; a file grown past the cap is
/// let go afterwards, so one huge source does not pin memory.
fn copy_to_kept_file(kept: &mut Option<SourceFile>, data: &[u8]) -> std::io::Result<OwnedFd> {
    if kept.is_none() {
        *kept = Some(SourceFile::create()?);
    }
    let file = kept.as_mut().expect("just created");
    file.resize(data.len())?;
    file.bytes_mut().copy_from_slice(data);
    let reader = file.reader();
    if data.len() > KEPT_FILE_CAP {
        *kept = None;
    }
    reader
}

/// Address space each worker's kept file is mapped with: room for the
/// largest source the daemon accepts; pages exist only as far as the file.
const RESERVED: usize = 512 * 1024 * 1024;

/// A memfd mapped once, as large as it may ever grow; its size (what the
/// compiler reads) is set per job.
struct SourceFile {
    fd: OwnedFd,
    base: *mut u8,
    /// The file's size now.
    size: usize,
}

impl SourceFile {
    fn create() -> std::io::Result<SourceFile> {
        // SAFETY: memfd_create with a static name.
        let fd = unsafe { libc::memfd_create(c"distccd-source".as_ptr(), libc::MFD_CLOEXEC) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: just returned to us.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: a fresh shared mapping of our own memfd; pages past the
        // file's end are never touched (the size is set before writes).
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                RESERVED,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_NORESERVE,
                fd.as_raw_fd(),
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        Ok(SourceFile {
            fd,
            base: base.cast(),
            size: 0,
        })
    }

    /// Sets the file's size; pages newly inside it are populated in one
    /// call rather than by a fault each.
    fn resize(&mut self, size: usize) -> std::io::Result<()> {
        if size > RESERVED {
            return Err(std::io::ErrorKind::FileTooLarge.into());
        }
        if size == self.size {
            return Ok(());
        }
        // SAFETY: ftruncate on our own memfd.
        if unsafe { libc::ftruncate(self.fd.as_raw_fd(), size as libc::off_t) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        if size > self.size {
            let from = self.size & !4095;
            // SAFETY: a range inside our mapping and now inside the file.
            // Without MADV_POPULATE_WRITE (before Linux 5.14) the writes
            // fault the pages in instead; a failure to allocate is an
            // error here rather than a SIGBUS later.
            let r = unsafe {
                libc::madvise(
                    self.base.add(from).cast(),
                    size - from,
                    libc::MADV_POPULATE_WRITE,
                )
            };
            let e = std::io::Error::last_os_error();
            if r != 0 && e.raw_os_error() != Some(libc::EINVAL) {
                self.size = size;
                return Err(e);
            }
        }
        self.size = size;
        Ok(())
    }

    fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: the first `size` bytes are mapped and inside the file.
        unsafe { std::slice::from_raw_parts_mut(self.base, self.size) }
    }

    /// A descriptor at offset 0 for the compiler (we only use offset-free
    /// calls on the file).
    fn reader(&self) -> std::io::Result<OwnedFd> {
        // SAFETY: lseek and dup on our own memfd.
        let fd = unsafe {
            libc::lseek(self.fd.as_raw_fd(), 0, libc::SEEK_SET);
            libc::fcntl(self.fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 3)
        };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: just returned to us.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    }
}

impl Drop for SourceFile {
    fn drop(&mut self) {
        // SAFETY: the mapping made in create(), not used after this.
        unsafe { libc::munmap(self.base.cast(), RESERVED) };
    }
}

/// Lends as much of `data` as the pipe takes now; the bytes moved. A
/// short write means the pipe is full: asking again would only lock the
/// pipe while the reader holds it (and spin), so it stops there.
pub fn fill(write: &OwnedFd, data: &[u8]) -> std::io::Result<usize> {
    // Bounded: only an interrupted call is repeated.
    for _ in 0..100 {
        return match lend(write.as_raw_fd(), data) {
            Ok(n) => Ok(n),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Ok(0),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => Err(e),
        };
    }
    Ok(0)
}

/// Moves bytes of `data` into the non-blocking pipe `fd`: `vmsplice`
/// (no copy; the caller keeps `data` unchanged until the reader is gone),
/// or `write` where the kernel cannot splice.
fn lend(fd: i32, data: &[u8]) -> std::io::Result<usize> {
    let iov = libc::iovec {
        iov_base: data.as_ptr() as *mut libc::c_void,
        iov_len: data.len(),
    };
    // SAFETY: vmsplice reads the iovec, which describes memory the caller
    // keeps alive and unchanged until the compiler has exited.
    let n = unsafe { libc::vmsplice(fd, &iov, 1, libc::SPLICE_F_NONBLOCK) };
    if n >= 0 {
        return Ok(n as usize);
    }
    let err = std::io::Error::last_os_error();
    if !matches!(err.raw_os_error(), Some(libc::EINVAL) | Some(libc::ENOSYS)) {
        return Err(err);
    }
    // SAFETY: write from a slice we own.
    let n = unsafe { libc::write(fd, data.as_ptr().cast(), data.len()) };
    if n < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(n as usize)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn read_all(fd: OwnedFd) -> Vec<u8> {
        let mut f = std::fs::File::from(fd);
        let mut v = Vec::new();
        f.read_to_end(&mut v).unwrap();
        v
    }

    /// Everything the compiler would read from `feed`, given `data`.
    fn compiler_reads(feed: SourceFeed, data: &[u8]) -> Vec<u8> {
        match feed {
            SourceFeed::Null => Vec::new(),
            SourceFeed::File(fd) => read_all(fd),
            SourceFeed::Pipe { read, rest } => {
                let writer = rest.map(|(w, at)| {
                    let tail = data[at..].to_vec();
                    std::thread::spawn(move || {
                        let mut f = std::fs::File::from(w);
                        // Blocking for the test's simplicity.
                        unsafe {
                            let fl = libc::fcntl(f.as_raw_fd(), libc::F_GETFL);
                            libc::fcntl(f.as_raw_fd(), libc::F_SETFL, fl & !libc::O_NONBLOCK);
                        }
                        std::io::Write::write_all(&mut f, &tail).unwrap();
                    })
                });
                let got = read_all(read);
                if let Some(w) = writer {
                    w.join().unwrap();
                }
                got
            }
        }
    }

    #[test]
    fn small_source_is_in_the_pipe_before_the_reader_exists() {
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let feed = SourceFeed::prepare(Some(&data)).unwrap();
        assert!(matches!(feed, SourceFeed::Pipe { rest: None, .. }));
        assert_eq!(compiler_reads(feed, &data), data);
    }

    #[test]
    fn big_source_reaches_the_compiler_whole() {
        let big: Vec<u8> = (0..3_000_000u32).map(|i| (i % 241) as u8).collect();
        let feed = SourceFeed::prepare(Some(&big)).unwrap();
        assert_eq!(compiler_reads(feed, &big), big);
    }

    #[test]
    fn kept_file_never_carries_an_earlier_tail() {
        let mut kept = None;
        let first: Vec<u8> = (0..3_000_000u32).map(|i| (i % 241) as u8).collect();
        let fd = copy_to_kept_file(&mut kept, &first).unwrap();
        assert_eq!(read_all(fd), first);
        let second = vec![b'x'; 2_000_000];
        let fd = copy_to_kept_file(&mut kept, &second).unwrap();
        assert_eq!(read_all(fd), second);
        let third: Vec<u8> = (0..2_500_000u32).map(|i| (i % 239) as u8).collect();
        let fd = copy_to_kept_file(&mut kept, &third).unwrap();
        assert_eq!(read_all(fd), third);
    }

    #[test]
    fn kept_buffer_holds_exactly_the_new_source() {
        // Runs on its own thread: the kept buffer is per thread.
        std::thread::spawn(|| {
            let first: Vec<u8> = (0..3_000_000u32).map(|i| (i % 241) as u8).collect();
            let wire = distcc::compress::compress(&first);
            let buf = decode_in_kept_buffer(&wire, 1 << 30).unwrap();
            assert_eq!(buf, first);
            give_back_buffer(buf);
            let second = vec![b'x'; 2_000_000];
            let buf = decode_in_kept_buffer(&distcc::compress::compress(&second), 1 << 30);
            assert_eq!(buf.unwrap(), second);
            // A corrupt stream is refused, and the cap holds.
            assert!(decode_in_kept_buffer(&wire[..wire.len() / 2], 1 << 30).is_err());
            assert!(decode_in_kept_buffer(&wire, 1000).is_err());
        })
        .join()
        .unwrap();
    }

    #[test]
    fn no_source_is_null() {
        assert!(matches!(SourceFeed::prepare(None), Ok(SourceFeed::Null)));
        assert!(matches!(
            SourceFeed::prepare(Some(&[])),
            Ok(SourceFeed::Null)
        ));
    }
}
