//! Shared prefixes end to end: grid rows that differ only in `iters` (with a schedule that does
//! not depend on it) train once, each longer row continuing the next shorter one, and end
//! with exactly the results of rows trained separately (`share_prefixes: false`).

use crate::util::{rt, stderr_of, Sandbox};
use std::collections::BTreeMap;
use sweep_core::protocol::MetricValue;
use sweep_core::store::{self, CurvePoint};

const DME: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/data/dme");

/// Rows of 2, 4 and 6 iterations of one tiny training, validated every 2 iterations.
fn rows(extra: &str) -> String {
    format!(
        "name: prefixes\ndata: {{dataset: dme, root: {DME}, limit_val: 3}}\n\
         base:\n  model: {{base_channels: 4, aux_head: false}}\n  crop: 32\n  batch: 2\n\
         \x20 schedule: {{horizon: 6}}\n  checkpoint_every: 0\n\
         \x20 eval: {{mode: slide, crop: 64, stride: 48, every: 2}}\n\
         include: [{{iters: 4}}, {{iters: 2}}, {{iters: 6}}]\n{extra}"
    )
}

/// Per job (by iterations): validation metrics, training curve, validation curve.
type Results = BTreeMap<usize, (Vec<MetricValue>, Vec<CurvePoint>, Vec<(usize, MetricValue)>)>;

fn run(sb: &Sandbox, extra: &str) -> Results {
    let file = sb.write_sweep(&rows(extra));
    let out = sb.run(&file, &["--workers", "2"]);
    assert!(out.status.success(), "{}", stderr_of(&out));
    let db = sb.db();
    rt().block_on(async {
        let store = store::open(&db).await.unwrap();
        let mut results = Results::new();
        for row in store.report_rows(None).await.unwrap() {
            let val: Vec<MetricValue> = row
                .metrics
                .into_iter()
                .filter(|m| m.split == "val")
                .collect();
            let curve = store.curve(row.job_id).await.unwrap();
            let evals = store.eval_curve(row.job_id).await.unwrap();
            results.insert(row.total_iters.unwrap(), (val, curve, evals));
        }
        results
    })
}

#[test]
fn rows_that_differ_only_in_iters_train_once_and_score_as_if_trained_apart() {
    let shared_sb = Sandbox::new();
    let plan = shared_sb
        .command(&["plan", shared_sb.write_sweep(&rows("")).to_str().unwrap()])
        .output()
        .unwrap();
    let plan = String::from_utf8_lossy(&plan.stdout).to_string();
    assert!(plan.contains("train 6 iterations instead of 12"), "{plan}");
    assert!(
        plan.contains("#2 (2 it) -> #1 (4 it) -> #3 (6 it)"),
        "{plan}"
    );

    let shared = run(&shared_sb, "");
    let apart = run(&Sandbox::new(), "share_prefixes: false\n");
    assert_eq!(shared.keys().copied().collect::<Vec<_>>(), [2, 4, 6]);
    for (iters, (metrics, curve, evals)) in &shared {
        let (metrics_apart, curve_apart, evals_apart) = &apart[iters];
        assert!(!metrics.is_empty());
        assert_eq!(
            metrics, metrics_apart,
            "{iters} iterations: the same scores"
        );
        let losses = |c: &[CurvePoint]| c.iter().map(|p| (p.iteration, p.loss)).collect::<Vec<_>>();
        assert_eq!(
            losses(curve),
            losses(curve_apart),
            "{iters} iterations: the same losses"
        );
        assert_eq!(
            evals, evals_apart,
            "{iters} iterations: the same validations"
        );
    }
    // The longer rows did not train the shared iterations again: their first points are the
    // shorter run's own (timings included), taken over from it.
    let (_, two, _) = &shared[&2];
    let (_, six, _) = &shared[&6];
    assert_eq!(&six[..2], &two[..]);
}
