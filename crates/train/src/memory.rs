//! How a training process asks for memory. Every step frees and allocates the same large
//! buffers again (activations, gradients, the optimiser's new weights: burn's tensors are
//! values, not updated in place). glibc serves blocks above its mmap threshold (at most
//! 32 MiB) from fresh mappings and unmaps them when freed, and trims the heap's free top, so
//! each step page-faults them in again, zero-filled by the kernel (`clear_page` was 5-10 %
//! of a CPU step in `perf`; UNet-S5-D16's deepest weights are 38 MB each).

/// Free memory at the top of the heap kept for the next step rather than returned.
const TRIM_THRESHOLD: i32 = 1 << 30;

/// Serves every block from the heap and keeps what is freed there for the next step: after
/// the first steps a training loop allocates without a page fault. Only glibc's
/// parameters of this process change (nothing is inherited by child processes).
pub fn tune_for_training() {
    // SAFETY: mallopt only changes glibc's allocation parameters.
    unsafe {
        libc::mallopt(libc::M_MMAP_MAX, 0);
        libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD);
    }
}
