//! The `ep_rds_snapshot` schema.

use crate::framework::{Attribute, Block, Nesting, Schema, Type};

/// The resource schema.
pub fn schema() -> Schema {
    let tunnel = Block::new(
        "Where the Data Population tool connects instead of the instance's endpoint: the local \
         end of a tunnel or proxy into the instance's private subnets.",
    )
    .attr(Attribute::required("host", Type::String).describe("Host name or address."))
    .attr(Attribute::optional("port", Type::Number).describe("Port (default `3306`)."));
    let phases = Block::new(
        "Limits of each phase of a create, within `timeouts.create`: `instance` (create or \
         restore until available; also each wait for the temporary instance to be deleted), \
         `tool` (the Data Population run) and `snapshot` (until the snapshot is available).",
    )
    .attr(Attribute::optional("instance", Type::String).describe("Default `40m`."))
    .attr(Attribute::optional("tool", Type::String).describe("Default `60m`."))
    .attr(Attribute::optional("snapshot", Type::String).describe("Default `20m`."));
    let ecs = Block::new(
        "The `ecs` runner's Fargate task: required exactly when `runner = \"ecs\"`. Changing \
         it plans no new snapshot (it does not change the data).",
    )
    .attr(Attribute::required("cluster_arn", Type::String).describe("ECS cluster the task runs in."))
    .attr(Attribute::required("image", Type::String).describe(
        "The `data-pop-tool` image (for example `ep_image`'s `data-population` image), built \
         from the same deployment package.",
    ))
    .attr(
        Attribute::required("subnet_ids", Type::list(Type::String))
            .describe("Subnets of the task (awsvpc); they must reach the temporary instance."),
    )
    .attr(
        Attribute::required("security_group_ids", Type::list(Type::String))
            .describe("Security groups of the task; the instance's groups must admit them."),
    )
    .attr(
        Attribute::optional("assign_public_ip", Type::Bool)
            .describe("Give the task a public IP (to pull from a public registry without NAT). Default `false`."),
    )
    .attr(Attribute::required("execution_role_arn", Type::String).describe(
        "Role ECS uses to pull the image, read the temporary SSM parameters holding the \
         passwords (`ssm:GetParameters`, `kms:Decrypt`) and write the log.",
    ))
    .attr(
        Attribute::optional("task_role_arn", Type::String)
            .describe("Role the container runs as (the tool itself calls no AWS API)."),
    )
    .attr(
        Attribute::optional("cpu", Type::Number)
            .describe("Task CPU units, a Fargate size with `memory` (default `1024`)."),
    )
    .attr(
        Attribute::optional("memory", Type::Number)
            .describe("Task memory in MiB (default `4096`)."),
    )
    .attr(Attribute::required("log_group", Type::String).describe(
        "Existing CloudWatch Logs group the container logs to (awslogs); a failure's \
         diagnostic shows the last lines of its stream.",
    ));
    Schema::new(
        Block::new(
            "A data-populated RDS snapshot: a temporary DB instance (new, or restored from a \
             snapshot), the deployment package's Data Population tool run against it for one \
             environment, a snapshot taken, the instance deleted. Author and Live environments \
             restore their databases from such snapshots.",
        )
        .attr(Attribute::computed("id", Type::String).describe("The snapshot identifier."))
        .attr(
            Attribute::required("name", Type::String)
                .describe(
                    "Base of the snapshot and temporary instance identifiers (1–40 letters, \
                     digits and hyphens, starting with a letter). Changing it replaces the \
                     snapshot.",
                )
                .force_new(),
        )
        .attr(Attribute::required("deployment_package", Type::String).describe(
            "Path to the deployment package `.zip` or directory. Only its data-population \
             content counts: moving or rebuilding it with the same tool, data and drivers plans \
             no change.",
        ))
        .attr(Attribute::required("environment", Type::String).describe(
            "Environment of the ext-data jar to populate: `author`, `live`, or your own.",
        ))
        .attr(Attribute::optional("command", Type::String).describe(
            "`reset-db` (default for a new instance) or `update-db` (default when restoring \
             `source_snapshot_identifier`).",
        ))
        .attr(
            Attribute::optional("schema_name", Type::String)
                .describe("The commerce schema (default `commercedb`)."),
        )
        .attr(Attribute::optional("database_username", Type::String).describe(
            "The application user the tool creates (default `ep`): what deployments connect as.",
        ))
        .attr(
            Attribute::required("database_password", Type::String)
                .describe("The application user's password.")
                .sensitive(),
        )
        .attr(
            Attribute::optional("extra_properties", Type::map(Type::String)).describe(
                "Written last into the staged `database.properties`; they override the \
                 generated connection settings.",
            ),
        )
        .attr(
            Attribute::optional("engine", Type::String)
                .describe("`mysql` (default) or `mariadb`."),
        )
        .attr(Attribute::optional("engine_version", Type::String).describe(
            "Engine version of a new instance (`8.0`, `8.0.35`); AWS's default when unset.",
        ))
        .attr(Attribute::optional("source_snapshot_identifier", Type::String).describe(
            "Restore this snapshot instead of starting from an empty instance, and migrate it \
             (`update-db` by default).",
        ))
        .attr(
            Attribute::optional("instance_class", Type::String)
                .describe("Temporary instance class (default `db.t3.medium`)."),
        )
        .attr(
            Attribute::optional("allocated_storage", Type::Number)
                .describe("Temporary instance storage in GiB (default `20`)."),
        )
        .attr(Attribute::optional("db_subnet_group_name", Type::String).describe(
            "DB subnet group of the temporary instance.",
        ))
        .attr(
            Attribute::optional("vpc_security_group_ids", Type::list(Type::String))
                .describe("Security groups of the temporary instance."),
        )
        .attr(
            Attribute::optional("parameter_group_name", Type::String)
                .describe("DB parameter group of the temporary instance."),
        )
        .attr(
            Attribute::optional("master_username", Type::String)
                .describe("Master user of a new instance (default `epadmin`)."),
        )
        .attr(
            Attribute::optional("master_password", Type::String)
                .describe(
                    "Master password of the temporary instance. Leave unset: a random one is \
                     generated for each run and kept nowhere (a configured one is kept in \
                     state by Terraform, as every configured value is; `master_password_wo` \
                     is not).",
                )
                .sensitive(),
        )
        .attr(
            Attribute::optional("master_password_wo", Type::String)
                .describe(
                    "Write-only (Terraform 1.11+) form of `master_password`: used for the \
                     temporary instance of the run that creates the snapshot, never stored in \
                     plan or state. A change alone plans nothing.",
                )
                .sensitive()
                .write_only(),
        )
        .attr(
            Attribute::optional("runner", Type::String)
                .describe(
                    "Where the tool runs: `local` (default), on the machine running Terraform, \
                     or `ecs`, a Fargate task from the `data-pop-tool` image (see `ecs`).",
                ),
        )
        .attr(Attribute::optional("keep_instance_on_failure", Type::Bool).describe(
            "Keep the temporary instance when the run fails, to investigate (delete it yourself).",
        ))
        .attr(
            Attribute::optional("retain_on_delete", Type::Bool)
                .describe("On destroy, forget the snapshot but keep it in AWS."),
        )
        .attr(
            Attribute::computed("snapshot_identifier", Type::String)
                .describe("`<name>-<first 12 hex digits of data_fingerprint>`."),
        )
        .attr(Attribute::computed("snapshot_arn", Type::String).describe("The snapshot's ARN."))
        .attr(Attribute::computed("data_fingerprint", Type::String).describe(
            "SHA-256 over the package's data-population content (tool, ext-data jar and JDBC \
             drivers, from the zip's central directory), the environment, the command and the \
             engine settings. A change plans a new snapshot.",
        ))
        .attr(Attribute::computed("actual_engine_version", Type::String).describe(
            "The engine version the snapshot has (`8.0.35` when `8.0` was asked for).",
        ))
        .attr(Attribute::computed("instance_identifier", Type::String).describe(
            "The temporary instance's identifier, `<name>-<first 8 hex digits>-tmp`: an \
             interrupted run's instance is found by it and adopted or deleted.",
        ))
        .attr(
            Attribute::computed("created_at", Type::String)
                .describe("When AWS took the snapshot (RFC 3339)."),
        )
        .block("tunnel", Nesting::Single, tunnel)
        .block("ecs", Nesting::Single, ecs)
        .block("phase_timeouts", Nesting::Single, phases),
    )
}
