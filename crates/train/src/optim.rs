//! Optimiser and learning-rate schedule (MMSeg's SGD + PolyLR by default).

use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{AdamWConfig, ModuleOptimizer, SgdConfig};
use sweep_core::job::{JobConfig, OptimizerConfig, ScheduleConfig, ScheduleKind};

/// PyTorch's `torch.optim.AdamW` epsilon (burn's default is 1e-5).
pub const ADAMW_EPS: f32 = 1e-8;

/// The optimiser of a job.
///
/// SGD matches `torch.optim.SGD`: weight decay added to the gradient (`g + wd * w`, applied to
/// every parameter, batch norm included, as MMSeg's default), then momentum with PyTorch's
/// dampening 0 (`v = m v + g`; burn's `MomentumConfig` defaults to dampening 0.1), no Nesterov,
/// `w -= lr v`. AdamW matches `torch.optim.AdamW` (decoupled decay `w *= 1 - lr wd`, eps 1e-8).
pub fn build_optimizer(cfg: &OptimizerConfig) -> ModuleOptimizer {
    match cfg {
        OptimizerConfig::Sgd {
            momentum,
            weight_decay,
            ..
        } => SgdConfig::new()
            .with_momentum((*momentum != 0.0).then(|| {
                MomentumConfig::new()
                    .with_momentum(*momentum)
                    .with_dampening(0.0)
                    .with_nesterov(false)
            }))
            .with_weight_decay(
                (*weight_decay != 0.0).then(|| WeightDecayConfig::new(*weight_decay as f32)),
            )
            .init(),
        OptimizerConfig::Adamw {
            weight_decay,
            beta1,
            beta2,
            ..
        } => AdamWConfig::new()
            .with_beta_1(*beta1 as f32)
            .with_beta_2(*beta2 as f32)
            .with_epsilon(ADAMW_EPS)
            .with_weight_decay(*weight_decay as f32)
            .init(),
    }
}

/// Learning rate as a function of the number of completed iterations `t` (the rate used by
/// the update of iteration `t + 1`, MMEngine's iteration-based schedulers).
#[derive(Clone, Debug, PartialEq)]
pub struct LrSchedule {
    pub base_lr: f64,
    /// `poly` or `constant`.
    pub kind: ScheduleKind,
    pub power: f64,
    pub min_lr: f64,
    /// Poly horizon T.
    pub horizon: usize,
    pub warmup_iters: usize,
    pub warmup_ratio: f64,
}

impl LrSchedule {
    pub fn new(base_lr: f64, s: &ScheduleConfig, iters: usize) -> Self {
        LrSchedule {
            base_lr,
            kind: s.kind,
            power: s.power,
            min_lr: s.min_lr,
            horizon: s.horizon.unwrap_or(iters),
            warmup_iters: s.warmup_iters,
            warmup_ratio: s.warmup_ratio,
        }
    }

    pub fn from_job(cfg: &JobConfig) -> Self {
        Self::new(cfg.optimizer.lr(), &cfg.schedule, cfg.iters)
    }

    /// `poly`: `min_lr + (lr - min_lr) (1 - t/T)^power`, `min_lr` from `t >= T` on (MMEngine
    /// `PolyLR`, eta_min = min_lr); `constant`: `lr`. A linear warm-up multiplies either by
    /// `ratio + (1 - ratio) t / warmup_iters` while `t < warmup_iters` (MMSeg 0.x `warmup='linear'`).
    pub fn lr(&self, t: usize) -> f64 {
        let regular = match self.kind {
            ScheduleKind::Constant => self.base_lr,
            ScheduleKind::Poly => {
                let frac = if self.horizon == 0 {
                    1.0
                } else {
                    (t as f64 / self.horizon as f64).min(1.0)
                };
                self.min_lr + (self.base_lr - self.min_lr) * (1.0 - frac).powf(self.power)
            }
        };
        if t < self.warmup_iters {
            let k =
                self.warmup_ratio + (1.0 - self.warmup_ratio) * t as f64 / self.warmup_iters as f64;
            regular * k
        } else {
            regular
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::module::{Module, Param};
    use burn::optim::GradientsParams;
    use burn::tensor::{Device, Tensor, TensorData};

    #[derive(Module, Debug)]
    struct One {
        w: Param<Tensor<1>>,
    }

    /// Two steps on `loss = 2 w` (gradient 2) from w = 1; returns w after each.
    fn two_steps(cfg: &OptimizerConfig, lr: f64) -> (f32, f32) {
        let dev = Device::libtorch().autodiff();
        let mut m = One {
            w: Param::from_data(TensorData::new(vec![1.0f32], [1]), &dev),
        };
        let mut opt = build_optimizer(cfg);
        let mut ws = Vec::new();
        for _ in 0..2 {
            let loss = m.w.val().mul_scalar(2.0).sum();
            let grads = GradientsParams::from_grads(loss.backward(), &m);
            m = opt.step(lr, m, grads);
            ws.push(m.w.val().into_scalar::<f32>());
        }
        (ws[0], ws[1])
    }

    #[test]
    fn sgd_is_pytorch_sgd() {
        // PyTorch: g = 2 + 0.5 w; v = 0.9 v + g (dampening 0); w -= 0.1 v.
        // Step 1: g = 2.5, v = 2.5, w = 0.75. Step 2: g = 2.375, v = 4.625, w = 0.2875.
        // (burn's default dampening 0.1 would give 0.31125.)
        let cfg = OptimizerConfig::Sgd {
            lr: 0.1,
            momentum: 0.9,
            weight_decay: 0.5,
        };
        let (w1, w2) = two_steps(&cfg, 0.1);
        assert!((w1 - 0.75).abs() < 1e-6, "{w1}");
        assert!((w2 - 0.2875).abs() < 1e-6, "{w2}");
    }

    #[test]
    fn adamw_is_pytorch_adamw() {
        // Constant gradient: bias-corrected m / sqrt(v) = 1 each step; decoupled decay
        // w *= 1 - 0.1 * 0.5. Step 1: 0.95 - 0.1 = 0.85. Step 2: 0.85 * 0.95 - 0.1 = 0.7075.
        let cfg = OptimizerConfig::Adamw {
            lr: 0.1,
            weight_decay: 0.5,
            beta1: 0.9,
            beta2: 0.999,
        };
        let (w1, w2) = two_steps(&cfg, 0.1);
        assert!((w1 - 0.85).abs() < 1e-5, "{w1}");
        assert!((w2 - 0.7075).abs() < 1e-5, "{w2}");
    }

    fn schedule(horizon: Option<usize>, warmup_iters: usize) -> LrSchedule {
        let s = ScheduleConfig {
            horizon,
            warmup_iters,
            ..Default::default()
        };
        LrSchedule::new(0.01, &s, 200)
    }

    #[test]
    fn poly_schedule() {
        let s = schedule(None, 0);
        assert_eq!(s.lr(0), 0.01);
        // 1e-4 + 0.0099 * 0.5^0.9 = 0.0054053
        assert!((s.lr(100) - 0.005_405_28).abs() < 1e-8);
        assert!((s.lr(200) - 1e-4).abs() < 1e-12);
        assert!((s.lr(500) - 1e-4).abs() < 1e-12);
        // The study: T = 40000 over 200 iterations keeps lr at ~0.00996:
        // 1e-4 + 0.0099 * 0.995^0.9 = 0.0099554.
        let study = schedule(Some(40_000), 0);
        assert!((study.lr(200) - 0.009_955_44).abs() < 1e-8);
    }

    #[test]
    fn constant_and_warmup() {
        let mut s = schedule(None, 0);
        s.kind = ScheduleKind::Constant;
        assert_eq!(s.lr(150), 0.01);
        // Warm-up 10 iterations from ratio 0.1: at t = 5 the factor is 0.1 + 0.9 * 0.5 = 0.55,
        // times poly(5) = 1e-4 + 0.0099 * 0.975^0.9 = 0.0097770.
        let w = schedule(None, 10);
        assert!((w.lr(0) - 0.001).abs() < 1e-12);
        assert!((w.lr(5) - 0.005_377_33).abs() < 1e-8);
        assert_eq!(w.lr(10), schedule(None, 0).lr(10));
    }
}
