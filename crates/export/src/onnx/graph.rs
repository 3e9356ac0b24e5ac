//! A small builder of ONNX graphs: nodes named after the module they compute (so the
//! network code reads like the burn model), initializers from the network's tensors or
//! from constants, and a check that every name is used once.

use std::collections::HashSet;

use anyhow::Result;
use onnx_protobuf::attribute_proto::AttributeType;
use onnx_protobuf::tensor_proto::DataType;
use onnx_protobuf::{AttributeProto, GraphProto, NodeProto, TensorProto, ValueInfoProto};

use super::params::Params;

pub struct Graph<'t> {
    nodes: Vec<NodeProto>,
    initializers: Vec<TensorProto>,
    names: HashSet<String>,
    params: Params<'t>,
}

impl<'t> Graph<'t> {
    pub fn new(params: Params<'t>) -> Self {
        Graph {
            nodes: Vec::new(),
            initializers: Vec::new(),
            names: HashSet::new(),
            params,
        }
    }

    /// A node whose one output carries the node's name.
    pub fn node(&mut self, op: &str, name: &str, inputs: &[&str], attrs: Vec<Attr>) -> String {
        self.node_to(op, name, inputs, attrs, name)
    }

    /// A node with its one output named `output` (the graph's outputs keep their names).
    pub fn node_to(
        &mut self,
        op: &str,
        name: &str,
        inputs: &[&str],
        attrs: Vec<Attr>,
        output: &str,
    ) -> String {
        self.claim(output);
        self.nodes.push(NodeProto {
            op_type: op.into(),
            name: name.into(),
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![output.into()],
            attribute: attrs.into_iter().map(|a| a.0).collect(),
            ..Default::default()
        });
        output.into()
    }

    /// The network's tensor `key` as an initializer of that name (MMSeg's key), checked to
    /// have `shape`.
    pub fn param(&mut self, key: &str, shape: &[usize]) -> Result<String> {
        let data = self.params.take(key, shape)?;
        Ok(self.constant_f32(key, shape, data))
    }

    pub fn constant_f32(&mut self, name: &str, shape: &[usize], data: &[f32]) -> String {
        let raw = data.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.initializer(name, shape, DataType::FLOAT, raw)
    }

    pub fn constant_i64(&mut self, name: &str, data: &[i64]) -> String {
        let raw = data.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.initializer(name, &[data.len()], DataType::INT64, raw)
    }

    fn initializer(&mut self, name: &str, shape: &[usize], ty: DataType, raw: Vec<u8>) -> String {
        self.claim(name);
        self.initializers.push(TensorProto {
            name: name.into(),
            dims: shape.iter().map(|&d| d as i64).collect(),
            data_type: ty as i32,
            raw_data: raw,
            ..Default::default()
        });
        name.into()
    }

    /// Names are the graph's wiring: a second value of the same name would silently rewire it.
    fn claim(&mut self, name: &str) {
        assert!(
            self.names.insert(name.to_string()),
            "ONNX value `{name}` defined twice"
        );
    }

    /// The finished graph, and the tensors it did not use (see [`Params::unused`]).
    pub fn finish(
        self,
        name: &str,
        inputs: Vec<ValueInfoProto>,
        outputs: Vec<ValueInfoProto>,
    ) -> (GraphProto, Vec<String>) {
        let unused = self.params.unused();
        let graph = GraphProto {
            name: name.into(),
            node: self.nodes,
            initializer: self.initializers,
            input: inputs,
            output: outputs,
            ..Default::default()
        };
        (graph, unused)
    }
}

/// A node attribute.
pub struct Attr(AttributeProto);

pub fn ints(name: &str, values: &[i64]) -> Attr {
    attr(name, AttributeType::INTS, |a| a.ints = values.to_vec())
}

pub fn int(name: &str, value: i64) -> Attr {
    attr(name, AttributeType::INT, |a| a.i = value)
}

pub fn float(name: &str, value: f32) -> Attr {
    attr(name, AttributeType::FLOAT, |a| a.f = value)
}

pub fn string(name: &str, value: &str) -> Attr {
    attr(name, AttributeType::STRING, |a| {
        a.s = value.as_bytes().to_vec()
    })
}

fn attr(name: &str, ty: AttributeType, set: impl FnOnce(&mut AttributeProto)) -> Attr {
    let mut a = AttributeProto {
        name: name.into(),
        type_: ty.into(),
        ..Default::default()
    };
    set(&mut a);
    Attr(a)
}
