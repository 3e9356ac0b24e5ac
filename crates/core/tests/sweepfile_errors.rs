//! Every kind of sweep-file error, with its file:line:column and dotted key.

use std::path::Path;
use sweep_core::sweepfile::{parse, SpecError};

const FILE: &str = "sweeps/t.yaml";

fn err_with(text: &str, sets: &[&str]) -> SpecError {
    let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
    match parse(Path::new(FILE), text, &sets) {
        Ok(spec) => panic!("expected an error, got {} jobs", spec.plan().unwrap().len()),
        Err(e) => e,
    }
}

fn err(text: &str) -> String {
    err_with(text, &[]).to_string()
}

#[test]
fn unknown_head_names_value_position_and_suggests() {
    let e = err_with("name: t\nbase:\n  model:\n    head: fcm\n", &[]);
    assert_eq!(
        e.to_string(),
        r#"sweeps/t.yaml:4:11: base.model.head: unknown variant "fcm", expected one of fcn, deeplabv3, pspnet (did you mean "fcn"?)"#
    );
    assert_eq!(e.line(), Some(4));
    assert_eq!(e.key.as_deref(), Some("base.model.head"));
}

#[test]
fn unknown_keys_point_at_the_key_with_a_suggestion() {
    assert_eq!(
        err("name: t\nbase:\n  modle: {head: fcn}\n"),
        r#"sweeps/t.yaml:3:3: base.modle: unknown key "modle" (did you mean "model"?)"#
    );
    assert_eq!(
        err("name: t\nbase:\n  model: {hed: fcn}\n"),
        r#"sweeps/t.yaml:3:11: base.model.hed: unknown key "hed" (did you mean "head"?)"#
    );
    // nothing close: list what is allowed
    let e = err("name: t\nbase:\n  eval: {zzzzzz: 1}\n");
    assert_eq!(
        e,
        r#"sweeps/t.yaml:3:10: base.eval.zzzzzz: unknown key "zzzzzz", expected one of mode, crop, stride, save_predictions, every"#
    );
    // top level
    assert_eq!(
        err("name: t\nseed: [0, 1]\n"),
        r#"sweeps/t.yaml:2:1: seed: unknown key "seed" (did you mean "seeds"?)"#
    );
    assert_eq!(
        err("name: t\ncrop: 256\n"),
        "sweeps/t.yaml:2:1: crop: unknown key \"crop\" (job settings go under `base:`, e.g. base.crop)"
    );
    assert_eq!(
        err("name: t\ngird:\n  crop: [256]\n"),
        r#"sweeps/t.yaml:2:1: gird: unknown key "gird" (did you mean "grid"?)"#
    );
}

#[test]
fn wrong_types() {
    assert_eq!(
        err("name: t\nbase:\n  iters: abc\n"),
        r#"sweeps/t.yaml:3:10: base.iters: invalid type: string "abc", expected usize"#
    );
    assert_eq!(
        err("name: t\nbase:\n  model: fcn\n"),
        r#"sweeps/t.yaml:3:10: base.model: invalid type: string "fcn", expected struct ModelConfig"#
    );
    assert_eq!(
        err("name: t\ndata: {scale: [128, x]}\n"),
        r#"sweeps/t.yaml:2:21: data.scale[1]: invalid type: string "x", expected usize"#
    );
    assert_eq!(
        err("name: 12\n"),
        "sweeps/t.yaml:1:7: name: expected a text, found 12"
    );
    assert_eq!(
        err("name: t\nseeds: [0, -1]\n"),
        "sweeps/t.yaml:2:12: seeds[1]: expected a non-negative integer, found -1"
    );
    assert_eq!(
        err("name: t\ninclude: {crop: 256}\n"),
        "sweeps/t.yaml:2:10: include: expected a list of job settings, found a mapping"
    );
    assert_eq!(err("- 1\n- 2\n"), "sweeps/t.yaml:1:1: a sweep file is a mapping with keys name, description, data, base, grid, include, exclude, seeds, cv, max_attempts, stages, runs, search, stop, share_prefixes, command, program, identity_files, env (found a list)");
}

#[test]
fn validate_errors_map_to_the_line_that_set_the_value() {
    assert_eq!(
        err("name: t\nbase:\n  crop: 250\n"),
        "sweeps/t.yaml:3:9: base.crop: 250 is not a positive multiple of 16 (UNet-S5-D16 downsamples 4 times)"
    );
    assert_eq!(
        err("name: t\nbase:\n  iters: 0\n"),
        "sweeps/t.yaml:3:10: base.iters: must be positive, or 0 with `init` (evaluation only: init.from or init.path gives the weights)"
    );
    assert_eq!(
        err("name: t\nbase:\n  iters: -5\n"),
        "sweeps/t.yaml:3:10: base.iters: invalid value: integer `-5`, expected usize"
    );
    assert_eq!(
        err("name: t\ndata:\n  scale: [0, 128]\n"),
        "sweeps/t.yaml:3:11: data.scale[0]: must be positive"
    );
    // a grid value: the item itself, and the job being expanded
    assert_eq!(
        err("name: t\ngrid:\n  crop: [256, 250]\n"),
        "sweeps/t.yaml:3:15: grid.crop[1]: 250 is not a positive multiple of 16 (UNet-S5-D16 downsamples 4 times) (in job crop=250)"
    );
    // a combination only: class weights sized for 2 classes, a grid point with 3
    assert_eq!(
        err("name: t\nbase:\n  loss: [{type: ce, class_weight: [1, 2]}]\ngrid:\n  model.num_classes: [2, 3]\n"),
        "sweeps/t.yaml:3:21: base.loss[0].class_weight: has 2 values for 3 classes (in job model.num_classes=3)"
    );
}

#[test]
fn unknown_losses_and_loss_terms() {
    assert_eq!(
        err("name: t\nbase:\n  loss: dcie\n"),
        r#"sweeps/t.yaml:3:9: base.loss: unknown loss "dcie", expected one of ce, dice, focal (did you mean "dice"?)"#
    );
    assert_eq!(
        err("name: t\nbase:\n  loss: [{type: ce}, {type: dise, weight: 3}]\n"),
        r#"sweeps/t.yaml:3:29: base.loss[1].type: unknown variant "dise", expected one of ce, dice, focal (did you mean "dice"?)"#
    );
    assert_eq!(
        err("name: t\nbase:\n  loss: [{type: ce, wieght: 3}]\n"),
        r#"sweeps/t.yaml:3:21: base.loss[0].wieght: unknown key "wieght" (did you mean "weight"?)"#
    );
    assert_eq!(
        err("name: t\nbase:\n  loss: 3\n"),
        "sweeps/t.yaml:3:9: base.loss: expected a loss name (ce, dice, focal) or a list of terms like [{type: ce, weight: 1.0}, {type: dice, weight: 3.0}]"
    );
}

#[test]
fn tagged_optimizer_errors_point_inside_the_mapping() {
    assert_eq!(
        err("name: t\nbase:\n  optimizer: {type: adam, lr: 0.1}\n"),
        r#"sweeps/t.yaml:3:21: base.optimizer.type: unknown variant "adam", expected one of sgd, adamw (did you mean "adamw"?)"#
    );
    assert_eq!(
        err("name: t\nbase:\n  optimizer: {type: sgd, lr: 0.1, momentun: 0.9}\n"),
        r#"sweeps/t.yaml:3:35: base.optimizer.momentun: unknown key "momentun" (did you mean "momentum"?)"#
    );
}

#[test]
fn grid_errors() {
    assert_eq!(
        err("name: t\ngrid:\n  crop: []\n"),
        "sweeps/t.yaml:3:3: grid.crop: empty list of values (the grid would have no points)"
    );
    assert_eq!(
        err("name: t\ngrid:\n  crop: 256\n"),
        "sweeps/t.yaml:3:9: grid.crop: grid values are lists, e.g. `crop: [256]`; found 256"
    );
    // a grid key that is no config key
    assert_eq!(
        err("name: t\ngrid:\n  model.hed: [fcn, pspnet]\n"),
        r#"sweeps/t.yaml:3:3: grid.model.hed: unknown key "hed" (did you mean "head"?) (in job model.hed=fcn)"#
    );
    assert_eq!(
        err("name: t\ngrid:\n  crop: [256]\n  model.head: [fcn, deeplab]\n"),
        r#"sweeps/t.yaml:4:21: grid.model.head[1]: unknown variant "deeplab", expected one of fcn, deeplabv3, pspnet (did you mean "deeplabv3"?) (in job crop=256, model.head=deeplab)"#
    );
    assert_eq!(
        err("name: t\ngrid:\n  model..head: [fcn]\n"),
        r#"sweeps/t.yaml:3:3: grid.model..head: malformed key "model..head" (expected a dotted key like model.head)"#
    );
    assert_eq!(
        err("name: t\nbase: {loss: ce}\ngrid:\n  loss.type: [ce]\n"),
        "sweeps/t.yaml:4:3: grid.loss.type: cannot set type inside base.loss, which is a single value"
    );
    assert_eq!(
        err("name: t\nseeds: [0]\ngrid:\n  seed: [1, 2]\n"),
        "sweeps/t.yaml:4:3: grid.seed: seeds are given by `seeds:`; vary them there, not in the grid"
    );
}

#[test]
fn include_and_exclude_errors() {
    assert_eq!(
        err("name: t\ninclude:\n  - {crop: 320, model.head: deeplab}\n"),
        r#"sweeps/t.yaml:3:29: include[0].model.head: unknown variant "deeplab", expected one of fcn, deeplabv3, pspnet (did you mean "deeplabv3"?) (in job crop=320, model.head=deeplab)"#
    );
    assert_eq!(
        err("name: t\ngrid:\n  crop: [256, 288]\nexclude:\n  - {crp: 288}\n"),
        r#"sweeps/t.yaml:5:6: exclude[0].crp: unknown key "crp" (did you mean "crop"?)"#
    );
    assert_eq!(
        err("name: t\ngrid: {crop: [64, 128]}\nexclude:\n  - {iters: 200}\n"),
        "sweeps/t.yaml:4:5: exclude[0]: every job is excluded (the plan would be empty)"
    );
    assert_eq!(
        err("name: t\nexclude:\n  - {}\n"),
        "sweeps/t.yaml:3:5: exclude[0]: empty exclude entry (it would exclude every job)"
    );
}

#[test]
fn exclude_matching_nothing_is_a_warning() {
    let text = "name: t\ngrid:\n  crop: [256, 288]\nexclude:\n  - {crop: 320}\n  - {crop: 288}\n";
    let spec = parse(Path::new(FILE), text, &[]).unwrap();
    assert_eq!(spec.plan().unwrap().len(), 1);
    let w: Vec<String> = spec.warnings.iter().map(|w| w.to_string()).collect();
    assert_eq!(
        w,
        vec!["sweeps/t.yaml:5:5: exclude[0]: this exclude entry matches no job"]
    );
}

#[test]
fn structure_errors() {
    assert_eq!(
        err("base: {crop: 256}\n"),
        r#"sweeps/t.yaml:1:1: missing key "name" (the sweep's name, unique per database)"#
    );
    assert_eq!(
        err("name: my sweep\n"),
        r#"sweeps/t.yaml:1:7: name: the sweep name "my sweep" must be 1-64 characters of a-z, A-Z, 0-9, '.', '_', '-' (not starting with '.' or '-')"#
    );
    assert_eq!(
        err("name: t\nbase:\n  data: {dataset: dme}\n"),
        "sweeps/t.yaml:3:3: base.data: `data` belongs at the top level of the sweep file (it is merged into every job, stages included)"
    );
    assert_eq!(
        err("name: t\nmax_attempts: 0\n"),
        "sweeps/t.yaml:2:15: max_attempts: 0 is not between 1 and 100"
    );
    assert_eq!(
        err("name: t\nseeds: []\n"),
        "sweeps/t.yaml:2:8: seeds: empty list of seeds (drop the key to use base.seed)"
    );
    assert_eq!(
        err(""),
        "sweeps/t.yaml: a sweep file is a mapping with keys name, description, data, base, grid, include, exclude, seeds, cv, max_attempts, stages, runs, search, stop, share_prefixes, command, program, identity_files, env (found nothing)"
    );
}

#[test]
fn stage_errors() {
    assert_eq!(
        err("name: t\nbase: {init: {from: pretrian}}\nstages:\n  pretrain: {crop: 128}\n"),
        r#"sweeps/t.yaml:2:21: base.init.from: no stage named "pretrian" (did you mean "pretrain"?)"#
    );
    assert_eq!(
        err("name: t\ninclude:\n  - {init.from: pre}\n"),
        r#"sweeps/t.yaml:3:17: include[0].init.from: no stage named "pre" (define it under `stages:`)"#
    );
    assert_eq!(
        err("name: t\nstages:\n  a: {init: {from: b}}\n  b: {init: {from: a}}\n"),
        r#"sweeps/t.yaml:3:20: stages.a.init.from: stage "a" depends on itself (through init.from)"#
    );
}

#[test]
fn malformed_yaml_uses_the_parsers_location() {
    assert_eq!(
        err("name: t\nbase:\n  crop: [256\n  iters: 2\n"),
        "sweeps/t.yaml:4:8: malformed YAML: did not find expected ',' or ']', while parsing a flow sequence at line 3 column 9"
    );
    assert_eq!(
        err("name: t\nname: u\n"),
        "sweeps/t.yaml:2:1: name: key written twice in the same mapping"
    );
    assert_eq!(
        err("name: t\ngrid:\n  crop: [256]\n  crop: [320]\n"),
        "sweeps/t.yaml:4:3: grid.crop: key written twice in the same mapping"
    );
}

#[test]
fn set_errors_name_the_argument() {
    let base = "name: t\nbase: {iters: 10}\n";
    assert_eq!(
        err_with(base, &["base.iters=abc"]).to_string(),
        r#"--set base.iters=abc: invalid type: string "abc", expected usize"#
    );
    assert_eq!(
        err_with(base, &["nme=x"]).to_string(),
        r#"--set nme=x: unknown key "nme" (did you mean "name"?)"#
    );
    assert_eq!(
        err_with(base, &["base.iters"]).to_string(),
        "--set base.iters: expected key=value, e.g. base.iters=20"
    );
    assert_eq!(
        err_with(base, &["base..iters=3"]).to_string(),
        r#"--set base..iters=3: malformed key "base..iters" (expected a dotted key like base.iters)"#
    );
    let e = err_with(base, &["grid.crop=[256,"]).to_string();
    assert!(
        e.starts_with("--set grid.crop=[256,: the value is not valid YAML: "),
        "{e}"
    );
    assert_eq!(
        err_with(base, &["base.model={hed: fcn}"]).to_string(),
        r#"--set base.model={hed: fcn}: base.model.hed: unknown key "hed" (did you mean "head"?)"#
    );
    assert_eq!(
        err_with(base, &["base.crop=250"]).to_string(),
        "--set base.crop=250: 250 is not a positive multiple of 16 (UNet-S5-D16 downsamples 4 times)"
    );
    assert_eq!(
        err_with(base, &["base.iters.x=1"]).to_string(),
        "--set base.iters.x=1: cannot set x inside base.iters, which is a single value"
    );
    assert_eq!(
        err_with("name: t\ninclude: [{crop: 256}]\n", &["include.3.crop=1"]).to_string(),
        "--set include.3.crop=1: include is a list of 1 items; 3 is not one of them"
    );
}

#[test]
fn load_reports_missing_files() {
    let e = sweep_core::sweepfile::load(Path::new("sweeps/does-not-exist.yaml"), &[]).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("sweeps/does-not-exist.yaml: cannot read the sweep file: "),
        "{e}"
    );
}
