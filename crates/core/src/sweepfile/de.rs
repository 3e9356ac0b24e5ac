//! serde `Deserializer` over a [`Node`] tree that records the path of the node where an
//! error happened, so that the error can be mapped back to its source line.
//!
//! Scalars are handed to serde_yaml's own `Value` deserializer (same number/bool/enum
//! rules as reading the file directly); mappings, lists and enums are walked here.

use super::tree::{Kind, Node, Seg};
use crate::job::{Head, LossKind};
use crate::suggest::did_you_mean;
use serde::de::{
    self, DeserializeSeed, EnumAccess, MapAccess, SeqAccess, Unexpected, VariantAccess, Visitor,
};
use serde::Deserializer;
use std::fmt;

#[derive(Debug)]
pub(crate) struct DeError {
    pub message: String,
    /// Path (from the root handed to [`from_node`]) of the node the error is about.
    pub path: Option<Vec<Seg>>,
    /// The error is about a mapping key (unknown field / variant), not its value.
    pub at_key: bool,
}

impl DeError {
    fn or_path(mut self, path: &[Seg], at_key: bool) -> Self {
        if self.path.is_none() {
            self.path = Some(path.to_vec());
            self.at_key = at_key;
        }
        self
    }
}

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for DeError {}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        DeError {
            message: msg.to_string(),
            path: None,
            at_key: false,
        }
    }
}

pub(crate) fn from_node<'de, T: de::Deserialize<'de>>(node: &'de Node) -> Result<T, DeError> {
    let path = Vec::new();
    T::deserialize(NodeDe { node, path: &path }).map_err(|e| e.or_path(&path, false))
}

struct NodeDe<'a, 'p> {
    node: &'a Node,
    path: &'p [Seg],
}

impl NodeDe<'_, '_> {
    fn yaml_err(&self, e: serde_yaml::Error) -> DeError {
        // Values handed to serde_yaml carry no marks, so its message is the bare message.
        DeError {
            message: e.to_string(),
            path: Some(self.path.to_vec()),
            at_key: false,
        }
    }
    fn unexpected(&self) -> Unexpected<'static> {
        match self.node.kind {
            Kind::Map(_) => Unexpected::Map,
            Kind::Seq(_) => Unexpected::Seq,
            Kind::Leaf(_) => Unexpected::Other("value"),
        }
    }
}

macro_rules! leaf_or_any {
    ($($method:ident)*) => {
        $(
            fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
                match &self.node.kind {
                    Kind::Leaf(v) => v.$method(visitor).map_err(|e| self.yaml_err(e)),
                    _ => self.deserialize_any(visitor),
                }
            }
        )*
    };
}

impl<'de> Deserializer<'de> for NodeDe<'de, '_> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let path = self.path;
        match &self.node.kind {
            Kind::Leaf(v) => v.deserialize_any(visitor).map_err(|e| self.yaml_err(e)),
            Kind::Seq(items) => visitor.visit_seq(Items {
                items,
                next: 0,
                path,
            }),
            Kind::Map(entries) => visitor.visit_map(Entries {
                entries,
                next: 0,
                path,
            }),
        }
        .map_err(|e| e.or_path(path, false))
    }

    leaf_or_any! {
        deserialize_bool deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64
        deserialize_i128 deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64
        deserialize_u128 deserialize_f32 deserialize_f64 deserialize_char deserialize_str
        deserialize_string deserialize_bytes deserialize_byte_buf deserialize_unit
        deserialize_identifier deserialize_ignored_any
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match &self.node.kind {
            Kind::Leaf(v) => v.deserialize_option(visitor).map_err(|e| self.yaml_err(e)),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        match &self.node.kind {
            Kind::Leaf(v) => v
                .deserialize_unit_struct(name, visitor)
                .map_err(|e| self.yaml_err(e)),
            _ => self.deserialize_any(visitor),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match &self.node.kind {
            Kind::Leaf(v) => v.deserialize_seq(visitor).map_err(|e| self.yaml_err(e)),
            _ => self.deserialize_any(visitor),
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match &self.node.kind {
            Kind::Leaf(v) => v.deserialize_map(visitor).map_err(|e| self.yaml_err(e)),
            _ => self.deserialize_any(visitor),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        match &self.node.kind {
            Kind::Leaf(v) => v
                .deserialize_struct(name, fields, visitor)
                .map_err(|e| self.yaml_err(e)),
            _ => self.deserialize_any(visitor),
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        let path = self.path;
        match &self.node.kind {
            Kind::Leaf(v) => v
                .deserialize_enum(name, variants, visitor)
                .map_err(|e| self.yaml_err(e)),
            Kind::Map(entries) if entries.len() == 1 => {
                let e = &entries[0];
                let mut child = path.to_vec();
                child.push(Seg::Key(e.key.clone()));
                visitor
                    .visit_enum(Variant {
                        key: &e.key,
                        value: &e.value,
                        path: &child,
                    })
                    .map_err(|err| err.or_path(path, false))
            }
            _ => Err(de::Error::invalid_type(self.unexpected(), &visitor)),
        }
        .map_err(|e| e.or_path(path, false))
    }
}

struct Items<'a, 'p> {
    items: &'a [Node],
    next: usize,
    path: &'p [Seg],
}

impl<'de> SeqAccess<'de> for Items<'de, '_> {
    type Error = DeError;
    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DeError> {
        let Some(node) = self.items.get(self.next) else {
            return Ok(None);
        };
        let mut path = self.path.to_vec();
        path.push(Seg::Index(self.next));
        self.next += 1;
        seed.deserialize(NodeDe { node, path: &path })
            .map(Some)
            .map_err(|e| e.or_path(&path, false))
    }
    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len() - self.next)
    }
}

struct Entries<'a, 'p> {
    entries: &'a [super::tree::Entry],
    next: usize,
    path: &'p [Seg],
}

impl Entries<'_, '_> {
    fn child_path(&self) -> Vec<Seg> {
        let mut path = self.path.to_vec();
        path.push(Seg::Key(self.entries[self.next].key.clone()));
        path
    }
}

impl<'de> MapAccess<'de> for Entries<'de, '_> {
    type Error = DeError;
    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        let Some(e) = self.entries.get(self.next) else {
            return Ok(None);
        };
        let key = de::value::BorrowedStrDeserializer::<DeError>::new(e.key.as_str());
        seed.deserialize(key)
            .map(Some)
            .map_err(|err| err.or_path(&self.child_path(), true))
    }
    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        let path = self.child_path();
        let node = &self.entries[self.next].value;
        self.next += 1;
        seed.deserialize(NodeDe { node, path: &path })
            .map_err(|e| e.or_path(&path, false))
    }
    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len() - self.next)
    }
}

/// `{variant: value}`: an externally tagged enum (e.g. `split: {subjects: {...}}`).
struct Variant<'a, 'p> {
    key: &'a str,
    value: &'a Node,
    path: &'p [Seg],
}

impl<'de, 'p> EnumAccess<'de> for Variant<'de, 'p> {
    type Error = DeError;
    type Variant = Self;
    fn variant_seed<V: DeserializeSeed<'de>>(self, seed: V) -> Result<(V::Value, Self), DeError> {
        let key = de::value::BorrowedStrDeserializer::<DeError>::new(self.key);
        let v = seed
            .deserialize(key)
            .map_err(|e| e.or_path(self.path, true))?;
        Ok((v, self))
    }
}

impl<'de> VariantAccess<'de> for Variant<'de, '_> {
    type Error = DeError;
    fn unit_variant(self) -> Result<(), DeError> {
        if self.value.is_null() {
            Ok(())
        } else {
            Err(DeError {
                message: format!("{} takes no value", self.key),
                path: Some(self.path.to_vec()),
                at_key: false,
            })
        }
    }
    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, DeError> {
        seed.deserialize(NodeDe {
            node: self.value,
            path: self.path,
        })
        .map_err(|e| e.or_path(self.path, false))
    }
    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, DeError> {
        NodeDe {
            node: self.value,
            path: self.path,
        }
        .deserialize_seq(visitor)
    }
    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        NodeDe {
            node: self.value,
            path: self.path,
        }
        .deserialize_struct("", fields, visitor)
    }
}

/// The names of `JobConfig`'s keys, read from serde's own "expected one of" list so that
/// they follow the struct.
pub(crate) fn job_fields() -> &'static [String] {
    static FIELDS: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    FIELDS.get_or_init(|| {
        let probe: serde_yaml::Value = serde_yaml::from_str("'?': 0").unwrap_or_default();
        let node = Node::from_value(&probe, None, super::tree::Origin::file(None, ""));
        match from_node::<crate::job::JobConfig>(&node) {
            Err(e) => e
                .message
                .split('`')
                .skip(1)
                .step_by(2)
                .skip(1)
                .map(str::to_string)
                .collect(),
            Ok(_) => Vec::new(),
        }
    })
}

/// The names between backticks in a serde message, in order.
fn backticked(text: &str) -> Vec<&str> {
    text.split('`').skip(1).step_by(2).collect()
}

/// Rewrites serde's `unknown field`/`unknown variant`/`missing field` messages into the
/// sweep file's vocabulary and adds a suggestion; other messages pass through.
pub fn humanize(message: &str) -> String {
    for (prefix, what) in [("unknown field `", "key"), ("unknown variant `", "variant")] {
        let Some(rest) = message.strip_prefix(prefix) else {
            continue;
        };
        let Some(end) = rest.find('`') else { break };
        let word = &rest[..end];
        let mut expected = backticked(&rest[end + 1..]);
        let hint = did_you_mean(word, expected.iter().copied());
        // serde lists aliases (`aspp`, `psp`) as variants too; name the canonical ones
        for names in [Head::NAMES, LossKind::NAMES] {
            if names.iter().all(|n| expected.contains(n)) {
                expected = names.to_vec();
            }
        }
        let list = match expected.len() {
            0 => format!(", no {what}s are allowed here"),
            1 => format!(", expected {}", expected[0]),
            _ => format!(", expected one of {}", expected.join(", ")),
        };
        return if what == "key" && !hint.is_empty() {
            format!("unknown key {word:?}{hint}")
        } else {
            format!("unknown {what} {word:?}{list}{hint}")
        };
    }
    if let Some(rest) = message.strip_prefix("missing field `") {
        if let Some(name) = rest.strip_suffix('`') {
            return format!("missing key {name:?}");
        }
    }
    message.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::JobConfig;
    use crate::sweepfile::tree::{path_string, Origin};

    fn node(text: &str) -> Node {
        let v: serde_yaml::Value = serde_yaml::from_str(text).unwrap();
        Node::from_value(&v, None, Origin::file(None, ""))
    }

    fn err(text: &str) -> (String, String, bool) {
        let n = node(text);
        let e = from_node::<JobConfig>(&n).unwrap_err();
        (path_string(&e.path.unwrap()), e.message, e.at_key)
    }

    #[test]
    fn reads_a_full_config() {
        let n = node(
            "model: {head: aspp, base_channels: 8}\nloss: [{type: ce}, {type: dice, weight: 3}]\n\
             data: {split: {subjects: {train: [1, 2], val: [3]}}, scale: [128, 128]}\n\
             optimizer: {type: adamw, lr: 0.001}\ncrop: 64\ninit: {from: pre}",
        );
        let c: JobConfig = from_node(&n).unwrap();
        assert_eq!(c.model.head, crate::job::Head::Deeplabv3);
        assert_eq!(c.loss.label(), "ce+3*dice");
        assert_eq!(
            c.data.split,
            crate::job::SplitConfig::Subjects {
                train: vec![1, 2],
                val: vec![3]
            }
        );
        assert_eq!(c.data.scale, [128, 128]);
        assert_eq!(c.optimizer.lr(), 0.001);
        assert_eq!(c.init.unwrap().from.as_deref(), Some("pre"));
    }

    #[test]
    fn errors_carry_their_path() {
        assert_eq!(
            err("model: {head: fcm}"),
            (
                "model.head".into(),
                "unknown variant `fcm`, expected one of `fcn`, `aspp`, `deeplabv3`, `psp`, `pspnet`"
                    .into(),
                false
            )
        );
        let (p, m, k) = err("model: {hed: fcn}");
        assert_eq!((p.as_str(), k), ("model.hed", true));
        assert!(m.starts_with("unknown field `hed`"), "{m}");
        let (p, m, _) = err("crop: abc");
        assert_eq!(p, "crop");
        assert!(m.contains("invalid type: string \"abc\""), "{m}");
        let (p, _, _) = err("data: {scale: [1, x]}");
        assert_eq!(p, "data.scale[1]");
        let (p, _, _) = err("data: {split: {subjects: {train: [1], val: [q]}}}");
        assert_eq!(p, "data.split.subjects.val[0]");
        let (p, m, k) = err("data: {split: {subjectz: 1}}");
        assert_eq!((p.as_str(), k), ("data.split.subjectz", true));
        assert!(m.starts_with("unknown variant `subjectz`"), "{m}");
        let (p, m, _) = err("data: {split: {subjects: {train: [1]}}}");
        assert_eq!(
            (p.as_str(), m.as_str()),
            ("data.split.subjects", "missing field `val`")
        );
    }

    #[test]
    fn rewrites_serde_messages() {
        assert_eq!(
            humanize("unknown variant `fcm`, expected one of `fcn`, `deeplabv3`, `pspnet`"),
            r#"unknown variant "fcm", expected one of fcn, deeplabv3, pspnet (did you mean "fcn"?)"#
        );
        assert_eq!(
            humanize(
                "unknown variant `dl`, expected one of `fcn`, `aspp`, `deeplabv3`, `psp`, `pspnet`"
            ),
            r#"unknown variant "dl", expected one of fcn, deeplabv3, pspnet"#
        );
        assert_eq!(
            humanize("unknown variant `adam`, expected `sgd` or `adamw`"),
            r#"unknown variant "adam", expected one of sgd, adamw (did you mean "adamw"?)"#
        );
        assert_eq!(
            humanize("unknown field `hed`, expected one of `backbone`, `head`"),
            r#"unknown key "hed" (did you mean "head"?)"#
        );
        assert_eq!(
            humanize("unknown field `zzz`, expected one of `backbone`, `head`"),
            r#"unknown key "zzz", expected one of backbone, head"#
        );
        assert_eq!(humanize("missing field `kind`"), r#"missing key "kind""#);
        assert_eq!(humanize("invalid type: map"), "invalid type: map");
    }
}
