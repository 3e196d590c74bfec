//! `show`'s training curve: the train and validation loss over steps as two sparklines on one
//! scale, with the checkpoints marked beneath, and the checkpoints listed.

use crate::outln;
use ftguard::model::metrics::{Checkpoint, Curves};
use ftguard::policy::format::loss;

/// Columns of the sparklines.
const WIDTH: usize = 60;
const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/// The column of `step` on a line from step 0 to `last`.
fn column(step: i64, last: i64) -> usize {
    let span = last.max(1);
    let cols = i64::try_from(WIDTH).unwrap_or(60) - 1;
    usize::try_from(step.clamp(0, span).saturating_mul(cols) / span)
        .unwrap_or(0)
        .min(WIDTH - 1)
}

/// The mean of each of `WIDTH` equal step ranges from 0 to `last` (None where none reported).
fn buckets(series: &[(i64, f64)], last: i64) -> Vec<Option<f64>> {
    let mut sums = vec![(0.0, 0u32); WIDTH];
    for &(step, v) in series {
        let i = column(step, last);
        sums[i].0 += v;
        sums[i].1 += 1;
    }
    sums.into_iter()
        .map(|(s, n)| (n > 0).then(|| s / f64::from(n)))
        .collect()
}

/// One sparkline on the scale [lo, hi].
fn line(values: &[Option<f64>], lo: f64, hi: f64) -> String {
    values
        .iter()
        .map(|v| match v {
            None => ' ',
            Some(v) => {
                let f = if hi > lo { (v - lo) / (hi - lo) } else { 0.5 };
                let i = (f * 7.0).round().clamp(0.0, 7.0);
                BARS[usize::try_from(ftguard::model::floor_u64(i)).map_or(7, |i| i.min(7))]
            }
        })
        .collect()
}

/// Prints the curve section; nothing when no metrics are stored.
pub fn print(curves: &Curves, checkpoints: &[Checkpoint]) {
    let Some(last) = curves.last_step() else {
        return;
    };
    let train = buckets(&curves.train_loss, last);
    let valid = buckets(&curves.valid_loss, last);
    let all = train.iter().chain(&valid).flatten().copied();
    let (lo, hi) = all.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    outln!(
        "  training        step {last}{} (loss {} to {}, {} steps reported)",
        curves
            .total_steps
            .map_or(String::new(), |t| format!(" of {t}")),
        loss(lo),
        loss(hi),
        curves.train_loss.len()
    );
    outln!("    train_loss    {}", line(&train, lo, hi));
    if valid.iter().any(Option::is_some) {
        outln!("    valid_loss    {}", line(&valid, lo, hi));
    }
    if !checkpoints.is_empty() {
        let mut marks = vec![' '; WIDTH];
        for c in checkpoints {
            marks[column(c.step, last)] = '^';
        }
        outln!("    checkpoints   {}", marks.iter().collect::<String>());
        outln!("  checkpoints:");
        for c in checkpoints {
            let m = &c.metrics;
            let figure = |name: &str, v: Option<f64>| v.map(|v| format!(" {name} {}", loss(v)));
            outln!(
                "    step {:<7} {}{}{}{}",
                c.step,
                c.model,
                figure("train_loss", m.train_loss).unwrap_or_default(),
                figure("valid_loss", m.valid_loss).unwrap_or_default(),
                figure("full_valid_loss", m.full_valid_loss).unwrap_or_default(),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_falling_curve_falls_and_gaps_stay_blank() {
        let series: Vec<(i64, f64)> = (0..=600).map(|s| (s, 2.0 - s as f64 / 400.0)).collect();
        let b = buckets(&series, 600);
        let l = line(&b, 0.5, 2.0);
        assert_eq!(l.chars().count(), WIDTH);
        assert_eq!(l.chars().next(), Some('█'));
        assert_eq!(l.chars().last(), Some('▁'));
        let sparse = line(&buckets(&[(0, 1.0), (600, 1.0)], 600), 0.0, 2.0);
        let drawn: Vec<(usize, char)> = sparse.chars().enumerate().filter(|c| c.1 != ' ').collect();
        assert_eq!(drawn, [(0, '▅'), (WIDTH - 1, '▅')]);
    }
}
