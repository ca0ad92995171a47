//! What a binary says for `--version`. `scripts/release` sets
//! `EP_BUILD_VERSION` and `EP_BUILD_COMMIT` at compile time; a plain
//! `cargo build` reports the crate version and an unknown commit.

/// The release version (the crate version outside a release build).
pub const VERSION: &str = match option_env!("EP_BUILD_VERSION") {
    Some(v) => v,
    None => env!("CARGO_PKG_VERSION"),
};

/// The commit the release was built from, or `unknown`.
pub const COMMIT: &str = match option_env!("EP_BUILD_COMMIT") {
    Some(c) => c,
    None => "unknown",
};

/// `<version> (commit <commit>)`, as every binary of the project prints it.
pub fn version_line() -> &'static str {
    static LINE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    LINE.get_or_init(|| format!("{VERSION} (commit {COMMIT})"))
}
