//! A real (tiny) sweep end to end through the statistics: per-image results and the
//! validation curve recorded by the job processes, then `report` with the bootstrap,
//! `show --images`, `compare` and `plot`, all on what the store holds.

use crate::util::Sandbox;

fn stdout_ok(out: std::process::Output) -> String {
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{err}");
    String::from_utf8(out.stdout).unwrap()
}

/// Two configurations (learning rates) x two seeds, validation every 2 iterations,
/// predictions saved.
fn tiny_study(sb: &Sandbox) -> std::path::PathBuf {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/data/dme");
    let file = sb.write_sweep(&format!(
        "name: tiny\n\
         data: {{dataset: dme, root: {root}, scale: [64, 64], limit_train: 4, limit_val: 6}}\n\
         base:\n  model: {{base_channels: 4, aux_head: false}}\n  crop: 32\n  batch: 2\n  \
         iters: 4\n  optimizer: {{type: adamw, lr: 0.003}}\n  \
         eval: {{mode: whole, crop: 64, stride: 32, every: 2, save_predictions: true}}\n\
         grid:\n  optimizer.lr: [0.003, 0.001]\n\
         seeds: [0, 1]\n"
    ));
    let db = sb.db();
    let out = sb
        .command(&[
            "run",
            file.to_str().unwrap(),
            "--db",
            db.to_str().unwrap(),
            "--workers",
            "2",
        ])
        .output()
        .unwrap();
    let text = stdout_ok(out);
    // The leaderboard `run` prints is the full one, statistics included.
    assert!(text.contains("≈ best"), "{text}");
    file
}

#[test]
fn a_real_sweep_reports_tests_compares_and_draws() {
    let sb = Sandbox::new();
    tiny_study(&sb);
    let db = sb.db();
    let db = db.to_str().unwrap();

    report_carries_the_statistics(&sb, db);
    show_compare_and_plot(&sb, db);
}

/// `report --format json`: per-run values, interval, the bootstrap's verdict, HD95.
fn report_carries_the_statistics(sb: &Sandbox, db: &str) {
    let json = stdout_ok(
        sb.command(&["report", "--db", db, "--format", "json"])
            .output()
            .unwrap(),
    );
    let rows: Vec<serde_json::Value> = serde_json::from_str(&json).unwrap();
    assert_eq!(rows.len(), 2);
    for r in &rows {
        let s = &r["stats"];
        assert_eq!(s["n"], 2, "{s}");
        assert_eq!(s["values"].as_array().unwrap().len(), 2, "{s}");
        assert!(
            s["ci95"].is_array() && s["indistinguishable"].is_boolean(),
            "{s}"
        );
        assert_eq!(s["test"]["images"], 6, "{s}");
        // HD95 and ASSD of the fluid class are metrics of the row.
        assert!(
            r["metrics"]["HD95.1"]["mean"].is_number(),
            "{}",
            r["metrics"]
        );
    }
    let p: f64 = rows
        .iter()
        .map(|r| r["stats"]["prob_best"].as_f64().unwrap())
        .sum();
    assert!((p - 1.0).abs() < 1e-9);
}

/// `show --images`, `compare` and `plot` on the same database.
fn show_compare_and_plot(sb: &Sandbox, db: &str) {
    let show = stdout_ok(
        sb.command(&["show", "1", "--db", db, "--images"])
            .output()
            .unwrap(),
    );
    assert!(
        show.contains("per-image results:") && show.contains("HD95"),
        "{show}"
    );
    let images = show
        .lines()
        .filter(|l| l.contains("┆ fluid (1) ") && l.contains("img_"))
        .count();
    assert_eq!(images, 6, "one fluid row per validation image:\n{show}");

    let cmp = stdout_ok(
        sb.command(&["compare", "1", "2", "--db", db])
            .output()
            .unwrap(),
    );
    assert!(
        cmp.contains("test: paired bootstrap over 6 validation images"),
        "{cmp}"
    );
    assert!(cmp.contains("verdict: "), "{cmp}");

    let dir = sb.path().join("plots");
    let out = sb
        .command(&["plot", dir.to_str().unwrap(), "--db", db])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for stem in ["curves", "leaderboard", "per_image_dice", "overlays"] {
        for ext in ["png", "svg"] {
            let f = dir.join(format!("{stem}.{ext}"));
            let len = std::fs::metadata(&f).map(|m| m.len()).unwrap_or(0);
            assert!(len > 1000, "{} is {len} bytes", f.display());
        }
    }
    // The validation curve is drawn: its panel title is in the SVG.
    let svg = std::fs::read_to_string(dir.join("curves.svg")).unwrap();
    assert!(svg.contains("validation mDice"), "no validation panel");
}
