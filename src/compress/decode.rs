//! Bounded decoder for raw LZO1X streams as distcc sends them (facts §1.4).
//!
//! The `lzo1x` crate's decoder needs the exact output size, which the
//! protocol never carries, so decoding is done here: a decoder that
//! discovers the size as it goes and stops at a hard cap (stock doubles its
//! buffer without bound, a memory-exhaustion hole). It accepts streams of
//! any LZO1X level. Sits under `compress::decompress`.
//!
//! Speed matters (the daemon decodes every LZO source and pump file, the
//! client every object), so the copies are done the way fast LZ decoders
//! do them: the output keeps [`SLACK`] spare bytes of capacity, short
//! literal runs and matches are moved as whole 16-byte blocks (the bytes
//! written past the run are garbage that the next instruction overwrites
//! or that stays beyond the final length), and matches are copied in
//! blocks no longer than their distance. Every read of the input and of
//! earlier output is checked before it happens; the `unsafe` blocks only
//! do copies whose bounds were checked just above them.

use crate::error::{Error, Kind, Result};
use std::ptr;

/// Spare capacity kept beyond the output, for block copies.
const SLACK: usize = 32;

/// Decompresses a raw LZO1X stream (any LZO1X level), refusing to produce more
/// than `max_output` bytes. Empty input is an empty payload.
pub fn decompress(src: &[u8], max_output: usize) -> Result<Vec<u8>> {
    if src.is_empty() {
        return Ok(Vec::new());
    }
    let guess = src.len().saturating_mul(4).min(max_output);
    let mut out = Vec::with_capacity(guess + SLACK);
    let mut w = Writer {
        base: out.as_mut_ptr(),
        len: 0,
        cap: out.capacity(),
        max: max_output,
    };
    let result = run(src, &mut w, &mut out);
    // SAFETY: the first w.len bytes of out's buffer were written by run().
    unsafe { out.set_len(w.len) };
    result.map(|()| out)
}

fn corrupt(what: &str) -> Error {
    Error::new(Kind::Io, format!("corrupt LZO stream: {what}"))
}

fn too_big(max: usize) -> Error {
    Error::new(
        Kind::OutOfMemory,
        format!("LZO payload expands beyond the limit of {max} bytes"),
    )
}

/// The output, as locals the optimiser can keep in registers: the
/// buffer's start, the bytes written, its capacity (always at least
/// `len + SLACK`), and the cap.
struct Writer {
    base: *mut u8,
    len: usize,
    cap: usize,
    max: usize,
}

impl Writer {
    /// Makes room for `n` more bytes plus the slack, growing `out`.
    #[inline(always)]
    fn room(&mut self, n: usize, out: &mut Vec<u8>) -> Result<()> {
        if n > self.max - self.len {
            return Err(too_big(self.max));
        }
        if self.cap - self.len < n + SLACK {
            self.grow(n, out);
        }
        Ok(())
    }

    #[cold]
    fn grow(&mut self, n: usize, out: &mut Vec<u8>) {
        let want = (self.len + n).max(self.cap * 2).min(self.max);
        // SAFETY: the first len bytes are initialised; reserve keeps them.
        unsafe { out.set_len(self.len) };
        out.reserve(want - self.len + SLACK);
        self.base = out.as_mut_ptr();
        self.cap = out.capacity();
    }
}

/// Reads one byte of input.
macro_rules! next {
    ($src:ident, $ip:ident) => {{
        let Some(&b) = $src.get($ip) else {
            return Err(corrupt("truncated"));
        };
        $ip += 1;
        usize::from(b)
    }};
}

/// A run length continued in extra bytes: each zero adds 255, then the
/// first non-zero byte is added.
#[inline(always)]
fn extended(src: &[u8], ip: &mut usize, base: usize, max: usize) -> Result<usize> {
    let mut len = base;
    loop {
        let Some(&b) = src.get(*ip) else {
            return Err(corrupt("truncated"));
        };
        *ip += 1;
        if b != 0 {
            return Ok(len + usize::from(b));
        }
        len += 255;
        if len > max {
            return Err(corrupt("run length too long"));
        }
    }
}

/// The length and the 16-bit distance word of an M3 or M4 match: the
/// length is 2 plus the instruction's low bits `low`, or, when they are 0,
/// `mask` plus the extension bytes that follow; then the word, low byte first.
#[inline(always)]
fn long_match(
    src: &[u8],
    ip: &mut usize,
    low: usize,
    mask: usize,
    max: usize,
) -> Result<(usize, usize)> {
    let len = 2 + if low == 0 {
        extended(src, ip, mask, max)?
    } else {
        low
    };
    let word = src.get(*ip..*ip + 2).ok_or_else(|| corrupt("truncated"))?;
    *ip += 2;
    Ok((len, usize::from(word[0]) | usize::from(word[1]) << 8))
}

/// Copies `n` literal bytes from `src[*ip..]`.
#[inline(always)]
fn literals(src: &[u8], ip: &mut usize, n: usize, w: &mut Writer, out: &mut Vec<u8>) -> Result<()> {
    let left = src.len() - *ip;
    if n > left {
        return Err(corrupt("literal run past end of input"));
    }
    w.room(n, out)?;
    // SAFETY: the input has n bytes at ip (checked above) and room() left
    // n + SLACK bytes of capacity at len. The 16-byte block copy is used
    // only when 16 input bytes exist and n <= 16 < SLACK.
    unsafe {
        let from = src.as_ptr().add(*ip);
        let to = w.base.add(w.len);
        if n <= 16 && left >= 16 {
            ptr::copy_nonoverlapping(from, to, 16);
        } else {
            ptr::copy_nonoverlapping(from, to, n);
        }
    }
    *ip += n;
    w.len += n;
    Ok(())
}

/// Copies the 0 to 3 literals that follow a match. Where 16 input bytes
/// remain, one 16-byte block is copied whatever the count, so there is no
/// branch on it to mispredict.
#[inline(always)]
fn trailing_literals(
    src: &[u8],
    ip: &mut usize,
    n: usize,
    w: &mut Writer,
    out: &mut Vec<u8>,
) -> Result<()> {
    if src.len() - *ip < 16 {
        return if n > 0 {
            literals(src, ip, n, w, out)
        } else {
            Ok(())
        };
    }
    if n > w.max - w.len {
        return Err(too_big(w.max));
    }
    // SAFETY: 16 input bytes exist at ip (checked above); copy_match left
    // at least SLACK (> 16) bytes of capacity past len.
    unsafe { ptr::copy_nonoverlapping(src.as_ptr().add(*ip), w.base.add(w.len), 16) };
    *ip += n;
    w.len += n;
    Ok(())
}

/// Copies `n` bytes from `distance` bytes back in the output.
#[inline(always)]
fn copy_match(distance: usize, n: usize, w: &mut Writer, out: &mut Vec<u8>) -> Result<()> {
    if distance == 0 || distance > w.len {
        return Err(corrupt("match reaches before start of output"));
    }
    w.room(n, out)?;
    // SAFETY: the source starts `distance` (1..=len) bytes back inside the
    // written output; room() left n + SLACK bytes of capacity. Blocks of B
    // bytes are used only when distance >= B, so a block's source lies
    // wholly before its destination (already written, not overlapping it);
    // the last block writes at most B - 1 < SLACK bytes past n, and the two
    // first blocks of a match with distance >= 16 at most 30 < SLACK.
    unsafe {
        let mut to = w.base.add(w.len);
        let mut from = to.sub(distance);
        let end = to.add(n);
        if distance >= 16 {
            // Most matches are at most 32 bytes: two blocks without a loop
            // branch to mispredict (each block's source ends before its
            // destination starts, as distance >= 16).
            ptr::copy_nonoverlapping(from, to, 16);
            ptr::copy_nonoverlapping(from.add(16), to.add(16), 16);
            if n > 32 {
                to = to.add(32);
                from = from.add(32);
                while to < end {
                    ptr::copy_nonoverlapping(from, to, 16);
                    to = to.add(16);
                    from = from.add(16);
                }
            }
        } else if distance >= 8 {
            while to < end {
                ptr::copy_nonoverlapping(from, to, 8);
                to = to.add(8);
                from = from.add(8);
            }
        } else if distance == 1 {
            ptr::write_bytes(to, *from, n);
        } else {
            while to < end {
                *to = *from;
                to = to.add(1);
                from = from.add(1);
            }
        }
    }
    w.len += n;
    Ok(())
}

fn run(src: &[u8], w: &mut Writer, out: &mut Vec<u8>) -> Result<()> {
    let max = w.max;
    let mut ip = 0usize;
    // `state`: literals copied by the previous instruction (4 = four or more).
    let mut state = 0usize;
    if src[0] > 17 {
        ip = 1;
        let n = usize::from(src[0]) - 17;
        literals(src, &mut ip, n, w, out)?;
        state = n.min(4);
    }
    loop {
        let inst = next!(src, ip);
        let (distance, len, trailing) = if inst >= 64 {
            let h = next!(src, ip);
            let len = if inst >= 128 {
                5 + ((inst >> 5) & 3)
            } else {
                3 + ((inst >> 5) & 1)
            };
            ((h << 3) + ((inst >> 2) & 7) + 1, len, inst & 3)
        } else if inst >= 32 {
            let (len, d) = long_match(src, &mut ip, inst & 31, 31, max)?;
            ((d >> 2) + 1, len, d & 3)
        } else if inst >= 16 {
            let (len, d) = long_match(src, &mut ip, inst & 7, 7, max)?;
            let distance = 16384 + ((inst & 8) << 11) + (d >> 2);
            if distance == 16384 {
                // End of stream marker: it must be the last thing.
                if ip != src.len() {
                    return Err(corrupt("data after end marker"));
                }
                return Ok(());
            }
            (distance, len, d & 3)
        } else {
            match state {
                0 => {
                    let len = if inst == 0 {
                        extended(src, &mut ip, 15, max)?
                    } else {
                        inst
                    } + 3;
                    literals(src, &mut ip, len, w, out)?;
                    state = 4;
                    continue;
                }
                1..=3 => {
                    let h = next!(src, ip);
                    ((h << 2) + ((inst >> 2) & 3) + 1, 2, inst & 3)
                }
                _ => {
                    let h = next!(src, ip);
                    ((h << 2) + ((inst >> 2) & 3) + 2049, 3, inst & 3)
                }
            }
        };
        copy_match(distance, len, w, out)?;
        trailing_literals(src, &mut ip, trailing, w, out)?;
        state = trailing;
    }
}
