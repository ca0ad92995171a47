//! [`Known`]: a plan-time value that may not be known until apply.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{Deserialize, Deserializer, Visitor};
use serde::ser::{Serialize, Serializer};

/// The serde name by which the value (de)serializers recognise a [`Known`].
pub(super) const KNOWN_TOKEN: &str = "$ep::Known";
/// The serde name by which the value serializer writes an unknown.
pub(super) const UNKNOWN_TOKEN: &str = "$ep::Unknown";

/// A value at plan time: wholly known, or not (yet).
///
/// A value with an unknown anywhere inside (a list with one unknown element)
/// counts as unknown as a whole: plans only act on what is certain.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Known<T> {
    /// Known after apply.
    #[default]
    Unknown,
    /// Known now.
    Known(T),
}

impl<T> Known<T> {
    /// The value, if known.
    pub fn get(&self) -> Option<&T> {
        match self {
            Known::Known(v) => Some(v),
            Known::Unknown => None,
        }
    }

    /// The value, if known, by value.
    pub fn into_option(self) -> Option<T> {
        match self {
            Known::Known(v) => Some(v),
            Known::Unknown => None,
        }
    }

    /// Whether the value is known.
    pub fn is_known(&self) -> bool {
        matches!(self, Known::Known(_))
    }

    /// Whether this is known and equal to `other`.
    pub fn is(&self, other: &T) -> bool
    where
        T: PartialEq,
    {
        self.get() == Some(other)
    }
}

impl<T> Known<Option<T>> {
    /// The value if known and not null.
    pub fn present(&self) -> Option<&T> {
        self.get().and_then(Option::as_ref)
    }

    /// Whether the value is known to be null.
    pub fn is_null(&self) -> bool {
        matches!(self, Known::Known(None))
    }
}

impl<T> From<T> for Known<T> {
    fn from(v: T) -> Self {
        Known::Known(v)
    }
}

impl<T: Serialize> Serialize for Known<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Known::Known(v) => v.serialize(s),
            Known::Unknown => s.serialize_unit_struct(UNKNOWN_TOKEN),
        }
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Known<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KnownVisitor<T>(PhantomData<T>);

        impl<'de, T: Deserialize<'de>> Visitor<'de> for KnownVisitor<T> {
            type Value = Known<T>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a value or an unknown")
            }

            fn visit_unit<E>(self) -> Result<Known<T>, E> {
                Ok(Known::Unknown)
            }

            fn visit_newtype_struct<D: Deserializer<'de>>(
                self,
                d: D,
            ) -> Result<Known<T>, D::Error> {
                T::deserialize(d).map(Known::Known)
            }
        }

        d.deserialize_newtype_struct(KNOWN_TOKEN, KnownVisitor(PhantomData))
    }
}
