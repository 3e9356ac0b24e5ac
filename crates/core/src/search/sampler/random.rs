//! Independent uniform draws: the baseline every other sampler must beat, and TPE's
//! proposals until it has enough scored trials to model.

use super::{Observed, Sampler};
use crate::search::rng::Rng;
use crate::search::space::Space;
use serde_json::Value;

/// Each parameter drawn uniformly (in its own law: log-uniform, grid, choice), history unused.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RandomSampler;

impl Sampler for RandomSampler {
    fn propose(
        &self,
        space: &Space,
        _history: &[Observed],
        number: u64,
        draw: u32,
        seed: u64,
    ) -> Vec<Value> {
        let mut rng = Rng::for_trial(seed, number, draw, "random");
        let us: Vec<f64> = space.params.iter().map(|_| rng.uniform()).collect();
        space.from_unit(&us)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::search::space::{Dist, Param};
    use serde_json::json;

    fn space() -> Space {
        let p = |key: &str, dist| Param {
            key: key.into(),
            dist,
        };
        Space {
            params: vec![
                p("optimizer.lr", Dist::log_uniform(1e-4, 0.1, None).unwrap()),
                p(
                    "model.name",
                    Dist::choice(vec![json!("fcn"), json!("unet")]).unwrap(),
                ),
                p("train.batch", Dist::int(2, 16, Some(2)).unwrap()),
            ],
        }
    }

    #[test]
    fn proposals_are_pure_and_in_range() {
        let s = space();
        let a = RandomSampler.propose(&s, &[], 4, 0, 9);
        assert_eq!(a, RandomSampler.propose(&s, &[], 4, 0, 9));
        assert_ne!(a, RandomSampler.propose(&s, &[], 5, 0, 9));
        assert_ne!(a, RandomSampler.propose(&s, &[], 4, 1, 9));
        assert_ne!(a, RandomSampler.propose(&s, &[], 4, 0, 10));
        for n in 0..200 {
            assert!(s.contains(&RandomSampler.propose(&s, &[], n, 0, 9)));
        }
    }

    #[test]
    fn log_uniform_draws_spread_over_decades() {
        let s = space();
        let below_1e3 = (0..3000)
            .filter(|&n| RandomSampler.propose(&s, &[], n, 0, 1)[0].as_f64().unwrap() < 1e-3)
            .count();
        assert!((900..1100).contains(&below_1e3), "{below_1e3}"); // one decade of three
    }
}
