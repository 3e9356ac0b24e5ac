//! The standard normal's mass over an interval: what a truncated or discretised Gaussian
//! kernel needs. Tails are taken on the side where they are small, so that a kernel many
//! bandwidths from a candidate keeps its relative accuracy instead of cancelling to 0.

/// 1 / sqrt(2 pi).
const FRAC_1_SQRT_2PI: f64 = 0.398_942_280_401_432_7;

/// Beyond this many standard deviations a tail is below 1e-300: 0 here.
const FAR: f64 = 37.0;

/// e^t for t in [-708, 709] (clamped there), to within 2 ulp: Cody–Waite reduction by ln 2
/// and a degree-13 Taylor polynomial. Written out rather than libm's because a TPE proposal
/// spends nearly all its time here (one call per kernel and candidate): inlined it is several
/// times faster, it has no slow path for underflow, and it gives the same bits on every
/// platform.
#[inline(always)]
pub(super) fn exp(t: f64) -> f64 {
    const LOG2E: f64 = std::f64::consts::LOG2_E;
    // fdlibm's split of ln 2: k * LN2_HI is exact for |k| < 2^11.
    const LN2_HI: f64 = 0.693_147_180_369_123_8;
    const LN2_LO: f64 = 1.908_214_929_270_587_7e-10;
    const ROUND: f64 = 6_755_399_441_055_744.0; // 1.5 * 2^52: adding it rounds to an integer
    let t = t.clamp(-708.0, 709.0);
    let shifted = t * LOG2E + ROUND;
    let k = shifted - ROUND;
    let r = (t - k * LN2_HI) - k * LN2_LO; // |r| <= ln 2 / 2
    let p = INV_FACTORIAL.iter().rev().fold(0.0, |p, &c| p * r + c);
    // 2^k from k's bits, which sit at the bottom of `shifted`'s mantissa.
    p * f64::from_bits(shifted.to_bits().wrapping_add(1023) << 52)
}

/// 1/0!, ..., 1/13!: the Taylor coefficients (|r|^14/14! < 5e-18 on the reduced range).
const INV_FACTORIAL: [f64; 14] = [
    1.0,
    1.0,
    1.0 / 2.0,
    1.0 / 6.0,
    1.0 / 24.0,
    1.0 / 120.0,
    1.0 / 720.0,
    1.0 / 5040.0,
    1.0 / 40320.0,
    1.0 / 362_880.0,
    1.0 / 3_628_800.0,
    1.0 / 39_916_800.0,
    1.0 / 479_001_600.0,
    1.0 / 6_227_020_800.0,
];

/// The standard normal density without its constant: exp(-z^2 / 2) (1e-308 far out, not 0:
/// a branch here would cost more than it saves).
#[inline(always)]
pub(super) fn gauss(z: f64) -> f64 {
    exp(-0.5 * z * z)
}

/// P(Z > z) for z >= 0: erfc(z / sqrt 2) / 2 by Numerical Recipes' Chebyshev fit (relative
/// error < 1.2e-7 everywhere, one exp).
fn upper(z: f64) -> f64 {
    let y = z * std::f64::consts::FRAC_1_SQRT_2;
    let t = 1.0 / (1.0 + 0.5 * y);
    let poly = -1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    0.5 * t * exp(poly - y * y)
}

/// P(a < Z < b) for a <= b (either may be infinite).
pub(super) fn mass(a: f64, b: f64) -> f64 {
    let (w, m) = (b - a, 0.5 * (a + b));
    if a > FAR || b < -FAR {
        0.0
    } else if w < 0.1 && w * (1.0 + m.abs()) < 0.1 {
        mass_narrow(w, m)
    } else {
        mass_wide(a, b)
    }
}

/// The midpoint rule with its second-order term, exact to O(w^4 m^4): for a narrow
/// interval, where the difference of two tails would cancel.
fn mass_narrow(w: f64, m: f64) -> f64 {
    FRAC_1_SQRT_2PI * gauss(m) * w * (1.0 + w * w * (m * m - 1.0) / 24.0)
}

/// The difference of the two tails on the side where they are small.
fn mass_wide(a: f64, b: f64) -> f64 {
    let tail = |z: f64| if z > FAR { 0.0 } else { upper(z) };
    if a < -9.0 && b > 9.0 {
        1.0 // both tails under 1.2e-19: 1 to the last bit (most kernels' mass inside the range)
    } else if a >= 0.0 {
        tail(a) - tail(b)
    } else if b <= 0.0 {
        tail(-b) - tail(-a)
    } else {
        1.0 - tail(-a) - tail(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(got: f64, want: f64, rel: f64) {
        assert!((got / want - 1.0).abs() < rel, "got {got}, want {want}");
    }

    #[test]
    fn exp_is_accurate_over_its_range() {
        let mut worst = 0.0f64;
        for i in 0..=200_000 {
            let t = -708.0 + 1417.0 * f64::from(i) / 200_000.0;
            worst = worst.max((exp(t) / t.exp() - 1.0).abs());
        }
        assert!(worst < 5e-16, "worst relative error {worst}");
        assert_eq!(exp(0.0), 1.0);
        assert!((exp(1.0) / std::f64::consts::E - 1.0).abs() < 3e-16);
        assert!(exp(-1000.0) > 0.0 && exp(-1000.0) < 1e-307);
    }

    #[test]
    fn tails_match_known_values() {
        close(upper(0.0), 0.5, 1e-7);
        close(upper(1.0), 0.158_655_253_931_457_05, 1e-6);
        close(upper(5.0), 2.866_515_718_791_939e-7, 1e-6);
        close(upper(30.0), 4.906_713_927_148_187e-198, 1e-6);
        assert!(gauss(FAR + 1.0) < 1e-300);
    }

    #[test]
    fn masses_over_intervals() {
        let q56 = 2.866_515_718_791_939e-7 - 9.865_876_450_376_946e-10; // P(5 < Z < 6)
        close(mass(-1.0, 1.0), 0.682_689_492_137_085_9, 1e-6);
        close(mass(5.0, 6.0), q56, 1e-5);
        close(mass(-6.0, -5.0), q56, 1e-5);
        close(mass(f64::NEG_INFINITY, f64::INFINITY), 1.0, 1e-7);
        close(mass(1.0, f64::INFINITY), 0.158_655_253_931_457_05, 1e-6);
        assert_eq!(mass(40.0, 41.0), 0.0); // underflows, never NaN
                                           // Narrow: density times width.
        let (a, w) = (0.5, 1e-4);
        close(
            mass(a, a + w),
            FRAC_1_SQRT_2PI * gauss(a + w / 2.0) * w,
            1e-8,
        );
        // Both formulas agree where `mass` switches between them.
        for m in [-1.5, -0.3, 0.0, 0.4, 1.0] {
            let w = 0.1 / (1.0 + f64::abs(m));
            close(mass_narrow(w, m), mass_wide(m - w / 2.0, m + w / 2.0), 1e-5);
        }
    }
}
