//! A job's data set, resolved when the sweep is planned (so that identity sees it): the
//! shipped folder a bare `dataset:` names, the name a `root:` gives, and the head's
//! `model.num_classes`, which follows the data set's classes.

use super::tree::{Node, Origin, Seg};
use crate::dataset::DataSet;
use crate::job::JobConfig;
use std::path::PathBuf;

type Located = (Origin, String);

/// Where a key was set in the job's tree, if it was.
fn set_at(tree: &Node, path: &[&str]) -> Option<Origin> {
    let segs: Vec<Seg> = path.iter().map(|k| Seg::Key(k.to_string())).collect();
    let (entry, _, depth) = tree.locate(&segs);
    (depth == segs.len()).then(|| entry.map_or_else(|| tree.at.clone(), |e| e.key_at.clone()))
}

/// Fills in `data.root` / `data.dataset` from each other and `model.num_classes` from the
/// data set's description. A folder without a description is left for the data check
/// (`sweep-data`), which names what is missing; planning works without the data.
/// Returns the data set's class names (empty when it was not read).
pub(super) fn resolve(config: &mut JobConfig, tree: &Node) -> Result<Vec<String>, Located> {
    let root_at = set_at(tree, &["data", "root"]);
    let dataset_given = set_at(tree, &["data", "dataset"]).is_some();
    if root_at.is_none() && dataset_given {
        config.data.root = PathBuf::from("data").join(&config.data.dataset);
    }
    if !DataSet::is_described(&config.data.root) {
        return Ok(Vec::new());
    }
    let at = root_at.unwrap_or_else(|| tree.at.clone());
    let data_set = DataSet::describe(&config.data.root).map_err(|e| (at, e.to_string()))?;
    if !dataset_given {
        config.data.dataset = data_set.name.clone();
    }
    // The data set's pixel spacing makes distances mm (part of identity: it changes results).
    if config.data.pixel_spacing.is_none() {
        config.data.pixel_spacing = data_set.spacing;
    }
    let n = data_set.num_classes();
    match set_at(tree, &["model", "num_classes"]) {
        Some(at) if config.model.num_classes != n => Err((
            at,
            format!(
                "{}, but the data set {} has {n} classes ({}): leave it out, it follows the data set",
                config.model.num_classes,
                data_set.root.display(),
                data_set.classes.join(", ")
            ),
        )),
        _ => {
            config.model.num_classes = n;
            Ok(data_set.classes)
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::sweepfile::parse;
    use std::path::Path;

    /// A two-file MMSeg-layout folder with `classes`; returns the folder.
    fn folder(classes: &str) -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(
            d.path().join("dataset.yaml"),
            format!("classes: {classes}\nimg_suffix: .png\ntrain: {{img_path: img, seg_map_path: lab}}\n"),
        )
        .unwrap();
        std::fs::create_dir_all(d.path().join("img")).unwrap();
        d
    }

    fn plan(root: &Path, extra: &str) -> Result<Vec<crate::sweepfile::PlannedJob>, String> {
        let text = format!(
            "name: t\ndata: {{root: {}}}\nbase: {{{extra}}}\n",
            root.display()
        );
        parse(Path::new("sweeps/t.yaml"), &text, &[])
            .map_err(|e| e.to_string())
            .and_then(|s| s.plan().map_err(|e| e.to_string()))
    }

    #[test]
    fn num_classes_and_name_follow_the_data_set() {
        let d = folder("[background, IRF, SRF, PED]");
        let jobs = plan(d.path(), "").unwrap();
        let c = jobs[0].config.train().unwrap();
        assert_eq!(c.model.num_classes, 4);
        assert_eq!(jobs[0].classes, ["background", "IRF", "SRF", "PED"]);
        let name = d.path().file_name().unwrap().to_string_lossy();
        assert_eq!(c.data.dataset, name);
        // Stating the same number is fine; another is an error at its line.
        assert!(plan(d.path(), "model: {num_classes: 4}").is_ok());
        let e = plan(d.path(), "model: {num_classes: 2}").unwrap_err();
        assert!(
            e.starts_with("sweeps/t.yaml:3:16: base.model.num_classes: 2, but the data set")
                && e.contains("has 4 classes (background, IRF, SRF, PED)"),
            "{e}"
        );
    }

    #[test]
    fn the_data_sets_spacing_makes_distances_mm_unless_the_job_gives_one() {
        let d = folder("[background, fluid]\nspacing: [0.011, 0.0039]");
        assert_eq!(
            plan(d.path(), "").unwrap()[0]
                .config
                .train()
                .unwrap()
                .data
                .pixel_spacing,
            Some([0.011, 0.0039])
        );
        let text = format!(
            "name: t\ndata: {{root: {}, pixel_spacing: [1.0, 1.0]}}\n",
            d.path().display()
        );
        let spec = parse(Path::new("sweeps/t.yaml"), &text, &[]).unwrap();
        assert_eq!(
            spec.plan().unwrap()[0]
                .config
                .train()
                .unwrap()
                .data
                .pixel_spacing,
            Some([1.0, 1.0])
        );
    }

    #[test]
    fn a_broken_description_is_an_error_at_data_root() {
        let d = folder("[background]");
        let e = plan(d.path(), "").unwrap_err();
        assert!(e.starts_with("sweeps/t.yaml:2:"), "{e}");
        assert!(
            e.contains("dataset.yaml: `classes`: name at least two classes"),
            "{e}"
        );
    }
}
