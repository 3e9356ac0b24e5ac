//! Inference: the one recipe a job's evaluation, `sweep predict` and `sweep bench predict`
//! share, so that a prediction of a validation image and the job's own evaluation of it
//! cannot drift apart.
//!
//! - [`window`]: logits of one prepared image (whole, or MMSeg's sliding window, windows
//!   batched through the network);
//! - [`predictor`]: one network or several (an ensemble), with optional flip test-time
//!   augmentation: logits at the output size, class ids, probabilities.
//!
//! Preparing the input (resize keep-ratio, normalisation) is `sweep_data::dataset::test_input`.

pub mod predictor;
pub mod window;

pub use predictor::{Predictor, Scores, Tta};
pub use window::{logits, slide_windows, WINDOW_BATCH};
