//! Byte-pair encoding, for counting the tokens of training files. Same vocabularies, split
//! pattern and merge rules as OpenAI's tiktoken (`encode_ordinary`), so the counts are the same
//! (tests compare them), but the vocabulary is packed: one byte arena, offsets and an
//! open-addressing table of `u32`, about 5 MB for o200k instead of the ~50 MB tiktoken's
//! `CoreBPE` holds (four hash maps of small vectors, built in a few hundred milliseconds).
//! Only the count is needed, so no token ids are produced.

use std::collections::BinaryHeap;

use base64::Engine as _;
use fancy_regex::Regex;

/// A vocabulary and its split pattern, ready to count.
pub struct Bpe {
    /// Every token's bytes, back to back, in rank order.
    bytes: Vec<u8>,
    /// `starts[r]..starts[r + 1]` are the bytes of rank `r`.
    starts: Vec<u32>,
    /// Open addressing by hash of the bytes: rank + 1, or 0 for an empty slot.
    table: Vec<u32>,
    regex: Regex,
}

const NONE: u32 = u32::MAX;

/// The table's slot for a hash: its low bits, on purpose (the mask is below the table's length).
#[allow(clippy::cast_possible_truncation)]
fn slot(h: u64, mask: usize) -> usize {
    (h as usize) & mask
}

fn hash(bytes: &[u8]) -> u64 {
    // FxHash-style: fast and good enough for a fixed table that is never attacker-chosen.
    let mut h: u64 = bytes.len() as u64;
    for &b in bytes {
        h = (h.rotate_left(5) ^ u64::from(b)).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
    h
}

/// A vocabulary or split pattern that cannot be built: which line, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct VocabularyError(pub String);

impl Bpe {
    /// Builds from a `.tiktoken` file (`base64-token rank` per line, ranks 0, 1, 2...).
    pub fn from_tiktoken(text: &str, pattern: &str) -> Result<Self, VocabularyError> {
        Self::build(text, pattern).map_err(VocabularyError)
    }

    fn build(text: &str, pattern: &str) -> Result<Self, String> {
        let lines = text.lines().filter(|l| !l.is_empty());
        let mut bytes = Vec::with_capacity(text.len() / 2);
        let mut starts = vec![0u32];
        for (i, line) in lines.enumerate() {
            let (token, rank) = line
                .split_once(' ')
                .ok_or_else(|| format!("vocabulary line {}: no rank", i + 1))?;
            if rank.parse::<usize>().ok() != Some(i) {
                return Err(format!(
                    "vocabulary line {}: rank {rank:?} is out of order",
                    i + 1
                ));
            }
            base64::engine::general_purpose::STANDARD
                .decode_vec(token, &mut bytes)
                .map_err(|e| format!("vocabulary line {}: {e}", i + 1))?;
            starts.push(u32::try_from(bytes.len()).map_err(|_| "vocabulary too large")?);
        }
        let n = starts.len() - 1;
        let mut table = vec![0u32; (n * 2).next_power_of_two().max(2)];
        let mask = table.len() - 1;
        for rank in 0..n {
            let token = &bytes[starts[rank] as usize..starts[rank + 1] as usize];
            let mut slot = slot(hash(token), mask);
            while table[slot] != 0 {
                slot = (slot + 1) & mask;
            }
            table[slot] = u32::try_from(rank + 1).unwrap_or(u32::MAX);
        }
        let regex = Regex::new(pattern).map_err(|e| format!("split pattern: {e}"))?;
        bytes.shrink_to_fit();
        Ok(Self {
            bytes,
            starts,
            table,
            regex,
        })
    }

    fn token(&self, rank: u32) -> &[u8] {
        let r = rank as usize;
        &self.bytes[self.starts[r] as usize..self.starts[r + 1] as usize]
    }

    /// The rank of a token, if these bytes are one.
    fn rank(&self, piece: &[u8]) -> u32 {
        let mask = self.table.len() - 1;
        let mut slot = slot(hash(piece), mask);
        loop {
            match self.table[slot] {
                0 => return NONE,
                r if self.token(r - 1) == piece => return r - 1,
                _ => slot = (slot + 1) & mask,
            }
        }
    }

    /// How many tokens `text` encodes to (what tiktoken's `encode_ordinary(text).len()` says).
    pub fn count(&self, text: &str) -> u64 {
        let mut n = 0u64;
        for m in self.regex.find_iter(text) {
            // The pattern has no construct that can fail at run time on valid UTF-8 except
            // backtracking limits; such a piece is counted byte by byte (an upper bound).
            let piece = match m {
                Ok(m) => m.as_str().as_bytes(),
                Err(_) => return n + text.len() as u64,
            };
            n += self.piece_tokens(piece);
        }
        n
    }

    fn piece_tokens(&self, piece: &[u8]) -> u64 {
        if piece.len() <= 1 || self.rank(piece) != NONE {
            return piece.len().min(1) as u64;
        }
        if piece.len() < 100 {
            self.merge_small(piece)
        } else {
            self.merge_large(piece)
        }
    }

    /// tiktoken's `_byte_pair_merge`: repeatedly merges the adjacent pair of lowest rank
    /// (leftmost on ties). Returns the number of parts left.
    fn merge_small(&self, piece: &[u8]) -> u64 {
        // (start, rank of the pair starting here)
        let mut parts: Vec<(usize, u32)> = Vec::with_capacity(piece.len() + 1);
        for i in 0..piece.len() - 1 {
            parts.push((i, self.rank(&piece[i..i + 2])));
        }
        parts.push((piece.len() - 1, NONE));
        parts.push((piece.len(), NONE));
        let rank_at = |parts: &[(usize, u32)], i: usize| {
            if i + 3 < parts.len() {
                self.rank(&piece[parts[i].0..parts[i + 3].0])
            } else {
                NONE
            }
        };
        while let Some((i, _)) = parts[..parts.len() - 1]
            .iter()
            .enumerate()
            .filter(|(_, p)| p.1 != NONE)
            .min_by_key(|(i, p)| (p.1, *i))
        {
            if i > 0 {
                parts[i - 1].1 = rank_at(&parts, i - 1);
            }
            parts[i].1 = rank_at(&parts, i);
            parts.remove(i + 1);
        }
        (parts.len() - 1) as u64
    }

    /// tiktoken's `_byte_pair_merge_large`: the same merges with a heap and a linked list, so a
    /// long piece (a run of thousands of letters) costs O(n log n), not O(n²).
    fn merge_large(&self, piece: &[u8]) -> u64 {
        #[derive(Clone, Copy)]
        struct State {
            prev: usize,
            end: usize,
            next_end: usize,
            next_rank: u32,
        }
        // Max-heap of Reverse((rank, start)): lowest rank first, leftmost on ties.
        let mut heap = BinaryHeap::with_capacity(piece.len());
        let mut state: Vec<State> = Vec::with_capacity(piece.len());
        state.push(State {
            prev: usize::MAX,
            end: 1,
            next_end: 2,
            next_rank: NONE,
        });
        for i in 0..piece.len() - 1 {
            let rank = self.rank(&piece[i..i + 2]);
            if rank != NONE {
                heap.push(std::cmp::Reverse((rank, i)));
                state[i].next_rank = rank;
            }
            state.push(State {
                prev: i,
                end: i + 2,
                next_end: i + 3,
                next_rank: NONE,
            });
        }
        let potential = |state: &mut Vec<State>,
                         heap: &mut BinaryHeap<std::cmp::Reverse<(u32, usize)>>,
                         start: usize,
                         next_end: usize| {
            state[start].next_end = next_end;
            state[start].next_rank = NONE;
            if next_end <= piece.len() {
                let rank = self.rank(&piece[start..next_end]);
                if rank != NONE {
                    heap.push(std::cmp::Reverse((rank, start)));
                    state[start].next_rank = rank;
                }
            }
        };
        while let Some(std::cmp::Reverse((rank, left_start))) = heap.pop() {
            if rank != state[left_start].next_rank {
                continue; // invalidated by an earlier merge
            }
            let right_start = state[left_start].end;
            let right_end = state[left_start].next_end;
            let right_next_end = state[right_start].next_end;
            state[left_start].end = right_end;
            potential(&mut state, &mut heap, left_start, right_next_end);
            if right_end < state.len() {
                state[right_end].prev = left_start;
            }
            if left_start > 0 {
                let prev_start = state[left_start].prev;
                potential(&mut state, &mut heap, prev_start, right_end);
            }
            state[right_start].next_rank = NONE;
        }
        let mut parts = 0;
        let mut i = 0;
        while i < state.len() {
            parts += 1;
            i = state[i].end;
        }
        parts
    }
}

/// Drops the resident pages of a vocabulary embedded in the binary once it has been parsed:
/// otherwise the ~3.6 MB of text read while building stay in the idle daemon's RSS (clean
/// pages, reclaimable, but counted against it and its cgroup).
pub fn release_embedded(text: &'static str) {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: sysconf has no preconditions.
        let page = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(4096);
        let start = text.as_ptr() as usize;
        let first = start.div_ceil(page) * page;
        let last = (start + text.len()) / page * page;
        if last > first {
            // SAFETY: [first, last) lies wholly inside an immutable static in the binary's
            // read-only file mapping. MADV_DONTNEED on such pages only makes the next read fault
            // them in again from the file, with the same contents; nothing can observe a
            // difference, and a failure (it is advice) changes nothing.
            unsafe {
                libc::madvise(
                    first as *mut libc::c_void,
                    last - first,
                    libc::MADV_DONTNEED,
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::OnceLock;

    use proptest::prelude::*;

    use super::super::tokens::Encoding;
    use super::*;

    fn ours(e: Encoding) -> &'static Bpe {
        static O: OnceLock<Bpe> = OnceLock::new();
        static C: OnceLock<Bpe> = OnceLock::new();
        match e {
            Encoding::O200k => O.get_or_init(|| e.build().unwrap()),
            Encoding::Cl100k => C.get_or_init(|| e.build().unwrap()),
        }
    }

    fn reference(e: Encoding) -> &'static tiktoken_rs::CoreBPE {
        static O: OnceLock<tiktoken_rs::CoreBPE> = OnceLock::new();
        static C: OnceLock<tiktoken_rs::CoreBPE> = OnceLock::new();
        match e {
            Encoding::O200k => O.get_or_init(|| tiktoken_rs::o200k_base().unwrap()),
            Encoding::Cl100k => C.get_or_init(|| tiktoken_rs::cl100k_base().unwrap()),
        }
    }

    fn same(text: &str) {
        for e in [Encoding::O200k, Encoding::Cl100k] {
            assert_eq!(
                ours(e).count(text),
                reference(e).encode_ordinary(text).len() as u64,
                "{} on {text:?}",
                e.name()
            );
        }
    }

    #[test]
    fn counts_like_tiktoken_on_a_corpus() {
        let long_word = "antidisestablishmentarianism".repeat(40);
        let letters: String = (0..3000u32)
            .map(|i| char::from(b'a' + u8::try_from(i * 7 % 26).unwrap()))
            .collect();
        let corpus = [
            "",
            "Hello",
            "Hello, world! How's it going? I'LL be there; we've DONE it.",
            "You are a helpful assistant that answers in JSON.\n\n{\"answer\": 42, \"items\": [1, 2, 3]}",
            "fn main() {\n    println!(\"{}\", 1 + 2);\n}\n",
            "naïve café — résumé, Ünïcödé; 東京は日本の首都です。 Привет, мир! مرحبا بالعالم 🚀🔥👍🏽",
            "   leading and trailing   \t\n\n\r\n  ",
            "1234567890 3.14159 1e-9 0x1F 100,000,000",
            "https://example.com/path?query=1&b=2#frag /usr/bin/env",
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            &long_word,
            &letters,
            &" ".repeat(500),
            &"\n".repeat(300),
            &"!?".repeat(200),
            &"🙂".repeat(100),
        ];
        for text in corpus {
            same(text);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn counts_like_tiktoken_on_random_text(text in "(\\PC|[ \\n\\t'.,!?0-9]){0,200}") {
            same(&text);
        }

        #[test]
        fn counts_like_tiktoken_on_long_runs(c in "[a-zA-Zé ]", n in 90usize..400) {
            same(&c.repeat(n));
        }
    }

    #[test]
    fn a_bad_vocabulary_is_a_clear_error() {
        let err = Bpe::from_tiktoken("YQ== 0\nYg== 5\n", "\\w+")
            .err()
            .unwrap()
            .0;
        assert!(
            err.contains("line 2") && err.contains("out of order"),
            "{err}"
        );
        let err = Bpe::from_tiktoken("YQ== 0\n!!! 1\n", "\\w+")
            .err()
            .unwrap()
            .0;
        assert!(err.contains("line 2"), "{err}");
    }
}
