//! MMSegmentation `IoUMetric` semantics.

use crate::trainer::MetricValue;

#[derive(Clone, Debug, PartialEq)]
pub struct Metrics {
    pub num_classes: usize,
    pub intersect: Vec<u64>,
    pub union: Vec<u64>,
    pub pred: Vec<u64>,
    pub label: Vec<u64>,
}

impl Metrics {
    pub fn new(num_classes: usize) -> Self {
        Metrics {
            num_classes,
            intersect: vec![0; num_classes],
            union: vec![0; num_classes],
            pred: vec![0; num_classes],
            label: vec![0; num_classes],
        }
    }
    pub fn to_values(&self, _split: &str) -> Vec<MetricValue> {
        Vec::new()
    }
    pub fn mdice(&self) -> f64 {
        f64::NAN
    }
}
