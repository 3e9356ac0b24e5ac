//! One validation image's results ([`ImageMetric`] per class): the IoUMetric counts, the
//! image's Dice, and the surface distances of each foreground class.

use super::surface::{dice, surface_distances, Spacing};
use super::ImageMetric;

/// How surface distances are measured: label pixels, or mm with a stated pixel spacing.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DistanceScale {
    pub spacing: Spacing,
    pub unit: &'static str,
}

impl DistanceScale {
    /// `pixel_spacing` is the data set's `[x, y]` in mm, if it states one.
    pub fn new(pixel_spacing: Option<[f64; 2]>) -> DistanceScale {
        match pixel_spacing {
            Some([x, y]) => DistanceScale {
                spacing: Spacing { x, y },
                unit: "mm",
            },
            None => DistanceScale {
                spacing: Spacing::PIXELS,
                unit: "px",
            },
        }
    }
}

fn finite(v: f64) -> Option<f64> {
    v.is_finite().then_some(v)
}

/// The per-class rows of one image (`pred` and `label` are `w` x `h`; label 255 is ignored).
/// Class 0 (background) gets counts and Dice; the others also get surface distances.
pub fn image_metrics(
    split: &str,
    image: &str,
    pred: &[u8],
    label: &[u8],
    (w, h): (usize, usize),
    num_classes: usize,
    scale: DistanceScale,
) -> Vec<ImageMetric> {
    let mut one = super::Metrics::new(num_classes);
    one.add(pred, label);
    (0..num_classes)
        .map(|class| {
            let c = class as u8;
            let surface =
                (class > 0).then(|| surface_distances(pred, label, w, h, c, scale.spacing));
            ImageMetric {
                split: split.to_string(),
                image: image.to_string(),
                class,
                intersect: one.intersect[class],
                pred: one.pred[class],
                label: one.label[class],
                dice: finite(dice(pred, label, c) * 100.0),
                hd95: surface.as_ref().and_then(|s| finite(s.hd95)),
                assd: surface.as_ref().and_then(|s| finite(s.assd)),
                presence: surface.map(|s| s.presence),
                unit: scale.unit.to_string(),
            }
        })
        .collect()
}

/// Per-image numbers as summary metrics of the split, per foreground class: `imgDice.c`
/// (mean per-image Dice), `HD95.c` and `ASSD.c` (means over the images where they are
/// defined: an image with the class in neither mask has none; one with it in only one
/// mask has the diagonal). Stored beside the IoUMetric numbers, so reports sort by them.
pub fn image_summaries(split: &str, images: &[ImageMetric]) -> Vec<super::MetricValue> {
    let classes: std::collections::BTreeSet<usize> = images
        .iter()
        .filter(|m| m.class > 0)
        .map(|m| m.class)
        .collect();
    let mut out = Vec::new();
    for c in classes {
        let of = |f: fn(&ImageMetric) -> Option<f64>| {
            let v: Vec<f64> = images
                .iter()
                .filter(|m| m.class == c && m.split == split)
                .filter_map(f)
                .collect();
            (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
        };
        let named = [
            ("imgDice", of(|m| m.dice)),
            ("HD95", of(|m| m.hd95)),
            ("ASSD", of(|m| m.assd)),
        ];
        for (name, value) in named {
            if let Some(value) = value {
                out.push(super::MetricValue {
                    split: split.to_string(),
                    name: name.to_string(),
                    class: Some(c),
                    value,
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::surface::Presence;

    #[test]
    fn rows_per_class_with_counts_dice_and_distances() {
        // 4x1: label fluid at x = 1, 2; prediction at x = 2, 3; x = 0 ignored in the label.
        let label = [255, 1, 1, 0];
        let pred = [1, 0, 1, 1];
        let rows = image_metrics(
            "val",
            "img_1",
            &pred,
            &label,
            (4, 1),
            2,
            DistanceScale::new(None),
        );
        assert_eq!(rows.len(), 2);
        let (bg, fluid) = (&rows[0], &rows[1]);
        // Class 0 over x = 1..3: label {3}, prediction {1}: no overlap.
        assert_eq!((bg.intersect, bg.pred, bg.label), (0, 1, 1));
        assert_eq!(bg.dice, Some(0.0));
        assert!(bg.hd95.is_none() && bg.presence.is_none());
        // Class 1: label {1, 2}, prediction {2, 3}: I = 1, Dice 2/4.
        assert_eq!((fluid.intersect, fluid.pred, fluid.label), (1, 2, 2));
        assert_eq!(fluid.dice, Some(50.0));
        assert_eq!(fluid.presence, Some(Presence::Both));
        // Every pixel is a border pixel of its 1-row mask: distances 1, 0 and 0, 1 -> mean 0.5.
        assert_eq!(fluid.assd, Some(0.5));
        assert_eq!(fluid.unit, "px");
        let mm = image_metrics(
            "val",
            "i",
            &pred,
            &label,
            (4, 1),
            2,
            DistanceScale::new(Some([0.5, 2.0])),
        );
        assert_eq!((mm[1].assd, mm[1].unit.as_str()), (Some(0.25), "mm"));
    }

    #[test]
    fn undefined_values_are_none_and_summaries_skip_them() {
        let empty = image_metrics(
            "val",
            "a",
            &[0; 4],
            &[0; 4],
            (2, 2),
            2,
            DistanceScale::new(None),
        );
        assert_eq!(empty[1].presence, Some(Presence::Neither));
        assert!(empty[1].dice.is_none() && empty[1].hd95.is_none() && empty[1].assd.is_none());
        let missed = image_metrics(
            "val",
            "b",
            &[0; 4],
            &[1, 0, 0, 0],
            (2, 2),
            2,
            DistanceScale::new(None),
        );
        assert_eq!(missed[1].dice, Some(0.0));
        assert_eq!(missed[1].hd95, Some(8f64.sqrt()));
        let all: Vec<ImageMetric> = empty.into_iter().chain(missed).collect();
        let s = image_summaries("val", &all);
        let get = |n: &str| s.iter().find(|m| m.name == n).map(|m| (m.class, m.value));
        // Only image b has defined values.
        assert_eq!(get("imgDice"), Some((Some(1), 0.0)));
        assert_eq!(get("HD95"), Some((Some(1), 8f64.sqrt())));
        assert_eq!(s.len(), 3);
    }
}
