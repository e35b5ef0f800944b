//! Golden render tests: RGDs and instances from `tests/data/` rendered and
//! compared with the expected YAML checked in beside them. Set
//! `KRO_UPDATE_GOLDEN=1` to rewrite the expected files after a deliberate
//! change.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use kro_core::{EvalContext, RenderReport, compile, parse_rgd_yaml, parse_yaml_documents};
use serde_json::{Value, json};

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

fn read(name: &str) -> String {
    std::fs::read_to_string(data(name)).unwrap()
}

/// The report as a multi-document YAML stream: one document per object,
/// a comment naming its resource, and the status last.
fn report_text(report: &RenderReport) -> String {
    let mut out = String::new();
    for r in &report.resources {
        out.push_str(&format!("# resource: {}\n", r.id));
        if let Some(why) = &r.excluded {
            out.push_str(&format!("# excluded: {why}\n---\n"));
        }
        if !r.pending_on.is_empty() {
            out.push_str(&format!("# pending on: {}\n---\n", r.pending_on.join(", ")));
        }
        for o in &r.objects {
            out.push_str(&serde_saphyr::to_string(o).unwrap());
            out.push_str("---\n");
        }
    }
    out.push_str("# instance status\n");
    out.push_str(&serde_saphyr::to_string(&json!({"status": report.status})).unwrap());
    out
}

fn golden(rgd: &str, instance: &str, observed: &[(&str, Value)], expected: &str) {
    let rgd = parse_rgd_yaml(&read(rgd)).unwrap();
    let graph = compile(&rgd).unwrap();
    let inst = parse_yaml_documents(&read(instance)).unwrap().remove(0);
    let mut ctx = EvalContext::new(inst);
    for (id, obj) in observed {
        ctx.observe(*id, obj.clone());
    }
    let text = report_text(&graph.render_all(&ctx).unwrap());
    let path = data(expected);
    if std::env::var_os("KRO_UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &text).unwrap();
    }
    let want = std::fs::read_to_string(&path).unwrap_or_default();
    pretty_assertions::assert_eq!(want, text, "golden file {expected}");
}

#[test]
fn webapp_app1() {
    golden(
        "webapp-rgd.yaml",
        "webapp-app1.yaml",
        &[],
        "webapp-app1.rendered.yaml",
    );
}

#[test]
fn webapp_app2_defaults_apply() {
    golden(
        "webapp-rgd.yaml",
        "webapp-app2.yaml",
        &[],
        "webapp-app2.rendered.yaml",
    );
}

#[test]
fn webapp_app2_update() {
    golden(
        "webapp-rgd.yaml",
        "webapp-app2-update.yaml",
        &[],
        "webapp-app2-update.rendered.yaml",
    );
}

#[test]
fn webapp_status_from_observed_deployment() {
    let deployment = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web-app-1", "namespace": "default"},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web-app-1"}}},
        "status": {"availableReplicas": 3, "conditions": [{"type": "Available", "status": "True"}]}
    });
    golden(
        "webapp-rgd.yaml",
        "webapp-app1.yaml",
        &[("deployment", deployment)],
        "webapp-app1-observed.rendered.yaml",
    );
}

#[test]
fn wordpress_site() {
    golden(
        "wordpress-rgd.yaml",
        "wordpress-site.yaml",
        &[],
        "wordpress-site.rendered.yaml",
    );
}

#[test]
fn wordpress_premium_without_ingress() {
    golden(
        "wordpress-rgd.yaml",
        "wordpress-premium-no-ingress.yaml",
        &[],
        "wordpress-premium-no-ingress.rendered.yaml",
    );
}

#[test]
fn wordpress_status_from_observed_objects() {
    let service = json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "blog", "namespace": "web"},
        "spec": {"selector": {"app": "blog"}}});
    let mysql = json!({"metadata": {"name": "blog-mysql", "namespace": "web"},
        "status": {"readyReplicas": 1}});
    let wordpress = json!({"metadata": {"name": "blog", "namespace": "web"},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "blog"}}},
        "status": {"availableReplicas": 1}});
    golden(
        "wordpress-rgd.yaml",
        "wordpress-site.yaml",
        &[
            ("service", service),
            ("mysql", mysql),
            ("wordpress", wordpress),
        ],
        "wordpress-site-observed.rendered.yaml",
    );
}

#[test]
fn collections_wait_for_the_external_ref() {
    golden(
        "collections-rgd.yaml",
        "collections-instance.yaml",
        &[],
        "collections-pending.rendered.yaml",
    );
}

#[test]
fn collections_with_observed_settings() {
    let settings = parse_yaml_documents(&read("collections-settings.yaml"))
        .unwrap()
        .remove(0);
    golden(
        "collections-rgd.yaml",
        "collections-instance.yaml",
        &[("settings", settings)],
        "collections.rendered.yaml",
    );
}
