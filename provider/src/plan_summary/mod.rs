//! A plan in Elastic Path terms, read from `terraform show -json`: which
//! service images rebuild and why, which snapshots are recreated, which
//! deployment parts change and which services roll. Jenkins prints it beside
//! the plan so a reviewer need not read attribute diffs.

mod json;

use serde_json::Value;

use crate::resources::deployment_changes;

/// Why the summary could not be made.
#[derive(Debug, thiserror::Error)]
pub enum SummaryError {
    /// The input is not JSON.
    #[error("the plan is not JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// The JSON is not a plan.
    #[error("this is not a plan from `terraform show -json` (no resource_changes)")]
    NotAPlan,
}

/// One resource's entry in the summary.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Resource address.
    pub address: String,
    /// What happens, in words.
    pub what: String,
    /// Why, or the detail lines.
    pub details: Vec<String>,
}

/// The summary, section by section.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// `ep_image` changes.
    pub images: Vec<Entry>,
    /// `ep_rds_snapshot` and `ep_database_image` changes.
    pub data: Vec<Entry>,
    /// `ep_deployment` changes.
    pub deployments: Vec<Entry>,
    /// Everything else that changes, by address.
    pub other: Vec<String>,
}

/// Reads a plan's JSON and summarises it.
pub fn summarise(plan_json: &str) -> Result<Summary, SummaryError> {
    let plan: Value = serde_json::from_str(plan_json)?;
    let changes = plan["resource_changes"]
        .as_array()
        .ok_or(SummaryError::NotAPlan)?;
    let mut s = Summary::default();
    for rc in changes {
        let actions = json::actions(rc);
        if actions.is_empty() || actions == ["no-op"] || actions == ["read"] {
            continue;
        }
        let address = rc["address"].as_str().unwrap_or("?").to_owned();
        let (before, after) = (
            &rc["change"]["before"],
            &json::after_with_unknowns(&rc["change"]),
        );
        match rc["type"].as_str().unwrap_or_default() {
            "ep_image" => s.images.push(image(address, &actions, before, after)),
            "ep_rds_snapshot" | "ep_database_image" => {
                s.data.push(data(address, &actions, before, after))
            }
            "ep_deployment" => s
                .deployments
                .push(deployment(address, &actions, before, after)),
            _ => s.other.push(format!("{address} ({})", actions.join(", "))),
        }
    }
    Ok(s)
}

fn verb(actions: &[String]) -> &'static str {
    match actions
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["create"] => "created",
        ["delete"] => "destroyed",
        ["update"] => "updated",
        ["delete", "create"] | ["create", "delete"] => "replaced",
        _ => "changed",
    }
}

/// Image attributes that are configuration, as opposed to content.
const IMAGE_CONFIG: &[&str] = &[
    "env",
    "entrypoint",
    "cmd",
    "working_dir",
    "user",
    "labels",
    "exposed_ports",
    "stop_signal",
    "annotations",
    "platforms",
    "source_date_epoch",
    "compression",
    "format",
    "layer",
];

fn image(address: String, actions: &[String], before: &Value, after: &Value) -> Entry {
    let name = after["repository"]
        .as_str()
        .or(before["repository"].as_str())
        .unwrap_or("?");
    let mut details = Vec::new();
    if verb(actions) == "updated" || verb(actions) == "replaced" {
        let changed = |k: &str| before[k] != after[k];
        if changed("source_fingerprint") {
            details.push(if json::is_unknown(&after["source_fingerprint"]) {
                "inputs not known until apply (a value from another resource)".to_owned()
            } else {
                "package content of this service changed".to_owned()
            });
        }
        if changed("base") || changed("base_digest") {
            details.push("base image changed".to_owned());
        }
        let config: Vec<&str> = IMAGE_CONFIG
            .iter()
            .copied()
            .filter(|k| changed(k))
            .collect();
        if !config.is_empty() {
            details.push(format!("configuration changed: {}", config.join(", ")));
        }
        if changed("tags") {
            details.push("tags changed (retag only)".to_owned());
        }
    }
    let rebuild = json::is_unknown(&after["digest"]) || actions.iter().any(|a| a == "create");
    let what = match (verb(actions), rebuild) {
        ("destroyed", _) => format!("{name}: removed"),
        ("created", _) => format!("{name}: built and pushed (a new image)"),
        (_, true) => format!("{name}: rebuilt and pushed"),
        _ => format!("{name}: {} without a rebuild", verb(actions)),
    };
    Entry {
        address,
        what,
        details,
    }
}

fn data(address: String, actions: &[String], before: &Value, after: &Value) -> Entry {
    let mut details = Vec::new();
    if before["data_fingerprint"] != after["data_fingerprint"] && !before.is_null() {
        details.push("data inputs changed (tool, data, drivers, environment or engine)".to_owned());
    }
    let what = match verb(actions) {
        "replaced" => "a new snapshot is made; the old one is deleted after it".to_owned(),
        "created" => "a new snapshot is made".to_owned(),
        v => v.to_owned(),
    };
    Entry {
        address,
        what,
        details,
    }
}

fn deployment(address: String, actions: &[String], before: &Value, after: &Value) -> Entry {
    let details = match (json::model(before), json::model(after)) {
        (Some(b), Some(a)) => deployment_changes(&b, &a),
        _ if before.is_null() => Vec::new(),
        _ => vec!["some changes are not known until apply".to_owned()],
    };
    let mut details = details;
    if let Some(status) = before["status"].as_str().filter(|s| *s != "ready") {
        details.push(format!("repairs drift: {status}"));
    }
    Entry {
        address,
        what: verb(actions).to_owned(),
        details,
    }
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sections = [
            ("Service images", &self.images),
            ("Data (snapshots, database images)", &self.data),
            ("Deployments", &self.deployments),
        ];
        let mut any = false;
        for (title, entries) in sections {
            if entries.is_empty() {
                continue;
            }
            any = true;
            writeln!(f, "{title}:")?;
            for e in entries {
                writeln!(f, "  - {} — {}", e.address, e.what)?;
                for d in &e.details {
                    writeln!(f, "      {d}")?;
                }
            }
        }
        if !self.other.is_empty() {
            any = true;
            writeln!(f, "Other resources: {}", self.other.join("; "))?;
        }
        if !any {
            writeln!(f, "No Elastic Path changes.")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
