//! Rust field types to SimpleSchema types.

use syn::{GenericArgument, Path, PathArguments, Type};

/// A field type as SimpleSchema sees it.
#[derive(Clone)]
pub(crate) enum Ty {
    /// `string`, `integer`, `boolean`, `float` or `object`.
    Scalar(&'static str),
    List(Box<Ty>),
    Map(Box<Ty>),
    /// A struct or enum that also derives: resolved by name among the items.
    Custom(Path),
}

/// A classified field type and whether it was an `Option<T>`.
pub(crate) struct FieldTy {
    pub ty: Ty,
    pub optional: bool,
}

const SUPPORTED: &str = "SimpleSchema fields are String, bool, integers (i8..i64, u8..u64, isize, usize), \
f32/f64, Vec<T>, BTreeMap/HashMap<String, T>, Option<T>, Box<T>, serde_json::Value, or a struct or \
unit-variant enum that derives kro's SimpleSchema";

fn unsupported(ty: &Type, why: &str) -> syn::Error {
    let shown = quote::quote!(#ty).to_string().replace(' ', "");
    syn::Error::new_spanned(
        ty,
        format!("unsupported field type `{shown}`{why}: {SUPPORTED}"),
    )
}

fn generic_args(path: &Path) -> Vec<&Type> {
    match path.segments.last().map(|s| &s.arguments) {
        Some(PathArguments::AngleBracketed(a)) => a
            .args
            .iter()
            .filter_map(|g| match g {
                GenericArgument::Type(t) => Some(t),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// Classifies a field's type.
pub(crate) fn classify(ty: &Type) -> syn::Result<FieldTy> {
    if let Some(inner) = option_inner(ty) {
        if option_inner(inner).is_some() {
            return Err(unsupported(ty, " (nested Option)"));
        }
        return Ok(FieldTy {
            ty: classify_inner(inner)?,
            optional: true,
        });
    }
    Ok(FieldTy {
        ty: classify_inner(ty)?,
        optional: false,
    })
}

fn option_inner(ty: &Type) -> Option<&Type> {
    let Type::Path(p) = ty else { return None };
    let last = p.path.segments.last()?;
    if last.ident != "Option" {
        return None;
    }
    match generic_args(&p.path).as_slice() {
        [inner] => Some(inner),
        _ => None,
    }
}

fn classify_inner(ty: &Type) -> syn::Result<Ty> {
    let path = match ty {
        Type::Path(p) if p.qself.is_none() => &p.path,
        Type::Group(g) => return classify_inner(&g.elem),
        Type::Paren(p) => return classify_inner(&p.elem),
        _ => return Err(unsupported(ty, "")),
    };
    let Some(last) = path.segments.last() else {
        return Err(unsupported(ty, ""));
    };
    let args = generic_args(path);
    let name = last.ident.to_string();
    let scalar = match name.as_str() {
        "String" => Some("string"),
        "bool" => Some("boolean"),
        "i8" | "i16" | "i32" | "i64" | "isize" | "u8" | "u16" | "u32" | "u64" | "usize" => {
            Some("integer")
        }
        "f32" | "f64" => Some("float"),
        "Value" if path.segments.len() > 1 || args.is_empty() => Some("object"),
        _ => None,
    };
    if let Some(s) = scalar {
        return Ok(Ty::Scalar(s));
    }
    match (name.as_str(), args.as_slice()) {
        ("Vec", [elem]) => {
            if option_inner(elem).is_some() {
                return Err(unsupported(ty, " (list items cannot be optional)"));
            }
            Ok(Ty::List(Box::new(classify_inner(elem)?)))
        }
        ("Box", [inner]) => classify_inner(inner),
        ("BTreeMap" | "HashMap", [key, value]) => {
            match classify_inner(key) {
                Ok(Ty::Scalar("string")) => {}
                _ => return Err(unsupported(ty, " (map keys must be String)")),
            }
            if option_inner(value).is_some() {
                return Err(unsupported(ty, " (map values cannot be optional)"));
            }
            Ok(Ty::Map(Box::new(classify_inner(value)?)))
        }
        ("i128" | "u128" | "char" | "str" | "Vec" | "BTreeMap" | "HashMap" | "Box", _) => {
            Err(unsupported(ty, ""))
        }
        (_, []) if matches!(last.arguments, PathArguments::None) => Ok(Ty::Custom(path.clone())),
        _ => Err(unsupported(
            ty,
            " (generic types other than Option, Vec, Box and maps)",
        )),
    }
}

/// The last identifier of a custom type's path: its name among the items
/// and in `spec.schema.types`.
pub(crate) fn custom_name(path: &Path) -> String {
    path.segments
        .last()
        .map(|s| s.ident.to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(src: &str) -> Result<(String, bool), String> {
        fn show(t: &Ty) -> String {
            match t {
                Ty::Scalar(s) => (*s).to_owned(),
                Ty::List(i) => format!("[]{}", show(i)),
                Ty::Map(i) => format!("map[string]{}", show(i)),
                Ty::Custom(p) => custom_name(p),
            }
        }
        classify(&syn::parse_str(src).unwrap())
            .map(|f| (show(&f.ty), f.optional))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn rust_types_classify() {
        assert_eq!(text("String").unwrap(), ("string".into(), false));
        assert_eq!(text("Option<u32>").unwrap(), ("integer".into(), true));
        assert_eq!(text("Vec<f64>").unwrap(), ("[]float".into(), false));
        assert_eq!(
            text("std::collections::HashMap<String, Vec<bool>>").unwrap(),
            ("map[string][]boolean".into(), false)
        );
        assert_eq!(
            text("Box<db::Database>").unwrap(),
            ("Database".into(), false)
        );
        assert_eq!(text("serde_json::Value").unwrap(), ("object".into(), false));
    }

    #[test]
    fn unsupported_types_say_why() {
        assert!(
            text("BTreeMap<u32, String>")
                .unwrap_err()
                .contains("map keys must be String")
        );
        assert!(
            text("Option<Option<u8>>")
                .unwrap_err()
                .contains("nested Option")
        );
        assert!(
            text("&'static str")
                .unwrap_err()
                .contains("unsupported field type")
        );
        assert!(
            text("u128")
                .unwrap_err()
                .contains("unsupported field type `u128`")
        );
        assert!(
            text("Vec<Option<u8>>")
                .unwrap_err()
                .contains("list items cannot be optional")
        );
    }
}
