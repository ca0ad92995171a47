//! Which keys a publication writes: `values` and `sensitive_values` as
//! given, and `endpoints` (stack → endpoint name → value, as
//! `ep_deployment.endpoints` gives them) laid out as `<stack>/EP_<NAME>`,
//! the variables Elastic Path's images read through envconsul.

use std::collections::BTreeMap;

use crate::framework::AttrPath;
use crate::stores::keys::{self, KeyError};

/// Where a key's value comes from in the configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// `values[key]`.
    Values,
    /// `sensitive_values[key]`.
    Sensitive,
    /// `endpoints[stack][name]`.
    Endpoint {
        /// The stack.
        stack: String,
        /// The endpoint's name.
        name: String,
    },
}

impl Source {
    /// The attribute path of this value, for diagnostics.
    pub fn path(&self, key: &str) -> AttrPath {
        match self {
            Source::Values => AttrPath::root("values").key(key),
            Source::Sensitive => AttrPath::root("sensitive_values").key(key),
            Source::Endpoint { stack, name } => AttrPath::root("endpoints").key(stack).key(name),
        }
    }
}

/// One key to publish.
#[derive(Clone, PartialEq, Eq)]
pub struct Desired {
    /// The value.
    pub value: String,
    /// Sensitive (SSM `SecureString`; never shown).
    pub secure: bool,
    /// Where it comes from.
    pub source: Source,
}

impl std::fmt::Debug for Desired {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Desired")
            .field("secure", &self.secure)
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

/// The variable an endpoint is published as: the names the images read for
/// `ep_deployment.endpoints`' database endpoints, else `EP_<NAME>` (a name
/// already starting with `EP_` keeps it once).
pub fn variable(name: &str) -> String {
    let upper = name.to_ascii_uppercase();
    match upper.as_str() {
        "DATABASE_ADDRESS" | "DB_ADDRESS" | "DB_HOST" | "DB_HOSTNAME" => "EP_DB_HOSTNAME".into(),
        "DATABASE_PORT" | "DB_PORT" => "EP_DB_PORT".into(),
        "DATABASE_URL" | "DB_URL" => "EP_DB_URL".into(),
        _ if upper.starts_with("EP_") => upper,
        _ => format!("EP_{upper}"),
    }
}

/// The key an endpoint is published under: `<stack>/<variable>`.
pub fn endpoint_key(stack: &str, name: &str) -> String {
    format!("{stack}/{}", variable(name))
}

/// A key refused, with where it came from.
#[derive(Debug)]
pub struct LayoutError {
    /// The attribute.
    pub path: AttrPath,
    /// What is wrong.
    pub message: String,
}

/// Every key to publish (relative to the prefix), or what is wrong.
pub fn desired(
    values: Option<&BTreeMap<String, String>>,
    sensitive: Option<&BTreeMap<String, String>>,
    endpoints: Option<&super::model::Endpoints>,
) -> Result<BTreeMap<String, Desired>, Vec<LayoutError>> {
    let mut out: BTreeMap<String, Desired> = BTreeMap::new();
    let mut errors = Vec::new();
    let mut add = |key: String, value: &String, secure: bool, source: Source| {
        let path = source.path(&key);
        if let Err(e) = keys::check_key(&key) {
            errors.push(LayoutError {
                path,
                message: format!("key {key:?} {e}"),
            });
            return;
        }
        if let Some(other) = out.get(&key) {
            errors.push(LayoutError {
                path,
                message: format!(
                    "key {key:?} is also published from {}",
                    other.source.path(&key)
                ),
            });
            return;
        }
        out.insert(
            key,
            Desired {
                value: value.clone(),
                secure,
                source,
            },
        );
    };
    for (k, v) in values.into_iter().flatten() {
        add(k.clone(), v, false, Source::Values);
    }
    for (k, v) in sensitive.into_iter().flatten() {
        add(k.clone(), v, true, Source::Sensitive);
    }
    let mut name_errors = Vec::new();
    for (stack, names) in endpoints.into_iter().flatten() {
        for (name, v) in names {
            // An endpoint the stack does not have (no broker): nothing to publish.
            let Some(v) = v else {
                continue;
            };
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                name_errors.push(LayoutError {
                    path: AttrPath::root("endpoints").key(stack).key(name),
                    message: format!(
                        "endpoint name {name:?} must be letters, digits and `_` (it becomes \
                         an environment variable name)"
                    ),
                });
                continue;
            }
            let source = Source::Endpoint {
                stack: stack.clone(),
                name: name.clone(),
            };
            add(endpoint_key(stack, name), v, false, source);
        }
    }
    errors.extend(name_errors);
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

/// Value checks of one store, for [`check_values`].
pub type ValueCheck<'a> = &'a dyn Fn(&str) -> Result<(), KeyError>;

/// Values the store would refuse, as errors at their attribute.
pub fn check_values(
    desired: &BTreeMap<String, Desired>,
    check: ValueCheck<'_>,
) -> Vec<LayoutError> {
    desired
        .iter()
        .filter_map(|(k, d)| {
            check(&d.value).err().map(|e| LayoutError {
                path: d.source.path(k),
                message: format!("value of {k:?}: {e}"),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn endpoints_become_ep_variables_per_stack() {
        let mut eps = BTreeMap::new();
        let mut author: BTreeMap<String, Option<String>> = map(&[
            ("database_address", "db.internal"),
            ("database_port", "3306"),
            ("database_url", "jdbc:x"),
            ("EP_JMS_URL", "tcp://b:61616"),
            ("console_url", "https://b:8162"),
        ])
        .into_iter()
        .map(|(k, v)| (k, Some(v)))
        .collect();
        author.insert("stomp_url".into(), None);
        eps.insert("author".to_owned(), author);
        let d = desired(None, None, Some(&eps)).unwrap_or_default();
        let keys: Vec<&str> = d.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            vec![
                "author/EP_CONSOLE_URL",
                "author/EP_DB_HOSTNAME",
                "author/EP_DB_PORT",
                "author/EP_DB_URL",
                "author/EP_JMS_URL"
            ]
        );
    }

    #[test]
    fn a_key_published_twice_is_refused_at_both_paths() {
        let v = map(&[("db/host", "a")]);
        let s = map(&[("db/host", "b")]);
        let errs = desired(Some(&v), Some(&s), None).err().unwrap_or_default();
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].path.to_string(), "sensitive_values[\"db/host\"]");
    }

    #[test]
    fn bad_keys_are_refused_at_their_path() {
        let v = map(&[("/abs", "a"), ("ok", "b"), ("x/../y", "c")]);
        let errs = desired(Some(&v), None, None).err().unwrap_or_default();
        assert_eq!(errs.len(), 2);
        assert!(errs[0].message.contains("/abs"), "{:?}", errs[0]);
    }

    #[test]
    fn secure_values_are_not_in_debug_output() {
        let s = map(&[("pw", "hunter2-secret")]);
        let d = desired(None, Some(&s), None).unwrap_or_default();
        assert!(!format!("{d:?}").contains("hunter2"));
        assert!(d["pw"].secure);
    }
}
