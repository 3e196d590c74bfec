//! Billed-token counting for training files, the way OpenAI's cookbook ("Chat fine-tuning data
//! prep") counts: per message 3 tokens plus the encoded length of each value (+1 for a name),
//! plus 3 for the reply primer, each example capped at 16,385 tokens. Fed chunk by chunk, so
//! memory stays bounded by the longest line however large the file.

use serde_json::Value;

use super::bpe::Bpe;

/// tiktoken's split pattern for o200k_base.
const O200K_PATTERN: &str = concat!(
    r#"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?"#,
    "|",
    r#"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?"#,
    "|",
    r#"\p{N}{1,3}"#,
    "|",
    r#" ?[^\s\p{L}\p{N}]+[\r\n/]*"#,
    "|",
    r#"\s*[\r\n]+"#,
    "|",
    r#"\s+(?!\S)"#,
    "|",
    r#"\s+"#
);
/// tiktoken's split pattern for cl100k_base.
const CL100K_PATTERN: &str = r#"'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s"#;

/// Billing cap per example.
pub const MAX_TOKENS_PER_EXAMPLE: u64 = 16_385;
/// A line longer than this is not parsed; it counts as a capped example.
const MAX_LINE: usize = 8 * 1024 * 1024;

/// Which tokenizer a model uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    O200k,
    Cl100k,
}

impl Encoding {
    /// o200k_base for gpt-4o, gpt-4.1, gpt-5 and o-series; cl100k_base for gpt-3.5, gpt-4 and
    /// the davinci-002/babbage-002 base models.
    pub fn for_model(model: &str) -> Self {
        let m = crate::cost::pricing::base_model(model);
        let old = m.starts_with("gpt-3.5")
            || m.starts_with("davinci")
            || m.starts_with("babbage")
            || (m.starts_with("gpt-4")
                && !m.starts_with("gpt-4o")
                && !m.starts_with("gpt-4.1")
                && !m.starts_with("gpt-4.5"));
        if old { Self::Cl100k } else { Self::O200k }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::O200k => "o200k_base",
            Self::Cl100k => "cl100k_base",
        }
    }

    /// Builds the tokenizer (~5 MB): only when a file is really being counted, and dropped
    /// afterwards (see `Tokenizers`).
    pub fn build(self) -> Result<Bpe, TokenizerError> {
        let (text, pattern) = match self {
            Self::O200k => (
                include_str!("../../assets/o200k_base.tiktoken"),
                O200K_PATTERN,
            ),
            Self::Cl100k => (
                include_str!("../../assets/cl100k_base.tiktoken"),
                CL100K_PATTERN,
            ),
        };
        let built = Bpe::from_tiktoken(text, pattern);
        super::bpe::release_embedded(text);
        built.map_err(|e| TokenizerError {
            encoding: self.name(),
            detail: e.to_string(),
        })
    }
}

/// A tokenizer that could not be built (its embedded vocabulary is damaged).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("tokenizer {encoding}: {detail}")]
pub struct TokenizerError {
    pub encoding: &'static str,
    pub detail: String,
}

/// Tokenizers built for one round of counting and freed with it: a daemon counts a training
/// file once per file, so nothing is gained by keeping a vocabulary (~5 MB) between rounds.
#[derive(Default)]
pub struct Tokenizers {
    o200k: Option<Bpe>,
    cl100k: Option<Bpe>,
}

impl Tokenizers {
    /// The tokenizer for `encoding`, built on first use in this round.
    pub fn get(&mut self, encoding: Encoding) -> Result<&Bpe, TokenizerError> {
        let slot = match encoding {
            Encoding::O200k => &mut self.o200k,
            Encoding::Cl100k => &mut self.cl100k,
        };
        if slot.is_none() {
            *slot = Some(encoding.build()?);
        }
        slot.as_ref().ok_or_else(|| TokenizerError {
            encoding: encoding.name(),
            detail: "not built".into(),
        })
    }
}

/// The result of counting a file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FileCount {
    pub examples: u64,
    /// Sum over examples of min(tokens, cap): what one epoch bills.
    pub tokens: u64,
    /// Lines that were not a JSON object; they are not billed by the API either.
    pub malformed: u64,
}

/// Counts a JSONL training file fed in arbitrary chunks.
pub struct Counter<'a> {
    bpe: &'a Bpe,
    line: Vec<u8>,
    overlong: bool,
    count: FileCount,
    peak: usize,
}

impl<'a> Counter<'a> {
    pub fn new(bpe: &'a Bpe) -> Self {
        Self {
            bpe,
            line: Vec::new(),
            overlong: false,
            count: FileCount::default(),
            peak: 0,
        }
    }

    /// Feeds the next chunk of the file.
    pub fn feed(&mut self, mut chunk: &[u8]) {
        while let Some(pos) = chunk.iter().position(|b| *b == b'\n') {
            self.push(&chunk[..pos]);
            self.end_line();
            chunk = &chunk[pos + 1..];
        }
        self.push(chunk);
    }

    fn push(&mut self, bytes: &[u8]) {
        if self.overlong {
            return;
        }
        if self.line.len() + bytes.len() > MAX_LINE {
            self.overlong = true;
            self.line = Vec::new();
        } else {
            self.line.extend_from_slice(bytes);
            self.peak = self.peak.max(self.line.len());
        }
    }

    fn end_line(&mut self) {
        if self.overlong {
            self.count.examples += 1;
            self.count.tokens += MAX_TOKENS_PER_EXAMPLE;
            self.overlong = false;
        } else if !self.line.iter().all(u8::is_ascii_whitespace) {
            match serde_json::from_slice::<Value>(&self.line) {
                Ok(v @ Value::Object(_)) => {
                    self.count.examples += 1;
                    self.count.tokens += example_tokens(self.bpe, &v).min(MAX_TOKENS_PER_EXAMPLE);
                }
                _ => self.count.malformed += 1,
            }
        }
        self.line.clear();
    }

    /// The most bytes ever buffered: the longest line, however large the file.
    pub fn peak_buffer(&self) -> usize {
        self.peak
    }

    /// Ends the file (a last line without a newline counts too).
    pub fn finish(mut self) -> FileCount {
        if !self.line.is_empty() || self.overlong {
            self.end_line();
        }
        self.count
    }
}

fn text_tokens(bpe: &Bpe, v: &Value) -> u64 {
    match v {
        Value::String(s) => bpe.count(s),
        Value::Null => 0,
        // Content parts: count their text; other structures as their JSON text.
        Value::Array(parts) if parts.iter().all(|p| p.get("type").is_some()) => parts
            .iter()
            .map(|p| p.get("text").map_or(0, |t| text_tokens(bpe, t)))
            .sum(),
        other => bpe.count(&other.to_string()),
    }
}

fn messages_tokens(bpe: &Bpe, messages: &[Value]) -> u64 {
    messages
        .iter()
        .map(|m| {
            let mut n = 3;
            if let Some(obj) = m.as_object() {
                for (k, v) in obj {
                    if k == "weight" {
                        continue;
                    }
                    n += text_tokens(bpe, v);
                    if k == "name" {
                        n += 1;
                    }
                }
            }
            n
        })
        .sum()
}

fn arr(v: Option<&Value>) -> &[Value] {
    v.and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// Tokens of one example: chat (`messages`), DPO (`input` + both outputs), or a bare prompt.
pub fn example_tokens(bpe: &Bpe, ex: &Value) -> u64 {
    let mut n = if let Some(m) = ex.get("messages") {
        messages_tokens(bpe, arr(Some(m)))
    } else if let Some(input) = ex.get("input") {
        messages_tokens(bpe, arr(input.get("messages")))
            + messages_tokens(bpe, arr(ex.get("preferred_output")))
            + messages_tokens(bpe, arr(ex.get("non_preferred_output")))
    } else {
        // Legacy prompt/completion.
        ex.as_object()
            .map_or(0, |o| o.values().map(|v| text_tokens(bpe, v)).sum())
    };
    for key in ["tools", "functions"] {
        if let Some(t) = ex.get(key) {
            n += text_tokens(bpe, t);
        }
    }
    n + 3
}

/// OpenAI's rule for `n_epochs = "auto"`, from the example count.
pub fn auto_epochs(examples: u64) -> u64 {
    const TARGET: u64 = 3;
    if examples == 0 {
        return TARGET;
    }
    if examples * TARGET < 100 {
        (100 / examples).min(25)
    } else if examples * TARGET > 25_000 {
        (25_000 / examples).max(1)
    } else {
        TARGET
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One tokenizer for the tests of this module (building one takes a while).
    fn bpe() -> &'static Bpe {
        static BPE: std::sync::OnceLock<Bpe> = std::sync::OnceLock::new();
        BPE.get_or_init(|| Encoding::O200k.build().unwrap())
    }

    fn count(text: &str, chunk: usize) -> FileCount {
        let mut c = Counter::new(bpe());
        for piece in text.as_bytes().chunks(chunk) {
            c.feed(piece);
        }
        c.finish()
    }

    #[test]
    fn known_counts() {
        // "Hello" and "Hi" are one token each; roles one token each:
        // (3 + 1 + 1) + (3 + 1 + 1) + 3 = 13.
        let one = r#"{"messages":[{"role":"user","content":"Hello"},{"role":"assistant","content":"Hi"}]}"#;
        assert_eq!(
            count(one, 1000),
            FileCount {
                examples: 1,
                tokens: 13,
                malformed: 0
            }
        );
        // A name adds its tokens plus one.
        let named = r#"{"messages":[{"role":"user","name":"bob","content":"Hello"}]}"#;
        assert_eq!(count(named, 1000).tokens, 3 + 1 + 1 + 1 + 1 + 3);
    }

    #[test]
    fn chunking_does_not_change_the_count() {
        let line = r#"{"messages":[{"role":"system","content":"You are terse."},{"role":"user","content":"What is the capital of France?"},{"role":"assistant","content":"Paris."}]}"#;
        let text = format!("{line}\n{line}\n\n{line}");
        let whole = count(&text, 1 << 20);
        assert_eq!(whole.examples, 3);
        assert_eq!(count(&text, 7), whole);
        assert_eq!(count(&text, 1), whole);
    }

    #[test]
    fn caps_and_malformed_lines() {
        let long = "word ".repeat(20_000);
        let text =
            format!("{{\"messages\":[{{\"role\":\"user\",\"content\":\"{long}\"}}]}}\nnot json\n");
        let c = count(&text, 4096);
        assert_eq!(
            (c.examples, c.tokens, c.malformed),
            (1, MAX_TOKENS_PER_EXAMPLE, 1)
        );
    }

    #[test]
    fn dpo_counts_input_and_both_outputs() {
        let ex = serde_json::json!({"input": {"messages": [{"role": "user", "content": "Hello"}]},
            "preferred_output": [{"role": "assistant", "content": "Hi"}],
            "non_preferred_output": [{"role": "assistant", "content": "Hi"}]});
        assert_eq!(example_tokens(bpe(), &ex), 5 + 5 + 5 + 3);
    }

    #[test]
    fn epoch_rule() {
        for (examples, epochs) in [
            (10, 10),
            (1, 25),
            (3, 25),
            (33, 3),
            (34, 3),
            (100, 3),
            (8333, 3),
            (8334, 2),
            (30_000, 1),
        ] {
            assert_eq!(auto_epochs(examples), epochs, "{examples}");
        }
    }

    #[test]
    fn encodings() {
        assert_eq!(
            Encoding::for_model("gpt-4o-mini-2024-07-18"),
            Encoding::O200k
        );
        assert_eq!(
            Encoding::for_model("gpt-4.1-nano-2025-04-14"),
            Encoding::O200k
        );
        assert_eq!(Encoding::for_model("o4-mini-2025-04-16"), Encoding::O200k);
        assert_eq!(Encoding::for_model("gpt-3.5-turbo-0125"), Encoding::Cl100k);
        assert_eq!(Encoding::for_model("gpt-4-0613"), Encoding::Cl100k);
        assert_eq!(Encoding::for_model("babbage-002"), Encoding::Cl100k);
        assert_eq!(
            Encoding::for_model("ft:gpt-3.5-turbo-0125:acme::x"),
            Encoding::Cl100k
        );
    }
}
