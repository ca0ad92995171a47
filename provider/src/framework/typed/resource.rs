//! [`Typed`]: any [`TypedResource`] served through the wire [`Resource`] trait.

use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use tokio_util::sync::CancellationToken;

use super::plan::{default_plan, merge, with_timeouts, without_timeouts};
use super::{Plan, TypedResource};
use crate::framework::dynamic::{Type, Value};
use crate::framework::model::{self, decode_diagnostics, Applying, Planning};
use crate::framework::operation::{Interrupted, Op, Record, GRACE};
use crate::framework::timeouts::{self, Operation};
use crate::framework::traits::{
    ApplyRequest, Imported, PlanRequest, PlanResponse, ReadRequest, StateResponse,
};
use crate::framework::{Diagnostics, Resource, Schema};

/// Read and import have no timeout of their own unless the resource declares one.
const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(20 * 60);

/// Adapts a [`TypedResource`] to the wire [`Resource`] trait.
pub struct Typed<R> {
    inner: R,
    schema: Schema,
    /// The model's type: the schema's, without `timeouts`.
    model_type: Type,
}

impl<R: TypedResource> Typed<R> {
    /// Wraps a typed resource; its schema gains the `timeouts` block.
    pub fn new(inner: R) -> Self {
        let base = inner.schema();
        let model_type = base.value_type();
        let mut schema = base;
        let defaults = inner.timeouts();
        if !defaults.is_empty() {
            schema.block = schema.block.block(
                timeouts::BLOCK,
                crate::framework::Nesting::Single,
                defaults.block(),
            );
        }
        Typed {
            inner,
            schema,
            model_type,
        }
    }

    fn has_timeouts(&self) -> bool {
        !self.inner.timeouts().is_empty()
    }

    fn decode<M: serde::de::DeserializeOwned>(
        &self,
        v: &Value,
        what: &str,
    ) -> Result<M, Diagnostics> {
        model::from_value(&without_timeouts(v).fit(&self.model_type))
            .map_err(|e| decode_diagnostics(what, &e))
    }

    fn encode<M: serde::Serialize>(&self, m: &M, what: &str) -> Result<Value, Diagnostics> {
        model::to_value(m, &self.model_type).map_err(|e| decode_diagnostics(what, &e))
    }

    fn private(bytes: &[u8]) -> R::Private {
        serde_json::from_slice(bytes).unwrap_or_default()
    }

    /// An operation context whose checkpoints merge onto `base` (the
    /// planned value, or the state being read).
    fn op(
        &self,
        kind: Operation,
        limit: Duration,
        stop: &CancellationToken,
        private: &[u8],
        base: &Value,
        record: &Arc<Mutex<Record>>,
    ) -> Op<R::Private> {
        let block = self.schema.block.clone();
        let base = base.clone();
        let has_timeouts = self.has_timeouts();
        let finish =
            Arc::new(move |v: Value| with_timeouts(merge(&block, &base, &v), &base, has_timeouts));
        Op::new(
            kind,
            limit,
            stop.clone(),
            Self::private(private),
            record.clone(),
            self.model_type.clone(),
            finish,
        )
    }

    async fn apply_inner(
        &self,
        req: &ApplyRequest,
        record: &Arc<Mutex<Record>>,
    ) -> Result<Value, Diagnostics> {
        let defaults = self.inner.timeouts();
        if req.planned_state.is_null() {
            let limit = defaults.resolve(&req.prior_state, Operation::Delete);
            let op = self.op(
                Operation::Delete,
                limit,
                &req.stop,
                &req.planned_private,
                &req.prior_state,
                record,
            );
            let prior: R::Model<Applying> = self.decode(&req.prior_state, "prior state")?;
            race(&op, "deleting", self.inner.delete(&op, prior)).await?;
            return Ok(Value::Null);
        }
        let creating = req.prior_state.is_null();
        let kind = if creating {
            Operation::Create
        } else {
            Operation::Update
        };
        let limit = defaults.resolve(&req.config, kind);
        let op = self.op(
            kind,
            limit,
            &req.stop,
            &req.planned_private,
            &req.planned_state,
            record,
        );
        let config: R::Model<Applying> = self.decode(&req.config, "configuration")?;
        let planned: R::Model<Planning> = self.decode(&req.planned_state, "planned state")?;
        let model = if creating {
            race(&op, "creating", self.inner.create(&op, config, planned)).await?
        } else {
            let prior: R::Model<Applying> = self.decode(&req.prior_state, "prior state")?;
            race(
                &op,
                "updating",
                self.inner.update(&op, prior, config, planned),
            )
            .await?
        };
        let v = self.encode(&model, "new state")?;
        Ok(with_timeouts(
            merge(&self.schema.block, &req.planned_state, &v),
            &req.planned_state,
            self.has_timeouts(),
        ))
    }
}

/// Runs an operation's future until it ends, Ctrl-C or the deadline; then
/// cancels its token and gives it [`GRACE`] to clean up before giving up.
async fn race<T, P>(
    op: &Op<P>,
    doing: &str,
    fut: impl Future<Output = Result<T, Diagnostics>>,
) -> Result<T, Diagnostics>
where
    P: crate::framework::typed::PrivateType,
{
    tokio::pin!(fut);
    let why = tokio::select! {
        out = &mut fut => return out,
        _ = op.token().cancelled() => op.interrupted().unwrap_or(Interrupted::Stopped),
        _ = tokio::time::sleep(op.remaining()) => op.interrupted().unwrap_or(Interrupted::TimedOut { op: op.kind(), limit: Duration::ZERO }),
    };
    op.token().cancel();
    tracing::warn!(
        doing,
        ?why,
        "operation interrupted; waiting briefly for it to clean up"
    );
    match tokio::time::timeout(GRACE, &mut fut).await {
        Ok(out) => out,
        Err(_) => Err(why.to_diagnostic(doing).into()),
    }
}

fn take(record: &Arc<Mutex<Record>>) -> Record {
    std::mem::take(&mut *record.lock().unwrap_or_else(PoisonError::into_inner))
}

#[async_trait]
impl<R: TypedResource> Resource for Typed<R> {
    fn type_name(&self) -> &'static str {
        self.inner.type_name()
    }

    fn schema(&self) -> Schema {
        self.schema.clone()
    }

    async fn validate(&self, config: &Value) -> Diagnostics {
        let mut d = self.inner.timeouts().validate(config);
        match self.decode::<R::Model<Planning>>(config, "configuration") {
            Ok(m) => d.extend(self.inner.validate(&m).await),
            Err(e) => d.extend(e),
        }
        d
    }

    async fn plan(&self, req: PlanRequest) -> PlanResponse {
        let mut resp = PlanResponse {
            planned_state: req.proposed_new_state.clone(),
            requires_replace: Vec::new(),
            planned_private: req.prior_private.clone(),
            diagnostics: self.validate(&req.config).await,
        };
        if resp.diagnostics.has_errors() {
            return resp;
        }
        let defaults = default_plan(
            &self.schema.block,
            &req.prior_state,
            &req.proposed_new_state,
            &req.config,
        );
        let prepared = (|| {
            let prior = if req.prior_state.is_null() || defaults.creating {
                None
            } else {
                Some(self.decode::<R::Model<Applying>>(&req.prior_state, "prior state")?)
            };
            Ok::<_, Diagnostics>(Plan::<R> {
                config: self.decode(&req.config, "configuration")?,
                prior,
                planned: self.decode(&defaults.planned, "planned state")?,
                private: Self::private(&req.prior_private),
                replace: defaults.replace,
                diagnostics: Diagnostics::new(),
                stop: req.stop.clone(),
            })
        })();
        let mut plan = match prepared {
            Ok(p) => p,
            Err(d) => {
                resp.diagnostics.extend(d);
                return resp;
            }
        };
        let hook = self.inner.plan(&mut plan).await;
        resp.diagnostics.extend(plan.diagnostics);
        if let Err(d) = hook {
            resp.diagnostics.extend(d);
            return resp;
        }
        match self.encode(&plan.planned, "planned state") {
            Ok(v) => resp.planned_state = merge(&self.schema.block, &req.proposed_new_state, &v),
            Err(d) => resp.diagnostics.extend(d),
        }
        resp.requires_replace = plan.replace;
        resp.planned_private = serde_json::to_vec(&plan.private).unwrap_or_default();
        resp
    }

    async fn apply(&self, req: ApplyRequest) -> StateResponse {
        let record = Arc::new(Mutex::new(Record::default()));
        let outcome = self.apply_inner(&req, &record).await;
        let rec = take(&record);
        let private = if rec.private.is_empty() {
            req.planned_private.clone()
        } else {
            rec.private
        };
        let mut diagnostics = rec.warnings;
        let new_state = match outcome {
            Ok(v) => v,
            Err(d) => {
                diagnostics.extend(d);
                // What exists: the last checkpoint, else what existed before.
                rec.state.unwrap_or(req.prior_state)
            }
        };
        StateResponse {
            new_state,
            private,
            diagnostics,
        }
    }

    async fn read(&self, req: ReadRequest) -> StateResponse {
        let record = Arc::new(Mutex::new(Record::default()));
        let limit = self
            .inner
            .timeouts()
            .default_for(Operation::Read)
            .map_or(DEFAULT_READ_TIMEOUT, |_| {
                self.inner.timeouts().resolve(&req.state, Operation::Read)
            });
        let op = self.op(
            Operation::Read,
            limit,
            &req.stop,
            &req.private,
            &req.state,
            &record,
        );
        let outcome = async {
            let state: R::Model<Applying> = self.decode(&req.state, "stored state")?;
            match race(&op, "reading", self.inner.read(&op, state)).await? {
                None => Ok(Value::Null),
                Some(m) => Ok(with_timeouts(
                    self.encode(&m, "refreshed state")?,
                    &req.state,
                    self.has_timeouts(),
                )),
            }
        }
        .await;
        let rec = take(&record);
        let private = if rec.private.is_empty() {
            req.private
        } else {
            rec.private
        };
        let mut diagnostics = rec.warnings;
        let new_state = match outcome {
            Ok(v) => v,
            Err(d) => {
                diagnostics.extend(d);
                req.state
            }
        };
        StateResponse {
            new_state,
            private,
            diagnostics,
        }
    }

    async fn import(&self, id: &str, stop: CancellationToken) -> Result<Imported, Diagnostics> {
        let record = Arc::new(Mutex::new(Record::default()));
        let op = self.op(
            Operation::Read,
            DEFAULT_READ_TIMEOUT,
            &stop,
            &[],
            &Value::Null,
            &record,
        );
        let model = race(&op, "importing", self.inner.import(&op, id)).await?;
        let state = with_timeouts(
            self.encode(&model, "imported state")?,
            &Value::Null,
            self.has_timeouts(),
        );
        Ok(Imported {
            state,
            private: take(&record).private,
        })
    }

    fn check_model(&self) -> Result<(), String> {
        model::check_model::<R::Model<Applying>>(&self.model_type)
            .and_then(|()| model::check_model::<R::Model<Planning>>(&self.model_type))
            .map_err(|e| format!("{}: {e}", self.inner.type_name()))
            .and_then(|()| {
                self.schema
                    .block
                    .check_reserved(crate::framework::schema::RESERVED_RESOURCE_NAMES)
                    .map_err(|e| format!("{}: {e}", self.inner.type_name()))
            })
    }
}
