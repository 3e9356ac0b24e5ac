//! Typed search spaces (helper A fills this in).
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Space {
    pub params: Vec<Param>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Param {
    pub key: String,
    pub dist: Dist,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Dist {
    Uniform { low: f64, high: f64, step: Option<f64> },
    LogUniform { low: f64, high: f64, step: Option<f64> },
    Int { low: i64, high: i64, step: i64 },
    Choice(Vec<serde_json::Value>),
}
