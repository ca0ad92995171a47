//! docs/ against the provider's real schema, read with `terraform providers
//! schema -json`: every resource and data source has its page, each page's
//! generated Schema section is current (every argument, attribute and block
//! with its type and kind), and the hand-written reference bullets name only
//! what exists. `EP_UPDATE_DOCS=1` rewrites the generated sections.

use std::path::PathBuf;

use ep_terraform_tests::schema_docs::{names, render, splice, unknown_in_prose};
use ep_terraform_tests::Workdir;

fn docs_dir() -> PathBuf {
    ep_terraform_tests::repo_root().join("docs")
}

#[test]
fn docs_match_the_provider_schema() {
    let wd = Workdir::new(&[(
        "main.tf",
        "terraform {\n  required_providers {\n    ep = { source = \"ep-platform/ep\" }\n  }\n}\n",
    )]);
    wd.init();
    let out = wd.ok(&["providers", "schema", "-json"]);
    let schema: serde_json::Value = serde_json::from_str(&out.stdout).expect("schema JSON");
    let provider = schema["provider_schemas"]
        .as_object()
        .and_then(|m| m.values().next())
        .expect("one provider");
    let mut pages: Vec<(String, PathBuf, &serde_json::Value)> = vec![(
        "the provider".into(),
        docs_dir().join("provider.md"),
        &provider["provider"]["block"],
    )];
    for (kind, dir) in [
        ("resource_schemas", "resources"),
        ("data_source_schemas", "data-sources"),
    ] {
        for (name, s) in provider[kind].as_object().expect("schemas") {
            let file = name.strip_prefix("ep_").unwrap_or(name);
            pages.push((
                name.clone(),
                docs_dir().join(dir).join(format!("{file}.md")),
                &s["block"],
            ));
        }
    }
    let update = std::env::var_os("EP_UPDATE_DOCS").is_some();
    let mut problems = Vec::new();
    for (name, path, block) in pages {
        let Ok(doc) = std::fs::read_to_string(&path) else {
            problems.push(format!("{name} has no page: {} is missing", path.display()));
            continue;
        };
        let want = splice(&doc, &render(block));
        if want != doc {
            if update {
                std::fs::write(&path, &want).expect("rewrite the page");
            } else {
                problems.push(format!(
                    "{}: the Schema section is not {name}'s current schema \
                     (EP_UPDATE_DOCS=1 rewrites it)",
                    path.display()
                ));
            }
        }
        let known = names(block);
        for (line, n) in unknown_in_prose(&want, &known) {
            problems.push(format!(
                "{}:{line}: documents `{n}`, which {name} does not have",
                path.display()
            ));
        }
    }
    // No page for something that does not exist.
    for dir in ["resources", "data-sources"] {
        for e in std::fs::read_dir(docs_dir().join(dir)).expect("docs dir") {
            let file = e.expect("entry").file_name().to_string_lossy().into_owned();
            let Some(stem) = file.strip_suffix(".md") else {
                continue;
            };
            let kind = if dir == "resources" {
                "resource_schemas"
            } else {
                "data_source_schemas"
            };
            if provider[kind].get(format!("ep_{stem}")).is_none() {
                problems.push(format!(
                    "docs/{dir}/{file} documents ep_{stem}, which does not exist"
                ));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "docs out of step with the schema:\n{}",
        problems.join("\n")
    );
}
