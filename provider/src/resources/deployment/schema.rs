//! The `ep_deployment` schema.

use crate::framework::{Attribute, Block, Nesting, Schema, Type};

/// The inputs every output may depend on: a change to any of them makes
/// the outputs that name it unknown in the plan.
const STACK_INPUTS: &[&str] = &["author", "live", "single_instance"];
/// The endpoints also hold the services' discovery names.
const ENDPOINT_INPUTS: &[&str] = &["author", "live", "single_instance", "service_discovery"];
const DISCOVERY_INPUTS: &[&str] = &["service_discovery", "name", "kind"];
const SERVICE_INPUTS: &[&str] = &[
    "author",
    "live",
    "single_instance",
    "service",
    "cluster_arn",
    "subnet_ids",
    "security_group_ids",
    "assign_public_ip",
    "execution_role_arn",
    "task_role_arn",
    "log_group",
    "service_discovery",
];

fn endpoints_type() -> Type {
    Type::object([
        ("database_address", Type::String),
        ("database_port", Type::Number),
        ("database_url", Type::String),
        ("jms_url", Type::String),
        ("stomp_url", Type::String),
        ("console_url", Type::String),
        ("cortex_url", Type::String),
        ("cm_url", Type::String),
        ("integration_url", Type::String),
        ("search_master_url", Type::String),
    ])
}

fn database_block() -> Block {
    Block::new("The stack's database: an RDS MySQL instance restored from a snapshot.")
        .attr(
            Attribute::required("snapshot_identifier", Type::String).describe(
                "Snapshot to restore, e.g. `ep_rds_snapshot.author.snapshot_identifier`. A new \
             snapshot restores a new database beside the old one, moves the services over, \
             then deletes the old one.",
            ),
        )
        .attr(
            Attribute::optional("instance_class", Type::String).describe("Default `db.t3.medium`."),
        )
        .attr(Attribute::optional("multi_az", Type::Bool).describe("Default `false`."))
        .attr(
            Attribute::optional("deletion_protection", Type::Bool).describe(
                "Default `false`. A protected database makes destroy fail until it is turned off.",
            ),
        )
        .attr(
            Attribute::optional("final_snapshot_identifier", Type::String).describe(
                "Snapshot taken when the database is deleted (on destroy or after a snapshot \
             change); none when unset.",
            ),
        )
        .attr(
            Attribute::optional("db_subnet_group_name", Type::String).describe("DB subnet group."),
        )
        .attr(Attribute::optional("schema_name", Type::String).describe("Default `commercedb`."))
        .attr(
            Attribute::optional("username", Type::String)
                .describe("Application user the services connect as (`EP_DB_USER`, default `ep`)."),
        )
        .attr(
            Attribute::required("password_secret_arn", Type::String).describe(
                "ARN of the SSM parameter or Secrets Manager secret with the user's password; ECS \
             passes it as the secret `EP_DB_PASS`, never as a plain variable.",
            ),
        )
}

fn broker_block() -> Block {
    let user = Block::new("A broker user.")
        .attr(Attribute::required("username", Type::String).describe("2–100 characters."))
        .attr(
            Attribute::optional("password", Type::String)
                .describe(
                    "12–250 characters, at least 4 different, no commas. Kept in state \
                     (sensitive); or give `password_wo`.",
                )
                .sensitive(),
        )
        .attr(
            Attribute::optional("password_wo", Type::String)
                .describe(
                    "Write-only (Terraform 1.11+) form of `password`, with the same rules: sent \
                     to Amazon MQ, never stored in plan or state. Needs `password_wo_version`.",
                )
                .sensitive()
                .write_only(),
        )
        .attr(
            Attribute::optional("password_wo_version", Type::Number).describe(
                "Change it to send `password_wo` again (a changed write-only value alone plans \
             nothing).",
            ),
        )
        .attr(Attribute::optional("console_access", Type::Bool).describe("Web console access."));
    Block::new("The stack's Amazon MQ ActiveMQ broker.")
        .attr(
            Attribute::optional("engine_version", Type::String).describe(
                "`major.minor` (default `5.18`); AWS manages patch versions from 5.18 on.",
            ),
        )
        .attr(Attribute::optional("instance_type", Type::String).describe("Default `mq.t3.micro`."))
        .attr(
            Attribute::optional("deployment_mode", Type::String)
                .describe("`SINGLE_INSTANCE` (default) or `ACTIVE_STANDBY_MULTI_AZ`."),
        )
        .block("user", Nesting::List, user)
}

fn stack_block(which: &str) -> Block {
    Block::new(&format!("The {which} stack's own database and broker."))
        .attr(
            Attribute::optional("commerce_environment", Type::String).describe(&format!(
                "`EP_COMMERCE_ENVNAME` of the stack's services (default `{which}`)."
            )),
        )
        .attr(
            Attribute::optional("target_group_arn", Type::String)
                .describe("Target group that the stack's Cortex registers with (port 8080)."),
        )
        .block("database", Nesting::Single, database_block())
        .block("broker", Nesting::Single, broker_block())
}

fn single_instance_block() -> Block {
    let port = |name: &str, default: u32, what: &str| {
        Attribute::optional(name, Type::Number).describe(&format!(
            "Host port of {what} on the container instance (default {default})."
        ))
    };
    Block::new(
        "The database and broker containers of a `single_instance` deployment, which run in the \
         services' task on one EC2 container instance (bridge network, reached as `mysql` and \
         `activemq`).",
    )
    .attr(Attribute::required("database_image", Type::String).describe(
        "MySQL/MariaDB image holding the populated database: `ep_database_image.x.image_uri`.",
    ))
    .attr(Attribute::required("activemq_image", Type::String).describe(
        "ActiveMQ image (OpenWire on 61616, web console on 8161).",
    ))
    .attr(Attribute::optional("schema_name", Type::String).describe("Commerce schema in the database image (default `commercedb`)."))
    .attr(Attribute::optional("username", Type::String).describe("Application user (`EP_DB_USER`, default `ep`)."))
    .attr(Attribute::required("password_secret_arn", Type::String).describe(
        "ARN of the SSM parameter or Secrets Manager secret with the user's password; ECS passes \
         it as the secret `EP_DB_PASS`, never as a plain variable.",
    ))
    .attr(Attribute::optional("commerce_environment", Type::String).describe("`EP_COMMERCE_ENVNAME` of the services (default `single`)."))
    .attr(Attribute::optional("database_memory", Type::Number).describe("Memory of the database container, MiB (default 1024)."))
    .attr(Attribute::optional("activemq_memory", Type::Number).describe("Memory of the ActiveMQ container, MiB (default 512)."))
    .attr(port("cortex_host_port", 9080, "Cortex's port 8080"))
    .attr(port("cm_host_port", 9081, "Commerce Manager's port 8080"))
    .attr(port("activemq_console_host_port", 8161, "the ActiveMQ web console (8161)"))
    .attr(Attribute::optional("capacity_provider", Type::String).describe(
        "Capacity provider of the cluster the task runs on; the EC2 launch type when unset.",
    ))
}

fn service_discovery_block() -> Block {
    Block::new(
        "AWS Cloud Map service discovery: each service registers as `<stack>-<service>` in a \
         private DNS namespace (`live-search.prod.ep.internal`), and the Tomcats of a stack get \
         `EP_SEARCH_MASTER_URL` to its search service. Author and Live only.",
    )
    .attr(Attribute::optional("namespace_id", Type::String).describe(
        "An existing private DNS namespace (`ns-…`), which the deployment uses and never deletes.",
    ))
    .attr(Attribute::optional("vpc_id", Type::String).describe(
        "Instead of `namespace_id`: the VPC of a private DNS namespace the deployment creates, \
         owns and deletes.",
    ))
    .attr(
        Attribute::optional("namespace_name", Type::String).describe(
            "Name of the namespace created with `vpc_id` (default `<name>.ep.internal`).",
        ),
    )
}

fn service_block() -> Block {
    let strings = || Type::map(Type::String);
    Block::new("An Elastic Path service: one ECS service in one stack.")
        .attr(Attribute::required("name", Type::String).describe(
            "`cortex`, `cm`, `batch`, `integration`, `search` or `data-sync`.",
        ))
        .attr(Attribute::required("stack", Type::String).describe("`author` or `live`; `single` in a `single_instance` deployment."))
        .attr(Attribute::required("image", Type::String).describe(
            "Image reference, best by digest: `ep_image.cortex.image_uri`.",
        ))
        .attr(Attribute::optional("cpu", Type::Number).describe("CPU units (default 1024)."))
        .attr(Attribute::optional("memory", Type::Number).describe(
            "Memory, MiB (default 5120 for cortex, 3072 for the others); also `EP_CONTAINER_MEM`.",
        ))
        .attr(Attribute::optional("desired_count", Type::Number).describe(
            "Tasks (default 1). `cm` and `batch` run as singletons.",
        ))
        .attr(Attribute::optional("environment", strings()).describe(
            "More environment variables; the wiring variables (`EP_DB_*`, `EP_JMS_URL`, …) are set \
             by the deployment and cannot be overridden here.",
        ))
        .attr(Attribute::optional("secrets", strings()).describe(
            "More secrets: variable → SSM parameter or Secrets Manager ARN.",
        ))
        .attr(Attribute::optional("health_check_path", Type::String).describe(
            "Path on port 8080 checked instead of the service's own health endpoint.",
        ))
}

/// The resource schema.
pub fn schema() -> Schema {
    let strings = || Type::list(Type::String);
    let string_map = || Type::map(Type::String);
    Schema::new(
        Block::new(
            "An Elastic Path Author and Live environment on ECS, RDS and Amazon MQ: per stack a \
             database restored from a data-populated snapshot and an ActiveMQ broker, and the \
             services as ECS services wired to them.",
        )
        .attr(Attribute::computed("id", Type::String).describe("The deployment's name."))
        .attr(
            Attribute::required("name", Type::String)
                .describe(
                    "Deployment name (1–24 lowercase letters, digits and hyphens, starting with a \
                     letter): prefix of every part's name and value of the `ep:deployment` tag.",
                )
                .force_new(),
        )
        .attr(
            Attribute::required("kind", Type::String)
                .describe(
                    "`author_and_live` (RDS, Amazon MQ and one ECS service per service and \
                     stack) or `single_instance` (one ECS task on an EC2 container instance \
                     running every service with MySQL and ActiveMQ containers).",
                )
                .force_new(),
        )
        .attr(
            Attribute::optional_computed("cluster_arn", Type::String)
                .describe(
                    "An existing ECS cluster; when unset, the deployment creates `ep-<name>`. \
                     Required for `single_instance`: a cluster with EC2 capacity.",
                )
                .keep_unless_changed(&["cluster_arn", "name"]),
        )
        .attr(Attribute::optional("subnet_ids", strings()).describe(
            "Subnets of the tasks and brokers; required for `author_and_live`, unused by \
             `single_instance` (its task runs on the container instance's network).",
        ))
        .attr(
            Attribute::optional("security_group_ids", strings())
                .describe("Security groups of the tasks, databases and brokers."),
        )
        .attr(Attribute::optional("assign_public_ip", Type::Bool).describe("Default `false`."))
        .attr(
            Attribute::optional("execution_role_arn", Type::String)
                .describe("Task execution role: pulls images and reads the secrets."),
        )
        .attr(
            Attribute::optional("task_role_arn", Type::String)
                .describe("Role the services run as."),
        )
        .attr(Attribute::optional("log_group", Type::String).describe(
            "CloudWatch Logs group for the containers' output (`awslogs`); none when unset.",
        ))
        .attr(Attribute::optional("tags", string_map()).describe("Tags on every part."))
        .block("author", Nesting::Single, stack_block("author"))
        .block("live", Nesting::Single, stack_block("live"))
        .block("single_instance", Nesting::Single, single_instance_block())
        .block(
            "service_discovery",
            Nesting::Single,
            service_discovery_block(),
        )
        .block("service", Nesting::List, service_block())
        .attr(
            Attribute::computed("databases", string_map())
                .describe("Stack → RDS instance identifier.")
                .keep_unless_changed(STACK_INPUTS),
        )
        .attr(
            Attribute::computed("brokers", string_map())
                .describe("Stack → Amazon MQ broker ID.")
                .keep_unless_changed(STACK_INPUTS),
        )
        .attr(
            Attribute::computed("task_definitions", string_map())
                .describe("`stack/service` → task definition ARN with revision.")
                .keep_unless_changed(SERVICE_INPUTS),
        )
        .attr(
            Attribute::computed("services", string_map())
                .describe("`stack/service` → ECS service ARN.")
                .keep_unless_changed(SERVICE_INPUTS),
        )
        .attr(
            Attribute::computed("discovery_namespace_id", Type::String)
                .describe("The Cloud Map namespace the services register in.")
                .keep_unless_changed(DISCOVERY_INPUTS),
        )
        .attr(
            Attribute::computed("discovery_services", string_map())
                .describe("`stack/service` → Cloud Map service ARN.")
                .keep_unless_changed(SERVICE_INPUTS),
        )
        .attr(
            Attribute::computed("endpoints", Type::map(endpoints_type()))
                .describe(
                    "Stack → its database and broker endpoints and, with `service_discovery`, \
                     its services' URLs, ready for `ep_endpoint_publication`.",
                )
                .keep_unless_changed(ENDPOINT_INPUTS),
        )
        .attr(
            Attribute::computed("status", Type::String)
                .describe("`ready` once every part is usable.")
                .keep_unless_changed(SERVICE_INPUTS),
        ),
    )
}
