//! What an evaluation leaves besides its summary: per-image results and the validation curve.

use super::{batch, f64_or_nan, OptF64, SqlStore, Tx};
use crate::metrics::surface::Presence;
use crate::protocol::{ImageMetric, MetricValue};
use crate::store::Fence;
use anyhow::{Context, Result};
use sqlx::FromRow;

/// (iteration, split, name, class, value) of `eval_curves`.
type EvalRecord = (i64, String, String, Option<i64>, Option<f64>);

#[derive(FromRow)]
struct ImageRecord {
    split: String,
    image: String,
    class: i64,
    intersection: i64,
    pred: i64,
    label: i64,
    dice: Option<f64>,
    hd95: Option<f64>,
    assd: Option<f64>,
    presence: Option<String>,
    unit: String,
}

impl ImageRecord {
    fn into_metric(self) -> Result<ImageMetric> {
        let presence = match self.presence {
            Some(p) => Some(
                serde_json::from_value::<Presence>(serde_json::Value::String(p.clone()))
                    .with_context(|| format!("image {}: unknown presence {p:?}", self.image))?,
            ),
            None => None,
        };
        Ok(ImageMetric {
            split: self.split,
            image: self.image,
            class: self.class.max(0) as usize,
            intersect: self.intersection.max(0) as u64,
            pred: self.pred.max(0) as u64,
            label: self.label.max(0) as u64,
            dice: self.dice,
            hd95: self.hd95,
            assd: self.assd,
            presence,
            unit: self.unit,
        })
    }
}

fn presence_str(p: &Presence) -> Result<String> {
    match serde_json::to_value(p)? {
        serde_json::Value::String(s) => Ok(s),
        other => anyhow::bail!("presence serialised as {other}"),
    }
}

impl SqlStore {
    /// Replaces a job's per-image rows (inside the transaction that records its result).
    pub(super) async fn insert_images(
        tx: &mut Tx,
        job_id: i64,
        images: &[ImageMetric],
    ) -> Result<()> {
        sqlx::query("DELETE FROM image_metrics WHERE job_id = $1")
            .bind(job_id)
            .execute(&mut **tx)
            .await?;
        for chunk in images.chunks(batch::rows_per_statement(12)) {
            let sql = format!(
                "INSERT INTO image_metrics (job_id, split, image, class, intersection, pred, label,
                     dice, hd95, assd, presence, unit) VALUES {}",
                batch::values_rows(chunk.len(), 12, 1)
            );
            let mut q = sqlx::query(&sql);
            for m in chunk {
                let presence = m.presence.as_ref().map(presence_str).transpose()?;
                q = q
                    .bind(job_id)
                    .bind(&m.split)
                    .bind(&m.image)
                    .bind(m.class as i64)
                    .bind(m.intersect as i64)
                    .bind(m.pred as i64)
                    .bind(m.label as i64)
                    .bind(OptF64(m.dice))
                    .bind(OptF64(m.hd95))
                    .bind(OptF64(m.assd))
                    .bind(presence)
                    .bind(&m.unit);
            }
            q.execute(&mut **tx)
                .await
                .with_context(|| format!("recording the per-image results of job {job_id}"))?;
        }
        Ok(())
    }

    pub(super) async fn read_images(&self, job_id: i64) -> Result<Vec<ImageMetric>> {
        let rows: Vec<ImageRecord> = sqlx::query_as(
            "SELECT split, image, class, intersection, pred, label, dice, hd95, assd, presence, unit
             FROM image_metrics WHERE job_id = $1 ORDER BY split, image, class",
        )
        .bind(job_id)
        .fetch_all(&self.pool)
        .await
        .map_err(self.query_error(format!("reading the per-image results of job {job_id}")))?;
        rows.into_iter().map(ImageRecord::into_metric).collect()
    }

    pub(super) async fn write_eval(
        &self,
        fence: &Fence,
        iteration: usize,
        values: &[MetricValue],
    ) -> Result<()> {
        let mut tx = self.begin().await?;
        self.hold_fence(&mut tx, fence).await?;
        Self::insert_eval(&mut tx, fence.job_id, iteration, values).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Replaces one iteration's validation rows of a job.
    pub(super) async fn insert_eval(
        tx: &mut Tx,
        job_id: i64,
        iteration: usize,
        values: &[MetricValue],
    ) -> Result<()> {
        sqlx::query("DELETE FROM eval_curves WHERE job_id = $1 AND iteration = $2")
            .bind(job_id)
            .bind(iteration as i64)
            .execute(&mut **tx)
            .await?;
        Self::insert_metric_rows(tx, job_id, Some(iteration), values)
            .await
            .with_context(|| format!("recording the validation curve of job {job_id}"))?;
        Ok(())
    }

    pub(super) async fn read_eval(&self, job_id: i64) -> Result<Vec<(usize, MetricValue)>> {
        let rows: Vec<EvalRecord> = sqlx::query_as(
            "SELECT iteration, split, name, class, value FROM eval_curves WHERE job_id = $1
             ORDER BY iteration, split, name, class",
        )
        .bind(job_id)
        .fetch_all(&self.pool)
        .await
        .map_err(self.query_error(format!("reading the validation curve of job {job_id}")))?;
        Ok(rows
            .into_iter()
            .map(|(it, split, name, class, value)| {
                let metric = MetricValue {
                    split,
                    name,
                    class: class.map(|c| c.max(0) as usize),
                    value: f64_or_nan(value),
                };
                (it.max(0) as usize, metric)
            })
            .collect())
    }
}
