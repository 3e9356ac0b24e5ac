//! Files of a job, by id only. The path of an artifact comes from the store (looked up by
//! job id and the artifact's index), a prediction from the server's own listing of the job's
//! `predictions/` folder (by index); whatever the request's bytes, nothing it names is
//! opened. Each resolved file must still lie inside the job's artifact folder (symlinks
//! resolved), or it is not served.

use crate::api::{not_found_error, ApiError};
use crate::App;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;
use sweep_core::protocol::WORKER_LOG;
use sweep_core::store::JobRow;

/// The job's folder and `path` inside it, both canonical; None if `path` is outside.
fn inside(row: &JobRow, path: &FsPath) -> Option<PathBuf> {
    let root = std::fs::canonicalize(row.artifact_dir.as_ref()?).ok()?;
    let file = std::fs::canonicalize(path).ok()?;
    (file.starts_with(&root) && file.is_file()).then_some(file)
}

async fn job_row(app: &App, id: i64) -> Result<JobRow, ApiError> {
    let row = app.store.find_job(&id.to_string()).await?;
    if row.job_id != id {
        return Err(not_found_error(format!("no job {id}")));
    }
    Ok(row)
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

/// `GET /api/jobs/{id}/predictions/{i}`: the i-th prediction, its classes in colour (the
/// file holds class indices, which would look black).
pub(crate) async fn prediction(
    State(app): State<Arc<App>>,
    Path((id, i)): Path<(i64, usize)>,
) -> Result<Response, ApiError> {
    let row = job_row(&app, id).await?;
    let names = prediction_names(&row);
    let name = names
        .get(i)
        .ok_or_else(|| not_found_error(format!("job {id} has no prediction {i}")))?;
    let dir = FsPath::new(row.artifact_dir.as_deref().unwrap_or_default()).join("predictions");
    let file = inside(&row, &dir.join(name)).ok_or_else(|| {
        not_found_error(format!("prediction {i} of job {id} is not in its folder"))
    })?;
    let png = tokio::task::spawn_blocking(move || colourise(&file))
        .await
        .map_err(|e| ApiError::from(anyhow::anyhow!("{e}")))??;
    Ok(([(header::CONTENT_TYPE, "image/png")], png).into_response())
}

/// Class indices to colours: background dark, class 1 red, class 2 green, 3 blue, ...
fn colourise(file: &FsPath) -> Result<Vec<u8>, ApiError> {
    const COLOURS: [[u8; 3]; 5] = [
        [20, 20, 20],
        [230, 57, 70],
        [42, 157, 143],
        [69, 123, 157],
        [233, 196, 106],
    ];
    let img = image::open(file)
        .map_err(|e| ApiError::from(anyhow::anyhow!("reading {}: {e}", file.display())))?
        .to_luma8();
    let rgb = image::RgbImage::from_fn(img.width(), img.height(), |x, y| {
        let class = img.get_pixel(x, y).0[0] as usize;
        image::Rgb(COLOURS[class.min(COLOURS.len() - 1)])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    rgb.write_to(&mut out, image::ImageFormat::Png)
        .map_err(|e| ApiError::from(anyhow::anyhow!("encoding a prediction: {e}")))?;
    Ok(out.into_inner())
}

/// The last lines of the job's log (`worker.log` in its folder), at most 16 KiB.
pub(crate) fn log_tail(row: &JobRow) -> Option<String> {
    let path = FsPath::new(row.artifact_dir.as_ref()?).join(WORKER_LOG);
    let file = inside(row, &path)?;
    let text = std::fs::read(file).ok()?;
    let tail = &text[text.len().saturating_sub(16 * 1024)..];
    Some(String::from_utf8_lossy(tail).into_owned())
}
