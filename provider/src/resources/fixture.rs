//! `ep_test_fixture`: the smallest whole resource on the typed layer, served
//! only when `EP_PROVIDER_TEST_FIXTURES=1`. Its object is a file that turns
//! `creating` → `configuring` → `available` over `settle`, so acceptance
//! tests can drive waits, timeouts, Ctrl-C, partial state and import with
//! real Terraform and no cloud.

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::framework::timeouts::parse_duration;
use crate::framework::{
    Applying, AttrPath, Attribute, Block, Diagnostic, Diagnostics, NotFound, Observed, Op,
    Operation, Phase, Planning, Schema, TimeoutDefaults, Type, TypedResource, Waiter,
};

/// The environment variable that makes the provider serve the fixture.
pub const ENABLE_ENV: &str = "EP_PROVIDER_TEST_FIXTURES";

/// The `ep_test_fixture` resource.
pub struct Fixture;

/// Configuration and state of `ep_test_fixture`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(bound = "")]
pub struct FixtureModel<P: Phase = Applying> {
    store: P::Of<String>,
    name: P::Of<String>,
    settle: P::Of<Option<String>>,
    secret_wo: P::Of<Option<String>>,
    id: P::Of<Option<String>>,
    status: P::Of<Option<String>>,
}

/// What the object's file holds.
#[derive(Serialize, Deserialize)]
struct Stored {
    since_ms: u64,
    settle_ms: u64,
    /// SHA-256 of the write-only secret create or update was given.
    #[serde(default)]
    secret_sha256: Option<String>,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn io_error(what: &str, path: &std::path::Path, e: std::io::Error) -> Diagnostics {
    Diagnostic::error(
        format!("Cannot {what} the fixture"),
        format!("{}: {e}", path.display()),
    )
    .into()
}

impl FixtureModel {
    fn path(&self) -> PathBuf {
        PathBuf::from(&self.store).join(&self.name)
    }

    /// The object's status now, as an AWS describe call would report it.
    async fn observe(&self) -> Result<Observed<String>, Diagnostics> {
        let path = self.path();
        let text = match tokio::fs::read(&path).await {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Observed::NotFound),
            Err(e) => return Err(io_error("read", &path, e)),
        };
        let s: Stored =
            serde_json::from_slice(&text).map_err(|e| io_error("parse", &path, e.into()))?;
        let age = now_ms().saturating_sub(s.since_ms);
        let status = match age {
            a if a >= s.settle_ms => "available",
            a if a * 2 >= s.settle_ms => "configuring",
            _ => "creating",
        };
        Ok(Observed::Status(status.to_owned(), status.to_owned()))
    }

    /// (Re)starts the object's settling and waits until it is available.
    async fn settle(mut self, op: &Op<()>) -> Result<Self, Diagnostics> {
        let settle = parse_duration(self.settle.as_deref().unwrap_or("0s")).unwrap_or_default();
        let stored = Stored {
            since_ms: now_ms(),
            settle_ms: u64::try_from(settle.as_millis()).unwrap_or(u64::MAX),
            secret_sha256: self.secret_wo.as_deref().map(|s| {
                use sha2::Digest as _;
                hex::encode(sha2::Sha256::digest(s.as_bytes()))
            }),
        };
        let path = self.path();
        let bytes = serde_json::to_vec(&stored).unwrap_or_default();
        tokio::fs::write(&path, bytes)
            .await
            .map_err(|e| io_error("write", &path, e))?;
        self.id = Some(path.display().to_string());
        self.status = Some("creating".to_owned());
        op.checkpoint(&self)?;
        let waiter = Waiter::new(format!("fixture {}", self.name), &["available"])
            .pending(&["creating", "configuring"])
            .interval(Duration::from_millis(200), Duration::from_secs(1));
        self.status = waiter.wait(op, || self.observe()).await?;
        Ok(self)
    }
}

#[async_trait]
impl TypedResource for Fixture {
    type Model<P: Phase> = FixtureModel<P>;
    type Private = ();

    fn type_name(&self) -> &'static str {
        "ep_test_fixture"
    }

    fn schema(&self) -> Schema {
        Schema::new(
            Block::new("Test-only: a file that settles into `available` over `settle`.")
                .attr(Attribute::required("store", Type::String).force_new())
                .attr(Attribute::required("name", Type::String).force_new())
                .attr(Attribute::optional("settle", Type::String))
                .attr(
                    Attribute::optional("secret_wo", Type::String)
                        .sensitive()
                        .write_only()
                        .describe("A write-only secret; its SHA-256 is written to the object."),
                )
                .attr(Attribute::computed("id", Type::String).keep_unless_changed(&[]))
                .attr(Attribute::computed("status", Type::String)),
        )
    }

    fn timeouts(&self) -> TimeoutDefaults {
        TimeoutDefaults::none()
            .with(Operation::Create, Duration::from_secs(600))
            .with(Operation::Update, Duration::from_secs(600))
            .with(Operation::Delete, Duration::from_secs(60))
    }

    async fn validate(&self, config: &FixtureModel<Planning>) -> Diagnostics {
        let mut d = Diagnostics::new();
        if let Some(Some(s)) = config.settle.get() {
            if let Err(e) = parse_duration(s) {
                d.push(Diagnostic::error("Invalid settle", e).at(AttrPath::root("settle")));
            }
        }
        d
    }

    async fn create(
        &self,
        op: &Op<()>,
        config: FixtureModel,
        _: FixtureModel<Planning>,
    ) -> Result<FixtureModel, Diagnostics> {
        config.settle(op).await
    }

    async fn update(
        &self,
        op: &Op<()>,
        _: FixtureModel,
        config: FixtureModel,
        _: FixtureModel<Planning>,
    ) -> Result<FixtureModel, Diagnostics> {
        config.settle(op).await
    }

    async fn read(
        &self,
        _: &Op<()>,
        mut state: FixtureModel,
    ) -> Result<Option<FixtureModel>, Diagnostics> {
        Ok(match state.observe().await? {
            Observed::NotFound => None,
            Observed::Status(s, _) => {
                state.status = Some(s);
                Some(state)
            }
        })
    }

    async fn delete(&self, op: &Op<()>, state: FixtureModel) -> Result<(), Diagnostics> {
        let path = state.path();
        match tokio::fs::remove_file(&path).await {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(io_error("delete", &path, e))
            }
            _ => {}
        }
        Waiter::new(format!("fixture {}", state.name), &[])
            .not_found(NotFound::IsTarget)
            .interval(Duration::from_millis(100), Duration::from_millis(100))
            .wait(op, || state.observe())
            .await?;
        Ok(())
    }

    async fn import(&self, op: &Op<()>, id: &str) -> Result<FixtureModel, Diagnostics> {
        let path = PathBuf::from(id);
        let (Some(store), Some(name)) = (path.parent(), path.file_name()) else {
            return Err(Diagnostic::error("Invalid import ID", "Expected STORE_DIR/NAME.").into());
        };
        let model = FixtureModel {
            store: store.display().to_string(),
            name: name.to_string_lossy().into_owned(),
            settle: None,
            secret_wo: None,
            id: Some(id.to_owned()),
            status: None,
        };
        self.read(op, model).await?.ok_or_else(|| {
            Diagnostic::error("Cannot import", format!("No fixture at {id}.")).into()
        })
    }
}
