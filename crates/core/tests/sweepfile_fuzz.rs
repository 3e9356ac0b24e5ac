//! Robustness: `parse` + `plan` on arbitrary text, YAML-token soup, random edits of the
//! shipped sweep files and random sweep-shaped trees never panic: they return a plan of
//! valid jobs or a located `SpecError`.

use proptest::prelude::*;
use serde_yaml::{Mapping, Value};
use std::path::Path;
use sweep_core::sweepfile::{parse, MAX_JOBS};

const QUICK: &str = include_str!("../../../sweeps/quick.yaml");
const FINETUNE: &str = include_str!("../../../sweeps/finetune.yaml");

fn check(text: &str, sets: &[String]) {
    match parse(Path::new("fuzz.yaml"), text, sets) {
        Ok(spec) => {
            let jobs = spec.plan().expect("a parsed spec plans");
            assert!(!jobs.is_empty() && jobs.len() <= MAX_JOBS);
            for j in &jobs {
                // The config's hash, chained with its stage's when it starts from one (a
                // job continuing a shorter run has the stage the chain's first job has).
                let mut first = j;
                while first.continues {
                    let dep = first.depends_on.as_ref().expect("a continued job depends");
                    first = jobs.iter().find(|p| &p.hash == dep).expect("in the plan");
                }
                let expected = first.depends_on.as_ref().map_or(j.config.hash(), |dep| {
                    sweep_core::job::chained_hash(&j.config.hash(), dep)
                });
                assert_eq!(j.hash, expected);
                j.config
                    .train()
                    .unwrap()
                    .validate()
                    .expect("planned jobs are valid");
            }
            let _ = spec.effective_yaml();
        }
        Err(e) => {
            let shown = e.to_string();
            assert!(
                shown.starts_with("fuzz.yaml") || shown.starts_with("--set "),
                "{shown}"
            );
            if let Some(line) = e.line() {
                assert!(
                    line >= 1 && line as usize <= yaml_lines(text) + 1,
                    "{shown}"
                );
            }
        }
    }
}

/// The file's lines as YAML (libyaml) counts them, which error positions use: besides `\n`,
/// a lone `\r`, NEL, LS and PS end a line too (`str::lines` splits at `\n` only).
/// Found by the fuzzer: `"a:\u{2028}Σ"` is one line for `str::lines`, and its error is on
/// YAML's line 3 (see sweepfile_fuzz.proptest-regressions).
fn yaml_lines(text: &str) -> usize {
    let other_breaks = text
        .char_indices()
        .filter(|&(i, c)| {
            matches!(c, '\u{85}' | '\u{2028}' | '\u{2029}')
                || (c == '\r' && !text[i + 1..].starts_with('\n'))
        })
        .count();
    text.lines().count() + other_breaks
}

const TOKENS: &[&str] = &[
    "name: ",
    "t",
    "\n",
    "  ",
    "    ",
    "- ",
    ": ",
    ":",
    "[",
    "]",
    "{",
    "}",
    ", ",
    "base:",
    "grid:",
    "include:",
    "exclude:",
    "seeds:",
    "stages:",
    "data:",
    "crop",
    "model.head",
    "model",
    "head",
    "loss",
    "iters",
    "fcn",
    "dice",
    "256",
    "250",
    "-1",
    "0",
    "&a ",
    "*a",
    "!tag ",
    "'",
    "\"",
    "#",
    "? ",
    "---\n",
    "...\n",
    "|",
    ">",
    "~",
    "null",
    "1e999",
    "0x10",
    ".inf",
    "<<: ",
    "\t",
    "type",
    "init.from",
    "x",
];

const JOB_KEYS: &[&str] = &[
    "crop",
    "iters",
    "batch",
    "seed",
    "model.head",
    "model",
    "head",
    "loss",
    "aux_loss",
    "data.scale",
    "data",
    "eval.crop",
    "eval",
    "optimizer",
    "optimizer.type",
    "optimizer.lr",
    "schedule.type",
    "init.from",
    "init",
    "freeze",
    "fault",
    "model.base_channels",
    "crp",
    "type",
    "weight",
    "data.split",
    "subjects",
];

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (-3i64..400).prop_map(Value::from),
        prop::sample::select(vec![0i64, 16, 64, 128, 256, 320, 250, 1 << 40]).prop_map(Value::from),
        (-1.0f64..2.0).prop_map(Value::from),
        prop::sample::select(vec![
            "fcn",
            "deeplabv3",
            "aspp",
            "pspnet",
            "fcm",
            "ce",
            "dice",
            "focal",
            "sgd",
            "adamw",
            "poly",
            "slide",
            "whole",
            "study",
            "dme",
            "chase_db1",
            "pre",
            "",
        ])
        .prop_map(|s| Value::String(s.into())),
    ]
}

fn tree() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Sequence),
            prop::collection::vec((prop::sample::select(JOB_KEYS), inner), 0..4).prop_map(|kv| {
                Value::Mapping(
                    kv.into_iter()
                        .map(|(k, v)| (Value::String(k.into()), v))
                        .collect::<Mapping>(),
                )
            }),
        ]
    })
}

/// Keys with values that are mostly valid (and a few that are not), so that many
/// generated sweeps get through to expansion.
const PLAUSIBLE: &[(&str, &str)] = &[
    ("crop", "[64, 128, 250, 0]"),
    ("iters", "[1, 10, 0]"),
    ("model.head", "[fcn, deeplabv3, aspp, fcm]"),
    (
        "loss",
        "[ce, dice, focal, [{type: ce}, {type: dice, weight: 3}], dcie]",
    ),
    ("seed", "[0, 1]"),
    (
        "optimizer",
        "[{type: sgd}, {type: adamw, lr: 0.001}, {lr: 0.1}]",
    ),
    ("data.scale", "[[64, 64], [0, 1]]"),
    ("eval", "[{crop: 64, stride: 32}, {mode: whole}]"),
    ("init.from", "[pre, nope]"),
    ("model", "[{head: pspnet}, {base_channels: 4}]"),
    ("data.split", "[study, {subjects: {train: [1], val: [2]}}]"),
];

fn plausible_axis() -> impl Strategy<Value = (String, Vec<Value>)> {
    prop::sample::select(PLAUSIBLE).prop_flat_map(|(k, vs)| {
        let values: Vec<Value> = serde_yaml::from_str(vs).unwrap();
        let n = values.len();
        (
            Just(k.to_string()),
            prop::sample::subsequence(values, 1..=n),
        )
    })
}

fn job_map() -> impl Strategy<Value = Value> {
    let pair = prop_oneof![
        3 => plausible_axis().prop_map(|(k, v)| (k, v[0].clone())),
        1 => (prop::sample::select(JOB_KEYS), tree()).prop_map(|(k, v)| (k.to_string(), v)),
    ];
    prop::collection::vec(pair, 0..4)
        .prop_map(|kv| Value::Mapping(kv.into_iter().map(|(k, v)| (Value::String(k), v)).collect()))
}

/// A sweep-shaped document: mostly the right top-level keys, random contents.
fn sweep_doc() -> impl Strategy<Value = String> {
    let grid = prop::collection::vec(
        prop_oneof![
            3 => plausible_axis(),
            1 => (prop::sample::select(JOB_KEYS), prop::collection::vec(leaf(), 0..4))
                .prop_map(|(k, v)| (k.to_string(), v)),
        ],
        0..4,
    );
    let seeds = prop::collection::vec(prop_oneof![9 => 0i64..4, 1 => Just(-1i64)], 0..4);
    (
        prop_oneof![16 => Just("t"), 1 => Just(""), 1 => Just("a b")],
        prop::option::of(job_map()),
        grid,
        prop::option::of(prop::collection::vec(job_map(), 0..3)),
        prop::option::weighted(0.3, prop::collection::vec(job_map(), 0..2)),
        prop::option::of(seeds),
        prop::option::weighted(0.3, job_map()),
        prop::option::weighted(0.1, tree()),
    )
        .prop_map(
            |(name, base, grid, include, exclude, seeds, stage, extra)| {
                let mut m = Mapping::new();
                m.insert("name".into(), name.into());
                if let Some(b) = base {
                    m.insert("base".into(), b);
                }
                if !grid.is_empty() {
                    let g: Mapping = grid
                        .into_iter()
                        .map(|(k, v)| (Value::String(k), Value::Sequence(v)))
                        .collect();
                    m.insert("grid".into(), Value::Mapping(g));
                }
                if let Some(i) = include {
                    m.insert("include".into(), Value::Sequence(i));
                }
                if let Some(e) = exclude {
                    m.insert("exclude".into(), Value::Sequence(e));
                }
                if let Some(s) = seeds {
                    m.insert("seeds".into(), s.into_iter().map(Value::from).collect());
                }
                if let Some(s) = stage {
                    let mut st = Mapping::new();
                    st.insert("pre".into(), s);
                    m.insert("stages".into(), Value::Mapping(st));
                }
                if let Some(x) = extra {
                    m.insert("data".into(), x);
                }
                serde_yaml::to_string(&Value::Mapping(m)).unwrap_or_default()
            },
        )
}

#[derive(Clone, Debug)]
enum Edit {
    Delete(f64, usize),
    Insert(f64, &'static str),
    DeleteLine(f64),
    DuplicateLine(f64),
    SwapLines(f64, f64),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (0.0..1.0f64, 1usize..12).prop_map(|(p, n)| Edit::Delete(p, n)),
        (0.0..1.0f64, prop::sample::select(TOKENS)).prop_map(|(p, t)| Edit::Insert(p, t)),
        (0.0..1.0f64).prop_map(Edit::DeleteLine),
        (0.0..1.0f64).prop_map(Edit::DuplicateLine),
        (0.0..1.0f64, 0.0..1.0f64).prop_map(|(a, b)| Edit::SwapLines(a, b)),
    ]
}

fn char_boundary(text: &str, frac: f64) -> usize {
    let mut i = ((text.len() as f64) * frac) as usize;
    while i < text.len() && !text.is_char_boundary(i) {
        i += 1;
    }
    i.min(text.len())
}

fn apply_edits(base: &str, edits: &[Edit]) -> String {
    let mut text = base.to_string();
    for e in edits {
        match e {
            Edit::Delete(p, n) => {
                let a = char_boundary(&text, *p);
                let b = char_boundary(&text, ((a + n) as f64 / text.len().max(1) as f64).min(1.0));
                text.replace_range(a..b.max(a), "");
            }
            Edit::Insert(p, t) => {
                let a = char_boundary(&text, *p);
                text.insert_str(a, t);
            }
            Edit::DeleteLine(p) | Edit::DuplicateLine(p) => {
                let mut lines: Vec<&str> = text.lines().collect();
                if lines.is_empty() {
                    continue;
                }
                let i = ((lines.len() as f64) * p) as usize % lines.len();
                if matches!(e, Edit::DeleteLine(_)) {
                    lines.remove(i);
                } else {
                    lines.insert(i, lines[i]);
                }
                text = lines.join("\n");
            }
            Edit::SwapLines(a, b) => {
                let mut lines: Vec<&str> = text.lines().collect();
                if lines.is_empty() {
                    continue;
                }
                let (i, j) = (
                    ((lines.len() as f64) * a) as usize % lines.len(),
                    ((lines.len() as f64) * b) as usize % lines.len(),
                );
                lines.swap(i, j);
                text = lines.join("\n");
            }
        }
    }
    text
}

fn sets() -> impl Strategy<Value = Vec<String>> {
    let key = prop::sample::select(vec![
        "name",
        "base.iters",
        "base.crop",
        "grid.crop",
        "grid.model.head",
        "seeds",
        "include.0.crop",
        "base",
        "base.model.hed",
        "data.scale",
        "stages.pre.crop",
        "",
        "base..x",
        "include[0]",
        "grid",
    ]);
    let value = prop::sample::select(vec![
        "20",
        "abc",
        "[256,320]",
        "[0,1]",
        "{head: fcn}",
        "[",
        "",
        "quick2",
        "-1",
        "{}",
        "[]",
        "null",
        "[{crop: 64}]",
    ]);
    prop::collection::vec(
        prop_oneof![
            4 => (key, value).prop_map(|(k, v)| format!("{k}={v}")),
            1 => "\\PC{0,12}",
        ],
        0..3,
    )
}

fn input() -> impl Strategy<Value = (String, Vec<String>)> {
    let text = prop_oneof![
        1 => "\\PC{0,120}",
        2 => prop::collection::vec(prop::sample::select(TOKENS), 0..40).prop_map(|t| t.concat()),
        3 => (prop::sample::select(vec![QUICK, FINETUNE]), prop::collection::vec(edit(), 1..5))
            .prop_map(|(base, edits)| apply_edits(base, &edits)),
        3 => sweep_doc(),
    ];
    (text, prop_oneof![3 => Just(Vec::new()), 1 => sets()])
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(10_000))]

    #[test]
    fn parse_and_plan_never_panic((text, sets) in input()) {
        check(&text, &sets);
    }
}

#[test]
fn pathological_inputs() {
    for text in [
        "[".repeat(10_000),
        "a: ".repeat(5_000),
        format!("name: t\nbase: {}1{}", "{a: ".repeat(300), "}".repeat(300)),
        "name: t\nbase: &a {crop: 64}\ngrid: {crop: [*a]}\n".to_string(),
        "name: t\nbase: !!map {crop: 64}\n".to_string(),
        "name: t\nbase: {crop: !custom 64}\n".to_string(),
        "\u{feff}name: t\n".to_string(),
        "name: t\n---\nname: u\n".to_string(),
        "name: t\ngrid: {crop: [64, 64, 64, 64, 64, 64, 64, 64, 64, 64], iters: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], seed: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], batch: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]}\n".to_string(),
        "name: t\n1: 2\n".to_string(),
        "name: t\n? [a, b]\n: c\n".to_string(),
        "name: t\nbase: {<<: {crop: 64}}\n".to_string(),
    ] {
        check(&text, &[]);
    }
    // the grid cap is an error, not a hang
    let big = "name: t\ngrid: {crop: [64, 64, 64, 64, 64, 64, 64, 64, 64, 64], iters: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], seed: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], batch: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]}\n";
    let e = parse(Path::new("fuzz.yaml"), big, &[]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "fuzz.yaml:2:8: grid.crop: the grid has more than 10000 points"
    );
}
