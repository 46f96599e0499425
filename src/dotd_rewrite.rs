//! Server-side rewrite of the dependency file of a pump (protocol 3) job.
//!
//! The daemon compiles with `-MF <tmp>.deps` and `-o <tmp>.o` inside its
//! private root, so the .d it gets names server paths. Before sending it as
//! `DOTD`, each line gets (as stock 3.4 does, facts §1.10.4) the first
//! occurrence of the server's temporary object path replaced by the target
//! the client wanted (its `-MT` value, or its `-o` value), and then every
//! occurrence of the root path deleted, which turns root-prefixed paths
//! back into the client's absolute paths. The compiler writes names in
//! make's quoting (`\ ` for a blank, `$$`, `\#`), so both paths are also
//! looked for in that form: a daemon whose TMPDIR has a blank or a `$` in
//! it sent its own paths otherwise (sweep U, D5; stock the same).

/// Rewrites `deps` (the compiler's .d text) for the client.
pub fn rewrite(deps: &[u8], server_output: &[u8], target: &[u8], root: &[u8]) -> Vec<u8> {
    let quoted_output = make_quoted(server_output);
    let quoted_root = make_quoted(root);
    let mut out = Vec::with_capacity(deps.len());
    for line in deps.split_inclusive(|&b| b == b'\n') {
        let replaced;
        let found = find(line, server_output)
            .map(|at| (at, server_output.len()))
            .or_else(|| find(line, &quoted_output).map(|at| (at, quoted_output.len())));
        let line = match found {
            Some((at, len)) if !server_output.is_empty() => {
                let mut v = Vec::with_capacity(line.len() + target.len());
                v.extend_from_slice(&line[..at]);
                v.extend_from_slice(target);
                v.extend_from_slice(&line[at + len..]);
                replaced = v;
                &replaced[..]
            }
            _ => line,
        };
        if quoted_root == root {
            remove_all(line, root, &mut out);
        } else {
            let mut once = Vec::with_capacity(line.len());
            remove_all(line, root, &mut once);
            remove_all(&once, &quoted_root, &mut out);
        }
    }
    out
}

/// `name` as GCC (and Clang) write it in a dependency file: a blank after
/// N backslashes becomes 2N+1 backslashes and the blank, `$` is doubled,
/// `#` gets a backslash.
fn make_quoted(name: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(name.len() + 8);
    for (i, &c) in name.iter().enumerate() {
        match c {
            b' ' | b'\t' => {
                let backslashes = name[..i].iter().rev().take_while(|&&b| b == b'\\').count();
                out.extend(std::iter::repeat_n(b'\\', backslashes + 1));
            }
            b'$' => out.push(b'$'),
            b'#' => out.push(b'\\'),
            _ => {}
        }
        out.push(c);
    }
    out
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || needle.len() > hay.len() {
        return None;
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

fn remove_all(mut line: &[u8], what: &[u8], out: &mut Vec<u8>) {
    while let Some(at) = find(line, what) {
        out.extend_from_slice(&line[..at]);
        line = &line[at + what.len()..];
    }
    out.extend_from_slice(line);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_and_root_rewritten() {
        let root = b"/tmp/distccd_AbC123/root";
        let deps = b"/tmp/distccd_AbC123/out.o: hello.c \\\n /tmp/distccd_AbC123/root/home/u/inc/extra.h \\\n /usr/include/stdio.h\n";
        let got = rewrite(deps, b"/tmp/distccd_AbC123/out.o", b"hello.o", root);
        assert_eq!(
            String::from_utf8(got).unwrap(),
            "hello.o: hello.c \\\n /home/u/inc/extra.h \\\n /usr/include/stdio.h\n"
        );
    }

    #[test]
    fn only_first_output_occurrence_per_line() {
        let got = rewrite(b"o.o o.o: x\n", b"o.o", b"t", b"/r");
        assert_eq!(got, b"t o.o: x\n");
    }

    #[test]
    fn quoted_paths_are_rewritten_too() {
        let root = b"/var/tmp/distcc work$#/distccd_1_AbC/root";
        let deps = b"/var/tmp/distcc\\ work$$\\#/distccd_1_AbC/out.o: \\\n /var/tmp/distcc\\ work$$\\#/distccd_1_AbC/root/src/a.c \\\n /var/tmp/distcc\\ work$$\\#/distccd_1_AbC/root/src/my\\ h.h\n";
        let got = rewrite(
            deps,
            b"/var/tmp/distcc work$#/distccd_1_AbC/out.o",
            b"/src/a.o",
            root,
        );
        assert_eq!(
            String::from_utf8(got).unwrap(),
            "/src/a.o: \\\n /src/a.c \\\n /src/my\\ h.h\n"
        );
        assert_eq!(make_quoted(b"a\\ b"), b"a\\\\\\ b");
    }

    #[test]
    fn no_trailing_newline_kept() {
        let got = rewrite(b"/r/a.h", b"/nothing", b"t", b"/r");
        assert_eq!(got, b"/a.h");
    }
}
