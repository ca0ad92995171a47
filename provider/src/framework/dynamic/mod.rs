//! cty types and values, and their msgpack and JSON encodings.
