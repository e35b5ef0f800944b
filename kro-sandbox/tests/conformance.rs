//! Replays every recorded kube-apiserver scenario against a fresh sandbox (simulator off,
//! scenarios in file order on one sandbox) and fails on any difference from the recording,
//! except the documented steps in [`KNOWN_FAILING`].
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;

use common::replay::run_scenario;
use kro_sandbox::SandboxBuilder;
use serde_json::Value;

/// Steps the sandbox does not answer exactly like the real server, each explained in the
/// crate README. A step that starts passing must be removed from here.
const KNOWN_FAILING: &[&str] = &[
    // The message embeds the patched object as Go serializes it after a merge patch
    // (field order of touched maps re-sorted, untouched ones in struct order).
    "04-patch/patch-wrong-type",
];

#[test]
fn replays_the_recorded_scenarios() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let sb = rt
        .block_on(SandboxBuilder::new("conformance").simulator(false).start())
        .unwrap();
    let addr = sb.addr();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/conformance");
    let mut names: Vec<_> = std::fs::read_dir(dir.join("scenarios"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    names.sort();
    let (mut passed, mut failures) = (0, Vec::new());
    for path in names {
        // The recorder read scenarios with PyYAML, for which `y` is a string, not a boolean.
        let opts = serde_saphyr::options! { strict_booleans: true };
        let text = std::fs::read_to_string(&path).unwrap();
        let scenario: Value = serde_saphyr::from_str_with_options(&text, opts).unwrap();
        let name = scenario["name"].as_str().unwrap().to_owned();
        let golden: Vec<Value> = serde_json::from_str(
            &std::fs::read_to_string(dir.join(format!("golden/{name}.json"))).unwrap(),
        )
        .unwrap();
        for r in run_scenario(addr, &scenario, &golden) {
            let id = format!("{name}/{}", r.id);
            if r.problems.is_empty() {
                passed += 1;
            } else {
                failures.push((id, r.problems));
            }
        }
    }
    let failed: Vec<&str> = failures.iter().map(|(id, _)| id.as_str()).collect();
    for (id, problems) in &failures {
        let known = if KNOWN_FAILING.contains(&id.as_str()) {
            " (known)"
        } else {
            ""
        };
        println!("FAIL{known} {id}");
        for p in problems.iter().take(12) {
            println!("     {p}");
        }
    }
    println!("{passed} passed, {} failed", failures.len());
    let unexpected: Vec<&&str> = failed
        .iter()
        .filter(|id| !KNOWN_FAILING.contains(id))
        .collect();
    let now_passing: Vec<&&str> = KNOWN_FAILING
        .iter()
        .filter(|id| !failed.contains(id))
        .collect();
    assert!(
        unexpected.is_empty(),
        "steps that differ from the real server: {unexpected:?}"
    );
    assert!(
        now_passing.is_empty(),
        "known-failing steps now pass; remove them from KNOWN_FAILING: {now_passing:?}"
    );
    drop(sb);
    rt.shutdown_timeout(std::time::Duration::from_secs(1));
}
