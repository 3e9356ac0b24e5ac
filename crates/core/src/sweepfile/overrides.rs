//! `--set key=value`: a dotted path from the file's top, a YAML value.

use super::tree::{parse_path, Entry, Kind, Node, Origin, Seg};
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
    if let Some(n) = dotted_section(&path) {
        let head = path[..n].to_vec();
        if path.len() > n && path[n..].iter().all(|s| matches!(s, Seg::Key(_))) {
            // `grid.` / `search.space.`: each segment and its dot
            let section_len: usize = head.iter().map(|s| s.to_string().len() + 1).sum();
            path = head;
            path.push(Seg::Key(key[section_len..].to_string()));
        } else if let (true, Kind::Map(entries)) = (path.len() == n, &node.kind) {
            for e in entries {
                let mut p = head.clone();
                p.push(Seg::Key(e.key.clone()));
                set_value(root, &p, &e.value, &e.key_at, ctx)?;
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
    set_value(root, &path, &node, &at, ctx)
}

/// Grid and search-space keys are themselves dotted (`grid: {model.head: [...]}`):
/// everything after `grid.` / `search.space.` is one key. The length of the section's
/// path, when `path` is in one.
fn dotted_section(path: &[Seg]) -> Option<usize> {
    [&["grid"][..], &["search", "space"][..]]
        .iter()
        .find(|section| {
            path.len() >= section.len()
                && section
                    .iter()
                    .zip(path)
                    .all(|(k, s)| *s == Seg::Key(k.to_string()))
        })
        .map(|section| section.len())
}

/// Sets one value. A search-space distribution replaces the one written: merged,
/// `{choice: ..}` into `{int: ..}` would give two.
fn set_value(
    root: &mut Node,
    path: &[Seg],
    node: &Node,
    at: &Origin,
    ctx: &Ctx,
) -> Result<(), SpecError> {
    if let Some(entry) = space_entry(root, path) {
        entry.key_at = at.clone();
        entry.value = node.clone();
        return Ok(());
    }
    root.set(path, node, at)
        .map_err(|(at, m)| ctx.error(&at, m))
}

/// The entry of `search.space` that `path` (`search.space.<key>`) names, if the file has it.
fn space_entry<'a>(root: &'a mut Node, path: &[Seg]) -> Option<&'a mut Entry> {
    let [Seg::Key(search), Seg::Key(space), Seg::Key(key)] = path else {
        return None;
    };
    if (search.as_str(), space.as_str()) != ("search", "space") {
        return None;
    }
    let find = |n: &'a mut Node, k: &str| match &mut n.kind {
        Kind::Map(entries) => entries.iter_mut().find(|e| e.key == k),
        _ => None,
    };
    let section = &mut find(root, "search")?.value;
    let section = &mut find(section, "space")?.value;
    find(section, key)
}
