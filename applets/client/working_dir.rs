//! The working directory of an already-preprocessed source, for GCC's
//! debug information.
//!
//! GCC records as the compilation directory (`DW_AT_comp_dir`) the
//! directory named by a line marker ending in `//` on the second line of a
//! preprocessed file (`gcc -E` writes one when it runs with `-g`), and
//! otherwise the directory it runs in. A `.i` made without `-g` has no
//! such line, so a server recorded its own job directory where a local
//! compile records this one (sweep U, D7; stock the same). For such a
//! file, compiled by GCC with debug information, the client sends the text
//! with that line added: the object is then the local one, byte for byte.

use distcc::{Error, Result};
use std::ffi::OsString;
use std::fs::File;
use std::io::{Seek, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Bytes read to find the first two lines.
const HEAD: usize = 8192;

/// The text to send instead of the file at `path`, when it needs the
/// working directory `cwd` added; `None` to send the file as it is.
pub fn added(argv: &[OsString], path: &Path, cwd: &Path) -> Result<Option<File>> {
    let gcc = !argv
        .first()
        .is_some_and(|c| distcc::args::cross::named_clang(c));
    let wanted = gcc
        && distcc::args::compilation_dir::records_debug_info(argv)
        && !argv.iter().any(|a| a == "-fno-working-directory");
    if !wanted {
        return Ok(None);
    }
    let reading = |e| Error::io(format!("reading {}", path.display()), e);
    // Its first two lines decide; the whole text is read only when the
    // line is added (a `.i` made with `-g` is sent from the file as ever).
    let mut head = Vec::with_capacity(HEAD);
    std::fs::File::open(path)
        .and_then(|f| {
            use std::io::Read;
            f.take(HEAD as u64).read_to_end(&mut head)
        })
        .map_err(reading)?;
    if insertion_point(&head).is_none() {
        return Ok(None);
    }
    let text = std::fs::read(path).map_err(reading)?;
    let Some(at) = insertion_point(&text) else {
        return Ok(None);
    };
    let number = &text[2..2 + text[2..].iter().take_while(|c| c.is_ascii_digit()).count()];
    let mut line = b"# ".to_vec();
    line.extend_from_slice(number);
    line.extend_from_slice(b" \"");
    distcc::includes::mirror::push_string_body(&mut line, cwd.as_os_str().as_bytes());
    line.extend_from_slice(b"//\"\n");
    let mut file = super::local::memory_file()?;
    let what = "writing the preprocessed source";
    file.write_all(&text[..at])
        .and_then(|()| file.write_all(&line))
        .and_then(|()| file.write_all(&text[at..]))
        .and_then(|()| file.rewind())
        .map_err(|e| Error::io(what, e))?;
    Ok(Some(file))
}

/// Where the working-directory line goes: after a first line that is a
/// line marker (`# N "name"`), when the second is not already one.
fn insertion_point(text: &[u8]) -> Option<usize> {
    let marker = |line: &[u8]| {
        let digits = line
            .get(2..)?
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .count();
        (line.starts_with(b"# ") && digits > 0 && line[2 + digits..].starts_with(b" \""))
            .then_some(())
    };
    let first_end = text.iter().position(|&c| c == b'\n')?;
    marker(&text[..first_end])?;
    let rest = &text[first_end + 1..];
    let second = &rest[..rest.iter().position(|&c| c == b'\n').unwrap_or(rest.len())];
    let names_directory = marker(second).is_some() && second.trim_ascii_end().ends_with(b"//\"");
    (!names_directory).then_some(first_end + 1)
}

#[cfg(test)]
mod tests {
    use super::insertion_point;

    #[test]
    fn the_line_goes_after_the_first_marker_unless_present() {
        let without = b"# 0 \"a.c\"\n# 0 \"<built-in>\"\nint x;\n";
        assert_eq!(insertion_point(without), Some(10));
        let with = b"# 0 \"a.c\"\n# 0 \"/home/u//\"\n# 0 \"<built-in>\"\n";
        assert_eq!(insertion_point(with), None);
        // Not preprocessed by a compiler: left alone.
        assert_eq!(insertion_point(b"int x;\n"), None);
        assert_eq!(insertion_point(b"# define X\n"), None);
    }
}
