//! An RGD's graph as an inline SVG drawn on the server: one column per
//! dependency layer, left to right, an arrow from each dependency to the
//! resource that reads it.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::html::escape;
use crate::view::Graph;

const NODE_W: usize = 150;
const NODE_H: usize = 28;
const COL_GAP: usize = 56;
const ROW_GAP: usize = 12;
const PAD: usize = 8;
/// Longer ids are cut in the box; the full id is the box's tooltip.
const LABEL_CHARS: usize = 19;

/// The SVG of `graph`, or an empty string when it has no resources.
pub fn svg(graph: &Graph) -> String {
    if graph.nodes.is_empty() {
        return String::new();
    }
    // Position: (column, row within the column).
    let mut rows_used: BTreeMap<usize, usize> = BTreeMap::new();
    let mut at: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for node in &graph.nodes {
        let row = rows_used.entry(node.layer).or_default();
        at.insert(node.id.as_str(), (node.layer, *row));
        *row += 1;
    }
    let columns = rows_used.keys().max().map_or(1, |l| l + 1);
    let rows = rows_used.values().max().copied().unwrap_or(1);
    let width = 2 * PAD + columns * NODE_W + (columns - 1) * COL_GAP;
    let height = 2 * PAD + rows * NODE_H + (rows - 1) * ROW_GAP;
    let origin = |(col, row): (usize, usize)| {
        (
            PAD + col * (NODE_W + COL_GAP),
            PAD + row * (NODE_H + ROW_GAP),
        )
    };
    let mut out = String::new();
    let _ = write!(
        out,
        r#"<svg class="dag" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" aria-label="resource graph of {}">"#,
        escape(&graph.name)
    );
    out.push_str(
        r#"<defs><marker id="arrow" viewBox="0 0 8 8" refX="8" refY="4" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L8,4 L0,8 z"/></marker></defs>"#,
    );
    for node in &graph.nodes {
        let Some(&to) = at.get(node.id.as_str()) else {
            continue;
        };
        let (tx, ty) = origin(to);
        for dep in &node.dependencies {
            let Some(&from) = at.get(dep.as_str()) else {
                continue;
            };
            let (fx, fy) = origin(from);
            let (x1, y1) = (fx + NODE_W, fy + NODE_H / 2);
            let (x2, y2) = (tx, ty + NODE_H / 2);
            let mid = (x1 + x2) / 2;
            let _ = write!(
                out,
                r#"<path class="edge" d="M{x1},{y1} C{mid},{y1} {mid},{y2} {x2},{y2}" marker-end="url(#arrow)"><title>{} → {}</title></path>"#,
                escape(dep),
                escape(&node.id)
            );
        }
    }
    for node in &graph.nodes {
        let Some(&pos) = at.get(node.id.as_str()) else {
            continue;
        };
        let (x, y) = origin(pos);
        let label: String = if node.id.chars().count() > LABEL_CHARS {
            let cut: String = node.id.chars().take(LABEL_CHARS - 1).collect();
            format!("{cut}…")
        } else {
            node.id.clone()
        };
        let _ = write!(
            out,
            r#"<g class="node" data-id="{id}"><title>{id}</title><rect x="{x}" y="{y}" width="{NODE_W}" height="{NODE_H}" rx="5"/><text x="{tx}" y="{ty}">{label}</text></g>"#,
            id = escape(&node.id),
            tx = x + NODE_W / 2,
            ty = y + NODE_H / 2 + 4,
            label = escape(&label),
        );
    }
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::view::GraphNode;

    fn node(id: &str, layer: usize, deps: &[&str]) -> GraphNode {
        GraphNode {
            id: id.to_owned(),
            layer,
            dependencies: deps.iter().map(|d| (*d).to_owned()).collect(),
        }
    }

    #[test]
    fn one_column_per_layer_and_one_arrow_per_dependency() {
        let graph = Graph {
            name: "web".to_owned(),
            kind: "Web".to_owned(),
            state: "Active".to_owned(),
            reason: String::new(),
            nodes: vec![
                node("site", 0, &[]),
                node("deployment", 1, &["site"]),
                node("service", 2, &["deployment"]),
                node("ingress", 2, &["deployment", "site"]),
            ],
        };
        let svg = svg(&graph);
        assert_eq!(svg.matches("<g class=\"node\"").count(), 4);
        assert_eq!(svg.matches("<path class=\"edge\"").count(), 4);
        // Three columns, two rows: width and height follow.
        let width = 2 * PAD + 3 * NODE_W + 2 * COL_GAP;
        let height = 2 * PAD + 2 * NODE_H + ROW_GAP;
        assert!(
            svg.contains(&format!("width=\"{width}\" height=\"{height}\"")),
            "{svg}"
        );
        // The edge into `service` starts at the right side of
        // `deployment`, in column 1.
        let x1 = PAD + (NODE_W + COL_GAP) + NODE_W;
        assert!(svg.contains(&format!("d=\"M{x1},")), "{svg}");
    }

    #[test]
    fn ids_and_names_are_escaped() {
        let graph = Graph {
            name: "<script>alert(1)</script>".to_owned(),
            kind: "K".to_owned(),
            state: "Active".to_owned(),
            reason: String::new(),
            nodes: vec![node("<img src=x onerror=alert(1)>", 0, &[])],
        };
        let svg = svg(&graph);
        assert!(!svg.contains("<script>") && !svg.contains("<img"), "{svg}");
        assert!(svg.contains("&lt;script&gt;"));
    }

    #[test]
    fn no_resources_no_drawing() {
        let graph = Graph {
            name: "empty".to_owned(),
            kind: String::new(),
            state: "Inactive".to_owned(),
            reason: "no".to_owned(),
            nodes: Vec::new(),
        };
        assert_eq!(svg(&graph), "");
    }
}
