//! Text an upstream wrote (error messages, bodies, ids), made safe to store and to log: control
//! characters escaped, so a newline in an API's message cannot forge a log line, and cut at a
//! bound, so a 5 MB `error.message` is not written to stderr and the database at every sync.

/// Most characters of upstream text kept in an error.
pub const MAX_TEXT: usize = 2000;

/// `text` with control characters escaped (`\n`, `\u{1b}`) and cut at `max` characters, saying
/// how long it was when cut.
pub fn clip(text: &str, max: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max.saturating_add(64)));
    for (kept, c) in text.chars().enumerate() {
        if kept >= max {
            out.push_str(&format!("… (cut: {} bytes in all)", text.len()));
            return out;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::clip;

    #[test]
    fn escapes_control_characters_and_cuts_long_text() {
        assert_eq!(clip("plain text", 100), "plain text");
        assert_eq!(
            clip("bad\nINFO forged line\r\u{1b}[31m", 100),
            "bad\\nINFO forged line\\r\\u{1b}[31m"
        );
        let long = "é".repeat(5000);
        let cut = clip(&long, 10);
        assert!(cut.starts_with(&"é".repeat(10)), "{cut}");
        assert!(cut.ends_with("… (cut: 10000 bytes in all)"), "{cut}");
        assert_eq!(clip(&"x".repeat(10), 10), "x".repeat(10));
    }
}
