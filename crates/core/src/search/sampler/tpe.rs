//! Univariate TPE (Bergstra et al. 2011) with Optuna's defaults: the trials are split into
//! the best γ(n) and the rest, each parameter gets a Parzen estimator l(x) over the good
//! trials and g(x) over the rest, and of 24 candidates drawn from l the one maximising
//! ln l(x) - ln g(x) (the expected-improvement proxy) is proposed. Parameters are treated
//! independently, as by Optuna's `TPESampler(multivariate=False)`.
//!
//! Running trials count as bad (Optuna's `constant_liar`): without them, parallel workers
//! that propose before any of them reports would all sample the same promising region.

use super::parzen::{recency_weights, Categorical, Numeric};
use super::random::RandomSampler;
use super::{Observation, Observed, Sampler};
use crate::search::rng::Rng;
use crate::search::space::{Dist, Internal, Space};
use serde_json::Value;

#[derive(Clone, Debug, PartialEq)]
pub struct TpeSampler {
    /// Scored trials needed before modelling; until then proposals are random's.
    pub n_startup_trials: usize,
    /// Candidates drawn from l(x) per parameter.
    pub n_ei_candidates: usize,
    /// Weight of each estimator's prior kernel (uniform, for categories).
    pub prior_weight: f64,
}

impl Default for TpeSampler {
    /// Optuna's defaults.
    fn default() -> Self {
        TpeSampler {
            n_startup_trials: 10,
            n_ei_candidates: 24,
            prior_weight: 1.0,
        }
    }
}

/// How many of `n` scored trials are "good": Optuna's default, min(ceil(n/10), 25).
pub fn gamma(n: usize) -> usize {
    n.div_ceil(10).min(25)
}

impl Sampler for TpeSampler {
    fn propose(
        &self,
        space: &Space,
        history: &[Observed],
        number: u64,
        draw: u32,
        seed: u64,
    ) -> Vec<Value> {
        let (good, bad) = split(history);
        // Startup counts scored trials only: running ones carry no information about l(x).
        if good.scored + bad.scored < self.n_startup_trials.max(1) {
            return RandomSampler.propose(space, history, number, draw, seed);
        }
        let mut rng = Rng::for_trial(seed, number, draw, "tpe");
        let groups = Groups {
            good: &good.trials,
            bad: &bad.trials,
        };
        space
            .params
            .iter()
            .enumerate()
            .map(|(i, p)| self.propose_param(&p.dist, i, &groups, &mut rng))
            .collect()
    }
}

/// Trials in trial order, and how many of them are scored (the rest are pending).
#[derive(Default)]
struct Group<'a> {
    trials: Vec<&'a Observed>,
    scored: usize,
}

/// The two groups of a proposal.
struct Groups<'a, 'h> {
    good: &'a [&'h Observed],
    bad: &'a [&'h Observed],
}

/// The best γ(n) scored trials, and the other scored and running ones; failed trials and
/// NaN scores are left out. Ties go to the earlier trial.
fn split(history: &[Observed]) -> (Group<'_>, Group<'_>) {
    let mut scored: Vec<(usize, f64)> = history
        .iter()
        .enumerate()
        .filter_map(|(i, o)| match o.value {
            Observation::Scored(v) if !v.is_nan() => Some((i, v)),
            _ => None,
        })
        .collect();
    scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    let mut is_good = vec![false; history.len()];
    for &(i, _) in &scored[..gamma(scored.len())] {
        is_good[i] = true;
    }
    let (mut good, mut bad) = (Group::default(), Group::default());
    for (o, &g) in history.iter().zip(&is_good) {
        let group = if g { &mut good } else { &mut bad };
        match o.value {
            Observation::Scored(v) if !v.is_nan() => group.scored += 1,
            Observation::Pending => {}
            _ => continue,
        }
        group.trials.push(o);
    }
    (good, bad)
}

impl TpeSampler {
    fn propose_param(&self, dist: &Dist, i: usize, groups: &Groups, rng: &mut Rng) -> Value {
        match (dist, dist.internal()) {
            (Dist::Choice(values), _) => self.categorical(values, dist, i, groups, rng),
            (_, Some(range)) => self.numeric(dist, range, i, groups, rng),
            (_, None) => dist.from_unit(rng.uniform()), // only a choice lacks a range
        }
    }

    fn numeric(
        &self,
        dist: &Dist,
        range: Internal,
        i: usize,
        groups: &Groups,
        rng: &mut Rng,
    ) -> Value {
        let estimator = |group: &[&Observed]| {
            let (xs, ws) = coordinates(dist, i, group);
            Numeric::new(&xs, &ws, range, self.prior_weight)
        };
        let (l, g) = (estimator(groups.good), estimator(groups.bad));
        let candidates: Vec<f64> = (0..self.n_ei_candidates.max(1))
            .map(|_| l.sample(rng))
            .collect();
        // Score each candidate where it lands (its grid point, its rounded log value); on a
        // grid many coincide, and each distinct one is scored once.
        let mut scored: Vec<(f64, f64, Value)> = Vec::with_capacity(candidates.len());
        for x in candidates {
            let v = dist.from_internal(x);
            let at = dist.to_internal(&v).unwrap_or(x);
            if !scored.iter().any(|s| s.0 == at) {
                scored.push((at, l.ln_pdf(at) - g.ln_pdf(at), v));
            }
        }
        best(scored.into_iter().map(|(_, s, v)| (s, v)))
    }

    fn categorical(
        &self,
        values: &[Value],
        dist: &Dist,
        i: usize,
        groups: &Groups,
        rng: &mut Rng,
    ) -> Value {
        let estimator = |group: &[&Observed]| {
            let (xs, ws) = coordinates(dist, i, group);
            let indices: Vec<usize> = xs.iter().map(|&x| x as usize).collect();
            Categorical::new(&indices, &ws, values.len(), self.prior_weight)
        };
        let (l, g) = (estimator(groups.good), estimator(groups.bad));
        let candidates = (0..self.n_ei_candidates.max(1))
            .map(|_| l.sample(rng))
            .collect::<Vec<_>>();
        best(
            candidates
                .into_iter()
                .map(|c| (l.ln_pmf(c) - g.ln_pmf(c), values[c].clone())),
        )
    }
}

/// The group's values of parameter `i` in internal coordinates, with their recency weights
/// (computed over the whole group, as Optuna does); values outside the space are skipped.
fn coordinates(dist: &Dist, i: usize, group: &[&Observed]) -> (Vec<f64>, Vec<f64>) {
    let weights = recency_weights(group.len());
    group
        .iter()
        .zip(weights)
        .filter_map(|(o, w)| {
            o.params
                .get(i)
                .and_then(|v| dist.to_internal(v))
                .map(|x| (x, w))
        })
        .unzip()
}

/// The value with the highest score; the first of equals.
fn best(scored: impl Iterator<Item = (f64, Value)>) -> Value {
    let mut top: Option<(f64, Value)> = None;
    for (s, v) in scored {
        let s = if s.is_nan() { f64::NEG_INFINITY } else { s };
        if top.as_ref().is_none_or(|(t, _)| s > *t) {
            top = Some((s, v));
        }
    }
    top.map(|(_, v)| v).unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::search::space::Param;
    use serde_json::json;

    fn space(params: Vec<(&str, Dist)>) -> Space {
        Space {
            params: params
                .into_iter()
                .map(|(key, dist)| Param {
                    key: key.into(),
                    dist,
                })
                .collect(),
        }
    }

    fn unit() -> Space {
        space(vec![("x", Dist::uniform(0.0, 1.0, None).unwrap())])
    }

    fn x(values: &[Value]) -> f64 {
        values[0].as_f64().unwrap()
    }

    /// `trials` sequential proposals, each scored by `f` before the next.
    fn run(
        s: &dyn Sampler,
        sp: &Space,
        trials: u64,
        seed: u64,
        f: impl Fn(&[Value]) -> f64,
    ) -> Vec<Observed> {
        let mut history = Vec::new();
        for n in 0..trials {
            let params = s.propose(sp, &history, n, 0, seed);
            let value = Observation::Scored(f(&params));
            history.push(Observed { params, value });
        }
        history
    }

    fn scored(xs: &[f64], f: impl Fn(f64) -> f64) -> Vec<Observed> {
        xs.iter()
            .map(|&x| Observed {
                params: vec![json!(x)],
                value: Observation::Scored(f(x)),
            })
            .collect()
    }

    #[test]
    fn tpe_closes_in_on_a_quadratic_optimum() {
        let f = |v: &[Value]| -(x(v) - 0.3).powi(2);
        for seed in [1, 2, 3] {
            let tpe = run(&TpeSampler::default(), &unit(), 60, seed, f);
            let random = run(&RandomSampler, &unit(), 60, seed, f);
            let dist = |h: &[Observed]| {
                h.iter()
                    .map(|o| (x(&o.params) - 0.3).abs())
                    .collect::<Vec<_>>()
            };
            let best = dist(&tpe).into_iter().fold(f64::INFINITY, f64::min);
            assert!(best < 0.01, "seed {seed}: best {best}");
            let last = |h: &[Observed]| dist(&h[40..]).iter().sum::<f64>() / 20.0;
            let (t, r) = (last(&tpe), last(&random));
            assert!(
                t < 0.5 * r,
                "seed {seed}: last 20 at {t} from the optimum, random's at {r}"
            );
        }
    }

    #[test]
    fn running_trials_push_proposals_away() {
        let xs = [0.05, 0.12, 0.27, 0.33, 0.41, 0.5, 0.62, 0.71, 0.85, 0.97];
        let history = scored(&xs, |x| -(x - 0.3) * (x - 0.3));
        let mut lied = history.clone();
        for p in [0.26, 0.275, 0.28] {
            lied.push(Observed {
                params: vec![json!(p)],
                value: Observation::Pending,
            });
        }
        let tpe = TpeSampler::default();
        let (mut near, mut near_lied, mut differ) = (0.0, 0.0, 0);
        for n in 10..30 {
            let (a, b) = (
                tpe.propose(&unit(), &history, n, 0, 7),
                tpe.propose(&unit(), &lied, n, 0, 7),
            );
            differ += usize::from(a != b);
            near += (x(&a) - 0.27).abs();
            near_lied += (x(&b) - 0.27).abs();
        }
        assert!(differ >= 15, "only {differ} of 20 proposals moved");
        assert!(near_lied > near, "{near_lied} vs {near}");
        let (a, b) = (
            tpe.propose(&unit(), &history, 13, 0, 7),
            tpe.propose(&unit(), &lied, 13, 0, 7),
        );
        assert_ne!(a, b);
    }

    #[test]
    fn a_dominant_category_is_proposed_most_of_the_time() {
        let choices = vec![
            json!("fcn"),
            json!("unet"),
            json!("deeplabv3"),
            json!("segformer"),
        ];
        let sp = space(vec![
            ("model.name", Dist::choice(choices).unwrap()),
            ("optimizer.lr", Dist::log_uniform(1e-4, 0.1, None).unwrap()),
        ]);
        let f =
            |v: &[Value]| f64::from(u8::from(v[0] == "deeplabv3")) - 0.01 * v[1].as_f64().unwrap();
        let history = run(&TpeSampler::default(), &sp, 50, 11, f);
        let hits = history[10..]
            .iter()
            .filter(|o| o.params[0] == "deeplabv3")
            .count();
        assert!(
            hits >= 30,
            "deeplabv3 in {hits} of 40 proposals after startup"
        );
    }

    #[test]
    fn proposals_are_pure_and_startup_is_random() {
        let sp = space(vec![
            ("a", Dist::uniform(-1.0, 1.0, Some(0.25)).unwrap()),
            ("b", Dist::int(1, 9, Some(2)).unwrap()),
            ("c", Dist::log_uniform(1e-3, 1.0, Some(1e-3)).unwrap()),
            ("d", Dist::choice(vec![json!(true), json!(false)]).unwrap()),
        ]);
        let f = |v: &[Value]| v[0].as_f64().unwrap() - (v[1].as_f64().unwrap() - 5.0).abs();
        let history = run(&TpeSampler::default(), &sp, 30, 3, f);
        assert!(
            history.iter().all(|o| sp.contains(&o.params)),
            "off the grid"
        );
        let tpe = TpeSampler::default();
        let p = tpe.propose(&sp, &history, 30, 0, 3);
        assert_eq!(p, tpe.propose(&sp, &history, 30, 0, 3));
        assert_ne!(p, tpe.propose(&sp, &history, 30, 1, 3));
        // Failed trials are ignored.
        let mut with_failed = history.clone();
        with_failed.insert(
            4,
            Observed {
                params: p.clone(),
                value: Observation::Failed,
            },
        );
        assert_eq!(p, tpe.propose(&sp, &with_failed, 30, 0, 3));
        // Before n_startup_trials scored trials (running ones do not count), random's.
        let mut early = history[..9].to_vec();
        early.push(Observed {
            params: p.clone(),
            value: Observation::Pending,
        });
        assert_eq!(
            tpe.propose(&sp, &early, 9, 2, 3),
            RandomSampler.propose(&sp, &early, 9, 2, 3)
        );
    }

    #[test]
    fn the_split_keeps_the_best_and_lies_about_running_trials() {
        assert_eq!(
            [gamma(1), gamma(10), gamma(11), gamma(249), gamma(1000)],
            [1, 1, 2, 25, 25]
        );
        let mut h = scored(
            &[0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1],
            |x| x,
        );
        h.push(Observed {
            params: vec![json!(2.0)],
            value: Observation::Pending,
        });
        h.push(Observed {
            params: vec![json!(3.0)],
            value: Observation::Scored(f64::NAN),
        });
        let (good, bad) = split(&h);
        let xs = |g: &Group| g.trials.iter().map(|o| x(&o.params)).collect::<Vec<_>>();
        assert_eq!(xs(&good), [1.0, 1.1]);
        assert_eq!((good.scored, bad.scored, bad.trials.len()), (2, 9, 10));
        assert_eq!(xs(&bad).last(), Some(&2.0));
    }

    /// cargo test --release -p sweep-core --lib tpe_timing -- --ignored --nocapture
    #[test]
    #[ignore = "timing, run by hand in release mode"]
    fn tpe_timing_8d_1000_observations() {
        let sp = space(vec![
            ("optimizer.lr", Dist::log_uniform(1e-5, 0.1, None).unwrap()),
            (
                "optimizer.weight_decay",
                Dist::log_uniform(1e-6, 1e-2, None).unwrap(),
            ),
            (
                "optimizer.momentum",
                Dist::uniform(0.8, 0.99, None).unwrap(),
            ),
            (
                "model.dropout",
                Dist::uniform(0.0, 0.5, Some(0.05)).unwrap(),
            ),
            ("train.batch", Dist::int(2, 32, Some(2)).unwrap()),
            ("train.iters", Dist::int(1000, 40000, None).unwrap()),
            (
                "model.name",
                Dist::choice(vec![json!("fcn"), json!("unet"), json!("deeplabv3")]).unwrap(),
            ),
            (
                "aug.flip",
                Dist::choice(vec![json!(true), json!(false)]).unwrap(),
            ),
        ]);
        let f = |v: &[Value]| -(v[0].as_f64().unwrap().ln() + 7.0).powi(2) + v[2].as_f64().unwrap();
        let history = run(&RandomSampler, &sp, 1000, 5, f);
        let tpe = TpeSampler::default();
        let reps = 200;
        let (wall, cpu) = (std::time::Instant::now(), thread_cpu_s());
        for n in 0..reps {
            std::hint::black_box(tpe.propose(&sp, &history, 1000 + n, 0, 5));
        }
        let per = |s: f64| s / reps as f64 * 1e3;
        let (wall, cpu) = (per(wall.elapsed().as_secs_f64()), per(thread_cpu_s() - cpu));
        println!("one 8-D TPE proposal at 1000 observations: {wall:.3} ms wall, {cpu:.3} ms CPU");
    }

    /// This thread's CPU time: a timing that a loaded machine does not inflate.
    fn thread_cpu_s() -> f64 {
        let mut t = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: clock_gettime writes one timespec, which `t` is.
        let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) };
        assert_eq!(rc, 0, "clock_gettime");
        t.tv_sec as f64 + t.tv_nsec as f64 * 1e-9
    }
}
