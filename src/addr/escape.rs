//! JID localpart escaping per XEP-0106 (JID Escaping), as required by RFC 7247 §6.4 step 5 and
//! §6.5 step 3 with the errata of CHECKLIST §8 (full escaping, not only `& ' /`), checklist COMP-11.
//!
//! Escape sequences are recognised with hex digits in either case. XEP-0106 itself says case is
//! significant, but every JID goes through Nodeprep, which case-folds `\2F` to `\2f`; a raw `\2F`
//! that was not protected on escaping would therefore turn into `/` after the JID is prepared. Being
//! case-insensitive on both sides keeps `unescape(escape(s)) == s` true after Nodeprep as well.

/// The ten XEP-0106 escape codes (lowercase hex, as emitted) and the characters they stand for.
const CODES: [(&str, char); 10] = [
    ("20", ' '),
    ("22", '"'),
    ("26", '&'),
    ("27", '\''),
    ("2f", '/'),
    ("3a", ':'),
    ("3c", '<'),
    ("3e", '>'),
    ("40", '@'),
    ("5c", '\\'),
];

/// XEP-0106-escapes a raw localpart.
///
/// Space `"` `&` `'` `/` `:` `<` `>` `@` become `\20` `\22` `\26` `\27` `\2f` `\3a` `\3c` `\3e` `\40`;
/// a backslash becomes `\5c` only when the two characters after it form one of the ten codes
/// (either case), otherwise it stays literal (XEP-0106 §4.2 step 3). Escaping is not idempotent:
/// escaping an already-escaped string escapes the backslashes of its sequences, which is the
/// correct XEP-0106 behaviour for a source address that happens to contain `\27`.
pub fn escape_localpart(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len() + 8);
    for (i, c) in raw.char_indices() {
        let code = match c {
            '\\' if code_at(raw, i + 1).is_some() => "5c",
            '\\' => {
                out.push('\\');
                continue;
            }
            _ => match CODES.iter().find(|(_, ch)| *ch == c) {
                Some((code, _)) => code,
                None => {
                    out.push(c);
                    continue;
                }
            },
        };
        out.push('\\');
        out.push_str(code);
    }
    out
}

/// Reverses XEP-0106 escaping.
///
/// Every `\hh` where `hh` is one of the ten codes (hex in either case) becomes its character, in a
/// single left-to-right pass (so `\5c27` yields the literal text `\27`). Anything else, including
/// partial sequences, a trailing `\` and codes outside the table, is copied unchanged as XEP-0106
/// §4.3 requires for backward compatibility.
pub fn unescape_localpart(escaped: &str) -> String {
    let mut out = String::with_capacity(escaped.len());
    let mut rest = escaped;
    while let Some(pos) = rest.find('\\') {
        out.push_str(&rest[..pos]);
        match code_at(rest, pos + 1) {
            Some(c) => {
                out.push(c);
                rest = &rest[pos + 3..];
            }
            None => {
                out.push('\\');
                rest = &rest[pos + 1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The escape structure of a localpart: for every backslash met by the unescaping scan, the
/// character its sequence decodes to, or `None` for a literal backslash.
///
/// Nodeprep (NFKC plus case folding) can create or destroy escape sequences, e.g. a fullwidth
/// reverse solidus U+FF3C followed by `20` becomes `\20`, and `>` + U+0301 escapes to `\3e` + U+0301
/// which composes to `\3é`. Comparing the skeleton before and after preparation detects such
/// changes of meaning.
pub(crate) fn escape_skeleton(s: &str) -> Vec<Option<char>> {
    let mut skeleton = Vec::new();
    let mut rest = s;
    while let Some(pos) = rest.find('\\') {
        let code = code_at(rest, pos + 1);
        skeleton.push(code);
        rest = &rest[pos + if code.is_some() { 3 } else { 1 }..];
    }
    skeleton
}

/// The character for the escape code starting at byte `at` of `s`, if the next two bytes are one.
fn code_at(s: &str, at: usize) -> Option<char> {
    // Both code bytes are ASCII, so a match implies `at..at + 2` lies on char boundaries.
    let pair = s.as_bytes().get(at..at + 2)?;
    CODES
        .iter()
        .find(|(code, _)| code.as_bytes().eq_ignore_ascii_case(pair))
        .map(|&(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// XEP-0106 §5.1 "JID Examples" table, plus the IRC and IMPS examples.
    const XEP_0106_EXAMPLES: [(&str, &str); 14] = [
        ("space cadet", "space\\20cadet"),
        ("call me \"ishmael\"", "call\\20me\\20\\22ishmael\\22"),
        ("at&t guy", "at\\26t\\20guy"),
        ("d'artagnan", "d\\27artagnan"),
        ("/.fanboy", "\\2f.fanboy"),
        ("::foo::", "\\3a\\3afoo\\3a\\3a"),
        ("<foo>", "\\3cfoo\\3e"),
        ("user@host", "user\\40host"),
        ("c:\\net", "c\\3a\\net"),
        ("c:\\\\net", "c\\3a\\\\net"),
        ("c:\\cool stuff", "c\\3a\\cool\\20stuff"),
        ("c:\\5commas", "c\\3a\\5c5commas"),
        (
            "somenick!user\"&'/:<>\\3address",
            "somenick!user\\22\\26\\27\\2f\\3a\\3c\\3e\\5c3address",
        ),
        ("\\3and\\2is\\5cool", "\\5c3and\\2is\\5c5cool"),
    ];

    #[test]
    fn comp_11_xep0106_examples_escape() {
        for (raw, escaped) in XEP_0106_EXAMPLES {
            assert_eq!(escape_localpart(raw), escaped, "escaping {raw:?}");
        }
    }

    #[test]
    fn comp_11_xep0106_examples_unescape() {
        for (raw, escaped) in XEP_0106_EXAMPLES {
            assert_eq!(unescape_localpart(escaped), raw, "unescaping {escaped:?}");
        }
    }

    #[test]
    fn comp_11_full_table_each_char() {
        for (code, c) in CODES {
            if c == '\\' {
                continue;
            }
            assert_eq!(escape_localpart(&c.to_string()), format!("\\{code}"));
            assert_eq!(unescape_localpart(&format!("\\{code}")), c.to_string());
            assert_eq!(
                unescape_localpart(&format!("\\{}", code.to_ascii_uppercase())),
                c.to_string()
            );
        }
    }

    #[test]
    fn addr_4_rfc7247_three_chars() {
        assert_eq!(escape_localpart("m&m"), "m\\26m");
        assert_eq!(escape_localpart("o'malley"), "o\\27malley");
        assert_eq!(escape_localpart("a/b"), "a\\2fb");
    }

    #[test]
    fn comp_11_backslash_only_escaped_before_a_code() {
        assert_eq!(escape_localpart("\\"), "\\");
        assert_eq!(escape_localpart("a\\b"), "a\\b");
        assert_eq!(escape_localpart("\\2"), "\\2");
        assert_eq!(escape_localpart("\\41"), "\\41");
        // Uppercase code: protected too, because Nodeprep would fold it into a live sequence.
        assert_eq!(escape_localpart("\\2F"), "\\5c2F");
    }

    #[test]
    fn comp_11_escaping_twice_escapes_the_backslash() {
        let once = escape_localpart("o'malley");
        assert_eq!(escape_localpart(&once), "o\\5c27malley");
        assert_eq!(unescape_localpart(&escape_localpart(&once)), once);
    }

    #[test]
    fn comp_11_unescape_leaves_partial_and_unknown_sequences() {
        for s in [
            "\\", "a\\", "\\2", "\\zz", "\\41", "\\5", "\\\\", "é\\", "\\é2",
        ] {
            assert_eq!(unescape_localpart(s), s);
        }
        assert_eq!(unescape_localpart("\\5c27"), "\\27");
        assert_eq!(unescape_localpart("\\\\20"), "\\ ");
    }

    #[test]
    fn comp_11_skeleton() {
        assert_eq!(
            escape_skeleton("a\\20b\\x\\5C"),
            vec![Some(' '), None, Some('\\')]
        );
        assert!(escape_skeleton("plain").is_empty());
    }

    fn raw_localpart() -> impl Strategy<Value = String> {
        // Bias towards the characters that matter here: the specials, backslashes and hex digits.
        let special = prop::sample::select(vec![
            ' ', '"', '&', '\'', '/', ':', '<', '>', '@', '\\', '2', '3', '4', '5', 'c', 'C', 'f',
            'F', 'a', 'e', '0', '7',
        ]);
        prop::collection::vec(prop_oneof![3 => special, 1 => any::<char>()], 0..24)
            .prop_map(|v| v.into_iter().collect())
    }

    proptest! {
        #[test]
        fn comp_11_prop_escape_unescape_identity(raw in raw_localpart()) {
            let escaped = escape_localpart(&raw);
            prop_assert_eq!(unescape_localpart(&escaped), raw);
        }

        #[test]
        fn comp_11_prop_escape_unescape_identity_any(raw in any::<String>()) {
            prop_assert_eq!(unescape_localpart(&escape_localpart(&raw)), raw);
        }

        #[test]
        fn comp_11_prop_escaped_has_no_jid_illegal_ascii(raw in raw_localpart()) {
            let escaped = escape_localpart(&raw);
            prop_assert!(!escaped.contains([' ', '"', '&', '\'', '/', ':', '<', '>', '@']));
        }

        #[test]
        fn comp_11_prop_escape_survives_case_folding(raw in raw_localpart()) {
            // Models Nodeprep's ASCII case folding: the meaning must not change.
            let folded = escape_localpart(&raw).to_ascii_lowercase();
            prop_assert_eq!(unescape_localpart(&folded), raw.to_ascii_lowercase());
        }

        #[test]
        fn comp_11_prop_unescape_never_panics(s in any::<String>()) {
            let _ = unescape_localpart(&s);
            let _ = escape_skeleton(&s);
        }
    }
}
