//! How a training process asks for memory. Every step frees and allocates the same large
//! buffers again (activations, gradients, the optimiser's new weights: burn's tensors are
//! values, not updated in place). glibc hands blocks above its mmap threshold back to the
//! kernel when freed and trims the heap's free top, so each step page-faults them in again,
//! zero-filled by the kernel: 10 % of a CPU step in `perf` before this.

/// glibc's largest allowed mmap threshold on 64-bit: blocks up to this size come from the heap.
const MMAP_THRESHOLD: i32 = 32 << 20;
/// Free memory at the top of the heap kept for the next step rather than returned.
const TRIM_THRESHOLD: i32 = 1 << 30;

/// Keeps freed memory in the process for reuse, and lets libtorch's CPU allocator ask for
/// transparent huge pages for large tensors (`THP_MEM_ALLOC_ENABLE`: fewer, larger faults).
/// Call first thing in a process that trains, before libtorch allocates and before any
/// other thread starts (it sets an environment variable).
pub fn tune_for_training() {
    // SAFETY: mallopt only changes glibc's allocation parameters; called before other threads.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
        libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD);
    }
    if std::env::var_os("THP_MEM_ALLOC_ENABLE").is_none() {
        std::env::set_var("THP_MEM_ALLOC_ENABLE", "1");
    }
}
