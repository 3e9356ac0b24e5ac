//! "did you mean ...?" for unknown keys and names: sweep files, data set descriptions and
//! config names all suggest the same way.

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
}
