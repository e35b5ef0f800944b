//! The patch engine against the real server's recorded answers (the
//! crate's conformance scenarios 04, 05, 06 and 09): each step's patch applied to the
//! previous answer must give the next answer, `managedFields` included.

use std::collections::HashMap;

use serde_json::{Value, json};

use super::*;

const NOW: &str = "<time>";

struct Scenario {
    steps: HashMap<String, Value>,
    answers: HashMap<String, (u16, Value)>,
}

fn load(scenario: &str, golden: &str) -> Scenario {
    // The recorder read scenarios with PyYAML, for which `y` is a string.
    let opts = serde_saphyr::options! { strict_booleans: true };
    let doc: Value = serde_saphyr::from_str_with_options(scenario, opts).unwrap();
    let steps = doc["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["id"].as_str().unwrap().to_owned(), s.clone()))
        .collect();
    let gold: Value = serde_json::from_str(golden).unwrap();
    let answers = gold
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            let code = u16::try_from(a["code"].as_u64().unwrap()).unwrap();
            (
                a["id"].as_str().unwrap().to_owned(),
                (code, a["body"].clone()),
            )
        })
        .collect();
    Scenario { steps, answers }
}

fn s04() -> Scenario {
    load(
        include_str!("../../testdata/conformance/scenarios/04-patch.yaml"),
        include_str!("../../testdata/conformance/golden/04-patch.json"),
    )
}

fn s05() -> Scenario {
    load(
        include_str!("../../testdata/conformance/scenarios/05-server-side-apply.yaml"),
        include_str!("../../testdata/conformance/golden/05-server-side-apply.json"),
    )
}

impl Scenario {
    fn body(&self, id: &str) -> Vec<u8> {
        match &self.steps[id]["body"] {
            Value::String(s) => s.clone().into_bytes(),
            other => serde_json::to_vec(other).unwrap(),
        }
    }

    fn answer(&self, id: &str) -> &Value {
        &self.answers[id].1
    }

    fn patch_type(&self, id: &str) -> Option<PatchType> {
        PatchType::from_content_type(self.steps[id]["content_type"].as_str().unwrap_or(""))
    }

    fn query(&self, id: &str, key: &str) -> Option<String> {
        self.steps[id]["query"]
            .get(key)
            .and_then(Value::as_str)
            .map(str::to_owned)
    }

    /// Runs one PATCH step like the server would, recording an `Update`
    /// for non-apply patches.
    fn patch(&self, id: &str, kind: &TypeInfo, live: Option<&Value>) -> Result<Value, PatchError> {
        let manager = self.query(id, "fieldManager");
        let pt = self.patch_type(id).unwrap();
        let manager = match (manager, pt) {
            (Some(m), _) => m,
            (None, PatchType::Apply) => String::new(),
            (None, _) => manager_from_user_agent("python-requests/2.31.0"),
        };
        let path = self.steps[id]["path"].as_str().unwrap_or("");
        let subresource = path.ends_with("/status").then_some("status");
        let opts = PatchOptions {
            manager: &manager,
            force: self.query(id, "force").as_deref() == Some("true"),
            subresource,
            now: NOW,
        };
        let mut out = apply_patch(kind, live, &self.body(id), pt, &opts)?;
        // The server keeps what a write may not change: `status` through the
        // main resource, everything but `status` through `/status`.
        if let (Some(live), Value::Object(m)) = (live, &mut out) {
            if subresource.is_some() {
                for (k, v) in live.as_object().unwrap() {
                    if k != "status" && k != "metadata" {
                        m.insert(k.clone(), v.clone());
                    }
                }
            } else if kind.has_status_subresource() {
                match live.get("status") {
                    Some(st) => m.insert("status".into(), st.clone()),
                    None => m.remove("status"),
                };
            }
        }
        if pt != PatchType::Apply {
            record_update(kind, live, &mut out, &manager, subresource, NOW);
        }
        Ok(out)
    }
}

/// Server bookkeeping the patch engine does not own, copied from the answer.
fn with_bookkeeping(mut ours: Value, golden: &Value) -> Value {
    for k in [
        "creationTimestamp",
        "generation",
        "namespace",
        "resourceVersion",
        "uid",
    ] {
        if let Some(v) = golden["metadata"].get(k) {
            ours["metadata"][k] = v.clone();
        }
    }
    ours
}

fn sorted_managed_fields(obj: &Value) -> Value {
    let mut entries = obj["metadata"]["managedFields"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    entries.sort_by_key(|e| e["manager"].as_str().unwrap_or("").to_owned());
    Value::Array(entries)
}

fn normalised_status(err: &PatchError) -> Value {
    let mut s = err.to_status();
    let digits = regex_lite_digits(s["message"].as_str().unwrap());
    s["message"] = json!(digits);
    let causes = s
        .pointer_mut("/details/causes")
        .and_then(Value::as_array_mut);
    for cause in causes.into_iter().flatten() {
        let digits = regex_lite_digits(cause["message"].as_str().unwrap());
        cause["message"] = json!(digits);
    }
    s
}

/// `\d+` → `<n>`, as the recording normalised messages.
fn regex_lite_digits(s: &str) -> String {
    let mut out = String::new();
    let mut in_digits = false;
    for c in s.chars() {
        if c.is_ascii_digit() {
            if !in_digits {
                out.push_str("<n>");
            }
            in_digits = true;
        } else {
            out.push(c);
            in_digits = false;
        }
    }
    out
}

fn without_managed_fields(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(m) = v["metadata"].as_object_mut() {
        m.remove("managedFields");
    }
    v
}

#[test]
fn create_records_an_update_entry_with_defaults_and_dots() {
    let s = s04();
    let deploy = TypeInfo::builtin("apps/v1", "Deployment").unwrap();
    let golden = s.answer("deploy");
    let mut created = without_managed_fields(golden);
    record_update(&deploy, None, &mut created, "conf-test", None, NOW);
    assert_eq!(
        sorted_managed_fields(&created),
        sorted_managed_fields(golden)
    );

    let ns = TypeInfo::builtin("v1", "Namespace").unwrap();
    let golden = s.answer("ns");
    let mut created = without_managed_fields(golden);
    // The server adds `spec.finalizers` and `status` after ownership is recorded.
    created.as_object_mut().unwrap().remove("spec");
    record_update(&ns, None, &mut created, "python-requests", None, NOW);
    assert_eq!(
        sorted_managed_fields(&created),
        sorted_managed_fields(golden)
    );
}

#[test]
fn scenario_04_patches_give_the_recorded_objects() {
    let s = s04();
    let deploy = TypeInfo::builtin("apps/v1", "Deployment").unwrap();
    let mut live = s.answer("deploy").clone();
    for id in [
        "merge",
        "merge-null-removes",
        "strategic-container",
        "strategic-delete-container",
        "json-patch",
    ] {
        let out = s
            .patch(id, &deploy, Some(&live))
            .unwrap_or_else(|e| panic!("{id}: {e}"));
        let golden = s.answer(id);
        let out = with_bookkeeping(out, golden);
        assert_eq!(
            sorted_managed_fields(&out),
            sorted_managed_fields(golden),
            "{id} managedFields"
        );
        assert_eq!(
            without_managed_fields(&out),
            without_managed_fields(golden),
            "{id}"
        );
        live = out;
    }
    for id in ["json-patch-test-fails", "json-patch-bad-path"] {
        let err = s.patch(id, &deploy, Some(&live)).unwrap_err();
        assert_eq!(err.status_code(), s.answers[id].0, "{id}");
        assert_eq!(normalised_status(&err), *s.answer(id), "{id}");
    }
    assert_eq!(s.patch_type("patch-unsupported-type"), None);
    // The quoted object follows Go's field order, which JSON storage does not
    // keep: compare everything around it.
    let err = s
        .patch("patch-wrong-type", &deploy, Some(&live))
        .unwrap_err();
    let got = normalised_status(&err);
    let want = s.answer("patch-wrong-type");
    assert_eq!(
        (got["code"].clone(), got["reason"].clone()),
        (want["code"].clone(), want["reason"].clone())
    );
    let tail = "json: cannot unmarshal string into Go struct field DeploymentSpec.spec.replicas of type int<n>";
    for (g, w) in [
        (&got["message"], &want["message"]),
        (
            &got["details"]["causes"][0]["message"],
            &want["details"]["causes"][0]["message"],
        ),
    ] {
        let (g, w) = (g.as_str().unwrap(), w.as_str().unwrap());
        assert!(g.ends_with(tail) && w.ends_with(tail), "{g}");
        assert_eq!(g.split('{').next(), w.split('{').next());
        assert!(g.contains(r#"\"replicas\":\"three\""#), "{g}");
    }
    assert_eq!(got["details"]["causes"][0]["field"], "patch");
    let final_answer = s.answer("final");
    assert_eq!(with_bookkeeping(live.clone(), final_answer), *final_answer);
}

#[test]
fn scenario_05_configmap_ownership_sequence() {
    let s = s05();
    let cm = TypeInfo::builtin("v1", "ConfigMap").unwrap();
    let mut live: Option<Value> = None;
    for id in [
        "apply-create",
        "apply-same",
        "apply-drop-b",
        "bob-conflict",
        "bob-shared-same-value",
        "bob-force",
        "update-by-carol",
        "apply-no-manager",
        "apply-wrong-name",
        "apply-bad-yaml",
    ] {
        let (code, golden) = &s.answers[id];
        match s.patch(id, &cm, live.as_ref()) {
            Ok(out) => {
                assert!(*code < 300, "{id}: expected {code}, got {out}");
                let out = with_bookkeeping(out, golden);
                assert_eq!(
                    sorted_managed_fields(&out),
                    sorted_managed_fields(golden),
                    "{id}"
                );
                assert_eq!(
                    without_managed_fields(&out),
                    without_managed_fields(golden),
                    "{id}"
                );
                live = Some(out);
            }
            Err(e) => {
                assert_eq!(e.status_code(), *code, "{id}: {e}");
                assert_eq!(normalised_status(&e), *golden, "{id}");
            }
        }
    }
}

#[test]
fn scenario_05_workloads_apply_drop_and_hpa_handover() {
    let s = s05();
    let deploy = TypeInfo::builtin("apps/v1", "Deployment").unwrap();
    let created = s.patch("apply-deploy", &deploy, None).unwrap();
    let golden = s.answer("apply-deploy");
    assert_eq!(
        sorted_managed_fields(&created),
        sorted_managed_fields(golden)
    );
    // The server defaults the applied object; continue from its answer.
    let mut live = golden.clone();
    for id in [
        "apply-deploy-drop-env",
        "hpa-style-replicas",
        "reapply-without-replicas",
    ] {
        let out = s
            .patch(id, &deploy, Some(&live))
            .unwrap_or_else(|e| panic!("{id}: {e}"));
        let golden = s.answer(id);
        let out = with_bookkeeping(out, golden);
        assert_eq!(
            sorted_managed_fields(&out),
            sorted_managed_fields(golden),
            "{id}"
        );
        assert_eq!(
            without_managed_fields(&out),
            without_managed_fields(golden),
            "{id}"
        );
        live = out;
    }

    let svc = TypeInfo::builtin("v1", "Service").unwrap();
    let created = s.patch("apply-service", &svc, None).unwrap();
    assert_eq!(
        sorted_managed_fields(&created),
        sorted_managed_fields(s.answer("apply-service"))
    );
    let out = s
        .patch(
            "apply-service-nodeport",
            &svc,
            Some(s.answer("apply-service")),
        )
        .unwrap();
    let golden = s.answer("apply-service-nodeport");
    assert_eq!(sorted_managed_fields(&out), sorted_managed_fields(golden));
    assert_eq!(out["spec"]["type"], "NodePort");

    let cm = TypeInfo::builtin("v1", "ConfigMap").unwrap();
    let dry = s.patch("apply-dry-run", &cm, None).unwrap();
    assert_eq!(
        sorted_managed_fields(&dry),
        sorted_managed_fields(s.answer("apply-dry-run"))
    );
}

fn s06() -> Scenario {
    load(
        include_str!("../../testdata/conformance/scenarios/06-crd-status.yaml"),
        include_str!("../../testdata/conformance/golden/06-crd-status.json"),
    )
}

fn s09() -> Scenario {
    load(
        include_str!("../../testdata/conformance/scenarios/09-field-validation.yaml"),
        include_str!("../../testdata/conformance/golden/09-field-validation.json"),
    )
}

fn custom_kind(s: &Scenario, crd_step: &str, status: bool) -> TypeInfo {
    let crd = &s.steps[crd_step]["body"];
    let version = &crd["spec"]["versions"][0];
    let api_version = format!(
        "{}/{}",
        crd["spec"]["group"].as_str().unwrap(),
        version["name"].as_str().unwrap()
    );
    let kind = crd["spec"]["names"]["kind"].as_str().unwrap();
    TypeInfo::custom(
        &api_version,
        kind,
        Some(&version["schema"]["openAPIV3Schema"]),
        status,
    )
}

#[test]
fn scenario_06_custom_resource_spec_and_status_ownership() {
    let s = s06();
    let gadget = custom_kind(&s, "crd", true);
    let golden = s.answer("create");
    let mut created = without_managed_fields(golden);
    record_update(&gadget, None, &mut created, "python-requests", None, NOW);
    assert_eq!(
        sorted_managed_fields(&created),
        sorted_managed_fields(golden)
    );

    let mut live = golden.clone();
    for id in [
        "spec-update",
        "metadata-only-update",
        "status-update",
        "status-apply",
    ] {
        let out = s
            .patch(id, &gadget, Some(&live))
            .unwrap_or_else(|e| panic!("{id}: {e}"));
        let golden = s.answer(id);
        // Defaulting and the timestamp normalisation are the server's part.
        let mut out = with_bookkeeping(out, golden);
        if let Some(t) = out.pointer_mut("/status/conditions/0/lastTransitionTime") {
            *t = json!("<time>");
        }
        assert_eq!(
            sorted_managed_fields(&out),
            sorted_managed_fields(golden),
            "{id}"
        );
        assert_eq!(
            without_managed_fields(&out),
            without_managed_fields(golden),
            "{id}"
        );
        live = out;
    }
    let created = s.patch("apply-new-via-ssa", &gadget, None).unwrap();
    let golden = s.answer("apply-new-via-ssa");
    assert_eq!(
        sorted_managed_fields(&created),
        sorted_managed_fields(golden)
    );
}

#[test]
fn scenario_09_unknown_fields_in_apply_fail_to_type() {
    let s = s09();
    let deploy = TypeInfo::builtin("apps/v1", "Deployment").unwrap();
    let err = s.patch("apply-strict-unknown", &deploy, None).unwrap_err();
    assert_eq!(normalised_status(&err), *s.answer("apply-strict-unknown"));
    let knob = custom_kind(&s, "crd", false);
    let err = s.patch("cr-apply-strict-unknown", &knob, None).unwrap_err();
    assert_eq!(
        normalised_status(&err),
        *s.answer("cr-apply-strict-unknown")
    );

    // A create keeps only known fields (pruned by the server) and owns them.
    let golden = s.answer("cr-warn-unknown");
    let mut created = without_managed_fields(golden);
    record_update(&knob, None, &mut created, "python-requests", None, NOW);
    assert_eq!(
        sorted_managed_fields(&created),
        sorted_managed_fields(golden)
    );
    let cm = TypeInfo::builtin("v1", "ConfigMap").unwrap();
    let golden = s.answer("warn-unknown");
    let mut created = without_managed_fields(golden);
    record_update(&cm, None, &mut created, "python-requests", None, NOW);
    assert_eq!(
        sorted_managed_fields(&created),
        sorted_managed_fields(golden)
    );
}

#[test]
fn content_types_managers_and_the_custom_kind_415() {
    assert_eq!(
        PatchType::from_content_type("application/merge-patch+json; charset=utf-8"),
        Some(PatchType::Merge)
    );
    assert_eq!(
        PatchType::from_content_type("application/apply-patch+yaml"),
        Some(PatchType::Apply)
    );
    assert_eq!(PatchType::from_content_type("application/json"), None);
    assert_eq!(
        manager_from_user_agent("kubectl/v1.32.0 (linux/amd64) kubernetes/abc"),
        "kubectl"
    );
    assert_eq!(
        manager_from_user_agent("python-requests/2.31.0"),
        "python-requests"
    );

    let knob = TypeInfo::custom("x.io/v1", "Knob", None, false);
    let opts = PatchOptions {
        manager: "m",
        force: false,
        subresource: None,
        now: NOW,
    };
    let err = apply_patch(&knob, Some(&json!({})), b"{}", PatchType::Strategic, &opts).unwrap_err();
    assert_eq!(
        err.to_status(),
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
               "message": "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml",
               "reason": "UnsupportedMediaType", "code": 415})
    );
    let merged = apply_patch(
        &knob,
        Some(&json!({"spec": {"a": 1}})),
        br#"{"spec":{"b":2}}"#,
        PatchType::Merge,
        &opts,
    );
    assert_eq!(merged.unwrap(), json!({"spec": {"a": 1, "b": 2}}));
    let null = apply_patch(&knob, Some(&json!({})), b"null", PatchType::Merge, &opts).unwrap_err();
    assert_eq!(
        (null.status_code(), null.message()),
        (400, "Object 'Kind' is missing in 'null'".to_owned())
    );
    let bad = apply_patch(&knob, Some(&json!({})), b"{", PatchType::Merge, &opts).unwrap_err();
    assert_eq!(
        (bad.status_code(), bad.message()),
        (400, "Invalid JSON Patch".to_owned())
    );
}

/// Arbitrary bodies of every patch type never panic, whatever they hold.
#[test]
fn arbitrary_patch_bodies_fail_cleanly() {
    struct Rng(u64);
    impl Rng {
        fn below(&mut self, n: u64) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0 % n
        }
        fn value(&mut self, depth: u32) -> Value {
            let words = [
                "spec",
                "containers",
                "name",
                "template",
                "metadata",
                "$patch",
                "delete",
                "replace",
                "$retainKeys",
                "$setElementOrder/containers",
                "0",
                "-",
                "ports",
            ];
            let word =
                |r: &mut Rng| json!(words[usize::try_from(r.below(words.len() as u64)).unwrap()]);
            match self.below(if depth == 0 { 4 } else { 7 }) {
                0 => Value::Null,
                1 => json!(self.below(5)),
                2 | 3 => word(self),
                4 => Value::Array((0..self.below(3)).map(|_| self.value(depth - 1)).collect()),
                _ => {
                    let mut m = serde_json::Map::new();
                    for _ in 0..self.below(4) {
                        let k = word(self).as_str().unwrap().to_owned();
                        m.insert(k, self.value(depth - 1));
                    }
                    Value::Object(m)
                }
            }
        }
    }
    let s = s04();
    let deploy = TypeInfo::builtin("apps/v1", "Deployment").unwrap();
    let live = s.answer("deploy").clone();
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let opts = PatchOptions {
        manager: "fuzz",
        force: rng.below(2) == 0,
        subresource: None,
        now: NOW,
    };
    for _ in 0..3000 {
        let body = rng.value(5);
        let pt = [
            PatchType::Merge,
            PatchType::Json,
            PatchType::Strategic,
            PatchType::Apply,
        ][usize::try_from(rng.below(4)).unwrap()];
        let body = match pt {
            PatchType::Json => {
                let path = format!("/{}/{}", rng.value(0), rng.value(0)).replace('"', "");
                let ops = ["add", "remove", "replace", "move", "copy", "test"];
                let op = ops[usize::try_from(rng.below(6)).unwrap()];
                json!([{"op": op, "path": path, "from": "/spec", "value": body}])
            }
            PatchType::Apply => {
                let mut b = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}});
                b["spec"] = body;
                b
            }
            _ => body,
        };
        let bytes = serde_json::to_vec(&body).unwrap();
        if let Ok(mut out) = apply_patch(&deploy, Some(&live), &bytes, pt, &opts) {
            record_update(&deploy, Some(&live), &mut out, "fuzz", None, NOW);
        }
    }
}
