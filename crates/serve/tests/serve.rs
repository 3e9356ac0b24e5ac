//! `sweep serve` over real HTTP on a random loopback port: every page and endpoint, 404s,
//! path traversal in every encoding, the Host check and the token. Requests are written by
//! hand (not by an HTTP client that would normalise `..` away before sending).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use sweep_core::protocol::MetricValue;
use sweep_core::store::{self, CurvePoint, Finish, NewJob, Owner, Store};
use sweep_serve::{ServeOptions, Server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const SECRET: &str = "TOP-SECRET-OUTSIDE-THE-ARTIFACT-FOLDER";

/// A results database with one finished job (metrics, curve, a checkpoint, a prediction),
/// one pending job, an artifact row pointing outside the job's folder, and a secret file
/// beside the folder.
struct Fixture {
    dir: tempfile::TempDir,
    db: PathBuf,
    checkpoint: Vec<u8>,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("sweep.db");
    let store = store::open(&db).await.unwrap();
    let sweep = store
        .upsert_sweep(
            "demo",
            "demo.yaml",
            "name: demo\ndescription: a test sweep\n",
        )
        .await
        .unwrap();
    let job = |i: u64| NewJob {
        hash: format!("{i:016x}"),
        stage: None,
        label: format!("UNet {i}"),
        // Two crops: the sweep's one swept key.
        config_json: format!(r#"{{"iters": 10, "seed": {i}, "crop": {}}}"#, 32 + 32 * i),
        seed: i,
        depends_on: None,
        continues: false,
        classes: Vec::new(),
    };
    store.add_jobs(sweep, &[job(1), job(2)], 2).await.unwrap();
    let me = Owner::current();
    let c = store.claim_next(sweep, &me).await.unwrap().unwrap();
    let f = c.fence(&me);
    let folder = dir.path().join("runs/demo").join(&c.hash);
    std::fs::create_dir_all(folder.join("predictions")).unwrap();
    std::fs::write(dir.path().join("runs/secret.txt"), SECRET).unwrap();
    std::fs::write(dir.path().join("runs/demo/secret.txt"), SECRET).unwrap();
    let checkpoint = b"checkpoint bytes".to_vec();
    std::fs::write(folder.join("checkpoint.ckpt"), &checkpoint).unwrap();
    std::fs::write(folder.join("worker.log"), "step 10 done\n").unwrap();
    image::GrayImage::from_fn(8, 8, |x, _| image::Luma([(x > 3) as u8]))
        .save(folder.join("predictions/img_1.png"))
        .unwrap();
    store
        .set_artifact_dir(&f, &folder.display().to_string())
        .await
        .unwrap();
    let points: Vec<CurvePoint> = (1..=10)
        .map(|i| CurvePoint {
            iteration: i,
            loss: 1.0 / i as f64,
            lr: 0.01,
            secs: 0.1,
        })
        .collect();
    store.record_curve(&f, &points).await.unwrap();
    let ckpt = folder.join("checkpoint.ckpt").display().to_string();
    store
        .record_artifact(&f, "checkpoint", &ckpt, Some(10))
        .await
        .unwrap();
    // A row that points outside the job's folder (a tampered or foreign database).
    let outside = dir.path().join("runs/secret.txt").display().to_string();
    store
        .record_artifact(&f, "checkpoint", &outside, Some(10))
        .await
        .unwrap();
    let metric = |name: &str, v: f64| MetricValue {
        split: "val".into(),
        name: name.into(),
        class: None,
        value: v,
    };
    let done = Finish::Succeeded {
        metrics: vec![metric("mDice", 61.5), metric("mIoU", 55.0)],
        images: Vec::new(),
        iterations: 10,
        sweep_version: None,
        data: None,
    };
    store.finish(&f, done).await.unwrap();
    store.close().await;
    Fixture {
        dir,
        db,
        checkpoint,
    }
}

async fn start(db: &Path, bind: &str, token: Option<&str>) -> (SocketAddr, String) {
    let opts = ServeOptions {
        db: db.into(),
        bind: bind.parse().unwrap(),
        port: 0,
        token: token.map(str::to_string),
        allow_hosts: Vec::new(),
    };
    let server = Server::bind(&opts).await.unwrap();
    let (addr, url) = (server.addr, server.url.clone());
    tokio::spawn(server.run());
    (addr, url)
}

struct Reply {
    status: u16,
    headers: String,
    body: Vec<u8>,
}

impl Reply {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.text()))
    }
}

/// One HTTP/1.0 request, the target sent exactly as given.
async fn request(addr: SocketAddr, target: &[u8], host: &str, extra: &str) -> Reply {
    let port = addr.port();
    let mut conn = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let mut req = b"GET ".to_vec();
    req.extend_from_slice(target);
    req.extend_from_slice(format!(" HTTP/1.0\r\nHost: {host}\r\n{extra}\r\n").as_bytes());
    conn.write_all(&req).await.unwrap();
    let mut raw = Vec::new();
    conn.read_to_end(&mut raw).await.unwrap();
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| i + 4)
        .unwrap_or(raw.len());
    let headers = String::from_utf8_lossy(&raw[..split]).into_owned();
    let status = headers
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Reply {
        status,
        headers,
        body: raw[split..].to_vec(),
    }
}

async fn get(addr: SocketAddr, path: &str) -> Reply {
    request(
        addr,
        path.as_bytes(),
        &format!("127.0.0.1:{}", addr.port()),
        "",
    )
    .await
}

#[tokio::test]
async fn every_page_and_endpoint_answers_from_the_store() {
    let fx = fixture().await;
    let (addr, url) = start(&fx.db, "127.0.0.1", None).await;
    assert_eq!(url, format!("http://127.0.0.1:{}/", addr.port()));
    let page = get(addr, "/").await;
    assert_eq!(page.status, 200);
    assert!(page.text().contains("/assets/app.js"));
    for asset in ["app.js", "style.css", "uPlot.iife.min.js", "uPlot.min.css"] {
        assert_eq!(
            get(addr, &format!("/assets/{asset}")).await.status,
            200,
            "{asset}"
        );
    }
    let sweeps = get(addr, "/api/sweeps").await.json();
    assert_eq!(sweeps[0]["name"], "demo");
    assert_eq!(sweeps[0]["description"], "a test sweep");
    assert_eq!(
        (sweeps[0]["jobs"].as_u64(), sweeps[0]["done"].as_u64()),
        (Some(2), Some(1))
    );

    // The leaderboard is `sweep report --format json`, byte for byte.
    let board = get(addr, "/api/sweeps/demo/leaderboard").await;
    let store = store::open(&fx.db).await.unwrap();
    let opts = sweep_core::report::ReportOptions {
        sweep: Some("demo".into()),
        format: sweep_core::report::Format::Json,
        ..Default::default()
    };
    let expected = sweep_core::report::report(store.as_ref(), &opts)
        .await
        .unwrap();
    assert_eq!(board.text(), expected);

    let jobs = get(addr, "/api/sweeps/demo/jobs").await.json();
    assert_eq!(jobs.as_array().unwrap().len(), 2);
    assert_eq!(jobs[0]["status"], "succeeded");
    assert_eq!(jobs[0]["mDice"], 61.5);
    let swept = get(addr, "/api/sweeps/demo/swept").await.json();
    assert_eq!(
        swept,
        serde_json::json!({"stage": null, "keys": [{"key": "crop", "values": 2}]}),
        "the swept key, not the seed or the constant iters"
    );
    let search = get(addr, "/api/sweeps/demo/search").await.json();
    assert_eq!(
        search,
        serde_json::json!({"search": null}),
        "a grid has no search"
    );
    let job = get(addr, "/api/jobs/1").await.json();
    assert_eq!(job["label"], "UNet 1");
    assert_eq!(job["predictions"][0], "img_1.png");
    assert!(job["log_tail"].as_str().unwrap().contains("step 10 done"));
    assert!(job["config_yaml"].as_str().unwrap().contains("crop: 64"));
    let curve = get(addr, "/api/jobs/1/curve").await.json();
    assert_eq!(curve["iteration"].as_array().unwrap().len(), 10);
    let ckpt = get(addr, "/api/jobs/1/artifacts/0").await;
    assert_eq!(
        (ckpt.status, ckpt.body.clone()),
        (200, fx.checkpoint.clone())
    );
    let pred = get(addr, "/api/jobs/1/predictions/0").await;
    assert_eq!(pred.status, 200);
    let img = image::load_from_memory(&pred.body).unwrap().to_rgb8();
    assert_eq!(img.dimensions(), (8, 8));
    assert_ne!(
        img.get_pixel(0, 0),
        img.get_pixel(7, 0),
        "classes are coloured apart"
    );
    assert!(get(addr, "/api/changes").await.json()["token"].is_string());
}

#[tokio::test]
async fn unknown_ids_and_pages_are_404() {
    let fx = fixture().await;
    let (addr, _) = start(&fx.db, "127.0.0.1", None).await;
    for path in [
        "/api/jobs/999",
        "/api/jobs/999/curve",
        "/api/sweeps/nope/leaderboard",
        "/api/sweeps/nope/jobs",
        "/api/sweeps/nope/swept",
        "/api/sweeps/nope/search",
        "/api/jobs/1/artifacts/99",
        "/api/jobs/1/predictions/5",
        "/api/jobs/2/predictions/0",
        "/assets/nope.js",
        "/nope",
    ] {
        assert_eq!(get(addr, path).await.status, 404, "{path}");
    }
    // Not numbers: refused before any lookup.
    assert!(get(addr, "/api/jobs/abc").await.status >= 400);
}

#[tokio::test]
async fn path_traversal_never_reads_outside_the_artifact_folder() {
    let fx = fixture().await;
    let (addr, _) = start(&fx.db, "127.0.0.1", None).await;
    let attempts: &[&[u8]] = &[
        b"/assets/../Cargo.toml",
        b"/assets/..%2f..%2fsecret.txt",
        b"/assets/%2e%2e%2f%2e%2e%2fsecret.txt",
        b"/assets/%252e%252e%252fsecret.txt",
        b"/assets/..\\..\\secret.txt",
        b"/assets/..%5c..%5csecret.txt",
        b"/assets/%2fetc%2fpasswd",
        b"/api/jobs/1/artifacts/..%2fsecret.txt",
        b"/api/jobs/1/artifacts/../../secret.txt",
        b"/api/jobs/1/artifacts/%2e%2e%2f%2e%2e%2fsecret.txt",
        b"/api/jobs/1/artifacts/1",
        b"/api/jobs/1/artifacts/0%00",
        b"/api/jobs/1/artifacts/0\x00/../1",
        b"/api/jobs/1/predictions/..%2f..%2f..%2fsecret.txt",
        b"/api/jobs/1/predictions/%2e%2e%5csecret.txt",
        b"/%2e%2e/%2e%2e/runs/secret.txt",
        b"//etc/passwd",
        b"/api/jobs/1/artifacts/%2Ftmp%2Fsecret.txt",
    ];
    for target in attempts {
        let r = request(addr, target, &format!("127.0.0.1:{}", addr.port()), "").await;
        let shown = String::from_utf8_lossy(target);
        assert!(
            !r.text().contains(SECRET) && !r.text().contains("root:x:0:0"),
            "{shown} leaked a file"
        );
        assert!(
            (400..500).contains(&r.status),
            "{shown}: status {}",
            r.status
        );
    }
    // The secret exists where the attempts aimed.
    assert!(fx.dir.path().join("runs/secret.txt").exists());
}

#[tokio::test]
async fn a_foreign_host_header_is_refused() {
    let fx = fixture().await;
    let (addr, _) = start(&fx.db, "127.0.0.1", None).await;
    let port = addr.port();
    for host in [
        "evil.example",
        "evil.example:80",
        "127.0.0.1.evil.example",
        "",
    ] {
        let r = request(addr, b"/api/sweeps", host, "").await;
        assert_eq!(r.status, 403, "Host {host:?}");
    }
    for host in [
        format!("localhost:{port}"),
        format!("127.0.0.1:{port}"),
        "localhost".into(),
    ] {
        assert_eq!(
            request(addr, b"/api/sweeps", &host, "").await.status,
            200,
            "Host {host:?}"
        );
    }
}

#[tokio::test]
async fn off_loopback_every_request_needs_the_token() {
    let fx = fixture().await;
    let (addr, url) = start(&fx.db, "0.0.0.0", None).await;
    let token = url
        .split("token=")
        .nth(1)
        .expect("a token in the printed URL")
        .to_string();
    assert!(token.len() >= 32, "{token}");
    let host = format!("127.0.0.1:{}", addr.port());
    assert_eq!(request(addr, b"/api/sweeps", &host, "").await.status, 401);
    let wrong = request(addr, b"/api/sweeps?token=0000", &host, "").await;
    assert_eq!(wrong.status, 401);
    let first = request(addr, format!("/?token={token}").as_bytes(), &host, "").await;
    assert_eq!(first.status, 200);
    assert!(
        first.headers.contains(&format!("sweep_token={token}")),
        "{}",
        first.headers
    );
    assert!(first.headers.contains("HttpOnly"), "{}", first.headers);
    let cookie = format!("Cookie: sweep_token={token}\r\n");
    assert_eq!(
        request(addr, b"/api/sweeps", &host, &cookie).await.status,
        200
    );
    let bearer = format!("Authorization: Bearer {token}\r\n");
    assert_eq!(
        request(addr, b"/api/sweeps", &host, &bearer).await.status,
        200
    );
    // A given token works on loopback too.
    let (addr2, url2) = start(&fx.db, "127.0.0.1", Some("s3cret-token")).await;
    assert!(url2.ends_with("?token=s3cret-token"));
    let host2 = format!("127.0.0.1:{}", addr2.port());
    assert_eq!(request(addr2, b"/api/sweeps", &host2, "").await.status, 401);
}

/// The server reads while a writer records: nothing waits on it, nothing is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn serving_never_blocks_a_running_sweep() {
    let fx = fixture().await;
    let (addr, _) = start(&fx.db, "127.0.0.1", None).await;
    let store: Arc<dyn Store> = store::open(&fx.db).await.unwrap();
    let sweep = store.sweep_id("demo").await.unwrap().unwrap();
    let me = Owner::current();
    let c = store.claim_next(sweep, &me).await.unwrap().unwrap();
    let f = c.fence(&me);
    let writer = {
        let store = store.clone();
        tokio::spawn(async move {
            for i in 1..=200 {
                let p = CurvePoint {
                    iteration: i,
                    loss: 1.0,
                    lr: 0.1,
                    secs: 0.0,
                };
                store.record_curve(&f, &[p]).await.unwrap();
                store.heartbeat(&f, i).await.unwrap();
            }
        })
    };
    while !writer.is_finished() {
        for path in ["/api/changes", "/api/sweeps/demo/jobs", "/api/jobs/2/curve"] {
            let r = get(addr, path).await;
            assert_eq!(r.status, 200, "{path}: {}", r.text());
        }
    }
    writer.await.unwrap();
    assert_eq!(store.curve(c.id).await.unwrap().len(), 200);
}
