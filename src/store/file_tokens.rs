//! Cached token counts of training files.

use std::collections::HashMap;

use sqlx::Row;

use super::{Store, StoreError};
use crate::cost::FileTokens;

/// (account, file id, encoding name).
pub type FileKey = (String, String, String);

impl Store {
    /// Every successful count.
    pub async fn file_tokens(&self) -> Result<HashMap<FileKey, FileTokens>, StoreError> {
        let rows = sqlx::query("SELECT account, file_id, encoding, examples, tokens FROM file_tokens WHERE error IS NULL")
            .fetch_all(&self.pool)
            .await
            .map_err(|e| self.err(e))?;
        Ok(rows
            .iter()
            .map(|r| {
                let examples: i64 = r.get(3);
                let tokens: i64 = r.get(4);
                (
                    (r.get(0), r.get(1), r.get(2)),
                    FileTokens {
                        examples: u64::try_from(examples).unwrap_or(0),
                        tokens: u64::try_from(tokens).unwrap_or(0),
                    },
                )
            })
            .collect())
    }

    /// When a count last failed, if it did.
    pub async fn file_count_failed_at(&self, key: &FileKey) -> Result<Option<i64>, StoreError> {
        let row = sqlx::query("SELECT counted_at FROM file_tokens WHERE account = ? AND file_id = ? AND encoding = ? AND error IS NOT NULL")
            .bind(&key.0)
            .bind(&key.1)
            .bind(&key.2)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| self.err(e))?;
        Ok(row.map(|r| r.get(0)))
    }

    /// Records a count (or why it failed).
    pub async fn save_file_tokens(
        &self,
        key: &FileKey,
        result: Result<(FileTokens, u64, u64), &str>,
        now: i64,
    ) -> Result<(), StoreError> {
        let (examples, tokens, malformed, bytes, error) = match result {
            Ok((t, malformed, bytes)) => (
                Some(crate::model::count_i64(t.examples)),
                Some(crate::model::count_i64(t.tokens)),
                Some(crate::model::count_i64(malformed)),
                Some(crate::model::count_i64(bytes)),
                None,
            ),
            Err(e) => (None, None, None, None, Some(e)),
        };
        sqlx::query(
            "INSERT OR REPLACE INTO file_tokens (account, file_id, encoding, examples, tokens, malformed, bytes, error, counted_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&key.0)
        .bind(&key.1)
        .bind(&key.2)
        .bind(examples)
        .bind(tokens)
        .bind(malformed)
        .bind(bytes)
        .bind(error)
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(|e| self.err(e))?;
        Ok(())
    }
}
