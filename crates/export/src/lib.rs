//! `sweep-export`: the package a trained model leaves `sweep` in, readable without the
//! database, the runs folder or libtorch.
//!
//! - [`weights`]: the network's tensors under MMSegmentation's state-dict keys;
//! - [`safetensors`]: `model.safetensors` (those keys, so MMSeg's `UNet` + head load it);
//! - [`onnx`]: `model.onnx`, the UNet-S5-D16 + FCN / ASPP / PSP graph written from the
//!   model config (libtorch and burn cannot export ONNX);
//! - [`pth`]: `model.pth`, the same tensors as a PyTorch checkpoint in MMSeg's layout;
//! - [`package`]: the folder: `metadata.json` (classes, normalisation, inference recipe,
//!   metrics, checksums of every file), the networks, a README.

pub mod onnx;
pub mod package;
pub mod pth;
pub mod safetensors;
pub mod weights;

pub use weights::NamedTensor;
