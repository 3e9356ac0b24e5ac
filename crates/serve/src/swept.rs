//! Which config keys a sweep varies, for the page's "metric against a swept key": the
//! numeric keys whose value differs among its configurations, the most varied first, so
//! that the selector starts on one the grid sweeps (not on `checkpoint_every`, which differs
//! only between a pretraining stage and the rows it feeds).

use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;

/// A swept key and how many distinct values it takes.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SweptKey {
    /// Dotted path into the config (`optimizer.lr`).
    pub key: String,
    pub values: usize,
}

/// The keys of interest among `jobs` (`(stage, config)`): only the sweep's own rows (no
/// stage) when it has any, else the first stage's, since a stage trains on another data
/// set and its metric is not comparable. Returns that stage and the keys.
pub fn swept_keys(jobs: &[(Option<String>, Value)]) -> (Option<String>, Vec<SweptKey>) {
    let stage = match jobs.iter().any(|(s, _)| s.is_none()) {
        true => None,
        false => jobs.iter().find_map(|(s, _)| s.clone()),
    };
    let configs: Vec<&Value> = jobs
        .iter()
        .filter(|(s, _)| *s == stage)
        .map(|(_, c)| c)
        .collect();
    (stage, ranked(&distinct_configs(&configs)))
}

/// The configurations without seed and fold number (the repeats of one row, as the
/// leaderboard groups them), once each, as their numeric values.
fn distinct_configs(configs: &[&Value]) -> Vec<BTreeMap<String, f64>> {
    let mut seen: Vec<Value> = Vec::new();
    // By their text: thousands of jobs are deduplicated in one pass.
    let mut texts = std::collections::BTreeSet::new();
    for c in configs {
        let mut c = (*c).clone();
        if let Some(obj) = c.as_object_mut() {
            obj.remove("seed");
        }
        if let Some(fold) = c
            .pointer_mut("/data/split/fold")
            .and_then(Value::as_object_mut)
        {
            fold.remove("fold");
        }
        if texts.insert(c.to_string()) {
            seen.push(c);
        }
    }
    seen.iter()
        .map(|c| {
            let mut keys = BTreeMap::new();
            numeric_leaves(c, "", &mut keys);
            keys
        })
        .collect()
}

/// Every numeric value of `v` by dotted key, as the page's `numericKeys` reads them.
fn numeric_leaves(v: &Value, prefix: &str, out: &mut BTreeMap<String, f64>) {
    let Some(obj) = v.as_object() else { return };
    for (k, v) in obj {
        let key = format!("{prefix}{k}");
        match v {
            Value::Number(n) => {
                out.insert(key, n.as_f64().unwrap_or(f64::NAN));
            }
            Value::Object(_) => numeric_leaves(v, &format!("{key}."), out),
            _ => {}
        }
    }
}

/// Keys with two or more values, by the entropy of their values over the configurations
/// (most varied first: three crops in even shares before one odd iteration count), then by
/// name.
fn ranked(configs: &[BTreeMap<String, f64>]) -> Vec<SweptKey> {
    let mut by_key: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    for c in configs {
        for (k, v) in c {
            by_key.entry(k).or_default().push(*v);
        }
    }
    let mut keys: Vec<(f64, SweptKey)> = by_key
        .into_iter()
        .filter_map(|(k, vs)| {
            let counts = counts(&vs);
            (counts.len() > 1).then(|| {
                let key = SweptKey {
                    key: k.to_string(),
                    values: counts.len(),
                };
                (entropy(&counts), key)
            })
        })
        .collect();
    keys.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.key.cmp(&b.1.key)));
    keys.into_iter().map(|(_, k)| k).collect()
}

/// How often each distinct value occurs.
fn counts(values: &[f64]) -> Vec<usize> {
    let mut seen: Vec<(u64, usize)> = Vec::new();
    for v in values {
        match seen.iter_mut().find(|(b, _)| *b == v.to_bits()) {
            Some((_, n)) => *n += 1,
            None => seen.push((v.to_bits(), 1)),
        }
    }
    seen.into_iter().map(|(_, n)| n).collect()
}

/// Shannon entropy (nats) of a distribution given by counts.
fn entropy(counts: &[usize]) -> f64 {
    let total: usize = counts.iter().sum();
    counts
        .iter()
        .map(|&n| n as f64 / total as f64)
        .map(|p| -p * p.ln())
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The study's nine rows (three seeds each; head and loss, not numeric, told apart by
    /// `loss`) beside their CHASE_DB1 stage, which alone
    /// checkpoints every 100 iterations and trains 1000.
    fn study() -> Vec<(Option<String>, Value)> {
        let rows = [
            (128, 200),
            (128, 200),
            (160, 200),
            (144, 200),
            (128, 150),
            (128, 300),
            (160, 200),
            (160, 200),
            (160, 200),
        ];
        let mut jobs = vec![(
            Some("pretrain-chase".to_string()),
            json!({"crop": 128, "iters": 1000, "checkpoint_every": 100, "seed": 0}),
        )];
        for (i, (crop, iters)) in rows.into_iter().enumerate() {
            for seed in 0..3 {
                let c = json!({"crop": crop, "iters": iters, "checkpoint_every": 50,
                    "seed": seed, "loss": format!("loss {i}"), "optimizer": {"lr": 0.003}});
                jobs.push((None, c));
            }
        }
        jobs
    }

    #[test]
    fn the_most_varied_grid_key_comes_first_and_the_stage_is_left_out() {
        let (stage, keys) = swept_keys(&study());
        assert_eq!(stage, None);
        let names: Vec<&str> = keys.iter().map(|k| k.key.as_str()).collect();
        assert_eq!(names, ["crop", "iters"]);
        assert_eq!((keys[0].values, keys[1].values), (3, 3));
        assert!(!names.contains(&"checkpoint_every") && !names.contains(&"seed"));
    }

    #[test]
    fn seeds_and_folds_are_not_swept_keys() {
        let jobs: Vec<(Option<String>, Value)> = (0..5)
            .map(|f| {
                let c = json!({"seed": f, "data": {"split": {"fold": {"fold": f, "k": 5}}}});
                (None, c)
            })
            .collect();
        assert!(swept_keys(&jobs).1.is_empty());
    }

    #[test]
    fn a_sweep_of_stages_only_uses_its_first_stage() {
        let jobs = vec![
            (Some("a".to_string()), json!({"optimizer": {"lr": 0.1}})),
            (Some("a".to_string()), json!({"optimizer": {"lr": 0.01}})),
            (Some("b".to_string()), json!({"crop": 64})),
            (Some("b".to_string()), json!({"crop": 96})),
        ];
        let (stage, keys) = swept_keys(&jobs);
        assert_eq!(stage.as_deref(), Some("a"));
        assert_eq!(keys[0].key, "optimizer.lr");
        assert_eq!(keys.len(), 1);
    }
}
