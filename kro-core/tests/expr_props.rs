//! Property tests: template strings, CEL sources and whole RGDs built from
//! random text produce errors, never panics.
#![allow(clippy::unwrap_used)]

use kro_core::expr::check::{Ty, TypeEnv, infer};
use kro_core::expr::cost::InputBound;
use kro_core::expr::template::{Part, Scanned, scan};
use kro_core::expr::value::to_cel;
use kro_core::expr::{CompiledExpr, library};
use proptest::prelude::*;
use serde_json::json;

/// Text rich in the characters the scanner and the CEL lexer care about.
fn tricky_text() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            Just("${".to_owned()),
            Just("}".to_owned()),
            Just("{".to_owned()),
            Just("\"".to_owned()),
            Just("'".to_owned()),
            Just("\\".to_owned()),
            Just("$".to_owned()),
            Just("schema.spec.name".to_owned()),
            Just(" + ".to_owned()),
            "[a-z0-9 .]{0,4}",
        ],
        0..12,
    )
    .prop_map(|parts| parts.concat())
}

/// CEL-looking source: tokens of the grammar in random order.
fn cel_source() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            Just("schema".to_owned()),
            Just(".spec".to_owned()),
            Just(".items".to_owned()),
            Just(".?name".to_owned()),
            Just(".map(x, x".to_owned()),
            Just(".filter(x, ".to_owned()),
            Just(")".to_owned()),
            Just("(".to_owned()),
            Just("[".to_owned()),
            Just("]".to_owned()),
            Just("{".to_owned()),
            Just("}".to_owned()),
            Just(":".to_owned()),
            Just(",".to_owned()),
            Just(" + ".to_owned()),
            Just(" * ".to_owned()),
            Just(" / ".to_owned()),
            Just(" == ".to_owned()),
            Just(" ? ".to_owned()),
            Just(" && ".to_owned()),
            Just("!".to_owned()),
            Just("-".to_owned()),
            Just("1".to_owned()),
            Just("0".to_owned()),
            Just("2.5".to_owned()),
            Just("'s'".to_owned()),
            Just("size(".to_owned()),
            Just("has(".to_owned()),
            Just("math.greatest(".to_owned()),
            Just("cel.bind(y, ".to_owned()),
            Just("lists.range(".to_owned()),
            Just("json.unmarshal(".to_owned()),
            Just("random.seededString(".to_owned()),
            Just(".orValue(".to_owned()),
            Just("optional.none()".to_owned()),
            Just("omit()".to_owned()),
            Just("x".to_owned()),
            "[a-z]{1,3}",
        ],
        1..16,
    )
    .prop_map(|t| t.concat())
}

fn env() -> TypeEnv {
    let spec = json!({"type": "object", "properties": {
        "name": {"type": "string"},
        "n": {"type": "integer"},
        "items": {"type": "array", "items": {"type": "integer"}}
    }});
    let mut e = TypeEnv::new();
    e.declare(
        "schema",
        kro_core::expr::check::Ty::Object(std::sync::Arc::new(kro_core::expr::check::ObjectTy {
            fields: [("spec".to_owned(), Ty::from_openapi(&spec))].into(),
            open: false,
        })),
    );
    e
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn scanning_never_panics_and_round_trips(text in tricky_text()) {
        match scan(&text) {
            Ok(Scanned::Literal) => {
                let has_open = text.contains("${");
                prop_assert!(!has_open, "literal with an opening: {}", text);
            }
            Ok(Scanned::Standalone(e)) => prop_assert_eq!(format!("${{{e}}}"), text),
            Ok(Scanned::Template(parts)) => {
                let joined: String = parts
                    .iter()
                    .map(|p| match p {
                        Part::Text(t) => t.clone(),
                        Part::Expr(e) => format!("${{{e}}}"),
                    })
                    .collect();
                prop_assert_eq!(joined, text);
            }
            Err(_) => {}
        }
    }

    #[test]
    fn cel_parse_check_and_eval_never_panic(src in cel_source()) {
        if let Ok(expr) = CompiledExpr::parse(&src) {
            let _ = infer(expr.ast(), &env());
            let mut ctx = cel::Context::with_env(library::env().unwrap());
            let instance = json!({"spec": {"name": "a", "n": 3, "items": [1, 2, 3]}});
            let mut bound = InputBound::default();
            bound.include(&instance);
            ctx.add_variable_from_value("schema", to_cel(&instance));
            let _ = expr.eval(&ctx, &bound);
        }
    }

    #[test]
    fn arbitrary_unicode_never_panics(src in "\\PC{0,40}") {
        let _ = scan(&src);
        let _ = CompiledExpr::parse(&src);
    }

    #[test]
    fn compiling_rgds_with_random_templates_never_panics(a in tricky_text(), b in cel_source()) {
        let rgd = json!({
            "metadata": {"name": "p"},
            "spec": {
                "schema": {"apiVersion": "v1alpha1", "kind": "P", "spec": {"name": "string", "n": "integer"},
                           "status": {"s": format!("${{{b}}}")}},
                "resources": [
                    {"id": "a", "template": {"apiVersion": "v1", "kind": "ConfigMap",
                        "metadata": {"name": a}, "data": {"k": format!("${{{b}}}")}}},
                    {"id": "c", "includeWhen": [format!("${{{b}}}")],
                     "template": {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}}
                ]
            }
        });
        let rgd: kro_core::ResourceGraphDefinition = serde_json::from_value(rgd).unwrap();
        if let Ok(graph) = kro_core::compile(&rgd) {
            let ctx = kro_core::EvalContext::new(json!({"spec": {"name": "x", "n": 1}}));
            let _ = graph.render_all(&ctx);
        }
    }
}
