//! Typed models: configuration, state and private data as Rust structs.
//!
//! A resource declares one struct generic over a [`Phase`]. At plan time
//! ([`Planning`]) every field is a [`Known`]: the value, or "known after
//! apply". At apply, read and import ([`Applying`]) the same fields are the
//! plain values. Both views decode from and encode to [`Value`] through
//! serde, strictly: an attribute without a field, a field without an
//! attribute or a value of the wrong kind is an error naming its path, and
//! [`check_model`] proves a struct and its schema agree before anything runs.
//!
//! ```ignore
//! #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
//! #[serde(bound = "")]
//! struct Thing<P: Phase = Applying> {
//!     name: P::Of<String>,
//!     size: P::Of<Option<u32>>,
//! }
//! ```

mod check;
mod de;
mod known;
mod number;
mod ser;

use std::fmt;

use serde::de::DeserializeOwned;
use serde::Serialize;

pub use check::check_model;
pub use known::Known;

use super::dynamic::{Type, Value};
use super::path::{AttrPath, PathStep};
use super::{Diagnostic, Diagnostics};

/// What a model field may hold: anything serde can carry that is cheap to
/// clone, compare and share between tasks.
pub trait Field:
    Serialize + DeserializeOwned + Clone + fmt::Debug + PartialEq + Send + Sync + 'static
{
}

impl<T> Field for T where
    T: Serialize + DeserializeOwned + Clone + fmt::Debug + PartialEq + Send + Sync + 'static
{
}

/// When a model is looked at: decides whether its fields may be unknown.
pub trait Phase: Clone + fmt::Debug + Default + PartialEq + Send + Sync + 'static {
    /// The type a field of type `T` has in this phase.
    type Of<T: Field>: Field;

    /// The field's value, when known.
    fn known<T: Field>(field: &Self::Of<T>) -> Option<&T>;

    /// A field holding a known value.
    fn wrap<T: Field>(value: T) -> Self::Of<T>;
}

/// Plan time: any value may be unknown, so every field is a [`Known`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Planning;

impl Phase for Planning {
    type Of<T: Field> = Known<T>;

    fn known<T: Field>(field: &Known<T>) -> Option<&T> {
        field.get()
    }

    fn wrap<T: Field>(value: T) -> Known<T> {
        Known::Known(value)
    }
}

/// Apply, read and import: every value is known.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Applying;

impl Phase for Applying {
    type Of<T: Field> = T;

    fn known<T: Field>(field: &T) -> Option<&T> {
        Some(field)
    }

    fn wrap<T: Field>(value: T) -> T {
        value
    }
}

/// A value that did not fit the model, and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelError {
    /// Steps from the root, innermost last.
    path: Vec<PathStep>,
    /// What is wrong.
    message: String,
    /// Whether the struct and the value disagree in shape (a missing or
    /// surplus attribute, a wrong kind) rather than in content.
    structural: bool,
}

impl ModelError {
    fn new(message: impl Into<String>, structural: bool) -> Self {
        ModelError {
            path: Vec::new(),
            message: message.into(),
            structural,
        }
    }

    /// The same error one level further out.
    fn within(mut self, step: PathStep) -> Self {
        self.path.insert(0, step);
        self
    }

    /// Where the error is, as Terraform shows paths.
    pub fn path(&self) -> AttrPath {
        AttrPath::from_steps(self.path.clone())
    }

    /// What is wrong.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Whether the struct and the schema disagree in shape.
    pub fn is_structural(&self) -> bool {
        self.structural
    }

    /// A diagnostic on the attribute, for configuration values that no
    /// validator caught (a uid over 2^32, say).
    pub fn to_diagnostic(&self) -> Diagnostic {
        let d = Diagnostic::error("Invalid value", format!("{}.", self.message));
        if self.path.is_empty() {
            d
        } else {
            d.at(self.path())
        }
    }
}

impl fmt::Display for ModelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{}: {}", self.path(), self.message)
        }
    }
}

impl std::error::Error for ModelError {}

impl serde::de::Error for ModelError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        ModelError::new(msg.to_string(), false)
    }

    fn unknown_field(field: &str, _expected: &'static [&'static str]) -> Self {
        ModelError::new(format!("attribute {field:?} has no field"), true)
    }

    fn missing_field(field: &'static str) -> Self {
        ModelError::new(format!("field {field:?} has no attribute"), true)
    }
}

impl serde::ser::Error for ModelError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        ModelError::new(msg.to_string(), false)
    }
}

/// Decodes a value into a model. Unknown values are refused except where a
/// [`Known`] stands; the value should be fitted to its type first (see
/// [`Value::fit`]) so that absent attributes read as null.
pub fn from_value<T: DeserializeOwned>(v: &Value) -> Result<T, ModelError> {
    T::deserialize(de::ValueDeserializer::new(v))
}

/// Encodes a model as a value of type `ty`.
pub fn to_value<T: Serialize>(model: &T, ty: &Type) -> Result<Value, ModelError> {
    Ok(model.serialize(ser::ValueSerializer)?.fit(ty))
}

/// A decoding failure as a diagnostic. Errors in configuration values point
/// at the attribute; a model that does not fit its schema is a provider bug.
pub fn decode_diagnostics(what: &str, e: &ModelError) -> Diagnostics {
    if e.is_structural() {
        Diagnostic::error(
            format!("Provider could not read the {what}"),
            format!("{e}. This is a bug in the provider."),
        )
        .into()
    } else {
        e.to_diagnostic().into()
    }
}
