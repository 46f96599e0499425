//! Debug-info path rewriting for objects compiled in pump mode.
//!
//! A pump (protocol 3) compile runs inside the daemon's private root, so
//! the DWARF of the object names `<root>/home/u/src` where the client has
//! `/home/u/src`. Like stock `fix_debug_info.c`, every occurrence of the
//! root path is overwritten in place by a string of the same length made
//! of `/` only, which turns `<root>/home/u/src` into `////…///home/u/src`,
//! the client path with redundant slashes. Unlike stock 3.4 this also
//! covers `.debug_line_str`, where GCC 11+ (DWARF 5) keeps
//! `DW_AT_comp_dir` (facts §1.10.3).
//!
//! Our daemon passes `-fdebug-prefix-map=<root>=` to compilers that take
//! prefix maps, so their objects name the client's paths exactly and this
//! rewrite finds nothing; it serves older compilers.
//!
//! The `object` crate finds the sections' file offsets; the bytes are then
//! patched in the object buffer. Only ELF files of the host's byte order
//! are touched, and compressed sections are left alone.

use object::{Object, ObjectSection};

/// The sections searched for the root path.
pub const SECTIONS: &[&str] = &[".debug_info", ".debug_str", ".debug_line_str"];

/// Replaces every occurrence of `root` in the debug sections of the ELF
/// object in `data` with slashes. Returns how many were replaced; anything
/// that is not a native-endian ELF object is left as it is (0).
pub fn rewrite_root(data: &mut [u8], root: &[u8]) -> usize {
    if root.is_empty() {
        return 0;
    }
    let ranges = match section_ranges(data) {
        Some(r) => r,
        None => return 0,
    };
    let mut count = 0;
    for (start, len) in ranges {
        let Some(end) = start.checked_add(len) else {
            continue;
        };
        let Some(section) = data.get_mut(start..end) else {
            continue;
        };
        count += replace_with_slashes(section, root);
    }
    count
}

fn section_ranges(data: &[u8]) -> Option<Vec<(usize, usize)>> {
    let file = object::File::parse(data).ok()?;
    if file.format() != object::BinaryFormat::Elf
        || file.is_little_endian() != cfg!(target_endian = "little")
    {
        return None;
    }
    let mut ranges = Vec::new();
    for name in SECTIONS {
        let Some(section) = file.section_by_name(name) else {
            continue;
        };
        let Ok(compressed) = section.compressed_file_range() else {
            continue;
        };
        if compressed.format != object::CompressionFormat::None {
            continue;
        }
        if let Some((offset, size)) = section.file_range() {
            ranges.push((usize::try_from(offset).ok()?, usize::try_from(size).ok()?));
        }
    }
    Some(ranges)
}

fn replace_with_slashes(section: &mut [u8], needle: &[u8]) -> usize {
    let mut count = 0;
    let mut i = 0;
    while i + needle.len() <= section.len() {
        if &section[i..i + needle.len()] == needle {
            section[i..i + needle.len()].fill(b'/');
            count += 1;
            i += needle.len();
        } else {
            i += 1;
        }
    }
    count
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blind_replace_keeps_length() {
        let mut s = b"xx/tmp/r1/home/u\0/tmp/r1\0/tmp/r2".to_vec();
        let n = replace_with_slashes(&mut s, b"/tmp/r1");
        assert_eq!(n, 2);
        assert_eq!(&s[..], b"xx////////home/u\0///////\0/tmp/r2");
    }

    #[test]
    fn non_elf_untouched() {
        let mut data = b"not an object /tmp/r1".to_vec();
        assert_eq!(rewrite_root(&mut data, b"/tmp/r1"), 0);
        assert_eq!(&data[..], b"not an object /tmp/r1");
    }
}
