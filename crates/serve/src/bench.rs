//! `sweep bench serve`: how long the dashboard takes to answer a large sweep's page, and
//! whether serving slows a sweep that runs at the same time.

use crate::{ServeOptions, Server};
use anyhow::{Context, Result};
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};
use sweep_core::protocol::MetricValue;
use sweep_core::store::{self, CurvePoint, Finish, NewJob, Owner};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Fills `db` with one sweep of `jobs` finished jobs, each with a `points`-point curve and
/// the four summary metrics, over a grid of learning rate, crop and seed.
pub async fn make_large_sweep(db: &Path, jobs: usize, points: usize) -> Result<()> {
    let store = store::open(db).await?;
    let sweep = store
        .upsert_sweep("large", "large.yaml", "name: large\n")
        .await?;
    let new: Vec<NewJob> = (0..jobs)
        .map(|i| {
            let (lr, crop, seed) = (0.001 * (1 + i % 10) as f64, 64 + 32 * (i / 10 % 5), i / 50);
            NewJob {
                hash: format!("{i:016x}"),
                stage: None,
                label: format!("UNet, lr {lr:.3}, crop {crop}"),
                config_json: format!(
                    r#"{{"iters": {points}, "seed": {seed}, "crop": {crop}, "optimizer": {{"lr": {lr}}}}}"#
                ),
                seed: seed as u64,
                depends_on: None,
                continues: false,
                classes: Vec::new(),
            }
        })
        .collect();
    store.add_jobs(sweep, &new, 1).await?;
    let me = Owner::current();
    while let Some(c) = store.claim_next(sweep, &me).await? {
        let f = c.fence(&me);
        let curve: Vec<CurvePoint> = (1..=points)
            .map(|it| CurvePoint {
                iteration: it,
                loss: 1.0 / it as f64,
                lr: 0.01,
                secs: 0.1,
            })
            .collect();
        store.record_curve(&f, &curve).await?;
        let base = 40.0 + (c.id % 97) as f64 / 4.0;
        let metrics = ["mDice", "mAcc", "mIoU", "mFscore"]
            .iter()
            .enumerate()
            .map(|(k, name)| MetricValue {
                split: "val".into(),
                name: name.to_string(),
                class: None,
                value: base + k as f64,
            })
            .collect();
        let done = Finish::Succeeded {
            metrics,
            images: Vec::new(),
            iterations: points,
            sweep_version: None,
            data: None,
        };
        store.finish(&f, done).await?;
    }
    store.close().await;
    Ok(())
}

/// Wall time of the requests the sweep page makes, in order (the page, its script, the
/// leaderboard, the jobs, the swept keys), and the bytes they carried.
pub async fn load_sweep_page(addr: SocketAddr, sweep: &str) -> Result<(Duration, usize)> {
    let t = Instant::now();
    let mut bytes = 0;
    for path in [
        "/".to_string(),
        "/assets/app.js".into(),
        "/assets/uPlot.iife.min.js".into(),
        format!("/api/sweeps/{sweep}/leaderboard"),
        format!("/api/sweeps/{sweep}/jobs"),
        format!("/api/sweeps/{sweep}/swept"),
        "/api/changes".into(),
    ] {
        bytes += get(addr, &path).await?;
    }
    Ok((t.elapsed(), bytes))
}

/// One GET; the body's length (a non-200 answer is an error).
pub async fn get(addr: SocketAddr, path: &str) -> Result<usize> {
    let mut conn = tokio::net::TcpStream::connect(addr).await?;
    let req = format!(
        "GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{}\r\n\r\n",
        addr.port()
    );
    conn.write_all(req.as_bytes()).await?;
    let mut raw = Vec::new();
    conn.read_to_end(&mut raw).await?;
    let head = String::from_utf8_lossy(&raw[..raw.len().min(12)]).into_owned();
    anyhow::ensure!(head.contains(" 200"), "GET {path}: {head}");
    Ok(raw.len())
}

/// Starts a dashboard on `db` (loopback, any port).
pub async fn start(db: &Path) -> Result<SocketAddr> {
    let opts = ServeOptions {
        db: db.into(),
        bind: "127.0.0.1".parse()?,
        port: 0,
        token: None,
        allow_hosts: Vec::new(),
    };
    let server = Server::bind(&opts)
        .await
        .context("starting the dashboard")?;
    let addr = server.addr;
    tokio::spawn(server.run());
    Ok(addr)
}

/// Polls the dashboard as an open page does (every `every`), until `stop` is set.
pub async fn poll_like_a_page(
    addr: SocketAddr,
    sweep: String,
    every: Duration,
    stop: tokio::sync::watch::Receiver<bool>,
) -> Result<usize> {
    let mut polls = 0;
    while !*stop.borrow() {
        get(addr, "/api/changes").await?;
        get(addr, "/api/sweeps").await?;
        // The sweep's rows, once its jobs are registered.
        let _ = get(addr, &format!("/api/sweeps/{sweep}/jobs")).await;
        polls += 1;
        tokio::time::sleep(every).await;
    }
    Ok(polls)
}
