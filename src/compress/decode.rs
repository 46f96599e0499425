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
//! blocks no longer than their distance.
//!
//! Most instructions go through a fast loop (`fast`) that checks its input
//! and output margins once per instruction instead of once per read and
//! copy, and decodes the two commonest instructions (M2 and short M3)
//! without a branch between them; anything longer or rarer goes to the
//! general decoder. Every read of the input and of earlier output is
//! checked before it happens; the `unsafe` blocks only do copies whose
//! bounds were checked just above them. A plain byte-at-a-time decoder in
//! the tests must agree with this one on valid and damaged streams.

use crate::error::{Error, Kind, Result};
use std::ptr;

/// Spare capacity kept beyond the output, for block copies.
const SLACK: usize = 32;

/// Decompresses a raw LZO1X stream (any LZO1X level), refusing to produce more
/// than `max_output` bytes. Empty input is an empty payload.
pub fn decompress(src: &[u8], max_output: usize) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    decompress_into(src, max_output, &mut out)?;
    Ok(out)
}

/// Like [`decompress`], into `out` (cleared first), reusing its capacity: a
/// long-running caller that keeps the buffer between payloads pays for
/// neither its growth nor the page faults of fresh memory.
pub fn decompress_into(src: &[u8], max_output: usize, out: &mut Vec<u8>) -> Result<()> {
    out.clear();
    if src.is_empty() {
        return Ok(());
    }
    // Source text expands about fourfold; a buffer kept from a bigger
    // payload already has the room.
    let guess = src.len().saturating_mul(4).min(max_output);
    out.reserve(guess + SLACK);
    let mut w = Writer {
        base: out.as_mut_ptr(),
        len: 0,
        cap: out.capacity(),
        max: max_output,
    };
    let result = run(src, &mut w, out);
    // SAFETY: the first w.len bytes of out's buffer were written by run(),
    // and on error they are discarded below.
    unsafe { out.set_len(if result.is_ok() { w.len } else { 0 }) };
    result
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

/// Copies `n` bytes to `to` from `distance` bytes before it, as LZ77
/// matches do (an overlapping source repeats the bytes just written).
///
/// # Safety
/// `to - distance` must lie in the written output (distance >= 1), and
/// `n + SLACK` bytes of capacity must follow `to`. Blocks of B bytes are
/// used only when distance >= B, so a block's source lies wholly before its
/// destination (already written, not overlapping it); the last block writes
/// at most B - 1 < SLACK bytes past n, and the two first blocks of a match
/// with distance >= 16 at most 30 < SLACK.
#[inline(always)]
unsafe fn copy_back(to: *mut u8, distance: usize, n: usize) {
    // SAFETY: as the caller guarantees (above).
    unsafe {
        let mut to = to;
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
}

/// Copies `n` bytes from `distance` bytes back in the output.
#[inline(always)]
fn copy_match(distance: usize, n: usize, w: &mut Writer, out: &mut Vec<u8>) -> Result<()> {
    if distance == 0 || distance > w.len {
        return Err(corrupt("match reaches before start of output"));
    }
    w.room(n, out)?;
    // SAFETY: distance is 1..=len, so the source lies in the written
    // output; room() left n + SLACK bytes of capacity.
    unsafe { copy_back(w.base.add(w.len), distance, n) };
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
        // Most instructions go through the fast loop; it stops before one it
        // leaves to the general decoder below (a long run, the end marker,
        // or too little input or output room left for its margins).
        fast(src, &mut ip, &mut state, w)?;
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

/// Input the fast loop needs ahead of an instruction: the instruction and
/// its two distance bytes, then a 4-byte copy of trailing literals, or a
/// literal run of up to 18 bytes copied as two 16-byte blocks.
const FAST_INPUT: usize = 40;
/// Output room (capacity and cap alike) the fast loop needs: an instruction
/// there produces at most 33 + 3 bytes, and its block copies reach at most
/// 48 bytes past the current length.
const FAST_OUTPUT: usize = 96;

/// Decodes the common short instructions while both margins hold, with one
/// check of the margins per instruction instead of one per read and copy.
/// Stops, consuming nothing, at an instruction it leaves to the general
/// decoder (extended lengths, the end marker), or when a margin runs out.
#[inline(always)]
fn fast(src: &[u8], ip_out: &mut usize, state_out: &mut usize, w: &mut Writer) -> Result<()> {
    let base = w.base;
    let mut op = w.len;
    let mut ip = *ip_out;
    let mut state = *state_out;
    // The smaller of the capacity and the cap, so one margin check covers
    // both: physical writes stay below cap, the length below max.
    let out_end = w.cap.min(w.max);
    let result = loop {
        if src.len() - ip < FAST_INPUT || out_end.saturating_sub(op) < FAST_OUTPUT {
            break Ok(());
        }
        // SAFETY (for every access below): the FAST_INPUT bytes at ip exist,
        // and an instruction reads at most 3 of them before its 4-byte
        // trailing copy, or 1 + 32 for a literal run; the output has
        // FAST_OUTPUT bytes of capacity at op, and a match's source lies
        // within the written output (distance checked against op first).
        unsafe {
            let i = src.as_ptr().add(ip);
            let inst = usize::from(*i);
            let (distance, len, trailing, used) = if inst >= 32 {
                // M2 (inst >= 64) and M3 are both common in source text
                // and follow each other in no predictable order: both
                // decodings are computed and one is picked with masks,
                // leaving no branch between them to mispredict.
                let b1 = usize::from(*i.add(1));
                let d = b1 | usize::from(*i.add(2)) << 8;
                let m2 = (usize::from(inst >= 64)).wrapping_neg();
                let pick = |a: usize, b: usize| (a & m2) | (b & !m2);
                let low = inst & 31;
                if low == 0 && m2 == 0 {
                    break Ok(());
                }
                (
                    pick((b1 << 3) + ((inst >> 2) & 7), d >> 2) + 1,
                    pick((inst >> 5) + 1, low + 2),
                    pick(inst, d) & 3,
                    3 - (m2 & 1),
                )
            } else if inst >= 16 {
                let low = inst & 7;
                let d = usize::from(*i.add(1)) | usize::from(*i.add(2)) << 8;
                let distance = 16384 + ((inst & 8) << 11) + (d >> 2);
                if low == 0 || distance == 16384 {
                    break Ok(());
                }
                (distance, low + 2, d & 3, 3)
            } else if state == 0 {
                if inst == 0 {
                    break Ok(());
                }
                // A literal run of 4 to 18 bytes, as two 16-byte blocks.
                let n = inst + 3;
                let to = base.add(op);
                ptr::copy_nonoverlapping(i.add(1), to, 16);
                ptr::copy_nonoverlapping(i.add(17), to.add(16), 16);
                ip += 1 + n;
                op += n;
                state = 4;
                continue;
            } else {
                let h = usize::from(*i.add(1));
                let far = if state < 4 { 1 } else { 2049 };
                let len = if state < 4 { 2 } else { 3 };
                ((h << 2) + ((inst >> 2) & 3) + far, len, inst & 3, 2)
            };
            if distance > op {
                break Err(corrupt("match reaches before start of output"));
            }
            copy_back(base.add(op), distance, len);
            op += len;
            ip += used;
            // 0 to 3 trailing literals, copied as one 4-byte block.
            ptr::copy_nonoverlapping(src.as_ptr().add(ip), base.add(op), 4);
            ip += trailing;
            op += trailing;
            state = trailing;
        }
    };
    *ip_out = ip;
    *state_out = state;
    w.len = op;
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The format decoded the plainest way, one byte at a time: what the
    /// fast decoder must agree with, result for result.
    fn reference(src: &[u8], max: usize) -> Option<Vec<u8>> {
        if src.is_empty() {
            return Some(Vec::new());
        }
        let mut out: Vec<u8> = Vec::new();
        let mut ip = 0;
        let byte = |ip: &mut usize| -> Option<usize> {
            let b = *src.get(*ip)?;
            *ip += 1;
            Some(usize::from(b))
        };
        let extend = |ip: &mut usize, base: usize| -> Option<usize> {
            let mut n = base;
            loop {
                let b = byte(ip)?;
                if b != 0 {
                    return Some(n + b);
                }
                n += 255;
                if n > max {
                    return None;
                }
            }
        };
        let copy_literals = |out: &mut Vec<u8>, ip: &mut usize, n: usize| -> Option<()> {
            let run = src.get(*ip..*ip + n)?;
            if out.len() + n > max {
                return None;
            }
            out.extend_from_slice(run);
            *ip += n;
            Some(())
        };
        let mut state = 0;
        if src[0] > 17 {
            ip = 1;
            let n = usize::from(src[0]) - 17;
            copy_literals(&mut out, &mut ip, n)?;
            state = n.min(4);
        }
        loop {
            let inst = byte(&mut ip)?;
            let (distance, len, trailing);
            if inst >= 64 {
                let h = byte(&mut ip)?;
                distance = (h << 3) + ((inst >> 2) & 7) + 1;
                len = (inst >> 5) + 1;
                trailing = inst & 3;
            } else if inst >= 16 {
                let (mask, low) = if inst >= 32 {
                    (31, inst & 31)
                } else {
                    (7, inst & 7)
                };
                len = 2 + if low == 0 {
                    extend(&mut ip, mask)?
                } else {
                    low
                };
                let d = byte(&mut ip)? | byte(&mut ip)? << 8;
                trailing = d & 3;
                distance = if inst >= 32 {
                    (d >> 2) + 1
                } else {
                    let far = 16384 + ((inst & 8) << 11) + (d >> 2);
                    if far == 16384 {
                        return (ip == src.len()).then_some(out);
                    }
                    far
                };
            } else if state == 0 {
                let n = 3 + if inst == 0 {
                    extend(&mut ip, 15)?
                } else {
                    inst
                };
                copy_literals(&mut out, &mut ip, n)?;
                state = 4;
                continue;
            } else {
                let h = byte(&mut ip)?;
                let (far, l) = if state < 4 { (1, 2) } else { (2049, 3) };
                distance = (h << 2) + ((inst >> 2) & 3) + far;
                len = l;
                trailing = inst & 3;
            }
            if distance == 0 || distance > out.len() || out.len() + len > max {
                return None;
            }
            for _ in 0..len {
                out.push(out[out.len() - distance]);
            }
            copy_literals(&mut out, &mut ip, trailing)?;
            state = trailing;
        }
    }

    fn next(seed: &mut u64) -> usize {
        *seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (*seed >> 33) as usize
    }

    /// Text with short and long repeats at all distances, runs and noise.
    fn corpus(n: usize, seed: &mut u64) -> Vec<u8> {
        let mut v: Vec<u8> = Vec::with_capacity(n + 64);
        while v.len() < n {
            match next(seed) % 6 {
                0 => v.extend((0..next(seed) % 40).map(|_| next(seed) as u8)),
                1 => v.extend(std::iter::repeat_n(b' ', next(seed) % 300)),
                2 | 3 if v.len() > 8 => {
                    let from = v.len() - 1 - next(seed) % v.len().min(60_000);
                    let len = (next(seed) % 70 + 2).min(v.len() - from);
                    v.extend_from_within(from..from + len);
                }
                _ => v.extend_from_slice(b"static inline int f(void);\n"),
            }
        }
        v.truncate(n);
        v
    }

    #[test]
    fn agrees_with_the_plain_decoder_on_valid_and_damaged_streams() {
        let mut seed = 7;
        for round in 0..60 {
            let n = [1, 5, 40, 300, 5000, 70_000][round % 6] + next(&mut seed) % 50;
            let data = corpus(n, &mut seed);
            let level = [1u8, 9][round % 2];
            for c in [
                crate::compress::compress(&data),
                lzo1x::compress(&data, lzo1x::CompressLevel::new(level)),
            ] {
                for max in [data.len(), data.len().saturating_sub(1), data.len() + 100] {
                    let ours = decompress(&c, max).ok();
                    assert_eq!(ours, reference(&c, max), "round {round}, max {max}");
                    assert_eq!(ours.is_some(), max >= data.len());
                }
                for _ in 0..40 {
                    let mut junk = c.clone();
                    for _ in 0..1 + next(&mut seed) % 4 {
                        let i = next(&mut seed) % junk.len();
                        junk[i] = next(&mut seed) as u8;
                    }
                    if next(&mut seed).is_multiple_of(4) {
                        junk.truncate(next(&mut seed) % junk.len() + 1);
                    }
                    let max = data.len() + 64;
                    assert_eq!(decompress(&junk, max).ok(), reference(&junk, max));
                }
            }
        }
    }
}
