//! `model.onnx`: the inference network (UNet-S5-D16 backbone + FCN / ASPP / PSP decode
//! head, eval mode, no auxiliary head) written from the model config and the network's
//! tensors; libtorch and burn cannot export ONNX.
//!
//! - Input `input`: float32 `[N, 3, H, W]`, `N` symbolic, `H` and `W` the fixed `size`
//!   (multiples of 16). Output `logits`: float32 `[N, num_classes, H, W]`, the decode head's
//!   logits at input resolution (burn's `Segmentor::forward`).
//! - Fixed `H`, `W` for every head: PSP's adaptive pooling is a constant averaging matrix
//!   of the size, and one rule for all heads keeps the package's inference recipe simple.
//!   (The FCN / ASPP nodes themselves do not depend on the size.)
//! - Opset [`OPSET`] 17 (ONNX 1.12, 2022; IR version [`IR_VERSION`] 8): old enough for
//!   every current runtime to read, and it has all the graph needs (Resize's
//!   `pytorch_half_pixel`, `Shape` with start / end). Opset 18 would only add Resize's
//!   `axes` and move ReduceMean's axes to an input.
//! - Batch norm stays `BatchNormalization` (running statistics, epsilon 1e-5) rather than
//!   being folded into the convs: the initializers are then exactly the MMSeg tensors under
//!   their MMSeg keys, and runtimes fold it themselves.
//! - Bilinear resizes are `Resize` linear / `pytorch_half_pixel` (PyTorch's
//!   `align_corners=False`); ASPP's image pool is `GlobalAveragePool` broadcast back with
//!   `Expand`; PSP's adaptive pooling is two `MatMul`s ([`pool`]).

mod graph;
mod net;
mod params;
mod pool;

use anyhow::{bail, ensure, Result};
use onnx_protobuf::tensor_proto::DataType;
use onnx_protobuf::tensor_shape_proto::{dimension, Dimension};
use onnx_protobuf::type_proto::{self, Value};
use onnx_protobuf::{
    GraphProto, Message, ModelProto, OperatorSetIdProto, TensorShapeProto, TypeProto,
    ValueInfoProto,
};
use sweep_core::job::{Backbone, ModelConfig};

use crate::NamedTensor;
use graph::Graph;
use params::Params;

/// The ONNX operator set of the default domain the graph uses.
pub const OPSET: i64 = 17;
/// The IR version released with opset 17 (ONNX 1.12).
pub const IR_VERSION: i64 = 8;
/// Name of the graph's input.
pub const INPUT: &str = "input";
/// Name of the graph's output.
pub const OUTPUT: &str = "logits";
/// Input height and width must be multiples of this (the encoder halves them 4 times).
pub const DIVISOR: usize = 16;

/// The serialised `ModelProto` of `cfg`'s inference network with the weights `tensors`
/// (MMSeg keys; auxiliary-head tensors are ignored) for inputs of `size` = `[H, W]`.
///
/// Errors on a size that is not a positive multiple of 16, a missing tensor or one of the
/// wrong shape (naming its key), and on tensors the network does not have.
pub fn write(cfg: &ModelConfig, tensors: &[NamedTensor], size: [usize; 2]) -> Result<Vec<u8>> {
    let [h, w] = size;
    ensure!(
        h > 0 && w > 0 && h % DIVISOR == 0 && w % DIVISOR == 0,
        "ONNX input size {h}x{w}: height and width must be positive multiples of {DIVISOR} \
         (UNet-S5-D16 halves them 4 times)"
    );
    ensure!(
        cfg.backbone == Backbone::UnetS5D16,
        "ONNX export needs the unet-s5-d16 backbone, not {:?}",
        cfg.backbone
    );
    ensure!(
        cfg.num_classes > 0 && cfg.base_channels > 0,
        "empty network: {cfg:?}"
    );
    crate::weights::validate(tensors)?;
    let mut g = Graph::new(Params::new(tensors));
    net::segmentor(&mut g, cfg, INPUT, size, OUTPUT)?;
    let dims = |c: usize| [Dim::Param("N"), Dim::Value(c), Dim::Value(h), Dim::Value(w)];
    let (graph, unused) = g.finish(
        &format!("unet_s5_d16_{:?}", cfg.head).to_lowercase(),
        vec![float_tensor(INPUT, &dims(net::IN_CHANNELS))],
        vec![float_tensor(OUTPUT, &dims(cfg.num_classes))],
    );
    if !unused.is_empty() {
        bail!(
            "{} tensor(s) are not part of the {:?} network (wrong head or base channels?): {}",
            unused.len(),
            cfg.head,
            unused.join(", ")
        );
    }
    Ok(model(graph).write_to_bytes()?)
}

/// The model around `graph`: opset, IR version, producer.
fn model(graph: GraphProto) -> ModelProto {
    ModelProto {
        ir_version: IR_VERSION,
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: OPSET,
            ..Default::default()
        }],
        producer_name: "sweep".into(),
        producer_version: env!("CARGO_PKG_VERSION").into(),
        graph: Some(graph).into(),
        ..Default::default()
    }
}

enum Dim {
    Param(&'static str),
    Value(usize),
}

/// A float32 graph input or output of the given dimensions.
fn float_tensor(name: &str, dims: &[Dim]) -> ValueInfoProto {
    let dim = dims
        .iter()
        .map(|d| Dimension {
            value: Some(match d {
                Dim::Param(p) => dimension::Value::DimParam(p.to_string()),
                Dim::Value(v) => dimension::Value::DimValue(*v as i64),
            }),
            ..Default::default()
        })
        .collect();
    let tensor = type_proto::Tensor {
        elem_type: DataType::FLOAT as i32,
        shape: Some(TensorShapeProto {
            dim,
            ..Default::default()
        })
        .into(),
        ..Default::default()
    };
    ValueInfoProto {
        name: name.into(),
        type_: Some(TypeProto {
            value: Some(Value::TensorType(tensor)),
            ..Default::default()
        })
        .into(),
        ..Default::default()
    }
}
