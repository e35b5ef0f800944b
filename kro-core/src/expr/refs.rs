//! Reference extraction: which variables, and which field paths of them, an
//! expression reads. Comprehension variables (`x` in `list.map(x, x.name)`)
//! are bound locally and never reported.

use std::collections::BTreeSet;

use cel::common::ast::{EntryExpr, Expr, IdedExpr, LiteralValue, operators};

/// A read of a variable, with the longest static field path selected on it:
/// `deployment.status.availableReplicas` is root `deployment`, path
/// `["status", "availableReplicas"]`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Reference {
    /// The variable: `schema`, a resource id, an iterator, `cluster`, ...
    pub root: String,
    /// Field names selected on it, outermost first.
    pub path: Vec<String>,
}

impl std::fmt::Display for Reference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.root)?;
        for p in &self.path {
            write!(f, ".{p}")?;
        }
        Ok(())
    }
}

/// Every reference in `expr`, sorted and deduplicated. Identifiers in
/// `namespaces` used as the target of a call (`math.abs(x)`) are function
/// namespaces, not variables.
pub fn references(expr: &IdedExpr, namespaces: &[&str]) -> BTreeSet<Reference> {
    let mut walker = Walker {
        bound: Vec::new(),
        namespaces,
        out: BTreeSet::new(),
    };
    walker.walk(expr);
    walker.out
}

struct Walker<'a> {
    bound: Vec<String>,
    namespaces: &'a [&'a str],
    out: BTreeSet<Reference>,
}

impl Walker<'_> {
    fn walk(&mut self, expr: &IdedExpr) {
        if let Some((root, path, rest)) = select_chain(expr) {
            if !self.bound.iter().any(|b| b == root) {
                self.out.insert(Reference {
                    root: root.to_owned(),
                    path,
                });
            }
            for e in rest {
                self.walk(e);
            }
            return;
        }
        match &expr.expr {
            Expr::Unspecified | Expr::Literal(_) => {}
            Expr::Ident(_) | Expr::Select(_) => {
                // Select on something that is not a plain chain, e.g. `f(x).a`.
                if let Expr::Select(s) = &expr.expr {
                    self.walk(&s.operand);
                }
            }
            Expr::Call(call) => {
                if let Some(target) = &call.target {
                    let is_namespace = matches!(&target.expr, Expr::Ident(name)
                        if self.namespaces.contains(&name.as_str())
                            && !self.bound.iter().any(|b| b == name));
                    if !is_namespace {
                        self.walk(target);
                    }
                }
                for a in &call.args {
                    self.walk(a);
                }
            }
            Expr::List(list) => {
                for e in &list.elements {
                    self.walk(e);
                }
            }
            Expr::Map(map) => {
                for entry in &map.entries {
                    if let EntryExpr::MapEntry(m) = &entry.expr {
                        self.walk(&m.key);
                        self.walk(&m.value);
                    }
                }
            }
            Expr::Struct(s) => {
                for entry in &s.entries {
                    match &entry.expr {
                        EntryExpr::StructField(f) => self.walk(&f.value),
                        EntryExpr::MapEntry(m) => {
                            self.walk(&m.key);
                            self.walk(&m.value);
                        }
                    }
                }
            }
            Expr::Comprehension(c) => {
                self.walk(&c.iter_range);
                self.walk(&c.accu_init);
                let pushed = 2 + usize::from(c.iter_var2.is_some());
                self.bound.push(c.iter_var.clone());
                if let Some(v2) = &c.iter_var2 {
                    self.bound.push(v2.clone());
                }
                self.bound.push(c.accu_var.clone());
                self.walk(&c.loop_cond);
                self.walk(&c.loop_step);
                self.walk(&c.result);
                self.bound.truncate(self.bound.len() - pushed);
            }
        }
    }
}

/// `a.b.c`, `a.?b`, `a["b"]` and `has(a.b)` as a root identifier and a path;
/// also returns sub-expressions that must still be walked (none for the
/// forms recognised here).
fn select_chain(expr: &IdedExpr) -> Option<(&str, Vec<String>, Vec<&IdedExpr>)> {
    let mut path = Vec::new();
    let mut cur = expr;
    loop {
        match &cur.expr {
            Expr::Ident(name) => {
                path.reverse();
                return Some((name.as_str(), path, Vec::new()));
            }
            Expr::Select(s) => {
                path.push(s.field.clone());
                cur = &s.operand;
            }
            Expr::Call(call)
                if call.target.is_none()
                    && call.args.len() == 2
                    && (call.func_name == operators::OPT_SELECT
                        || call.func_name == operators::INDEX
                        || call.func_name == operators::OPT_INDEX) =>
            {
                match &call.args[1].expr {
                    Expr::Literal(LiteralValue::String(s)) => {
                        path.push(s.inner().to_string());
                        cur = &call.args[0];
                    }
                    _ => return None,
                }
            }
            _ => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refs(src: &str) -> Vec<String> {
        let env = cel::Env::stdlib();
        let program = env.compile(src).unwrap();
        references(program.expression(), &["math"])
            .into_iter()
            .map(|r| r.to_string())
            .collect()
    }

    #[test]
    fn select_chains_are_full_paths() {
        assert_eq!(
            refs("deployment.status.availableReplicas > 0 && schema.spec.name != ''"),
            ["deployment.status.availableReplicas", "schema.spec.name"]
        );
    }

    #[test]
    fn comprehension_variables_are_skipped() {
        assert_eq!(
            refs("schema.spec.items.map(x, x.name + y.suffix)"),
            ["schema.spec.items", "y.suffix"]
        );
        assert_eq!(refs("[1, 2].all(i, i > 0)"), Vec::<String>::new());
    }

    #[test]
    fn optional_index_and_has_extend_the_path() {
        assert_eq!(
            refs(r#"schema.spec.?labels["team"].orValue("x")"#),
            ["schema.spec.labels.team"]
        );
        assert_eq!(refs("has(schema.spec.foo)"), ["schema.spec.foo"]);
        assert_eq!(refs("schema.spec.list[0].name"), ["schema.spec.list"]);
    }

    #[test]
    fn two_variable_comprehension_variables_are_skipped() {
        let env = crate::expr::library::env().unwrap();
        let program = env
            .compile("schema.spec.labels.all(k, v, v == other.name + k)")
            .unwrap();
        let found: Vec<String> = references(program.expression(), crate::expr::library::NAMESPACES)
            .into_iter()
            .map(|r| r.to_string())
            .collect();
        assert_eq!(found, ["other.name", "schema.spec.labels"]);
    }

    #[test]
    fn namespaces_are_not_variables() {
        assert_eq!(refs("math.abs(schema.spec.n)"), ["schema.spec.n"]);
    }
}
