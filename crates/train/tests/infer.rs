//! The inference recipe `sweep predict` shares with a job's evaluation: windows batched
//! through a real network give what one window at a time gives, an ensemble's probabilities
//! are the mean of its members', and flip TTA averages the mirrored pass.

use burn::tensor::activation::softmax;
use burn::tensor::{Device, Tensor, TensorData};
use sweep_core::job::{EvalConfig, EvalMode, Head, ModelConfig};
use sweep_train::infer::predictor::resize_logits;
use sweep_train::infer::{logits, Predictor, Scores, Tta};
use sweep_train::model::Segmentor;
use sweep_train::DeviceChoice;

fn cpu() -> Device {
    sweep_train::burn_device(DeviceChoice::Cpu)
}

fn net(seed: u64) -> Segmentor {
    let cfg = ModelConfig {
        head: Head::Fcn,
        base_channels: 4,
        num_classes: 3,
        aux_head: false,
        ..Default::default()
    };
    Segmentor::init(&cfg, seed, &cpu())
}

/// A fixed, non-trivial [1, 3, h, w] input.
fn image(h: usize, w: usize) -> Tensor<4> {
    let v: Vec<f32> = (0..3 * h * w)
        .map(|i| ((i as f32 * 0.137).sin() + (i % 7) as f32 * 0.1) * 1.3)
        .collect();
    Tensor::from_data(TensorData::new(v, [1, 3, h, w]), &cpu())
}

fn slide() -> EvalConfig {
    EvalConfig {
        mode: EvalMode::Slide,
        crop: 32,
        stride: 20,
        ..EvalConfig::default()
    }
}

fn values(t: Tensor<4>) -> Vec<f32> {
    t.into_data().to_vec::<f32>().unwrap()
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

fn predictor(networks: Vec<Segmentor>, tta: Tta) -> Predictor {
    Predictor {
        networks,
        eval: slide(),
        num_classes: 3,
        batch: 4,
        tta,
    }
}

/// Equal to float rounding, not bit for bit (7e-8 seen: libtorch's convolution sums in
/// another order at another batch), which is why evaluation and `sweep predict` share one
/// default batch ([`sweep_train::infer::WINDOW_BATCH`]).
#[test]
fn batched_windows_through_the_network_equal_one_at_a_time() {
    let n = net(0);
    let mut forward = |x: Tensor<4>| n.forward(x);
    let x = image(72, 88);
    let one = values(logits(&mut forward, x.clone(), &slide(), 3, 1).unwrap());
    for batch in [2, 4, 16] {
        let many = values(logits(&mut forward, x.clone(), &slide(), 3, batch).unwrap());
        let d = max_diff(&one, &many);
        assert!(d <= 1e-5, "batch {batch}: max |Δ| {d}");
    }
}

#[test]
fn a_single_pass_keeps_the_logits_of_the_jobs_evaluation() {
    let n = net(0);
    let mut forward = |x: Tensor<4>| n.forward(x);
    let x = image(72, 88);
    let want = resize_logits(
        logits(&mut forward, x.clone(), &slide(), 3, 4).unwrap(),
        80,
        100,
    );
    let Scores::Logits(got) = predictor(vec![net(0)], Tta::None)
        .scores(x, 80, 100)
        .unwrap()
    else {
        panic!("one network without TTA must keep its logits");
    };
    assert_eq!(values(got), values(want));
}

#[test]
fn an_ensemble_averages_its_members_probabilities() {
    let x = image(72, 88);
    let member = |seed| {
        predictor(vec![net(seed)], Tta::None)
            .scores(x.clone(), 72, 88)
            .unwrap()
            .probabilities()
    };
    let (a, b) = (values(member(0)), values(member(1)));
    assert!(max_diff(&a, &b) > 1e-3, "two seeds should differ");
    let both = predictor(vec![net(0), net(1)], Tta::None)
        .scores(x, 72, 88)
        .unwrap();
    assert!(matches!(both, Scores::Probabilities(_)));
    let mean: Vec<f32> = a.iter().zip(&b).map(|(p, q)| (p + q) / 2.0).collect();
    let d = max_diff(&values(both.probabilities()), &mean);
    assert!(d <= 1e-6, "max |Δ| {d}");
}

#[test]
fn flip_tta_averages_the_mirrored_pass() {
    let x = image(72, 88);
    let n = net(2);
    let mut forward = |t: Tensor<4>| n.forward(t);
    let plain = softmax(logits(&mut forward, x.clone(), &slide(), 3, 4).unwrap(), 1);
    let mirrored = logits(&mut forward, x.clone().flip([3]), &slide(), 3, 4).unwrap();
    let mirrored = softmax(mirrored.flip([3]), 1);
    let want = values((plain + mirrored) / 2.0);
    let got = predictor(vec![net(2)], Tta::Flip)
        .scores(x, 72, 88)
        .unwrap();
    let d = max_diff(&values(got.probabilities()), &want);
    assert!(d <= 1e-6, "max |Δ| {d}");
}
