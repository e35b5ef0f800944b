//! Replays recorded kube-apiserver exchanges against a sandbox, normalising answers exactly as
//! the recording did, and reports every difference by step and JSON path.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::LazyLock;
use std::time::{Duration, Instant};

use regex::Regex;
use serde_json::{Map, Value, json};

use super::http;

static UUID: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new("[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}").unwrap()
});
static UUID_FULL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new("^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$").unwrap()
});
static DIGITS: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\d+").unwrap());
static AGE: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^\d+[smhd](\d+[smhd])?$").unwrap());
static VAR: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\$\{([A-Za-z0-9_-]+)((?:\.[A-Za-z0-9_-]+)*)\}").unwrap());

fn volatile(key: &str) -> Option<&'static str> {
    Some(match key {
        "uid" => "<uid>",
        "resourceVersion" => "<rv>",
        "creationTimestamp" | "deletionTimestamp" | "time" | "lastTransitionTime"
        | "lastUpdateTime" | "lastHeartbeatTime" | "renewTime" | "acquireTime" | "eventTime"
        | "firstTimestamp" | "lastTimestamp" | "buildDate" => "<time>",
        "clusterIP" => "<ip>",
        "nodePort" => "<port>",
        "continue" => "<continue>",
        "storageVersionHash" => "<hash>",
        "gitVersion"
        | "gitCommit"
        | "goVersion"
        | "minor"
        | "major"
        | "compiler"
        | "platform"
        | "gitTreeState"
        | "emulationMajor"
        | "emulationMinor"
        | "minCompatibilityMajor"
        | "minCompatibilityMinor" => "<version>",
        "serverAddress" => "<address>",
        _ => return None,
    })
}

/// Python's `json.dumps(v, sort_keys=True)`, used to order causes the same way.
fn py_dumps(v: &Value) -> String {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let parts: Vec<String> = keys
                .iter()
                .map(|k| format!("{}: {}", py_str(k), py_dumps(&m[*k])))
                .collect();
            format!("{{{}}}", parts.join(", "))
        }
        Value::Array(a) => format!(
            "[{}]",
            a.iter().map(py_dumps).collect::<Vec<_>>().join(", ")
        ),
        Value::String(s) => py_str(s),
        Value::Bool(b) => if *b { "true" } else { "false" }.to_owned(),
        Value::Null => "null".to_owned(),
        Value::Number(n) => n.to_string(),
    }
}

fn py_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || (c as u32) > 0x7e => {
                let mut buf = [0u16; 2];
                for u in c.encode_utf16(&mut buf) {
                    out.push_str(&format!("\\u{u:04x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn is_zeroish(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::Bool(b) => !b,
        _ => false,
    }
}

/// The recording's normalisation.
pub fn normalise(v: &Value, key: Option<&str>) -> Value {
    match v {
        Value::Object(m) => {
            let mut out: Map<String, Value> = m
                .iter()
                .map(|(k, x)| (k.clone(), normalise(x, Some(k))))
                .collect();
            if out.get("kind") == Some(&json!("Status"))
                && let Some(Value::Array(causes)) =
                    out.get_mut("details").and_then(|d| d.get_mut("causes"))
                && causes.len() > 1
            {
                causes.sort_by_key(py_dumps);
                let n = causes.len();
                out.insert(
                    "message".into(),
                    json!(format!("<message listing {n} causes>")),
                );
            }
            if let (Some(Value::String(prefix)), Some(Value::String(name))) =
                (m.get("generateName"), m.get("name"))
                && name.starts_with(prefix.as_str())
            {
                out.insert("name".into(), json!(format!("{prefix}<suffix>")));
            }
            Value::Object(out)
        }
        Value::Array(a) => {
            if key == Some("clusterIPs") {
                return Value::Array(a.iter().map(|_| json!("<ip>")).collect());
            }
            let mut items: Vec<Value> = a.iter().map(|x| normalise(x, None)).collect();
            if key == Some("managedFields") {
                let s = |m: &Value, k: &str| {
                    m.get(k)
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned()
                };
                items.sort_by_key(|m| (s(m, "manager"), s(m, "operation"), s(m, "subresource")));
            }
            Value::Array(items)
        }
        scalar => {
            if let Some(k) = key
                && let Some(p) = volatile(k)
                && !is_zeroish(scalar)
            {
                return json!(p);
            }
            let Value::String(s) = scalar else {
                return scalar.clone();
            };
            if UUID_FULL.is_match(s) {
                return json!("<uid>");
            }
            let mut s = s.clone();
            if matches!(key, Some("message" | "note")) {
                s = UUID.replace_all(&s, "<uid>").into_owned();
                s = DIGITS.replace_all(&s, "<n>").into_owned();
            }
            if AGE.is_match(&s) {
                s = "<age>".to_owned();
            }
            Value::String(s)
        }
    }
}

fn ident(x: &Value, id: &str) -> String {
    match x {
        Value::Object(m) => m
            .get(id)
            .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
            .unwrap_or_default(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Keeps only the discovery entries both answers list.
pub fn subset(real: &Value, got: &Value) -> (Value, Value) {
    let (Value::Object(r), Value::Object(g)) = (real, got) else {
        return (real.clone(), got.clone());
    };
    let (mut r, mut g) = (r.clone(), g.clone());
    for (key, id) in [
        ("resources", "name"),
        ("groups", "name"),
        ("versions", "version"),
    ] {
        let (Some(Value::Array(ra)), Some(Value::Array(ga))) =
            (r.get(key).cloned(), g.get(key).cloned())
        else {
            continue;
        };
        let gn: Vec<String> = ga.iter().map(|x| ident(x, id)).collect();
        let both: Vec<String> = ra
            .iter()
            .map(|x| ident(x, id))
            .filter(|n| gn.contains(n))
            .collect();
        let pick = |xs: &[Value]| {
            let mut v: Vec<Value> = xs
                .iter()
                .filter(|x| both.contains(&ident(x, id)))
                .cloned()
                .collect();
            v.sort_by_key(|x| ident(x, id));
            v
        };
        let (mut rp, mut gp) = (pick(&ra), pick(&ga));
        for (a, b) in rp.iter_mut().zip(gp.iter_mut()) {
            let (na, nb) = subset(a, b);
            *a = na;
            *b = nb;
        }
        r.insert(key.into(), Value::Array(rp));
        g.insert(key.into(), Value::Array(gp));
    }
    (Value::Object(r), Value::Object(g))
}

fn short(v: &Value, n: usize) -> String {
    let s = v.to_string();
    s.chars().take(n).collect()
}

/// Paths where two normalised answers differ.
pub fn diff(a: &Value, b: &Value, path: &str) -> Vec<String> {
    let same_type = std::mem::discriminant(a) == std::mem::discriminant(b);
    if !same_type {
        return vec![format!(
            "{}: real {} / got {}",
            if path.is_empty() { "." } else { path },
            short(a, 120),
            short(b, 120)
        )];
    }
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
            keys.sort();
            keys.dedup();
            let mut out = Vec::new();
            for k in keys {
                match (x.get(k), y.get(k)) {
                    (Some(av), None) => {
                        out.push(format!("{path}.{k}: missing (real {})", short(av, 80)))
                    }
                    (None, Some(bv)) => {
                        out.push(format!("{path}.{k}: extra (got {})", short(bv, 80)))
                    }
                    (Some(av), Some(bv)) => out.extend(diff(av, bv, &format!("{path}.{k}"))),
                    (None, None) => {}
                }
            }
            out
        }
        (Value::Array(x), Value::Array(y)) => {
            let mut out = Vec::new();
            if x.len() != y.len() {
                out.push(format!(
                    "{path}: real has {} items, got {}",
                    x.len(),
                    y.len()
                ));
            }
            for (i, (p, q)) in x.iter().zip(y).enumerate() {
                out.extend(diff(p, q, &format!("{path}[{i}]")));
            }
            out
        }
        _ if a == b => vec![],
        _ => vec![format!(
            "{}: real {} / got {}",
            if path.is_empty() { "." } else { path },
            short(a, 120),
            short(b, 120)
        )],
    }
}

fn lookup(answers: &BTreeMap<String, Value>, sid: &str, dotted: &str) -> Value {
    let mut v = answers.get(sid).cloned().unwrap_or(Value::Null);
    for part in dotted.split('.').filter(|p| !p.is_empty()) {
        v = match &v {
            Value::Array(a) => part
                .parse::<usize>()
                .ok()
                .and_then(|i| a.get(i).cloned())
                .unwrap_or(Value::Null),
            _ => v.get(part).cloned().unwrap_or(Value::Null),
        };
    }
    v
}

fn scalar_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "None".to_owned(),
        other => other.to_string(),
    }
}

fn subst(s: &str, answers: &BTreeMap<String, Value>) -> String {
    VAR.replace_all(s, |c: &regex::Captures<'_>| {
        scalar_text(&lookup(answers, &c[1], &c[2]))
    })
    .into_owned()
}

fn subst_obj(o: &Value, answers: &BTreeMap<String, Value>) -> Value {
    match o {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| (k.clone(), subst_obj(v, answers)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(|v| subst_obj(v, answers)).collect()),
        Value::String(s) => match VAR.captures(s) {
            Some(c) if c.get(0).is_some_and(|m| m.as_str() == s) => lookup(answers, &c[1], &c[2]),
            _ => Value::String(subst(s, answers)),
        },
        other => other.clone(),
    }
}

/// One step's outcome.
#[derive(Debug)]
pub struct StepResult {
    pub id: String,
    pub problems: Vec<String>,
}

fn call(
    addr: SocketAddr,
    step: &Value,
    answers: &BTreeMap<String, Value>,
) -> (u16, Value, Option<String>) {
    let method = step["method"].as_str().unwrap_or("GET").to_uppercase();
    let path = subst(step["path"].as_str().unwrap_or("/"), answers);
    let mut query: Vec<(String, String)> = step
        .get("query")
        .and_then(Value::as_object)
        .map(|q| {
            q.iter()
                .map(|(k, v)| (k.clone(), subst(&scalar_text(v), answers)))
                .collect()
        })
        .unwrap_or_default();
    let mut headers: Vec<(String, String)> = vec![
        ("User-Agent".into(), "python-requests/2.32.3".into()),
        ("Accept".into(), "application/json".into()),
    ];
    if let Some(h) = step.get("headers").and_then(Value::as_object) {
        for (k, v) in h {
            headers.retain(|(hk, _)| !hk.eq_ignore_ascii_case(k));
            headers.push((k.clone(), scalar_text(v)));
        }
    }
    let mut body = None;
    if let Some(b) = step.get("body") {
        let b = subst_obj(b, answers);
        let default_ct = if method == "PATCH" {
            "application/merge-patch+json"
        } else {
            "application/json"
        };
        let ct = step
            .get("content_type")
            .and_then(Value::as_str)
            .unwrap_or(default_ct);
        headers.push(("Content-Type".into(), ct.to_owned()));
        // YAML media types get JSON text, which is YAML too.
        body = Some(match b {
            Value::String(s) => s.into_bytes(),
            other => serde_json::to_vec(&other).unwrap(),
        });
    }
    if method == "WATCH" {
        let seconds = step.get("seconds").and_then(Value::as_f64).unwrap_or(3.0);
        query.push(("watch".into(), "true".into()));
        query.push(("timeoutSeconds".into(), format!("{}", seconds as u64)));
        let want = step
            .get("events")
            .and_then(Value::as_u64)
            .unwrap_or(1_000_000) as usize;
        let (code, body) = http::watch(
            addr,
            &format!("{path}{}", http::query_string(&query)),
            &headers,
            want,
            seconds,
        );
        return (code, body, None);
    }
    let target = format!("{path}{}", http::query_string(&query));
    let poll = step.get("poll").and_then(Value::as_f64).unwrap_or(0.0);
    let want = step.get("poll_code").and_then(Value::as_u64).unwrap_or(200) as u16;
    let deadline = Instant::now() + Duration::from_secs_f64(poll);
    loop {
        let r = http::request(addr, &method, &target, &headers, body.as_deref());
        if poll == 0.0 || r.code == want || Instant::now() > deadline {
            let warnings = r.header("warning");
            let w = (!warnings.is_empty()).then(|| warnings.join(", "));
            return (r.code, r.json(), w);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Replays one scenario file against `addr`, comparing with its golden answers.
pub fn run_scenario(addr: SocketAddr, scenario: &Value, golden: &[Value]) -> Vec<StepResult> {
    let golden: BTreeMap<String, &Value> = golden
        .iter()
        .map(|g| (g["id"].as_str().unwrap_or_default().to_owned(), g))
        .collect();
    let mut answers = BTreeMap::new();
    let mut out = Vec::new();
    for step in scenario["steps"].as_array().cloned().unwrap_or_default() {
        if let Some(s) = step.get("sleep").and_then(Value::as_f64) {
            std::thread::sleep(Duration::from_secs_f64(s));
        }
        let id = step["id"].as_str().unwrap_or_default().to_owned();
        let (code, body, warnings) = call(addr, &step, &answers);
        answers.insert(id.clone(), body.clone());
        let Some(g) = golden.get(&id) else {
            out.push(StepResult {
                id,
                problems: vec!["not in the recording".into()],
            });
            continue;
        };
        let norm = normalise(&body, None);
        let (real, got) = if step.get("compare").and_then(Value::as_str) == Some("subset") {
            subset(&g["body"], &norm)
        } else {
            (g["body"].clone(), norm)
        };
        let mut problems = Vec::new();
        let real_code = g["code"].as_u64().unwrap_or(0);
        if real_code != u64::from(code) {
            problems.push(format!("code: real {real_code} / got {code}"));
        }
        let got_w = warnings.map(|w| normalise(&json!(w), Some("message")));
        let real_w = g.get("warnings").cloned();
        if got_w != real_w {
            problems.push(format!("Warning header: real {real_w:?} / got {got_w:?}"));
        }
        problems.extend(diff(&real, &got, ""));
        out.push(StepResult { id, problems });
    }
    out
}
