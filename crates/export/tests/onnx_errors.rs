//! `onnx::write`'s refusals: one error that names what is wrong.

use sweep_core::job::Head;
use sweep_export::{onnx, NamedTensor};

use crate::python::{Case, SIZE};

fn error(case: &Case, tensors: &[NamedTensor], size: [usize; 2]) -> String {
    let err = onnx::write(&case.config(), tensors, size).expect_err("onnx::write must refuse");
    format!("{err:#}")
}

#[test]
fn onnx_refuses_missing_and_misshapen_tensors_and_bad_sizes() {
    let case = Case::new(Head::Fcn, 2);
    let dir = tempfile::tempdir().unwrap();
    let tensors = case.reference(dir.path());
    assert!(onnx::write(&case.config(), &tensors, SIZE).is_ok());

    let key = "decode_head.conv_seg.bias";
    let missing: Vec<_> = tensors.iter().filter(|t| t.key != key).cloned().collect();
    let e = error(&case, &missing, SIZE);
    assert!(e.contains(&format!("missing tensor `{key}`")), "{e}");

    let key = "backbone.encoder.2.1.convs.0.conv.weight";
    let mut misshapen = tensors.clone();
    let t = misshapen.iter_mut().find(|t| t.key == key).unwrap();
    t.shape.swap(0, 1);
    let e = error(&case, &misshapen, SIZE);
    assert!(
        e.contains(&format!(
            "tensor `{key}` has shape [16, 32, 3, 3], expected [32, 16, 3, 3]"
        )),
        "{e}"
    );

    for size in [[60, 96], [64, 100], [0, 96], [8, 8]] {
        let e = error(&case, &tensors, size);
        assert!(e.contains("multiples of 16"), "{size:?}: {e}");
    }

    // The FCN's tensors for a PSP config: its first PSP tensor is missing.
    let psp = Case {
        head: Head::Pspnet,
        ..case
    };
    let e = error(&psp, &tensors, SIZE);
    assert!(
        e.contains("missing tensor `decode_head.psp_modules.0.1.conv.weight`"),
        "{e}"
    );

    // A tensor the network does not have (the auxiliary head's are fine).
    let mut extra = tensors.clone();
    extra.push(NamedTensor {
        key: "decode_head.stray".into(),
        shape: vec![1],
        data: vec![0.0],
    });
    let e = error(&case, &extra, SIZE);
    assert!(
        e.contains("not part of the Fcn network") && e.contains("decode_head.stray"),
        "{e}"
    );
}
