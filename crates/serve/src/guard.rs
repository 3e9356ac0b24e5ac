//! Who may ask: every request must name an accepted Host (a page on another site that
//! rebinds its DNS name to 127.0.0.1 still sends its own name, and is refused), and, when
//! the server has a token, carry it: `?token=` (which also sets a cookie, so the page's own
//! requests carry it), the `sweep_token` cookie, or `Authorization: Bearer`.

use crate::App;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::net::SocketAddr;
use std::sync::Arc;

const COOKIE: &str = "sweep_token";

/// The accepted Host names and the token.
#[derive(Clone, Debug)]
pub struct Access {
    hosts: Vec<String>,
    token: Option<String>,
}

impl Access {
    pub fn new(addr: SocketAddr, token: Option<String>, extra_hosts: &[String]) -> Access {
        let mut hosts: Vec<String> = ["localhost", "127.0.0.1", "[::1]"]
            .iter()
            .map(|h| h.to_string())
            .collect();
        if !addr.ip().is_unspecified() {
            hosts.push(match addr.ip() {
                std::net::IpAddr::V6(ip) => format!("[{ip}]"),
                ip => ip.to_string(),
            });
        }
        hosts.extend(extra_hosts.iter().map(|h| h.to_ascii_lowercase()));
        Access { hosts, token }
    }

    /// `Host: name[:port]`, the name one of ours.
    fn host_ok(&self, host: Option<&HeaderValue>) -> bool {
        let Some(host) = host.and_then(|h| h.to_str().ok()) else {
            return false;
        };
        let host = host.to_ascii_lowercase();
        let name = match host.rsplit_once(':') {
            Some((name, port))
                if !name.ends_with(':') && port.chars().all(|c| c.is_ascii_digit()) =>
            {
                name
            }
            _ => host.as_str(),
        };
        self.hosts.iter().any(|h| h == name)
    }

    /// The token the request carries, if it is the right one; `from_query` when it came in
    /// the URL (the response then sets the cookie).
    fn token_ok(&self, req: &Request) -> (bool, bool) {
        let Some(expected) = &self.token else {
            return (true, false);
        };
        let query = req.uri().query().unwrap_or("");
        let in_query = query
            .split('&')
            .filter_map(|kv| kv.split_once('='))
            .any(|(k, v)| k == "token" && constant_time_eq(v, expected));
        if in_query {
            return (true, true);
        }
        let headers = req.headers();
        let bearer = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .is_some_and(|t| constant_time_eq(t, expected));
        let cookie = headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|kv| kv.trim().split_once('='))
            .any(|(k, v)| k == COOKIE && constant_time_eq(v, expected));
        (bearer || cookie, false)
    }
}

/// Compares without stopping at the first difference (the token is a secret).
fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

pub(crate) async fn check(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    if !app.access.host_ok(req.headers().get(header::HOST)) {
        return refuse(
            StatusCode::FORBIDDEN,
            "unknown Host header (see `sweep serve --allow-host`)",
        );
    }
    let (ok, from_query) = app.access.token_ok(&req);
    if !ok {
        return refuse(
            StatusCode::UNAUTHORIZED,
            "this dashboard needs its token: open the URL `sweep serve` printed",
        );
    }
    let mut response = next.run(req).await;
    if from_query {
        if let Some(token) = &app.access.token {
            let cookie = format!("{COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/");
            if let Ok(v) = HeaderValue::from_str(&cookie) {
                response.headers_mut().insert(header::SET_COOKIE, v);
            }
        }
    }
    response
}

fn refuse(status: StatusCode, why: &'static str) -> Response {
    (status, Body::from(why)).into_response()
}
