use serde_json::json;

use super::*;

fn plan(changes: Value) -> String {
    json!({ "format_version": "1.2", "resource_changes": changes }).to_string()
}

fn image_change(actions: &[&str], before: Value, after: Value, after_unknown: Value) -> Value {
    json!({
        "address": "ep_image.cortex", "type": "ep_image",
        "change": { "actions": actions, "before": before, "after": after, "after_unknown": after_unknown }
    })
}

#[test]
fn an_image_with_new_package_content_is_rebuilt_and_says_why() {
    let before = json!({ "repository": "ep/cortex", "source_fingerprint": "a", "digest": "sha256:1", "env": {"A": "1"} });
    let after = json!({ "repository": "ep/cortex", "source_fingerprint": "b", "digest": null, "env": {"A": "2"} });
    let s = summarise(&plan(json!([image_change(
        &["update"],
        before,
        after,
        json!({ "digest": true })
    )])))
    .unwrap_or_default();
    assert_eq!(s.images.len(), 1);
    assert_eq!(s.images[0].what, "ep/cortex: rebuilt and pushed");
    assert_eq!(
        s.images[0].details,
        vec![
            "package content of this service changed",
            "configuration changed: env"
        ]
    );
    let text = s.to_string();
    assert!(
        text.starts_with("Service images:\n  - ep_image.cortex — ep/cortex: rebuilt and pushed\n"),
        "{text}"
    );
}

#[test]
fn a_retag_is_not_a_rebuild() {
    let before = json!({ "repository": "ep/cm", "digest": "sha256:1", "tags": ["a"] });
    let after = json!({ "repository": "ep/cm", "digest": "sha256:1", "tags": ["b"] });
    let s = summarise(&plan(json!([image_change(
        &["update"],
        before,
        after,
        json!({})
    )])))
    .unwrap_or_default();
    assert_eq!(s.images[0].what, "ep/cm: updated without a rebuild");
    assert_eq!(s.images[0].details, vec!["tags changed (retag only)"]);
}

#[test]
fn no_ops_and_reads_are_left_out() {
    let changes = json!([
        { "address": "ep_image.a", "type": "ep_image", "change": { "actions": ["no-op"], "before": {}, "after": {} } },
        { "address": "data.ep_deployment_package.p", "type": "ep_deployment_package", "change": { "actions": ["read"] } }
    ]);
    let s = summarise(&plan(changes)).unwrap_or_default();
    assert_eq!(s, Summary::default());
    assert_eq!(s.to_string(), "No Elastic Path changes.\n");
}

#[test]
fn a_snapshot_replacement_names_the_data_change() {
    let changes = json!([{
        "address": "ep_rds_snapshot.author", "type": "ep_rds_snapshot",
        "change": { "actions": ["create", "delete"],
                    "before": { "data_fingerprint": "1" }, "after": { "data_fingerprint": "2" }, "after_unknown": {} }
    }]);
    let s = summarise(&plan(changes)).unwrap_or_default();
    assert_eq!(
        s.data[0].what,
        "a new snapshot is made; the old one is deleted after it"
    );
    assert_eq!(s.data[0].details.len(), 1);
}

#[test]
fn not_a_plan_is_an_error() {
    assert!(matches!(summarise("{}"), Err(SummaryError::NotAPlan)));
    assert!(matches!(summarise("nope"), Err(SummaryError::Json(_))));
}

#[test]
fn unknown_values_are_marked_inside_blocks_and_lists() {
    let change = json!({
        "after": { "service": [{ "image": null, "name": "cortex" }] },
        "after_unknown": { "service": [{ "image": true }] }
    });
    let after = json::after_with_unknowns(&change);
    assert_eq!(after["service"][0]["image"], json::UNKNOWN);
    assert_eq!(after["service"][0]["name"], "cortex");
}

#[test]
fn a_deployment_update_lists_the_services_that_roll() {
    let service = |image: &str| json!({ "name": "cortex", "stack": "live", "image": image });
    let model = |image: &str| {
        json!({
            "name": "demo", "kind": "author_and_live", "subnet_ids": ["s"],
            "service": [service(image)], "status": "ready", "endpoints": {}, "timeouts": null
        })
    };
    let mut after = model("cortex:2");
    after["service"][0]["image"] = Value::Null;
    let changes = json!([{
        "address": "ep_deployment.demo", "type": "ep_deployment",
        "change": { "actions": ["update"], "before": model("cortex:1"), "after": after,
                    "after_unknown": { "endpoints": true, "status": true, "service": [{ "image": true }] } }
    }]);
    let s = summarise(&plan(changes)).unwrap_or_default();
    assert_eq!(s.deployments[0].what, "updated");
    assert_eq!(s.deployments[0].details, vec!["live/cortex: rolls (image)"]);
}

#[test]
fn a_new_image_is_built_not_rebuilt() {
    let after = json!({ "repository": "ep/cortex", "digest": null });
    let s = summarise(&plan(json!([image_change(
        &["create"],
        Value::Null,
        after,
        json!({ "digest": true })
    )])))
    .unwrap_or_default();
    assert_eq!(
        s.images[0].what,
        "ep/cortex: built and pushed (a new image)"
    );
}
