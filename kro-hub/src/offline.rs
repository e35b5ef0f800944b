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
    /// Something wrong at a known place in the file.
    #[error("{path}:{line}:{column}: {message}")]
    At {
        /// File.
        path: String,
        /// 1-based line.
        line: u64,
        /// 1-based column.
        column: u64,
        /// What is wrong, naming the RGD and resource when known.
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
    /// The RGDs that parsed (valid or not), for callers that fetch the
    /// schemas of their kinds.
    pub rgds: Vec<kro_core::ResourceGraphDefinition>,
}

/// Checks every RGD in `path` with the same engine the hub runs, against
/// the built-in Kubernetes kinds' schemas.
pub fn validate_file(path: &Path) -> Validation {
    validate_file_with(path, &kro_core::CompileOptions::with_builtin_kinds())
}

/// One YAML document of a stream, with the number of lines before it.
struct Document {
    text: String,
    lines_before: u64,
}

/// Splits a YAML stream at its `---` lines, keeping where each document
/// starts so errors can give the line in the file.
fn split_documents(text: &str) -> Vec<Document> {
    let mut docs = Vec::new();
    let mut current = String::new();
    let mut lines_before = 0u64;
    for (i, line) in text.lines().enumerate() {
        let marker = line == "---" || line.starts_with("--- ") || line.starts_with("---\t");
        if marker {
            docs.push(Document {
                text: std::mem::take(&mut current),
                lines_before,
            });
            lines_before = i as u64 + 1;
            continue;
        }
        current.push_str(line);
        current.push('\n');
    }
    docs.push(Document {
        text: current,
        lines_before,
    });
    docs
}

/// Just enough of an RGD to say which resource a line belongs to.
#[derive(serde::Deserialize)]
struct Outline {
    #[serde(default)]
    spec: Option<OutlineSpec>,
}

#[derive(serde::Deserialize)]
struct OutlineSpec {
    #[serde(default)]
    resources: Vec<serde_saphyr::Spanned<Value>>,
}

/// The id of the resource of `doc` that spans `line` (in the document).
fn resource_at(doc: &str, line: u64) -> Option<String> {
    let outline: Outline = serde_saphyr::from_str(doc).ok()?;
    let resources = outline.spec?.resources;
    let index = resources
        .iter()
        .rposition(|r| r.referenced.line() <= line)?;
    let r = &resources[index];
    Some(
        r.value
            .get("id")
            .and_then(Value::as_str)
            .map_or_else(|| format!("#{index}"), str::to_owned),
    )
}

/// A YAML or structure error of one document, at its place in the file.
fn located(
    path: &Path,
    doc: &Document,
    rgd: Option<&Value>,
    e: &serde_saphyr::Error,
) -> OfflineError {
    let message = bare_message(e);
    let Some(loc) = e.location() else {
        return invalid(path, message);
    };
    let mut prefix = String::new();
    if let Some(rgd) = rgd {
        let name = rgd
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("(unnamed)");
        prefix = format!("RGD \"{name}\", ");
        if let Some(id) = resource_at(&doc.text, loc.line()) {
            prefix.push_str(&format!("resource \"{id}\", "));
        }
    }
    OfflineError::At {
        path: path.display().to_string(),
        line: doc.lines_before + loc.line(),
        column: loc.column(),
        message: format!("{prefix}{message}"),
    }
}

/// The error's text without the location it repeats (given separately)
/// nor the excerpt of the source that follows it.
fn bare_message(e: &serde_saphyr::Error) -> String {
    let text = e.to_string();
    let first = text.lines().next().unwrap_or_default();
    let first = first.strip_prefix("error: ").unwrap_or(first);
    match first
        .strip_prefix("line ")
        .and_then(|rest| rest.split_once(": "))
    {
        Some((_, message)) => message.to_owned(),
        None => first.to_owned(),
    }
}

/// [`validate_file`] with the compile options the hub would use.
pub fn validate_file_with(path: &Path, options: &kro_core::CompileOptions) -> Validation {
    let mut out = Validation {
        valid: Vec::new(),
        errors: Vec::new(),
        rgds: Vec::new(),
    };
    let text = match read(path) {
        Ok(t) => t,
        Err(e) => {
            out.errors.push(e);
            return out;
        }
    };
    let mut found = 0;
    for doc in split_documents(&text) {
        let value: Option<Value> = match serde_saphyr::from_str(&doc.text) {
            Ok(v) => v,
            Err(e) => {
                out.errors.push(located(path, &doc, None, &e));
                continue;
            }
        };
        let Some(value) = value.filter(is_rgd) else {
            continue;
        };
        found += 1;
        let rgd: kro_core::ResourceGraphDefinition = match serde_saphyr::from_str(&doc.text) {
            Ok(r) => r,
            Err(e) => {
                out.errors.push(located(path, &doc, Some(&value), &e));
                continue;
            }
        };
        match kro_core::compile_with(&rgd, options) {
            Ok(graph) => out.valid.push(format!(
                "{}: ResourceGraphDefinition {} is valid: kind {}, order {}{}",
                path.display(),
                graph.name(),
                graph.crd()["spec"]["names"]["kind"].as_str().unwrap_or("?"),
                graph.topological_order().join(" -> "),
                unchecked_note(&rgd, options),
            )),
            Err(e) => out.errors.push(invalid(path, e)),
        }
        out.rgds.push(rgd);
    }
    if found == 0 && out.errors.is_empty() {
        out.errors
            .push(invalid(path, "no ResourceGraphDefinition in this file"));
    }
    out
}

/// Names the kinds whose fields were not checked for want of a schema.
fn unchecked_note(
    rgd: &kro_core::ResourceGraphDefinition,
    options: &kro_core::CompileOptions,
) -> String {
    let builtin: std::collections::BTreeSet<_> = if options.builtin_kinds {
        kro_core::CompileOptions::builtin_kind_names().collect()
    } else {
        Default::default()
    };
    let unchecked: Vec<String> = crate::schemas::rgd_kinds(rgd)
        .into_keys()
        .filter(|k| !options.resource_schemas.contains_key(k) && !builtin.contains(k))
        .map(|(api_version, kind)| format!("{kind} {api_version}"))
        .collect();
    if unchecked.is_empty() {
        String::new()
    } else {
        format!(
            " (fields of {} not checked: no schema; pass --schemas DIR or --kubeconfig FILE)",
            unchecked.join(", ")
        )
    }
}

/// Adds the kinds of every OpenAPI v3 document (a cluster's
/// `/openapi/v3/apis/<group>/<version>`) and CustomResourceDefinition in
/// the `.json`, `.yaml` and `.yml` files under `dir`; returns how many
/// kinds. Other documents (a bundle's Deployments, say) are skipped.
pub fn load_schemas(
    dir: &Path,
    options: &mut kro_core::CompileOptions,
) -> Result<usize, OfflineError> {
    let mut files = Vec::new();
    collect_files(dir, 0, &mut files)?;
    let mut kinds = 0;
    for file in files {
        let text = read(&file)?;
        let docs = kro_core::parse_yaml_documents(&text).map_err(|e| invalid(&file, e))?;
        for doc in &docs {
            kinds += add_schema_doc(doc, options);
        }
    }
    if kinds == 0 {
        return Err(invalid(
            dir,
            "no OpenAPI v3 document or CustomResourceDefinition found",
        ));
    }
    Ok(kinds)
}

/// How deep `--schemas` looks into folders.
const MAX_SCHEMA_DEPTH: usize = 8;

fn collect_files(
    dir: &Path,
    depth: usize,
    out: &mut Vec<std::path::PathBuf>,
) -> Result<(), OfflineError> {
    let entries = std::fs::read_dir(dir).map_err(|source| OfflineError::Read {
        path: dir.display().to_string(),
        source,
    })?;
    let mut paths: Vec<_> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
    paths.sort();
    for path in paths {
        if path.is_dir() {
            if depth < MAX_SCHEMA_DEPTH {
                collect_files(&path, depth + 1, out)?;
            }
        } else if path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| matches!(e, "json" | "yaml" | "yml"))
        {
            out.push(path);
        }
    }
    Ok(())
}

fn add_schema_doc(doc: &Value, options: &mut kro_core::CompileOptions) -> usize {
    if doc.pointer("/components/schemas").is_some() {
        return options.add_openapi_v3(doc);
    }
    match doc.get("kind").and_then(Value::as_str) {
        Some("CustomResourceDefinition") => options.add_crd(doc),
        Some(k) if k.ends_with("List") => doc
            .get("items")
            .and_then(Value::as_array)
            .map(|items| items.iter().map(|i| add_schema_doc(i, options)).sum())
            .unwrap_or(0),
        _ => 0,
    }
}

/// The flag that binds what `at` reads of the target cluster.
fn cluster_flag(at: &kro_core::Location) -> &'static str {
    let expression = at.expression.as_deref().unwrap_or_default();
    if expression.contains("cluster.labels") {
        "--cluster-label KEY=VALUE (once per label)"
    } else if expression.contains("cluster.annotations") {
        "--cluster-annotation KEY=VALUE (once per annotation)"
    } else {
        "--cluster-name NAME"
    }
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
    if cluster.is_none()
        && let Some(at) = graph.cluster_reference()
    {
        return Err(invalid(
            rgd_path,
            format!(
                "{at}: this graph reads the cluster it is placed on; pass {} to render it as for one cluster",
                cluster_flag(&at)
            ),
        ));
    }
    let wave = match (graph.rollout(), &cluster) {
        (Some(policy), Some(cluster)) => wave_line(policy, cluster),
        _ => String::new(),
    };
    let instance_text = read(instance_path)?;
    let instance = kro_core::parse_yaml_documents(&instance_text)
        .map_err(|e| invalid(instance_path, e))?
        .into_iter()
        .next()
        .ok_or_else(|| invalid(instance_path, "the file holds no instance"))?;
    let mut ctx = EvalContext::new(graph.defaulted(&instance)).for_graph(&graph);
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
    Ok(wave + &report_yaml(&report).map_err(|e| invalid(instance_path, e))?)
}

/// Which wave of `spec.rollout` the cluster (`{name, labels}`) is in, as a
/// comment heading the render.
fn wave_line(policy: &kro_core::rollout::RolloutPolicy, cluster: &Value) -> String {
    let name = cluster["name"].as_str().unwrap_or("the cluster");
    let labels: std::collections::BTreeMap<String, String> =
        serde_json::from_value(cluster["labels"].clone()).unwrap_or_default();
    let waves = policy.assign([(name, &labels)]);
    let Some(at) = waves.iter().position(|w| !w.is_empty()) else {
        return String::new();
    };
    format!(
        "# rollout: cluster {name} is in wave {} ({} of {})\n",
        policy.waves[at].name,
        at + 1,
        policy.waves.len()
    )
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
