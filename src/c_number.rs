//! Numbers read as stock distcc reads them, with C's `atoi`/`strtol`:
//! leading blanks, an optional sign, then digits; whatever follows is left
//! for the caller (stock ignores it, or checks it, case by case), and no
//! digits at all is 0. Host lists, `DISTCC_MAX_DISCREPANCY` and lsdistcc's
//! options all take their numbers this way.

/// One number at the start of a text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CNumber<'a> {
    /// Its value, saturating at `i64`'s bounds; 0 when there are no digits.
    pub value: i64,
    /// The digits (without blanks or sign); empty when there are none.
    pub digits: &'a str,
    /// Bytes read: blanks, sign and digits; 0 when there are no digits.
    pub end: usize,
}

/// The number at the start of `s`, as `atoi` reads it.
pub fn atoi(s: &str) -> CNumber<'_> {
    let blanks = s.len() - s.trim_start().len();
    let rest = &s[blanks..];
    let (negative, sign) = match rest.as_bytes().first() {
        Some(b'-') => (true, 1),
        Some(b'+') => (false, 1),
        _ => (false, 0),
    };
    let count = rest[sign..].bytes().take_while(u8::is_ascii_digit).count();
    let digits = &rest[sign..sign + count];
    let magnitude = digits.bytes().fold(0i64, |v, c| {
        v.saturating_mul(10).saturating_add(i64::from(c - b'0'))
    });
    CNumber {
        value: if negative { -magnitude } else { magnitude },
        digits,
        end: if count == 0 { 0 } else { blanks + sign + count },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn as_c_reads_them() {
        for (text, value, digits, end) in [
            ("42", 42, "42", 2),
            ("+3x", 3, "3", 2),
            ("-7/2", -7, "7", 2),
            ("  12", 12, "12", 4),
            ("x", 0, "", 0),
            ("-", 0, "", 0),
            ("", 0, "", 0),
            (
                "99999999999999999999999",
                i64::MAX,
                "99999999999999999999999",
                23,
            ),
        ] {
            let n = atoi(text);
            assert_eq!((n.value, n.digits, n.end), (value, digits, end), "{text:?}");
        }
    }
}
