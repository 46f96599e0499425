//! LZO1X-1 compressor, byte-identical to liblzo2's `lzo1x_1_compress`.
//!
//! distcc puts raw LZO1X streams on the wire (facts §1.4); stock compresses
//! with `lzo1x_1_compress`, and producing the very same bytes keeps our
//! requests and replies indistinguishable from stock's. This is the hot path
//! of the client in lzo mode (source text), of distccd (object replies) and of
//! the include server (`.lzo` copies), so it is written for speed in safe
//! Rust: a per-thread worst-case output buffer that is never re-zeroed
//! (inputs up to about 4 MB; larger ones get a fresh buffer), a fixed-size
//! hash table reused per thread, unaligned little-endian word loads,
//! positions relative to the block so most bounds checks fold away, and short
//! literal runs copied as one 16-byte chunk. About half of all probes on
//! source text find a match, in no predictable pattern, so the decisions
//! that follow a match are made without branches where they are common:
//! the length of a short literal run, the M2 or M3 form of the token, and
//! the length of a match of up to 27 bytes (three 8-byte comparisons whose
//! results are combined with conditional moves). The result is copied out at
//! its exact size.
//!
//! The algorithm: the input is cut into blocks of 49152 bytes (so every match
//! offset fits the 0xbfff maximum); each block hashes the 4 bytes at each
//! probed position (multiplicative hash, 14 bits) into a table of offsets
//! from the block start. A probe whose stored position holds the same 4 bytes
//! is a match, extended 8 bytes at a time; otherwise the probe advances by
//! `1 + (distance since the last match) / 32`, skipping faster through data
//! that does not compress. Literals left at the end of a block carry over to
//! the next one; the last ones are written before the `11 00 00` end marker.

use std::cell::RefCell;
use std::hint::select_unpredictable;

/// Hash table size in bits (liblzo2's `D_BITS` for LZO1X-1).
const D_BITS: u32 = 14;
const DICT_SIZE: usize = 1 << D_BITS;
/// Input is compressed in blocks of this size (offsets stay ≤ 0xbfff).
const BLOCK_LEN: usize = 49152;
/// Blocks of at most this many bytes are left as literals.
const MIN_BLOCK: usize = 20;
const HASH_MUL: u32 = 0x1824_429d;

const M2_MAX_LEN: usize = 8;
const M2_MAX_OFFSET: usize = 0x0800;
const M3_MAX_LEN: usize = 33;
const M3_MAX_OFFSET: usize = 0x4000;
const M4_MAX_LEN: usize = 9;
const M3_MARKER: u8 = 32;
const M4_MARKER: u8 = 16;

/// Offsets (from the block start) of the last position seen per hash.
type Dict = [u16; DICT_SIZE];

/// Output scratch buffers up to this size are kept per thread between calls.
const KEEP_SCRATCH: usize = 4 << 20;

/// Per-thread working memory: the hash table, and an output buffer of
/// worst-case size that is written in place and never needs re-zeroing
/// (only bytes written by the current call are ever read back).
struct Work {
    dict: Box<Dict>,
    scratch: Vec<u8>,
}

thread_local! {
    static WORK: RefCell<Work> = RefCell::new(Work {
        dict: Box::new([0; DICT_SIZE]),
        scratch: Vec::new(),
    });
}

/// Largest stream `compress` can produce for `n` input bytes.
pub fn worst_case(n: usize) -> usize {
    n + n / 16 + 64 + 3
}

/// An LZO1X-1 stream held in a worst-case-sized buffer that goes back to
/// this thread's scratch when dropped (so a later compression reuses its
/// pages): a caller can keep it a while, do other work and send it from
/// where it lies.
pub struct Stream {
    buf: Vec<u8>,
    len: usize,
}

impl std::ops::Deref for Stream {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        let buf = std::mem::take(&mut self.buf);
        if buf.len() > KEEP_SCRATCH {
            return;
        }
        // Kept if it is larger than what the thread holds now.
        let _ = WORK.try_with(|cell| {
            if let Ok(mut work) = cell.try_borrow_mut()
                && work.scratch.len() < buf.len()
            {
                work.scratch = buf;
            }
        });
    }
}

/// Compresses `src` into a [`Stream`] the caller owns: in this thread's
/// scratch buffer when the stream may fit the kept size, else in a fresh
/// one (the scratch stays). Empty input gives an empty stream.
pub fn compress_owned(src: &[u8]) -> Stream {
    if src.is_empty() {
        return Stream {
            buf: Vec::new(),
            len: 0,
        };
    }
    let bound = worst_case(src.len());
    WORK.with(|cell| match cell.try_borrow_mut() {
        Ok(mut work) => {
            let Work { dict, scratch } = &mut *work;
            let mut buf = if bound > KEEP_SCRATCH {
                Vec::new()
            } else {
                std::mem::take(scratch)
            };
            if buf.len() < bound {
                // A fresh zeroed allocation, not a resize: the old bytes
                // need no copying, and a large one comes from calloc as
                // untouched pages, so a one-shot caller (the client) only
                // faults in the pages the stream actually fills.
                buf = vec![0; bound];
            }
            let len = encode(src, &mut buf, dict);
            Stream { buf, len }
        }
        // Unreachable (nothing re-enters), but never panic for it.
        Err(_) => {
            let mut buf = vec![0; bound];
            let len = encode(src, &mut buf, &mut Box::new([0; DICT_SIZE]));
            Stream { buf, len }
        }
    })
}

/// Appends the LZO1X-1 stream for `src` to `out` (nothing for empty input).
pub fn compress_into(src: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(&compress_owned(src));
}

/// Returns the LZO1X-1 stream for `src` (empty for empty input).
pub fn compress(src: &[u8]) -> Vec<u8> {
    compress_owned(src).to_vec()
}

fn load32(src: &[u8], at: usize) -> u32 {
    let w: [u8; 4] = src[at..at + 4].try_into().unwrap_or([0; 4]);
    u32::from_le_bytes(w)
}

fn load64(src: &[u8], at: usize) -> u64 {
    let w: [u8; 8] = src[at..at + 8].try_into().unwrap_or([0; 8]);
    u64::from_le_bytes(w)
}

/// Compresses all of `src` into `dst` (at least `worst_case` long, contents
/// irrelevant); returns the number of bytes written.
fn encode(src: &[u8], dst: &mut [u8], dict: &mut Dict) -> usize {
    let mut op = 0;
    let mut start = 0;
    let mut left = src.len();
    // Literals not yet written, ending at `start`.
    let mut pending = 0;
    while left > MIN_BLOCK {
        let len = left.min(BLOCK_LEN);
        if (pending + len) >> 5 == 0 {
            break;
        }
        dict.fill(0);
        (pending, op) = encode_block(src, start, len, pending, dst, op, dict);
        start += len;
        left -= len;
    }
    pending += left;
    if pending > 0 {
        let from = src.len() - pending;
        if op == 0 && pending <= 238 {
            dst[0] = 17 + pending as u8;
            op = 1;
        } else {
            op = literal_run_header(dst, op, pending);
        }
        dst[op..op + pending].copy_from_slice(&src[from..]);
        op += pending;
    }
    dst[op..op + 3].copy_from_slice(&[M4_MARKER | 1, 0, 0]);
    op + 3
}

/// Writes the header announcing `t` literals (t > 0) after a match or at the
/// stream start; returns the new output position.
#[inline(always)]
fn literal_run_header(dst: &mut [u8], mut op: usize, t: usize) -> usize {
    if t <= 3 {
        // Carried in the low bits of the previous match's last-but-one byte.
        dst[op - 2] |= t as u8;
    } else if t <= 18 {
        dst[op] = (t - 3) as u8;
        op += 1;
    } else {
        dst[op] = 0;
        op = long_length(dst, op + 1, t - 18);
    }
    op
}

/// Writes the extension bytes for a length `rest` > 0 beyond what the
/// instruction byte holds (each zero byte stands for 255 more); returns the
/// new output position.
#[inline(always)]
fn long_length(dst: &mut [u8], op: usize, rest: usize) -> usize {
    let zeros = (rest - 1) / 255;
    let end = op + zeros;
    dst[op..end].fill(0);
    dst[end] = (rest - zeros * 255) as u8;
    end + 1
}

/// Compresses the block `src[start..start + len]`, with `carried` literals
/// before it still unwritten. Returns the literals left unwritten at the
/// block's end and the new output position.
fn encode_block(
    src: &[u8],
    start: usize,
    len: usize,
    carried: usize,
    dst: &mut [u8],
    mut op: usize,
    dict: &mut Dict,
) -> (usize, usize) {
    // Positions below are relative to the block start (as the table's are),
    // except `lit`, the absolute start of the literals not yet written.
    let blk = &src[start..start + len];
    if blk.len() <= MIN_BLOCK {
        return (carried + len, op);
    }
    let limit = blk.len() - MIN_BLOCK;
    let mut lit = start - carried;
    // Where the skip heuristic counts from: the end of the last match.
    let mut ii = 0;
    let mut ip = 4usize.saturating_sub(carried);
    ip += 1 + (ip >> 5);

    'block: loop {
        // Find the next position whose 4 bytes occurred at its hashed slot.
        let m = loop {
            if ip >= limit {
                break 'block;
            }
            let dv = load32(blk, ip);
            let h = (dv.wrapping_mul(HASH_MUL) >> (32 - D_BITS)) as usize;
            let m = usize::from(dict[h]);
            dict[h] = ip as u16;
            if dv == load32(blk, m) {
                break m;
            }
            ip += 1 + ((ip - ii) >> 5);
        };

        // Literals since the last match (plus any carried from before).
        let t = start + ip - lit;
        if t <= 16 && op + 20 <= dst.len() {
            // The common short run (none at all when matches follow each
            // other), written without branches on `t`: a run of up to 3
            // rides in the previous match's low bits (`t <= 3` implies a
            // match was written, so `op >= 2`; for longer runs that byte is
            // or-ed with 0), otherwise a header byte `t - 3` is kept. Then one
            // fixed-size copy; bytes past `t` are overwritten later.
            // `lit + 16 < start + len` holds as `ip < limit`.
            let small = t <= 3;
            dst[op.saturating_sub(2)] |= select_unpredictable(small, t as u8, 0);
            dst[op] = (t as u8).wrapping_sub(3);
            op += usize::from(!small);
            dst[op..op + 16].copy_from_slice(&src[lit..lit + 16]);
            op += t;
        } else {
            op = literal_run_header(dst, op, t);
            dst[op..op + t].copy_from_slice(&src[lit..lit + t]);
            op += t;
        }

        // Extend the match 8 bytes at a time, stopping once the match
        // reaches `limit` (the first 8 bytes are always compared). Every read
        // ends before `limit + 12`, so the windows below bound them all.
        // Matches of up to 27 bytes, most of them, are measured from three
        // chunks without a branch between them.
        let here = &blk[ip..limit + 12];
        let there = &blk[m..m + here.len()];
        let chunk =
            |at: usize| (load64(here, at) ^ load64(there, at)).trailing_zeros() as usize / 8;
        let mlen = if here.len() >= 36 {
            let (l1, l2, l3) = (4 + chunk(4), 12 + chunk(12), 20 + chunk(20));
            let mlen = select_unpredictable(l1 < 12, l1, select_unpredictable(l2 < 20, l2, l3));
            if mlen == 28 && mlen + 12 < here.len() {
                extend_match(here, there, mlen)
            } else {
                mlen
            }
        } else {
            extend_match(here, there, 4)
        };

        let off = ip - m;
        ip += mlen;
        ii = ip;
        lit = start + ip;
        op = match_token(dst, op, mlen, off);
    }
    (start + len - lit, op)
}

/// Extends a match known to be `mlen` bytes long 8 bytes at a time, always
/// comparing at least once, and stopping once it reaches `here.len() - 12`
/// (`limit`).
#[inline(always)]
fn extend_match(here: &[u8], there: &[u8], mut mlen: usize) -> usize {
    loop {
        let v = load64(here, mlen) ^ load64(there, mlen);
        if v != 0 {
            return mlen + (v.trailing_zeros() / 8) as usize;
        }
        mlen += 8;
        // Same as `ip + mlen >= limit`.
        if mlen + 12 >= here.len() {
            return mlen;
        }
    }
}

/// Writes one match of `mlen` (≥ 4) bytes at distance `off` (1..=0xbfff);
/// returns the new output position.
#[inline(always)]
fn match_token(dst: &mut [u8], op: usize, mlen: usize, off: usize) -> usize {
    if mlen <= M3_MAX_LEN && off <= M3_MAX_OFFSET {
        // M2 and short M3 matches are both common and interleave
        // unpredictably: both encodings are computed and one is picked
        // without a branch, then written as one 4-byte store (the byte past
        // the token is overwritten later) unless the buffer ends sooner.
        let o = (off - 1) as u32;
        let len = mlen as u32;
        let m2 = ((len - 1) << 5) | ((o & 7) << 2) | ((o >> 3) << 8);
        let m3 = u32::from(M3_MARKER) | (len - 2) | ((o << 2) & 0xff) << 8 | (o >> 6) << 16;
        let is_m2 = (mlen <= M2_MAX_LEN) & (off <= M2_MAX_OFFSET);
        let word = select_unpredictable(is_m2, m2, m3).to_le_bytes();
        let n = 3 - usize::from(is_m2);
        if op + 4 <= dst.len() {
            dst[op..op + 4].copy_from_slice(&word);
        } else {
            dst[op..op + n].copy_from_slice(&word[..n]);
        }
        return op + n;
    }
    let (marker, o, max) = if off <= M3_MAX_OFFSET {
        (M3_MARKER, off - 1, M3_MAX_LEN)
    } else {
        let o = off - 0x4000;
        (M4_MARKER | ((o >> 11) & 8) as u8, o, M4_MAX_LEN)
    };
    let op = if mlen <= max {
        dst[op] = marker | (mlen - 2) as u8;
        op + 1
    } else {
        dst[op] = marker;
        long_length(dst, op + 1, mlen - max)
    };
    dst[op..op + 2].copy_from_slice(&[(o << 2) as u8, (o >> 6) as u8]);
    op + 2
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compress::{DEFAULT_MAX_OUTPUT, decompress};

    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            self.0 >> 33
        }
    }

    fn random(n: usize, seed: u64) -> Vec<u8> {
        let mut r = Rng(seed);
        (0..n).map(|_| r.next() as u8).collect()
    }

    /// C-like text: words, identifiers, some noise and long-distance repeats.
    fn text(n: usize, seed: u64) -> Vec<u8> {
        let words: [&[u8]; 10] = [
            b"int ",
            b"return ",
            b"#include <stdio.h>\n",
            b"static inline ",
            b"{\n    ",
            b"}\n",
            b"unsigned long long",
            b"(void *)",
            b"__attribute__((__nothrow__))",
            b";\n",
        ];
        let mut r = Rng(seed);
        let mut v = Vec::with_capacity(n + 64);
        while v.len() < n {
            match r.next() % 16 {
                0 => v.push(r.next() as u8),
                1 if v.len() > 60_000 => {
                    // Repeat something far back (beyond M3/M4 offsets).
                    let from = v.len() - 49_000 - (r.next() as usize % 10_000);
                    let len = 4 + r.next() as usize % 300;
                    v.extend_from_within(from..from + len);
                }
                2 => {
                    let k = r.next() as usize % 26;
                    v.extend(std::iter::repeat_n(b'a' + k as u8, 1 + k * 7));
                }
                _ => v.extend_from_slice(words[r.next() as usize % words.len()]),
            }
        }
        v.truncate(n);
        v
    }

    /// Many shapes: tiny, around the 20-byte and 32-byte thresholds, around
    /// the 49152-byte block size, random, constant, text, and over 1 MB.
    fn shapes() -> Vec<(String, Vec<u8>)> {
        let mut v = Vec::new();
        for n in 0..=40 {
            v.push((format!("text{n}"), text(n, n as u64)));
            v.push((format!("zeros{n}"), vec![0; n]));
            v.push((format!("random{n}"), random(n, n as u64)));
        }
        for n in [
            100, 238, 239, 255, 256, 300, 1000, 4096, 17_000, 49_151, 49_152, 49_153, 49_170,
            49_172, 49_173, 49_184, 49_185, 98_304, 98_325, 98_400, 200_000,
        ] {
            v.push((format!("text{n}"), text(n, 7 + n as u64)));
            v.push((format!("random{n}"), random(n, n as u64)));
            v.push((format!("zeros{n}"), vec![0; n]));
        }
        // Random head, then a block-crossing tail of a few literals.
        let mut mixed = random(49_152, 3);
        mixed.extend_from_slice(b"abcdefgh");
        v.push(("random+tail".into(), mixed));
        let mut mixed = vec![7u8; 49_152];
        mixed.extend(random(5000, 4));
        v.push(("run+random".into(), mixed));
        // Long matches and long literal runs: lengths needing extension bytes.
        let mut long = random(3000, 5);
        long.extend(vec![b'x'; 5000]);
        long.extend(random(70_000, 6));
        long.extend_from_within(10..20_000);
        v.push(("long".into(), long));
        v.push(("text1.5M".into(), text(1_500_000, 99)));
        v.push(("lengths".into(), every_match_shape()));
        v
    }

    /// Matches of every length from 3 to 45 bytes at distances of every
    /// class (M2, M3, M4, and either side of each bound), each between
    /// random bytes, over several blocks, so every branch-free length and
    /// token choice is taken next to the general path.
    fn every_match_shape() -> Vec<u8> {
        let mut r = Rng(11);
        let mut v = random(40_000, 12);
        for len in 3..=45 {
            for dist in [
                1, 2, 7, 8, 9, 100, 2047, 2048, 2049, 16_383, 16_384, 16_385, 30_000,
            ] {
                let from = v.len() - dist;
                for i in 0..len {
                    let b = v[from + i];
                    v.push(b);
                }
                for _ in 0..(r.next() % 24) {
                    v.push(r.next() as u8);
                }
            }
        }
        v
    }

    #[test]
    fn identical_to_lzo1x_1_and_round_trips() {
        for (name, data) in shapes() {
            let ours = compress(&data);
            if data.is_empty() {
                assert!(ours.is_empty());
                continue;
            }
            let oracle = lzo1x::compress(&data, lzo1x::CompressLevel::new(3));
            assert!(ours == oracle, "{name}: output differs from LZO1X-1");
            assert!(ours.len() <= worst_case(data.len()), "{name}");
            let back = decompress(&ours, DEFAULT_MAX_OUTPUT).unwrap();
            assert!(back == data, "{name}: round trip differs");
        }
    }

    #[test]
    fn lzo1x_crate_decodes_our_output() {
        for (name, data) in shapes() {
            if data.is_empty() {
                continue;
            }
            let ours = compress(&data);
            let mut back = vec![0; data.len()];
            lzo1x::decompress(&ours, &mut back).unwrap();
            assert!(back == data, "{name}");
        }
    }

    #[test]
    fn compress_into_appends_and_reuses() {
        let a = text(70_000, 1);
        let b = text(3000, 2);
        let mut out = b"prefix".to_vec();
        compress_into(&a, &mut out);
        let first = out.len();
        compress_into(&b, &mut out);
        compress_into(b"", &mut out);
        assert_eq!(&out[..6], b"prefix");
        assert_eq!(out[6..first], compress(&a)[..]);
        assert_eq!(out[first..], compress(&b)[..]);
        // Reusing a buffer with stale contents gives the same bytes.
        out.clear();
        compress_into(&b, &mut out);
        assert_eq!(out, compress(&b));
    }

    #[test]
    fn owned_streams_match_and_give_their_buffer_back() {
        let a = text(70_000, 3);
        let b = text(90_000, 4);
        let first = compress_owned(&a);
        // A second stream while the first is alive gets its own buffer.
        let second = compress_owned(&b);
        assert_eq!(first[..], compress(&a)[..]);
        assert_eq!(second[..], compress(&b)[..]);
        drop(first);
        drop(second);
        // The kept buffer holds stale bytes now: same stream regardless.
        let again = compress_owned(&a);
        assert_eq!(again[..], compress(&a)[..]);
        assert!(compress_owned(b"").is_empty());
    }

    #[test]
    fn compresses_text_well() {
        let data = text(300_000, 8);
        let c = compress(&data);
        assert!(c.len() < data.len() / 2, "{} of {}", c.len(), data.len());
    }
}
