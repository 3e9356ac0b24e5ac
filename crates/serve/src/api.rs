//! The JSON the page reads. Every handler is a read; ids come from the path and are looked
//! up in the store, never used as paths.

use crate::error::{job_row, not_found_error, ApiError};
use crate::App;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;
use sweep_core::report::{self, Format, ReportOptions};
use sweep_core::store::{now_ms, JobRow};

type ApiResult = Result<Json<Value>, ApiError>;

/// Every sweep with its job counts by state, progress and the time it last changed.
pub(crate) async fn sweeps(State(app): State<Arc<App>>) -> ApiResult {
    let mut out = Vec::new();
    for s in app.store.sweeps().await? {
        let counts = app.store.counts(s.id).await?;
        let done: usize = counts
            .iter()
            .filter(|(st, _)| st.is_finished())
            .map(|(_, n)| n)
            .sum();
        let by_state: serde_json::Map<String, Value> = counts
            .iter()
            .map(|(st, n)| (st.as_str().to_string(), json!(n)))
            .collect();
        out.push(json!({
            "name": s.name,
            "spec_path": s.spec_path,
            "description": description(&app, s.id).await,
            "jobs": s.jobs,
            "done": done,
            "counts": by_state,
            "created_at": s.created_at,
            "updated_at": s.updated_at,
        }));
    }
    Ok(Json(json!(out)))
}

/// The sweep file's `description:` (from the text stored with the sweep).
async fn description(app: &App, sweep_id: i64) -> Option<String> {
    let text = app.store.spec_text(sweep_id).await.ok()??;
    let doc: serde_yaml::Value = serde_yaml::from_str(&text).ok()?;
    doc.get("description")?.as_str().map(str::to_string)
}

#[derive(Deserialize)]
pub(crate) struct BoardQuery {
    sort: Option<String>,
    #[serde(default)]
    asc: bool,
    #[serde(default)]
    all: bool,
}

/// The leaderboard: exactly `sweep report --sweep NAME --format json`.
pub(crate) async fn leaderboard(
    State(app): State<Arc<App>>,
    Path(name): Path<String>,
    Query(q): Query<BoardQuery>,
) -> Result<Response, ApiError> {
    let opts = ReportOptions {
        sweep: Some(name),
        sort: q.sort.unwrap_or_else(|| "mDice".into()),
        asc: q.asc,
        all: q.all,
        format: Format::Json,
        ..ReportOptions::default()
    };
    let text = report::report(app.store.as_ref(), &opts).await?;
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        text,
    )
        .into_response())
}

/// One line per job: what the status view and the live rows need.
pub(crate) async fn sweep_jobs(State(app): State<Arc<App>>, Path(name): Path<String>) -> ApiResult {
    let rows = app.store.report_rows(Some(&name)).await?;
    let sweep_id = app
        .store
        .sweep_id(&name)
        .await?
        .ok_or_else(|| not_found_error(format!("no sweep {name:?}")))?;
    let running = app.store.running(sweep_id).await?;
    let now = now_ms();
    let jobs: Vec<Value> = rows
        .iter()
        .filter(|r| !r.retired)
        .map(|r| {
            let live = running.iter().find(|j| j.id == r.job_id);
            let node = live
                .and_then(|j| j.owner.as_deref())
                .and_then(sweep_core::store::Owner::parse)
                .map(|o| o.host);
            let eta = live.and_then(|j| eta_secs(j.started_at, j.iteration, j.total_iters, now));
            json!({
                "id": r.job_id,
                "hash": r.hash,
                "label": r.label,
                "seed": r.seed,
                "status": r.status.as_str(),
                "attempts": r.attempts,
                "iteration": live.map(|j| j.iteration).unwrap_or(r.iteration),
                "total_iters": r.total_iters,
                "node": node,
                "slurm_job": live.and_then(|j| j.slurm_job.clone()),
                "eta_s": eta,
                "mDice": main_metric(r, "mDice"),
                "reason": r.reason(),
            })
        })
        .collect();
    Ok(Json(json!(jobs)))
}

/// The numeric config keys the sweep varies, most varied first, and the stage they were
/// read from (null: the sweep's own rows): the page's "metric against a swept key".
pub(crate) async fn swept(State(app): State<Arc<App>>, Path(name): Path<String>) -> ApiResult {
    app.store
        .sweep_id(&name)
        .await?
        .ok_or_else(|| not_found_error(format!("no sweep {name:?}")))?;
    let rows = app.store.report_rows(Some(&name)).await?;
    let jobs: Vec<(Option<String>, Value)> = rows
        .iter()
        // External rows (`sweep evaluate`) have no model config to sweep over.
        .filter(|r| !r.retired && r.external.is_none())
        .filter_map(|r| Some((r.stage.clone(), serde_json::from_str(&r.config_json).ok()?)))
        .collect();
    let (stage, keys) = crate::swept::swept_keys(&jobs);
    Ok(Json(json!({ "stage": stage, "keys": keys })))
}

/// An adaptive search's state: the status line, the rung correlations and the trials it
/// stopped (rung, value, the rule's evidence); `{"search": null}` for a grid.
pub(crate) async fn search(State(app): State<Arc<App>>, Path(name): Path<String>) -> ApiResult {
    let id = app
        .store
        .sweep_id(&name)
        .await?
        .ok_or_else(|| not_found_error(format!("no sweep {name:?}")))?;
    let log = app.store.search_log(id).await?;
    let Some(summary) = report::replay::summary(&name, &log) else {
        return Ok(Json(json!({ "search": null })));
    };
    let metric = log.state().policy().map(|p| p.goal.key());
    Ok(Json(json!({ "search": {
        "summary": summary,
        "metric": metric,
        "correlations": report::replay::rung_correlations(&log),
        "stopped": report::stopped::stopped_trials(&log),
    }})))
}

fn eta_secs(started: Option<i64>, it: usize, total: Option<usize>, now: i64) -> Option<f64> {
    let (started, total) = (started?, total?);
    if it == 0 || it >= total {
        return None;
    }
    let elapsed = (now - started).max(0) as f64 / 1e3;
    Some(elapsed / it as f64 * (total - it) as f64)
}

fn main_metric(r: &JobRow, name: &str) -> Option<f64> {
    r.metrics
        .iter()
        .find(|m| m.name == name && m.class.is_none() && m.split == "val")
        .map(|m| m.value)
        .filter(|v| v.is_finite())
}

/// A job in full: config, status, attempts, metrics, artifacts (by id), predictions (by
/// index), per-image rows, and the tail of its log.
pub(crate) async fn job(State(app): State<Arc<App>>, Path(id): Path<i64>) -> ApiResult {
    let row = job_row(&app, id).await?;
    let attempts = app.store.attempts(id).await?;
    let artifacts: Vec<Value> = app
        .store
        .artifacts(id)
        .await?
        .into_iter()
        .enumerate()
        .map(|(i, (kind, path, iteration))| {
            let name = std::path::Path::new(&path)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned());
            json!({ "id": i, "kind": kind, "name": name, "iteration": iteration })
        })
        .collect();
    let predictions = crate::files::prediction_names(&row);
    let metrics: Vec<Value> = row
        .metrics
        .iter()
        .map(|m| json!({"split": m.split, "name": m.name, "class": m.class, "value": finite(m.value)}))
        .collect();
    let images = app.store.image_metrics(id).await?;
    let config: Value = serde_json::from_str(&row.config_json).unwrap_or(Value::Null);
    Ok(Json(json!({
        "id": row.job_id,
        "sweep": row.sweep,
        "hash": row.hash,
        "label": row.label,
        "stage": row.stage,
        "seed": row.seed,
        "status": row.status.as_str(),
        "finished": row.status.is_finished(),
        "classes": row.classes,
        "attempts": attempts,
        "iteration": row.iteration,
        "total_iters": row.total_iters,
        "error": row.error,
        "config_yaml": serde_yaml::to_string(&config).unwrap_or_default(),
        "metrics": metrics,
        "images": images,
        "artifacts": artifacts,
        "predictions": predictions,
        "log_tail": crate::files::log_tail(&row),
        "sweep_version": row.sweep_version,
        "external": row.external,
    })))
}

fn finite(v: f64) -> Option<f64> {
    v.is_finite().then_some(v)
}

/// A job's training curve and validation curve.
pub(crate) async fn curve(State(app): State<Arc<App>>, Path(id): Path<i64>) -> ApiResult {
    job_row(&app, id).await?;
    let points = app.store.curve(id).await?;
    let eval = app.store.eval_curve(id).await?;
    let iteration: Vec<usize> = points.iter().map(|p| p.iteration).collect();
    let loss: Vec<Option<f64>> = points.iter().map(|p| finite(p.loss)).collect();
    let eval: Vec<Value> = eval
        .iter()
        .filter(|(_, m)| m.class.is_none())
        .map(|(it, m)| json!({"iteration": it, "name": m.name, "value": finite(m.value)}))
        .collect();
    Ok(Json(
        json!({ "iteration": iteration, "loss": loss, "eval": eval }),
    ))
}

/// A token that changes whenever the store does: the page polls it and reloads on change.
pub(crate) async fn changes(State(app): State<Arc<App>>) -> ApiResult {
    Ok(Json(json!({ "token": app.store.change_token().await? })))
}
