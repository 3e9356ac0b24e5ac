//! libtorch's errors in one line. tch turns a failed libtorch call into a panic whose message
//! wraps libtorch's own text (`...: Torch("CUDA out of memory. Tried to allocate ...\n
//! Exception raised from ... <C++ backtrace>")`); a job's failure reason and `sweep doctor`
//! want the first sentence of libtorch's text, with what to do about the common cases.

/// The panic payload's text (`&str` or `String` payloads; others have none).
pub fn payload_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "a panic without a message".into())
}

/// One line for a panic message: libtorch's own first line when it is one, named as an out
/// of GPU memory when it says so.
pub fn summary(message: &str) -> String {
    let torch = message
        .split_once("Torch(\"")
        .map(|(_, rest)| rest.trim_end_matches("\")"))
        .map(|t| t.replace("\\n", "\n").replace("\\\"", "\""));
    let text = torch.as_deref().unwrap_or(message);
    let first = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("");
    if first.contains("CUDA out of memory") || first.contains("CUBLAS_STATUS_ALLOC_FAILED") {
        return format!(
            "out of GPU memory (fewer jobs per GPU with --per-gpu, or a smaller batch or crop): {first}"
        );
    }
    match torch {
        Some(_) => format!("libtorch: {first}"),
        None => format!("panicked: {first}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cuda_oom_is_named_with_what_to_do() {
        let m =
            "called `Result::unwrap()` on an `Err` value: Torch(\"CUDA out of memory. Tried to \
                 allocate 2.00 GiB. GPU 0 has a total capacity of 139.80 GiB\\nException raised \
                 from malloc at c10/cuda/CUDACachingAllocator.cpp:1\\nframe #0: ...\")";
        let s = summary(m);
        assert!(
            s.starts_with("out of GPU memory (fewer jobs per GPU"),
            "{s}"
        );
        assert!(
            s.ends_with("GPU 0 has a total capacity of 139.80 GiB"),
            "{s}"
        );
        assert!(!s.contains("Exception raised"), "{s}");
    }

    #[test]
    fn other_torch_errors_keep_their_first_line_and_plain_panics_say_so() {
        let m = "called `Result::unwrap()` on an `Err` value: Torch(\"\\\"slow_conv2d_cpu\\\" not \
                 implemented for 'BFloat16'\\nException raised from ...\")";
        assert_eq!(
            summary(m),
            "libtorch: \"slow_conv2d_cpu\" not implemented for 'BFloat16'"
        );
        assert_eq!(
            summary("index out of bounds\nmore"),
            "panicked: index out of bounds"
        );
        let payload: Box<dyn std::any::Any + Send> = Box::new("static text");
        assert_eq!(payload_text(payload.as_ref()), "static text");
    }
}
