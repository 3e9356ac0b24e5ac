//! The sweep file as a tree whose every node remembers where it came from.
//!
//! Jobs are built by copying `base` and setting grid/include/seed values into the copy;
//! each value keeps its [`Origin`] (file position and source key, or the `--set` that gave
//! it), so an error found in job N's resolved config points at the line that caused it.

use super::positions::{Pos, PosKind, PosNode};
use serde_yaml::Value;
use std::fmt;
use std::sync::Arc;

/// Where a value (or key) was written.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Origin {
    /// Position in the sweep file (None for `--set` values).
    pub pos: Option<Pos>,
    /// Dotted key in the source: `base.model.head`, `grid.crop[1]`, `include[0].loss`.
    pub key: Arc<str>,
    /// The `--set key=value` argument it came from.
    pub set: Option<Arc<str>>,
}

impl Origin {
    pub fn file(pos: Option<Pos>, key: &str) -> Self {
        Origin {
            pos,
            key: key.into(),
            set: None,
        }
    }
    /// An origin for something below this one (a child key of a `--set` value, say).
    pub fn child(&self, pos: Option<Pos>, seg: &Seg) -> Self {
        Origin {
            pos: pos.or(if self.set.is_some() { None } else { self.pos }),
            key: join(&self.key, seg).into(),
            set: self.set.clone(),
        }
    }
}

/// One step of a dotted path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Seg {
    Key(String),
    Index(usize),
}

impl fmt::Display for Seg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Seg::Key(k) => f.write_str(k),
            Seg::Index(i) => write!(f, "[{i}]"),
        }
    }
}

/// `a.b` + `c` = `a.b.c`; `a` + `[1]` = `a[1]`.
pub(crate) fn join(prefix: &str, seg: &Seg) -> String {
    match seg {
        Seg::Key(k) if prefix.is_empty() => k.clone(),
        Seg::Key(k) => format!("{prefix}.{k}"),
        Seg::Index(i) => format!("{prefix}[{i}]"),
    }
}

pub(crate) fn path_string(path: &[Seg]) -> String {
    path.iter().fold(String::new(), |acc, s| join(&acc, s))
}

/// Splits `model.head`, `loss[1].weight`, `include.0.crop` into segments. Numeric plain
/// segments stay keys here; [`Node::set`] treats them as indices where a list is found.
pub(crate) fn parse_path(text: &str) -> Option<Vec<Seg>> {
    let mut out = Vec::new();
    for part in text.split('.') {
        let (name, mut rest) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if name.is_empty() && (rest.is_empty() || out.is_empty()) {
            return None;
        }
        if !name.is_empty() {
            out.push(Seg::Key(name.to_string()));
        }
        while !rest.is_empty() {
            let close = rest.find(']')?;
            let index = rest.get(1..close)?.parse().ok()?;
            out.push(Seg::Index(index));
            rest = &rest[close + 1..];
            if !rest.is_empty() && !rest.starts_with('[') {
                return None;
            }
        }
    }
    Some(out)
}

#[derive(Clone, Debug)]
pub(crate) struct Node {
    pub kind: Kind,
    pub at: Origin,
}

#[derive(Clone, Debug)]
pub(crate) enum Kind {
    /// Scalars, null, tagged values.
    Leaf(Value),
    Seq(Vec<Node>),
    Map(Vec<Entry>),
}

#[derive(Clone, Debug)]
pub(crate) struct Entry {
    pub key: String,
    pub key_at: Origin,
    pub value: Node,
}

/// Text of a mapping key (sweep keys are strings; others are kept as their YAML text so
/// that they are reported as unknown keys rather than silently dropped).
pub(crate) fn key_text(key: &Value) -> String {
    match key {
        Value::String(s) => s.clone(),
        other => super::format_value(other),
    }
}

impl Node {
    pub fn empty_map(at: Origin) -> Node {
        Node {
            kind: Kind::Map(Vec::new()),
            at,
        }
    }

    /// Builds the tree of `value`, taking positions from `pos` where its shape matches.
    pub fn from_value(value: &Value, pos: Option<&PosNode>, at: Origin) -> Node {
        let at = Origin {
            pos: pos.map(|p| p.at).or(at.pos),
            ..at
        };
        match value {
            Value::Sequence(items) => {
                let child_pos = match pos.map(|p| &p.kind) {
                    Some(PosKind::Seq(ps)) if ps.len() == items.len() => Some(ps),
                    _ => None,
                };
                let items = items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| {
                        let p = child_pos.map(|ps| &ps[i]);
                        Node::from_value(v, p, at.child(p.map(|p| p.at), &Seg::Index(i)))
                    })
                    .collect();
                Node {
                    kind: Kind::Seq(items),
                    at,
                }
            }
            Value::Mapping(map) => {
                let child_pos = match pos.map(|p| &p.kind) {
                    Some(PosKind::Map(ps)) if ps.len() == map.len() => Some(ps),
                    _ => None,
                };
                let entries = map
                    .iter()
                    .enumerate()
                    .map(|(i, (k, v))| {
                        let key = key_text(k);
                        let seg = Seg::Key(key.clone());
                        let (kp, vp) = match child_pos {
                            Some(ps) => (Some(ps[i].0), Some(&ps[i].2)),
                            None => (None, None),
                        };
                        let key_at = at.child(kp, &seg);
                        let value = Node::from_value(v, vp, at.child(vp.map(|p| p.at), &seg));
                        Entry { key, key_at, value }
                    })
                    .collect();
                Node {
                    kind: Kind::Map(entries),
                    at,
                }
            }
            other => Node {
                kind: Kind::Leaf(other.clone()),
                at,
            },
        }
    }

    pub fn to_value(&self) -> Value {
        match &self.kind {
            Kind::Leaf(v) => v.clone(),
            Kind::Seq(items) => Value::Sequence(items.iter().map(Node::to_value).collect()),
            Kind::Map(entries) => Value::Mapping(
                entries
                    .iter()
                    .map(|e| (Value::String(e.key.clone()), e.value.to_value()))
                    .collect(),
            ),
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self.kind, Kind::Leaf(Value::Null))
    }

    pub fn entries(&self) -> Option<&[Entry]> {
        match &self.kind {
            Kind::Map(e) => Some(e),
            _ => None,
        }
    }

    pub fn get(&self, key: &str) -> Option<&Entry> {
        self.entries()?.iter().find(|e| e.key == key)
    }

    /// The deepest node along `path` and the map entry that holds it (if any): where an
    /// error about `path` should point.
    pub fn locate<'a>(&'a self, path: &[Seg]) -> (Option<&'a Entry>, &'a Node, usize) {
        let mut node = self;
        let mut entry = None;
        let mut depth = 0;
        for seg in path {
            let next = match (&node.kind, seg) {
                (Kind::Map(entries), Seg::Key(k)) => entries.iter().find(|e| &e.key == k),
                (Kind::Seq(items), Seg::Index(i)) => {
                    if let Some(item) = items.get(*i) {
                        entry = None;
                        node = item;
                        depth += 1;
                        continue;
                    }
                    None
                }
                _ => None,
            };
            match next {
                Some(e) => {
                    entry = Some(e);
                    node = &e.value;
                    depth += 1;
                }
                None => break,
            }
        }
        (entry, node, depth)
    }

    /// Applies a fragment (a mapping whose keys may be dotted) onto this map node.
    pub fn apply(&mut self, fragment: &Node) -> Result<(), (Origin, String)> {
        let Some(entries) = fragment.entries() else {
            if fragment.is_null() {
                return Ok(());
            }
            return Err((
                fragment.at.clone(),
                "expected a mapping of config keys".into(),
            ));
        };
        for e in entries {
            let Some(path) = parse_path(&e.key) else {
                return Err((e.key_at.clone(), format!("malformed key {:?}", e.key)));
            };
            self.set(&path, &e.value, &e.key_at)?;
        }
        Ok(())
    }

    /// Sets `value` at `path` below this node, creating maps on the way. A mapping value
    /// is merged into an existing mapping (its keys may be dotted, too); anything else
    /// replaces what was there. Segments that are numbers index into existing lists.
    pub fn set(
        &mut self,
        path: &[Seg],
        value: &Node,
        key_at: &Origin,
    ) -> Result<(), (Origin, String)> {
        let Some((first, rest)) = path.split_first() else {
            self.merge(value)?;
            return Ok(());
        };
        if self.is_null() {
            self.kind = Kind::Map(Vec::new());
        }
        let here = self.at.key.clone();
        match (&mut self.kind, first) {
            (Kind::Seq(items), seg) => {
                let index = match seg {
                    Seg::Index(i) => Some(*i),
                    Seg::Key(k) => k.parse::<usize>().ok(),
                };
                let len = items.len();
                match index.and_then(|i| items.get_mut(i)) {
                    Some(item) => item.set(rest, value, key_at),
                    None => Err((
                        key_at.clone(),
                        format!("{here} is a list of {len} items; {first} is not one of them"),
                    )),
                }
            }
            (Kind::Map(entries), Seg::Key(k)) => {
                if let Some(e) = entries.iter_mut().find(|e| &e.key == k) {
                    if rest.is_empty() {
                        e.key_at = key_at.clone();
                    }
                    return e.value.set(rest, value, key_at);
                }
                let mut fresh = if rest.is_empty() {
                    Node::empty_map(value.at.clone())
                } else {
                    Node::empty_map(key_at.clone())
                };
                if rest.is_empty() && value.entries().is_none() {
                    fresh = Node {
                        kind: Kind::Leaf(Value::Null),
                        at: value.at.clone(),
                    };
                }
                fresh.set(rest, value, key_at)?;
                entries.push(Entry {
                    key: k.clone(),
                    key_at: key_at.clone(),
                    value: fresh,
                });
                Ok(())
            }
            (Kind::Map(_), Seg::Index(_)) => Err((
                key_at.clone(),
                format!("{here} is a mapping, not a list; cannot index it with {first}"),
            )),
            (Kind::Leaf(_), _) => Err((
                key_at.clone(),
                format!("cannot set {first} inside {here}, which is a single value"),
            )),
        }
    }

    /// Merges `value` into this node: mappings merge key by key (dotted keys allowed),
    /// except that a mapping with a different `type` replaces the old one (switching
    /// `optimizer: {type: adamw}` must not keep SGD's momentum); the rest replaces.
    fn merge(&mut self, value: &Node) -> Result<(), (Origin, String)> {
        let type_of = |n: &Node| match n.get("type").map(|e| &e.value.kind) {
            Some(Kind::Leaf(v)) => Some(v.clone()),
            _ => None,
        };
        match (&self.kind, &value.kind) {
            (Kind::Map(_), Kind::Map(_))
                if type_of(self) == type_of(value) || type_of(value).is_none() =>
            {
                self.apply(value)
            }
            (_, Kind::Map(_)) => {
                let mut fresh = Node::empty_map(value.at.clone());
                fresh.apply(value)?;
                *self = fresh;
                Ok(())
            }
            _ => {
                *self = value.clone();
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaf(v: Value, key: &str) -> Node {
        Node {
            kind: Kind::Leaf(v),
            at: Origin::file(None, key),
        }
    }

    #[test]
    fn paths_parse() {
        assert_eq!(
            parse_path("loss[1].weight").unwrap(),
            vec![
                Seg::Key("loss".into()),
                Seg::Index(1),
                Seg::Key("weight".into())
            ]
        );
        assert_eq!(
            path_string(&parse_path("a.b[2][3].c").unwrap()),
            "a.b[2][3].c"
        );
        assert!(parse_path("").is_none());
        assert!(parse_path("a..b").is_none());
        assert!(parse_path("a[x]").is_none());
        assert!(parse_path("a[1]b").is_none());
        assert!(parse_path("[1]").is_none());
    }

    #[test]
    fn dotted_set_merges_and_replaces() {
        let v: Value =
            serde_yaml::from_str("model: {head: fcn, aux_head: true}\nloss: ce").unwrap();
        let mut n = Node::from_value(&v, None, Origin::file(None, "base"));
        let at = Origin::file(None, "grid.model.head");
        n.set(
            &parse_path("model.head").unwrap(),
            &leaf("pspnet".into(), "g"),
            &at,
        )
        .unwrap();
        n.set(
            &parse_path("optimizer.lr").unwrap(),
            &leaf(0.1.into(), "g"),
            &at,
        )
        .unwrap();
        let out = n.to_value();
        let want: Value = serde_yaml::from_str(
            "model: {head: pspnet, aux_head: true}\nloss: ce\noptimizer: {lr: 0.1}",
        )
        .unwrap();
        assert_eq!(out, want);
        let (entry, _, depth) = n.locate(&parse_path("model.head").unwrap());
        assert_eq!(&*entry.unwrap().key_at.key, "grid.model.head");
        assert_eq!(depth, 2);
        // a scalar cannot hold keys
        assert!(n
            .set(
                &parse_path("loss.type").unwrap(),
                &leaf("ce".into(), "g"),
                &at
            )
            .is_err());
    }

    #[test]
    fn type_switch_replaces_mapping() {
        let v: Value = serde_yaml::from_str("optimizer: {type: sgd, momentum: 0.9}").unwrap();
        let mut n = Node::from_value(&v, None, Origin::file(None, "base"));
        let w: Value = serde_yaml::from_str("{type: adamw, lr: 0.001}").unwrap();
        let frag = Node::from_value(&w, None, Origin::file(None, "x"));
        n.set(
            &parse_path("optimizer").unwrap(),
            &frag,
            &Origin::file(None, "x"),
        )
        .unwrap();
        let want: Value = serde_yaml::from_str("optimizer: {type: adamw, lr: 0.001}").unwrap();
        assert_eq!(n.to_value(), want);
        let same: Value = serde_yaml::from_str("{lr: 0.002}").unwrap();
        let frag = Node::from_value(&same, None, Origin::file(None, "x"));
        n.set(
            &parse_path("optimizer").unwrap(),
            &frag,
            &Origin::file(None, "x"),
        )
        .unwrap();
        let want: Value = serde_yaml::from_str("optimizer: {type: adamw, lr: 0.002}").unwrap();
        assert_eq!(n.to_value(), want);
    }
}
