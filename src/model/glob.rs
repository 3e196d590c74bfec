//! Shell-style globs for model names, suffixes and metadata: what `match` and `--model` take.

/// Shell-style glob: `*` any run, `?` one character.
pub fn glob(pattern: &str, text: &str) -> bool {
    // Model names and metadata are ASCII in practice: match their bytes without allocating
    // (this runs for every job and pattern of every pass); otherwise match characters.
    if pattern.is_ascii() && text.is_ascii() {
        glob_in(pattern.as_bytes(), text.as_bytes())
    } else {
        let p: Vec<char> = pattern.chars().collect();
        let t: Vec<char> = text.chars().collect();
        glob_in(&p, &t)
    }
}

fn glob_in<T: PartialEq + GlobSymbol>(p: &[T], t: &[T]) -> bool {
    let (mut pi, mut ti) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ti < t.len() {
        match p.get(pi) {
            Some(c) if c.is_star() => {
                star = Some(pi);
                mark = ti;
                pi += 1;
            }
            Some(c) if c.is_any() || *c == t[ti] => {
                pi += 1;
                ti += 1;
            }
            _ => match star {
                Some(s) => {
                    pi = s + 1;
                    mark += 1;
                    ti = mark;
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(GlobSymbol::is_star)
}

/// `*` and `?` as bytes or characters.
trait GlobSymbol {
    fn is_star(&self) -> bool;
    fn is_any(&self) -> bool;
}

impl GlobSymbol for u8 {
    fn is_star(&self) -> bool {
        *self == b'*'
    }
    fn is_any(&self) -> bool {
        *self == b'?'
    }
}

impl GlobSymbol for char {
    fn is_star(&self) -> bool {
        *self == '*'
    }
    fn is_any(&self) -> bool {
        *self == '?'
    }
}

#[cfg(test)]
mod tests {
    use super::glob;

    #[test]
    fn globs() {
        for (p, t, want) in [
            ("gpt-4o*", "gpt-4o-mini-2024-07-18", true),
            ("gpt-4o*", "gpt-4.1", false),
            ("*mini*", "gpt-4o-mini", true),
            ("exp-?", "exp-1", true),
            ("exp-?", "exp-12", false),
            ("*", "", true),
            ("a*b*c", "aXbYc", true),
            ("a*b*c", "aXbY", false),
            // Beyond ASCII, `?` is one character, not one byte.
            ("équipe-?", "équipe-é", true),
            ("?", "é", true),
            ("??", "é", false),
            ("*-ml", "données-ml", true),
        ] {
            assert_eq!(glob(p, t), want, "{p} vs {t}");
        }
    }
}
