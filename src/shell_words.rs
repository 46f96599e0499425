//! Splitting a variable's value into words as a POSIX shell splits the
//! words of a command: blanks separate, `'...'` keeps everything, `"..."`
//! keeps everything but `\` before `$`, `` ` ``, `"`, `\` or a newline, and
//! a `\` outside quotes keeps the next character (a `\` newline joins).
//!
//! Stock's pump hands `INCLUDE_SERVER_ARGS` to the include server through
//! `eval`, so a value like `--stat_reset_triggers="a b"` is one word there
//! (sweep W, D2). Expansions (`$X`, `$(...)`, globs) are not performed: the
//! text stays as written.

/// The words of `text`; an error names a quote left open.
pub fn split(text: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word = String::new();
    // Whether a word has started (`''` is an empty word).
    let mut started = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' | '\n' => {
                if started {
                    words.push(std::mem::take(&mut word));
                    started = false;
                }
            }
            '\'' => {
                started = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => word.push(c),
                        None => return Err("a single quote is not closed".into()),
                    }
                }
            }
            '"' => {
                started = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.peek() {
                            Some(&n @ ('$' | '`' | '"' | '\\')) => {
                                word.push(n);
                                chars.next();
                            }
                            Some('\n') => {
                                chars.next();
                            }
                            _ => word.push('\\'),
                        },
                        Some(c) => word.push(c),
                        None => return Err("a double quote is not closed".into()),
                    }
                }
            }
            '\\' => match chars.next() {
                Some('\n') => {}
                Some(n) => {
                    started = true;
                    word.push(n);
                }
                None => {
                    started = true;
                    word.push('\\');
                }
            },
            c => {
                started = true;
                word.push(c);
            }
        }
    }
    if started {
        words.push(word);
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::split;

    #[test]
    fn words_as_a_shell_splits_them() {
        assert_eq!(split("  -d7   -s ").unwrap(), ["-d7", "-s"]);
        assert_eq!(
            split(r#"--stat_reset_triggers="a b" --path_observation_re='x y'"#).unwrap(),
            ["--stat_reset_triggers=a b", "--path_observation_re=x y"]
        );
        assert_eq!(
            split(r#"a\ b "q\"q" 'it''s' "" x"#).unwrap(),
            ["a b", "q\"q", "its", "", "x"]
        );
        assert_eq!(split("a\\\nb").unwrap(), ["ab"]);
        assert_eq!(split(r#""\a$X""#).unwrap(), ["\\a$X"]);
        assert!(split("'open").is_err());
        assert!(split("\"open").is_err());
        assert!(split("").unwrap().is_empty());
    }
}
