//! `sweep serve` in a real browser: Debian's Chromium, headless, driven through the DevTools
//! protocol (a small client below: a WebSocket, `Runtime.evaluate`, `Page.navigate`,
//! `Page.captureScreenshot`). The sweep is real: tiny UNets with saved predictions, then a
//! `sweep run` started while the page is open, whose job (on the toy worker, 60 ms per
//! iteration) the page must show finishing.
//!
//! Needs `SWEEP_TEST_CHROMIUM` (scripts/test sets it); built without it, the test is ignored
//! with that reason (sweep-test-services), and under `CI` it fails instead. `SWEEP_SCREENSHOTS=DIR` keeps the screenshots.

use crate::util::{on_toy, stderr_of, Sandbox};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::io::BufRead;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A headless Chromium and a DevTools session on its page.
struct Browser {
    child: Child,
    ws: Ws,
    next_id: u64,
    _profile: tempfile::TempDir,
}

impl Browser {
    async fn launch(chromium: &str) -> Browser {
        let profile = tempfile::tempdir().unwrap();
        let mut child = Command::new(chromium)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--window-size=1400,900",
                "--remote-debugging-port=0",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("chromium starts");
        // "DevTools listening on ws://127.0.0.1:PORT/devtools/browser/ID"
        let mut lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
        let port = lines
            .by_ref()
            .map_while(Result::ok)
            .find_map(|l| {
                l.split("ws://127.0.0.1:")
                    .nth(1)
                    .and_then(|r| r.split('/').next())
                    .map(str::to_string)
            })
            .expect("chromium printed its DevTools address");
        // Keep reading its stderr, so that it never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        let list = http_get(&format!("127.0.0.1:{port}"), "/json/list").await;
        let targets: Value = serde_json::from_str(&list).unwrap();
        let page = targets
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["type"] == "page")
            .expect("a page target");
        let url = page["webSocketDebuggerUrl"].as_str().unwrap();
        let (ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        Browser {
            child,
            ws,
            next_id: 1,
            _profile: profile,
        }
    }

    async fn call(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        let msg = json!({"id": id, "method": method, "params": params}).to_string();
        self.ws.send(Message::text(msg)).await.unwrap();
        while let Some(msg) = self.ws.next().await {
            let Ok(Message::Text(text)) = msg else {
                continue;
            };
            let v: Value = serde_json::from_str(&text).unwrap();
            if v["id"] == id {
                assert!(v.get("error").is_none(), "{method}: {v}");
                return v["result"].clone();
            }
        }
        panic!("the browser closed the DevTools connection");
    }

    /// The value of a JavaScript expression in the page (promises awaited).
    async fn eval(&mut self, js: &str) -> Value {
        let r = self
            .call(
                "Runtime.evaluate",
                json!({"expression": js, "awaitPromise": true, "returnByValue": true}),
            )
            .await;
        r["result"]["value"].clone()
    }

    async fn wait_for(&mut self, what: &str, js: &str, secs: u64) -> Value {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let v = self.eval(js).await;
            if !(v.is_null() || v == false) {
                return v;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn goto(&mut self, url: &str) {
        self.eval("document.body && delete document.body.dataset.rendered")
            .await;
        self.call("Page.navigate", json!({ "url": url })).await;
        self.wait_for(url, "document.body && document.body.dataset.rendered", 30)
            .await;
    }

    /// Writes a PNG of the page into `SWEEP_SCREENSHOTS`, if set.
    async fn screenshot(&mut self, name: &str) {
        let r = self
            .call("Page.captureScreenshot", json!({"format": "png"}))
            .await;
        let png = base64_decode(r["data"].as_str().unwrap());
        assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
        if let Some(dir) = std::env::var_os("SWEEP_SCREENSHOTS") {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(std::path::Path::new(&dir).join(name), png).unwrap();
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn base64_decode(s: &str) -> Vec<u8> {
    let val = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        _ => 63,
    };
    let bytes: Vec<u8> = s
        .bytes()
        .filter(|&c| c != b'=' && !c.is_ascii_whitespace())
        .collect();
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        let mut n = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            n |= (val(c) as u32) << (18 - 6 * i);
        }
        out.extend_from_slice(&n.to_be_bytes()[1..chunk.len()]);
    }
    out
}

/// A small GET: DevTools' HTTP server keeps the connection open, so the body is read by
/// its Content-Length.
async fn http_get(host: &str, path: &str) -> String {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
    let mut conn = tokio::io::BufReader::new(tokio::net::TcpStream::connect(host).await.unwrap());
    let req = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    conn.get_mut().write_all(req.as_bytes()).await.unwrap();
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        conn.read_line(&mut line).await.unwrap();
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                length = v.trim().parse().unwrap();
            }
        }
    }
    let mut body = vec![0u8; length];
    conn.read_exact(&mut body).await.unwrap();
    String::from_utf8(body).unwrap()
}

/// `sweep serve` on a free port; its URL.
fn serve(sb: &Sandbox) -> (Child, String) {
    let db = sb.db();
    let mut child = sb
        .command(&["serve", "--db", db.to_str().unwrap(), "--port", "0"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let url = lines
        .by_ref()
        .map_while(Result::ok)
        .find_map(|l| l.split(" at ").nth(1).map(str::trim).map(str::to_string))
        .expect("sweep serve printed its URL");
    std::thread::spawn(move || lines.for_each(drop));
    (child, url)
}

fn chromium() -> String {
    sweep_test_services::server("Chromium", "SWEEP_TEST_CHROMIUM")
}

/// The sweep; `extra_job` adds a job of 100 iterations (the only one whose label says
/// `100 it`), which the test runs on the toy worker.
fn sweep_yaml(extra_job: bool) -> String {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/data/dme");
    let extra = if extra_job { "- {iters: 100}\n" } else { "" };
    format!(
        "name: dash\n\
         description: dashboard test\n\
         data: {{dataset: dme, root: {root}, scale: [64, 64], limit_train: 4, limit_val: 3}}\n\
         base:\n  model: {{base_channels: 4, aux_head: false}}\n  crop: 32\n  batch: 2\n  iters: 4\n  \
         optimizer: {{type: adamw, lr: 0.003}}\n  \
         eval: {{mode: whole, crop: 64, stride: 32, save_predictions: true}}\n\
         grid:\n  optimizer.lr: [0.003, 0.0003, 0.01]\n\
         include:\n{extra}"
    )
}

fn run_sweep(sb: &Sandbox, file: &std::path::Path) -> Command {
    let db = sb.db();
    let mut c = sb.command(&[
        "run",
        file.to_str().unwrap(),
        "--db",
        db.to_str().unwrap(),
        "--no-report",
    ]);
    c.stdout(Stdio::null()).stderr(Stdio::piped());
    c
}

sweep_test_services::needs_chromium! {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_dashboard_shows_the_leaderboard_sorts_opens_a_job_and_goes_live() {
        let chromium = chromium();
        let sb = Sandbox::new();
        let file = sb.write_sweep(&sweep_yaml(false).replace("include:\n", ""));
        let out = run_sweep(&sb, &file).output().unwrap();
        assert!(out.status.success(), "{}", stderr_of(&out));
        let (mut server, url) = serve(&sb);
        let mut browser = Browser::launch(&chromium).await;

        // The leaderboard's rows are `sweep report`'s, in its order.
        browser.goto(&format!("{url}#/sweep/dash")).await;
        let rows =
            "[...document.querySelectorAll('#leaderboard tbody tr')].map(tr => tr.dataset.model)";
        let shown = browser
            .wait_for(
                "leaderboard rows",
                &format!("(() => {{ const r = {rows}; return r.length ? r : null }})()"),
                20,
            )
            .await;
        let db = sb.db();
        let report = sb
            .command(&["report", "--db", db.to_str().unwrap(), "--format", "json"])
            .output()
            .unwrap();
        let report: Value = serde_json::from_slice(&report.stdout).unwrap();
        let expected: Vec<Value> = report
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["model"].clone())
            .collect();
        assert_eq!(shown.as_array().unwrap(), &expected);
        assert_eq!(expected.len(), 3);

        // Sorting by a column: mDice twice is ascending, the reverse of the ranking.
        browser
            .eval("document.querySelector('th[data-key=mDice]').click()")
            .await;
        browser
            .eval("document.querySelector('th[data-key=mDice]').click()")
            .await;
        let sorted = browser.eval(rows).await;
        let mut reversed = expected.clone();
        reversed.reverse();
        assert_eq!(
            sorted.as_array().unwrap(),
            &reversed,
            "clicking mDice twice sorts ascending"
        );
        // Ticking two rows draws their curves and allows comparing them.
        browser
            .eval("document.querySelectorAll('input[data-select]').forEach((b, i) => { if (i < 2) b.click() })")
            .await;
        browser
            .wait_for(
                "the curves",
                "document.querySelector('#curves canvas') !== null",
                20,
            )
            .await;
        let compare = browser
            .eval("document.getElementById('compare').disabled")
            .await;
        assert_eq!(compare, false, "two ticked rows can be compared");
        let scatter = browser
            .eval("document.querySelector('#scatter canvas') !== null")
            .await;
        assert_eq!(scatter, true, "the metric against a swept key");
        let key = browser
            .eval("document.getElementById('scatter-key').value")
            .await;
        assert_eq!(key, "optimizer.lr", "starts on the key the grid sweeps");
        browser.screenshot("dashboard-sweep.png").await;

        // A job page with its prediction image loaded.
        let job = report[0]["job_ids"][0].as_i64().unwrap();
        browser.goto(&format!("{url}#/job/{job}")).await;
        let loaded = browser
            .wait_for(
                "the prediction image",
                "(() => { const i = document.querySelector('img[data-prediction]'); return i && i.complete && i.naturalWidth > 0 ? i.naturalWidth : null })()",
                20,
            )
            .await;
        assert!(loaded.as_u64().unwrap() > 0);
        // The validation image, its ground truth and the overlay come from the job's data set.
        for view in ["image", "truth", "overlay"] {
            let js = format!("(() => {{ const i = document.querySelector('img[alt={view}]'); return i && i.complete && i.naturalWidth > 0 }})()");
            browser.wait_for(view, &js, 20).await;
        }
        browser
            .eval("document.getElementById('attempts').scrollIntoView()")
            .await;
        browser.screenshot("dashboard-job.png").await;

        // Live: a job added and run while the page is open appears, runs and finishes there.
        browser.goto(&format!("{url}#/sweep/dash")).await;
        let file = sb.write_sweep(&sweep_yaml(true));
        let mut cmd = run_sweep(&sb, &file);
        let mut run = on_toy(&mut cmd, &[("SWEEP_TOY_ITER_MS", "60")])
            .spawn()
            .unwrap();
        let status = "(() => { const r = [...document.querySelectorAll('#jobs tbody tr')].find(tr => tr.textContent.includes('100 it')); return r ? r.dataset.status : null })()";
        let first = browser.wait_for("the new job's row", status, 60).await;
        assert!(
            first == "pending" || first == "running",
            "the page saw the job only at {first}"
        );
        browser
            .wait_for(
                "the new job to run",
                &format!("{status} === 'running' || {status} === 'succeeded'"),
                60,
            )
            .await;
        browser
            .wait_for(
                "the new job to finish",
                &format!("{status} === 'succeeded'"),
                90,
            )
            .await;
        assert!(run.wait().unwrap().success());
        let _ = server.kill();
        let _ = server.wait();
    }
}
