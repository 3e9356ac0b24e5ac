//! The files of a data set folder, as both layouts list them: by suffix, in natural order.

use super::order::natural_cmp;
use super::DataSetError;
use std::path::Path;

/// Whether a label file of this ending keeps every value exactly.
pub(super) fn lossless(ending: &str) -> bool {
    let ext = ending
        .rsplit('.')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    matches!(ext.as_str(), "png" | "bmp" | "tif" | "tiff")
}

/// The stems of the files in `dir` whose names end with `suffix`, in natural order.
pub(super) fn list_files(dir: &Path, suffix: &str) -> Result<Vec<String>, DataSetError> {
    let rd = std::fs::read_dir(dir)
        .map_err(|e| DataSetError::new(dir, format!("cannot list the folder: {e}")))?;
    let mut out = Vec::new();
    for e in rd {
        let e = e.map_err(|e| DataSetError::new(dir, format!("cannot list the folder: {e}")))?;
        let name = e.file_name();
        if let Some(stem) = name.to_str().and_then(|n| n.strip_suffix(suffix)) {
            if !stem.is_empty() && !stem.starts_with('.') {
                out.push(stem.to_string());
            }
        }
    }
    out.sort_by(|a, b| natural_cmp(a, b));
    Ok(out)
}

/// The folder's own name (`data/dme` -> `dme`): a data set's name when its description
/// gives none.
pub(super) fn folder_name(root: &Path) -> String {
    let root = std::path::absolute(root).unwrap_or_else(|_| root.to_path_buf());
    root.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "data".into())
}
