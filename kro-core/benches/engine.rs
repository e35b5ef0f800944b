//! Engine benchmarks: parse and check a 50-resource RGD, and render one
//! instance of a 10-resource and of the 50-resource RGD. Figures are
//! recorded in the crate README.

use std::fmt::Write as _;
use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use kro_core::{EvalContext, compile, parse_rgd_yaml};
use serde_json::json;

/// An RGD of `n` resources: Deployments, each reading the schema and the
/// previous resource, with Services and ConfigMaps in between.
fn rgd_yaml(n: usize) -> String {
    let mut s = String::from(
        r#"apiVersion: kro.run/v1alpha1
kind: ResourceGraphDefinition
metadata:
  name: bench
spec:
  schema:
    apiVersion: v1alpha1
    kind: Bench
    spec:
      name: string | required=true
      image: string | default="nginx:1.27"
      replicas: integer | default=2 minimum=1
      labels: map[string]string
      ports: "[]integer"
      enabled: boolean | default=true
    status:
      first: ${r0.metadata.name}
      ready: ${r0.status.?availableReplicas.orValue(0)}
  resources:
"#,
    );
    for i in 0..n {
        let prev = if i == 0 {
            String::from("schema.spec.name")
        } else {
            format!("r{}.metadata.name", i - 1)
        };
        match i % 3 {
            0 => {
                let _ = write!(
                    s,
                    r#"  - id: r{i}
    readyWhen:
    - ${{r{i}.status.?availableReplicas.orValue(0) == r{i}.spec.replicas}}
    template:
      apiVersion: apps/v1
      kind: Deployment
      metadata:
        name: ${{schema.spec.name}}-{i}
        labels: '${{schema.spec.?labels.orValue({{}}).merge({{"app": schema.spec.name}})}}'
        annotations:
          after: ${{{prev}}}
      spec:
        replicas: ${{schema.spec.replicas}}
        selector:
          matchLabels:
            app: ${{schema.spec.name}}-{i}
        template:
          metadata:
            labels:
              app: ${{schema.spec.name}}-{i}
          spec:
            containers:
            - name: main
              image: ${{schema.spec.image}}
              ports: '${{schema.spec.?ports.orValue([80]).map(p, {{"containerPort": p}})}}'
"#
                );
            }
            1 => {
                let _ = write!(
                    s,
                    r#"  - id: r{i}
    template:
      apiVersion: v1
      kind: Service
      metadata:
        name: ${{{prev}}}-svc
      spec:
        selector: ${{r{p}.spec.selector.matchLabels}}
        ports:
        - port: 80
          targetPort: 80
"#,
                    p = i - 1
                );
            }
            _ => {
                let _ = write!(
                    s,
                    r#"  - id: r{i}
    includeWhen:
    - ${{schema.spec.enabled}}
    template:
      apiVersion: v1
      kind: ConfigMap
      metadata:
        name: ${{schema.spec.name}}-cfg-{i}
      data:
        upstream: "http://${{{prev}}}:80"
        replicas: ${{string(schema.spec.replicas * 2)}}
"#
                );
            }
        }
    }
    s
}

fn engine(c: &mut Criterion) {
    let big = rgd_yaml(50);
    c.bench_function("parse_and_check_50_resources", |b| {
        b.iter(|| {
            let rgd = parse_rgd_yaml(black_box(&big)).unwrap_or_else(|e| panic!("{e}"));
            compile(&rgd).unwrap_or_else(|e| panic!("{e}"))
        })
    });

    let small = rgd_yaml(10);
    let graph = compile(&parse_rgd_yaml(&small).unwrap_or_else(|e| panic!("{e}")))
        .unwrap_or_else(|e| panic!("{e}"));
    let ctx = EvalContext::new(json!({
        "apiVersion": "kro.run/v1alpha1", "kind": "Bench",
        "metadata": {"name": "b1", "namespace": "default"},
        "spec": {"name": "web", "labels": {"team": "a"}, "ports": [80, 443]}
    }));
    c.bench_function("render_instance_10_resources", |b| {
        b.iter(|| {
            graph
                .render_all(black_box(&ctx))
                .unwrap_or_else(|e| panic!("{e}"))
        })
    });

    let graph50 = compile(&parse_rgd_yaml(&big).unwrap_or_else(|e| panic!("{e}")))
        .unwrap_or_else(|e| panic!("{e}"));
    c.bench_function("render_instance_50_resources", |b| {
        b.iter(|| {
            graph50
                .render_all(black_box(&ctx))
                .unwrap_or_else(|e| panic!("{e}"))
        })
    });
}

criterion_group!(benches, engine);
criterion_main!(benches);
