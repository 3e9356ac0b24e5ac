//! `sweep show JOB --format json`: a job with a failed then a successful attempt, metrics,
//! a curve, artifacts, a log and per-image rows, read back from a SQLite store as JSON.

use crate::util::{job, metric, owner};
use serde_json::Value;
use std::sync::Arc;
use sweep_core::job::FailureKind;
use sweep_core::metrics::surface::Presence;
use sweep_core::protocol::{ImageMetric, MetricValue};
use sweep_core::report::show::JobView;
use sweep_core::store::{self, CurvePoint, Finish, Store};

fn image(name: &str, class: usize, dice: Option<f64>, hd95: Option<f64>) -> ImageMetric {
    ImageMetric {
        split: "val".into(),
        image: name.into(),
        class,
        intersect: 5,
        pred: 8,
        label: 6,
        dice,
        hd95,
        assd: hd95.map(|h| h / 2.0),
        presence: (class > 0).then_some(Presence::Both),
        unit: "px".into(),
    }
}

fn point(iteration: usize, loss: f64) -> CurvePoint {
    CurvePoint {
        iteration,
        loss,
        lr: 0.01,
        secs: iteration as f64 * 0.1,
    }
}

/// Job 1 of sweep `s`: attempt 1 fails (retried), attempt 2 succeeds with everything.
async fn finished_job(dir: &std::path::Path) -> Arc<dyn Store> {
    let store = store::open(&dir.join("results.db")).await.unwrap();
    let sweep = store.upsert_sweep("s", "s.yaml", "").await.unwrap();
    store.add_jobs(sweep, &[job(0)], 3).await.unwrap();
    let me = owner("a");
    let first = store.claim_next(sweep, &me).await.unwrap().unwrap();
    let failed = Finish::Failed {
        reason: "process aborted (SIGABRT)\nsecond line".into(),
        stderr_tail: "terminate called".into(),
        kind: FailureKind::Transient,
    };
    store.finish(&first.fence(&me), failed).await.unwrap();

    let c = store.claim_next(sweep, &me).await.unwrap().unwrap();
    let f = c.fence(&me);
    let runs = dir.join("runs/h0000");
    std::fs::create_dir_all(&runs).unwrap();
    std::fs::write(runs.join("worker.log"), "starting\nstep 2 loss 0.4\n").unwrap();
    store
        .set_artifact_dir(&f, runs.to_str().unwrap())
        .await
        .unwrap();
    let curve = [point(1, 0.9), point(2, f64::NAN), point(3, 0.4)];
    store.record_curve(&f, &curve).await.unwrap();
    store
        .record_artifact(&f, "checkpoint", "/runs/h0000/iter_3.ckpt", Some(3))
        .await
        .unwrap();
    let mut metrics = vec![
        metric("mDice", None, 71.5),
        metric("Dice", Some(1), 62.25),
        metric("HD95", Some(1), f64::NAN),
    ];
    metrics.push(MetricValue {
        split: "train".into(),
        name: "img_per_s".into(),
        class: None,
        value: 12.0,
    });
    let done = Finish::Succeeded {
        metrics,
        images: vec![
            image("img_1", 0, Some(99.0), None),
            image("img_1", 1, Some(62.5), Some(2.5)),
            image("img_2", 1, None, None),
        ],
        iterations: 3,
        sweep_version: Some("0.3.0+test".into()),
        data: None,
    };
    store.finish(&f, done).await.unwrap();
    store
}

async fn json_of(store: &dyn Store, selector: &str, images: bool) -> Value {
    let view = JobView::load(store, selector, images).await.unwrap();
    serde_json::from_str(&view.json().unwrap()).unwrap()
}

#[tokio::test]
async fn show_json_has_the_job_attempts_metrics_files_and_images() {
    let dir = tempfile::tempdir().unwrap();
    let store = finished_job(dir.path()).await;
    let j = json_of(store.as_ref(), "h0000", true).await;

    assert_eq!(j["job_id"], 1);
    assert_eq!(j["hash"], "h0000");
    assert_eq!(
        (j["sweep"].as_str(), j["label"].as_str()),
        (Some("s"), Some("job 0"))
    );
    assert_eq!(j["status"], "succeeded");
    assert_eq!(j["attempts_claimed"], 2);
    assert_eq!(j["iteration"], 3);
    assert_eq!(j["sweep_version"], "0.3.0+test");
    assert!(j["reason"].is_null());
    // The config is an object, not a string of JSON.
    assert_eq!(j["config"]["crop"], 256);
    assert!(
        j["finished_at"].as_i64().unwrap() > 1_600_000_000_000,
        "unix ms"
    );

    let attempts = j["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2);
    let a = &attempts[0];
    assert_eq!(
        (a["attempt"].as_u64(), a["outcome"].as_str()),
        (Some(1), Some("retried"))
    );
    assert_eq!(a["ended_as"], "pending");
    assert_eq!(a["failure"], "transient");
    assert_eq!(a["reason"], "process aborted (SIGABRT)\nsecond line");
    assert_eq!(a["owner"], "test-host:1:a");
    assert_eq!(a["host"], "test-host");
    assert!(a["ended_at"].is_i64());
    assert_eq!(attempts[1]["outcome"], "succeeded");
    assert!(attempts[1]["reason"].is_null());

    // Metrics keyed as the report's columns, by split; NaN is null.
    assert_eq!(j["metrics"]["val"]["mDice"], 71.5);
    assert_eq!(j["metrics"]["val"]["Dice.1"], 62.25);
    assert!(j["metrics"]["val"]["HD95.1"].is_null());
    assert_eq!(j["metrics"]["train"]["img_per_s"], 12.0);

    assert_eq!(j["curve"]["points"], 3);
    assert_eq!(j["curve"]["last"]["iteration"], 3);
    assert_eq!(j["curve"]["last"]["loss"], 0.4);
    assert_eq!(j["curve"]["min_loss"], 0.4);

    assert!(j["artifact_dir"].as_str().unwrap().ends_with("runs/h0000"));
    assert_eq!(j["artifacts"][0]["kind"], "checkpoint");
    assert_eq!(j["artifacts"][0]["iteration"], 3);
    assert_eq!(j["log"]["lines"][1], "step 2 loss 0.4");

    // Per-image rows, sorted by split, image and class.
    let images = j["images"].as_array().unwrap();
    assert_eq!(images.len(), 3);
    let row = &images[1];
    assert_eq!(
        (row["image"].as_str(), row["class"].as_u64()),
        (Some("img_1"), Some(1))
    );
    assert_eq!(
        (
            row["intersect"].as_u64(),
            row["pred"].as_u64(),
            row["label"].as_u64()
        ),
        (Some(5), Some(8), Some(6))
    );
    assert_eq!(row["dice"], 62.5);
    assert_eq!(row["hd95"], 2.5);
    assert_eq!(row["assd"], 1.25);
    assert_eq!(row["presence"], "both");
    assert!(images[2]["dice"].is_null() && images[2]["hd95"].is_null());
}

#[tokio::test]
async fn show_json_leaves_images_out_unless_asked_and_agrees_with_the_text() {
    let dir = tempfile::tempdir().unwrap();
    let store = finished_job(dir.path()).await;
    let j = json_of(store.as_ref(), "1", false).await;
    assert!(j.get("images").is_none(), "{j}");
    assert_eq!(j["attempts"].as_array().unwrap().len(), 2);

    // The text renders the same view: the failed attempt's first line, the curve, the log.
    let text = JobView::load(store.as_ref(), "1", true)
        .await
        .unwrap()
        .text();
    assert!(text.starts_with("job 1 (h0000) of sweep s"), "{text}");
    assert!(
        text.contains("retried") && text.contains("process aborted (SIGABRT)"),
        "{text}"
    );
    assert!(
        !text.contains("second line"),
        "only the reason's first line: {text}"
    );
    assert!(
        text.contains("curve      3 points, loss 0.4000 at iteration 3"),
        "{text}"
    );
    assert!(
        text.contains("per-image results:") && text.contains("img_2"),
        "{text}"
    );
    assert!(text.contains("step 2 loss 0.4"), "{text}");
    assert_eq!(
        text,
        sweep_core::report::show(store.as_ref(), "1", true)
            .await
            .unwrap()
    );
}
