//! The leaderboard's statistics on a real (SQLite) database of synthetic per-image results:
//! t intervals, the bootstrap's "≈ best" and P(best), the empty-mask tally, `sweep compare`.

use sweep_core::metrics::per_image::{image_metrics, DistanceScale};
use sweep_core::metrics::Metrics;
use sweep_core::protocol::ImageMetric;
use sweep_core::report::{self, compare, Format, ReportOptions};
use sweep_core::store::{self, Finish, NewJob, Owner, Store};

const GOOD: &str = "good";
const TWIN: &str = "twin of good";
const BAD: &str = "bad";
const IMAGES: usize = 20;

/// Image `i` of a 20x10 validation set: fluid in columns `0..fluid` of every row, where
/// image 0 has none. The prediction covers `hit` of those columns plus `extra` beyond.
fn image(i: usize, hit: usize, extra: usize) -> (Vec<u8>, Vec<u8>) {
    let fluid = if i == 0 { 0 } else { 4 + i % 5 };
    let (w, h) = (20, 10);
    let mut label = vec![0u8; w * h];
    let mut pred = vec![0u8; w * h];
    for y in 0..h {
        for x in 0..w {
            label[y * w + x] = u8::from(x < fluid);
            let predicted = (x < fluid && x < hit) || (x >= fluid && x < fluid + extra);
            pred[y * w + x] = u8::from(predicted && (fluid > 0 || extra > 0));
        }
    }
    (pred, label)
}

/// One run's per-image rows and its IoUMetric summary (mDice computed from the same pixels).
fn run(
    hit: impl Fn(usize) -> usize,
    extra: usize,
) -> (Vec<ImageMetric>, Vec<sweep_core::protocol::MetricValue>) {
    let mut all = Metrics::new(2);
    let mut rows = Vec::new();
    for i in 0..IMAGES {
        let (pred, label) = image(i, hit(i), extra);
        all.add(&pred, &label);
        let name = format!("img_{i}");
        rows.extend(image_metrics(
            "val",
            &name,
            &pred,
            &label,
            (20, 10),
            2,
            DistanceScale::new(None),
        ));
    }
    (rows, all.to_values("val"))
}

/// Three configurations x three seeds: `good` and its exact `twin` find most of the fluid,
/// `bad` half of it; seeds differ by one column on some images.
async fn database() -> (tempfile::TempDir, std::sync::Arc<dyn Store>) {
    let dir = tempfile::tempdir().unwrap();
    let store = store::open(&dir.path().join("s.db")).await.unwrap();
    let sweep = store.upsert_sweep("stats", "s.yaml", "{}").await.unwrap();
    let configs = [(GOOD, 7usize), (TWIN, 7), (BAD, 3)];
    let mut jobs = Vec::new();
    for (label, _) in configs {
        for seed in 0..3u64 {
            jobs.push(NewJob {
                hash: format!("{}{seed}", label.replace(' ', "")),
                stage: None,
                label: format!("{label}, seed {seed}"),
                config_json: format!(r#"{{"cfg": "{label}", "seed": {seed}}}"#),
                seed,
                depends_on: None,
                continues: false,
                classes: classes("fluid"),
            });
        }
    }
    store.add_jobs(sweep, &jobs, 1).await.unwrap();
    let me = Owner::current();
    for (label, hit) in configs {
        for seed in 0..3usize {
            let c = store.claim_next(sweep, &me).await.unwrap().unwrap();
            assert!(c.label.starts_with(label));
            let (images, metrics) = run(|i| hit + usize::from(i % 3 == seed), 1);
            store
                .finish(&c.fence(&me), done(metrics, images))
                .await
                .unwrap();
        }
    }
    (dir, store)
}

/// A succeeded attempt with these numbers.
fn done(metrics: Vec<sweep_core::protocol::MetricValue>, images: Vec<ImageMetric>) -> Finish {
    Finish::Succeeded {
        metrics,
        images,
        iterations: 1,
        sweep_version: None,
        data: None,
    }
}

fn opts(format: Format) -> ReportOptions {
    ReportOptions {
        format,
        ..Default::default()
    }
}

#[tokio::test]
async fn the_bootstrap_flags_the_clearly_worse_row_and_not_the_twin() {
    let (_dir, store) = database().await;
    let json = report::report(store.as_ref(), &opts(Format::Json))
        .await
        .unwrap();
    let rows: Vec<serde_json::Value> = serde_json::from_str(&json).unwrap();
    assert_eq!(rows.len(), 3);
    let by = |model: &str| rows.iter().find(|r| r["model"] == model).unwrap()["stats"].clone();
    let (good, twin, bad) = (by(GOOD), by(TWIN), by(BAD));
    // good and its twin have identical numbers: one of them is best, the other not
    // distinguishable from it, and they share P(best) evenly.
    assert!(good["best"].as_bool().unwrap() ^ twin["best"].as_bool().unwrap());
    assert_eq!(good["indistinguishable"], true);
    assert_eq!(twin["indistinguishable"], true);
    // Each row resamples its own seeds, so the twins tie only in about half the replicates
    // in which one of them wins: near 0.5 each, summing to 1 with bad's 0.
    let (pg, pt) = (
        good["prob_best"].as_f64().unwrap(),
        twin["prob_best"].as_f64().unwrap(),
    );
    assert!(
        (pg - 0.5).abs() < 0.05 && (pt - 0.5).abs() < 0.05,
        "{pg} {pt}"
    );
    assert!((pg + pt - 1.0).abs() < 1e-9, "{pg} {pt}");
    assert_eq!(bad["indistinguishable"], false);
    assert_eq!(bad["prob_best"], 0.0);
    assert!(bad["p_vs_best_holm"].as_f64().unwrap() < 0.05);
    assert_eq!(bad["test"]["images"], IMAGES);

    // The t interval by hand: mean ± t(0.975, 2) * std / sqrt(3).
    let values: Vec<f64> = good["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    let mean = values.iter().sum::<f64>() / 3.0;
    let std = (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 2.0).sqrt();
    let half = 4.302652729911275 * std / 3f64.sqrt();
    let ci = good["ci95"].as_array().unwrap();
    assert!(
        (ci[0].as_f64().unwrap() - (mean - half)).abs() < 1e-9,
        "{ci:?}"
    );
    assert!(
        (ci[1].as_f64().unwrap() - (mean + half)).abs() < 1e-9,
        "{ci:?}"
    );
    assert_eq!(good["n"], 3);
}

#[tokio::test]
async fn the_table_marks_rows_and_counts_the_empty_images() {
    let (_dir, store) = database().await;
    let text = report::report(store.as_ref(), &opts(Format::Table))
        .await
        .unwrap();
    assert!(
        text.contains("≈ best") && text.contains("P(best)"),
        "{text}"
    );
    assert!(text.contains("mDice 95% CI"), "{text}");
    let bad = text.lines().find(|l| l.contains(BAD)).unwrap();
    assert!(bad.contains(" no "), "{bad}");
    assert!(text
        .lines()
        .any(|l| l.contains(TWIN) && (l.contains(" yes ") || l.contains(" best "))));
    // Image 0 has no fluid in the label; every run predicts one column of it (a false alarm).
    assert!(
        text.contains("1 of 20 validation images have no fluid in the label"),
        "{text}"
    );
    assert!(text.contains("some on 1 ("), "{text}");
    let md = report::report(store.as_ref(), &opts(Format::Markdown))
        .await
        .unwrap();
    assert!(md.contains("| ≈ best | P(best) |"), "{md}");
}

#[tokio::test]
async fn compare_says_which_differences_are_real() {
    let (_dir, store) = database().await;
    let c = compare::compare(store.as_ref(), None, GOOD, BAD, "mDice", "val")
        .await
        .unwrap();
    assert!(c.diff > 0.0 && c.ci95.0 > 0.0, "{c:?}");
    assert!(c.p_two_sided < 0.05, "{c:?}");
    assert_eq!(c.a.job_ids.len(), 3);
    assert!(
        c.test
            .starts_with("paired bootstrap over 20 validation images"),
        "{}",
        c.test
    );
    assert!(
        c.verdict.starts_with("good scores higher mDice than bad"),
        "{}",
        c.verdict
    );

    let same = compare::compare(store.as_ref(), None, GOOD, TWIN, "mDice", "val")
        .await
        .unwrap();
    assert_eq!(same.diff, 0.0);
    assert!(same.p_two_sided >= 0.05 && same.ci95.0 <= 0.0 && same.ci95.1 >= 0.0);
    assert!(
        same.verdict.starts_with("No evidence of a difference"),
        "{}",
        same.verdict
    );
    let text = compare::render(&same);
    assert!(
        text.contains("A − B = +0.00") && text.contains("verdict: No evidence"),
        "{text}"
    );

    // Single jobs by hash prefix: one run each, still paired over images.
    let one = compare::compare(store.as_ref(), None, "good0", "bad0", "Dice.1", "val")
        .await
        .unwrap();
    assert_eq!((one.a.job_ids.len(), one.b.job_ids.len()), (1, 1));
    assert!(one.p_two_sided < 0.05);

    let unknown = compare::compare(store.as_ref(), None, "nothing", BAD, "mDice", "val").await;
    let msg = format!("{:#}", unknown.unwrap_err());
    assert!(msg.contains("\"nothing\"") && msg.contains("good"), "{msg}");
    let twice = compare::compare(store.as_ref(), None, GOOD, "good1", "mDice", "val").await;
    assert!(format!("{:#}", twice.unwrap_err()).contains("same job"));
}

#[tokio::test]
async fn compare_without_per_image_results_uses_the_seeds_or_refuses() {
    let dir = tempfile::tempdir().unwrap();
    let store = store::open(&dir.path().join("s.db")).await.unwrap();
    let sweep = store.upsert_sweep("old", "s.yaml", "{}").await.unwrap();
    let values = [
        ("a", [70.0, 71.0, 72.0]),
        ("b", [60.0, 61.5, 62.0]),
        ("c", [50.0, 0.0, 0.0]),
    ];
    let mut jobs = Vec::new();
    for (cfg, _) in values {
        for seed in 0..3u64 {
            jobs.push(NewJob {
                hash: format!("{cfg}{seed}"),
                stage: None,
                label: format!("{cfg}, seed {seed}"),
                config_json: format!(r#"{{"cfg": "{cfg}", "seed": {seed}}}"#),
                seed,
                depends_on: None,
                continues: false,
                classes: Vec::new(),
            });
        }
    }
    store.add_jobs(sweep, &jobs[..7], 1).await.unwrap();
    let me = Owner::current();
    for (cfg, v) in values {
        for (seed, value) in v.into_iter().enumerate() {
            if cfg == "c" && seed > 0 {
                continue;
            }
            let c = store.claim_next(sweep, &me).await.unwrap().unwrap();
            let metrics = vec![sweep_core::protocol::MetricValue {
                split: "val".into(),
                name: "mDice".into(),
                class: None,
                value,
            }];
            store
                .finish(&c.fence(&me), done(metrics, vec![]))
                .await
                .unwrap();
        }
    }
    let w = compare::compare(store.as_ref(), None, "a", "b", "mDice", "val")
        .await
        .unwrap();
    assert!(
        w.test.starts_with("Welch's t-test over runs (3 vs 3"),
        "{}",
        w.test
    );
    assert!((w.diff - (71.0 - 61.166666666666664)).abs() < 1e-9);
    let e = compare::compare(store.as_ref(), None, "a", "c", "mDice", "val")
        .await
        .unwrap_err();
    assert!(format!("{e:#}").contains("cannot compare mDice"), "{e:#}");
    // Without per-image results the leaderboard has no bootstrap columns.
    let text = report::report(store.as_ref(), &opts(Format::Table))
        .await
        .unwrap();
    assert!(
        !text.contains("≈ best") && text.contains("mDice 95% CI"),
        "{text}"
    );
}

#[tokio::test]
async fn a_row_of_another_data_set_is_not_compared_and_does_not_stop_the_test() {
    let (_dir, store) = database().await;
    // A pretraining stage on another data set: its own images, its best score.
    let sweep = store.sweep_id("stats").await.unwrap().unwrap();
    let stage = NewJob {
        hash: "stage".into(),
        stage: Some("pretrain".into()),
        label: "pretrain: vessels".into(),
        config_json: r#"{"data": {"dataset": "chase_db1"}, "seed": 0}"#.into(),
        seed: 0,
        depends_on: None,
        continues: false,
        classes: classes("vessel"),
    };
    store.add_jobs(sweep, &[stage], 1).await.unwrap();
    let me = Owner::current();
    let c = store.claim_next(sweep, &me).await.unwrap().unwrap();
    let (mut images, mut metrics) = run(|_| 20, 0);
    images
        .iter_mut()
        .for_each(|m| m.image = format!("vessel_{}", m.image));
    metrics
        .iter_mut()
        .filter(|m| m.name == "mDice")
        .for_each(|m| m.value = 99.0);
    store
        .finish(&c.fence(&me), done(metrics, images))
        .await
        .unwrap();

    let json = report::report(store.as_ref(), &opts(Format::Json))
        .await
        .unwrap();
    let rows: Vec<serde_json::Value> = serde_json::from_str(&json).unwrap();
    assert_eq!(rows[0]["model"], "pretrain: vessels");
    assert!(rows[0]["stats"]["best"].is_null(), "{}", rows[0]["stats"]);
    let bad = rows.iter().find(|r| r["model"] == BAD).unwrap();
    assert_eq!(bad["stats"]["indistinguishable"], false);
    let text = report::report(store.as_ref(), &opts(Format::Table))
        .await
        .unwrap();
    assert!(
        text.contains(&format!("Per image ({GOOD})"))
            || text.contains(&format!("Per image ({TWIN})")),
        "{text}"
    );
    // Whole images as integers: every run predicts fluid on the one empty image.
    assert!(
        text.contains(
            "): 1 of 20 validation images have no fluid in the label; it predicts none on 0 \
             of them"
        ) && text.contains("and some on 1 (Dice 0")
            && text.contains("misses the fluid of 0 images entirely (mean over 3 runs).\n"),
        "{text}"
    );
}

/// The class names recorded for a two-class data set's jobs.
fn classes(foreground: &str) -> Vec<String> {
    vec!["background".into(), foreground.into()]
}

/// One configuration's jobs: `label, seed S` for each seed, `data` (a JSON object, may be
/// empty) as its config's `data` field.
fn config_jobs(label: &str, stage: Option<&str>, data: &str, seeds: u64) -> Vec<NewJob> {
    (0..seeds)
        .map(|seed| NewJob {
            hash: format!("{}{seed}", label.replace([' ', ':'], "")),
            stage: stage.map(String::from),
            label: format!("{label}, seed {seed}"),
            config_json: format!(r#"{{"cfg": "{label}", "data": {data}, "seed": {seed}}}"#),
            seed,
            depends_on: None,
            continues: false,
            classes: classes(if data.contains("chase") {
                "vessel"
            } else {
                "fluid"
            }),
        })
        .collect()
}

/// Claims and finishes every queued job of `sweep`, its results from `result(label, seed)`
/// (the seed read from the label's `seed N`).
async fn finish_all(
    store: &dyn Store,
    sweep: i64,
    result: impl Fn(&str, u64) -> (Vec<ImageMetric>, Vec<sweep_core::protocol::MetricValue>),
) {
    let me = Owner::current();
    while let Some(c) = store.claim_next(sweep, &me).await.unwrap() {
        let seed = c.label.rsplit_once("seed ").unwrap().1.parse().unwrap();
        let (images, metrics) = result(&c.label, seed);
        store
            .finish(&c.fence(&me), done(metrics, images))
            .await
            .unwrap();
    }
}

/// A CHASE_DB1 stage of two configurations (scoring mDice 99, first in the table) beside
/// one DME configuration of three seeds, two of which predict fluid on the image that has
/// none.
async fn stage_beside_one_row() -> (tempfile::TempDir, std::sync::Arc<dyn Store>) {
    let dir = tempfile::tempdir().unwrap();
    let store = store::open(&dir.path().join("s.db")).await.unwrap();
    let sweep = store.upsert_sweep("staged", "s.yaml", "{}").await.unwrap();
    // Two stage configurations: the bootstrap tests them against each other.
    let chase = r#"{"dataset": "chase_db1"}"#;
    let mut jobs = config_jobs("pretrain: vessels", Some("pretrain"), chase, 1);
    jobs.extend(config_jobs(
        "pretrain: vessels 2",
        Some("pretrain"),
        chase,
        1,
    ));
    jobs.extend(config_jobs("finetune", None, r#"{"dataset": "dme"}"#, 3));
    store.add_jobs(sweep, &jobs, 1).await.unwrap();
    finish_all(store.as_ref(), sweep, |label, seed| {
        if label.starts_with("pretrain") {
            let (mut images, mut metrics) = run(|_| 20, 0);
            images
                .iter_mut()
                .for_each(|m| m.image = format!("v_{}", m.image));
            metrics
                .iter_mut()
                .filter(|m| m.name == "mDice")
                .for_each(|m| m.value = 99.0);
            (images, metrics)
        } else {
            run(|_| 7, usize::from(seed < 2))
        }
    })
    .await;
    (dir, store)
}

#[tokio::test]
async fn the_per_image_note_describes_the_main_data_set_not_the_stage() {
    let (_dir, store) = stage_beside_one_row().await;
    let text = report::report(store.as_ref(), &opts(Format::Table))
        .await
        .unwrap();
    let note = text.lines().find(|l| l.starts_with("Per image")).unwrap();
    // The stage ranks first and has a tested best row, but the note is about the main data
    // set's (here its only) row and its fluid; the empty image's count is whole, the false
    // alarms a mean (2 of 3 runs), and says so.
    assert_eq!(
        note,
        "Per image (finetune): 1 of 20 validation images have no fluid in the label; it \
         predicts none on 0.3 of them (Dice and distances undefined, left out of imgDice, \
         HD95, ASSD) and some on 0.7 (Dice 0, distances = the image diagonal), and misses \
         the fluid of 0 images entirely (mean over 3 runs)."
    );
    assert!(
        text.lines().nth(3).unwrap().contains("pretrain: vessels"),
        "{text}"
    );
}

#[tokio::test]
async fn the_per_image_note_names_the_data_sets_class() {
    let dir = tempfile::tempdir().unwrap();
    let store = store::open(&dir.path().join("s.db")).await.unwrap();
    let sweep = store.upsert_sweep("vessels", "s.yaml", "{}").await.unwrap();
    let data = r#"{"dataset": "chase_db1", "root": "data/chase_db1"}"#;
    let mut jobs = config_jobs("wide", None, data, 1);
    jobs.extend(config_jobs("narrow", None, data, 1));
    store.add_jobs(sweep, &jobs, 1).await.unwrap();
    finish_all(store.as_ref(), sweep, |label, _| {
        run(|_| if label.starts_with("wide") { 7 } else { 3 }, 0)
    })
    .await;
    let text = report::report(store.as_ref(), &opts(Format::Table))
        .await
        .unwrap();
    // One run: whole counts and no "mean over".
    assert!(
        text.contains(
            "Per image (wide, seed 0): 1 of 20 validation images have no vessel in the label; it \
             predicts none on 1 of them"
        ) && text.contains("misses the vessel of 0 images entirely.\n"),
        "{text}"
    );
}

#[tokio::test]
async fn compare_gives_the_leaderboards_corrected_verdict_on_the_pair() {
    let (_dir, store) = database().await;
    let json = report::report(store.as_ref(), &opts(Format::Json))
        .await
        .unwrap();
    let rows: Vec<serde_json::Value> = serde_json::from_str(&json).unwrap();
    let stats = |m: &str| rows.iter().find(|r| r["model"] == m).unwrap()["stats"].clone();
    let (best, other) = if stats(GOOD)["best"] == true {
        (GOOD, TWIN)
    } else {
        (TWIN, GOOD)
    };
    let holm = |m: &str| stats(m)["p_vs_best_holm"].as_f64().unwrap();
    let cmp = |a: &'static str, b: &'static str| {
        let store = store.clone();
        async move {
            compare::compare(store.as_ref(), None, a, b, "mDice", "val")
                .await
                .unwrap()
        }
    };

    // A is the best: the leaderboard's own adjusted p-value for B, over its 2 comparisons.
    let c = cmp(best, BAD).await;
    assert!(!c.p_corrected);
    let (a, b) = (&c.leaderboard.a, &c.leaderboard.b);
    assert_eq!(
        (a.mark, b.mark),
        (compare::Mark::Best, compare::Mark::Worse)
    );
    assert_eq!((b.comparisons, b.p_adjusted), (Some(2), Some(holm(BAD))));
    assert_eq!(b.best.as_deref(), Some(best));
    assert_eq!(
        c.leaderboard.summary,
        format!(
            "A is the leaderboard's best row; Holm-corrected over 2 comparisons with it, the \
             leaderboard marks B worse than best (adjusted p = {:.3}).",
            holm(BAD)
        )
    );
    let text = compare::render(&c);
    assert!(
        text.contains("(a single test of this pair, not corrected for multiple comparisons)")
            && text.contains(&format!(
                "\nleaderboard (sweep report --sort mDice): {}\n",
                c.leaderboard.summary
            )),
        "{text}"
    );
    let v = serde_json::to_value(&c).unwrap();
    assert_eq!(v["p_corrected"], false);
    assert_eq!(v["leaderboard"]["b"]["mark"], "worse");
    assert_eq!(v["leaderboard"]["a"]["mark"], "best");

    // B is the best.
    let swapped = cmp(BAD, best).await;
    assert!(
        swapped
            .leaderboard
            .summary
            .starts_with("B is the leaderboard's best row; Holm-corrected over 2 comparisons"),
        "{}",
        swapped.leaderboard.summary
    );

    // Neither is: each against the best, not against each other.
    let neither = cmp(other, BAD).await;
    assert_eq!(
        neither.leaderboard.summary,
        format!(
            "each row is tested against the best row, {best} (Holm-corrected over 2 \
             comparisons), not against each other: A ≈ best (adjusted p = {:.3}), B worse than \
             best (adjusted p = {:.3}).",
            holm(other),
            holm(BAD)
        )
    );

    // Single jobs of three-seed configurations are no leaderboard rows.
    let one = cmp("good0", "bad0").await;
    assert_eq!(one.leaderboard.a.mark, compare::Mark::NotARow);
    assert!(
        one.leaderboard
            .summary
            .starts_with("A is not a leaderboard row"),
        "{}",
        one.leaderboard.summary
    );
}
