//! A scrambled Sobol' sequence: for a budget of a few dozen trials, points spread far more
//! evenly over the space than independent draws (every 2^k consecutive points, from index 0,
//! put one point in each of 2^k equal slices of every axis).
//!
//! Trial `number` is point `number` of the sequence, in Gray-code order (the order of Joe and
//! Kuo's generator and SciPy's), scrambled by a random digital shift: each dimension's 32-bit
//! coordinate XORed with a word drawn from the sweep's seed. A digital shift keeps every
//! net property of the sequence, so the scrambled points are as even as the plain ones, yet
//! two seeds give two different designs.

use super::sobol_directions::JOE_KUO;
use super::{Observed, Sampler};
use crate::search::rng::Rng;
use crate::search::space::Space;
use serde_json::Value;

/// Dimensions with direction numbers; parameters beyond them get independent uniform draws.
pub const MAX_DIMS: usize = 1 + JOE_KUO.len();
const _: () = assert!(MAX_DIMS >= 32);

/// Bits per coordinate (and the longest sequence: 2^32 points).
const BITS: usize = 32;

/// A redraw `draw` of trial `number` takes point `number + draw * DRAW_STRIDE`, far from
/// every trial's own point for sweeps under a million trials.
const DRAW_STRIDE: u64 = 1 << 20;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SobolSampler;

impl Sampler for SobolSampler {
    fn propose(
        &self,
        space: &Space,
        _history: &[Observed],
        number: u64,
        draw: u32,
        seed: u64,
    ) -> Vec<Value> {
        // The index wraps at 2^32 points, the sequence's length.
        let index = number.wrapping_add(u64::from(draw) * DRAW_STRIDE) as u32;
        let mut shifts = Rng::for_sweep(seed, "sobol");
        let mut beyond = Rng::for_trial(seed, number, draw, "sobol");
        let us: Vec<f64> = (0..space.params.len())
            .map(|dim| match dim < MAX_DIMS {
                true => to_unit(coordinate(dim, index) ^ (shifts.next_u64() >> 32) as u32),
                false => beyond.uniform(),
            })
            .collect();
        space.from_unit(&us)
    }
}

/// The unscrambled point `index` in `dims` <= [`MAX_DIMS`] dimensions, in [0, 1)^dims.
pub fn unit_point(index: u32, dims: usize) -> Vec<f64> {
    assert!(
        dims <= MAX_DIMS,
        "Sobol' directions cover {MAX_DIMS} dimensions"
    );
    (0..dims)
        .map(|dim| to_unit(coordinate(dim, index)))
        .collect()
}

fn to_unit(x: u32) -> f64 {
    f64::from(x) / 2f64.powi(BITS as i32)
}

/// Coordinate `dim` (0-based) of point `index`, as a 32-bit binary fraction: the XOR of the
/// direction numbers at the set bits of index's Gray code.
fn coordinate(dim: usize, index: u32) -> u32 {
    let v = directions(dim);
    let gray = index ^ (index >> 1);
    (0..BITS)
        .filter(|&b| (gray >> b) & 1 == 1)
        .fold(0, |x, b| x ^ v[b])
}

/// Dimension `dim`'s direction numbers v_1..v_32 (as binary fractions), by Bratley and
/// Fox's recurrence on the primitive polynomial (Joe and Kuo's code, 0-based here).
fn directions(dim: usize) -> [u32; BITS] {
    let mut v = [0u32; BITS];
    if dim == 0 {
        // van der Corput: v_i = 2^-i.
        for (i, vi) in v.iter_mut().enumerate() {
            *vi = 1 << (BITS - 1 - i);
        }
        return v;
    }
    let (_, s, a, m) = JOE_KUO[dim - 1];
    let s = s as usize;
    for i in 0..BITS {
        v[i] = if i < s {
            m[i] << (BITS - 1 - i)
        } else {
            let taps = (1..s).filter(|&k| (a >> (s - 1 - k)) & 1 == 1);
            taps.fold(v[i - s] ^ (v[i - s] >> s), |x, k| x ^ v[i - k])
        };
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::search::space::{Dist, Param};
    use serde_json::json;

    #[test]
    fn first_points_match_scipy_unscrambled() {
        // scipy.stats.qmc.Sobol(d=3, scramble=False).random(8)
        let want = [
            [0.0, 0.0, 0.0],
            [0.5, 0.5, 0.5],
            [0.75, 0.25, 0.25],
            [0.25, 0.75, 0.75],
            [0.375, 0.375, 0.625],
            [0.875, 0.875, 0.125],
            [0.625, 0.125, 0.875],
            [0.125, 0.625, 0.375],
        ];
        for (i, w) in want.iter().enumerate() {
            assert_eq!(unit_point(i as u32, 3), w, "point {i}");
        }
    }

    #[test]
    fn direction_table_is_well_formed() {
        for (row, &(d, s, a, m)) in JOE_KUO.iter().enumerate() {
            assert_eq!(d as usize, row + 2);
            assert_eq!(m.len(), s as usize, "d={d}");
            assert!(a < 1 << (s - 1), "d={d}");
            for (i, &mi) in m.iter().enumerate() {
                assert!(mi % 2 == 1 && mi < 1 << (i + 1), "d={d} m_{}={mi}", i + 1);
            }
        }
    }

    /// The top `bits` bits of a coordinate: its slice out of 2^bits.
    fn top(x: u32, bits: u32) -> u32 {
        x.checked_shr(32 - bits).unwrap_or(0)
    }

    /// Whether the points put exactly one point in every box 2^-a x 2^-(k-a), a = 0..=k.
    fn is_net(points: &[[u32; 2]], k: u32) -> bool {
        (0..=k).all(|a| {
            let mut seen = vec![false; 1 << k];
            points.iter().all(|p| {
                let cell = (top(p[0], a) << (k - a) | top(p[1], k - a)) as usize;
                !std::mem::replace(&mut seen[cell], true)
            })
        })
    }

    #[test]
    fn first_two_dimensions_are_a_net_plain_and_scrambled() {
        for k in 1..=10u32 {
            let plain: Vec<[u32; 2]> = (0..1u32 << k)
                .map(|i| [coordinate(0, i), coordinate(1, i)])
                .collect();
            assert!(is_net(&plain, k), "plain k={k}");
            let shifted: Vec<[u32; 2]> = plain
                .iter()
                .map(|p| [p[0] ^ 0x9e37_79b9, p[1] ^ 0x7f4a_7c15])
                .collect();
            assert!(is_net(&shifted, k), "shifted k={k}");
        }
    }

    #[test]
    fn every_dimension_is_stratified() {
        let k = 12;
        for dim in 0..MAX_DIMS {
            let mut seen = vec![false; 1 << k];
            for i in 0..1u32 << k {
                let cell = (coordinate(dim, i) >> (32 - k)) as usize;
                assert!(
                    !std::mem::replace(&mut seen[cell], true),
                    "dim {dim} point {i}"
                );
            }
        }
    }

    fn space(dims: usize) -> Space {
        let params = (0..dims)
            .map(|i| Param {
                key: format!("p{i}"),
                dist: Dist::uniform(-1.0, 1.0, None).unwrap(),
            })
            .collect();
        Space { params }
    }

    #[test]
    fn scrambled_proposals_are_pure_seeded_and_in_range() {
        let s = space(MAX_DIMS + 5); // the last five are plain uniform draws
        let a = SobolSampler.propose(&s, &[], 3, 0, 1);
        assert_eq!(a, SobolSampler.propose(&s, &[], 3, 0, 1));
        assert_ne!(a, SobolSampler.propose(&s, &[], 3, 0, 2));
        assert_ne!(a, SobolSampler.propose(&s, &[], 3, 1, 1));
        for n in 0..256 {
            assert!(s.contains(&SobolSampler.propose(&s, &[], n, 0, 1)));
        }
    }

    #[test]
    fn a_grid_is_covered_evenly() {
        let s = Space {
            params: vec![
                Param {
                    key: "a".into(),
                    dist: Dist::choice(vec![json!("x"), json!("y")]).unwrap(),
                },
                Param {
                    key: "b".into(),
                    dist: Dist::int(0, 3, None).unwrap(),
                },
            ],
        };
        let mut got: Vec<String> = (0..8)
            .map(|n| format!("{:?}", SobolSampler.propose(&s, &[], n, 0, 5)))
            .collect();
        got.sort();
        got.dedup();
        assert_eq!(got.len(), 8, "8 points, the 8 configurations");
    }
}
