//! Training losses read from the device a window at a time, not every step.
//!
//! Reading a loss is a device synchronisation: on CUDA the host waits until the GPU has run
//! everything queued, so a read every step leaves the GPU idle while the host queues the next
//! step's few hundred kernels. The train loop instead keeps each step's loss on the device and
//! reads a whole window of them with one transfer when the window is due (a wall-time limit)
//! or before anything that needs them: a checkpoint, a validation, a stop, the end. On CPU,
//! where kernels run synchronously, only the batching of the events changes.

use burn::tensor::Tensor;
use std::time::{Duration, Instant};

/// How long a window may grow before its losses are read: the curve and the progress bar
/// lag the GPU by at most this much, and a loss that became NaN is seen within it.
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(1);

/// The most steps a window holds, whatever their pace.
pub const MAX_STEPS: usize = 256;

/// One step whose loss `L` is not read yet: the rest of its report is known.
#[derive(Debug)]
struct Pending<L> {
    loss: L,
    /// `secs` holds the host's time for the step (asking for its batch to having queued
    /// it) until the read scales it; `loss` is filled in by the read.
    step: StepRead,
}

/// One step with its loss read: what [`crate::Event::Iter`] reports.
#[derive(Clone, Debug, PartialEq)]
pub struct StepRead {
    pub iter: usize,
    pub lr: f64,
    pub images: usize,
    pub loss: f64,
    /// The step's share of its window's wall time (data wait included): the host time of the
    /// step scaled so that the window's steps add up to the window's wall time, which
    /// includes the wait for the device to finish them.
    pub secs: f64,
    pub data_wait_secs: f64,
}

/// A step just queued on the device, for [`LossWindow::push`].
pub struct QueuedStep<L> {
    pub iter: usize,
    pub lr: f64,
    pub images: usize,
    pub loss: L,
    pub started: Instant,
    pub data_wait: Duration,
}

/// The steps queued since the last read.
pub struct LossWindow<L> {
    pending: Vec<Pending<L>>,
    opened: Option<Instant>,
    limit: Duration,
}

impl<L> LossWindow<L> {
    /// A window read once it spans `limit` of wall time (zero: every step).
    pub fn new(limit: Duration) -> Self {
        LossWindow {
            pending: Vec::new(),
            opened: None,
            limit,
        }
    }

    pub fn push(&mut self, step: QueuedStep<L>) {
        self.opened.get_or_insert(step.started);
        self.pending.push(Pending {
            loss: step.loss,
            step: StepRead {
                iter: step.iter,
                lr: step.lr,
                images: step.images,
                loss: f64::NAN,
                secs: step.started.elapsed().as_secs_f64(),
                data_wait_secs: step.data_wait.as_secs_f64(),
            },
        });
    }

    /// Whether the window should be read now on its own account (time or size).
    pub fn due(&self) -> bool {
        self.opened.is_some_and(|t| t.elapsed() >= self.limit) || self.pending.len() >= MAX_STEPS
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Reads the window's losses with `read` (one transfer for all of them) and empties it.
    pub fn read<E>(
        &mut self,
        read: impl FnOnce(Vec<L>) -> Result<Vec<f64>, E>,
    ) -> Result<Vec<StepRead>, E> {
        let pending = std::mem::take(&mut self.pending);
        let Some(opened) = self.opened.take() else {
            return Ok(Vec::new());
        };
        let (losses, mut steps): (Vec<L>, Vec<StepRead>) =
            pending.into_iter().map(|p| (p.loss, p.step)).unzip();
        let values = read(losses)?;
        let wall = opened.elapsed().as_secs_f64();
        let host: f64 = steps.iter().map(|s| s.secs).sum();
        // On CPU host time is the step time and the scale is ~1; on CUDA it adds the wait.
        let scale = if host > 0.0 { wall / host } else { 0.0 };
        for (step, loss) in steps.iter_mut().zip(values) {
            step.loss = loss;
            step.secs *= scale;
        }
        Ok(steps)
    }
}

/// Reads scalar losses with one concatenation and one device-to-host transfer.
pub fn read_losses(losses: Vec<Tensor<1>>) -> anyhow::Result<Vec<f64>> {
    if losses.is_empty() {
        return Ok(Vec::new());
    }
    let n = losses.len();
    let data = Tensor::cat(losses, 0).into_data();
    let values: Vec<f32> = data
        .convert::<f32>()
        .to_vec()
        .map_err(|e| anyhow::anyhow!("reading {n} losses from the device: {e:?}"))?;
    anyhow::ensure!(
        values.len() == n,
        "read {} losses, expected {n}",
        values.len()
    );
    Ok(values.into_iter().map(f64::from).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queued(iter: usize, loss: f64) -> QueuedStep<f64> {
        QueuedStep {
            iter,
            lr: 0.01,
            images: 2,
            loss,
            started: Instant::now(),
            data_wait: Duration::from_millis(1),
        }
    }

    fn values(v: Vec<f64>) -> Result<Vec<f64>, ()> {
        Ok(v)
    }

    #[test]
    fn reads_every_step_in_order_with_one_read_per_window() {
        let mut w = LossWindow::new(Duration::from_secs(3600));
        for i in 1..=5 {
            w.push(queued(i, i as f64 / 10.0));
        }
        assert!(!w.due(), "an hour-long window is not due after 5 steps");
        let mut reads = 0;
        let steps = w
            .read(|v| {
                reads += 1;
                values(v)
            })
            .unwrap();
        assert_eq!(reads, 1);
        assert_eq!(
            steps.iter().map(|s| s.iter).collect::<Vec<_>>(),
            [1, 2, 3, 4, 5]
        );
        assert_eq!(steps[2].loss, 0.3);
        assert!(w.is_empty());
        assert_eq!(
            w.read(values).unwrap(),
            Vec::new(),
            "an empty window reads nothing"
        );
    }

    #[test]
    fn step_times_add_up_to_the_window_wall_time() {
        let mut w = LossWindow::new(Duration::ZERO);
        let opened = Instant::now();
        for i in 1..=3 {
            std::thread::sleep(Duration::from_millis(5));
            w.push(queued(i, 1.0));
        }
        // The device's wait, which the host times do not see.
        std::thread::sleep(Duration::from_millis(20));
        let steps = w.read(values).unwrap();
        let total: f64 = steps.iter().map(|s| s.secs).sum();
        let wall = opened.elapsed().as_secs_f64();
        assert!(total >= 0.020 && total <= wall, "{total} vs {wall}");
        assert!(steps.iter().all(|s| s.data_wait_secs == 0.001));
    }

    #[test]
    fn a_zero_window_is_due_after_each_step_and_a_full_one_whatever_the_time() {
        let mut w = LossWindow::new(Duration::ZERO);
        assert!(!w.due(), "nothing queued");
        w.push(queued(1, 1.0));
        assert!(w.due());
        let mut w = LossWindow::new(Duration::from_secs(3600));
        for i in 0..MAX_STEPS {
            w.push(queued(i + 1, 1.0));
        }
        assert!(w.due());
    }

    #[test]
    fn a_nan_loss_is_reported_and_read_errors_pass_through() {
        let mut w = LossWindow::new(Duration::ZERO);
        w.push(queued(1, 0.5));
        w.push(queued(2, f64::NAN));
        let steps = w.read(values).unwrap();
        assert_eq!(steps[0].loss, 0.5);
        assert!(steps[1].loss.is_nan());
        w.push(queued(3, 0.3));
        assert_eq!(
            w.read(|_| Err::<Vec<f64>, _>("device lost")),
            Err("device lost")
        );
    }
}
