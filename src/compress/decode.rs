//! Bounded decoder for raw LZO1X streams as distcc sends them (facts §1.4).
//!
//! The `lzo1x` crate's decoder needs the exact output size, which the
//! protocol never carries, so decoding is done here: a safe decoder that
//! discovers the size as it goes and stops at a hard cap (stock doubles its
//! buffer without bound, a memory-exhaustion hole). It accepts streams of
//! any LZO1X level. Sits under `compress::decompress`.

use crate::error::{Error, Kind, Result};

/// Decompresses a raw LZO1X stream (any LZO1X level), refusing to produce more
/// than `max_output` bytes. Empty input is an empty payload.
pub fn decompress(src: &[u8], max_output: usize) -> Result<Vec<u8>> {
    if src.is_empty() {
        return Ok(Vec::new());
    }
    let mut out = Vec::with_capacity(src.len().saturating_mul(4).min(max_output));
    Lzo {
        src,
        pos: 0,
        out: &mut out,
        max_output,
    }
    .run()?;
    Ok(out)
}

struct Lzo<'a> {
    src: &'a [u8],
    pos: usize,
    out: &'a mut Vec<u8>,
    max_output: usize,
}

fn corrupt(what: &str) -> Error {
    Error::new(Kind::Io, format!("corrupt LZO stream: {what}"))
}

impl Lzo<'_> {
    fn byte(&mut self) -> Result<usize> {
        let b = *self.src.get(self.pos).ok_or_else(|| corrupt("truncated"))?;
        self.pos += 1;
        Ok(usize::from(b))
    }

    fn le16(&mut self) -> Result<usize> {
        let lo = self.byte()?;
        let hi = self.byte()?;
        Ok(lo | (hi << 8))
    }

    /// A run length continued in extra bytes: each zero adds 255, then the
    /// first non-zero byte is added.
    fn extended(&mut self, base: usize) -> Result<usize> {
        let mut len = base;
        loop {
            let b = self.byte()?;
            if b != 0 {
                return Ok(len + b);
            }
            len += 255;
            if len > self.max_output {
                return Err(corrupt("run length too long"));
            }
        }
    }

    fn room(&self, n: usize) -> Result<()> {
        if self.out.len() + n > self.max_output {
            return Err(Error::new(
                Kind::OutOfMemory,
                format!(
                    "LZO payload expands beyond the limit of {} bytes",
                    self.max_output
                ),
            ));
        }
        Ok(())
    }

    fn literals(&mut self, n: usize) -> Result<()> {
        let end = self.pos.checked_add(n).ok_or_else(|| corrupt("overflow"))?;
        if end > self.src.len() {
            return Err(corrupt("literal run past end of input"));
        }
        self.room(n)?;
        self.out.extend_from_slice(&self.src[self.pos..end]);
        self.pos = end;
        Ok(())
    }

    fn copy_match(&mut self, distance: usize, len: usize) -> Result<()> {
        if distance == 0 || distance > self.out.len() {
            return Err(corrupt("match reaches before start of output"));
        }
        self.room(len)?;
        let start = self.out.len() - distance;
        if distance >= len {
            self.out.extend_from_within(start..start + len);
        } else {
            for i in 0..len {
                let b = self.out[start + i];
                self.out.push(b);
            }
        }
        Ok(())
    }

    fn run(&mut self) -> Result<()> {
        // `state`: literals copied by the previous instruction (4 = four or more).
        let mut state = 0usize;
        if self.src[0] > 17 {
            self.pos = 1;
            let n = usize::from(self.src[0]) - 17;
            self.literals(n)?;
            state = n.min(4);
        }
        loop {
            let inst = self.byte()?;
            let (distance, len, trailing) = if inst < 16 {
                match state {
                    0 => {
                        let len = if inst == 0 { self.extended(15)? } else { inst } + 3;
                        self.literals(len)?;
                        state = 4;
                        continue;
                    }
                    1..=3 => {
                        let h = self.byte()?;
                        ((h << 2) + ((inst >> 2) & 3) + 1, 2, inst & 3)
                    }
                    _ => {
                        let h = self.byte()?;
                        ((h << 2) + ((inst >> 2) & 3) + 2049, 3, inst & 3)
                    }
                }
            } else if inst < 32 {
                let l = inst & 7;
                let len = 2 + if l == 0 { self.extended(7)? } else { l };
                let d = self.le16()?;
                let distance = 16384 + ((inst & 8) << 11) + (d >> 2);
                if distance == 16384 {
                    // End of stream marker: it must be the last thing.
                    if self.pos != self.src.len() {
                        return Err(corrupt("data after end marker"));
                    }
                    return Ok(());
                }
                (distance, len, d & 3)
            } else if inst < 64 {
                let l = inst & 31;
                let len = 2 + if l == 0 { self.extended(31)? } else { l };
                let d = self.le16()?;
                ((d >> 2) + 1, len, d & 3)
            } else if inst < 128 {
                let h = self.byte()?;
                (
                    (h << 3) + ((inst >> 2) & 7) + 1,
                    3 + ((inst >> 5) & 1),
                    inst & 3,
                )
            } else {
                let h = self.byte()?;
                (
                    (h << 3) + ((inst >> 2) & 7) + 1,
                    5 + ((inst >> 5) & 3),
                    inst & 3,
                )
            };
            self.copy_match(distance, len)?;
            self.literals(trailing)?;
            state = trailing;
        }
    }
}
