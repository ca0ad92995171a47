//! `ops-spec.json`: the versions of the platform a release was built and tested with.

use serde::Serialize;
use serde_json::Value;

/// The parts of `ops-spec.json` tooling needs, read leniently (missing or oddly shaped fields
/// become `None`), plus the whole document.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OpsSpec {
    /// `java.version`.
    pub java: Option<String>,
    /// `applicationServer.version` (Tomcat).
    pub tomcat: Option<String>,
    /// `activemq.version`.
    pub activemq: Option<String>,
    /// `maven.version`.
    pub maven: Option<String>,
    /// `databases`, as an array or as an object keyed by name.
    pub databases: Vec<DatabaseSpec>,
    /// The whole document, for fields not modelled here.
    pub raw: Value,
}

/// One database choice in `ops-spec.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DatabaseSpec {
    /// The key, when `databases` is an object.
    pub name: Option<String>,
    /// `type` (for example `mysql`).
    pub kind: Option<String>,
    /// `version`.
    pub version: Option<String>,
    /// `awsDeployment` (a string, or the `type` of an object), e.g. `rds` or `aurora`.
    pub aws_deployment: Option<String>,
}

/// A string or number as text.
fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// `v.version` when `v` is an object, or `v` itself when it is a plain version.
fn version_of(v: Option<&Value>) -> Option<String> {
    let v = v?;
    match v {
        Value::Object(map) => map.get("version").and_then(scalar),
        other => scalar(other),
    }
}

fn database(name: Option<String>, v: &Value) -> DatabaseSpec {
    let aws_deployment = v.get("awsDeployment").and_then(|a| match a {
        Value::Object(m) => m.get("type").and_then(scalar),
        other => scalar(other),
    });
    DatabaseSpec {
        name,
        kind: v.get("type").and_then(scalar),
        version: version_of(Some(v)),
        aws_deployment,
    }
}

impl OpsSpec {
    /// Reads the known fields of a parsed `ops-spec.json`; `None` when it is not an object.
    pub fn from_value(raw: Value) -> Option<Self> {
        let obj = raw.as_object()?;
        let databases = match obj.get("databases") {
            Some(Value::Array(items)) => items.iter().map(|d| database(None, d)).collect(),
            Some(Value::Object(map)) if map.contains_key("type") || map.contains_key("version") => {
                vec![database(None, &Value::Object(map.clone()))]
            }
            Some(Value::Object(map)) => map
                .iter()
                .map(|(k, d)| database(Some(k.clone()), d))
                .collect(),
            _ => Vec::new(),
        };
        Some(OpsSpec {
            java: version_of(obj.get("java")),
            tomcat: version_of(obj.get("applicationServer")),
            activemq: version_of(obj.get("activemq")),
            maven: version_of(obj.get("maven")),
            databases,
            raw,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_versions_in_both_database_shapes() {
        let spec = OpsSpec::from_value(json!({
            "java": {"version": "17"},
            "applicationServer": {"type": "tomcat", "version": "9.0.89"},
            "activemq": "5.18.4",
            "maven": {"version": 3.9},
            "databases": {"mysql": {"type": "mysql", "version": "8.0", "awsDeployment": {"type": "aurora"}}}
        }))
        .unwrap();
        assert_eq!(spec.java.as_deref(), Some("17"));
        assert_eq!(spec.tomcat.as_deref(), Some("9.0.89"));
        assert_eq!(spec.activemq.as_deref(), Some("5.18.4"));
        assert_eq!(spec.maven.as_deref(), Some("3.9"));
        assert_eq!(spec.databases[0].name.as_deref(), Some("mysql"));
        assert_eq!(spec.databases[0].aws_deployment.as_deref(), Some("aurora"));

        let spec = OpsSpec::from_value(json!({"databases": [{"type": "mysql", "version": "8.0"}]}))
            .unwrap();
        assert_eq!(spec.databases.len(), 1);
        assert!(spec.java.is_none());
        assert!(OpsSpec::from_value(json!([1])).is_none());
    }
}
