//! Files of a job, by id only. The path of an artifact comes from the store (looked up by
//! job id and the artifact's index), a prediction from the server's own listing of the job's
//! `predictions/` folder (by index); whatever the request's bytes, nothing it names is
//! opened. Each resolved file must still lie inside the job's artifact folder (symlinks
//! resolved), or it is not served.

use crate::error::{job_row, not_found_error, ApiError};
use crate::App;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;
use sweep_core::protocol::WORKER_LOG;
use sweep_core::report::plot::class_colour;
use sweep_core::store::JobRow;

/// The job's folder and `path` inside it, both canonical; None if `path` is outside.
fn inside(row: &JobRow, path: &FsPath) -> Option<PathBuf> {
    let root = std::fs::canonicalize(row.artifact_dir.as_ref()?).ok()?;
    let file = std::fs::canonicalize(path).ok()?;
    (file.starts_with(&root) && file.is_file()).then_some(file)
}

/// `GET /api/jobs/{id}/artifacts/{n}`: the n-th artifact the store lists for the job.
pub(crate) async fn artifact(
    State(app): State<Arc<App>>,
    Path((id, n)): Path<(i64, usize)>,
) -> Result<Response, ApiError> {
    let row = job_row(&app, id).await?;
    let artifacts = app.store.artifacts(id).await?;
    let (_, path, _) = artifacts
        .get(n)
        .ok_or_else(|| not_found_error(format!("job {id} has no artifact {n}")))?;
    let file = inside(&row, FsPath::new(path))
        .ok_or_else(|| not_found_error(format!("artifact {n} of job {id} is not in its folder")))?;
    let bytes = tokio::fs::read(&file)
        .await
        .map_err(|e| not_found_error(format!("artifact {n} of job {id}: {e}")))?;
    Ok(([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response())
}

/// The job's saved predictions (`predictions/*.png`), sorted: index i is the i-th name.
pub(crate) fn prediction_names(row: &JobRow) -> Vec<String> {
    let Some(dir) = row
        .artifact_dir
        .as_ref()
        .map(|d| FsPath::new(d).join("predictions"))
    else {
        return Vec::new();
    };
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.ends_with(".png"))
        .collect();
    names.sort();
    names
}

#[derive(serde::Deserialize)]
pub(crate) struct ViewQuery {
    /// `prediction` (default), `image`, `truth` or `overlay`.
    view: Option<String>,
}

/// `GET /api/jobs/{id}/predictions/{i}?view=...`: the i-th prediction in colour, or the
/// validation image it was made for, its ground truth, or both over the image (truth
/// green, prediction red, both yellow). Image and truth come from the job's data set.
pub(crate) async fn prediction(
    State(app): State<Arc<App>>,
    Path((id, i)): Path<(i64, usize)>,
    axum::extract::Query(q): axum::extract::Query<ViewQuery>,
) -> Result<Response, ApiError> {
    let row = job_row(&app, id).await?;
    let names = prediction_names(&row);
    let name = names
        .get(i)
        .ok_or_else(|| not_found_error(format!("job {id} has no prediction {i}")))?
        .clone();
    let dir = FsPath::new(row.artifact_dir.as_deref().unwrap_or_default()).join("predictions");
    let file = inside(&row, &dir.join(&name)).ok_or_else(|| {
        not_found_error(format!("prediction {i} of job {id} is not in its folder"))
    })?;
    let view = q.view.unwrap_or_else(|| "prediction".into());
    let config = row.config_json.clone();
    let png = tokio::task::spawn_blocking(move || render(&file, &name, &config, &view))
        .await
        .map_err(|e| ApiError::from(anyhow::anyhow!("{e}")))??;
    Ok(([(header::CONTENT_TYPE, "image/png")], png).into_response())
}

fn render(file: &FsPath, name: &str, config: &str, view: &str) -> Result<Vec<u8>, ApiError> {
    use sweep_core::report::pictures::Pictures;
    let fail = |e: anyhow::Error| ApiError::from(e);
    let pictures = sweep_data::pictures::Overlays::new(&[]);
    let (pred, w, h) = pictures.prediction(file).map_err(fail)?;
    // The data set's own palette, when its description gives one and it is here.
    let palette = serde_json::from_str::<sweep_core::job::JobConfig>(config)
        .ok()
        .and_then(|c| sweep_core::dataset::DataSet::describe(&c.data.root).ok())
        .and_then(|d| d.palette);
    let classes = |px: &[u8]| -> Vec<u8> {
        px.iter()
            .flat_map(|&c| class_colour(usize::from(c), palette.as_deref()))
            .collect()
    };
    let rgb = match view {
        "prediction" => classes(&pred),
        "image" | "truth" | "overlay" => {
            let config: sweep_core::job::JobConfig = serde_json::from_str(config)
                .map_err(|e| fail(anyhow::anyhow!("the job's config: {e}")))?;
            let stem = name.trim_end_matches(".png");
            let (image, truth, iw, ih) = pictures.image(&config, stem).map_err(|e| {
                not_found_error(format!("the data set of this job is not here: {e:#}"))
            })?;
            if (iw, ih) != (w, h) {
                return Err(fail(anyhow::anyhow!(
                    "{stem}: prediction {w}x{h}, image {iw}x{ih}"
                )));
            }
            match view {
                "image" => image,
                "truth" => classes(&truth),
                _ => overlay(&image, &truth, &pred),
            }
        }
        other => {
            return Err(not_found_error(format!(
                "no view {other:?} (prediction, image, truth, overlay)"
            )))
        }
    };
    let img = image::RgbImage::from_raw(w as u32, h as u32, rgb)
        .ok_or_else(|| fail(anyhow::anyhow!("{name}: wrong pixel count")))?;
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png)
        .map_err(|e| fail(anyhow::anyhow!("encoding {name}: {e}")))?;
    Ok(out.into_inner())
}

/// The image with the foreground tinted: truth only green, prediction only red, both yellow.
fn overlay(image: &[u8], truth: &[u8], pred: &[u8]) -> Vec<u8> {
    let mut out = image.to_vec();
    for (i, px) in out.chunks_mut(3).enumerate() {
        let tint = match (truth[i] > 0, pred[i] > 0) {
            (true, true) => [255, 210, 0],
            (true, false) => [0, 200, 80],
            (false, true) => [230, 40, 40],
            (false, false) => continue,
        };
        for (c, t) in px.iter_mut().zip(tint) {
            *c = ((*c as u16 + 2 * t as u16) / 3) as u8;
        }
    }
    out
}

/// The last lines of the job's log (`worker.log` in its folder), at most 16 KiB.
pub(crate) fn log_tail(row: &JobRow) -> Option<String> {
    let path = FsPath::new(row.artifact_dir.as_ref()?).join(WORKER_LOG);
    let file = inside(row, &path)?;
    let text = std::fs::read(file).ok()?;
    let tail = &text[text.len().saturating_sub(16 * 1024)..];
    Some(String::from_utf8_lossy(tail).into_owned())
}

#[cfg(test)]
mod colour_tests {
    use sweep_core::report::plot::class_colour;

    #[test]
    fn every_class_has_its_own_colour_and_a_palette_wins() {
        let colours: Vec<[u8; 3]> = (0..12).map(|c| class_colour(c, None)).collect();
        for (i, a) in colours.iter().enumerate() {
            assert!(
                colours[i + 1..].iter().all(|b| b != a),
                "class {i}: {colours:?}"
            );
        }
        let palette = [[1, 2, 3], [4, 5, 6]];
        assert_eq!(class_colour(1, Some(&palette)), [4, 5, 6]);
        assert_eq!(class_colour(2, Some(&palette)), class_colour(2, None));
    }
}
