//! Reading answers with a bound: a page of 100 jobs is a few hundred KB, and a gateway that
//! answers 100 MB (or a chunked body that never ends) must fail that request, not take the
//! daemon's memory. Training files are streamed instead (`Client::file_content`).

use bytes::Bytes;

/// Most bytes of an error answer read: its message is all that is kept, and that is clipped.
const ERROR_BODY_MAX: usize = 64 * 1024;

/// Why an answer could not be read whole.
#[derive(Debug)]
pub enum ReadError {
    /// Longer than the limit; `declared` is its `Content-Length`, when it gave one.
    TooLarge {
        declared: Option<u64>,
    },
    Transport(reqwest::Error),
}

/// The whole body, or [`ReadError::TooLarge`] as soon as it passes `limit` bytes (before
/// reading anything when `Content-Length` already says so).
pub async fn read_bounded(mut resp: reqwest::Response, limit: u64) -> Result<Bytes, ReadError> {
    let declared = resp.content_length();
    if declared.is_some_and(|n| n > limit) {
        return Err(ReadError::TooLarge { declared });
    }
    let cap = usize::try_from(declared.unwrap_or(0).min(limit)).unwrap_or(0);
    let mut body = Vec::with_capacity(cap);
    while let Some(chunk) = resp.chunk().await.map_err(ReadError::Transport)? {
        let len = u64::try_from(body.len().saturating_add(chunk.len())).unwrap_or(u64::MAX);
        if len > limit {
            return Err(ReadError::TooLarge { declared });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(body))
}

/// The start of an error answer as text (at most [`ERROR_BODY_MAX`] bytes; the rest is not
/// read). A body that fails mid-way gives what arrived.
pub async fn error_text(mut resp: reqwest::Response) -> String {
    let mut body = Vec::new();
    while let Ok(Some(chunk)) = resp.chunk().await {
        let room = ERROR_BODY_MAX.saturating_sub(body.len());
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() >= ERROR_BODY_MAX {
            break;
        }
    }
    String::from_utf8_lossy(&body).into_owned()
}
