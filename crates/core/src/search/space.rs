//! Typed search spaces: what `search.space` may say, checked once, and the maps every sampler
//! shares: the unit cube to values ([`Dist::from_unit`]) and values to the coordinates a
//! model works in ([`Dist::to_internal`], [`Dist::from_internal`]).
//!
//! Bounds are values, never exponents (`log_uniform [1.0e-4, 0.1]`), so that what the file
//! says is what the job config gets. Every float a sampler emits is rounded to 12
//! significant digits: jobs are identified by their config, and neither `0.1 + 0.2` noise
//! nor a last-bit difference between two machines' `exp` may create a second job.

use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Space {
    pub params: Vec<Param>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Param {
    /// A dotted job-config key, like `optimizer.lr`.
    pub key: String,
    pub dist: Dist,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Dist {
    Uniform {
        low: f64,
        high: f64,
        step: Option<f64>,
    },
    /// Uniform in ln x. With `step`, values are still on the linear grid `low + k*step`.
    LogUniform {
        low: f64,
        high: f64,
        step: Option<f64>,
    },
    Int {
        low: i64,
        high: i64,
        step: i64,
    },
    Choice(Vec<Value>),
}

/// A numeric parameter's range in internal coordinates (ln x for `log_uniform`), and its
/// grid step there when the grid is even in those coordinates (ints, stepped `uniform`).
/// `high` is the last grid value, which may sit below the written bound.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Internal {
    pub low: f64,
    pub high: f64,
    pub step: Option<f64>,
}

/// The largest f64 below 1: where a unit coordinate of 1 (or more) is clamped to.
const BELOW_ONE: f64 = 1.0 - f64::EPSILON / 2.0;

impl Dist {
    /// `uniform [low, high]`, optionally on the grid `low + k*step`.
    pub fn uniform(low: f64, high: f64, step: Option<f64>) -> Result<Dist, String> {
        let d = Dist::Uniform { low, high, step };
        d.check().map(|()| d)
    }

    /// `log_uniform [low, high]`: uniform in ln x, for scales (learning rates, decays).
    pub fn log_uniform(low: f64, high: f64, step: Option<f64>) -> Result<Dist, String> {
        let d = Dist::LogUniform { low, high, step };
        d.check().map(|()| d)
    }

    /// `int [low, high]`, both included, on `low, low+step, ...` (step 1 by default).
    pub fn int(low: i64, high: i64, step: Option<i64>) -> Result<Dist, String> {
        let d = Dist::Int {
            low,
            high,
            step: step.unwrap_or(1),
        };
        d.check().map(|()| d)
    }

    /// `choice [a, b, ...]`: distinct values, any JSON.
    pub fn choice(values: Vec<Value>) -> Result<Dist, String> {
        let d = Dist::Choice(values);
        d.check().map(|()| d)
    }

    /// What the constructors check, for a distribution that came from elsewhere (a logged
    /// policy). Messages follow `file:line: key:` and so never name the key.
    pub fn check(&self) -> Result<(), String> {
        match *self {
            Dist::Uniform { low, high, step } => {
                check_bounds(low, high)?;
                step.map_or(Ok(()), |s| check_step(s, low, high))
            }
            Dist::LogUniform { low, high, step } => {
                check_positive(low, high)?;
                check_bounds(low, high)?;
                step.map_or(Ok(()), |s| check_step(s, low, high))
            }
            Dist::Int { low, high, step } => check_int(low, high, step),
            Dist::Choice(ref values) => check_choice(values),
        }
    }

    /// The value at `u` in [0, 1) (clamped into it): each value, or grid value, equally
    /// likely under uniform `u`, except stepped `log_uniform`, whose grid values keep the
    /// log-uniform law (each gets the mass of the x that round to it).
    pub fn from_unit(&self, u: f64) -> Value {
        let u = if u >= 0.0 { u.min(BELOW_ONE) } else { 0.0 }; // NaN too
        match *self {
            Dist::Uniform {
                low,
                high,
                step: None,
            } => float(low + u * (high - low), low, high),
            Dist::Uniform {
                low,
                high,
                step: Some(s),
            } => float(
                grid_value(low, s, index(u, grid_len(low, high, s))),
                low,
                high,
            ),
            Dist::LogUniform { low, high, step } => {
                let x = (low.ln() + u * (high.ln() - low.ln())).exp();
                match step {
                    None => float(x, low, high),
                    Some(s) => snap(x, low, high, s),
                }
            }
            Dist::Int { low, high, step } => {
                Value::from(int_value(low, step, index(u, int_len(low, high, step))))
            }
            Dist::Choice(ref values) => pick(values, index(u, values.len() as u64)),
        }
    }

    /// Whether `v` is one of this distribution's values (on its grid, if it has one).
    pub fn contains(&self, v: &Value) -> bool {
        match *self {
            Dist::Uniform { low, high, step } | Dist::LogUniform { low, high, step } => {
                v.as_f64().is_some_and(|x| {
                    (low..=high).contains(&x) && step.is_none_or(|s| on_grid(x, low, s))
                })
            }
            Dist::Int { low, high, step } => v.as_i64().is_some_and(|x| {
                (low..=high).contains(&x)
                    && (i128::from(x) - i128::from(low)) % i128::from(step.max(1)) == 0
            }),
            Dist::Choice(ref values) => values.iter().any(|c| same_value(c, v)),
        }
    }

    /// One line for messages and reports: `log_uniform [0.0001, 0.1]`, `int [1, 5] step 2`,
    /// `choice [fcn, deeplabv3]`.
    pub fn describe(&self) -> String {
        let step = |s: Option<f64>| {
            s.map(|s| format!(" step {}", fmt_num(s)))
                .unwrap_or_default()
        };
        match *self {
            Dist::Uniform { low, high, step: s } => {
                format!("uniform [{}, {}]{}", fmt_num(low), fmt_num(high), step(s))
            }
            Dist::LogUniform { low, high, step: s } => {
                format!(
                    "log_uniform [{}, {}]{}",
                    fmt_num(low),
                    fmt_num(high),
                    step(s)
                )
            }
            Dist::Int { low, high, step: 1 } => format!("int [{low}, {high}]"),
            Dist::Int { low, high, step } => format!("int [{low}, {high}] step {step}"),
            Dist::Choice(ref values) => {
                let shown: Vec<String> = values.iter().map(fmt_value).collect();
                format!("choice [{}]", shown.join(", "))
            }
        }
    }

    /// How many distinct values there are; `None` for a continuous range.
    pub fn cardinality(&self) -> Option<u64> {
        match *self {
            Dist::Uniform { low, high, step } | Dist::LogUniform { low, high, step } => {
                step.map(|s| grid_len(low, high, s))
            }
            Dist::Int { low, high, step } => Some(int_len(low, high, step)),
            Dist::Choice(ref values) => Some(values.len() as u64),
        }
    }

    /// The range in internal coordinates; `None` for a choice (whose coordinate is an index).
    pub fn internal(&self) -> Option<Internal> {
        match *self {
            Dist::Uniform {
                low,
                high,
                step: None,
            } => Some(Internal {
                low,
                high,
                step: None,
            }),
            Dist::Uniform {
                low,
                high,
                step: Some(s),
            } => {
                let last = grid_value(low, s, grid_len(low, high, s) - 1).min(high);
                Some(Internal {
                    low,
                    high: last,
                    step: Some(s),
                })
            }
            Dist::LogUniform { low, high, step } => {
                let last = step.map_or(high, |s| {
                    grid_value(low, s, grid_len(low, high, s) - 1).min(high)
                });
                Some(Internal {
                    low: low.ln(),
                    high: last.ln(),
                    step: None,
                })
            }
            Dist::Int { low, high, step } => {
                let last = int_value(low, step, int_len(low, high, step) - 1);
                Some(Internal {
                    low: low as f64,
                    high: last as f64,
                    step: Some(step.max(1) as f64),
                })
            }
            Dist::Choice(_) => None,
        }
    }

    /// `v` in internal coordinates: x, ln x, the integer, or a choice's index. `None` when
    /// `v` is not of this distribution's type or lies outside its range (a trial recorded
    /// under an older space), so that a model never sees a point it cannot place.
    pub fn to_internal(&self, v: &Value) -> Option<f64> {
        match *self {
            Dist::Uniform { low, high, .. } => v.as_f64().and_then(|x| in_range(x, low, high)),
            Dist::LogUniform { low, high, .. } => {
                v.as_f64().and_then(|x| in_range(x, low, high)).map(f64::ln)
            }
            Dist::Int { low, high, .. } => v
                .as_f64()
                .and_then(|x| in_range(x, low as f64, high as f64)),
            Dist::Choice(ref values) => values
                .iter()
                .position(|c| same_value(c, v))
                .map(|i| i as f64),
        }
    }

    /// The value at internal coordinate `x`: clamped into range, rounded to the grid (ints,
    /// steps) or to the nearest index (choice).
    pub fn from_internal(&self, x: f64) -> Value {
        let x = if x.is_nan() { f64::NEG_INFINITY } else { x }; // NaN lands on the low end
        match *self {
            Dist::Uniform {
                low,
                high,
                step: None,
            } => float(x, low, high),
            Dist::Uniform {
                low,
                high,
                step: Some(s),
            } => snap(x, low, high, s),
            Dist::LogUniform {
                low,
                high,
                step: None,
            } => float(x.exp(), low, high),
            Dist::LogUniform {
                low,
                high,
                step: Some(s),
            } => snap(x.exp(), low, high, s),
            Dist::Int { low, high, step } => {
                let n = int_len(low, high, step);
                let k = ((x - low as f64) / step.max(1) as f64).round();
                Value::from(int_value(low, step, k.clamp(0.0, (n - 1) as f64) as u64))
            }
            Dist::Choice(ref values) => {
                let last = values.len().saturating_sub(1) as f64;
                pick(values, x.round().clamp(0.0, last) as u64)
            }
        }
    }
}

impl Space {
    /// How many distinct configurations there are: the product of the cardinalities
    /// (saturating at `u64::MAX`), `None` when any parameter is continuous.
    pub fn size(&self) -> Option<u64> {
        self.params.iter().try_fold(1u64, |acc, p| {
            p.dist.cardinality().map(|c| acc.saturating_mul(c))
        })
    }

    /// One value per parameter from a point of the unit cube (one coordinate each).
    pub fn from_unit(&self, us: &[f64]) -> Vec<Value> {
        assert_eq!(
            us.len(),
            self.params.len(),
            "one unit coordinate per parameter"
        );
        self.params
            .iter()
            .zip(us)
            .map(|(p, &u)| p.dist.from_unit(u))
            .collect()
    }

    /// Whether `values` (in the order of `params`) is a point of this space.
    pub fn contains(&self, values: &[Value]) -> bool {
        values.len() == self.params.len()
            && self
                .params
                .iter()
                .zip(values)
                .all(|(p, v)| p.dist.contains(v))
    }
}

fn check_bounds(low: f64, high: f64) -> Result<(), String> {
    let (l, h) = (fmt_num(low), fmt_num(high));
    if !low.is_finite() || !high.is_finite() {
        Err(format!("bounds must be finite numbers, got [{l}, {h}]"))
    } else if low == high {
        Err(format!(
            "empty range [{l}, {h}]: the first bound must be below the second (for a fixed value, set it in the config instead)"
        ))
    } else if low > high {
        Err(format!(
            "reversed range [{l}, {h}]: the first bound must be below the second; write [{h}, {l}]"
        ))
    } else {
        Ok(())
    }
}

/// log_uniform's bounds are values; a common slip is writing exponents ([-4, -1]).
fn check_positive(low: f64, high: f64) -> Result<(), String> {
    if (low > 0.0 && high > 0.0) || low.is_nan() || high.is_nan() {
        return Ok(()); // NaN is check_bounds' message
    }
    let exponent = |x: f64| x.fract() == 0.0 && x.abs() <= 30.0;
    let hint = if exponent(low) && exponent(high) && low < high {
        format!(
            "for 1e{low} to 1e{high} write [{}, {}]",
            yaml_num(10f64.powf(low)),
            yaml_num(10f64.powf(high))
        )
    } else if high > 0.0 {
        format!(
            "start the range above 0, e.g. [{}, {}]",
            yaml_num(high * 1e-3),
            yaml_num(high)
        )
    } else {
        "use uniform for a range that is not positive".to_string()
    };
    Err(format!(
        "log_uniform takes values, not exponents, and both must be > 0: {hint}"
    ))
}

fn check_step(step: f64, low: f64, high: f64) -> Result<(), String> {
    if !(step.is_finite() && step > 0.0) {
        Err(format!("step must be a number > 0, got {}", fmt_num(step)))
    } else if step > high - low {
        Err(format!(
            "step {} is wider than the range [{}, {}]: use a smaller step, or a choice of the values wanted",
            fmt_num(step),
            fmt_num(low),
            fmt_num(high)
        ))
    } else {
        Ok(())
    }
}

fn check_int(low: i64, high: i64, step: i64) -> Result<(), String> {
    if low == high {
        Err(format!(
            "empty range [{low}, {high}]: the first bound must be below the second (for a fixed value, set it in the config instead)"
        ))
    } else if low > high {
        Err(format!("reversed range [{low}, {high}]: the first bound must be below the second; write [{high}, {low}]"))
    } else if step < 1 {
        Err(format!("step must be an integer >= 1, got {step}"))
    } else if i128::from(step) > i128::from(high) - i128::from(low) {
        Err(format!(
            "step {step} is wider than the range [{low}, {high}]: use a smaller step, or a choice of the values wanted"
        ))
    } else {
        Ok(())
    }
}

fn check_choice(values: &[Value]) -> Result<(), String> {
    if values.is_empty() {
        return Err("choice needs at least one value, e.g. [fcn, deeplabv3]".into());
    }
    for (i, v) in values.iter().enumerate() {
        if values[..i].iter().any(|w| same_value(w, v)) {
            return Err(format!(
                "{} is listed twice: each value of a choice must be different",
                fmt_value(v)
            ));
        }
    }
    Ok(())
}

/// JSON equality, except that numbers compare by value: a stored `1.0` is the choice `1`.
fn same_value(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

/// The cell of [0, 1) that `u` falls in, out of `n` equal cells.
fn index(u: f64, n: u64) -> u64 {
    ((u * n as f64) as u64).min(n.saturating_sub(1))
}

/// Grid values `low + k*step` that are <= high (within float noise).
fn grid_len(low: f64, high: f64, step: f64) -> u64 {
    ((high - low) / step + 1e-9).floor().max(0.0) as u64 + 1
}

fn grid_value(low: f64, step: f64, k: u64) -> f64 {
    round12(low + k as f64 * step)
}

/// The grid value nearest `x`, as a JSON float.
fn snap(x: f64, low: f64, high: f64, step: f64) -> Value {
    let last = (grid_len(low, high, step) - 1) as f64;
    let k = ((x - low) / step).round().clamp(0.0, last);
    float(grid_value(low, step, k as u64), low, high)
}

fn on_grid(x: f64, low: f64, step: f64) -> bool {
    let r = (x - low) / step;
    (r - r.round()).abs() <= 1e-6
}

fn int_len(low: i64, high: i64, step: i64) -> u64 {
    let n = (i128::from(high) - i128::from(low)).max(0) / i128::from(step.max(1)) + 1;
    u64::try_from(n).unwrap_or(u64::MAX)
}

fn int_value(low: i64, step: i64, k: u64) -> i64 {
    let v = i128::from(low) + i128::from(k) * i128::from(step.max(1));
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn pick(values: &[Value], i: u64) -> Value {
    values.get(i as usize).cloned().unwrap_or(Value::Null)
}

/// `x` when inside [low, high] up to float noise (clamped there), else `None`.
fn in_range(x: f64, low: f64, high: f64) -> Option<f64> {
    let tol = 1e-9 * (high - low).abs().max(f64::MIN_POSITIVE);
    (x >= low - tol && x <= high + tol).then(|| clamp(x, low, high))
}

/// `f64::clamp` without its panic on bounds that a hand-edited (unchecked) log may hold.
fn clamp(x: f64, low: f64, high: f64) -> f64 {
    x.max(low).min(high)
}

/// `x` rounded to 12 significant digits, clamped into [low, high], as a JSON float.
fn float(x: f64, low: f64, high: f64) -> Value {
    Value::from(clamp(round12(clamp(x, low, high)), low, high))
}

/// 12 significant digits, by Rust's exact decimal formatting (the same on every platform).
pub(crate) fn round12(x: f64) -> f64 {
    if !x.is_finite() || x == 0.0 {
        return x;
    }
    format!("{x:.11e}").parse().unwrap_or(x)
}

/// A number for messages: plain decimals in the usual range, else scientific.
fn fmt_num(x: f64) -> String {
    let x = round12(x);
    if x == 0.0 || (1e-4..1e15).contains(&x.abs()) || !x.is_finite() {
        format!("{x}")
    } else {
        format!("{x:e}")
    }
}

/// A number as it should be written in the sweep file (a YAML float either way).
fn yaml_num(x: f64) -> String {
    let x = round12(x);
    if (1e-3..1e6).contains(&x.abs()) {
        format!("{x:?}") // Debug keeps the ".0" of 1.0
    } else {
        let s = format!("{x:e}");
        match s.split_once('e') {
            Some((m, e)) if !m.contains('.') => format!("{m}.0e{e}"),
            _ => s,
        }
    }
}

/// A choice value for messages: strings bare, anything else as JSON.
fn fmt_value(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn err(r: Result<Dist, String>) -> String {
        r.expect_err("should be rejected")
    }

    #[test]
    fn constructors_reject_with_a_suggestion() {
        assert_eq!(
            err(Dist::uniform(0.5, 0.5, None)),
            "empty range [0.5, 0.5]: the first bound must be below the second (for a fixed value, set it in the config instead)"
        );
        assert!(err(Dist::uniform(1.0, 0.0, None)).ends_with("write [0, 1]"));
        assert!(err(Dist::uniform(0.0, f64::INFINITY, None)).starts_with("bounds must be finite"));
        assert!(err(Dist::uniform(0.0, 1.0, Some(0.0))).starts_with("step must be a number > 0"));
        assert!(err(Dist::uniform(0.0, 1.0, Some(2.0)))
            .starts_with("step 2 is wider than the range [0, 1]"));
        assert_eq!(
            err(Dist::log_uniform(-4.0, -1.0, None)),
            "log_uniform takes values, not exponents, and both must be > 0: for 1e-4 to 1e-1 write [1.0e-4, 0.1]"
        );
        assert!(err(Dist::log_uniform(0.0, 0.1, None))
            .ends_with("start the range above 0, e.g. [1.0e-4, 0.1]"));
        assert!(err(Dist::int(3, 3, None)).starts_with("empty range [3, 3]"));
        assert!(err(Dist::int(5, 1, None)).ends_with("write [1, 5]"));
        assert!(err(Dist::int(1, 5, Some(0))).starts_with("step must be an integer >= 1"));
        assert!(err(Dist::int(1, 3, Some(5))).starts_with("step 5 is wider"));
        assert!(err(Dist::choice(vec![])).starts_with("choice needs at least one value"));
        assert_eq!(
            err(Dist::choice(vec![json!("fcn"), json!(1), json!("fcn")])),
            "fcn is listed twice: each value of a choice must be different"
        );
        assert!(err(Dist::choice(vec![json!(1), json!(1.0)])).starts_with("1.0 is listed twice"));
        assert!(Dist::int(i64::MIN, i64::MAX, None).is_ok());
    }

    #[test]
    fn from_unit_maps_each_kind() {
        let u = Dist::uniform(2.0, 4.0, None).unwrap();
        assert_eq!(u.from_unit(0.0), json!(2.0));
        assert_eq!(u.from_unit(0.25), json!(2.5));
        assert_eq!(u.from_unit(1.0), json!(4.0)); // clamped to the largest u below 1
        let l = Dist::log_uniform(1e-4, 1e-1, None).unwrap();
        assert_eq!(l.from_unit(0.0), json!(0.0001));
        assert_eq!(l.from_unit(1.0 / 3.0), json!(0.001));
        let i = Dist::int(1, 5, Some(2)).unwrap();
        let got: Vec<Value> = [0.0, 0.34, 0.67, 0.99]
            .iter()
            .map(|&u| i.from_unit(u))
            .collect();
        assert_eq!(got, [json!(1), json!(3), json!(5), json!(5)]);
        assert!(i.from_unit(0.5).is_i64());
        let c = Dist::choice(vec![json!("fcn"), json!("deeplabv3")]).unwrap();
        assert_eq!(
            (c.from_unit(0.49), c.from_unit(0.5)),
            (json!("fcn"), json!("deeplabv3"))
        );
    }

    #[test]
    fn steps_are_equally_likely_and_print_cleanly() {
        let d = Dist::uniform(0.0, 1.0, Some(0.1)).unwrap();
        assert_eq!(d.cardinality(), Some(11));
        let vals: Vec<Value> = (0..11)
            .map(|k| d.from_unit((k as f64 + 0.5) / 11.0))
            .collect();
        let want: Vec<Value> = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
            .map(|x| json!(x))
            .into();
        assert_eq!(vals, want);
        assert_eq!(vals[3].to_string(), "0.3");
        // A high bound off the grid: 0.05 + k*0.1 up to 0.95, never 1.0.
        let off = Dist::uniform(0.05, 1.0, Some(0.1)).unwrap();
        assert_eq!(off.from_unit(0.999), json!(0.95));
        assert_eq!(off.internal().unwrap().high, 0.95);
    }

    #[test]
    fn stepped_log_uniform_keeps_the_log_law_on_the_grid() {
        let d = Dist::log_uniform(0.001, 1.0, Some(0.001)).unwrap();
        assert_eq!(d.cardinality(), Some(1000));
        let small = (0..1000)
            .filter(|k| d.from_unit(*k as f64 / 1000.0).as_f64().unwrap() < 0.01)
            .count();
        assert!((300..360).contains(&small), "{small}"); // a third of the log range
        assert!((0..1000).all(|k| d.contains(&d.from_unit(k as f64 / 1000.0))));
    }

    #[test]
    fn contains_checks_type_range_and_grid() {
        let d = Dist::uniform(0.0, 1.0, Some(0.25)).unwrap();
        assert!(d.contains(&json!(0.75)) && d.contains(&json!(1)));
        assert!(!d.contains(&json!(0.3)) && !d.contains(&json!(1.25)) && !d.contains(&json!("a")));
        let i = Dist::int(1, 5, Some(2)).unwrap();
        assert!(i.contains(&json!(3)) && !i.contains(&json!(2)) && !i.contains(&json!(3.5)));
        let c = Dist::choice(vec![json!(1), json!("a")]).unwrap();
        assert!(c.contains(&json!(1.0)) && c.contains(&json!("a")) && !c.contains(&json!("b")));
    }

    #[test]
    fn describe_and_cardinality() {
        assert_eq!(
            Dist::log_uniform(1e-4, 0.1, None).unwrap().describe(),
            "log_uniform [0.0001, 0.1]"
        );
        assert_eq!(
            Dist::int(1, 5, Some(2)).unwrap().describe(),
            "int [1, 5] step 2"
        );
        assert_eq!(Dist::int(1, 5, None).unwrap().describe(), "int [1, 5]");
        assert_eq!(
            Dist::uniform(0.0, 1.0, Some(0.1)).unwrap().describe(),
            "uniform [0, 1] step 0.1"
        );
        assert_eq!(
            Dist::log_uniform(1e-8, 1e-6, None).unwrap().describe(),
            "log_uniform [1e-8, 1e-6]"
        );
        let c = Dist::choice(vec![json!("fcn"), json!("deeplabv3"), json!(2)]).unwrap();
        assert_eq!(c.describe(), "choice [fcn, deeplabv3, 2]");
        assert_eq!(c.cardinality(), Some(3));
        assert_eq!(Dist::int(1, 5, Some(2)).unwrap().cardinality(), Some(3));
        assert_eq!(Dist::uniform(0.0, 1.0, None).unwrap().cardinality(), None);
        assert_eq!(
            Dist::int(i64::MIN, i64::MAX, None).unwrap().cardinality(),
            Some(u64::MAX)
        );
    }

    #[test]
    fn internal_coordinates_round_trip() {
        let l = Dist::log_uniform(1e-4, 0.1, None).unwrap();
        assert!((l.to_internal(&json!(0.01)).unwrap() - 0.01f64.ln()).abs() < 1e-15);
        assert_eq!(l.from_internal(0.01f64.ln()), json!(0.01));
        assert_eq!(l.from_internal(100.0), json!(0.1)); // clamped
        assert_eq!(l.to_internal(&json!(1.0)), None); // outside: an older space's trial
        let i = Dist::int(1, 9, Some(2)).unwrap();
        assert_eq!(
            (i.from_internal(4.2), i.from_internal(-3.0)),
            (json!(5), json!(1))
        );
        assert_eq!(i.to_internal(&json!(7)), Some(7.0));
        let c = Dist::choice(vec![json!("a"), json!("b")]).unwrap();
        assert_eq!(
            (c.to_internal(&json!("b")), c.from_internal(0.4)),
            (Some(1.0), json!("a"))
        );
        assert_eq!(c.to_internal(&json!("z")), None);
        let s = Dist::uniform(0.0, 1.0, Some(0.1)).unwrap();
        assert_eq!(s.from_internal(0.33), json!(0.3));
        assert_eq!(
            s.internal(),
            Some(Internal {
                low: 0.0,
                high: 1.0,
                step: Some(0.1)
            })
        );
        assert_eq!(l.from_internal(f64::NAN), json!(0.0001));
    }

    #[test]
    fn space_size_and_from_unit() {
        let p = |key: &str, dist| Param {
            key: key.into(),
            dist,
        };
        let mut space = Space {
            params: vec![
                p(
                    "model.name",
                    Dist::choice(vec![json!("fcn"), json!("unet")]).unwrap(),
                ),
                p("train.batch", Dist::int(2, 8, Some(2)).unwrap()),
            ],
        };
        assert_eq!(space.size(), Some(8));
        let v = space.from_unit(&[0.9, 0.0]);
        assert_eq!(v, [json!("unet"), json!(2)]);
        assert!(space.contains(&v) && !space.contains(&v[..1]));
        space.params.push(p(
            "optimizer.lr",
            Dist::log_uniform(1e-4, 0.1, None).unwrap(),
        ));
        assert_eq!(space.size(), None);
    }

    #[test]
    fn serde_shape_is_stable() {
        let d = Dist::int(1, 5, None).unwrap();
        assert_eq!(
            serde_json::to_value(&d).unwrap(),
            json!({"int": {"low": 1, "high": 5, "step": 1}})
        );
        let c: Dist = serde_json::from_value(json!({"choice": ["a", 2]})).unwrap();
        assert_eq!(c, Dist::Choice(vec![json!("a"), json!(2)]));
    }
}
