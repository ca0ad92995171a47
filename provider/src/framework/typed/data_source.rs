//! [`TypedData`]: any [`TypedDataSource`] served through the wire [`DataSource`] trait.

use async_trait::async_trait;

use super::plan::merge;
use super::ModelType;
use crate::framework::dynamic::{Type, Value};
use crate::framework::model::{self, decode_diagnostics, Applying, Phase, Planning};
use crate::framework::{DataSource, Diagnostics, Schema};

/// A data source on typed models.
#[async_trait]
pub trait TypedDataSource: Send + Sync + 'static {
    /// The configuration and result, one struct for both phases.
    type Model<P: Phase>: ModelType;

    /// Type name, e.g. `ep_deployment_package`.
    fn type_name(&self) -> &'static str;

    /// The schema.
    fn schema(&self) -> Schema;

    /// Checks a configuration that may be partly unknown.
    async fn validate(&self, _config: &Self::Model<Planning>) -> Diagnostics {
        Diagnostics::new()
    }

    /// Reads the data for a wholly known configuration.
    async fn read(
        &self,
        config: Self::Model<Applying>,
    ) -> Result<Self::Model<Applying>, Diagnostics>;
}

/// Adapts a [`TypedDataSource`] to the wire [`DataSource`] trait.
pub struct TypedData<D> {
    inner: D,
    schema: Schema,
    ty: Type,
}

impl<D: TypedDataSource> TypedData<D> {
    /// Wraps a typed data source.
    pub fn new(inner: D) -> Self {
        let schema = inner.schema();
        let ty = schema.value_type();
        TypedData { inner, schema, ty }
    }
}

#[async_trait]
impl<D: TypedDataSource> DataSource for TypedData<D> {
    fn type_name(&self) -> &'static str {
        self.inner.type_name()
    }

    fn schema(&self) -> Schema {
        self.schema.clone()
    }

    async fn validate(&self, config: &Value) -> Diagnostics {
        match model::from_value::<D::Model<Planning>>(&config.clone().fit(&self.ty)) {
            Ok(m) => self.inner.validate(&m).await,
            Err(e) => decode_diagnostics("configuration", &e),
        }
    }

    async fn read(&self, config: Value) -> (Value, Diagnostics) {
        let mut diags = self.validate(&config).await;
        if diags.has_errors() {
            return (Value::Null, diags);
        }
        let result = async {
            let m: D::Model<Applying> = model::from_value(&config.clone().fit(&self.ty))
                .map_err(|e| decode_diagnostics("configuration", &e))?;
            let out = self.inner.read(m).await?;
            let v =
                model::to_value(&out, &self.ty).map_err(|e| decode_diagnostics("result", &e))?;
            // The configuration's own values stand as written.
            Ok::<_, Diagnostics>(merge(&self.schema.block, &config, &v))
        }
        .await;
        match result {
            Ok(v) => (v, diags),
            Err(d) => {
                diags.extend(d);
                (Value::Null, diags)
            }
        }
    }

    fn check_model(&self) -> Result<(), String> {
        model::check_model::<D::Model<Applying>>(&self.ty)
            .and_then(|()| model::check_model::<D::Model<Planning>>(&self.ty))
            .map_err(|e| format!("{}: {e}", self.inner.type_name()))
            .and_then(|()| {
                self.inner
                    .schema()
                    .block
                    .check_reserved(crate::framework::schema::RESERVED_DATA_SOURCE_NAMES)
                    .map_err(|e| format!("{}: {e}", self.inner.type_name()))
            })
    }
}
