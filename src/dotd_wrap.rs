//! Re-wraps the rule of a GCC dependency file as GCC wraps it.
//!
//! In pump mode the server's compiler writes the `.d` file with its own,
//! longer paths (under the job root), and GCC breaks lines by length: once
//! the root is taken out, the breaks fall elsewhere than in a local
//! compile's file. GCC writes the rule `TARGETS: DEPS` word by word, and
//! starts a new line (` \` newline, then a space) before a word that would
//! end past column 72. Doing the same with the client's paths gives the
//! local file's bytes. Anything after the rule (`-MP` phony targets) is
//! kept as it is.

/// GCC's line length for dependency output (`deps_write (..., 72)`).
const COLUMNS: usize = 72;

/// `deps` with its first rule wrapped as GCC wraps it; unchanged when the
/// first line is not a `TARGETS: DEPS` rule.
pub fn rewrap_gcc(deps: &[u8]) -> Vec<u8> {
    // The rule runs to the first newline not escaped by a backslash.
    let mut end = 0;
    while end < deps.len() {
        if deps[end] == b'\n' && !(end > 0 && deps[end - 1] == b'\\') {
            break;
        }
        end += 1;
    }
    if end == deps.len() {
        return deps.to_vec();
    }
    let rule = &deps[..end];
    let words: Vec<&[u8]> = word_spans(rule).into_iter().map(|r| &rule[r]).collect();
    let Some(colon) = words.iter().position(|w| w.ends_with(b":")) else {
        return deps.to_vec();
    };
    let mut out = Vec::with_capacity(deps.len());
    let mut col = 0;
    for (i, w) in words.iter().enumerate() {
        // The colon after the targets is written on its own, not as part
        // of the last target's width.
        let word = if i == colon { &w[..w.len() - 1] } else { w };
        if !word.is_empty() {
            if col > 0 {
                if col + word.len() > COLUMNS {
                    out.extend_from_slice(b" \\\n");
                    col = 0;
                }
                col += 1;
                out.push(b' ');
            }
            out.extend_from_slice(word);
            col += word.len();
        }
        if i == colon {
            out.push(b':');
            col += 1;
        }
    }
    out.extend_from_slice(&deps[end..]);
    out
}

/// The words of dependency-file text, as byte ranges: split at blanks and
/// escaped newlines, keeping blanks escaped with a backslash inside words.
pub fn word_spans(text: &[u8]) -> Vec<std::ops::Range<usize>> {
    let separates = |i: usize| {
        matches!(text[i], b' ' | b'\t' | b'\n' | b'\r')
            || (text[i] == b'\\' && text.get(i + 1) == Some(&b'\n'))
    };
    let mut out = Vec::new();
    let mut i = 0;
    while i < text.len() {
        if separates(i) {
            i += 1;
            continue;
        }
        let start = i;
        while i < text.len() && !separates(i) {
            // An escaped blank belongs to the word.
            let escaped = text[i] == b'\\' && matches!(text.get(i + 1), Some(b' ' | b'\t'));
            i += if escaped { 2 } else { 1 };
        }
        out.push(start..i);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wraps_as_gcc_does() {
        // GCC 12's own output for these names (local compiles).
        let local = b"b.o: src/a.c /usr/include/stdc-predef.h /tmp/dabs/abs/x.h src/y.h\n";
        let server = b"b.o: src/a.c /usr/include/stdc-predef.h \\\n /tmp/dabs/abs/x.h src/y.h\n";
        assert_eq!(rewrap_gcc(server), local.to_vec());
        let local = b"a.o: /tmp/dabs/p/src/a.c /usr/include/stdc-predef.h /tmp/dabs/abs/x.h \\\n /tmp/dabs/p/src/y.h\n/usr/include/stdc-predef.h:\n/tmp/dabs/abs/x.h:\n/tmp/dabs/p/src/y.h:\n";
        let server = b"a.o: /tmp/dabs/p/src/a.c \\\n /usr/include/stdc-predef.h \\\n /tmp/dabs/abs/x.h \\\n /tmp/dabs/p/src/y.h\n/usr/include/stdc-predef.h:\n/tmp/dabs/abs/x.h:\n/tmp/dabs/p/src/y.h:\n";
        assert_eq!(rewrap_gcc(server), local.to_vec());
        assert_eq!(rewrap_gcc(local), local.to_vec());
    }

    #[test]
    fn escaped_blanks_stay_in_words_and_odd_files_are_kept() {
        let d = b"x.o: my\\ dir/a.c \\\n b.h\n";
        assert_eq!(rewrap_gcc(d), b"x.o: my\\ dir/a.c b.h\n".to_vec());
        for odd in [&b"no rule here\n"[..], b"x.o: a.c", b""] {
            assert_eq!(rewrap_gcc(odd), odd.to_vec());
        }
    }
}
