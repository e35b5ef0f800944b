//! `kro-hub validate` and `kro-hub render`: the engine on YAML files, with
//! no cluster, so authors can check an RGD before applying it.

use std::fmt::Write as _;
use std::path::Path;

use kro_core::{EvalContext, RenderReport};
use serde_json::Value;

/// Errors of the offline commands, each naming the file.
#[derive(Debug, thiserror::Error)]
pub enum OfflineError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// File.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file's content is not what the command needs.
    #[error("{path}: {message}")]
    Invalid {
        /// File.
        path: String,
        /// What is wrong.
        message: String,
    },
}

fn read(path: &Path) -> Result<String, OfflineError> {
    std::fs::read_to_string(path).map_err(|source| OfflineError::Read {
        path: path.display().to_string(),
        source,
    })
}

fn invalid(path: &Path, message: impl ToString) -> OfflineError {
    OfflineError::Invalid {
        path: path.display().to_string(),
        message: message.to_string(),
    }
}

fn is_rgd(doc: &Value) -> bool {
    doc.get("kind").and_then(Value::as_str) == Some(kro_core::rgd::RGD_KIND)
}

/// The outcome of validating one file.
#[derive(Debug)]
pub struct Validation {
    /// One line per RGD found: a summary when valid.
    pub valid: Vec<String>,
    /// One entry per problem.
    pub errors: Vec<OfflineError>,
}

/// Checks every RGD in `path` with the same engine the hub runs.
pub fn validate_file(path: &Path) -> Validation {
    validate_file_with(path, &kro_core::CompileOptions::default())
}

/// [`validate_file`] with the compile options the hub would use.
pub fn validate_file_with(path: &Path, options: &kro_core::CompileOptions) -> Validation {
    let mut out = Validation {
        valid: Vec::new(),
        errors: Vec::new(),
    };
    let text = match read(path) {
        Ok(t) => t,
        Err(e) => {
            out.errors.push(e);
            return out;
        }
    };
    let docs = match kro_core::parse_yaml_documents(&text) {
        Ok(d) => d,
        Err(e) => {
            out.errors.push(invalid(path, e));
            return out;
        }
    };
    let rgds: Vec<&Value> = docs.iter().filter(|d| is_rgd(d)).collect();
    if rgds.is_empty() {
        out.errors
            .push(invalid(path, "no ResourceGraphDefinition in this file"));
    }
    for doc in rgds {
        let checked = serde_json::from_value::<kro_core::ResourceGraphDefinition>(doc.clone())
            .map_err(|e| format!("ResourceGraphDefinition: {e}"))
            .and_then(|rgd| kro_core::compile_with(&rgd, options).map_err(|e| e.to_string()));
        match checked {
            Ok(graph) => out.valid.push(format!(
                "{}: ResourceGraphDefinition {} is valid: kind {}, order {}",
                path.display(),
                graph.name(),
                graph.crd()["spec"]["names"]["kind"].as_str().unwrap_or("?"),
                graph.topological_order().join(" -> ")
            )),
            Err(message) => out.errors.push(invalid(path, message)),
        }
    }
    out
}

/// Renders one instance of the RGD in `rgd_path` as multi-document YAML,
/// with a comment for each resource that is excluded or still waiting.
/// `observed_path`, when given, is a YAML map from resource id to the
/// object as a cluster would report it.
pub fn render(
    rgd_path: &Path,
    instance_path: &Path,
    observed_path: Option<&Path>,
    cluster: Option<Value>,
    options: &kro_core::CompileOptions,
) -> Result<String, OfflineError> {
    let rgd_text = read(rgd_path)?;
    let docs = kro_core::parse_yaml_documents(&rgd_text).map_err(|e| invalid(rgd_path, e))?;
    let rgd_doc = docs
        .into_iter()
        .find(is_rgd)
        .ok_or_else(|| invalid(rgd_path, "no ResourceGraphDefinition in this file"))?;
    let rgd: kro_core::ResourceGraphDefinition =
        serde_json::from_value(rgd_doc).map_err(|e| invalid(rgd_path, e))?;
    let graph = kro_core::compile_with(&rgd, options).map_err(|e| invalid(rgd_path, e))?;
    let instance_text = read(instance_path)?;
    let instance = kro_core::parse_yaml_documents(&instance_text)
        .map_err(|e| invalid(instance_path, e))?
        .into_iter()
        .next()
        .ok_or_else(|| invalid(instance_path, "the file holds no instance"))?;
    let mut ctx = EvalContext::new(graph.defaulted(&instance));
    if let Some(cluster) = cluster {
        ctx = ctx.with_cluster(cluster);
    }
    if let Some(path) = observed_path {
        let observed = kro_core::parse_yaml_documents(&read(path)?)
            .map_err(|e| invalid(path, e))?
            .into_iter()
            .next()
            .unwrap_or(Value::Null);
        let Value::Object(map) = observed else {
            return Err(invalid(path, "expected a map from resource id to object"));
        };
        for (id, obj) in map {
            ctx.observe(id, obj);
        }
    }
    let report = graph
        .render_all(&ctx)
        .map_err(|e| invalid(instance_path, e))?;
    report_yaml(&report).map_err(|e| invalid(instance_path, e))
}

fn report_yaml(report: &RenderReport) -> Result<String, String> {
    let mut out = String::new();
    for res in &report.resources {
        if let Some(why) = &res.excluded {
            let _ = writeln!(out, "# {}: excluded ({why})", res.id);
            continue;
        }
        if !res.pending_on.is_empty() {
            let _ = writeln!(
                out,
                "# {}: waiting for {}",
                res.id,
                res.pending_on.join(", ")
            );
            continue;
        }
        for obj in &res.objects {
            let role = if res.external {
                "external reference"
            } else {
                "resource"
            };
            let _ = writeln!(out, "---\n# {role} {}", res.id);
            out.push_str(&serde_saphyr::to_string(obj).map_err(|e| e.to_string())?);
        }
    }
    if report.status.as_object().is_some_and(|m| !m.is_empty()) {
        let _ = writeln!(out, "---\n# instance status fields");
        out.push_str(&serde_saphyr::to_string(&report.status).map_err(|e| e.to_string())?);
    }
    Ok(out)
}
