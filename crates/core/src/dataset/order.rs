//! The order cases and groups are listed in: natural (`img_2` before `img_10`, patient `9`
//! before `10`), so folds and training order do not depend on how ids are zero-padded.

use std::cmp::Ordering;

/// Compares runs of digits by value and everything else by character.
pub fn natural_cmp(a: &str, b: &str) -> Ordering {
    let (mut a, mut b) = (a, b);
    loop {
        match (a.chars().next(), b.chars().next()) {
            (None, None) => return Ordering::Equal,
            (None, _) => return Ordering::Less,
            (_, None) => return Ordering::Greater,
            (Some(x), Some(y)) if x.is_ascii_digit() && y.is_ascii_digit() => {
                let (da, ra) = split_digits(a);
                let (db, rb) = split_digits(b);
                let (ta, tb) = (da.trim_start_matches('0'), db.trim_start_matches('0'));
                let by_value = ta.len().cmp(&tb.len()).then_with(|| ta.cmp(tb));
                // Equal values: fewer leading zeros first, so the order is total.
                match by_value.then_with(|| da.len().cmp(&db.len())) {
                    Ordering::Equal => (a, b) = (ra, rb),
                    other => return other,
                }
            }
            (Some(x), Some(y)) => match x.cmp(&y) {
                Ordering::Equal => (a, b) = (&a[x.len_utf8()..], &b[y.len_utf8()..]),
                other => return other,
            },
        }
    }
}

fn split_digits(s: &str) -> (&str, &str) {
    let end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    s.split_at(end)
}

/// `items` (in order) into `folds` contiguous folds, the first `n % folds` one larger
/// (scikit-learn's `KFold` without shuffling); the message names the field at fault.
pub(super) fn kfold<T: Clone>(items: &[T], folds: u32, what: &str) -> Result<Vec<Vec<T>>, String> {
    let n = items.len();
    if folds < 2 {
        return Err(format!(
            "data.split.fold.folds: {folds} fold(s): cross-validation needs at least 2"
        ));
    }
    if folds as usize > n {
        return Err(format!(
            "data.split.fold.folds: {folds} folds but the data set has {n} {what} (each fold validates on at least one)"
        ));
    }
    let (k, extra) = (folds as usize, n % folds as usize);
    let mut start = 0;
    Ok((0..k)
        .map(|i| {
            let len = n / k + usize::from(i < extra);
            start += len;
            items[start - len..start].to_vec()
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn natural_order_reads_numbers_as_numbers() {
        let mut ids = vec![
            "img_10",
            "img_2",
            "img_1",
            "img_100",
            "Image_01R",
            "Image_01L",
            "a",
        ];
        ids.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(
            ids,
            [
                "Image_01L",
                "Image_01R",
                "a",
                "img_1",
                "img_2",
                "img_10",
                "img_100"
            ]
        );
        assert_eq!(natural_cmp("9", "10"), Ordering::Less);
        assert_eq!(natural_cmp("01", "1"), Ordering::Greater);
        assert_eq!(natural_cmp("x", "x"), Ordering::Equal);
    }

    #[test]
    fn kfold_is_contiguous_with_larger_folds_first() {
        let items: Vec<u32> = (1..=10).collect();
        let folds = kfold(&items, 3, "groups").unwrap();
        assert_eq!(folds, [vec![1, 2, 3, 4], vec![5, 6, 7], vec![8, 9, 10]]);
        assert!(kfold(&items, 1, "groups")
            .unwrap_err()
            .contains("at least 2"));
        assert!(kfold(&items, 11, "groups")
            .unwrap_err()
            .contains("10 groups"));
    }
}
