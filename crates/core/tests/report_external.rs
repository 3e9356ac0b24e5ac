//! External rows (`sweep evaluate`): their own rows on the leaderboard (each name one row,
//! its folds one cross-validation row), marked as external, and the sweep a result joins.

use crate::util::{job_row, metrics, workspace_root};
use std::path::PathBuf;
use sweep_core::external::{self, DataSetRef, Submission};
use sweep_core::job::SplitConfig;
use sweep_core::report::external::EvaluationView;
use sweep_core::report::{self, render, Format, ReportOptions};
use sweep_core::store::{self, External, Finish, JobRow, NewJob, Outcome, Owner};

const DATA: &str = r#""data": {"dataset": "dme", "root": "data/dme", "split": "study"}"#;
const UNET: &str = "UNet + FCN, crop 256, 200 it, CE";

fn external_row(id: i64, name: &str, label: &str, split: &str, dice: f64) -> JobRow {
    let data = DATA.replace(r#""study""#, split);
    let mut row = job_row(
        "dme",
        id,
        label,
        0,
        format!("{{{data}}}"),
        "succeeded",
        m(dice),
    );
    row.external = Some(External {
        name: name.into(),
        predictions: format!("/preds/{name}"),
        content: "00".into(),
        cases: 3,
    });
    row
}

fn m(dice: f64) -> Vec<sweep_core::protocol::MetricValue> {
    metrics(&[("mDice", None, dice), ("mAcc", None, dice - 1.0)])
}

#[test]
fn each_external_name_is_its_own_row_and_says_so() {
    let config = format!(r#"{{"model": {{"head": "fcn"}}, {DATA}}}"#);
    let fold = |k: u32| format!(r#"{{"fold": {{"folds": 2, "fold": {k}, "by": "subject"}}}}"#);
    let rows = vec![
        job_row("dme", 1, UNET, 0, config, "succeeded", m(70.0)),
        // Same (data-only) config, other names: never averaged together.
        external_row(2, "nnunet", "nnunet", r#""study""#, 80.0),
        external_row(3, "mmseg", "mmseg", r#""study""#, 60.0),
        // The folds of one name are one cross-validation row, as a sweep's are.
        external_row(4, "cv", "cv, fold 1/2", &fold(0), 50.0),
        external_row(5, "cv", "cv, fold 2/2", &fold(1), 54.0),
    ];
    let groups = report::group_rows(&rows, false);
    let labels: Vec<String> = groups.iter().map(|g| g.shown_label()).collect();
    assert_eq!(
        labels,
        [
            UNET,
            "nnunet (external)",
            "mmseg (external)",
            "cv, 2-fold cv (external)"
        ]
    );
    assert_eq!(groups[3].runs.len(), 2);
    let opts = ReportOptions::default();
    let text = render(&rows, &opts).unwrap();
    assert!(text.contains("│ nnunet (external) "), "{text}");
    assert!(
        text.contains("(external): rows scored by `sweep evaluate`")
            && text.contains("nnunet from /preds/nnunet"),
        "{text}"
    );
    let json = render(
        &rows,
        &ReportOptions {
            format: Format::Json,
            ..opts
        },
    )
    .unwrap();
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v[0]["model"], "nnunet");
    assert_eq!(v[0]["external"], true);
    assert_eq!(v[0]["runs"][0]["external"]["predictions"], "/preds/nnunet");
    assert!(v[0]["config"].get("model").is_none(), "no model claimed");
    assert_eq!(v[1]["external"], false);
}

fn submission(name: &str, split: SplitConfig, content: &str, dice: f64) -> Submission {
    Submission {
        name: name.into(),
        data: DataSetRef {
            dataset: "dme".into(),
            root: dme(),
            pixel_spacing: None,
            classes: vec!["background".into(), "fluid".into()],
        },
        split,
        predictions: PathBuf::from(format!("/preds/{name}")),
        content: content.into(),
        cases: 1,
        metrics: m(dice),
        images: Vec::new(),
        val_fingerprint: "0011".into(),
    }
}

fn dme() -> PathBuf {
    workspace_root().join("data/dme")
}

/// The sweep a result joins: the latest with a row on the same folder and split (spelled as
/// its rows spell the data set), else one made and named after the data set.
#[tokio::test]
async fn a_result_joins_the_sweep_on_its_data_set_and_split() {
    let dir = tempfile::tempdir().unwrap();
    let store = store::open(&dir.path().join("e.db")).await.unwrap();
    let sweep = store.upsert_sweep("study", "s.yaml", "").await.unwrap();
    // The sweep's job spells the folder with `..` in it: the same folder all the same.
    let root = workspace_root().join("crates/../data/dme");
    let config = format!(
        r#"{{"data": {{"dataset": "dme", "root": {:?}, "split": "study"}}, "seed": 0}}"#,
        root.display().to_string()
    );
    let job = NewJob {
        hash: "h0".into(),
        stage: None,
        label: UNET.into(),
        config_json: config,
        seed: 0,
        depends_on: None,
        continues: false,
        classes: Vec::new(),
    };
    store.add_jobs(sweep, &[job], 1).await.unwrap();
    let me = Owner::current();
    let c = store.claim_next(sweep, &me).await.unwrap().unwrap();
    let done = Finish::Succeeded {
        metrics: m(70.0),
        images: Vec::new(),
        iterations: 1,
        sweep_version: None,
        data: None,
    };
    store.finish(&c.fence(&me), done).await.unwrap();

    let sub = submission("nnunet", SplitConfig::Study, "aa", 80.0);
    let (chosen, recorded) = external::record(store.as_ref(), &sub, None).await.unwrap();
    assert_eq!((chosen.name.as_str(), chosen.created), ("study", false));
    assert_eq!(recorded.outcome, Outcome::Added);
    let row = store.find_job("nnunet").await.unwrap();
    let config: serde_json::Value = serde_json::from_str(&row.config_json).unwrap();
    assert_eq!(config["data"]["root"], root.display().to_string());
    assert!(serde_json::from_str::<sweep_core::job::JobConfig>(&row.config_json).is_ok());
    let view = EvaluationView::load(store.as_ref(), &chosen, &recorded, vec!["x.json".into()])
        .await
        .unwrap();
    let standing = view.standing.as_ref().unwrap();
    assert_eq!((standing.rank, standing.rows), (1, 2));
    let text = view.text();
    assert!(
        text.contains("recorded as job 2") && text.contains("rank 1 of 2"),
        "{text}"
    );
    assert_eq!(view.metrics["mDice"], 80.0);

    // The same files again: the row it already is.
    let (_, again) = external::record(store.as_ref(), &sub, None).await.unwrap();
    assert_eq!(
        (again.job_id, again.outcome),
        (recorded.job_id, Outcome::Unchanged)
    );
    // A fold of cross-validation: no sweep has rows on it, so one is made for the data set.
    let fold = SplitConfig::Fold {
        folds: 5,
        fold: 0,
        by: Default::default(),
    };
    let cv = submission("nnunet", fold, "bb", 75.0);
    let (made, rec) = external::record(store.as_ref(), &cv, None).await.unwrap();
    assert_eq!((made.name.as_str(), made.created), ("dme-cv5", true));
    assert_eq!(
        store.find_job(&rec.job_id.to_string()).await.unwrap().label,
        "nnunet, fold 1/5"
    );
    // A sweep named that does not exist is an error naming the known ones.
    let err = external::record(store.as_ref(), &sub, Some("nope"))
        .await
        .unwrap_err();
    assert!(
        format!("{err:#}").contains("known: study, dme-cv5"),
        "{err:#}"
    );
}
