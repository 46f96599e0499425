//! Byte-string searches shared by the argument classifier and the include
//! analysis.

/// The index of the first `b` in `s` (glibc's memchr, which is fast).
pub fn find_byte(s: &[u8], b: u8) -> Option<usize> {
    // SAFETY: the pointer and length come from a live slice; memchr only
    // reads it.
    let p = unsafe { libc::memchr(s.as_ptr().cast(), i32::from(b), s.len()) };
    (!p.is_null()).then(|| p as usize - s.as_ptr() as usize)
}

/// Whether `needle` occurs in `hay` (an empty needle occurs everywhere).
pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || find(hay, needle).is_some()
}

/// The first position of `needle` (not empty) in `hay`, found from the
/// occurrences of its first byte.
pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    let (&first, rest) = needle.split_first()?;
    let mut i = 0;
    while let Some(p) = find_byte(&hay[i..], first) {
        let at = i + p;
        if hay[at + 1..].starts_with(rest) {
            return Some(at);
        }
        i = at + 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contains_finds_a_needle_anywhere() {
        assert!(contains(b"_Pragma(\"once\")", b"_Pragma"));
        assert!(contains(b"x __ _Pragm _Pragma", b"_Pragma"));
        assert!(!contains(b"x __ _Pragm _pragma", b"_Pragma"));
        assert!(!contains(b"_Pragm", b"_Pragma"));
        assert!(!contains(b"", b"_Pragma"));
        assert!(contains(b"-Wa,-a", b""));
    }

    #[test]
    fn find_byte_gives_the_first() {
        assert_eq!(find_byte(b"a_b_c", b'_'), Some(1));
        assert_eq!(find_byte(b"abc", b'_'), None);
        assert_eq!(find_byte(b"", b'_'), None);
    }
}
