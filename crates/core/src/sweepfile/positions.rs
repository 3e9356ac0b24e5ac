//! Source positions of every key and value of a YAML text.
//!
//! serde_yaml 0.9's `Value` keeps no spans, so error messages could not name a line. This
//! runs libyaml's event parser (the very parser serde_yaml uses, so the structure matches
//! node for node) and records each node's start mark. It is only called on text that
//! serde_yaml has already parsed successfully (which bounds the nesting depth).

use std::mem::MaybeUninit;
use unsafe_libyaml as unsafe_sys;

/// 1-based line and column.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pos {
    pub line: u32,
    pub column: u32,
}

#[derive(Debug)]
pub(crate) struct PosNode {
    pub at: Pos,
    pub kind: PosKind,
}

#[derive(Debug)]
pub(crate) enum PosKind {
    /// Scalars and aliases (an alias's target is not followed).
    Leaf,
    Seq(Vec<PosNode>),
    /// (position of the key, the key's text if it is a scalar, the value)
    Map(Vec<(Pos, Option<String>, PosNode)>),
}

#[derive(Clone, Debug, PartialEq)]
enum Ev {
    /// A scalar (with its text) or an alias.
    Leaf(Option<String>),
    SeqStart,
    SeqEnd,
    MapStart,
    MapEnd,
    DocStart,
    Other,
}

/// The first document's position tree; `None` if libyaml rejects the text.
pub(crate) fn scan(text: &str) -> Option<PosNode> {
    build(&events(text)?)
}

/// The first key written twice in one mapping: its second position and dotted path
/// (serde_yaml reports duplicates at the mapping's start).
pub(crate) fn find_duplicate_key(node: &PosNode, prefix: &str) -> Option<(Pos, String)> {
    find_duplicate(node, prefix, 0)
}

fn find_duplicate(node: &PosNode, prefix: &str, depth: usize) -> Option<(Pos, String)> {
    if depth > 200 {
        return None;
    }
    match &node.kind {
        PosKind::Leaf => None,
        PosKind::Seq(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, n)| find_duplicate(n, &format!("{prefix}[{i}]"), depth + 1)),
        PosKind::Map(entries) => {
            let mut seen = std::collections::HashSet::new();
            for (pos, key, _) in entries {
                if let Some(k) = key {
                    if !seen.insert(k) {
                        let path = if prefix.is_empty() {
                            k.clone()
                        } else {
                            format!("{prefix}.{k}")
                        };
                        return Some((*pos, path));
                    }
                }
            }
            entries.iter().find_map(|(_, key, n)| {
                let k = key.as_deref().unwrap_or("?");
                let path = if prefix.is_empty() {
                    k.to_string()
                } else {
                    format!("{prefix}.{k}")
                };
                find_duplicate(n, &path, depth + 1)
            })
        }
    }
}

/// Owns a heap-pinned libyaml parser (it keeps a pointer to itself) and frees it on drop.
struct Parser {
    sys: Box<MaybeUninit<unsafe_sys::yaml_parser_t>>,
}

impl Drop for Parser {
    fn drop(&mut self) {
        // SAFETY: constructed only after a successful yaml_parser_initialize.
        unsafe { unsafe_sys::yaml_parser_delete(self.sys.as_mut_ptr()) }
    }
}

fn events(text: &str) -> Option<Vec<(Ev, Pos)>> {
    let input = text.as_bytes();
    let mut raw = Box::new(MaybeUninit::<unsafe_sys::yaml_parser_t>::uninit());
    // SAFETY: the parser is initialised before use, lives in a Box (stable address), reads
    // `input` which outlives it (dropped at the end of this function), and every event
    // produced by yaml_parser_parse is deleted after its fields are read.
    unsafe {
        if unsafe_sys::yaml_parser_initialize(raw.as_mut_ptr()).fail {
            return None;
        }
        let mut parser = Parser { sys: raw };
        let p = parser.sys.as_mut_ptr();
        unsafe_sys::yaml_parser_set_encoding(p, unsafe_sys::YAML_UTF8_ENCODING);
        unsafe_sys::yaml_parser_set_input_string(p, input.as_ptr(), input.len() as u64);
        let mut out = Vec::new();
        loop {
            let mut event = MaybeUninit::<unsafe_sys::yaml_event_t>::uninit();
            if unsafe_sys::yaml_parser_parse(p, event.as_mut_ptr()).fail {
                return None;
            }
            let e = event.as_mut_ptr();
            let mark = (*e).start_mark;
            let pos = Pos {
                line: (mark.line as u32).saturating_add(1),
                column: (mark.column as u32).saturating_add(1),
            };
            let kind = match (*e).type_ {
                unsafe_sys::YAML_SCALAR_EVENT => {
                    let data = (*e).data.scalar;
                    let bytes = if data.value.is_null() {
                        &[][..]
                    } else {
                        std::slice::from_raw_parts(data.value, data.length as usize)
                    };
                    Ev::Leaf(Some(String::from_utf8_lossy(bytes).into_owned()))
                }
                unsafe_sys::YAML_ALIAS_EVENT => Ev::Leaf(None),
                unsafe_sys::YAML_SEQUENCE_START_EVENT => Ev::SeqStart,
                unsafe_sys::YAML_SEQUENCE_END_EVENT => Ev::SeqEnd,
                unsafe_sys::YAML_MAPPING_START_EVENT => Ev::MapStart,
                unsafe_sys::YAML_MAPPING_END_EVENT => Ev::MapEnd,
                unsafe_sys::YAML_DOCUMENT_START_EVENT => Ev::DocStart,
                _ => Ev::Other,
            };
            let end = (*e).type_ == unsafe_sys::YAML_STREAM_END_EVENT;
            unsafe_sys::yaml_event_delete(e);
            if end {
                return Some(out);
            }
            out.push((kind, pos));
        }
    }
}

type Key = (Pos, Option<String>);

enum Frame {
    Seq(Pos, Vec<PosNode>),
    Map(Pos, Vec<(Pos, Option<String>, PosNode)>, Option<Key>),
}

/// Builds the first document's tree from the events, without recursion.
fn build(events: &[(Ev, Pos)]) -> Option<PosNode> {
    let start = events.iter().position(|(e, _)| *e == Ev::DocStart)? + 1;
    let mut stack: Vec<Frame> = Vec::new();
    for (ev, at) in &events[start..] {
        let at = *at;
        let mut text = None;
        let done = match ev {
            Ev::Leaf(t) => {
                text = t.clone();
                PosNode {
                    at,
                    kind: PosKind::Leaf,
                }
            }
            Ev::SeqStart => {
                stack.push(Frame::Seq(at, Vec::new()));
                continue;
            }
            Ev::MapStart => {
                stack.push(Frame::Map(at, Vec::new(), None));
                continue;
            }
            Ev::SeqEnd => match stack.pop()? {
                Frame::Seq(at, items) => PosNode {
                    at,
                    kind: PosKind::Seq(items),
                },
                Frame::Map(..) => return None,
            },
            Ev::MapEnd => match stack.pop()? {
                Frame::Map(at, entries, None) => PosNode {
                    at,
                    kind: PosKind::Map(entries),
                },
                _ => return None,
            },
            Ev::DocStart | Ev::Other => return None,
        };
        match stack.last_mut() {
            None => return Some(done),
            Some(Frame::Seq(_, items)) => items.push(done),
            Some(Frame::Map(_, entries, pending)) => match pending.take() {
                None => *pending = Some((done.at, text)),
                Some((key, key_text)) => entries.push((key, key_text, done)),
            },
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(line: u32, column: u32) -> Pos {
        Pos { line, column }
    }

    #[test]
    fn block_and_flow_positions() {
        let text = "name: x\nbase:\n  crop: 256\n  model: {head: fcn}\ngrid:\n  crop: [256, 288]\n";
        let root = scan(text).unwrap();
        let PosKind::Map(top) = &root.kind else {
            panic!("root is a map")
        };
        assert_eq!(top.len(), 3);
        assert_eq!(top[0].0, p(1, 1));
        assert_eq!(top[0].1.as_deref(), Some("name"));
        assert_eq!(top[0].2.at, p(1, 7));
        let PosKind::Map(base) = &top[1].2.kind else {
            panic!()
        };
        assert_eq!(base[0].0, p(3, 3));
        assert_eq!(base[0].2.at, p(3, 9));
        let PosKind::Map(model) = &base[1].2.kind else {
            panic!()
        };
        assert_eq!(model[0].0, p(4, 11));
        assert_eq!(model[0].2.at, p(4, 17));
        let PosKind::Map(grid) = &top[2].2.kind else {
            panic!()
        };
        let PosKind::Seq(items) = &grid[0].2.kind else {
            panic!()
        };
        assert_eq!(items[1].at, p(6, 15));
    }

    #[test]
    fn finds_duplicate_keys() {
        let root = scan("a: 1\nb:\n  - {x: 1, y: 2, x: 3}\n").unwrap();
        assert_eq!(
            find_duplicate_key(&root, ""),
            Some((p(3, 18), "b[0].x".into()))
        );
        assert_eq!(find_duplicate_key(&scan("a: 1\nb: 2").unwrap(), ""), None);
    }

    #[test]
    fn empty_and_scalar_documents() {
        assert!(matches!(
            scan("").map(|n| n.kind),
            None | Some(PosKind::Leaf)
        ));
        assert!(matches!(scan("3").unwrap().kind, PosKind::Leaf));
        assert!(scan("a: [").is_none());
    }
}
