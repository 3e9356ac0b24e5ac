//! Student's t distribution: CDF, survival function and quantile (accurate to ~1e-12).
//!
//! For ν <= 1e5 (`LARGE_DF`) the tail is the incomplete beta function,
//! P(T > t) = I_{ν/(ν+t²)}(ν/2, 1/2) / 2. Beyond it ln Γ's cancellation and the continued
//! fraction's length (O(sqrt ν) terms) both grow, so there the quantile is the normal one
//! corrected by the Cornish–Fisher expansion (Abramowitz & Stegun 26.7.5, whose first
//! omitted term is O(ν⁻⁵)), and the CDF inverts that expansion. ν = ∞ is the normal law.

use super::special::{inc_beta, inc_gamma_upper, invert_sf};

/// Degrees of freedom above which the expansion replaces the incomplete beta.
const LARGE_DF: f64 = 1e5;

/// P(T <= t) for Student's t with `df` > 0 degrees of freedom (may be infinite).
/// NaN for NaN input or df <= 0.
pub fn t_cdf(t: f64, df: f64) -> f64 {
    if t < 0.0 {
        t_sf(-t, df)
    } else {
        1.0 - t_sf(t, df)
    }
}

/// P(T > t): the upper tail, without the cancellation of `1 - t_cdf` (two-sided p-values).
pub fn t_sf(t: f64, df: f64) -> f64 {
    if t.is_nan() || df.is_nan() || df <= 0.0 {
        return f64::NAN;
    }
    if t < 0.0 {
        return 1.0 - t_sf(-t, df);
    }
    if df > LARGE_DF {
        return normal_sf(expansion_inverse(t, df));
    }
    if t.is_infinite() {
        return 0.0;
    }
    let t2 = t * t;
    // x = ν/(ν+t²) and 1-x = t²/(ν+t²), each computed without a subtraction.
    0.5 * inc_beta(0.5 * df, 0.5, df / (df + t2), t2 / (df + t2))
}

/// The t with P(T <= t) = `p` (Student's t inverse CDF), by bisection on [`t_sf`].
/// ±∞ at p = 0 or 1; NaN for p outside [0, 1], NaN input or df <= 0.
pub fn t_quantile(p: f64, df: f64) -> f64 {
    if !(0.0..=1.0).contains(&p) || df.is_nan() || df <= 0.0 {
        return f64::NAN;
    }
    // Work on the smaller tail: 1 - (1 - p) would cost a tiny p its digits.
    if p == 0.5 {
        0.0
    } else if p < 0.5 {
        -upper_quantile(p, df)
    } else {
        upper_quantile(1.0 - p, df)
    }
}

/// The t >= 0 with P(T > t) = `q`, for q in [0, 1/2).
fn upper_quantile(q: f64, df: f64) -> f64 {
    if q == 0.0 {
        f64::INFINITY
    } else if df > LARGE_DF {
        expansion(invert_sf(normal_sf, q), df)
    } else {
        invert_sf(|t| t_sf(t, df), q)
    }
}

/// P(Z > z) for a standard normal Z: erfc(z/√2)/2 = Q(1/2, z²/2)/2 for z >= 0.
fn normal_sf(z: f64) -> f64 {
    if z < 0.0 {
        1.0 - normal_sf(-z)
    } else {
        0.5 * inc_gamma_upper(0.5, 0.5 * z * z)
    }
}

/// Cornish–Fisher: the t quantile for the normal quantile `z` (A&S 26.7.5).
fn expansion(z: f64, df: f64) -> f64 {
    let (v, z2) = (1.0 / df, z * z);
    let g1 = (z2 + 1.0) * z / 4.0;
    let g2 = ((5.0 * z2 + 16.0) * z2 + 3.0) * z / 96.0;
    let g3 = (((3.0 * z2 + 19.0) * z2 + 17.0) * z2 - 15.0) * z / 384.0;
    let g4 = ((((79.0 * z2 + 776.0) * z2 + 1482.0) * z2 - 1920.0) * z2 - 945.0) * z / 92160.0;
    z + v * (g1 + v * (g2 + v * (g3 + v * g4)))
}

/// The z with `expansion(z, df) = t`, by Newton (the map is ~ the identity for large ν).
fn expansion_inverse(t: f64, df: f64) -> f64 {
    if t.is_infinite() {
        return t;
    }
    let mut z = t;
    for _ in 0..50 {
        let h = 1e-6 * (1.0 + z.abs());
        let slope = (expansion(z + h, df) - expansion(z - h, df)) / (2.0 * h);
        let step = (expansion(z, df) - t) / slope;
        z -= step;
        if step.abs() <= 1e-15 * (1.0 + z.abs()) {
            break;
        }
    }
    z
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::f64::consts::PI;

    fn close(got: f64, want: f64, tol: f64) {
        assert!(
            (got - want).abs() <= tol,
            "got {got}, want {want} (tol {tol})"
        );
    }

    #[test]
    fn quantile_matches_tables() {
        // Reference values: mpmath at 40 digits (root of the regularized incomplete beta).
        close(t_quantile(0.975, 1.0), 12.706_204_736_174_705, 1e-8);
        close(t_quantile(0.975, 2.0), 4.302_652_729_749_464, 1e-8);
        close(t_quantile(0.975, 4.0), 2.776_445_105_197_794, 1e-8);
        close(t_quantile(0.975, 9.0), 2.262_157_162_798_206, 1e-8);
        close(t_quantile(0.975, 29.0), 2.045_229_642_132_704, 1e-8);
        close(t_quantile(0.975, 1000.0), 1.962_339_080_826_408_5, 1e-8);
        close(t_quantile(0.975, 1e5), 1.959_987_707_534_609_6, 1e-8);
        close(t_quantile(0.975, 1e12), 1.959_963_984_540_054, 1e-8);
        close(
            t_quantile(0.975, f64::INFINITY),
            1.959_963_984_540_054,
            1e-8,
        );
    }

    #[test]
    fn quantile_is_symmetric_and_handles_edges() {
        close(t_quantile(0.025, 9.0), -2.262_157_162_798_206, 1e-8);
        assert_eq!(t_quantile(0.5, 3.0), 0.0);
        assert_eq!(t_quantile(1.0, 3.0), f64::INFINITY);
        assert_eq!(t_quantile(0.0, 3.0), f64::NEG_INFINITY);
        assert!(t_quantile(1.5, 3.0).is_nan());
        assert!(t_quantile(0.9, 0.0).is_nan());
        assert!(t_quantile(f64::NAN, 3.0).is_nan());
    }

    #[test]
    fn cdf_matches_closed_forms_for_one_and_two_df() {
        // ν = 1 (Cauchy): F(t) = 1/2 + atan(t)/π. ν = 2: F(t) = 1/2 + t / (2 sqrt(2 + t²)).
        for &t in &[-30.0, -2.0, -0.3, 0.0, 0.7, 1.0, 4.0, 100.0] {
            close(t_cdf(t, 1.0), 0.5 + f64::atan(t) / PI, 1e-13);
            close(t_cdf(t, 2.0), 0.5 + t / (2.0 * (2.0 + t * t).sqrt()), 1e-13);
        }
        // Far tail, relative: P(T > 1e6) = atan(1e-6)/π for ν = 1.
        let want = f64::atan(1e-6) / PI;
        assert!((t_sf(1e6, 1.0) / want - 1.0).abs() < 1e-10);
    }

    #[test]
    fn cdf_inverts_quantile() {
        for &df in &[0.5, 1.0, 3.0, 5.882, 40.0, 5e4, 2e5, 1e9, f64::INFINITY] {
            for &p in &[1e-9, 0.001, 0.1, 0.5, 0.8, 0.975, 0.999_999] {
                let t = t_quantile(p, df);
                let (got, want) = (t_cdf(t, df), p);
                assert!(
                    (got - want).abs() <= 1e-10 * want.min(1.0 - want),
                    "df {df} p {p}"
                );
            }
        }
    }

    #[test]
    fn large_df_paths_match_references() {
        // mpmath: t_{0.99999}(3000) = 4.2717204412921779, t_{0.99999}(1e5) = 4.2650954031813249
        // (incomplete beta here), t_{0.975}(2e5) = 1.9599758459667685,
        // t_{0.99999}(2e5) = 4.2649930963881168 (expansion).
        close(t_quantile(0.999_99, 3000.0), 4.271_720_441_292_178, 1e-10);
        close(t_quantile(0.999_99, 1e5), 4.265_095_403_181_325, 1e-10);
        close(t_quantile(0.975, 2e5), 1.959_975_845_966_768_5, 1e-10);
        close(t_quantile(0.999_99, 2e5), 4.264_993_096_388_117, 1e-10);
    }

    #[test]
    fn expansion_agrees_with_incomplete_beta_near_the_switch() {
        // Both methods at the same ν; the expansion's truncation is O(ν⁻⁵) (5e-10 at ν = 300
        // in the 1e-5 tail), so a wrong coefficient would show as ~ν⁻² .. ν⁻⁴.
        for &df in &[3e3, 1e4, 1e5] {
            for &p in &[0.6, 0.975, 0.999_99] {
                let beta = invert_sf(|t| t_sf(t, df), 1.0 - p);
                let cf = expansion(invert_sf(normal_sf, 1.0 - p), df);
                close(cf, beta, 1e-10);
            }
        }
    }

    #[test]
    fn normal_tail_known_values() {
        // P(Z > 1) = 0.15865525393145705142, P(Z > 5) = 2.8665157187919391167e-7.
        close(normal_sf(1.0), 0.158_655_253_931_457_05, 1e-15);
        assert!((normal_sf(5.0) / 2.866_515_718_791_939e-7 - 1.0).abs() < 1e-12);
        close(normal_sf(-1.0), 1.0 - 0.158_655_253_931_457_05, 1e-15);
    }
}
