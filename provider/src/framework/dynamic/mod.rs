//! cty types and values, and their msgpack and JSON encodings.
//!
//! Terraform exchanges every configuration, plan and state value as a
//! `DynamicValue` holding the bytes of HashiCorp's cty library (go-cty's
//! `cty/msgpack` and `cty/json` packages). Both encodings are type-directed:
//! the bytes alone do not say whether an array is a list, a set or a tuple,
//! so every function here takes the [`Type`] that the schema gives.
//!
//! - [`Type`] is a cty type, with its JSON form ([`Type::to_json`],
//!   [`Type::from_json`]) used in schemas and inside dynamic values.
//! - [`Number`] is an exact decimal, as cty numbers are arbitrary precision.
//! - [`Value`] is a cty value without its type: null, unknown (with optional
//!   [`Refinements`]) or known data.
//! - [`to_msgpack`], [`from_msgpack`], [`to_json`] and [`from_json`] convert.

mod json;
mod msgpack;
mod number;
mod types;
mod value;

#[cfg(test)]
mod proptests;

use std::fmt;

pub use json::{from_json, from_stored_json, to_json};
pub use msgpack::{from_msgpack, to_msgpack};
pub use number::Number;
pub use types::Type;
pub use value::{Refinements, Value};

/// How deeply values and types may nest. Input past this is refused rather
/// than risking the stack; real Terraform schemas nest a few dozen levels.
const MAX_DEPTH: usize = 128;

/// One step of a [`Path`] into a value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PathStep {
    /// An object attribute, shown as `.name`.
    Attr(String),
    /// A list, set or tuple position, shown as `[2]`.
    Index(usize),
    /// A map key, shown as `["key"]`.
    Key(String),
}

/// Where in a value something went wrong, e.g. `.a[2]["k"]`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Path(pub Vec<PathStep>);

impl Path {
    /// The steps from the root, outermost first.
    pub fn steps(&self) -> &[PathStep] {
        &self.0
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("<root>");
        }
        for step in &self.0 {
            match step {
                PathStep::Attr(name) => write!(f, ".{name}")?,
                PathStep::Index(i) => write!(f, "[{i}]")?,
                PathStep::Key(key) => write!(f, "[{key:?}]")?,
            }
        }
        Ok(())
    }
}

/// A failure to encode or decode a value or type.
#[derive(thiserror::Error, Debug)]
pub enum ValueError {
    /// The input (or the value being encoded) has the wrong kind for the type.
    #[error("at {path}: expected {expected}, found {found}")]
    Mismatch {
        /// Where the mismatch is.
        path: Path,
        /// What the type called for.
        expected: String,
        /// What was there instead.
        found: String,
    },
    /// Structurally wrong input or value, described by `message`.
    #[error("at {path}: {message}")]
    Invalid {
        /// Where the problem is.
        path: Path,
        /// What is wrong.
        message: String,
    },
    /// The input ended in the middle of a value.
    #[error("at {path}: input ends early, at byte {offset}")]
    Truncated {
        /// The value being read.
        path: Path,
        /// The input length.
        offset: usize,
    },
    /// A whole value was read but input remains.
    #[error("{count} unexpected trailing bytes after the value, from byte {offset}")]
    TrailingBytes {
        /// Where the extra input starts.
        offset: usize,
        /// How many bytes are left over.
        count: usize,
    },
    /// JSON has no way to say "unknown".
    #[error("at {path}: value is unknown, which JSON cannot represent")]
    UnknownInJson {
        /// The unknown value's place.
        path: Path,
    },
    /// Text that is not a number cty accepts.
    #[error("invalid number {text:?}: {reason}")]
    InvalidNumber {
        /// The text (cut short if long).
        text: String,
        /// Why it was refused.
        reason: String,
    },
    /// A cty type description that could not be read.
    #[error("invalid type description: {0}")]
    InvalidType(String),
}

impl ValueError {
    /// Where the error is, for errors that concern one place in a value.
    pub fn path(&self) -> Option<&Path> {
        match self {
            ValueError::Mismatch { path, .. }
            | ValueError::Invalid { path, .. }
            | ValueError::Truncated { path, .. }
            | ValueError::UnknownInJson { path } => Some(path),
            _ => None,
        }
    }

    /// Prefixes `step` to the error's path; the error travels outwards as
    /// the recursion unwinds, so paths cost nothing unless something fails.
    fn within(mut self, step: PathStep) -> ValueError {
        match &mut self {
            ValueError::Mismatch { path, .. }
            | ValueError::Invalid { path, .. }
            | ValueError::Truncated { path, .. }
            | ValueError::UnknownInJson { path } => path.0.insert(0, step),
            _ => {}
        }
        self
    }

    fn invalid(message: impl Into<String>) -> ValueError {
        ValueError::Invalid {
            path: Path::default(),
            message: message.into(),
        }
    }

    fn mismatch(expected: impl fmt::Display, found: impl Into<String>) -> ValueError {
        ValueError::Mismatch {
            path: Path::default(),
            expected: expected.to_string(),
            found: found.into(),
        }
    }

    /// Places a number or type error at the value being decoded.
    fn located(self) -> ValueError {
        match self {
            ValueError::InvalidNumber { .. } | ValueError::InvalidType(_) => {
                ValueError::invalid(self.to_string())
            }
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_render_like_cty() {
        let err = ValueError::mismatch("string", "number")
            .within(PathStep::Key("k".into()))
            .within(PathStep::Index(2))
            .within(PathStep::Attr("a".into()));
        assert_eq!(
            err.to_string(),
            "at .a[2][\"k\"]: expected string, found number"
        );
        assert_eq!(err.path().map(|p| p.steps().len()), Some(3));
        assert_eq!(ValueError::invalid("bad").to_string(), "at <root>: bad");
    }
}
