//! `sweep serve`: a web dashboard of the results store, read-only and safe by default.
//!
//! - [`guard`]: who may ask (loopback by default; a token and a Host check otherwise).
//! - [`api`]: the JSON the page reads (sweeps, leaderboard = `sweep report`'s rows, jobs,
//!   curves, a cheap change token for live updates).
//! - [`swept`]: which config keys a sweep varies (the page's metric-against-a-key).
//! - [`files`]: artifacts and predictions, by job id and artifact id only.
//! - [`assets`]: the page, its script and uPlot, embedded (works with no network).
//! - [`bench`]: `sweep bench serve` (a large sweep's page load; serving beside a run).

mod api;
mod assets;
pub mod bench;
mod error;
mod files;
mod guard;
mod swept;

use anyhow::{Context, Result};
use axum::routing::get;
use axum::Router;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use sweep_core::store::{DbLocation, SqlStore, Store};

pub use guard::Access;

/// What `sweep serve` was asked for.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    pub db: DbLocation,
    pub bind: IpAddr,
    /// 0: any free port.
    pub port: u16,
    /// Required of every request when set (always set when `bind` is not loopback).
    pub token: Option<String>,
    /// Host names accepted besides localhost, the loopback addresses and `bind` itself.
    pub allow_hosts: Vec<String>,
}

/// What every handler shares.
pub(crate) struct App {
    pub store: Arc<dyn Store>,
    pub access: Access,
}

/// A bound server, not yet serving: its address and its URL (with the token, if any).
pub struct Server {
    listener: tokio::net::TcpListener,
    router: Router,
    pub addr: SocketAddr,
    pub url: String,
}

impl Server {
    /// Opens the store read-only and binds the port. A non-loopback address without a
    /// token gets a random one (printed once in the URL, as Jupyter does).
    pub async fn bind(opts: &ServeOptions) -> Result<Server> {
        let store: Arc<dyn Store> = Arc::new(SqlStore::open_read_only(&opts.db).await?);
        let token = match (&opts.token, opts.bind.is_loopback()) {
            (Some(t), _) => Some(t.clone()),
            (None, true) => None,
            (None, false) => Some(hex::encode(rand::random::<[u8; 24]>())),
        };
        let listener = tokio::net::TcpListener::bind((opts.bind, opts.port))
            .await
            .with_context(|| format!("cannot listen on {}:{}", opts.bind, opts.port))?;
        let addr = listener.local_addr()?;
        let access = Access::new(addr, token.clone(), &opts.allow_hosts);
        let app = Arc::new(App { store, access });
        let host = match addr.ip() {
            ip if ip.is_unspecified() || ip.is_loopback() => "127.0.0.1".to_string(),
            IpAddr::V6(ip) => format!("[{ip}]"),
            ip => ip.to_string(),
        };
        let url = match &token {
            Some(t) => format!("http://{host}:{}/?token={t}", addr.port()),
            None => format!("http://{host}:{}/", addr.port()),
        };
        Ok(Server {
            listener,
            router: router(app),
            addr,
            url,
        })
    }

    /// Serves until the process ends.
    pub async fn run(self) -> Result<()> {
        axum::serve(self.listener, self.router)
            .await
            .context("serving the dashboard")
    }
}

fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/", get(assets::index))
        .route("/assets/{name}", get(assets::asset))
        .route("/api/sweeps", get(api::sweeps))
        .route("/api/sweeps/{name}/leaderboard", get(api::leaderboard))
        .route("/api/sweeps/{name}/jobs", get(api::sweep_jobs))
        .route("/api/sweeps/{name}/swept", get(api::swept))
        .route("/api/sweeps/{name}/search", get(api::search))
        .route("/api/jobs/{id}", get(api::job))
        .route("/api/jobs/{id}/curve", get(api::curve))
        .route("/api/jobs/{id}/artifacts/{artifact}", get(files::artifact))
        .route("/api/jobs/{id}/predictions/{index}", get(files::prediction))
        .route("/api/changes", get(api::changes))
        .fallback(error::not_found)
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            guard::check,
        ))
        .with_state(app)
}
