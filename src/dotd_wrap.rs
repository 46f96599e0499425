//! Re-wraps the rule of a dependency file as GCC or Clang wraps it.
//!
//! In pump mode the server's compiler writes the `.d` file with its own,
//! longer paths (under the job root), and compilers break lines by length:
//! once the root is taken out, the breaks fall elsewhere than in a local
//! compile's file. GCC writes the rule `TARGETS: DEPS` word by word, and
//! starts a new line (` \` newline, then a space) before a word that would
//! end past column 72. Clang counts to 75 with its own rules (two spaces on
//! a new line, and the unescaped length of each dependency). Doing the same
//! with the client's paths gives the local file's bytes. The targets are
//! kept as the server wrote them: they are the command's own `-MT`/`-MQ`
//! texts (or the output's name, rewritten before), which it wrapped as the
//! local compiler does, and an `-MT` text is written verbatim, blanks and
//! all, so it cannot be told apart into words again (sweep U, D2). Anything
//! after the rule (`-MP` phony targets) is kept as it is.

/// GCC's line length for dependency output (`deps_write (..., 72)`).
const COLUMNS: usize = 72;

/// The first rule of `deps` (up to the first newline not escaped by a
/// backslash): its end, the end of its targets (just past the colon that
/// ends them), and the words after that.
fn rule_words(deps: &[u8]) -> Option<(usize, usize, Vec<&[u8]>)> {
    let mut end = 0;
    while end < deps.len() {
        if deps[end] == b'\n' && !(end > 0 && deps[end - 1] == b'\\') {
            break;
        }
        end += 1;
    }
    if end == deps.len() {
        return None;
    }
    let rule = &deps[..end];
    let spans = word_spans(rule);
    let colon = spans.iter().position(|r| rule[r.clone()].ends_with(b":"))?;
    let targets_end = spans[colon].end;
    let words = spans[colon + 1..]
        .iter()
        .map(|r| &rule[r.clone()])
        .collect();
    Some((end, targets_end, words))
}

/// The column after the targets text `t`: its length since its last line
/// break (a wrapped line starts with the blanks the compiler wrote).
fn column_after(t: &[u8]) -> usize {
    t.len() - t.iter().rposition(|&c| c == b'\n').map_or(0, |i| i + 1)
}

/// `deps` with its first rule wrapped as GCC wraps it; unchanged when the
/// first line is not a `TARGETS: DEPS` rule.
pub fn rewrap_gcc(deps: &[u8]) -> Vec<u8> {
    let Some((end, targets_end, words)) = rule_words(deps) else {
        return deps.to_vec();
    };
    let mut out = Vec::with_capacity(deps.len());
    out.extend_from_slice(&deps[..targets_end]);
    let mut col = column_after(&deps[..targets_end]);
    for word in words {
        if col + word.len() > COLUMNS {
            out.extend_from_slice(b" \\\n");
            col = 0;
        }
        col += 1;
        out.push(b' ');
        out.extend_from_slice(word);
        col += word.len();
    }
    out.extend_from_slice(&deps[end..]);
    out
}

/// Clang's line length for dependency output.
const CLANG_COLUMNS: usize = 75;

/// `deps` with its first rule wrapped as Clang wraps it (its
/// `DependencyFileGenerator`): targets as written, then each dependency,
/// starting a new line (` \` newline, two spaces) when its unescaped length
/// plus a blank and room for ` \` would pass column 75. Unchanged when the
/// first line is not a `TARGETS: DEPS` rule.
pub fn rewrap_clang(deps: &[u8]) -> Vec<u8> {
    let Some((end, targets_end, words)) = rule_words(deps) else {
        return deps.to_vec();
    };
    let mut out = Vec::with_capacity(deps.len());
    out.extend_from_slice(&deps[..targets_end]);
    let mut col = column_after(&deps[..targets_end]);
    for w in &words {
        let n = unescaped_len(w);
        if col + n + 1 + 2 > CLANG_COLUMNS {
            out.extend_from_slice(b" \\\n ");
            col = 2;
        }
        out.push(b' ');
        out.extend_from_slice(w);
        col += n + 1;
    }
    out.extend_from_slice(&deps[end..]);
    out
}

/// The length of a dependency as Clang counts it: before its escapes for
/// make (`\ `, `\#`, `$$`) were added.
fn unescaped_len(word: &[u8]) -> usize {
    let mut n = 0;
    let mut i = 0;
    while i < word.len() {
        let pair = (word[i], word.get(i + 1).copied());
        i += match pair {
            (b'\\', Some(b' ' | b'\t' | b'#')) | (b'$', Some(b'$')) => 2,
            _ => 1,
        };
        n += 1;
    }
    n
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
    fn wraps_as_clang_does() {
        // Clang 14's own output for these names (a local compile).
        let local = b"out\\ dir.o: t.c /usr/include/stdio.h \\\n  /usr/include/x86_64-linux-gnu/bits/libc-header-start.h \\\n  /usr/include/features.h /usr/include/features-time64.h \\\n  /usr/include/stdc-predef.h /usr/include/x86_64-linux-gnu/sys/cdefs.h \\\n  aaaaaaaaaaaa/bbbbbbbbbbbbbbbbb/header_seven.h sp\\ ace/h\\ h.h\n\nt.c:\n";
        let one_per_line = b"out\\ dir.o: t.c \\\n /usr/include/stdio.h \\\n /usr/include/x86_64-linux-gnu/bits/libc-header-start.h /usr/include/features.h \\\n /usr/include/features-time64.h /usr/include/stdc-predef.h \\\n /usr/include/x86_64-linux-gnu/sys/cdefs.h aaaaaaaaaaaa/bbbbbbbbbbbbbbbbb/header_seven.h \\\n sp\\ ace/h\\ h.h\n\nt.c:\n";
        assert_eq!(rewrap_clang(one_per_line), local.to_vec());
        assert_eq!(rewrap_clang(local), local.to_vec());
        assert_eq!(unescaped_len(b"a\\ b$$c\\#d"), 7);
        // Clang 14's files for long, escaped and several targets
        // (testdata/dotd): dependencies joined into one line (the targets
        // are the command's, wrapped by the server as here), re-wrapped to
        // the byte.
        for name in ["clang-escapes.d", "clang-targets.d"] {
            let path = format!("{}/testdata/dotd/{name}", env!("CARGO_MANIFEST_DIR"));
            let real = String::from_utf8(std::fs::read(path).unwrap()).unwrap();
            let colon = real.find(": ").unwrap() + 1;
            let deps = real[colon..].replace(" \\\n  ", " ").replace(" \\\n ", " ");
            let joined = format!("{}{deps}", &real[..colon]);
            assert_ne!(joined, real);
            assert_eq!(
                String::from_utf8(rewrap_clang(joined.as_bytes())).unwrap(),
                real,
                "{name}"
            );
        }
    }

    #[test]
    fn targets_are_kept_as_written() {
        // GCC 12 writes an -MT text verbatim: `-MT 'a  b'`, `-MT ' lead'`,
        // `-MT 'trail '`, `-MT $'tab\there'` (sweep U, D2).
        for t in ["a  b", " lead", "trail ", "tab\there", "x\\\ny"] {
            let server = format!("{t}: a.c \\\n /usr/include/stdc-predef.h\n");
            let local = format!("{t}: a.c /usr/include/stdc-predef.h\n");
            assert_eq!(rewrap_gcc(server.as_bytes()), local.as_bytes(), "{t:?}");
            assert_eq!(rewrap_clang(server.as_bytes()), local.as_bytes(), "{t:?}");
        }
        // Wrapped targets keep their breaks, and the column counts from
        // the last one.
        let long = "t".repeat(60);
        let d = format!("{long} \\\n {long}: a.c b.h\n");
        assert_eq!(rewrap_gcc(d.as_bytes()), d.as_bytes());
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
