//! "did you mean ...?" for unknown keys and names, and serde's messages made readable.

use crate::job::{Head, LossKind};

/// The candidate closest to `word`, if it is close enough to be a likely typo.
pub fn suggest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let w = word.to_lowercase();
    let n = w.chars().count();
    if n == 0 {
        return None;
    }
    candidates
        .into_iter()
        .filter(|c| !c.is_empty() && *c != word)
        .map(|c| (strsim::damerau_levenshtein(&w, &c.to_lowercase()), c))
        .filter(|(d, c)| {
            *d <= (n / 3).max(1)
                || (n >= 4 && c.len() >= 4 && (c.starts_with(w.as_str()) || w.starts_with(*c)))
        })
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// ` (did you mean "x"?)` or nothing.
pub fn did_you_mean<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    suggest(word, candidates)
        .map(|s| format!(" (did you mean {s:?}?)"))
        .unwrap_or_default()
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

    #[test]
    fn suggests_close_names_only() {
        let heads = ["fcn", "deeplabv3", "pspnet"];
        assert_eq!(suggest("fcm", heads), Some("fcn"));
        assert_eq!(suggest("deeplab", heads), Some("deeplabv3"));
        assert_eq!(suggest("DeepLabV3", heads), Some("deeplabv3"));
        assert_eq!(suggest("unet", heads), None);
        assert_eq!(suggest("itres", ["iters", "batch"]), Some("iters"));
        assert_eq!(suggest("", ["a"]), None);
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
