//! The images `sweep predict` is given: files as named, folders by their image files in
//! natural order (`scan_2` before `scan_10`), not recursively.

use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use sweep_core::dataset::order::natural_cmp;

const IMAGE_EXTENSIONS: [&str; 6] = ["png", "jpg", "jpeg", "bmp", "tif", "tiff"];

fn is_image(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

/// One image to predict and the name its outputs take (`{name}.png`).
#[derive(Clone, Debug, PartialEq)]
pub struct Input {
    pub path: PathBuf,
    pub name: String,
}

/// Expands `paths`; two images that would write the same output name are an error.
pub fn expand(paths: &[PathBuf]) -> Result<Vec<Input>> {
    let mut files = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(p)
                .with_context(|| format!("listing {}", p.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| f.is_file() && is_image(f))
                .collect();
            if found.is_empty() {
                bail!(
                    "{}: no image files ({}) in this folder",
                    p.display(),
                    IMAGE_EXTENSIONS.join(", ")
                );
            }
            found.sort_by(|a, b| natural_cmp(&a.to_string_lossy(), &b.to_string_lossy()));
            files.extend(found);
        } else if p.exists() {
            files.push(p.clone());
        } else {
            bail!("{}: no such file or folder", p.display());
        }
    }
    let mut seen: BTreeMap<String, &Path> = BTreeMap::new();
    let mut out = Vec::with_capacity(files.len());
    for path in &files {
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        if let Some(other) = seen.insert(name.clone(), path) {
            bail!(
                "{} and {} would both write {name}.png: predict them into separate folders",
                other.display(),
                path.display()
            );
        }
        out.push(Input {
            path: path.clone(),
            name,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_expand_in_natural_order_and_names_must_be_unique() {
        let dir = tempfile::tempdir().unwrap();
        for f in ["scan_10.png", "scan_2.png", "notes.txt", "scan_1.tif"] {
            std::fs::write(dir.path().join(f), b"x").unwrap();
        }
        let names: Vec<String> = expand(&[dir.path().to_path_buf()])
            .unwrap()
            .into_iter()
            .map(|i| i.name)
            .collect();
        assert_eq!(names, ["scan_1", "scan_2", "scan_10"]);
        let twice = [dir.path().join("scan_2.png"), dir.path().to_path_buf()];
        let err = expand(&twice).unwrap_err().to_string();
        assert!(err.contains("would both write scan_2.png"), "{err}");
        let err = expand(&[dir.path().join("nope.png")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("nope.png: no such file"), "{err}");
    }
}
