//! Reading a description's keys one by one, so that a missing or mistyped key is named
//! (serde alone says "invalid type" without saying where).

use super::DataSetError;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use std::cell::RefCell;
use std::path::Path;

/// The keys of one JSON object (a YAML description is converted first); `prefix` is the
/// dotted path of the object inside its file (`sweep.`, `train.`).
pub(super) struct Fields<'a> {
    file: &'a Path,
    prefix: String,
    object: &'a Map<String, Value>,
    read: RefCell<Vec<&'static str>>,
}

impl<'a> Fields<'a> {
    pub fn new(file: &'a Path, prefix: &str, value: &'a Value) -> Result<Self, DataSetError> {
        let object = value.as_object().ok_or_else(|| {
            let what = if prefix.is_empty() {
                "the file".to_string()
            } else {
                format!("`{}`", prefix.trim_end_matches('.'))
            };
            DataSetError::new(file, format!("{what} must be a mapping of keys to values"))
        })?;
        Ok(Fields {
            file,
            prefix: prefix.to_string(),
            object,
            read: RefCell::new(Vec::new()),
        })
    }

    pub fn error(&self, key: &str, message: impl std::fmt::Display) -> DataSetError {
        DataSetError::new(self.file, format!("`{}{key}`: {message}", self.prefix))
    }

    /// The key's value, if present (`null` counts as absent).
    pub fn optional<T: DeserializeOwned>(
        &self,
        key: &'static str,
    ) -> Result<Option<T>, DataSetError> {
        self.read.borrow_mut().push(key);
        match self.object.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => serde_json::from_value(v.clone())
                .map(Some)
                .map_err(|e| self.error(key, e)),
        }
    }

    pub fn required<T: DeserializeOwned>(&self, key: &'static str) -> Result<T, DataSetError> {
        self.optional(key)?.ok_or_else(|| {
            DataSetError::new(
                self.file,
                format!("the key `{}{key}` is missing", self.prefix),
            )
        })
    }

    /// The raw value of a key (for nested objects read with their own `Fields`).
    pub fn raw(&self, key: &'static str) -> Option<&'a Value> {
        self.read.borrow_mut().push(key);
        self.object.get(key).filter(|v| !v.is_null())
    }

    /// Fails on a key nobody read (a typo in a file `sweep` owns), suggesting the closest.
    pub fn deny_unknown(&self) -> Result<(), DataSetError> {
        let read = self.read.borrow();
        match self.object.keys().find(|k| !read.contains(&k.as_str())) {
            None => Ok(()),
            Some(k) => Err(self.error(
                k,
                format!(
                    "unknown key, expected one of {}{}",
                    read.join(", "),
                    crate::suggest::did_you_mean(k, read.iter().copied())
                ),
            )),
        }
    }
}
