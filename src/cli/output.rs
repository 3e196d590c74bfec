//! What the CLI writes to stdout. `println!` panics when the reader has gone
//! (`ftguard jobs | head -3`), and with `panic = "abort"` that is a crash with a core dump.
//! These macros stop quietly instead, as other Unix tools do.

use std::io::Write;

/// Writes to stdout. When the reader has closed the pipe the process ends with status 0 (the
/// reader took what it wanted); another write error — a full disk behind a redirect — ends it
/// with a message naming stdout and status 1.
pub fn write(args: std::fmt::Arguments<'_>) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_fmt(args).and_then(|()| out.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("error: could not write to stdout: {e}");
        std::process::exit(1);
    }
}

/// `print!` that does not panic on a closed pipe (see [`write()`](crate::cli::output::write)).
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => { $crate::cli::output::write(format_args!($($arg)*)) };
}

/// `println!` that does not panic on a closed pipe (see [`write()`](crate::cli::output::write)).
#[macro_export]
macro_rules! outln {
    () => { $crate::cli::output::write(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::cli::output::write(format_args!("{}\n", format_args!($($arg)*))) };
}

/// Writes `value` as pretty JSON and a newline to stdout as it is serialized, without building
/// the text first (a replay of 100,000 jobs is tens of megabytes of it); errors as [`write()`].
pub fn write_json<T: serde::Serialize>(value: &T) {
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let written = serde_json::to_writer_pretty(&mut out, value)
        .map_err(std::io::Error::from)
        .and_then(|()| out.write_all(b"\n"))
        .and_then(|()| out.flush());
    if let Err(e) = written {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("error: could not write to stdout: {e}");
        std::process::exit(1);
    }
}
