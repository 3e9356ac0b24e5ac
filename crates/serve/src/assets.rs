//! The page and everything it loads, embedded in the binary: no CDN, no network needed.
//! uPlot (MIT, 51 KB, `assets/uPlot.LICENSE`) draws the curves: a small library made for
//! time series, instead of a front-end framework; the rest is plain HTML and JavaScript.

use axum::extract::Path;
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};

const INDEX: &str = include_str!("../assets/index.html");

/// Served files by exact name: nothing else is reachable under `/assets/`.
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "app.js",
        "text/javascript",
        include_str!("../assets/app.js"),
    ),
    ("style.css", "text/css", include_str!("../assets/style.css")),
    (
        "uPlot.iife.min.js",
        "text/javascript",
        include_str!("../assets/uPlot.iife.min.js"),
    ),
    (
        "uPlot.min.css",
        "text/css",
        include_str!("../assets/uPlot.min.css"),
    ),
];

pub(crate) async fn index() -> Html<&'static str> {
    Html(INDEX)
}

pub(crate) async fn asset(Path(name): Path<String>) -> Response {
    match ASSETS.iter().find(|(n, _, _)| *n == name) {
        Some((_, mime, body)) => ([(header::CONTENT_TYPE, *mime)], *body).into_response(),
        None => (StatusCode::NOT_FOUND, "no such asset").into_response(),
    }
}
