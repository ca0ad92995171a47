//! go-plugin process plumbing.
