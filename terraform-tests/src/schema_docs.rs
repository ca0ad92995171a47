//! The docs/ pages checked against the provider's schema (the JSON of
//! `terraform providers schema -json`): a generated "Schema" section lists
//! every argument, attribute and block with its type and kind, and the
//! hand-written "Argument Reference" / "Attribute Reference" bullets may
//! name only what the schema has.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use serde_json::Value;

/// Opens the generated section; what follows up to [`END`] is rewritten.
pub const BEGIN: &str = "<!-- BEGIN SCHEMA: generated from `terraform providers schema -json`; \
     refresh with EP_UPDATE_DOCS=1 cargo nextest run -p ep-terraform-tests --test docs -->";
/// Closes the generated section.
pub const END: &str = "<!-- END SCHEMA -->";

/// The generated section for a schema block (`schema.block`).
pub fn render(block: &Value) -> String {
    let mut out = format!(
        "{BEGIN}\n## Schema\n\nEvery argument and attribute as the provider declares it: type, \
         whether it is required, optional or computed (set by the provider), and sensitive values.\n"
    );
    render_block(&mut out, block, "");
    out.push_str(END);
    out
}

fn render_block(out: &mut String, block: &Value, path: &str) {
    let mut lines: Vec<(u8, String, String)> = Vec::new();
    let mut nested = Vec::new();
    for (name, a) in &entries(block, "attributes") {
        let mut kind = vec![type_name(&a["type"])];
        let rank = if flag(a, "required") {
            kind.push("Required".into());
            0
        } else if flag(a, "optional") {
            kind.push("Optional".into());
            if flag(a, "computed") {
                kind.push("Computed".into());
            }
            1
        } else {
            kind.push("Computed".into());
            2
        };
        for (f, word) in [
            ("sensitive", "Sensitive"),
            ("write_only", "Write-only"),
            ("deprecated", "Deprecated"),
        ] {
            if flag(a, f) {
                kind.push(word.into());
            }
        }
        lines.push((rank, name.clone(), item(name, &kind.join(", "), a)));
    }
    for (name, bt) in &entries(block, "block_types") {
        let min = bt["min_items"].as_u64().unwrap_or(0);
        let max = bt["max_items"].as_u64().unwrap_or(0);
        let mode = bt["nesting_mode"].as_str().unwrap_or("single");
        let shape = match mode {
            "single" | "group" => "Block".to_owned(),
            m => format!("Block {m}"),
        };
        let mut kind = vec![shape, if min > 0 { "Required" } else { "Optional" }.into()];
        match (min, max) {
            (_, 0) if mode != "single" && mode != "group" && min > 1 => {
                kind.push(format!("at least {min}"))
            }
            (a, b) if a == b && b > 1 => kind.push(format!("exactly {b}")),
            (_, b) if b > 1 => kind.push(format!("at most {b}")),
            _ => {}
        }
        let full = format!("{path}{name}");
        let mut line = item(name, &kind.join(", "), &bt["block"]);
        let _ = write!(line, " See [`{full}`](#{}).", anchor(&full));
        lines.push((if min > 0 { 0 } else { 1 }, name.clone(), line));
        nested.push((full, bt["block"].clone()));
    }
    lines.sort();
    out.push('\n');
    for (_, _, l) in lines {
        out.push_str(&l);
        out.push('\n');
    }
    for (full, b) in nested {
        let _ = write!(out, "\n### `{full}`\n");
        render_block(out, &b, &format!("{full}."));
    }
}

fn item(name: &str, kind: &str, v: &Value) -> String {
    let desc = v["description"].as_str().unwrap_or("").trim();
    let desc = desc.split_whitespace().collect::<Vec<_>>().join(" ");
    if desc.is_empty() {
        format!("- `{name}` ({kind})")
    } else {
        format!("- `{name}` ({kind}) — {desc}")
    }
}

fn anchor(full: &str) -> String {
    full.chars()
        .filter_map(|c| match c {
            'a'..='z' | '0'..='9' | '_' | '-' => Some(c),
            'A'..='Z' => Some(c.to_ascii_lowercase()),
            _ => None,
        })
        .collect()
}

fn flag(v: &Value, name: &str) -> bool {
    v[name].as_bool().unwrap_or(false)
}

fn entries(block: &Value, key: &str) -> Vec<(String, Value)> {
    block[key]
        .as_object()
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default()
}

/// A cty type as the docs name it: `String`, `List of String`, `Map of Object (…)`.
pub fn type_name(t: &Value) -> String {
    match t {
        Value::String(s) => match s.as_str() {
            "string" => "String".into(),
            "number" => "Number".into(),
            "bool" => "Bool".into(),
            "dynamic" => "Dynamic".into(),
            other => other.into(),
        },
        Value::Array(parts) => match (parts.first().and_then(Value::as_str), parts.get(1)) {
            (Some("list"), Some(e)) => format!("List of {}", type_name(e)),
            (Some("set"), Some(e)) => format!("Set of {}", type_name(e)),
            (Some("map"), Some(e)) => format!("Map of {}", type_name(e)),
            (Some("object"), Some(Value::Object(fields))) => {
                let inner: Vec<String> = fields
                    .iter()
                    .map(|(k, v)| format!("`{k}` {}", type_name(v)))
                    .collect();
                format!("Object ({})", inner.join(", "))
            }
            (Some("tuple"), Some(Value::Array(items))) => {
                let inner: Vec<String> = items.iter().map(type_name).collect();
                format!("Tuple ({})", inner.join(", "))
            }
            _ => t.to_string(),
        },
        _ => t.to_string(),
    }
}

/// Every attribute and block name in the block, at any depth.
pub fn names(block: &Value) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (n, _) in entries(block, "attributes") {
        out.insert(n);
    }
    for (n, bt) in entries(block, "block_types") {
        out.extend(names(&bt["block"]));
        out.insert(n);
    }
    out
}

/// `doc` with its generated section replaced by `generated` (inserted
/// before the first section after the references when it has none yet).
pub fn splice(doc: &str, generated: &str) -> String {
    if let (Some(b), Some(e)) = (doc.find(BEGIN), doc.find(END)) {
        if b < e {
            return format!("{}{generated}{}", &doc[..b], &doc[e + END.len()..]);
        }
    }
    let after_refs = [
        "\n## Behaviour",
        "\n## What apply does",
        "\n## Import",
        "\n## Errors",
    ]
    .iter()
    .filter_map(|h| doc.find(h))
    .min();
    match after_refs {
        Some(at) => format!(
            "{}\n\n{generated}\n\n{}",
            doc[..at].trim_end(),
            &doc[at + 1..]
        ),
        None => format!("{}\n\n{generated}\n", doc.trim_end()),
    }
}

/// Names that bullets of the hand-written reference sections document but
/// the schema lacks: `(line number, name)`.
pub fn unknown_in_prose(doc: &str, known: &BTreeSet<String>) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut in_reference = false;
    for (i, line) in doc.lines().enumerate() {
        if let Some(h) = line.strip_prefix("## ") {
            in_reference = matches!(h.trim(), "Argument Reference" | "Attribute Reference");
            continue;
        }
        if !in_reference {
            continue;
        }
        let Some(rest) = line.trim_start().strip_prefix("- ") else {
            continue;
        };
        for name in bullet_names(rest) {
            if !known.contains(&name) {
                out.push((i + 1, name));
            }
        }
    }
    out
}

/// The backticked names a bullet starts with: "`a`, `b` (…) — …" gives a, b.
fn bullet_names(rest: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut s = rest;
    while let Some(after) = s.strip_prefix('`') {
        let Some(end) = after.find('`') else { break };
        names.push(after[..end].to_owned());
        s = after[end + 1..].trim_start();
        match s.strip_prefix(',') {
            Some(more) => s = more.trim_start(),
            None => break,
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn kinds_types_and_nested_blocks() {
        let block = json!({
            "attributes": {
                "name": {"type": "string", "required": true, "description": "The name."},
                "tags": {"type": ["map", "string"], "optional": true},
                "id": {"type": "string", "computed": true},
                "password": {"type": "string", "optional": true, "computed": true, "sensitive": true}
            },
            "block_types": {
                "timeouts": {"nesting_mode": "single", "block": {
                    "attributes": {"create": {"type": "string", "optional": true}}
                }}
            }
        });
        let r = render(&block);
        assert!(r.contains("- `name` (String, Required) — The name."), "{r}");
        assert!(r.contains("- `tags` (Map of String, Optional)"), "{r}");
        assert!(r.contains("- `id` (String, Computed)"), "{r}");
        assert!(
            r.contains("- `password` (String, Optional, Computed, Sensitive)"),
            "{r}"
        );
        assert!(
            r.contains("### `timeouts`\n\n- `create` (String, Optional)"),
            "{r}"
        );
        assert!(
            r.find("`name`") < r.find("`password`") && r.find("`password`") < r.find("`id`"),
            "required, then optional, then computed:\n{r}"
        );
        assert_eq!(
            names(&block).into_iter().collect::<Vec<_>>(),
            ["create", "id", "name", "password", "tags", "timeouts"]
        );
    }

    #[test]
    fn prose_bullets_are_checked_only_in_the_reference_sections() {
        let known: BTreeSet<String> = ["a", "b"].iter().map(|s| s.to_string()).collect();
        let doc = "## Argument Reference\n\n- `a`, `b` (Required) — x\n  - `c` — nested\n\n\
                   ## Behaviour\n\n- `create_before_destroy` is fine here\n";
        assert_eq!(unknown_in_prose(doc, &known), vec![(4, "c".to_owned())]);
    }

    #[test]
    fn splicing_replaces_or_inserts() {
        let gen = format!("{BEGIN}\nX\n{END}");
        let doc = "# T\n\n## Attribute Reference\n\n- `a`\n\n## Import\n\ni\n";
        let once = splice(doc, &gen);
        assert!(
            once.contains(&format!("- `a`\n\n{gen}\n\n## Import")),
            "{once}"
        );
        let gen2 = format!("{BEGIN}\nY\n{END}");
        let twice = splice(&once, &gen2);
        assert!(
            twice.contains("\nY\n") && !twice.contains("\nX\n"),
            "{twice}"
        );
        assert_eq!(splice(&twice, &gen2), twice);
    }
}
