//! Throughput of one sandbox over HTTP: creates/s, merge patches/s, watch event fan-out, and
//! memory per stored object beyond its JSON. Run with `cargo bench -p kro-sandbox`.
//!
//! Options (environment): `OBJECTS` (default 20000), `CLIENTS` (default 16), `WATCHERS`
//! (default 20).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kro_sandbox::SandboxBuilder;
use kube::api::{Api, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use serde_json::json;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn rss_bytes() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: usize = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

fn stored_json(sb: &kro_sandbox::Sandbox) -> usize {
    sb.shared()
        .data()
        .snapshot()
        .iter()
        .map(|(_, _, s)| s.json.len())
        .sum()
}

fn cm(name: &str) -> ConfigMap {
    serde_json::from_value(
        json!({"metadata": {"name": name, "labels": {"bench": "yes"}}, "data": {"k": "v"}}),
    )
    .unwrap()
}

async fn parallel<F, Fut>(clients: usize, total: usize, f: F) -> Duration
where
    F: Fn(usize) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let f = f.clone();
        tasks.push(tokio::spawn(async move {
            let mut i = c;
            while i < total {
                f(i).await;
                i += clients;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    started.elapsed()
}

#[tokio::main]
async fn main() {
    if std::env::args().any(|a| a == "--list") {
        // `cargo test --benches` lists benchmarks; there is nothing to list.
        return;
    }
    let objects = env("OBJECTS", 20_000);
    let clients = env("CLIENTS", 16);
    let watchers = env("WATCHERS", 20);
    let sb = SandboxBuilder::new("bench")
        .simulator(false)
        .start()
        .await
        .unwrap();
    let client = sb.client().await.unwrap();
    let nss: Api<Namespace> = Api::all(client.clone());
    nss.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "bench"}})).unwrap(),
    )
    .await
    .unwrap();
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "bench");

    // Creates with nobody watching.
    let quiet_total = objects / 2;
    // Warm the allocator and connections so RSS growth reflects stored objects.
    for i in 0..200 {
        api.create(&PostParams::default(), &cm(&format!("warm-{i}")))
            .await
            .unwrap();
    }
    let quiet_rss = rss_bytes();
    let quiet_json = stored_json(&sb);
    let q = api.clone();
    let quiet_time = parallel(clients, quiet_total, move |i| {
        let api = q.clone();
        async move {
            api.create(&PostParams::default(), &cm(&format!("quiet-{i}")))
                .await
                .unwrap();
        }
    })
    .await;
    println!(
        "creates/s without watchers: {:.0}",
        quiet_total as f64 / quiet_time.as_secs_f64()
    );
    let rss = rss_bytes().saturating_sub(quiet_rss) as f64 / quiet_total as f64;
    let json_len = (stored_json(&sb) - quiet_json) as f64 / quiet_total as f64;
    println!(
        "memory without watchers: {rss:.0} B RSS per object for {json_len:.0} B of JSON (overhead {:.0} B)",
        rss - json_len
    );
    // Reads side by side: clients getting single objects while others list the whole
    // namespace through a label selector (parsed for every object) and a writer creates.
    // Reads share the storage lock and parse and encode after letting go of it, so
    // neither the gets nor the creates queue behind the lists.
    let lists = env("LISTS", 32);
    let l = api.clone();
    let listing = tokio::spawn(parallel(clients / 2, lists, move |_| {
        let api = l.clone();
        async move {
            let got = api
                .list(&kube::api::ListParams::default().labels("bench=yes"))
                .await
                .unwrap();
            assert!(got.items.len() >= quiet_total);
        }
    }));
    let g = api.clone();
    let gets = quiet_total;
    let get_time = parallel(clients / 2, gets, move |i| {
        let api = g.clone();
        async move {
            api.get(&format!("quiet-{i}")).await.unwrap();
        }
    })
    .await;
    let w = api.clone();
    let side_writes = 1_000;
    let write_time = parallel(2, side_writes, move |i| {
        let api = w.clone();
        async move {
            api.create(&PostParams::default(), &cm(&format!("side-{i}")))
                .await
                .unwrap();
        }
    })
    .await;
    let list_time = listing.await.unwrap();
    println!(
        "reads side by side ({quiet_total} objects): {:.0} gets/s and {:.0} creates/s while {lists} selector lists ran in {:.2}s ({:.1} lists/s)",
        gets as f64 / get_time.as_secs_f64(),
        side_writes as f64 / write_time.as_secs_f64(),
        list_time.as_secs_f64(),
        lists as f64 / list_time.as_secs_f64()
    );

    nss.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "bench2"}})).unwrap(),
    )
    .await
    .unwrap();
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "bench2");

    // Watchers on the same collection measure fan-out while the creates run.
    let mut watch_tasks = Vec::new();
    for _ in 0..watchers {
        let api = api.clone();
        let want = objects;
        watch_tasks.push(tokio::spawn(async move {
            let mut stream = api
                .watch(&WatchParams::default().timeout(290), "0")
                .await
                .unwrap()
                .boxed();
            let mut seen = 0;
            while seen < want {
                match stream.try_next().await {
                    Ok(Some(WatchEvent::Added(_))) => seen += 1,
                    Ok(Some(_)) => {}
                    _ => break,
                }
            }
            (seen, Instant::now())
        }));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;

    let rss_before = rss_bytes();
    let json_before: usize = sb
        .shared()
        .data()
        .snapshot()
        .iter()
        .map(|(_, _, s)| s.json.len())
        .sum();
    let api2 = api.clone();
    let created = parallel(clients, objects, move |i| {
        let api = api2.clone();
        async move {
            api.create(&PostParams::default(), &cm(&format!("cm-{i}")))
                .await
                .unwrap();
        }
    })
    .await;
    let create_done = Instant::now();
    let json_after: usize = sb
        .shared()
        .data()
        .snapshot()
        .iter()
        .map(|(_, _, s)| s.json.len())
        .sum();

    let mut delivered = 0;
    let mut last = create_done;
    for t in watch_tasks {
        let (seen, at) = t.await.unwrap();
        delivered += seen;
        last = last.max(at);
    }
    let fanout_secs = (last - (create_done - created)).as_secs_f64();
    let rss_after = rss_bytes();

    let api3 = api.clone();
    let patched = parallel(clients, objects, move |i| {
        let api = api3.clone();
        async move {
            let p = Patch::Merge(json!({"data": {"k": format!("v{i}")}}));
            api.patch(&format!("cm-{i}"), &PatchParams::default(), &p)
                .await
                .unwrap();
        }
    })
    .await;

    let per_object = (rss_after.saturating_sub(rss_before)) as f64 / objects as f64;
    let json_per_object = (json_after - json_before) as f64 / objects as f64;
    println!("objects: {objects}, clients: {clients}, watchers: {watchers}");
    println!(
        "creates/s with watchers: {:.0}",
        objects as f64 / created.as_secs_f64()
    );
    println!(
        "merge patches/s: {:.0}",
        objects as f64 / patched.as_secs_f64()
    );
    println!(
        "watch fan-out: {delivered} events to {watchers} watchers in {fanout_secs:.2}s = {:.0} events/s",
        delivered as f64 / fanout_secs
    );
    println!(
        "memory: {per_object:.0} B RSS per object for {json_per_object:.0} B of JSON (overhead {:.0} B; includes the watch history and allocator slack)",
        per_object - json_per_object
    );
}
