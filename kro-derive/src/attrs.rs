//! Parsing of `#[kro(...)]`, the `#[serde(...)]` attributes that change field
//! names, and doc comments, from one struct or enum.

use proc_macro2::{Span, TokenStream, TokenTree};
use syn::meta::ParseNestedMeta;
use syn::parse::ParseStream;
use syn::{Attribute, Data, DeriveInput, Fields, Ident, Lit, LitStr, Token, Type};

/// A literal written in an attribute, with an optional leading minus so that
/// `minimum = -1` works.
#[derive(Clone)]
pub(crate) struct Literal {
    pub lit: Lit,
    pub negative: bool,
}

impl Literal {
    fn parse(meta: &ParseNestedMeta) -> syn::Result<Self> {
        let input = meta.value()?;
        let negative = input.parse::<Option<Token![-]>>()?.is_some();
        Ok(Self {
            lit: input.parse()?,
            negative,
        })
    }

    pub fn span(&self) -> Span {
        self.lit.span()
    }

    /// The value as SimpleSchema marker text for a non-string field.
    pub fn raw(&self) -> syn::Result<String> {
        let sign = if self.negative { "-" } else { "" };
        Ok(match &self.lit {
            Lit::Int(i) => format!("{sign}{}", i.base10_digits()),
            Lit::Float(f) => format!("{sign}{}", f.base10_digits()),
            Lit::Bool(b) if !self.negative => b.value.to_string(),
            Lit::Str(s) if !self.negative => s.value(),
            other => {
                return Err(syn::Error::new(
                    other.span(),
                    "expected a string, integer, float or bool literal",
                ));
            }
        })
    }
}

/// The SimpleSchema markers and status expression of one field.
#[derive(Default, Clone)]
pub(crate) struct FieldAttrs {
    pub default: Option<Literal>,
    pub enum_values: Option<LitStr>,
    pub minimum: Option<Literal>,
    pub maximum: Option<Literal>,
    pub min_length: Option<Literal>,
    pub max_length: Option<Literal>,
    pub min_items: Option<Literal>,
    pub max_items: Option<Literal>,
    pub pattern: Option<LitStr>,
    pub validation: Option<LitStr>,
    pub description: Option<LitStr>,
    pub required: Option<bool>,
    pub immutable: bool,
    pub unique_items: bool,
    /// A struct-typed field written as a nested object rather than a
    /// custom type in `spec.schema.types`.
    pub inline: bool,
    /// Status fields: the CEL expression (`${...}` text).
    pub expr: Option<LitStr>,
    /// Span of the first `#[kro]` attribute, for errors about the markers.
    pub span: Option<Span>,
}

impl FieldAttrs {
    /// Whether any SimpleSchema marker is set.
    pub fn has_markers(&self) -> bool {
        self.default.is_some()
            || self.enum_values.is_some()
            || self.minimum.is_some()
            || self.maximum.is_some()
            || self.min_length.is_some()
            || self.max_length.is_some()
            || self.min_items.is_some()
            || self.max_items.is_some()
            || self.pattern.is_some()
            || self.validation.is_some()
            || self.description.is_some()
            || self.required.is_some()
            || self.immutable
            || self.unique_items
    }
}

/// One field of a struct.
pub(crate) struct FieldDef {
    pub ident: Ident,
    /// The name in JSON, after serde renames.
    pub name: String,
    pub ty: Type,
    pub attrs: FieldAttrs,
    pub doc: Option<String>,
    /// `#[serde(default)]`: absent in JSON is fine, so not required.
    pub serde_default: bool,
}

/// What a payload item is.
pub(crate) enum Shape {
    Struct(Vec<FieldDef>),
    /// Unit variants, by their JSON names.
    Enum(Vec<String>),
}

/// One resource declared with `resource(...)`.
pub(crate) struct ResourceAttr {
    pub id: LitStr,
    pub template: Option<LitStr>,
    pub inline: Option<LitStr>,
    pub external_ref: Option<LitStr>,
    pub ready_when: Vec<LitStr>,
    pub include_when: Vec<LitStr>,
    pub for_each: Vec<(Ident, LitStr)>,
    pub target: Option<LitStr>,
}

/// A `printer_column(...)`.
pub(crate) struct PrinterColumn {
    pub name: LitStr,
    pub type_: LitStr,
    pub json_path: LitStr,
    pub description: Option<LitStr>,
    pub priority: Option<Literal>,
}

/// A `validation(expression = ..., message = ...)` on the whole spec.
pub(crate) struct Validation {
    pub expression: LitStr,
    pub message: Option<LitStr>,
}

/// `clusters = [...]` or `clusters = "${...}"` in `placement(...)`.
pub(crate) enum ClustersAttr {
    /// Explicit member names, with the span of the list.
    Names(Vec<LitStr>, Span),
    /// A standalone `${...}` list expression.
    Expr(LitStr),
}

/// The structured `placement(...)` form.
pub(crate) struct PlacementFields {
    /// Span of the `placement` keyword, for errors about the whole.
    pub span: Span,
    /// A selector string: `env=prod,region in (eu,us)`.
    pub cluster_selector: Option<LitStr>,
    pub clusters: Option<ClustersAttr>,
    pub when: Option<LitStr>,
    pub on_deselect: Option<LitStr>,
}

/// `placement = "<yaml>"`, `placement(...)` or a bare `placement`.
pub(crate) enum PlacementAttr {
    Yaml(LitStr),
    Fields(PlacementFields),
}

/// The container attributes of the spec struct.
pub(crate) struct GraphAttrs {
    /// Check references into built-in kinds against their schemas.
    pub builtin_kinds: bool,
    pub rgd: Option<LitStr>,
    pub kind: Option<LitStr>,
    pub group: Option<LitStr>,
    pub version: Option<LitStr>,
    pub scope: Option<LitStr>,
    pub plural: Option<LitStr>,
    pub status: Option<syn::Path>,
    pub short_names: Vec<LitStr>,
    pub categories: Vec<LitStr>,
    pub resources: Vec<ResourceAttr>,
    pub printer_columns: Vec<PrinterColumn>,
    pub validations: Vec<Validation>,
    pub placement: Option<PlacementAttr>,
    /// `rollout = "<yaml>"`: `spec.rollout`, checked by the engine.
    pub rollout: Option<LitStr>,
}

/// A struct or enum as the macros see it.
pub(crate) struct Item {
    pub ident: Ident,
    pub shape: Shape,
    pub graph: GraphAttrs,
    pub has_generics: bool,
}

/// serde's `rename_all` rules.
#[derive(Clone, Copy)]
enum RenameRule {
    Lower,
    Upper,
    Pascal,
    Camel,
    Snake,
    ScreamingSnake,
    Kebab,
    ScreamingKebab,
}

impl RenameRule {
    fn parse(s: &LitStr) -> syn::Result<Self> {
        Ok(match s.value().as_str() {
            "lowercase" => Self::Lower,
            "UPPERCASE" => Self::Upper,
            "PascalCase" => Self::Pascal,
            "camelCase" => Self::Camel,
            "snake_case" => Self::Snake,
            "SCREAMING_SNAKE_CASE" => Self::ScreamingSnake,
            "kebab-case" => Self::Kebab,
            "SCREAMING-KEBAB-CASE" => Self::ScreamingKebab,
            other => {
                return Err(syn::Error::new(
                    s.span(),
                    format!("unknown serde rename_all rule {other:?}"),
                ));
            }
        })
    }

    /// Applies the rule to a field name (snake_case in Rust).
    fn field(self, name: &str) -> String {
        let words: Vec<&str> = name.split('_').filter(|w| !w.is_empty()).collect();
        self.join(&words)
    }

    /// Applies the rule to a variant name (PascalCase in Rust).
    fn variant(self, name: &str) -> String {
        let mut words = Vec::new();
        let mut start = 0;
        for (i, c) in name.char_indices() {
            if i > 0 && c.is_uppercase() {
                words.push(&name[start..i]);
                start = i;
            }
        }
        words.push(&name[start..]);
        self.join(&words)
    }

    fn join(self, words: &[&str]) -> String {
        let lower: Vec<String> = words.iter().map(|w| w.to_lowercase()).collect();
        let cap = |w: &String| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_uppercase().chain(c).collect::<String>())
                .unwrap_or_default()
        };
        match self {
            Self::Lower => lower.concat(),
            Self::Upper => lower.concat().to_uppercase(),
            Self::Pascal => lower.iter().map(cap).collect(),
            Self::Camel => lower
                .iter()
                .enumerate()
                .map(|(i, w)| if i == 0 { w.clone() } else { cap(w) })
                .collect(),
            Self::Snake => lower.join("_"),
            Self::ScreamingSnake => lower.join("_").to_uppercase(),
            Self::Kebab => lower.join("-"),
            Self::ScreamingKebab => lower.join("-").to_uppercase(),
        }
    }
}

/// Skips the value of an attribute argument this crate does not read.
fn skip(meta: &ParseNestedMeta) -> syn::Result<()> {
    if meta.input.peek(Token![=]) {
        let input = meta.value()?;
        skip_until_comma(input)?;
    } else if meta.input.peek(syn::token::Paren) {
        let content;
        syn::parenthesized!(content in meta.input);
        content.parse::<TokenStream>()?;
    }
    Ok(())
}

fn skip_until_comma(input: ParseStream) -> syn::Result<()> {
    while !input.is_empty() && !input.peek(Token![,]) {
        input.parse::<TokenTree>()?;
    }
    Ok(())
}

/// Serde's view of one field or container: rename, rename_all, default, skip.
#[derive(Default)]
struct SerdeAttrs {
    rename: Option<String>,
    rename_all: Option<RenameRule>,
    default: bool,
    skip: bool,
}

fn serde_attrs(attrs: &[Attribute]) -> syn::Result<SerdeAttrs> {
    let mut out = SerdeAttrs::default();
    for attr in attrs.iter().filter(|a| a.path().is_ident("serde")) {
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("rename") && meta.input.peek(Token![=]) {
                out.rename = Some(meta.value()?.parse::<LitStr>()?.value());
            } else if meta.path.is_ident("rename_all") && meta.input.peek(Token![=]) {
                out.rename_all = Some(RenameRule::parse(&meta.value()?.parse()?)?);
            } else if meta.path.is_ident("default") {
                out.default = true;
                skip(&meta)?;
            } else if meta.path.is_ident("skip") {
                out.skip = true;
            } else {
                skip(&meta)?;
            }
            Ok(())
        })?;
    }
    Ok(out)
}

/// Joined `///` lines, as Kubernetes descriptions are one paragraph.
fn doc(attrs: &[Attribute]) -> Option<String> {
    let lines: Vec<String> = attrs
        .iter()
        .filter(|a| a.path().is_ident("doc"))
        .filter_map(|a| match &a.meta {
            syn::Meta::NameValue(nv) => match &nv.value {
                syn::Expr::Lit(syn::ExprLit {
                    lit: Lit::Str(s), ..
                }) => Some(s.value().trim().to_owned()),
                _ => None,
            },
            _ => None,
        })
        .collect();
    let text = lines
        .iter()
        .filter(|l| !l.is_empty())
        .cloned()
        .collect::<Vec<_>>()
        .join(" ");
    (!text.is_empty()).then_some(text)
}

fn field_attrs(attrs: &[Attribute]) -> syn::Result<FieldAttrs> {
    let mut out = FieldAttrs::default();
    for attr in attrs.iter().filter(|a| a.path().is_ident("kro")) {
        out.span.get_or_insert(attr.pound_token.span);
        attr.parse_nested_meta(|meta| {
            let key = meta
                .path
                .get_ident()
                .map(Ident::to_string)
                .unwrap_or_default();
            match key.as_str() {
                "default" => out.default = Some(Literal::parse(&meta)?),
                "enum_values" | "one_of" => out.enum_values = Some(meta.value()?.parse()?),
                "minimum" => out.minimum = Some(Literal::parse(&meta)?),
                "maximum" => out.maximum = Some(Literal::parse(&meta)?),
                "min_length" => out.min_length = Some(Literal::parse(&meta)?),
                "max_length" => out.max_length = Some(Literal::parse(&meta)?),
                "min_items" => out.min_items = Some(Literal::parse(&meta)?),
                "max_items" => out.max_items = Some(Literal::parse(&meta)?),
                "pattern" => out.pattern = Some(meta.value()?.parse()?),
                "validation" => out.validation = Some(meta.value()?.parse()?),
                "description" => out.description = Some(meta.value()?.parse()?),
                "required" => out.required = Some(true),
                "optional" => out.required = Some(false),
                "immutable" => out.immutable = true,
                "unique_items" => out.unique_items = true,
                "inline" => out.inline = true,
                "expr" => out.expr = Some(meta.value()?.parse()?),
                _ => {
                    return Err(meta.error(
                        "unknown kro field attribute (expected default, one_of, minimum, maximum, \
                         min_length, max_length, min_items, max_items, pattern, validation, \
                         description, required, optional, immutable, unique_items, inline or expr)",
                    ));
                }
            }
            Ok(())
        })?;
    }
    Ok(out)
}

fn lit_list(meta: &ParseNestedMeta, into: &mut Vec<LitStr>) -> syn::Result<()> {
    into.push(meta.value()?.parse()?);
    Ok(())
}

fn resource_attr(meta: &ParseNestedMeta) -> syn::Result<ResourceAttr> {
    let mut id = None;
    let mut r = ResourceAttr {
        id: LitStr::new("", meta.path.require_ident()?.span()),
        template: None,
        inline: None,
        external_ref: None,
        ready_when: Vec::new(),
        include_when: Vec::new(),
        for_each: Vec::new(),
        target: None,
    };
    meta.parse_nested_meta(|m| {
        let key = m.path.get_ident().map(Ident::to_string).unwrap_or_default();
        match key.as_str() {
            "id" => id = Some(m.value()?.parse::<LitStr>()?),
            "template" => r.template = Some(m.value()?.parse()?),
            "inline" => r.inline = Some(m.value()?.parse()?),
            "external_ref" => r.external_ref = Some(m.value()?.parse()?),
            "ready_when" => lit_list(&m, &mut r.ready_when)?,
            "include_when" => lit_list(&m, &mut r.include_when)?,
            "target" => r.target = Some(m.value()?.parse()?),
            "for_each" => m.parse_nested_meta(|it| {
                let name = it.path.require_ident()?.clone();
                r.for_each.push((name, it.value()?.parse()?));
                Ok(())
            })?,
            _ => {
                return Err(m.error(
                    "unknown resource attribute (expected id, template, inline, external_ref, \
                     ready_when, include_when, for_each or target)",
                ));
            }
        }
        Ok(())
    })?;
    r.id = id.ok_or_else(|| meta.error("resource(...) needs id = \"...\""))?;
    let forms = [&r.template, &r.inline, &r.external_ref]
        .iter()
        .filter(|f| f.is_some())
        .count();
    if forms != 1 {
        return Err(syn::Error::new(
            r.id.span(),
            "resource(...) needs exactly one of template = \"<file>\", inline = \"<yaml>\" or external_ref = \"<yaml>\"",
        ));
    }
    Ok(r)
}

fn placement_attr(meta: &ParseNestedMeta) -> syn::Result<PlacementAttr> {
    if meta.input.peek(Token![=]) {
        return Ok(PlacementAttr::Yaml(meta.value()?.parse()?));
    }
    let mut p = PlacementFields {
        span: meta.path.require_ident()?.span(),
        cluster_selector: None,
        clusters: None,
        when: None,
        on_deselect: None,
    };
    // A bare `placement` selects every member cluster.
    if !meta.input.peek(syn::token::Paren) {
        return Ok(PlacementAttr::Fields(p));
    }
    meta.parse_nested_meta(|m| {
        let key = m.path.get_ident().map(Ident::to_string).unwrap_or_default();
        match key.as_str() {
            "cluster_selector" => p.cluster_selector = Some(m.value()?.parse()?),
            "clusters" => {
                let input = m.value()?;
                p.clusters = Some(if input.peek(syn::token::Bracket) {
                    let content;
                    let bracket = syn::bracketed!(content in input);
                    let names = syn::punctuated::Punctuated::<LitStr, Token![,]>::parse_terminated(
                        &content,
                    )?;
                    ClustersAttr::Names(names.into_iter().collect(), bracket.span.join())
                } else {
                    ClustersAttr::Expr(input.parse()?)
                });
            }
            "when" => p.when = Some(m.value()?.parse()?),
            "on_deselect" => p.on_deselect = Some(m.value()?.parse()?),
            _ => {
                return Err(m.error(
                    "unknown placement attribute (expected cluster_selector, clusters, when or \
                     on_deselect)",
                ));
            }
        }
        Ok(())
    })?;
    Ok(PlacementAttr::Fields(p))
}

fn printer_column(meta: &ParseNestedMeta) -> syn::Result<PrinterColumn> {
    let (mut name, mut type_, mut json_path, mut description, mut priority) =
        (None, None, None, None, None);
    meta.parse_nested_meta(|m| {
        let key = m.path.get_ident().map(Ident::to_string).unwrap_or_default();
        match key.as_str() {
            "name" => name = Some(m.value()?.parse()?),
            "type" | "type_" => type_ = Some(m.value()?.parse()?),
            "json_path" => json_path = Some(m.value()?.parse()?),
            "description" => description = Some(m.value()?.parse()?),
            "priority" => priority = Some(Literal::parse(&m)?),
            _ => return Err(m.error("expected name, type, json_path, description or priority")),
        }
        Ok(())
    })?;
    let missing = |what| meta.error(format!("printer_column(...) needs {what}"));
    Ok(PrinterColumn {
        name: name.ok_or_else(|| missing("name"))?,
        type_: type_.ok_or_else(|| missing("type"))?,
        json_path: json_path.ok_or_else(|| missing("json_path"))?,
        description,
        priority,
    })
}

impl Default for GraphAttrs {
    fn default() -> Self {
        Self {
            builtin_kinds: true,
            rgd: None,
            kind: None,
            group: None,
            version: None,
            scope: None,
            plural: None,
            status: None,
            short_names: Vec::new(),
            categories: Vec::new(),
            resources: Vec::new(),
            printer_columns: Vec::new(),
            validations: Vec::new(),
            placement: None,
            rollout: None,
        }
    }
}

fn graph_attrs(attrs: &[Attribute]) -> syn::Result<GraphAttrs> {
    let mut g = GraphAttrs::default();
    for attr in attrs.iter().filter(|a| a.path().is_ident("kro")) {
        attr.parse_nested_meta(|meta| {
            let key = meta
                .path
                .get_ident()
                .map(Ident::to_string)
                .unwrap_or_default();
            match key.as_str() {
                "rgd" => g.rgd = Some(meta.value()?.parse()?),
                "builtin_kinds" => {
                    g.builtin_kinds = meta.value()?.parse::<syn::LitBool>()?.value;
                }
                "kind" => g.kind = Some(meta.value()?.parse()?),
                "group" => g.group = Some(meta.value()?.parse()?),
                "version" => g.version = Some(meta.value()?.parse()?),
                "scope" => g.scope = Some(meta.value()?.parse()?),
                "plural" => g.plural = Some(meta.value()?.parse()?),
                "status" => g.status = Some(meta.value()?.parse()?),
                "short_name" => lit_list(&meta, &mut g.short_names)?,
                "category" => lit_list(&meta, &mut g.categories)?,
                "placement" => {
                    if g.placement.is_some() {
                        return Err(meta.error("placement is given twice"));
                    }
                    g.placement = Some(placement_attr(&meta)?);
                }
                "rollout" => {
                    if g.rollout.is_some() {
                        return Err(meta.error("rollout is given twice"));
                    }
                    g.rollout = Some(meta.value()?.parse()?);
                }
                "resource" => g.resources.push(resource_attr(&meta)?),
                "printer_column" => g.printer_columns.push(printer_column(&meta)?),
                "validation" => {
                    let (mut expression, mut message) = (None, None);
                    meta.parse_nested_meta(|m| {
                        if m.path.is_ident("expression") {
                            expression = Some(m.value()?.parse()?);
                        } else if m.path.is_ident("message") {
                            message = Some(m.value()?.parse()?);
                        } else {
                            return Err(m.error("expected expression or message"));
                        }
                        Ok(())
                    })?;
                    g.validations.push(Validation {
                        expression: expression
                            .ok_or_else(|| meta.error("validation(...) needs expression"))?,
                        message,
                    });
                }
                _ => {
                    return Err(meta.error(
                        "unknown kro container attribute (expected rgd, builtin_kinds, kind, group, version, \
                         scope, plural, status, short_name, category, placement, rollout, resource, \
                         printer_column or validation)",
                    ));
                }
            }
            Ok(())
        })?;
    }
    Ok(g)
}

/// Parses a struct or enum; `graph` says whether container attributes are
/// the graph's (the spec struct) or must be absent.
pub(crate) fn parse_item(input: &DeriveInput, graph: bool) -> syn::Result<Item> {
    let container = serde_attrs(&input.attrs)?;
    let rule = container.rename_all;
    let shape = match &input.data {
        Data::Struct(s) => {
            let Fields::Named(named) = &s.fields else {
                return Err(syn::Error::new_spanned(
                    &input.ident,
                    "kro derives need a struct with named fields",
                ));
            };
            let mut fields = Vec::new();
            for f in &named.named {
                let serde = serde_attrs(&f.attrs)?;
                if serde.skip {
                    continue;
                }
                let Some(ident) = f.ident.clone() else {
                    continue;
                };
                let raw = ident.to_string();
                let raw = raw.strip_prefix("r#").unwrap_or(&raw).to_owned();
                let name = serde
                    .rename
                    .unwrap_or_else(|| rule.map_or(raw.clone(), |r| r.field(&raw)));
                fields.push(FieldDef {
                    ident,
                    name,
                    ty: f.ty.clone(),
                    attrs: field_attrs(&f.attrs)?,
                    doc: doc(&f.attrs),
                    serde_default: serde.default || container.default,
                });
            }
            Shape::Struct(fields)
        }
        Data::Enum(e) => {
            let mut names = Vec::new();
            for v in &e.variants {
                if !matches!(v.fields, Fields::Unit) {
                    return Err(syn::Error::new_spanned(
                        &v.ident,
                        "kro derives support enums of unit variants only (they become string enums)",
                    ));
                }
                let serde = serde_attrs(&v.attrs)?;
                if serde.skip {
                    continue;
                }
                let raw = v.ident.to_string();
                names.push(
                    serde
                        .rename
                        .unwrap_or_else(|| rule.map_or(raw.clone(), |r| r.variant(&raw))),
                );
            }
            Shape::Enum(names)
        }
        Data::Union(_) => {
            return Err(syn::Error::new_spanned(
                &input.ident,
                "kro derives do not support unions",
            ));
        }
    };
    let graph = if graph {
        graph_attrs(&input.attrs)?
    } else {
        if let Some(attr) = input.attrs.iter().find(|a| a.path().is_ident("kro")) {
            return Err(syn::Error::new_spanned(
                attr,
                "container #[kro(...)] attributes belong on the #[derive(ResourceGraph)] spec struct",
            ));
        }
        GraphAttrs::default()
    };
    Ok(Item {
        ident: input.ident.clone(),
        shape,
        graph,
        has_generics: !input.generics.params.is_empty(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(src: &str) -> Item {
        parse_item(&syn::parse_str(src).unwrap(), false).unwrap()
    }

    #[test]
    fn serde_rename_rules_apply_to_fields_and_variants() {
        let Shape::Struct(fields) = item(
            "#[serde(rename_all = \"camelCase\")] struct S { svc_type: String, \
             #[serde(rename = \"x-y\")] other: u8, #[serde(skip)] gone: u8, r#type: String }",
        )
        .shape
        else {
            panic!("struct")
        };
        let names: Vec<_> = fields.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["svcType", "x-y", "type"]);

        let Shape::Enum(variants) =
            item("#[serde(rename_all = \"kebab-case\")] enum E { FastPath, Slow }").shape
        else {
            panic!("enum")
        };
        assert_eq!(variants, ["fast-path", "slow"]);
    }

    #[test]
    fn doc_comments_join_into_one_description() {
        let Shape::Struct(fields) =
            item("struct S { /// First line.\n///\n/// Second.\n a: String }").shape
        else {
            panic!("struct")
        };
        assert_eq!(fields[0].doc.as_deref(), Some("First line. Second."));
    }

    #[test]
    fn data_enums_and_unknown_markers_are_rejected() {
        let parse = |src: &str| parse_item(&syn::parse_str(src).unwrap(), false).err();
        assert!(
            parse("enum E { A(u8) }")
                .unwrap()
                .to_string()
                .contains("unit variants")
        );
        assert!(
            parse("struct S { #[kro(defualt = 1)] a: u8 }")
                .unwrap()
                .to_string()
                .contains("unknown kro field attribute")
        );
        assert!(
            parse("#[kro(kind = \"X\")] struct S { a: u8 }")
                .unwrap()
                .to_string()
                .contains("belong on the #[derive(ResourceGraph)] spec struct")
        );
    }
}
