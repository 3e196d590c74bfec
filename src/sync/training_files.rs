//! Projected-cost inputs: downloads training files of active jobs through their account
//! (streamed, bounded memory) and caches their billed-token counts in the store.

use futures_util::StreamExt;
use tracing::Instrument;

use crate::cost::FileTokens;
use crate::cost::tokens::{Counter, Encoding, TokenizerError, Tokenizers};
use crate::model::time;
use crate::provider::{Client, ProviderError};
use crate::store::{FileKey, JobFilter, Store, StoreError};

/// A failed count is retried after this long.
const RETRY_FAILED_AFTER: i64 = 3600;

/// Counts the training files of active token-billed jobs not counted yet. Returns how many
/// files were counted; failures are logged and recorded, never fatal.
pub async fn count_missing_files(clients: &[Client], store: &Store) -> Result<u32, StoreError> {
    let known = store.file_tokens().await?;
    let active = store.jobs(&JobFilter::active()).await?;
    let mut counted = 0;
    let now = time::now();
    // Built on the first file that needs one and freed when this round ends.
    let mut tokenizers = Tokenizers::default();
    for sj in active {
        let job = &sj.job;
        if job.method.as_deref() == Some("reinforcement") {
            continue;
        }
        let Some(file) = job.training_file.clone() else {
            continue;
        };
        let encoding = Encoding::for_model(&job.model);
        let key: FileKey = (
            sj.account.to_string(),
            file.clone(),
            encoding.name().to_owned(),
        );
        if known.contains_key(&key) {
            continue;
        }
        if store
            .file_count_failed_at(&key)
            .await?
            .is_some_and(|t| now - t < RETRY_FAILED_AFTER)
        {
            continue;
        }
        let Some(client) = clients.iter().find(|c| c.account() == &sj.account) else {
            continue;
        };
        let span = tracing::info_span!("count_file", account = %sj.account, job_id = %job.id, file = %file);
        let result = count_file(client, &file, encoding, &mut tokenizers)
            .instrument(span.clone())
            .await;
        match result {
            Ok((tokens, malformed, bytes)) => {
                tracing::info!(parent: &span, examples = tokens.examples, tokens = tokens.tokens, bytes, "training file counted");
                store
                    .save_file_tokens(&key, Ok((tokens, malformed, bytes)), time::now())
                    .await?;
                counted += 1;
            }
            Err(e) => {
                tracing::warn!(parent: &span, error = %e, "cannot count the training file; projected cost unknown for now");
                store
                    .save_file_tokens(&key, Err(&e.to_string()), time::now())
                    .await?;
            }
        }
    }
    Ok(counted)
}

/// What counting a file found.
#[derive(Debug, Clone, Copy)]
pub struct CountReport {
    pub tokens: FileTokens,
    pub malformed: u64,
    pub bytes: u64,
    /// Most bytes held at once: memory stays bounded by the longest line.
    pub peak_buffer: usize,
}

/// Why a training file could not be counted.
#[derive(Debug, thiserror::Error)]
pub enum CountError {
    #[error(transparent)]
    Fetch(#[from] ProviderError),
    #[error(transparent)]
    Tokenizer(#[from] TokenizerError),
}

/// Streams a file and counts it.
pub async fn count_file_report(
    client: &Client,
    file: &str,
    encoding: Encoding,
    tokenizers: &mut Tokenizers,
) -> Result<CountReport, CountError> {
    // The file first: loading a tokenizer costs ~50 MB of RSS, not worth it for a file that
    // cannot be fetched (a 404 leaves the process small).
    let mut stream = Box::pin(client.file_content(file).await?);
    let mut counter = Counter::new(tokenizers.get(encoding)?);
    let mut bytes = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        bytes = bytes.saturating_add(chunk.len() as u64);
        counter.feed(&chunk);
    }
    let peak_buffer = counter.peak_buffer();
    let c = counter.finish();
    Ok(CountReport {
        tokens: FileTokens {
            examples: c.examples,
            tokens: c.tokens,
        },
        malformed: c.malformed,
        bytes,
        peak_buffer,
    })
}

/// Streams a file and counts it. Returns (tokens, malformed lines, bytes read).
pub async fn count_file(
    client: &Client,
    file: &str,
    encoding: Encoding,
    tokenizers: &mut Tokenizers,
) -> Result<(FileTokens, u64, u64), CountError> {
    count_file_report(client, file, encoding, tokenizers)
        .await
        .map(|r| (r.tokens, r.malformed, r.bytes))
}
