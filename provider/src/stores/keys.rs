//! What keys, prefixes and values each config store accepts, checked before
//! any call so a bad input is a plan-time error on its attribute.

/// Consul's default `kv_max_value_size` (512 KiB).
pub const CONSUL_MAX_VALUE_BYTES: usize = 512 * 1024;
/// SSM's limit on a Standard-tier value.
pub const SSM_STANDARD_MAX_VALUE_CHARS: usize = 4096;
/// SSM's limit on an Advanced-tier value.
pub const SSM_ADVANCED_MAX_VALUE_CHARS: usize = 8192;
/// SSM's limit on a whole parameter name.
pub const SSM_MAX_NAME_CHARS: usize = 1011;
/// SSM's limit on hierarchy levels.
pub const SSM_MAX_LEVELS: usize = 15;

/// Why a key, prefix or value is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// An empty key.
    #[error("must not be empty")]
    Empty,
    /// A character outside `[A-Za-z0-9_./-]`.
    #[error("{0:?} is not allowed: only letters, digits and `_ . / -`")]
    BadChar(char),
    /// A leading `/` (Consul keys are relative).
    #[error("must not start with `/`")]
    LeadingSlash,
    /// A `..` path segment.
    #[error("must not contain a `..` segment")]
    DotDot,
    /// An empty path segment (`a//b`).
    #[error("must not contain an empty segment (`//`)")]
    EmptySegment,
    /// A prefix that does not end in `/`.
    #[error("must end with `/` (a prefix `foo` would also match `food`)")]
    NoTrailingSlash,
    /// A key ending in `/` (that is a folder, not a key).
    #[error("must not end with `/`")]
    TrailingSlash,
    /// SSM reserves names starting with `aws` or `ssm`.
    #[error("SSM parameter names must not start with `aws` or `ssm` (any case): {0:?}")]
    Reserved(String),
    /// Too long for the store.
    #[error("{name:?} is {len} characters long; SSM allows at most {max}")]
    NameTooLong {
        /// The full name.
        name: String,
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Too deep for SSM.
    #[error("{name:?} has {levels} levels; SSM allows at most {max}")]
    TooDeep {
        /// The full name.
        name: String,
        /// Its hierarchy levels.
        levels: usize,
        /// The limit.
        max: usize,
    },
    /// A value too large for the store.
    #[error("the value is {len} {unit} long; {store} allows at most {max}")]
    ValueTooLarge {
        /// The value's length.
        len: usize,
        /// `bytes` or `characters`.
        unit: &'static str,
        /// The store and tier.
        store: &'static str,
        /// The limit.
        max: usize,
    },
}

fn check_chars(s: &str) -> Result<(), KeyError> {
    match s
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '/' | '-')))
    {
        Some(c) => Err(KeyError::BadChar(c)),
        None => Ok(()),
    }
}

fn check_segments(s: &str) -> Result<(), KeyError> {
    let trimmed = s.strip_suffix('/').unwrap_or(s);
    for seg in trimmed.split('/') {
        if seg == ".." {
            return Err(KeyError::DotDot);
        }
        if seg.is_empty() {
            return Err(KeyError::EmptySegment);
        }
    }
    Ok(())
}

/// A publication prefix: relative, store-safe characters, ending in `/`.
pub fn check_prefix(prefix: &str) -> Result<(), KeyError> {
    if prefix.is_empty() {
        return Err(KeyError::Empty);
    }
    check_chars(prefix)?;
    if prefix.starts_with('/') {
        return Err(KeyError::LeadingSlash);
    }
    if !prefix.ends_with('/') {
        return Err(KeyError::NoTrailingSlash);
    }
    check_segments(prefix)
}

/// A key relative to the prefix.
pub fn check_key(key: &str) -> Result<(), KeyError> {
    if key.is_empty() {
        return Err(KeyError::Empty);
    }
    check_chars(key)?;
    if key.starts_with('/') {
        return Err(KeyError::LeadingSlash);
    }
    if key.ends_with('/') {
        return Err(KeyError::TrailingSlash);
    }
    check_segments(key)
}

/// SSM's `path_prefix`: absolute, ending in `/` (`/` alone is the root).
pub fn check_ssm_path_prefix(p: &str) -> Result<(), KeyError> {
    if p.is_empty() {
        return Err(KeyError::Empty);
    }
    check_chars(p)?;
    if !p.ends_with('/') {
        return Err(KeyError::NoTrailingSlash);
    }
    if p == "/" {
        return Ok(());
    }
    match p.strip_prefix('/') {
        Some(rest) => check_segments(rest),
        // A relative SSM path prefix would make names that are not hierarchical.
        None => Err(KeyError::EmptySegment),
    }
}

/// A whole SSM parameter name (`/path/prefix/key`).
pub fn check_ssm_name(name: &str) -> Result<(), KeyError> {
    let first = name.trim_start_matches('/').to_ascii_lowercase();
    if first.starts_with("aws") || first.starts_with("ssm") {
        return Err(KeyError::Reserved(name.to_owned()));
    }
    let len = name.chars().count();
    if len > SSM_MAX_NAME_CHARS {
        return Err(KeyError::NameTooLong {
            name: name.to_owned(),
            len,
            max: SSM_MAX_NAME_CHARS,
        });
    }
    let levels = name.trim_start_matches('/').split('/').count();
    if levels > SSM_MAX_LEVELS {
        return Err(KeyError::TooDeep {
            name: name.to_owned(),
            levels,
            max: SSM_MAX_LEVELS,
        });
    }
    Ok(())
}

/// A value for Consul (bytes against `kv_max_value_size`).
pub fn check_consul_value(v: &str) -> Result<(), KeyError> {
    if v.len() > CONSUL_MAX_VALUE_BYTES {
        return Err(KeyError::ValueTooLarge {
            len: v.len(),
            unit: "bytes",
            store: "Consul (kv_max_value_size)",
            max: CONSUL_MAX_VALUE_BYTES,
        });
    }
    Ok(())
}

/// A value for SSM in `tier` (`Standard` unless `Advanced`/`Intelligent-Tiering`).
pub fn check_ssm_value(v: &str, tier: Option<&str>) -> Result<(), KeyError> {
    let (max, store) = match tier {
        Some("Advanced") | Some("Intelligent-Tiering") => {
            (SSM_ADVANCED_MAX_VALUE_CHARS, "SSM's Advanced tier")
        }
        _ => (SSM_STANDARD_MAX_VALUE_CHARS, "SSM's Standard tier"),
    };
    let len = v.chars().count();
    if len > max {
        return Err(KeyError::ValueTooLarge {
            len,
            unit: "characters",
            store,
            max,
        });
    }
    if v.is_empty() {
        // SSM refuses empty values (minimum length 1).
        return Err(KeyError::ValueTooLarge {
            len: 0,
            unit: "characters (SSM needs at least 1)",
            store,
            max,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes() {
        assert_eq!(check_prefix("ep/author/"), Ok(()));
        assert_eq!(check_prefix("ep/author"), Err(KeyError::NoTrailingSlash));
        assert_eq!(check_prefix("/ep/"), Err(KeyError::LeadingSlash));
        assert_eq!(check_prefix("ep/../x/"), Err(KeyError::DotDot));
        assert_eq!(check_prefix("ep//x/"), Err(KeyError::EmptySegment));
        assert_eq!(check_prefix("ep x/"), Err(KeyError::BadChar(' ')));
        assert_eq!(check_prefix(""), Err(KeyError::Empty));
    }

    #[test]
    fn keys() {
        assert_eq!(check_key("db/host"), Ok(()));
        assert_eq!(check_key("EP_DB_URL"), Ok(()));
        assert_eq!(check_key("db/"), Err(KeyError::TrailingSlash));
        assert_eq!(check_key(".."), Err(KeyError::DotDot));
        assert_eq!(check_key("a/../b"), Err(KeyError::DotDot));
        assert_eq!(check_key("a..b"), Ok(()));
        assert_eq!(check_key("db:host"), Err(KeyError::BadChar(':')));
        assert_eq!(check_key("é"), Err(KeyError::BadChar('é')));
    }

    #[test]
    fn ssm_names() {
        assert_eq!(check_ssm_name("/ep/author/EP_DB_URL"), Ok(()));
        assert!(matches!(
            check_ssm_name("/AWS/x"),
            Err(KeyError::Reserved(_))
        ));
        assert!(matches!(
            check_ssm_name("/ssmx/x"),
            Err(KeyError::Reserved(_))
        ));
        let deep = format!("/{}", vec!["a"; 16].join("/"));
        assert!(matches!(
            check_ssm_name(&deep),
            Err(KeyError::TooDeep { levels: 16, .. })
        ));
        let fifteen = format!("/{}", vec!["a"; 15].join("/"));
        assert_eq!(check_ssm_name(&fifteen), Ok(()));
        let long = format!("/{}", "a".repeat(1011));
        assert!(matches!(
            check_ssm_name(&long),
            Err(KeyError::NameTooLong { len: 1012, .. })
        ));
        assert_eq!(check_ssm_path_prefix("/"), Ok(()));
        assert_eq!(check_ssm_path_prefix("/ep/"), Ok(()));
        assert_eq!(check_ssm_path_prefix("/ep"), Err(KeyError::NoTrailingSlash));
    }

    #[test]
    fn values() {
        assert_eq!(check_ssm_value(&"x".repeat(4096), None), Ok(()));
        assert!(check_ssm_value(&"x".repeat(4097), None).is_err());
        assert_eq!(check_ssm_value(&"x".repeat(4097), Some("Advanced")), Ok(()));
        assert!(check_ssm_value("", None).is_err());
        assert_eq!(check_consul_value(&"x".repeat(512 * 1024)), Ok(()));
        assert!(check_consul_value(&"x".repeat(512 * 1024 + 1)).is_err());
    }
}
