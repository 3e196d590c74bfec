//! Ids as URL path segments.
//!
//! An id goes into the path as one segment: `/` and anything a path cannot hold is
//! percent-encoded. Escapes already in the id are kept as they are: Portkey gives Bedrock jobs
//! ids like `arn%3Aaws%3Abedrock%3A…%3Amodel-customization-job%2Fabc` (the ARN put through
//! `encodeURIComponent`) and builds Bedrock's URL from the path exactly as it arrives, so an id
//! encoded a second time (`arn%253Aaws…`) names no job there. OpenAI's ids (`ftjob-…`,
//! `file-…`) need no encoding either way.

/// Why an id cannot be one path segment: the URL library resolves `.` and `..` as "this" and
/// "parent" segments even when escaped (`%2e%2E`), so a job listed with such an id would have
/// its cancel sent to another URL (`POST /fine_tuning/cancel`); an empty id names the list
/// itself; a control character is no part of any provider's ids and would forge log lines.
/// Such a job is stored and shown, and never acted on.
pub fn unusable(id: &str) -> Option<&'static str> {
    if id.is_empty() {
        return Some("it is empty");
    }
    if id.chars().any(char::is_control) {
        return Some("it holds control characters");
    }
    // `%2e` in either case is a dot to the URL library (WHATWG URL, "single-dot segment").
    // The longest such form is `%2e%2e`: longer ids (every real one) need no look.
    if id.len() <= 6
        && matches!(
            id.to_ascii_lowercase().replace("%2e", ".").as_str(),
            "." | ".."
        )
    {
        return Some("it is a dot segment, which URLs resolve to another path");
    }
    None
}

/// Whether the API's `answered` id is the `asked` one: equal, or equal once percent-escapes are
/// decoded (Portkey lists Bedrock's ARNs escaped; an answer may carry them plain).
pub fn same_id(asked: &str, answered: &str) -> bool {
    asked == answered || decode(asked) == decode(answered)
}

/// Percent-escapes decoded, bytewise; anything not an escape is kept.
fn decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |j: usize| b.get(j).and_then(|c| (*c as char).to_digit(16));
        match (b[i], hex(i + 1), hex(i + 2)) {
            (b'%', Some(h), Some(l)) => {
                out.push(u8::try_from(h * 16 + l).unwrap_or(b'%'));
                i += 3;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

/// `id` as one path segment. Callers check [`unusable`] first: a dot segment stays one here and
/// is resolved away by the URL library.
pub fn segment(id: &str) -> String {
    let b = id.as_bytes();
    let mut out = String::with_capacity(id.len());
    for (i, &c) in b.iter().enumerate() {
        let escape = c == b'%'
            && b.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
            && b.get(i + 2).is_some_and(u8::is_ascii_hexdigit);
        // RFC 3986 `pchar`: unreserved, sub-delims, ':' and '@' (and escapes, kept above).
        if escape || c.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@".contains(&c) {
            out.push(c as char);
        } else {
            out.push_str(&format!("%{c:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{same_id, segment, unusable};

    #[test]
    fn ids_become_one_segment_and_their_escapes_are_kept() {
        for (id, want) in [
            ("ftjob-abc123", "ftjob-abc123"),
            ("file-XyZ_09", "file-XyZ_09"),
            (
                "arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Amodel-customization-job%2Fabc",
                "arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Amodel-customization-job%2Fabc",
            ),
            (
                "arn:aws:bedrock:us-east-1:1:model-customization-job/abc",
                "arn:aws:bedrock:us-east-1:1:model-customization-job%2Fabc",
            ),
            ("a b?c#d", "a%20b%3Fc%23d"),
            ("50%off", "50%25off"),
            ("%", "%25"),
            ("%4", "%254"),
            ("é", "%C3%A9"),
            ("..a", "..a"),
        ] {
            assert_eq!(segment(id), want, "{id}");
            assert_eq!(unusable(id), None, "{id}");
        }
    }

    #[test]
    fn ids_compare_equal_across_escaping_only() {
        assert!(same_id("ftjob-a", "ftjob-a"));
        assert!(same_id("arn%3Aaws%3Ab%2Fc", "arn:aws:b/c"));
        assert!(same_id("arn%3aaws", "arn%3Aaws"));
        assert!(!same_id("ftjob-a", "ftjob-OTHER"));
        assert!(!same_id("ftjob-a", "ftjob-a "));
    }

    #[test]
    fn dot_segments_empty_ids_and_control_characters_are_unusable() {
        for id in [
            "",
            ".",
            "..",
            "%2e",
            "%2E",
            "%2e%2e",
            "%2E%2e",
            ".%2e",
            "%2e.",
            "a\nb",
            "x\r",
            "\u{1b}[31m",
        ] {
            assert!(unusable(id).is_some(), "{id:?}");
        }
        for id in ["...", "%2e%2e%2e", "a.", ".a", "%2ea"] {
            assert_eq!(unusable(id), None, "{id:?}");
        }
    }
}
