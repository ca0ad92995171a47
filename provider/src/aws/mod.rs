//! AWS SDK configuration from the provider block.
