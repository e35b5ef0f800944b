//! The driver behind `#[derive(ResourceGraph)]`: gathers the spec struct and
//! every type it reaches, runs the kro engine on the assembled RGD and emits
//! either the kind type or the engine's error at the tokens that caused it.
//!
//! A derive only sees its own struct, so the types it uses are fetched by
//! macro callbacks: each `#[derive(SimpleSchema)]`/`#[derive(ResourceStatus)]`
//! type defines a `__kro_item_<Name>!` macro that appends its own tokens to
//! the payload and calls back here, until nothing is missing.

use std::collections::BTreeMap;

use proc_macro2::{Delimiter, Span, TokenStream, TokenTree};
use quote::{format_ident, quote, quote_spanned};
use syn::DeriveInput;

use crate::assemble::{self, Assembled, SpanMap};
use crate::attrs::{Item, parse_item};
use crate::emit;

/// The callback macro name of a type.
pub(crate) fn item_macro(name: &syn::Ident) -> syn::Ident {
    format_ident!("__kro_item_{}", name, span = name.span())
}

struct Payload {
    spec: DeriveInput,
    items: Vec<DeriveInput>,
}

fn parse_payload(input: TokenStream) -> syn::Result<Payload> {
    let mut spec = None;
    let mut items = Vec::new();
    let mut tokens = input.into_iter();
    while let Some(tag) = tokens.next() {
        let group = match tokens.next() {
            Some(TokenTree::Group(g)) if g.delimiter() == Delimiter::Brace => g,
            _ => return Err(syn::Error::new(tag.span(), "malformed kro payload")),
        };
        let parsed: DeriveInput = syn::parse2(group.stream())?;
        match tag.to_string().as_str() {
            "spec" => spec = Some(parsed),
            _ => items.push(parsed),
        }
    }
    let spec = spec.ok_or_else(|| syn::Error::new(Span::call_site(), "kro payload lacks spec"))?;
    Ok(Payload { spec, items })
}

/// Entry point of `__check!`.
pub(crate) fn check(input: TokenStream) -> TokenStream {
    let original = input.clone();
    let payload = match parse_payload(input) {
        Ok(p) => p,
        Err(e) => return e.to_compile_error(),
    };
    let spec = match parse_item(&payload.spec, true) {
        Ok(s) => s,
        Err(e) => return e.to_compile_error(),
    };
    let mut parsed = Vec::new();
    for item in &payload.items {
        match parse_item(item, false) {
            Ok(i) => parsed.push(i),
            Err(e) => return e.to_compile_error(),
        }
    }
    let items: BTreeMap<String, &Item> = parsed.iter().map(|i| (i.ident.to_string(), i)).collect();

    if let Some(mut path) = assemble::first_missing(&spec, &items) {
        // Resolving the callback macro fails with a bare "cannot find macro"
        // when the type does not derive; this bound says why.
        let ty = path.clone();
        let assertion = quote_spanned! {ty.segments.last().map_or_else(Span::call_site, |s| s.ident.span())=>
            const _: fn() = || {
                fn graph_type<T: ::kro_sdk::GraphType + ?::core::marker::Sized>() {}
                graph_type::<#ty>();
            };
        };
        if let Some(last) = path.segments.last_mut() {
            last.ident = item_macro(&last.ident);
        }
        let span = path
            .segments
            .last()
            .map_or_else(Span::call_site, |s| s.ident.span());
        return quote_spanned! {span=> #assertion #path! { #original } };
    }

    let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_default();
    let assembled = match assemble::assemble(&spec, &items, &manifest_dir) {
        Ok(a) => a,
        Err(e) => return fallback(&payload.spec, &spec, e),
    };
    match verify(&assembled, &spec) {
        Ok(out) => emit::kind_type(&payload.spec, &spec, &assembled, &out),
        Err(e) => fallback(&payload.spec, &spec, e),
    }
}

/// What the engine says about the assembled RGD.
pub(crate) struct Verified {
    pub json: String,
    pub yaml: String,
    pub plural: String,
}

fn verify(a: &Assembled, spec: &Item) -> syn::Result<Verified> {
    let at_spec = |msg: String| syn::Error::new(spec.ident.span(), msg);
    let rgd: kro_core::ResourceGraphDefinition = serde_json::from_value(a.rgd.clone())
        .map_err(|e| at_spec(format!("kro: the assembled RGD does not parse: {e}")))?;
    // References into built-in Kubernetes kinds are checked against their
    // schemas too, unless the graph opts out (a cluster of another version).
    let options = if spec.graph.builtin_kinds {
        kro_core::CompileOptions::with_builtin_kinds()
    } else {
        kro_core::CompileOptions::default()
    };
    let graph = kro_core::compile_with(&rgd, &options)
        .map_err(|e| syn::Error::new(locate(&e, &a.spans, spec), format!("kro: {e}")))?;
    let plural = graph
        .crd()
        .pointer("/spec/names/plural")
        .and_then(|p| p.as_str())
        .map(str::to_owned)
        .ok_or_else(|| at_spec("kro: the generated CRD has no plural".to_owned()))?;
    let json = serde_json::to_string(&a.rgd).map_err(|e| at_spec(format!("kro: {e}")))?;
    let yaml = serde_saphyr::to_string(&a.rgd).map_err(|e| at_spec(format!("kro: {e}")))?;
    Ok(Verified { json, yaml, plural })
}

/// The span of whatever produced the part of the RGD an error names.
fn locate(err: &kro_core::Error, spans: &SpanMap, spec: &Item) -> Span {
    use kro_core::Error;
    use kro_core::simpleschema::Reason;
    let found = match err {
        Error::Schema { source, .. } => {
            let about_default = matches!(source.reason, Reason::BadDefault { .. })
                || source.to_string().contains("default");
            let default = about_default
                .then(|| spans.find(&format!("{}#default", source.path)))
                .flatten();
            default.or_else(|| spans.find(&source.path))
        }
        Error::Invalid { at, .. } | Error::Eval { at, .. } => match &at.resource {
            Some(r) => spans.find(&format!("resource:{r}:{}", at.field)),
            None => spans.find(&at.field),
        },
        Error::Cycle { cycle, .. } => cycle
            .first()
            .and_then(|id| spans.find(&format!("resource:{id}"))),
        Error::UnknownResource { id, .. } => spans.find(&format!("resource:{id}")),
        _ => None,
    };
    found.unwrap_or_else(|| spec.ident.span())
}

/// On error: the error, plus the kind type with an empty RGD so code using
/// it does not drown the real message in follow-on errors.
fn fallback(input: &DeriveInput, spec: &Item, err: syn::Error) -> TokenStream {
    let error = err.to_compile_error();
    let kind = match &spec.graph.kind {
        Some(k) => k.value(),
        None => {
            let name = spec.ident.to_string();
            name.strip_suffix("Spec").unwrap_or(&name).to_owned()
        }
    };
    let placeholder = Verified {
        json: String::new(),
        yaml: String::new(),
        plural: String::new(),
    };
    let assembled = Assembled {
        rgd: serde_json::Value::Null,
        spans: SpanMap::default(),
        files: Vec::new(),
        kind,
    };
    let kind_type = emit::kind_type(input, spec, &assembled, &placeholder);
    quote! { #error #kind_type }
}
