//! The live view in a real browser: a hub with two members, the page
//! served as `kro-hub run --ui-addr` serves it, loaded in headless
//! Chromium. The page lists members and instances; a member that goes
//! down turns its cells red through the page's live updates (no reload);
//! no answer ever carries a kubeconfig Secret's token; text from the
//! cluster is escaped.
//!
//! Needs Chromium (`chromium` on PATH, Debian's `chromium` package, or the
//! binary named by `KRO_E2E_CHROMIUM`). With `KRO_E2E_SCREENSHOTS=DIR` it
//! also saves `live-view.png` and `live-view-terminal.txt` there.

// Test helpers fail the test on any error, with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use kro_e2e::fleet::{Fleet, token_of};
use kro_e2e::{eventually, example};
use kro_hub::ui::Live;
use serde_json::json;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

const MEMBERS: [&str; 2] = ["eu-1", "us-1"];
const SHOP: &str = "GlobalApplication web/shop";

/// The Chromium binary, or a failure that says what to install.
fn chromium() -> PathBuf {
    if let Some(path) = std::env::var_os("KRO_E2E_CHROMIUM") {
        return PathBuf::from(path);
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join("chromium"))
        .find(|p| p.is_file())
        .expect(
            "this test drives headless Chromium: install Debian's `chromium` package \
             (apt-get install chromium) or name the binary in KRO_E2E_CHROMIUM",
        )
}

/// A fresh profile folder per browser run, removed on drop.
struct Profile(PathBuf);

impl Profile {
    fn new(tag: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("kro-e2e-chromium-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
}

impl Drop for Profile {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Starts headless Chromium on `url` with `extra` flags, its stdout (the
/// DOM, with `--dump-dom`) going to `out`.
fn browser(profile: &Profile, out: &Path, extra: &[&str], url: &str) -> Child {
    let stdout = std::fs::File::create(out).unwrap();
    Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.0.display()))
        .args(extra)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("starting chromium: {e}"))
}

/// Waits for the browser to exit (killing it after `timeout`) and returns
/// what it wrote.
async fn finish(mut child: Child, out: &Path, timeout: Duration) -> String {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "chromium exited with {status}");
            return std::fs::read_to_string(out).unwrap();
        }
        if tokio::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "chromium did not finish within {timeout:?}; it wrote: {}",
                std::fs::read_to_string(out).unwrap_or_default()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// One GET over HTTP/1.0 (the body ends when the connection does): the
/// status line, headers and body. For the event stream, stops after the
/// first event.
async fn get(addr: std::net::SocketAddr, path: &str) -> String {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    let read = async {
        loop {
            let n = stream.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            seen.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&seen);
            if path == "/events" && text.contains("\ndata: ") && text.ends_with("\n\n") {
                break;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .unwrap_or_else(|_| panic!("GET {path} did not complete"));
    String::from_utf8_lossy(&seen).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_shows_a_member_going_down_live() {
    let chromium = chromium();
    assert!(chromium.exists(), "{} does not exist", chromium.display());
    let fleet = Fleet::start(&[
        ("eu-1", json!({"env": "prod", "region": "eu"})),
        ("us-1", json!({"env": "prod", "region": "us"})),
    ])
    .await
    .unwrap();
    for name in MEMBERS {
        fleet.wait_cluster(name, "Reachable").await.unwrap();
    }

    // The view, as `kro-hub run --ui-addr` serves it, on a port of its own.
    let live = Live::start(fleet.hub.client.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let url = format!("http://{addr}/");
    let (stop_ui, ui_stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(kro_hub::ui::serve_on(listener, live.clone(), async move {
        let _ = ui_stopped.await;
    }));

    fleet
        .hub
        .apply(&json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "web"}}))
        .await
        .unwrap();
    fleet
        .hub
        .apply_yaml(&example("multicluster/rgd.yaml"))
        .await
        .unwrap();
    fleet
        .hub
        .wait_for(
            "kro.run/v1alpha1",
            "ResourceGraphDefinition",
            None,
            "global-web-app",
            |r| r["status"]["state"] == "Active",
        )
        .await
        .unwrap();
    fleet
        .hub
        .apply_yaml(&example("multicluster/shop.yaml"))
        .await
        .unwrap();
    // An RGD the hub refuses, whose message quotes a resource id written to
    // inject markup into the page.
    fleet
        .hub
        .apply(&json!({
            "apiVersion": "kro.run/v1alpha1", "kind": "ResourceGraphDefinition",
            "metadata": {"name": "hostile"},
            "spec": {"schema": {"apiVersion": "v1alpha1", "kind": "Hostile"},
                "resources": [{"id": "<b>bold</b>", "template": {"apiVersion": "v1",
                    "kind": "ConfigMap", "metadata": {"name": "x"}}}]}
        }))
        .await
        .unwrap();

    // Wait until the view itself holds the instance Ready on both members.
    eventually(
        "the view to show shop Ready on both members",
        Duration::from_secs(40),
        || async {
            let snapshot = live.snapshot();
            let row = snapshot.rows.iter().find(|r| r.instance == SHOP);
            let ready = row.is_some_and(|r| MEMBERS.iter().all(|m| r.cell(m) == Some("Ready")));
            let hostile = snapshot
                .graphs
                .iter()
                .any(|g| g.name == "hostile" && !g.reason.is_empty());
            if ready && hostile {
                Ok(Some(()))
            } else {
                Err(format!("{row:?}"))
            }
        },
    )
    .await
    .unwrap();

    // No answer carries a member's token, read from its kubeconfig Secret.
    for path in [
        "/",
        "/api/state",
        "/events",
        "/ui.js",
        "/ui.css",
        "/nothing-here",
    ] {
        let answer = get(addr, path).await;
        assert!(answer.starts_with("HTTP/1."), "GET {path}: {answer}");
        for name in MEMBERS {
            assert!(
                !answer.contains(&token_of(name)),
                "GET {path} shows {name}'s token"
            );
        }
        assert!(
            answer
                .to_ascii_lowercase()
                .contains("content-security-policy: default-src 'none'"),
            "GET {path} has no content security policy: {answer}"
        );
    }
    let state: serde_json::Value = {
        let answer = get(addr, "/api/state").await;
        let body = answer.split_once("\r\n\r\n").unwrap().1;
        serde_json::from_str(body).unwrap()
    };
    let graph = state["graphs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == "global-web-app")
        .unwrap();
    assert_eq!(
        graph["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| (n["id"].as_str().unwrap(), n["layer"].as_u64().unwrap()))
            .collect::<Vec<_>>(),
        [("site", 0), ("deployment", 1), ("service", 2)],
        "{graph}"
    );

    // The page as the browser builds it: members, instances, the graph,
    // and the hostile text shown as text.
    let profile = Profile::new("load");
    let out = profile.0.join("dom.html");
    let dom = finish(
        browser(&profile, &out, &["--dump-dom"], &url),
        &out,
        Duration::from_secs(60),
    )
    .await;
    for expected in [
        r#"<tr data-member="eu-1">"#,
        r#"<tr data-member="us-1">"#,
        r#"data-key="GlobalApplication web/shop|us-1""#,
        r#"<td class="summary">2/2</td>"#,
        r#"<g class="node" data-id="deployment">"#,
        "&lt;b&gt;bold&lt;/b&gt;",
    ] {
        assert!(dom.contains(expected), "no {expected} in {dom}");
    }
    assert!(
        !dom.contains("<b>bold"),
        "markup from the cluster was injected: {dom}"
    );
    assert!(
        dom.contains(r#"data-member="us-1" data-state="Ready">Ready</td>"#),
        "{dom}"
    );

    // Now keep a page open, take us-1 down, and let the page's live
    // updates show it. Chromium's virtual time stands still while the
    // event stream is open, so the DOM is dumped only once the server
    // ends the stream, which it does when it stops.
    let profile = Profile::new("live");
    let out = profile.0.join("dom.html");
    let opened = live.streams_opened();
    let page = browser(
        &profile,
        &out,
        &["--dump-dom", "--virtual-time-budget=3000"],
        &url,
    );
    eventually(
        "the page to open its event stream",
        Duration::from_secs(30),
        || async { Ok::<_, String>((live.streams_opened() > opened).then_some(())) },
    )
    .await
    .unwrap();
    fleet.member("us-1").faults().refuse_connections(true);
    eventually(
        "the view to show shop Unreachable on us-1",
        Duration::from_secs(30),
        || async {
            let snapshot = live.snapshot();
            let row = snapshot.rows.iter().find(|r| r.instance == SHOP);
            let down = row
                .and_then(|r| r.cell("us-1"))
                .is_some_and(|s| s.starts_with("Unreachable"));
            let member = snapshot
                .members
                .iter()
                .any(|m| m.name == "us-1" && !m.is_ready());
            if down && member {
                Ok(Some(()))
            } else {
                Err(format!("{row:?}"))
            }
        },
    )
    .await
    .unwrap();
    // The update goes out after a short coalescing pause; give the page
    // time to receive and apply it.
    tokio::time::sleep(Duration::from_secs(2)).await;

    if let Some(dir) = std::env::var_os("KRO_E2E_SCREENSHOTS") {
        save_screenshots(Path::new(&dir), &url, &live).await;
    }

    let _ = stop_ui.send(());
    server.await.unwrap().unwrap();
    let dom = finish(page, &out, Duration::from_secs(60)).await;
    assert!(
        dom.contains(r#"data-member="us-1" data-state="Unreachable"#),
        "the page did not update us-1's cell: {dom}"
    );
    assert!(
        dom.contains(r#"data-member="eu-1" data-state="Ready">Ready</td>"#),
        "{dom}"
    );
    // The page noted the change, so it saw Ready first and the update
    // came through its live path.
    assert!(
        dom.contains(&format!("{SHOP} on us-1: Ready → Unreachable")),
        "no change noted: {dom}"
    );
    assert!(
        dom.contains("member us-1: True (Reachable) → False (Unreachable)"),
        "{dom}"
    );
    fleet.member("us-1").faults().refuse_connections(false);
}

/// The page and the terminal table as they look with us-1 down, for the
/// README.
async fn save_screenshots(dir: &Path, url: &str, live: &Live) {
    std::fs::create_dir_all(dir).unwrap();
    let png = std::path::absolute(dir.join("live-view.png")).unwrap();
    let profile = Profile::new("shot");
    let out = profile.0.join("stdout");
    let shot = format!("--screenshot={}", png.display());
    finish(
        browser(&profile, &out, &[&shot, "--window-size=1280,900"], url),
        &out,
        Duration::from_secs(60),
    )
    .await;
    let snapshot = live.snapshot();
    let text = format!(
        "{}\n{}",
        kro_hub::view::members_table(&snapshot.members),
        kro_hub::view::table(&snapshot.rows)
    );
    std::fs::write(dir.join("live-view-terminal.txt"), text).unwrap();
}
