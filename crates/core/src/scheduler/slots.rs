//! The places jobs run: CPU workers sharing the cores, or jobs per GPU.

use crate::protocol::DeviceChoice;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceKind {
    Cpu,
    Cuda,
}

/// A place a job can run: a device and what the job process sees of it.
#[derive(Clone, Debug)]
pub struct Slot {
    pub device: DeviceChoice,
    /// CUDA_VISIBLE_DEVICES for this slot; None on CPU.
    pub cuda_visible: Option<String>,
    /// libtorch intra-op threads for the job process.
    pub torch_threads: usize,
}

/// `workers` CPU slots, or `per_gpu` slots on each of `gpus` (GPU 0 when none is named).
pub fn slots(device: DeviceKind, workers: usize, gpus: &[usize], per_gpu: usize) -> Vec<Slot> {
    match device {
        DeviceKind::Cpu => {
            let workers = workers.max(1);
            let cores = std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1);
            // Each job gets its share of the cores: oversubscribed BLAS threads crawl.
            let threads = (cores / workers).max(1);
            (0..workers)
                .map(|_| Slot {
                    device: DeviceChoice::Cpu,
                    cuda_visible: None,
                    torch_threads: threads,
                })
                .collect()
        }
        DeviceKind::Cuda => {
            let gpus = if gpus.is_empty() { &[0][..] } else { gpus };
            let mut v = Vec::new();
            for _ in 0..per_gpu.max(1) {
                for g in gpus {
                    // The job process sees only its GPU, as device 0.
                    v.push(Slot {
                        device: DeviceChoice::Cuda(0),
                        cuda_visible: Some(g.to_string()),
                        torch_threads: 4,
                    });
                }
            }
            v
        }
    }
}
