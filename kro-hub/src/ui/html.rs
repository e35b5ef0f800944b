//! The page, rendered on the server from a [`Snapshot`]: members, instances
//! by cluster, and each RGD's graph. Every string that comes from the
//! cluster goes through [`escape`]; live updates replace whole sections
//! with fragments rendered here, so the browser never builds markup from
//! data.

use std::fmt::Write as _;

use crate::view::{self, Snapshot};

/// `s` safe as HTML text and as a quoted attribute value.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The colour class of a state: Ready green, the unreachable and failed
/// red, anything on its way amber.
fn tone(state: &str) -> &'static str {
    let base = state.split(' ').next().unwrap_or_default();
    match base {
        "Ready" | "ACTIVE" | "Active" | "True" => "ok",
        "Unreachable" | "Error" | "ERROR" | "Failed" | "FAILED" | "Unauthorized" | "False"
        | "Inactive" => "bad",
        "-" | "" => "none",
        _ => "wait",
    }
}

/// The sections a live update replaces, by element id.
pub fn fragments(snapshot: &Snapshot) -> [(&'static str, String); 4] {
    [
        ("members", members(&snapshot.members)),
        ("instances", instances(&snapshot.rows)),
        ("graphs", graphs(&snapshot.graphs)),
        ("summary", summary(snapshot)),
    ]
}

/// The whole page.
pub fn page(snapshot: &Snapshot) -> String {
    let [(_, members), (_, instances), (_, graphs), (_, summary)] = fragments(snapshot);
    format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>kro-hub</title>
<link rel="stylesheet" href="ui.css">
</head>
<body data-updates="0">
<header>
<h1>kro-hub</h1>
<span id="summary">{summary}</span>
<span id="live" class="live off" title="live updates">connecting…</span>
</header>
<main>
<section>
<h2>Members</h2>
<div id="members">{members}</div>
</section>
<section>
<h2>Instances by cluster</h2>
<div id="instances">{instances}</div>
</section>
<section>
<h2>Changes seen</h2>
<ol id="changes" reversed></ol>
</section>
<section>
<h2>ResourceGraphDefinitions</h2>
<div id="graphs">{graphs}</div>
</section>
</main>
<script src="ui.js"></script>
</body>
</html>
"#
    )
}

fn summary(snapshot: &Snapshot) -> String {
    let ready = snapshot.members.iter().filter(|m| m.is_ready()).count();
    let active = snapshot
        .rows
        .iter()
        .filter(|r| tone(&r.state) == "ok")
        .count();
    format!(
        "{ready}/{} members ready · {active}/{} instances active · {} RGDs",
        snapshot.members.len(),
        snapshot.rows.len(),
        snapshot.graphs.len()
    )
}

fn members(members: &[view::MemberHealth]) -> String {
    if members.is_empty() {
        return r#"<p class="empty">No member clusters registered.</p>"#.to_owned();
    }
    let mut out = String::from(
        "<table><thead><tr><th>Member</th><th>Ready</th><th>Version</th><th>Labels</th></tr></thead><tbody>",
    );
    for m in members {
        let mut notes = String::new();
        if m.paused {
            notes.push_str(r#" <span class="tag">paused</span>"#);
        }
        if m.deleting {
            notes.push_str(r#" <span class="tag">deleting</span>"#);
        }
        let labels: String = m
            .labels
            .iter()
            .map(|(k, v)| format!(r#"<span class="label">{}={}</span>"#, escape(k), escape(v)))
            .collect();
        let _ = write!(
            out,
            r#"<tr data-member="{name}"><td>{name}{notes}</td><td class="cell {tone}" title="{message}" data-key="member|{name}" data-label="member {name}" data-state="{state}">{state}</td><td>{version}</td><td>{labels}</td></tr>"#,
            name = escape(&m.name),
            tone = tone(&m.ready),
            message = escape(&m.message),
            state = escape(&format!("{} ({})", m.ready, m.reason)),
            version = escape(&m.version),
        );
    }
    out.push_str("</tbody></table>");
    out
}

fn instances(rows: &[view::Row]) -> String {
    if rows.is_empty() {
        return r#"<p class="empty">No instances.</p>"#.to_owned();
    }
    let members = view::columns(rows);
    let mut out =
        String::from("<table><thead><tr><th>Instance</th><th>State</th><th>Clusters ready</th>");
    for m in &members {
        let _ = write!(out, "<th>{}</th>", escape(m));
    }
    out.push_str("<th>Waiting for</th></tr></thead><tbody>");
    for r in rows {
        let instance = escape(&r.instance);
        let _ = write!(
            out,
            r#"<tr data-instance="{instance}"><td>{instance}</td><td class="cell {tone}" data-key="{instance}|" data-label="{instance}" data-state="{state}">{state}</td><td class="summary">{summary}</td>"#,
            tone = tone(&r.state),
            state = escape(&r.state),
            summary = escape(&r.summary),
        );
        for m in &members {
            let state = r.cell(m).unwrap_or("-");
            let _ = write!(
                out,
                r#"<td class="cell {tone}" data-key="{instance}|{member}" data-label="{instance} on {member}" data-member="{member}" data-state="{state}">{state}</td>"#,
                tone = tone(state),
                member = escape(m),
                state = escape(state),
            );
        }
        let _ = write!(out, r#"<td class="reason">{}</td></tr>"#, escape(&r.reason));
    }
    out.push_str("</tbody></table>");
    out
}

fn graphs(graphs: &[view::Graph]) -> String {
    if graphs.is_empty() {
        return r#"<p class="empty">No ResourceGraphDefinitions.</p>"#.to_owned();
    }
    let mut out = String::new();
    for g in graphs {
        let reason = if g.reason.is_empty() {
            String::new()
        } else {
            format!(r#"<p class="reason">{}</p>"#, escape(&g.reason))
        };
        let _ = write!(
            out,
            r#"<figure class="rgd" data-rgd="{name}"><figcaption><strong>{name}</strong> serves <code>{kind}</code> <span class="cell {tone}">{state}</span></figcaption>{reason}{svg}</figure>"#,
            name = escape(&g.name),
            kind = escape(&g.kind),
            tone = tone(&g.state),
            state = escape(&g.state),
            svg = super::graph::svg(g),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::view::{Graph, MemberHealth, Row};

    fn snapshot(evil: &str) -> Snapshot {
        Snapshot {
            members: vec![MemberHealth {
                name: "eu-1".to_owned(),
                labels: [("env".to_owned(), evil.to_owned())].into(),
                ready: "False".to_owned(),
                reason: "Unreachable".to_owned(),
                message: evil.to_owned(),
                version: "v1.31.0".to_owned(),
                paused: false,
                deleting: false,
            }],
            graphs: vec![Graph {
                name: evil.to_owned(),
                kind: evil.to_owned(),
                state: "Inactive".to_owned(),
                reason: evil.to_owned(),
                nodes: Vec::new(),
            }],
            rows: vec![Row {
                instance: format!("Web apps/{evil}"),
                state: "IN_PROGRESS".to_owned(),
                summary: "1/2".to_owned(),
                cells: vec![
                    ("eu-1".to_owned(), "Unreachable (stale)".to_owned()),
                    ("us-1".to_owned(), "Ready".to_owned()),
                ],
                reason: evil.to_owned(),
            }],
        }
    }

    #[test]
    fn user_strings_cannot_inject_markup() {
        let evil = r#"<script>alert("x")</script>' onmouseover='alert(1)"#;
        let page = page(&snapshot(evil));
        assert!(!page.contains("<script>alert"), "{page}");
        assert!(!page.contains("' onmouseover='"), "{page}");
        assert!(page.contains("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;"));
        // The only script is the page's own.
        assert_eq!(page.matches("<script").count(), 1);
    }

    #[test]
    fn cells_carry_state_and_tone_per_member() {
        let page = page(&snapshot("blog"));
        assert!(page.contains(
            r#"<td class="cell bad" data-key="Web apps/blog|eu-1" data-label="Web apps/blog on eu-1" data-member="eu-1" data-state="Unreachable (stale)">"#
        ), "{page}");
        assert!(page.contains(r#"data-member="us-1" data-state="Ready">Ready</td>"#));
        assert!(page.contains(r#"<td class="summary">1/2</td>"#));
        assert!(page.contains("0/1 members ready · 0/1 instances active · 1 RGDs"));
    }

    #[test]
    fn empty_sections_say_so() {
        let page = page(&Snapshot::default());
        assert!(page.contains("No member clusters registered."));
        assert!(page.contains("No instances."));
        assert!(page.contains("No ResourceGraphDefinitions."));
    }
}
