//! Asynchronous successive halving, promotion type (Li et al., MLSys 2020, Algorithm 2
//! `get_job`): every trial pauses at each rung; when capacity frees up, a paused trial in
//! the top 1/eta of the results at its rung continues, the highest rung first. Nobody waits
//! for a full bracket, and a trial is never stopped while it may still be promoted: it is
//! only stopped when the search ends.

use super::{by_merit, RungTable, StopRule, Verdict};

/// ASHA with reduction factor `eta`.
#[derive(Clone, Debug, PartialEq)]
pub struct Asha {
    eta: u64,
}

impl Asha {
    /// `eta` below 2 would promote everything; it is raised to 2, as for the rungs.
    pub fn new(eta: u64) -> Asha {
        Asha { eta: eta.max(2) }
    }

    /// How many of `n` results at a rung may continue: ⌊n/η⌋.
    fn quota(&self, n: usize) -> usize {
        n / self.eta as usize
    }

    /// The results at rung `k`, best first.
    fn ranked(table: &RungTable, k: usize) -> Vec<(u64, f64)> {
        let mut rows = table.at(k).to_vec();
        rows.sort_by(by_merit);
        rows
    }

    fn evidence(&self, table: &RungTable, k: usize, trial: u64, verb: &str) -> String {
        let rows = Self::ranked(table, k);
        let n = rows.len();
        let Some(rank) = rows.iter().position(|r| r.0 == trial).map(|r| r + 1) else {
            return format!("asha: no result at rung {}", table.name(k));
        };
        let quota = self.quota(n);
        let note = if quota == 0 {
            format!(", fewer than eta={} results", self.eta)
        } else {
            String::new()
        };
        format!(
            "asha: rank {rank} of {n} at rung {} (top {quota} {verb}{note})",
            table.name(k)
        )
    }
}

impl StopRule for Asha {
    /// Never: a trial below the cut today may be in the top 1/eta once more results arrive.
    fn on_rung(&self, _: &RungTable, _: u64, _: usize) -> Option<Verdict> {
        None
    }

    fn promote(&self, table: &RungTable, paused: &[(u64, usize)]) -> Option<(u64, Verdict)> {
        let mut rungs: Vec<usize> = paused.iter().map(|p| p.1).collect();
        rungs.sort_unstable_by(|a, b| b.cmp(a));
        rungs.dedup();
        for k in rungs {
            let rows = Self::ranked(table, k);
            let top = &rows[..self.quota(rows.len())];
            // `top` is best first, so the first paused one is the best candidate.
            if let Some(&(trial, _)) = top.iter().find(|r| paused.contains(&(r.0, k))) {
                return Some((
                    trial,
                    Verdict::new(self.evidence(table, k, trial, "continue")),
                ));
            }
        }
        None
    }

    fn final_stop(&self, table: &RungTable, trial: u64, rung: usize) -> Verdict {
        Verdict::new(self.evidence(table, rung, trial, "promoted"))
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::table;
    use super::*;

    /// Nine trials at rung 0 with values 0.1 (trial 1) .. 0.9 (trial 9), all paused.
    fn nine() -> (RungTable, Vec<(u64, usize)>) {
        let rows: Vec<(u64, f64)> = (1..=9).map(|t| (t, t as f64 / 10.0)).collect();
        let paused = rows.iter().map(|r| (r.0, 0)).collect();
        (table(&[50, 150, 450], vec![rows]), paused)
    }

    #[test]
    fn promotes_exactly_the_top_third_best_first() {
        let (t, mut paused) = nine();
        let asha = Asha::new(3);
        let mut promoted = Vec::new();
        while let Some((trial, _)) = asha.promote(&t, &paused) {
            promoted.push(trial);
            paused.retain(|p| p.0 != trial);
        }
        assert_eq!(promoted, [9, 8, 7]);
        assert_eq!(paused.len(), 6, "the 4th best (trial 6) is never promoted");
    }

    #[test]
    fn never_stops_on_arrival() {
        let (t, _) = nine();
        assert!(Asha::new(3).on_rung(&t, 1, 0).is_none());
    }

    #[test]
    fn serves_the_highest_rung_first() {
        let (mut t, mut paused) = nine();
        t.by_rung.push(vec![(9, 0.5), (8, 0.4), (7, 0.3)]);
        paused.retain(|p| p.0 < 7);
        paused.extend([(9, 1), (8, 1), (7, 1)]);
        let asha = Asha::new(3);
        let (trial, v) = asha.promote(&t, &paused).unwrap();
        assert_eq!(trial, 9);
        assert_eq!(v.evidence, "asha: rank 1 of 3 at rung 150 (top 1 continue)");
        paused.retain(|p| p.0 != 9);
        // Rung 1's quota is used up; rung 0's top 3 were promoted already: nothing left.
        assert!(asha.promote(&t, &paused).is_none());
    }

    #[test]
    fn promotes_nothing_below_eta_results() {
        let t = table(&[50, 150, 450], vec![vec![(1, 0.9), (2, 0.8)]]);
        let asha = Asha::new(3);
        assert!(asha.promote(&t, &[(1, 0), (2, 0)]).is_none());
        let v = asha.final_stop(&t, 1, 0);
        assert_eq!(
            v.evidence,
            "asha: rank 1 of 2 at rung 50 (top 0 promoted, fewer than eta=3 results)"
        );
    }

    #[test]
    fn ties_go_to_the_lower_trial_number() {
        let rows = vec![(7, 0.5), (4, 0.5), (5, 0.5), (2, 0.1), (3, 0.1), (6, 0.1)];
        let paused: Vec<(u64, usize)> = rows.iter().map(|r| (r.0, 0)).collect();
        let t = table(&[50, 450], vec![rows]);
        let asha = Asha::new(3);
        assert_eq!(asha.promote(&t, &paused).unwrap().0, 4);
        let rest: Vec<_> = paused.iter().copied().filter(|p| p.0 != 4).collect();
        assert_eq!(asha.promote(&t, &rest).unwrap().0, 5);
    }

    #[test]
    fn final_stop_states_rank_and_quota() {
        let (t, _) = nine();
        let v = Asha::new(3).final_stop(&t, 5, 0);
        assert_eq!(v.evidence, "asha: rank 5 of 9 at rung 50 (top 3 promoted)");
        let v = Asha::new(3).final_stop(&t, 42, 0);
        assert_eq!(v.evidence, "asha: no result at rung 50");
    }

    #[test]
    fn eta_below_two_is_two() {
        let (t, paused) = nine();
        let top: Vec<u64> = (0..5)
            .scan(paused, |p, _| {
                let (trial, _) = Asha::new(0).promote(&t, p)?;
                p.retain(|q| q.0 != trial);
                Some(trial)
            })
            .collect();
        assert_eq!(top, [9, 8, 7, 6]);
    }
}
