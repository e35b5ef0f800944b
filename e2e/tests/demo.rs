//! The README's first command: the narrated demo runs its whole story (the
//! kro walk-through, members, placement, a wave-by-wave rollout, a member
//! down and back, a deletion) and succeeds.

use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_tells_its_whole_story() {
    let dir = std::env::temp_dir().join(format!("kro-hub-demo-{}", std::process::id()));
    let options = kro_hub::demo::DemoOptions {
        dir: dir.clone(),
        serve: false,
        ui_addr: "127.0.0.1:0".parse().expect("address"),
    };
    let outcome = tokio::time::timeout(Duration::from_secs(240), kro_hub::demo::run(options))
        .await
        .expect("the demo finishes within four minutes");
    if let Err(error) = outcome {
        panic!("the demo failed: {error}");
    }
    for file in ["hub.kubeconfig", "eu-1.kubeconfig", "us-1.kubeconfig"] {
        assert!(dir.join(file).is_file(), "{file} written");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
