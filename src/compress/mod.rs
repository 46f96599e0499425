//! LZO1X payload compression as distcc puts it on the wire (facts §1.4).
//!
//! distcc sends a raw LZO1X stream: no header, no uncompressed size, no
//! checksum, ending with the usual end marker `11 00 00`; an empty payload is
//! sent as length 0 with no stream at all. Compression is LZO1X-1, byte for
//! byte what stock's liblzo2 `lzo1x_1_compress` produces (`lzo1x_1`, our own
//! fast implementation); decompression is a bounded decoder (`decode`) that
//! discovers the output size as it goes and stops at a hard cap.

mod decode;
mod lzo1x_1;

pub use decode::{decompress, decompress_into};
pub use lzo1x_1::{Stream, compress, compress_into, compress_owned};

/// Default cap on one decompressed payload.
pub const DEFAULT_MAX_OUTPUT: usize = 1024 * 1024 * 1024;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Kind;

    fn sample(n: usize, seed: u64) -> Vec<u8> {
        // Text-like data with repeats, plus some noise.
        let words: [&[u8]; 6] = [
            b"int ",
            b"return ",
            b"#include <stdio.h>\n",
            b"x",
            b"{}",
            b"\xff\x00",
        ];
        let mut s = seed;
        let mut v = Vec::with_capacity(n);
        while v.len() < n {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            if s >> 60 == 0 {
                v.push((s >> 33) as u8);
            } else {
                v.extend_from_slice(words[(s >> 40) as usize % words.len()]);
            }
        }
        v.truncate(n);
        v
    }

    #[test]
    fn round_trips_many_shapes() {
        for (n, seed) in [
            (1, 1),
            (3, 2),
            (4, 3),
            (17, 4),
            (300, 5),
            (70_000, 6),
            (1 << 20, 7),
        ] {
            let data = sample(n, seed);
            let c = compress(&data);
            assert_eq!(decompress(&c, DEFAULT_MAX_OUTPUT).unwrap(), data, "n={n}");
        }
        let zeros = vec![0u8; 200_000];
        assert_eq!(
            decompress(&compress(&zeros), DEFAULT_MAX_OUTPUT).unwrap(),
            zeros
        );
    }

    #[test]
    fn decodes_higher_levels_too() {
        let data = sample(50_000, 9);
        for level in [1u8, 5, 9, 13] {
            let c = lzo1x::compress(&data, lzo1x::CompressLevel::new(level));
            assert_eq!(decompress(&c, DEFAULT_MAX_OUTPUT).unwrap(), data);
        }
    }

    /// Repeats of every period from 1 to 40 (matches of every distance
    /// class the decoder copies differently), and runs of every length.
    #[test]
    fn every_match_distance_and_run_length() {
        let mut data = Vec::new();
        for period in 1..=40usize {
            let pattern: Vec<u8> = (0..period).map(|i| (i * 37 + period) as u8).collect();
            for run in [1usize, 2, 3, 7, 15, 16, 17, 31, 33, 300] {
                data.extend(pattern.iter().cycle().take(run * period.min(5)));
                data.extend_from_slice(format!("<{period}:{run}>").as_bytes());
            }
        }
        for c in [
            compress(&data),
            lzo1x::compress(&data, lzo1x::CompressLevel::new(9)),
        ] {
            assert_eq!(decompress(&c, DEFAULT_MAX_OUTPUT).unwrap(), data);
            // The exact cap is enough; one byte less is refused.
            assert_eq!(decompress(&c, data.len()).unwrap(), data);
            assert!(decompress(&c, data.len() - 1).is_err());
        }
    }

    #[test]
    fn empty_is_empty_and_stream_ends_with_marker() {
        assert!(compress(b"").is_empty());
        assert!(decompress(b"", 10).unwrap().is_empty());
        assert!(compress(b"hello").ends_with(&[0x11, 0, 0]));
    }

    #[test]
    fn bomb_is_capped() {
        let zeros = vec![0u8; 10 * 1024 * 1024];
        let c = compress(&zeros);
        assert!(c.len() < 100_000);
        let e = decompress(&c, 1024 * 1024).unwrap_err();
        assert_eq!(e.kind(), Kind::OutOfMemory);
    }

    #[test]
    fn corrupt_streams_error_without_panic() {
        let data = sample(5000, 11);
        let c = compress(&data);
        for cut in [1, 2, c.len() / 2, c.len() - 1] {
            assert!(decompress(&c[..cut], DEFAULT_MAX_OUTPUT).is_err());
        }
        let mut seed = 99u64;
        for _ in 0..2000 {
            let mut junk = c.clone();
            for _ in 0..4 {
                seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
                let i = (seed >> 33) as usize % junk.len();
                junk[i] = (seed >> 20) as u8;
            }
            let _ = decompress(&junk, 1 << 20);
        }
        assert!(decompress(&[0x20, 0, 0], 100).is_err());
    }
}
