//! A command job: the user's own program (a PyTorch or MMSegmentation training script, an
//! nnU-Net fold) run with one point of the sweep's parameters.
//!
//! The parameters reach the program three ways, as W&B Sweeps and Hydra users expect:
//! - arguments: `${args}` in the command becomes `--key=value` for every parameter
//!   (`${args_no_hyphens}`: `key=value`, Hydra's form), `${key}` one parameter's value;
//! - a JSON file, `$SWEEP_PARAMS_FILE`: `{"params": {...}, "seed": 0, "fold": null, ...}`;
//! - environment variables: `SWEEP_PARAM_<KEY>` (dots as `_`, upper case).
//!
//! The job's identity is the hash of the command, the parameters, the extra environment
//! and the content of the files named in `identity_files` (so editing the script reruns it).

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The parameters of one job, as the sweep resolved them (nested as written).
pub type Params = serde_json::Map<String, Value>;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandJob {
    /// The command line template: `${args}`, `${args_no_hyphens}` and `${key}` are replaced
    /// per job ([`CommandJob::argv`]).
    pub command: Vec<String>,
    /// The program's parameters for this job (`seed`, and `fold`/`folds` under `cv:`, among
    /// them when the sweep sets them).
    pub params: Params,
    /// Extra environment variables the sweep file sets (`env:`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// `identity_files`: path (as written) -> content hash when the sweep was planned.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub identity: BTreeMap<String, String>,
    /// Where the program runs: the sweep file's folder. Not part of the identity (the same
    /// sweep checked out elsewhere is the same job).
    pub workdir: PathBuf,
}

impl CommandJob {
    /// The job's identity: the canonical JSON without the working folder.
    pub fn hash(&self) -> String {
        let identity = serde_json::json!({
            "command": self.command,
            "params": self.params,
            "env": self.env,
            "identity": self.identity,
        });
        let digest = Sha256::digest(identity.to_string().as_bytes());
        hex::encode(&digest[..8])
    }

    /// The seed the sweep gave (`seeds:`), else 0.
    pub fn seed(&self) -> u64 {
        self.params.get("seed").and_then(Value::as_u64).unwrap_or(0)
    }

    /// `(fold, folds)` (0-based fold) under `cv:`.
    pub fn fold(&self) -> Option<(u64, u64)> {
        let fold = self.params.get("fold")?.as_u64()?;
        let folds = self.params.get("folds")?.as_u64()?;
        Some((fold, folds))
    }

    /// What the label starts with: the script's file name (`train.py`), else the program's.
    pub fn program_name(&self) -> String {
        let script = self.command.iter().skip(1).find(|a| {
            !a.starts_with('-') && !a.contains("${") && Path::new(a).extension().is_some()
        });
        let word = script.or(self.command.first()).map_or("", String::as_str);
        Path::new(word)
            .file_name()
            .map_or_else(|| word.to_string(), |n| n.to_string_lossy().into_owned())
    }

    /// The command line of this job: placeholders replaced, `${args}` expanded in place.
    pub fn argv(&self) -> Vec<String> {
        let flat = flatten(&self.params);
        let mut argv = Vec::new();
        for word in &self.command {
            match word.as_str() {
                "${args}" => argv.extend(flat.iter().map(|(k, v)| format!("--{k}={v}"))),
                "${args_no_hyphens}" => argv.extend(flat.iter().map(|(k, v)| format!("{k}={v}"))),
                _ => argv.push(substitute(word, &flat)),
            }
        }
        argv
    }

    /// `SWEEP_PARAM_<KEY>` for every parameter, then the sweep file's `env:`.
    pub fn param_env(&self) -> Vec<(String, String)> {
        let mut env: Vec<(String, String)> = flatten(&self.params)
            .into_iter()
            .map(|(k, v)| (format!("SWEEP_PARAM_{}", env_name(&k)), v))
            .collect();
        env.extend(self.env.iter().map(|(k, v)| (k.clone(), v.clone())));
        env
    }
}

/// Placeholders a command may use besides the parameters' own keys.
pub const ARG_PLACEHOLDERS: &[&str] = &["${args}", "${args_no_hyphens}"];

/// The `${key}` placeholders of a command word (not the `${args}` ones).
pub fn placeholders(word: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = word;
    while let Some(start) = rest.find("${") {
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else { break };
        let key = &after[..end];
        if !ARG_PLACEHOLDERS.contains(&format!("${{{key}}}").as_str()) {
            out.push(key.to_string());
        }
        rest = &after[end + 1..];
    }
    out
}

/// `${key}` replaced by the parameter's value (left as written when there is none: the
/// sweep file's check refuses unknown keys before any job runs).
fn substitute(word: &str, flat: &[(String, String)]) -> String {
    let mut out = word.to_string();
    for key in placeholders(word) {
        if let Some((_, v)) = flat.iter().find(|(k, _)| *k == key) {
            out = out.replace(&format!("${{{key}}}"), v);
        }
    }
    out
}

/// Leaf parameters as (dotted key, value as a command line spells it): strings bare,
/// numbers and booleans as JSON, lists and null as JSON.
pub fn flatten(params: &Params) -> Vec<(String, String)> {
    fn walk(prefix: &str, v: &Value, out: &mut Vec<(String, String)>) {
        match v {
            Value::Object(m) if !m.is_empty() => {
                for (k, inner) in m {
                    let key = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    walk(&key, inner, out);
                }
            }
            Value::String(s) => out.push((prefix.to_string(), s.clone())),
            other => out.push((prefix.to_string(), other.to_string())),
        }
    }
    let mut out = Vec::new();
    for (k, v) in params {
        walk(k, v, &mut out);
    }
    out
}

/// `optimizer.lr` -> `OPTIMIZER_LR`.
fn env_name(key: &str) -> String {
    key.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect()
}

/// The content hash of a file named in `identity_files`.
pub fn file_hash(path: &Path) -> std::io::Result<String> {
    let bytes = std::fs::read(path)?;
    Ok(hex::encode(&Sha256::digest(&bytes)[..8]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(command: &[&str], params: Value) -> CommandJob {
        CommandJob {
            command: command.iter().map(|s| s.to_string()).collect(),
            params: params.as_object().unwrap().clone(),
            env: BTreeMap::new(),
            identity: BTreeMap::new(),
            workdir: PathBuf::from("/a"),
        }
    }

    #[test]
    fn args_expand_in_place_and_keys_substitute() {
        let j = job(
            &["python3", "train.py", "${args}", "--out=${model.name}-x"],
            serde_json::json!({"lr": 0.01, "model": {"name": "unet", "depth": 4}, "seed": 1}),
        );
        assert_eq!(
            j.argv(),
            [
                "python3",
                "train.py",
                "--lr=0.01",
                "--model.depth=4",
                "--model.name=unet",
                "--seed=1",
                "--out=unet-x"
            ]
        );
        assert_eq!(j.seed(), 1);
        assert_eq!(j.program_name(), "train.py");
        assert!(j
            .param_env()
            .contains(&("SWEEP_PARAM_MODEL_NAME".into(), "unet".into())));
    }

    #[test]
    fn identity_ignores_the_folder_but_not_the_params_or_files() {
        let a = job(&["./run"], serde_json::json!({"lr": 0.1}));
        let mut b = a.clone();
        b.workdir = PathBuf::from("/elsewhere");
        assert_eq!(a.hash(), b.hash());
        b.params.insert("lr".into(), serde_json::json!(0.2));
        assert_ne!(a.hash(), b.hash());
        let mut c = a.clone();
        c.identity.insert("train.py".into(), "00ff".into());
        assert_ne!(a.hash(), c.hash());
        assert_eq!(a.program_name(), "run");
    }

    #[test]
    fn placeholders_skip_the_arg_lists() {
        assert_eq!(placeholders("${args}"), Vec::<String>::new());
        assert_eq!(placeholders("--a=${x}/${y.z}"), ["x", "y.z"]);
    }
}
