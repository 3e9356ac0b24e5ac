//! The bootstrap on synthetic two-class (background, fluid) segmentations.

use super::*;

fn mdice(m: &Metrics) -> f64 {
    m.mdice()
}

/// Counts of one image with `bg` background and `fluid` fluid pixels when the prediction
/// misses `missed` fluid pixels (predicted as background) and is otherwise right.
fn image(bg: u64, fluid: u64, missed: u64) -> ImageCounts {
    ImageCounts {
        intersect: vec![bg, fluid - missed],
        pred: vec![bg + missed, fluid - missed],
        label: vec![bg, fluid],
    }
}

/// 20 images with 40..135 fluid pixels; `miss` is the fraction of fluid missed.
fn run(miss: f64) -> Vec<ImageCounts> {
    (0..20u64)
        .map(|i| {
            let fluid = 40 + 5 * i;
            image(1000 - fluid, fluid, (fluid as f64 * miss).round() as u64)
        })
        .collect()
}

fn arm(misses: &[f64]) -> Arm {
    Arm {
        runs: misses.iter().map(|&m| run(m)).collect(),
    }
}

#[test]
fn clearly_better_arm_is_flagged() {
    // B (index 0) misses about half the fluid in each seed; A (index 1) is perfect.
    let arms = [arm(&[0.5, 0.45, 0.55]), arm(&[0.0, 0.0])];
    let r = rank_against_best(&arms, &mdice, 1000, 7, 0.05).unwrap();
    assert_eq!(r.best, 1);
    assert_eq!(r.observed[1], 100.0);
    assert!(r.observed[0] < 90.0, "{:?}", r.observed);
    assert!(r.prob_best[1] > 0.999, "{:?}", r.prob_best);
    assert_eq!(r.prob_best.iter().sum::<f64>(), 1.0);
    let b = r.vs_best[0].unwrap();
    assert!(b.rejected, "{b:?}");
    assert_eq!(b.p, 1.0 / 1001.0);
    assert_eq!(r.vs_best[1], None);
    assert_eq!(r.indistinguishable, [false, true]);
    assert_eq!(r.replicates, 1000);
}

#[test]
fn identical_arms_are_indistinguishable() {
    let arms = [arm(&[0.2]), arm(&[0.2])];
    let r = rank_against_best(&arms, &mdice, 500, 1, 0.05).unwrap();
    // A tie picks the lower index; every replicate ties, so p = (1 + B)/(1 + B).
    assert_eq!(r.best, 0);
    let d = r.vs_best[1].unwrap();
    assert_eq!((d.p, d.rejected), (1.0, false));
    assert_eq!(r.prob_best, [0.5, 0.5]);
    assert_eq!(r.indistinguishable, [true, true]);
}

#[test]
fn holm_over_several_arms() {
    // 0 and 2 are the same perfect arm, 1 and 3 are clearly worse: only 1 and 3 are out.
    let arms = [arm(&[0.0]), arm(&[0.4]), arm(&[0.0]), arm(&[0.3, 0.35])];
    let r = rank_against_best(&arms, &mdice, 400, 3, 0.05).unwrap();
    assert_eq!(r.best, 0);
    assert_eq!(r.indistinguishable, [true, false, true, false]);
    assert_eq!(r.prob_best, [0.5, 0.0, 0.5, 0.0]);
    // Holm: the two tiny p-values, 1/401 each, are adjusted by 3 and then 2 -> 3/401.
    let p1 = r.vs_best[1].unwrap();
    assert!((p1.p_adjusted - 3.0 / 401.0).abs() < 1e-15, "{p1:?}");
    assert_eq!(r.vs_best[2].unwrap().p_adjusted, 1.0);
}

#[test]
fn observed_is_the_metric_of_summed_counts() {
    // Per-image counts from real pixels; the observed value of one run is the report's
    // mDice of the whole set, of two runs the mean of theirs.
    let mut total = [Metrics::new(3), Metrics::new(3)];
    let mut runs = vec![Vec::new(), Vec::new()];
    for i in 0..12usize {
        let label: Vec<u8> = (0..64).map(|p| ((p * 7 + i) % 5).min(2) as u8).collect();
        for (r, run) in runs.iter_mut().enumerate() {
            let pred: Vec<u8> = (0..64)
                .map(|p| ((p * 7 + i + usize::from(p % (3 + r) == 0)) % 5).min(2) as u8)
                .collect();
            let mut m = Metrics::new(3);
            m.add(&pred, &label);
            total[r].add(&pred, &label);
            run.push(ImageCounts {
                intersect: m.intersect,
                pred: m.pred,
                label: m.label,
            });
        }
    }
    let one = Arm {
        runs: vec![runs[0].clone()],
    };
    assert_eq!(observed(&one, &mdice).unwrap(), total[0].mdice());
    let miou = |m: &Metrics| m.miou();
    assert_eq!(observed(&one, &miou).unwrap(), total[0].miou());
    let two = Arm { runs };
    let mean = (total[0].mdice() + total[1].mdice()) / 2.0;
    assert!((observed(&two, &mdice).unwrap() - mean).abs() < 1e-12);
    assert_ne!(total[0].mdice(), total[1].mdice());
}

#[test]
fn fixed_seed_reproduces() {
    let arms = [arm(&[0.1, 0.2, 0.15]), arm(&[0.12, 0.18]), arm(&[0.3])];
    let a = rank_against_best(&arms, &mdice, 300, 42, 0.05).unwrap();
    let b = rank_against_best(&arms, &mdice, 300, 42, 0.05).unwrap();
    assert_eq!(a, b);
    let c = compare(&arms[0], &arms[1], &mdice, 300, 42).unwrap();
    assert_eq!(c, compare(&arms[0], &arms[1], &mdice, 300, 42).unwrap());
    // Another seed draws other resamples (the test would be vacuous otherwise).
    let d = compare(&arms[0], &arms[1], &mdice, 300, 43).unwrap();
    assert_ne!(c.ci95, d.ci95);
}

#[test]
fn compare_clearly_better() {
    let (good, bad) = (arm(&[0.0, 0.02]), arm(&[0.5, 0.45, 0.55]));
    let c = compare(&good, &bad, &mdice, 1000, 5).unwrap();
    let want = observed(&good, &mdice).unwrap() - observed(&bad, &mdice).unwrap();
    assert_eq!(c.diff, want);
    assert!(c.diff > 5.0);
    assert!(c.ci95.0 < c.diff && c.diff < c.ci95.1, "{c:?}");
    assert!(c.ci95.0 > 0.0, "{c:?}");
    assert_eq!(c.p_two_sided, 2.0 / 1001.0);
    // Reversed: the mirror image.
    let r = compare(&bad, &good, &mdice, 1000, 5).unwrap();
    assert_eq!(r.diff, -c.diff);
    assert!(r.ci95.1 < 0.0);
}

#[test]
fn compare_identical_has_p_one() {
    let c = compare(&arm(&[0.2]), &arm(&[0.2]), &mdice, 200, 9).unwrap();
    assert_eq!((c.diff, c.ci95, c.p_two_sided), (0.0, (0.0, 0.0), 1.0));
}

#[test]
fn invalid_input_is_an_error() {
    let short = Arm {
        runs: vec![run(0.1)[..19].to_vec()],
    };
    let e = rank_against_best(&[arm(&[0.1]), short], &mdice, 10, 0, 0.05).unwrap_err();
    assert_eq!(
        e,
        BootstrapError::ImageCountMismatch {
            arm: 1,
            run: 0,
            expected: 20,
            found: 19
        }
    );
    assert!(e
        .to_string()
        .contains("has 19 validation images, expected 20"));
    let uneven = Arm {
        runs: vec![run(0.1), run(0.1)[..5].to_vec()],
    };
    assert!(matches!(
        observed(&uneven, &mdice),
        Err(BootstrapError::ImageCountMismatch { run: 1, .. })
    ));
    let none = Arm { runs: vec![] };
    let e = compare(&arm(&[0.1]), &none, &mdice, 10, 0).unwrap_err();
    assert_eq!(e, BootstrapError::NoRuns { arm: 1 });
    assert_eq!(
        rank_against_best(&[], &mdice, 10, 0, 0.05),
        Err(BootstrapError::NoArms)
    );
    let e = compare(&arm(&[0.1]), &arm(&[0.1]), &mdice, 0, 0).unwrap_err();
    assert_eq!(e, BootstrapError::NoReplicates);
}

#[test]
fn inconsistent_classes_are_errors() {
    let mut three = run(0.1);
    three[4].label.push(0);
    let e = observed(&Arm { runs: vec![three] }, &mdice).unwrap_err();
    assert!(matches!(
        e,
        BootstrapError::ClassCountMismatch {
            image: 4,
            expected: 2,
            found: 3,
            ..
        }
    ));
    let mut bad = run(0.1);
    bad[2].intersect[1] = bad[2].label[1] + 1;
    let e = observed(&Arm { runs: vec![bad] }, &mdice).unwrap_err();
    assert!(matches!(
        e,
        BootstrapError::InconsistentCounts {
            image: 2,
            class: 1,
            ..
        }
    ));
}

#[test]
fn nine_arms_of_three_runs_on_110_images() {
    // The intended scale: 9 arms x 3 seeds x 110 images x 2 classes, 2000 replicates (its
    // speed is not asserted here: timings belong in benchmarks).
    let big_run = |miss: f64| -> Vec<ImageCounts> {
        (0..110u64)
            .map(|i| {
                let fluid = 20 + (i * 37) % 200;
                image(5000 - fluid, fluid, (fluid as f64 * miss).round() as u64)
            })
            .collect()
    };
    let arms: Vec<Arm> = (0..9)
        .map(|k| Arm {
            runs: (0..3).map(|s| big_run(0.01 * (k + s) as f64)).collect(),
        })
        .collect();
    let r = rank_against_best(&arms, &mdice, 2000, 11, 0.05).unwrap();
    assert_eq!(r.best, 0);
    assert!((r.prob_best.iter().sum::<f64>() - 1.0).abs() < 1e-9);
    assert!(!r.indistinguishable[8]);
}
