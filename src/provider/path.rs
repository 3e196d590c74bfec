//! Ids as URL path segments.
//!
//! An id goes into the path as one segment: `/` and anything a path cannot hold is
//! percent-encoded. Escapes already in the id are kept as they are: Portkey gives Bedrock jobs
//! ids like `arn%3Aaws%3Abedrock%3A…%3Amodel-customization-job%2Fabc` (the ARN put through
//! `encodeURIComponent`) and builds Bedrock's URL from the path exactly as it arrives, so an id
//! encoded a second time (`arn%253Aaws…`) names no job there. OpenAI's ids (`ftjob-…`,
//! `file-…`) need no encoding either way.

/// `id` as one path segment.
pub fn segment(id: &str) -> String {
    // "." and ".." would be read as "this" and "parent" segments.
    if id == "." || id == ".." {
        return id.replace('.', "%2E");
    }
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
    use super::segment;

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
            ("..", "%2E%2E"),
            (".", "%2E"),
            ("..a", "..a"),
        ] {
            assert_eq!(segment(id), want, "{id}");
        }
    }
}
