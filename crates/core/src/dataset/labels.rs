//! How a label file's raw pixel values become class ids: `label_values` first (`{255: 1}`
//! for a 0/255 mask), then MMSeg's `reduce_zero_label`, then the ignore label. A raw value
//! none of these accounts for is an error, never a silent class.

use std::collections::BTreeMap;

/// The stored value of a pixel that is neither trained nor scored.
pub const IGNORE: u8 = 255;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LabelCoding {
    /// Raw pixel value -> class id, applied first.
    pub values: BTreeMap<u8, u8>,
    /// MMSeg's `reduce_zero_label`: 0 becomes ignored and every other value one less.
    pub reduce_zero_label: bool,
    /// The label (after `values` and the reduction) that is not trained and not scored
    /// (nnU-Net's `ignore` label, MMSeg's `ignore_index`).
    pub ignore: Option<u8>,
}

impl LabelCoding {
    /// Raw value -> stored label (a class id, or [`IGNORE`]); `None`: the value is not
    /// declared.
    pub fn table(&self, num_classes: usize) -> [Option<u8>; 256] {
        let mut table = [None; 256];
        for (raw, slot) in table.iter_mut().enumerate() {
            let raw = raw as u8;
            let mut v = *self.values.get(&raw).unwrap_or(&raw);
            if self.reduce_zero_label && !self.values.contains_key(&raw) {
                // MMSeg: 0 -> 255, v -> v - 1, and 255 stays ignored.
                v = match v {
                    0 | 255 => IGNORE,
                    v => v - 1,
                };
                if v == IGNORE {
                    *slot = Some(IGNORE);
                    continue;
                }
            }
            *slot = if Some(v) == self.ignore {
                Some(IGNORE)
            } else if usize::from(v) < num_classes {
                Some(v)
            } else {
                None
            };
        }
        table
    }

    /// What to add to the description so that `undeclared` raw values read as classes:
    /// a 0/255 mask of a two-class set is the common case (nnU-Net #1777, MMSeg #1609).
    pub fn hint(&self, undeclared: &[u8], num_classes: usize) -> String {
        if num_classes == 2 && undeclared == [255] {
            return "add label_values: {255: 1} (a mask saved as 0/255)".into();
        }
        if num_classes > 2
            && undeclared.len() == num_classes - 1
            && undeclared.iter().all(|v| *v > 0)
        {
            let pairs: Vec<String> = undeclared
                .iter()
                .enumerate()
                .map(|(i, v)| format!("{v}: {}", i + 1))
                .collect();
            return format!(
                "map them to class ids with label_values, e.g. label_values: {{{}}}",
                pairs.join(", ")
            );
        }
        "map them to class ids with label_values (raw value: class id), or declare an ignore label"
            .into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_then_ignore() {
        let coding = LabelCoding {
            values: BTreeMap::from([(255, 1)]),
            ..LabelCoding::default()
        };
        let t = coding.table(2);
        assert_eq!(
            (t[0], t[1], t[255], t[2]),
            (Some(0), Some(1), Some(1), None)
        );

        let coding = LabelCoding {
            ignore: Some(2),
            ..LabelCoding::default()
        };
        let t = coding.table(2);
        assert_eq!(
            (t[1], t[2], t[3], t[255]),
            (Some(1), Some(IGNORE), None, None)
        );
    }

    #[test]
    fn reduce_zero_label_as_mmseg() {
        let coding = LabelCoding {
            reduce_zero_label: true,
            ..LabelCoding::default()
        };
        let t = coding.table(3);
        assert_eq!(
            (t[0], t[1], t[3], t[4], t[255]),
            (Some(IGNORE), Some(0), Some(2), None, Some(IGNORE))
        );
    }

    #[test]
    fn hints_name_the_fix() {
        let c = LabelCoding::default();
        assert!(c.hint(&[255], 2).contains("label_values: {255: 1}"));
        assert!(c
            .hint(&[50, 100, 150], 4)
            .contains("{50: 1, 100: 2, 150: 3}"));
    }
}
