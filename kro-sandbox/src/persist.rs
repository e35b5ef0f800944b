//! Optional persistence: a sandbox's objects in one JSON file, so a restart keeps them.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};
use std::time::Duration;

use serde_json::{Value, json};

use crate::sandbox::SandboxError;
use crate::state::Shared;
use crate::storage::Stored;

/// Writes every object to `path` (atomically, through a temporary file).
pub fn save(sh: &Shared, path: &Path) -> Result<(), SandboxError> {
    let (rv, items) = {
        let data = sh.data_read();
        (data.current_rv(), data.snapshot())
    };
    let objects: Vec<Value> = items
        .into_iter()
        .map(|((g, p), (ns, n), s)| json!({"group": g, "plural": p, "namespace": ns, "name": n, "rv": s.rv, "object": &*s.json}))
        .collect();
    let text = serde_json::to_string(&json!({"resourceVersion": rv, "objects": objects})).map_err(
        |e| SandboxError::Load {
            path: path.to_owned(),
            message: e.to_string(),
        },
    )?;
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).map_err(|source| SandboxError::Io {
        path: tmp.clone(),
        source,
    })?;
    std::fs::rename(&tmp, path).map_err(|source| SandboxError::Io {
        path: path.to_owned(),
        source,
    })
}

/// Loads objects saved by [`save`] (a missing file is an empty sandbox) and re-registers CRDs.
pub fn load(sh: &Arc<Shared>, path: &Path) -> Result<(), SandboxError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(SandboxError::Io {
                path: path.to_owned(),
                source,
            });
        }
    };
    let bad = |m: &str| SandboxError::Load {
        path: path.to_owned(),
        message: m.to_owned(),
    };
    let doc: Value = serde_json::from_str(&text).map_err(|e| bad(&e.to_string()))?;
    let rv = doc
        .get("resourceVersion")
        .and_then(Value::as_u64)
        .unwrap_or(1);
    let mut items = Vec::new();
    let mut crds = Vec::new();
    for o in doc
        .get("objects")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("no objects"))?
    {
        let s = |k: &str| {
            o.get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        let json_text = s("object");
        if s("plural") == "customresourcedefinitions" {
            crds.push(serde_json::from_str::<Value>(&json_text).map_err(|e| bad(&e.to_string()))?);
        }
        let stored = Stored {
            rv: o.get("rv").and_then(Value::as_u64).unwrap_or(rv),
            json: Arc::from(json_text),
        };
        items.push((
            (s("group"), s("plural")),
            (s("namespace"), s("name")),
            stored,
        ));
    }
    sh.data().restore(rv, items);
    let mut cat = sh.catalog_mut();
    for crd in crds {
        for def in crate::registry::crd::resources_of(&crd) {
            cat.insert(def);
        }
    }
    Ok(())
}

/// Saves whenever something changed, once a second, until the sandbox goes away.
pub async fn run(sh: Weak<Shared>, path: PathBuf) {
    let mut saved = 0;
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let Some(sh) = sh.upgrade() else { return };
        let rv = sh.data_read().current_rv();
        if rv != saved {
            match save(&sh, &path) {
                Ok(()) => saved = rv,
                Err(e) => tracing::warn!(error = %e, "could not save sandbox data"),
            }
        }
    }
}
