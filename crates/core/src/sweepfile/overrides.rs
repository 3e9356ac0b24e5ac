//! `--set key=value`: a dotted path from the file's top, a YAML value.

use super::tree::{parse_path, Kind, Node, Origin, Seg};
use super::{Ctx, SpecError};
use serde_yaml::Value;

pub(crate) fn apply(root: &mut Node, set: &str, ctx: &Ctx) -> Result<(), SpecError> {
    let err = |message: String| {
        let mut e = ctx.error(&Origin::file(None, ""), message);
        e.set = Some(set.to_string());
        e.key = None;
        e
    };
    let Some((key, text)) = set.split_once('=') else {
        return Err(err("expected key=value, e.g. base.iters=20".into()));
    };
    let key = key.trim();
    let Some(mut path) = parse_path(key) else {
        return Err(err(format!(
            "malformed key {key:?} (expected a dotted key like base.iters)"
        )));
    };
    let value: Value =
        serde_yaml::from_str(text).map_err(|e| err(format!("the value is not valid YAML: {e}")))?;
    let at = Origin {
        pos: None,
        key: key.into(),
        set: Some(set.into()),
    };
    let node = Node::from_value(&value, None, at.clone());
    // Grid keys are themselves dotted (`grid: {model.head: [...]}`): everything after
    // `grid.` is one key.
    if path.first() == Some(&Seg::Key("grid".into())) {
        if path.len() > 1 && path[1..].iter().all(|s| matches!(s, Seg::Key(_))) {
            path = vec![path[0].clone(), Seg::Key(key["grid.".len()..].to_string())];
        } else if let (1, Kind::Map(entries)) = (path.len(), &node.kind) {
            for e in entries {
                let p = [path[0].clone(), Seg::Key(e.key.clone())];
                root.set(&p, &e.value, &e.key_at)
                    .map_err(|(at, m)| ctx.error(&at, m))?;
            }
            return Ok(());
        }
    }
    match root.kind {
        Kind::Map(_) => {}
        Kind::Leaf(Value::Null) => *root = Node::empty_map(root.at.clone()),
        // not a sweep file at all: say that (later), not that --set cannot go into it
        _ => return Ok(()),
    }
    root.set(&path, &node, &at)
        .map_err(|(at, m)| ctx.error(&at, m))
}
