//! Config stores the provider publishes into: Consul's KV store (through
//! `/v1/txn`) and SSM Parameter Store. Both are seen through one small
//! interface: list what is under a prefix (with a version per key), then
//! apply writes that say what they expect to find, and removals of a known
//! version. Values never reach logs or error messages.

pub mod consul;
mod consul_txn;
pub mod keys;
pub mod ssm;

use std::collections::BTreeMap;

use crate::aws::ApiError;

/// One key as the store holds it.
#[derive(Clone, PartialEq, Eq)]
pub struct Entry {
    /// The value.
    pub value: String,
    /// Consul's `ModifyIndex`, or the SSM parameter's version.
    pub version: u64,
    /// Stored encrypted (an SSM `SecureString`).
    pub secure: bool,
}

impl std::fmt::Debug for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The value may be a credential.
        f.debug_struct("Entry")
            .field("version", &self.version)
            .field("secure", &self.secure)
            .finish_non_exhaustive()
    }
}

/// What a write expects to find, so a concurrent writer is detected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    /// The key must not exist.
    Absent,
    /// The key must still be at this version.
    Version(u64),
}

/// One write.
#[derive(Clone)]
pub struct Write {
    /// Full store key.
    pub key: String,
    /// The value.
    pub value: String,
    /// Store encrypted (SSM `SecureString`).
    pub secure: bool,
    /// What must be there now.
    pub expect: Expect,
}

impl std::fmt::Debug for Write {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Write")
            .field("key", &self.key)
            .field("secure", &self.secure)
            .field("expect", &self.expect)
            .finish_non_exhaustive()
    }
}

/// One removal of a key at a known version.
#[derive(Clone, Debug)]
pub struct Remove {
    /// Full store key.
    pub key: String,
    /// The version read; a newer one means someone else wrote it.
    pub version: u64,
}

/// What was committed so far, kept even when a later batch fails, so the
/// state can say what was written.
#[derive(Clone, Debug, Default)]
pub struct Committed {
    /// Keys written.
    pub written: Vec<String>,
    /// Keys removed.
    pub removed: Vec<String>,
}

/// Why a store call failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Someone else changed the key between our read and our write.
    #[error(
        "{key:?} was changed by another writer since it was read ({detail}); nothing was \
         overwritten. Run terraform apply again to see the current value."
    )]
    Conflict {
        /// The key.
        key: String,
        /// What the store said.
        detail: String,
    },
    /// The request was too large for the store.
    #[error("{what} is too large for the store: {detail}")]
    TooLarge {
        /// The key, or a description of the batch.
        what: String,
        /// What the store said.
        detail: String,
    },
    /// The ACL token (or AWS credentials) do not allow this.
    #[error("permission denied by {store} ({detail}); check the token and its policy")]
    Denied {
        /// The store.
        store: String,
        /// What the store said.
        detail: String,
    },
    /// The store could not be reached or stopped answering.
    #[error("cannot reach {store}: {detail}")]
    Unreachable {
        /// The store's address.
        store: String,
        /// The transport error.
        detail: String,
    },
    /// Any other answer.
    #[error("{store} answered {status} to {request}: {body}")]
    Http {
        /// The store's address.
        store: String,
        /// `METHOD path` (no query: no token can leak).
        request: String,
        /// HTTP status.
        status: u16,
        /// Body, shortened.
        body: String,
    },
    /// An answer that does not parse.
    #[error("unexpected answer from {store} to {request}: {detail}")]
    BadAnswer {
        /// The store's address.
        store: String,
        /// `METHOD path`.
        request: String,
        /// What was wrong.
        detail: String,
    },
    /// A local setting is wrong (CA file, address).
    #[error("{0}")]
    Setup(String),
    /// An AWS call failed.
    #[error("{0}")]
    Aws(ApiError),
}

impl From<ApiError> for StoreError {
    fn from(e: ApiError) -> Self {
        StoreError::Aws(e)
    }
}

/// A store connection.
pub enum Store {
    /// Consul KV.
    Consul(consul::ConsulClient),
    /// SSM Parameter Store.
    Ssm(ssm::SsmStore),
}

impl Store {
    /// Every key under `prefix` (a full store prefix ending in `/`).
    pub async fn list(&self, prefix: &str) -> Result<BTreeMap<String, Entry>, StoreError> {
        match self {
            Store::Consul(c) => c.list(prefix).await,
            Store::Ssm(s) => s.list(prefix).await,
        }
    }

    /// Applies writes and removals; `committed` records what took effect,
    /// also when a later part fails or the future is dropped.
    pub async fn apply(
        &self,
        writes: &[Write],
        removes: &[Remove],
        committed: &std::sync::Mutex<Committed>,
    ) -> Result<(), StoreError> {
        match self {
            Store::Consul(c) => c.apply(writes, removes, committed).await,
            Store::Ssm(s) => s.apply(writes, removes, committed).await,
        }
    }

    /// A short name for messages (`Consul at http://…`, `SSM`).
    pub fn describe(&self) -> String {
        match self {
            Store::Consul(c) => format!("Consul at {}", c.base_url()),
            Store::Ssm(_) => "SSM Parameter Store".to_owned(),
        }
    }
}

/// Records committed keys, surviving a poisoned lock (a panicking peer must
/// not lose what was written).
pub(crate) fn record(committed: &std::sync::Mutex<Committed>, f: impl FnOnce(&mut Committed)) {
    let mut g = committed
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    f(&mut g);
}
