//! sweep-export's one integration-test binary.
//!
//! The parity tests compare with the PyTorch reference of crates/train/tests/mmseg_reference.py
//! through export_parity.py, run by the workspace's Python (`SWEEP_PYTHON`, else
//! `.venv/bin/python`, else `python3`); they fail, saying to run scripts/setup-libtorch,
//! where torch, onnx, onnxruntime or safetensors is missing.

mod onnx_errors;
mod onnx_parity;
mod pth_io;
mod python;
mod safetensors_io;
