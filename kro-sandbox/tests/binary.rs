//! The `kro-sandbox` binary starts one server per cluster and writes their kubeconfigs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

#[test]
fn binary_writes_one_kubeconfig_per_cluster() {
    let dir = std::env::temp_dir().join(format!("kro-sandbox-bin-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_kro-sandbox"))
        .args([
            "--clusters",
            "hub,a,b",
            "--dir",
            dir.to_str().unwrap(),
            "--no-simulator",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        let done = line.starts_with("ready");
        lines.push(line);
        if done {
            break;
        }
    }
    let mut ports = Vec::new();
    for name in ["hub", "a", "b"] {
        let kc = std::fs::read_to_string(dir.join(format!("{name}.kubeconfig"))).unwrap();
        let server = kc
            .lines()
            .find_map(|l| l.trim().strip_prefix("server: "))
            .unwrap()
            .to_owned();
        assert!(server.starts_with("http://127.0.0.1:"), "{server}");
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with(&format!("{name}: {server}"))),
            "{lines:?}"
        );
        let addr = server.trim_start_matches("http://").to_owned();
        let stream = std::net::TcpStream::connect(&addr).unwrap();
        drop(stream);
        ports.push(addr);
    }
    ports.sort();
    ports.dedup();
    assert_eq!(ports.len(), 3, "each cluster has its own port");
    child.kill().unwrap();
    child.wait().unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}
