//! What a command job's program prints: one JSON object per line on stdout, the protocol
//! `python/sweep_job.py` speaks and `docs/job-protocol.md` describes.
//!
//! ```text
//! {"started": {"iters": 300, "resumed_from": 120}}     the length, and where it resumed
//! {"iter": 10, "loss": 0.41, "lr": 0.01}                 a point of the training curve
//! {"eval": {"mDice": 61.2}, "iter": 100}                 validation during training
//! {"checkpoint": "ckpt/last.pt", "iter": 100}            a checkpoint was written
//!                                    (without "iter": at the last iteration reported)
//! {"image": "img_7", "class": 1, "intersect": 310, "pred": 402, "label": 388}
//! {"metrics": {"mDice": 70.3, "Dice.1": 58.1}}           the final result (val split)
//! {"log": "loaded 88 training images"}
//! ```
//!
//! Any other line is the program's own output (kept in its log). A line that starts with
//! `{` but is no valid event is a protocol error: the job fails with the line's number and
//! what is wrong, and is not retried (it would print the same again).

use crate::protocol::{Event, ImageMetric, MetricValue};
use serde_json::{Map, Value};

/// One line, read.
#[derive(Debug, PartialEq)]
pub enum Line {
    /// An event the scheduler already knows (also what `sweep worker` prints).
    Event(Event),
    Image(ImageMetric),
    Metrics(Vec<MetricValue>),
    /// Not an event: the program's own output.
    Output,
}

/// The split a program's metrics are recorded under.
const SPLIT: &str = "val";

/// Reads one stdout line; `Err` says what is wrong with a line meant as an event. An `eval`
/// or `checkpoint` without `iter` is at `last_iter`, the last iteration the program reported.
pub fn read(line: &str, last_iter: usize) -> Result<Line, String> {
    let trimmed = line.trim();
    if !trimmed.starts_with('{') {
        return Ok(Line::Output);
    }
    let value: Value =
        serde_json::from_str(trimmed).map_err(|e| format!("not valid JSON ({e})"))?;
    let Value::Object(obj) = value else {
        return Err("not a JSON object".into());
    };
    if obj.contains_key("event") {
        return serde_json::from_value(Value::Object(obj))
            .map(Line::Event)
            .map_err(|e| format!("not a sweep worker event ({e})"));
    }
    read_object(&obj, last_iter)
}

fn read_object(obj: &Map<String, Value>, last_iter: usize) -> Result<Line, String> {
    let at = || Ok::<_, String>(opt_uint(obj, "iter")?.unwrap_or(last_iter));
    if let Some(m) = obj.get("metrics") {
        return Ok(Line::Metrics(metrics(m, "metrics")?));
    }
    if let Some(m) = obj.get("eval") {
        return Ok(Line::Event(Event::Eval {
            iter: at()?,
            metrics: metrics(m, "eval")?,
        }));
    }
    if obj.contains_key("image") {
        return image(obj).map(Line::Image);
    }
    if let Some(path) = obj.get("checkpoint") {
        let Some(path) = path.as_str() else {
            return Err("\"checkpoint\" is a path (text)".into());
        };
        return Ok(Line::Event(Event::Checkpoint {
            iter: at()?,
            path: path.into(),
        }));
    }
    if let Some(s) = obj.get("started") {
        let Value::Object(s) = s else {
            return Err("\"started\" is {\"iters\": N, \"resumed_from\": K}".into());
        };
        return Ok(Line::Event(Event::Started {
            iters: uint(s, "iters")?,
            resumed_from: opt_uint(s, "resumed_from")?.unwrap_or(0),
        }));
    }
    if obj.contains_key("iter") {
        return Ok(Line::Event(Event::Iter {
            iter: uint(obj, "iter")?,
            loss: number(obj, "loss")?,
            lr: opt_number(obj, "lr")?.unwrap_or(f64::NAN),
            secs: opt_number(obj, "secs")?.unwrap_or(f64::NAN),
            data_wait_secs: 0.0,
        }));
    }
    if let Some(m) = obj.get("log") {
        return Ok(Line::Event(Event::Log {
            message: m.as_str().map_or_else(|| m.to_string(), str::to_string),
        }));
    }
    Err(
        "a JSON object with none of the keys metrics, eval, image, checkpoint, started, iter, log"
            .into(),
    )
}

/// `{"mDice": 70.3, "Dice.1": 58.1}`: a name ending in `.<digits>` is that class's.
fn metrics(v: &Value, key: &str) -> Result<Vec<MetricValue>, String> {
    let Value::Object(m) = v else {
        return Err(format!("\"{key}\" is a mapping of name to number"));
    };
    let mut out = Vec::new();
    for (name, value) in m {
        let Some(value) = value.as_f64() else {
            return Err(format!("\"{key}\": {name} is {value}, not a number"));
        };
        let (name, class) = match name.rsplit_once('.') {
            Some((n, c))
                if !n.is_empty() && !c.is_empty() && c.bytes().all(|b| b.is_ascii_digit()) =>
            {
                (n.to_string(), c.parse().ok())
            }
            _ => (name.clone(), None),
        };
        out.push(MetricValue {
            split: SPLIT.into(),
            name,
            class,
            value,
        });
    }
    Ok(out)
}

/// A per-image row: the counts of one class on one image (what the bootstrap resamples),
/// its Dice computed from them when not given.
fn image(obj: &Map<String, Value>) -> Result<ImageMetric, String> {
    let Some(name) = obj.get("image").and_then(Value::as_str) else {
        return Err("\"image\" is the image's name (text)".into());
    };
    let (intersect, pred, label) = (
        uint(obj, "intersect")? as u64,
        uint(obj, "pred")? as u64,
        uint(obj, "label")? as u64,
    );
    if intersect > pred.min(label) {
        return Err(format!(
            "image {name}: intersect {intersect} is more than pred {pred} or label {label}"
        ));
    }
    let dice = match opt_number(obj, "dice")? {
        Some(d) => Some(d),
        None if pred + label > 0 => Some(200.0 * intersect as f64 / (pred + label) as f64),
        None => None,
    };
    Ok(ImageMetric {
        split: SPLIT.into(),
        image: name.to_string(),
        class: opt_uint(obj, "class")?.unwrap_or(1),
        intersect,
        pred,
        label,
        dice,
        hd95: opt_number(obj, "hd95")?,
        assd: opt_number(obj, "assd")?,
        presence: None,
        unit: "px".into(),
    })
}

fn opt_uint(obj: &Map<String, Value>, key: &str) -> Result<Option<usize>, String> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .map(|n| Some(n as usize))
            .ok_or_else(|| format!("\"{key}\" is {v}, not a whole number >= 0")),
    }
}

fn uint(obj: &Map<String, Value>, key: &str) -> Result<usize, String> {
    opt_uint(obj, key)?.ok_or_else(|| format!("missing \"{key}\""))
}

fn opt_number(obj: &Map<String, Value>, key: &str) -> Result<Option<f64>, String> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_f64()
            .map(Some)
            .ok_or_else(|| format!("\"{key}\" is {v}, not a number")),
    }
}

fn number(obj: &Map<String, Value>, key: &str) -> Result<f64, String> {
    opt_number(obj, key)?.ok_or_else(|| format!("missing \"{key}\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_each_kind_of_line() {
        assert_eq!(read("epoch 3 done", 0).unwrap(), Line::Output);
        match read(r#"{"iter": 10, "loss": 0.5}"#, 0).unwrap() {
            Line::Event(Event::Iter { iter, loss, .. }) => assert_eq!((iter, loss), (10, 0.5)),
            other => panic!("{other:?}"),
        }
        match read(r#"{"metrics": {"mDice": 70.5, "Dice.1": 40}}"#, 0).unwrap() {
            Line::Metrics(m) => {
                assert_eq!(m.len(), 2);
                assert!(m.iter().any(|m| m.name == "Dice" && m.class == Some(1)));
            }
            other => panic!("{other:?}"),
        }
        match read(
            r#"{"image": "a", "class": 1, "intersect": 3, "pred": 4, "label": 4}"#,
            0,
        )
        .unwrap()
        {
            Line::Image(i) => assert_eq!(i.dice, Some(75.0)),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            read(r#"{"started": {"iters": 30, "resumed_from": 10}}"#, 0).unwrap(),
            Line::Event(Event::Started {
                iters: 30,
                resumed_from: 10
            })
        ));
    }

    #[test]
    fn an_eval_without_iter_is_at_the_last_iteration() {
        assert!(matches!(
            read(r#"{"eval": {"mDice": 61.2}}"#, 40).unwrap(),
            Line::Event(Event::Eval { iter: 40, .. })
        ));
        assert!(matches!(
            read(r#"{"checkpoint": "last.pt"}"#, 7).unwrap(),
            Line::Event(Event::Checkpoint { iter: 7, .. })
        ));
    }

    #[test]
    fn malformed_lines_say_what_is_wrong() {
        assert!(read(r#"{"iter": 1, loss}"#, 0)
            .unwrap_err()
            .starts_with("not valid JSON"));
        assert_eq!(
            read(r#"{"iter": "a", "loss": 1}"#, 0).unwrap_err(),
            "\"iter\" is \"a\", not a whole number >= 0"
        );
        assert!(read(r#"{"foo": 1}"#, 0)
            .unwrap_err()
            .contains("none of the keys"));
        assert!(read(r#"{"metrics": {"mDice": "high"}}"#, 0)
            .unwrap_err()
            .contains("not a number"));
        assert!(read(
            r#"{"image": "a", "intersect": 5, "pred": 4, "label": 4}"#,
            0
        )
        .is_err());
    }
}
