//! A network's tensors as MMSegmentation names them.

/// One tensor under its MMSeg state-dict key (`backbone.encoder.0.0.convs.0.conv.weight`,
/// `decode_head.conv_seg.bias`, `...bn.running_mean`), f32, row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct NamedTensor {
    pub key: String,
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}
