//! Schemas of `ep_endpoint_publication` and `ep_config_store`.

use crate::framework::{Attribute, Block, Nesting, Schema, Type};

/// The `consul` block.
pub fn consul_block() -> Block {
    Block::new("Consul's KV store. TLS certificates are always verified.")
        .attr(Attribute::optional("address", Type::String).describe(
            "`host:port` or a URL (`https://consul.internal:8501`). Default: \
             `CONSUL_HTTP_ADDR`, else `127.0.0.1:8500`.",
        ))
        .attr(
            Attribute::optional("scheme", Type::String)
                .describe("`http` or `https` (default: the address's scheme, else `http`)."),
        )
        .attr(
            Attribute::optional("token", Type::String)
                .describe("ACL token, sent in `X-Consul-Token`. Default: `CONSUL_HTTP_TOKEN`.")
                .sensitive(),
        )
        .attr(Attribute::optional("datacenter", Type::String).describe("Datacenter (`?dc=`)."))
        .attr(
            Attribute::optional("namespace", Type::String)
                .describe("Consul Enterprise namespace (`?ns=`)."),
        )
        .attr(
            Attribute::optional("ca_file", Type::String)
                .describe("PEM file of CA certificates trusted besides the system's, for `https`."),
        )
}

/// The `ssm` block.
pub fn ssm_block() -> Block {
    Block::new(
        "SSM Parameter Store, through the provider's AWS settings (region, credentials, \
         `endpoints.ssm`).",
    )
    .attr(
        Attribute::optional("path_prefix", Type::String)
            .describe("Put before `prefix` to make parameter names: `/` (default) or `/a/b/`."),
    )
    .attr(Attribute::optional("key_id", Type::String).describe(
        "KMS key of `SecureString` parameters (`sensitive_values`); AWS's `alias/aws/ssm` \
         when unset.",
    ))
    .attr(Attribute::optional("tier", Type::String).describe(
        "`Standard` (default; values up to 4096 characters), `Advanced` or \
         `Intelligent-Tiering` (up to 8192).",
    ))
    .attr(
        Attribute::optional("tags", Type::map(Type::String))
            .describe("Tags on every parameter written."),
    )
}

/// The resource schema.
pub fn resource() -> Schema {
    Schema::new(
        Block::new(
            "Publishes a deployment's endpoints (key → value) into a config store, Consul or \
             SSM, where Elastic Path's images read them at start. The resource owns the keys it \
             wrote, not the prefix: other keys under the prefix are left alone, changes made \
             outside Terraform to its keys are restored, and destroy removes only its keys \
             that still hold its values.",
        )
        .attr(
            Attribute::computed("id", Type::String)
                .describe("`consul:<prefix>` or `ssm:<path_prefix><prefix>`."),
        )
        .attr(
            Attribute::required("prefix", Type::String)
                .describe(
                    "Where the keys go, ending in `/` (`ep/author/`): letters, digits, `_ . / -`, \
                     no leading `/`, no `..`. Changing it replaces the publication.",
                )
                .force_new(),
        )
        .attr(
            Attribute::optional("values", Type::map(Type::String))
                .describe("Keys (relative to `prefix`) and their values."),
        )
        .attr(
            Attribute::optional("sensitive_values", Type::map(Type::String))
                .describe(
                    "Like `values`, for credentials: never shown in plans or logs, and \
                     `SecureString` parameters in SSM.",
                )
                .sensitive(),
        )
        .attr(
            Attribute::optional("endpoints", Type::map(Type::map(Type::String))).describe(
                "Stack → endpoint name → value (`ep_deployment.endpoints` as it is). \
                 `endpoints.author.database_url` is published as `author/EP_DB_URL` (see the \
                 key layout in the docs); null endpoints are skipped.",
            ),
        )
        .attr(Attribute::optional("overwrite", Type::Bool).describe(
            "Take over keys that exist and were not written by this resource (default \
             `false`: such a key is an error).",
        ))
        .attr(
            Attribute::computed("keys", Type::list(Type::String))
                .describe("The full store keys this resource wrote and owns."),
        )
        .attr(
            Attribute::computed("unconfirmed", Type::map(Type::String)).describe(
                "Writes sent whose answer never came (the store stopped, or the apply was \
                 interrupted): key → SHA-256 of the value sent. Such a key holding that value \
                 is this resource's. Null after a successful apply.",
            ),
        )
        .block("consul", Nesting::Single, consul_block())
        .block("ssm", Nesting::Single, ssm_block()),
    )
}

/// The data source schema.
pub fn data_source() -> Schema {
    Schema::new(
        Block::new("The values under a prefix of a config store (Consul or SSM).")
            .attr(
                Attribute::computed("id", Type::String)
                    .describe("`consul:<prefix>` or `ssm:<path_prefix><prefix>`."),
            )
            .attr(
                Attribute::required("prefix", Type::String)
                    .describe("The prefix, ending in `/` (`ep/author/`)."),
            )
            .attr(
                Attribute::optional("sensitive_keys", Type::list(Type::String)).describe(
                    "Keys (relative to `prefix`) whose values are credentials: they go into \
                     `sensitive_values`. SSM `SecureString` parameters always do.",
                ),
            )
            .attr(
                Attribute::computed("values", Type::map(Type::String))
                    .describe("Keys (relative to `prefix`) and values, except sensitive ones."),
            )
            .attr(
                Attribute::computed("sensitive_values", Type::map(Type::String))
                    .describe(
                        "`SecureString` parameters (SSM), decrypted, and the keys named in \
                         `sensitive_keys`.",
                    )
                    .sensitive(),
            )
            .block("consul", Nesting::Single, consul_block())
            .block("ssm", Nesting::Single, ssm_block()),
    )
}
