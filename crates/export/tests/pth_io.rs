//! `pth::write`: MMSeg's checkpoint layout that `torch.load(weights_only=True)` reads
//! (mmap or not) and MMSeg's modules load strictly, with the reference's logits.

use serde_json::json;
use sweep_core::job::Head;
use sweep_export::pth;

use crate::python::{number, run, Case};

#[test]
fn pth_loads_with_torch_load_weights_only_and_strictly() {
    let case = Case::new(Head::Deeplabv3, 4);
    let dir = tempfile::tempdir().unwrap();
    let tensors = case.reference(dir.path());
    let path = dir.path().join("model.pth");
    let meta = json!({
        "mmseg_version": "1.2.2",
        "dataset_meta": {"classes": ["background", "fluid", "drusen", "rpe"], "palette": [[0, 0, 0], [255, 0, 0]]},
        "iter": 20000,
        "lr": 0.0125,
        "seed": 5_000_000_000i64,
        "negative": -3,
        "amp": false,
        "resumed_from": null,
    });
    pth::write(&path, &tensors, &meta).unwrap();
    let [head, base, classes] = case.args();
    let d = dir.path().to_str().unwrap();
    let r = run(&["load", path.to_str().unwrap(), d, &head, &base, &classes]);
    println!("pth round trip, {head}: {r}");
    assert_eq!(r["checkpoint_keys"], json!(["meta", "state_dict"]));
    assert_eq!(
        (&r["ordered_dict"], &r["mmap_equal"]),
        (&json!(true), &json!(true))
    );
    assert_eq!(r["zip_ok"], json!(true));
    assert_eq!(r["meta"], meta);
    for key in [
        "logits_max_abs_diff",
        "aux_max_abs_diff",
        "tensors_max_abs_diff",
    ] {
        assert_eq!(number(&r, key), 0.0, "{key}: {r}");
    }
    assert_eq!(r["num_batches_tracked"], json!([["torch.int64", [], 0]]));
    let bns = tensors
        .iter()
        .filter(|t| t.key.ends_with(".running_mean"))
        .count();
    assert_eq!(number(&r, "num_batch_norms") as usize, bns);
}

#[test]
fn pth_refuses_meta_that_is_not_an_object() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.pth");
    let e = pth::write(&path, &[], &json!([1])).unwrap_err();
    assert!(e.to_string().contains("JSON object"), "{e}");
    assert!(!path.exists());
}
