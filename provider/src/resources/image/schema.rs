//! The `ep_image` schema.

use crate::framework::{Attribute, Block, Nesting, Schema, Type};

/// The type of one entry of the computed `layers` list.
fn layer_type() -> Type {
    Type::object([
        ("digest", Type::String),
        ("size", Type::Number),
        ("created_by", Type::String),
    ])
}

/// The resource schema.
pub fn schema() -> Schema {
    let strings = || Type::list(Type::String);
    let string_map = || Type::map(Type::String);
    let layer = Block::new(
        "An explicit layer: files from the package (or a host directory) copied under a \
         destination directory.",
    )
    .attr(Attribute::required("source", Type::String).describe(
        "Path or glob inside the deployment package (`webapps/*.war`), or `host:DIR` for a \
         directory on the machine running Terraform.",
    ))
    .attr(
        Attribute::required("destination", Type::String)
            .describe("Absolute directory in the image."),
    )
    .attr(
        Attribute::optional("mode", Type::String)
            .describe("Octal file mode (`0644`); directories get `0755`."),
    )
    .attr(Attribute::optional("uid", Type::Number).describe("Owner uid (default 0)."))
    .attr(Attribute::optional("gid", Type::Number).describe("Owner gid (default 0)."));
    let repository_settings = Block::new("Settings for an ECR repository this resource creates.")
        .attr(
            Attribute::optional("image_tag_mutability", Type::String)
                .describe("`MUTABLE` (default) or `IMMUTABLE`."),
        )
        .attr(Attribute::optional("scan_on_push", Type::Bool).describe("Scan images on push."))
        .attr(
            Attribute::optional("force_delete", Type::Bool)
                .describe("Delete the repository on destroy even when other images remain in it."),
        );
    Schema::new(
        Block::new(
            "Builds an Elastic Path service image from a deployment package without a Docker \
             daemon and pushes it to ECR or any OCI registry. Plans never build: unchanged \
             inputs plan no change, changed inputs plan a new `digest`.",
        )
        .attr(Attribute::computed("id", Type::String).describe("The image URI."))
        .attr(
            Attribute::required("repository", Type::String)
                .describe(
                    "ECR repository name (`ep/cortex`) in the provider's account and region, or \
                     `registry-host/repository` for any OCI registry. Changing it replaces the \
                     image.",
                )
                .force_new(),
        )
        .attr(Attribute::optional("tags", strings()).describe(
            "Tags to push. Tags alone never change `image_uri`, so retagging redeploys nothing.",
        ))
        .attr(Attribute::optional("create_repository", Type::Bool).describe(
            "Create the ECR repository if it does not exist (and delete it on destroy when empty).",
        ))
        .attr(
            Attribute::optional("deployment_package", Type::String)
                .describe("Path to the deployment package `.zip` or directory."),
        )
        .attr(Attribute::optional("service", Type::String).describe(
            "Service to build: `cortex` (with Cortex Studio), `cm`, `batch`, `integration`, \
             `search`, `data-sync`, `data-population`.",
        ))
        .attr(Attribute::optional("base", Type::String).describe(
            "Base image: a registry reference (a tag is resolved to its digest at plan time), \
             `dir:PATH` or `tar:PATH` for a local root filesystem, or `scratch` (default).",
        ))
        .attr(Attribute::optional("env", string_map()).describe("Environment variables."))
        .attr(Attribute::optional("entrypoint", strings()).describe("Entrypoint."))
        .attr(Attribute::optional("cmd", strings()).describe("Command."))
        .attr(Attribute::optional("working_dir", Type::String).describe("Working directory."))
        .attr(Attribute::optional("user", Type::String).describe("User (`uid[:gid]` or name)."))
        .attr(Attribute::optional("labels", string_map()).describe("Image config labels."))
        .attr(Attribute::optional("exposed_ports", strings()).describe("Ports, `8080` or `8080/tcp`."))
        .attr(Attribute::optional("stop_signal", Type::String).describe("Stop signal."))
        .attr(Attribute::optional("annotations", string_map()).describe(
            "Manifest annotations beyond the `org.opencontainers.image.*` ones set automatically.",
        ))
        .attr(Attribute::optional("platforms", strings()).describe(
            "`linux/amd64` (default) and/or `linux/arm64`; more than one pushes an image index.",
        ))
        .attr(Attribute::optional("source_date_epoch", Type::Number).describe(
            "Timestamp written into the image (default 0), for reproducible digests.",
        ))
        .attr(Attribute::optional("compression", Type::String).describe("`gzip` (default) or `zstd`."))
        .attr(Attribute::optional("format", Type::String).describe(
            "`oci` (default) or `docker` (Docker schema 2 media types).",
        ))
        .attr(Attribute::optional("keep_on_destroy", Type::Bool).describe(
            "On destroy, remove the tags but keep the manifest.",
        ))
        .attr(Attribute::computed("digest", Type::String).describe("Manifest (or index) digest."))
        .attr(Attribute::computed("image_uri", Type::String).describe(
            "`registry/repository@sha256:…`: what deployments should reference.",
        ))
        .attr(
            Attribute::computed("registry", Type::String)
                .describe("The registry host.")
                .keep_unless_changed(&["repository"]),
        )
        .attr(Attribute::computed("base_digest", Type::String).describe(
            "Digest of the base image's manifest, when the base is a registry image.",
        ))
        .attr(Attribute::computed("package_fingerprint", Type::String).describe(
            "Content fingerprint (as `ep_deployment_package` reports it) of the package the image \
             was last built from; kept while the image's own inputs do not change.",
        ))
        .attr(Attribute::computed("source_fingerprint", Type::String).describe(
            "SHA-256 over this image's own inputs (its layers' entries by name, size and CRC; the \
             base digest or content; the configuration), recorded in the image. Equal on every \
             machine for equal inputs; a package change elsewhere leaves it alone.",
        ))
        .attr(Attribute::computed("layers", Type::list(layer_type())).describe(
            "Every layer of the (first platform's) image, base layers first: `digest` and \
             `size` of the blob, and `created_by` from the image history saying what went \
             into it (`ep-imagebuild cortex classes`).",
        ))
        .block("repository_settings", Nesting::Single, repository_settings)
        .block("layer", Nesting::List, layer),
    )
}
