//! Stopping rules: pure functions of the rung results, so that a replay of the event log
//! takes the same decisions.
//!
//! - [`asha`]: asynchronous successive halving, promotion type (continue the top 1/eta);
//! - [`median`]: Optuna's median pruner, on rungs;
//! - [`paired`]: stop only when the per-image paired bootstrap says worse than the incumbent.
//!
//! Rules that judge a trial on arrival (median, paired) compare it with the trials that
//! completed the rung *before* it (the table is in completion order): the verdict is then
//! the same whether the decision step runs after every event or after a batch of them.

pub mod asha;
pub mod median;
pub mod paired;

use super::policy::RuleKind;
use std::cmp::Ordering;
use std::collections::BTreeMap;

pub use asha::Asha;
pub use median::Median;
pub use paired::{paired_worse, Paired};

/// Rung results of every trial so far, higher is better.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RungTable {
    /// by_rung[k]: (trial number, value) of each trial that completed rung k, in completion order.
    pub by_rung: Vec<Vec<(u64, f64)>>,
    /// Per-image scores (higher is better), mean over the trial's jobs, aligned by image
    /// index, keyed (trial, rung); may be empty when not recorded.
    pub images: BTreeMap<(u64, usize), Vec<f64>>,
    /// The rung iterations, e.g. [50, 150, 450].
    pub levels: Vec<u64>,
}

impl RungTable {
    /// The results at rung `k`, in completion order (empty past the last rung reached).
    pub fn at(&self, k: usize) -> &[(u64, f64)] {
        self.by_rung.get(k).map_or(&[], Vec::as_slice)
    }

    /// `trial`'s value at rung `k`, if it completed it.
    pub fn value(&self, trial: u64, k: usize) -> Option<f64> {
        self.at(k).iter().find(|r| r.0 == trial).map(|r| r.1)
    }

    /// `trial`'s value at rung `k` and the results that completed `k` before it: what a
    /// rule judging the trial on arrival may compare it with.
    pub fn arrival(&self, trial: u64, k: usize) -> Option<(f64, &[(u64, f64)])> {
        let rows = self.at(k);
        let pos = rows.iter().position(|r| r.0 == trial)?;
        Some((rows[pos].1, &rows[..pos]))
    }

    /// Rungs a trial can pause at (all but the last), at least 1: the Bonferroni divisor.
    pub fn non_final(&self) -> usize {
        self.levels.len().saturating_sub(1).max(1)
    }

    /// How evidence names rung `k`: its iterations (`150`), or `#k` without levels.
    pub fn name(&self, k: usize) -> String {
        self.levels
            .get(k)
            .map_or_else(|| format!("#{k}"), u64::to_string)
    }
}

/// Why a rule stopped or continued a trial, shown in reports and the decision log.
#[derive(Clone, Debug, PartialEq)]
pub struct Verdict {
    pub evidence: String,
}

impl Verdict {
    pub fn new(evidence: impl Into<String>) -> Verdict {
        Verdict {
            evidence: evidence.into(),
        }
    }
}

/// A stopping rule; see the module docs for when the decision step calls each method.
pub trait StopRule {
    /// A trial just completed non-final rung `rung`: stop it at once? (None: it pauses and
    /// waits for `promote`).
    fn on_rung(&self, table: &RungTable, trial: u64, rung: usize) -> Option<Verdict>;
    /// Capacity is free: the paused trial to continue next (trial, evidence), best
    /// candidate first; None when no paused trial qualifies now. `paused`: (trial, rung it
    /// is paused at), in the order they paused.
    fn promote(&self, table: &RungTable, paused: &[(u64, usize)]) -> Option<(u64, Verdict)>;
    /// The search is over: why a trial left paused at `rung` stops.
    fn final_stop(&self, table: &RungTable, trial: u64, rung: usize) -> Verdict;
}

/// The rule a sweep's `stop.rule` names. `eta`: ASHA's reduction factor (at least 2, as
/// for the rungs); `alpha`: `paired`'s family-wise error over the rungs.
pub fn rule(kind: RuleKind, eta: u64, alpha: f64) -> Box<dyn StopRule> {
    match kind {
        RuleKind::None => Box::new(NoRule),
        RuleKind::Median => Box::new(Median::default()),
        RuleKind::Asha => Box::new(Asha::new(eta)),
        RuleKind::Paired => Box::new(Paired::new(alpha)),
    }
}

/// `rule: none`: nothing is stopped; a paused trial (there should be none: without a rule
/// jobs do not pause) continues in the order it paused.
struct NoRule;

impl StopRule for NoRule {
    fn on_rung(&self, _: &RungTable, _: u64, _: usize) -> Option<Verdict> {
        None
    }

    fn promote(&self, table: &RungTable, paused: &[(u64, usize)]) -> Option<(u64, Verdict)> {
        let &(trial, k) = paused.first()?;
        let why = format!(
            "none: no stopping rule, continues from rung {}",
            table.name(k)
        );
        Some((trial, Verdict::new(why)))
    }

    fn final_stop(&self, table: &RungTable, _: u64, rung: usize) -> Verdict {
        Verdict::new(format!(
            "none: search over while paused at rung {}",
            table.name(rung)
        ))
    }
}

/// Best first: higher value, NaN last, then the lower trial number (deterministic ties).
pub fn by_merit(a: &(u64, f64), b: &(u64, f64)) -> Ordering {
    match (a.1.is_nan(), b.1.is_nan()) {
        (false, true) => Ordering::Less,
        (true, false) => Ordering::Greater,
        _ => b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)),
    }
}

/// A value for evidence: 4 significant digits, no trailing zeros (`0.6123`, `71.2`, `-3`),
/// whether the metric is a fraction or a percentage.
pub fn num(x: f64) -> String {
    if x == 0.0 || !x.is_finite() {
        return format!("{x}");
    }
    let decimals = (3 - x.abs().log10().floor() as i32).clamp(0, 8) as usize;
    let s = format!("{x:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// A rule that judges a trial once, when it completes a rung (median, paired): what it does
/// not stop there continues at once; what is still paused when the search ends was never
/// judged worse.
pub trait OnArrival {
    const NAME: &'static str;
    /// Stop? and why, against the results that completed rung `k` before `trial`.
    fn judge(&self, table: &RungTable, trial: u64, k: usize) -> (bool, String);
}

impl<R: OnArrival> StopRule for R {
    fn on_rung(&self, table: &RungTable, trial: u64, rung: usize) -> Option<Verdict> {
        let (stop, why) = self.judge(table, trial, rung);
        stop.then(|| Verdict::new(why))
    }

    /// Whatever was not stopped on arrival continues, first paused first.
    fn promote(&self, table: &RungTable, paused: &[(u64, usize)]) -> Option<(u64, Verdict)> {
        let &(trial, k) = paused.first()?;
        Some((trial, Verdict::new(self.judge(table, trial, k).1)))
    }

    fn final_stop(&self, table: &RungTable, _: u64, rung: usize) -> Verdict {
        Verdict::new(format!(
            "{}: search over before promotion from rung {}",
            R::NAME,
            table.name(rung)
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn table(levels: &[u64], by_rung: Vec<Vec<(u64, f64)>>) -> RungTable {
        RungTable {
            by_rung,
            images: BTreeMap::new(),
            levels: levels.to_vec(),
        }
    }

    #[test]
    fn arrival_sees_only_earlier_results() {
        let t = table(&[50, 150, 450], vec![vec![(4, 0.5), (2, 0.7), (9, 0.6)]]);
        let (v, before) = t.arrival(2, 0).unwrap();
        assert_eq!((v, before), (0.7, &[(4, 0.5)][..]));
        assert!(t.arrival(7, 0).is_none());
        assert!(t.arrival(4, 1).is_none());
        assert_eq!(t.value(9, 0), Some(0.6));
        assert_eq!(
            (t.name(1), t.name(5), t.non_final()),
            ("150".into(), "#5".into(), 2)
        );
    }

    #[test]
    fn merit_puts_nan_last_and_breaks_ties_by_trial() {
        let mut rows = [(5, 0.7), (3, f64::NAN), (8, 0.9), (2, 0.7)];
        rows.sort_by(by_merit);
        let order: Vec<u64> = rows.iter().map(|r| r.0).collect();
        assert_eq!(order, [8, 2, 5, 3]);
    }

    #[test]
    fn numbers_keep_four_significant_digits() {
        assert_eq!(num(0.612345), "0.6123");
        assert_eq!(num(71.2), "71.2");
        assert_eq!(num(-3.0), "-3");
        assert_eq!(num(12345.6), "12346");
        assert_eq!(num(0.0), "0");
        assert_eq!(num(f64::NAN), "NaN");
    }

    #[test]
    fn no_rule_never_stops_and_continues_in_pause_order() {
        let r = rule(RuleKind::None, 3, 0.05);
        let t = table(&[50, 450], vec![vec![(1, 0.1), (2, 0.9)]]);
        assert!(r.on_rung(&t, 1, 0).is_none());
        let (trial, v) = r.promote(&t, &[(1, 0), (2, 0)]).unwrap();
        assert_eq!(trial, 1);
        assert_eq!(v.evidence, "none: no stopping rule, continues from rung 50");
        assert!(r.promote(&t, &[]).is_none());
    }
}
