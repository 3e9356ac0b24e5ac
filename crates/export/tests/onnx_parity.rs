//! `onnx::write` against PyTorch: the reference network's weights, read back from its
//! safetensors, become an ONNX graph that the ONNX checker accepts and ONNX Runtime runs
//! to the reference's eval-mode logits.

use onnx_protobuf::{Message, ModelProto};
use sweep_core::job::Head;
use sweep_export::onnx;

use crate::python::{number, run, Case, SIZE};

/// ONNX Runtime's logits may differ from PyTorch's by float rounding only.
const TOLERANCE: f64 = 1e-4;

fn onnx_matches_pytorch(case: Case) {
    let dir = tempfile::tempdir().unwrap();
    let tensors = case.reference(dir.path());
    let model = dir.path().join("model.onnx");
    std::fs::write(&model, onnx::write(&case.config(), &tensors, SIZE).unwrap()).unwrap();
    let r = run(&[
        "onnx",
        model.to_str().unwrap(),
        dir.path().to_str().unwrap(),
    ]);
    let (diff, diff_1) = (
        number(&r, "max_abs_diff"),
        number(&r, "max_abs_diff_batch_1"),
    );
    println!(
        "ONNX Runtime vs PyTorch, {} base {} {} classes, input [2, 3, {}, {}]: max |Δ| = {diff:.3e} \
         (batch of 1: {diff_1:.3e})",
        case.head_name(),
        case.base,
        case.classes,
        SIZE[0],
        SIZE[1]
    );
    // Logits far from zero, so that a small difference means something.
    assert!(
        number(&r, "reference_std") > 0.05,
        "degenerate reference: {r}"
    );
    assert!(
        diff <= TOLERANCE,
        "{case:?}: max |Δ| {diff:e} > {TOLERANCE:e}"
    );
    assert!(
        diff_1 <= TOLERANCE,
        "{case:?}: batch of 1: max |Δ| {diff_1:e}"
    );
}

#[test]
fn fcn_onnx_matches_pytorch() {
    onnx_matches_pytorch(Case::new(Head::Fcn, 2));
}

#[test]
fn deeplabv3_onnx_matches_pytorch() {
    onnx_matches_pytorch(Case::new(Head::Deeplabv3, 2));
}

#[test]
fn pspnet_onnx_matches_pytorch() {
    onnx_matches_pytorch(Case::new(Head::Pspnet, 2));
}

#[test]
fn pspnet_4_classes_onnx_matches_pytorch() {
    onnx_matches_pytorch(Case::new(Head::Pspnet, 4));
}

#[test]
fn onnx_model_declares_opset_io_and_mmseg_initializers() {
    let case = Case::new(Head::Deeplabv3, 2);
    let dir = tempfile::tempdir().unwrap();
    let tensors = case.reference(dir.path());
    let bytes = onnx::write(&case.config(), &tensors, SIZE).unwrap();
    let model = ModelProto::parse_from_bytes(&bytes).unwrap();
    assert_eq!(
        (model.ir_version, model.producer_name.as_str()),
        (8, "sweep")
    );
    let opsets: Vec<_> = model
        .opset_import
        .iter()
        .map(|o| (o.domain.as_str(), o.version))
        .collect();
    assert_eq!(opsets, [("", onnx::OPSET)]);
    let g = model.graph.as_ref().unwrap();
    let io = |v: &onnx_protobuf::ValueInfoProto| format!("{}: {:?}", v.name, v.type_);
    let input = io(&g.input[0]);
    assert!(
        input.starts_with("input:") && input.contains("DimParam(\"N\")"),
        "{input}"
    );
    assert!(
        input.contains("DimValue(3)") && input.contains("DimValue(96)"),
        "{input}"
    );
    assert_eq!(
        (g.input.len(), g.output.len(), g.output[0].name.as_str()),
        (1, 1, "logits")
    );
    // Every tensor but the auxiliary head's is an initializer under its MMSeg key.
    let names: std::collections::BTreeSet<&str> =
        g.initializer.iter().map(|t| t.name.as_str()).collect();
    let expected: Vec<&str> = tensors
        .iter()
        .map(|t| t.key.as_str())
        .filter(|k| !k.starts_with("auxiliary_head."))
        .collect();
    assert!(expected.iter().all(|k| names.contains(k)));
    assert!(expected.contains(&"decode_head.image_pool.1.bn.running_var"));
    assert!(!names.iter().any(|n| n.starts_with("auxiliary_head.")));
}
