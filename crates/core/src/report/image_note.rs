//! The note under the leaderboard on how the empty-mask policy decided the validation
//! images of one row: the best row of the main data set, the row the reader compares.

use super::data_sets::{families, foreground};
use super::significance::{ImageTally, Significance};
use super::Group;

/// What the note says, about which row.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ImageNote {
    pub label: String,
    /// The foreground classes' names ("fluid", "vessel", "IRF/SRF/PED").
    pub class: String,
    /// More than one foreground class: the tally counts (image, class) pairs.
    pub several: bool,
    pub tally: ImageTally,
}

/// The note on the best row of the main data set: the row its bootstrap calls best, or
/// untested, its first ranked row with per-image results. Data sets without per-image
/// results are passed over. `groups`, `tallies` and `significance` are the whole ranking.
pub(crate) fn choose(
    groups: &[Group],
    tallies: &[Option<ImageTally>],
    significance: Option<&Significance>,
) -> Option<ImageNote> {
    let best =
        |i: &usize| significance.is_some_and(|s| s.rows[*i].as_ref().is_some_and(|t| t.best));
    let family = families(groups)
        .into_iter()
        .find(|f| f.iter().any(|&i| tallies[i].is_some()))?;
    let row = family
        .iter()
        .copied()
        .find(best)
        .or_else(|| family.iter().copied().find(|&i| tallies[i].is_some()))?;
    Some(ImageNote {
        label: groups[row].label.clone(),
        class: foreground(&groups[row]),
        several: groups[row].runs[0].classes.len() > 2,
        tally: tallies[row].clone()?,
    })
}

/// `n` images over `seeds` seeds as the note prints it: whole numbers as integers, a mean
/// that is not whole with one decimal.
fn count(n: usize, seeds: usize) -> String {
    if n % seeds == 0 {
        (n / seeds).to_string()
    } else {
        format!("{:.1}", n as f64 / seeds as f64)
    }
}

/// The note's line (with its newline).
pub(crate) fn render(note: &ImageNote) -> String {
    let t = &note.tally;
    let c = |n: usize| count(n, t.seeds);
    let class = &note.class;
    let over = match (t.seeds, t.runs) {
        (1, _) => String::new(),
        (s, r) if s == r => format!(" (mean over {s} runs)"),
        (s, _) => format!(" (mean over {s} seeds, each the union of its folds)"),
    };
    let (none, images) = (c(t.neither + t.prediction_only), c(t.images));
    let (neither, false_alarms, missed) = (c(t.neither), c(t.prediction_only), c(t.label_only));
    let label = &note.label;
    if note.several {
        return format!(
            "Per image and class ({label}): {none} of {images} (validation image, class) pairs have \
             none of the class ({class}) in the label; it predicts none on {neither} of them (Dice \
             and distances undefined, left out of imgDice, HD95, ASSD) and some on {false_alarms} \
             (Dice 0, distances = the image diagonal), and misses the class entirely in {missed} \
             pairs{over}.\n"
        );
    }
    format!(
        "Per image ({label}): {none} of {images} validation images have no {class} in the label; \
         it predicts none on {neither} of them (Dice and distances undefined, left out of imgDice, \
         HD95, ASSD) and some on {false_alarms} (Dice 0, distances = the image diagonal), and \
         misses the {class} of {missed} images entirely{over}.\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_counts_are_integers_and_means_say_so() {
        assert_eq!(count(21, 3), "7");
        assert_eq!(count(20, 3), "6.7");
        assert_eq!(count(0, 3), "0");
        let tally = |runs, seeds| ImageTally {
            runs,
            seeds,
            images: 22 * seeds,
            both: 15 * seeds,
            neither: 0,
            label_only: 0,
            prediction_only: 7 * seeds,
        };
        let note = |t| ImageNote {
            label: "row".into(),
            class: "fluid".into(),
            several: false,
            tally: t,
        };
        let one = render(&note(tally(1, 1)));
        assert!(one.starts_with("Per image (row): 7 of 22 validation images have no fluid"));
        assert!(
            one.ends_with("misses the fluid of 0 images entirely.\n"),
            "{one}"
        );
        assert!(render(&note(tally(3, 3))).ends_with("entirely (mean over 3 runs).\n"));
        let folds = render(&note(tally(15, 3)));
        assert!(folds.contains("7 of 22") && folds.contains("3 seeds, each the union"));
    }
}
