//! `sweep bench predict` on CPU at a tiny size: sweep, PyTorch eager and ONNX Runtime all run
//! the slide loop and agree on the averaged logits. Not a timing test.

use sweep_core::job::Head;
use sweep_train::bench_predict::{bench_predict, BenchPredictArgs};

/// Needs torch, onnxruntime and safetensors (fails without them). The bench tunes glibc's
/// allocator for the whole process, so it runs alone in its own.
#[test]
fn three_sides_run_the_same_slide_inference() {
    crate::util::require_torch();
    crate::util::in_own_process(
        module_path!(),
        "three_sides_run_the_same_slide_inference",
        three_sides_alone,
    );
}

fn three_sides_alone() {
    let args = BenchPredictArgs {
        images: 2,
        size: [64, 96],
        crop: 32,
        stride: 20,
        head: Head::Pspnet,
        base_channels: 8,
        batch: 4,
        ..Default::default()
    };
    let run = bench_predict(&args).unwrap();
    // 64x96, crop 32, stride 20: 3 x 5 windows, padded to 32 (a multiple of 16 already).
    assert_eq!(run.windows, 15);
    let names: Vec<_> = run.sides.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["sweep", "PyTorch eager", "ONNX Runtime"]);
    assert_eq!(run.sides[2].runs_on, "CPUExecutionProvider");
    for s in &run.sides {
        assert!(s.error.is_none(), "{}: {:?}", s.name, s.error);
        let v = s.img_per_s.unwrap();
        assert!(v > 0.0 && v.is_finite(), "{s:?}");
        assert!(run.ratio(s).unwrap() > 0.0, "{s:?}");
    }
    for s in &run.sides[1..] {
        let d = s.max_abs_diff.expect("compared with sweep");
        println!("{} vs sweep: max |Δ| {d:.2e}", s.name);
        assert!(d <= 1e-4, "{}: logits differ from sweep's by {d}", s.name);
    }
    let json = run.json();
    assert_eq!(json["sides"].as_array().unwrap().len(), 3);
    assert_eq!(json["sides"][0]["ratio"], 1.0);
}
