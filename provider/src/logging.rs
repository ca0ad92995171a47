//! JSON-line logging in the format Terraform reads from plugin stderr.
