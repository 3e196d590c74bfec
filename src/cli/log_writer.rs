//! Log lines on stderr, one per event, whatever the event holds: a newline or other control
//! character inside a field (an API's error message, a job id from a hostile listing) is
//! written escaped (`\n`), so no upstream can forge a log line for journald or a log shipper.

use std::io::Write;

/// Escapes control characters in each formatted event but its final newline. Colours (ESC)
/// pass only when the output is a terminal that shows them.
#[derive(Clone, Copy)]
pub struct EscapingStderr {
    pub ansi: bool,
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for EscapingStderr {
    type Writer = Self;
    fn make_writer(&'a self) -> Self::Writer {
        *self
    }
}

impl Write for EscapingStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        std::io::stderr()
            .lock()
            .write_all(&escape(buf, self.ansi))?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

/// `event` with every control byte but a trailing newline, a tab and (for a terminal) ESC
/// escaped.
pub fn escape(event: &[u8], ansi: bool) -> Vec<u8> {
    let (body, end) = match event.split_last() {
        Some((b'\n', body)) => (body, &b"\n"[..]),
        _ => (event, &b""[..]),
    };
    let mut out = Vec::with_capacity(event.len());
    for &b in body {
        match b {
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.push(b),
            0x1b if ansi => out.push(b),
            b if b < 0x20 || b == 0x7f => out.extend_from_slice(format!("\\x{b:02x}").as_bytes()),
            b => out.push(b),
        }
    }
    out.extend_from_slice(end);
    out
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn one_event_stays_one_line() {
        let forged = b" WARN sync: error=bad\n ERROR ftguard: forged\r\x1b[2J\x00 tail\n";
        let out = String::from_utf8(escape(forged, false)).unwrap();
        assert_eq!(
            out,
            " WARN sync: error=bad\\n ERROR ftguard: forged\\r\\x1b[2J\\x00 tail\n"
        );
        assert_eq!(out.matches('\n').count(), 1);
        assert_eq!(
            escape(b"\x1b[32mok\x1b[0m\tx\n", true),
            b"\x1b[32mok\x1b[0m\tx\n"
        );
        assert_eq!(escape("é ü\n".as_bytes(), false), "é ü\n".as_bytes());
    }
}
