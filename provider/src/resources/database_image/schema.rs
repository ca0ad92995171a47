//! The `ep_database_image` schema.

use crate::framework::{Attribute, Block, Schema, Type};

/// The resource schema.
pub fn schema() -> Schema {
    Schema::new(
        Block::new(
            "A MySQL-compatible database image for the single-instance developer environment \
             (Elastic Path's BuildMySQL job, without a Docker daemon): a local MariaDB server \
             on a temporary data directory, the deployment package's Data Population tool run \
             against it for one environment, the server shut down cleanly, and the data \
             directory pushed as one layer on a MySQL/MariaDB base image. Plans never start a \
             server: unchanged inputs plan no change.",
        )
        .attr(Attribute::computed("id", Type::String).describe("The image URI."))
        .attr(
            Attribute::required("repository", Type::String)
                .describe(
                    "ECR repository name (`ep/mysql`) in the provider's account and region, or \
                     `registry-host/repository` for any OCI registry. Changing it replaces the \
                     image.",
                )
                .force_new(),
        )
        .attr(Attribute::optional("tags", Type::list(Type::String)).describe(
            "Tags to push. Tags alone never change `image_uri`.",
        ))
        .attr(Attribute::required("base", Type::String).describe(
            "The MySQL/MariaDB image the data goes on: a registry reference (a tag is resolved \
             to its digest at plan time), or `dir:PATH` / `tar:PATH` for a local root \
             filesystem. Its server must read data files of `server_version`.",
        ))
        .attr(Attribute::optional("create_repository", Type::Bool).describe(
            "Create the ECR repository if it does not exist (and delete it on destroy when empty), \
             as `ep_image` does.",
        ))
        .attr(Attribute::optional("keep_on_destroy", Type::Bool).describe(
            "On destroy, remove the tags but keep the manifest.",
        ))
        .attr(Attribute::required("deployment_package", Type::String).describe(
            "Path to the deployment package `.zip` or directory. Only its data-population \
             content counts: moving or rebuilding it with the same tool, data and drivers plans \
             no change.",
        ))
        .attr(Attribute::required("environment", Type::String).describe(
            "Environment of the ext-data jar to populate: `author`, `live`, or your own.",
        ))
        .attr(
            Attribute::optional("schema_name", Type::String)
                .describe("The commerce schema (default `commercedb`)."),
        )
        .attr(Attribute::optional("database_username", Type::String).describe(
            "The application user the tool creates (default `ep`): what the services connect as.",
        ))
        .attr(
            Attribute::required("database_password", Type::String)
                .describe(
                    "The application user's password. The data holds its hash, so it is part \
                     of `data_fingerprint`: changing it builds a new image.",
                )
                .sensitive(),
        )
        .attr(
            Attribute::optional("extra_properties", Type::map(Type::String)).describe(
                "Written last into the staged `database.properties`; they override the \
                 generated connection settings.",
            ),
        )
        .attr(Attribute::optional("data_directory", Type::String).describe(
            "Where the data directory goes in the image (default `/var/lib/mysql`, as in the \
             official `mariadb` and `mysql` images).",
        ))
        .attr(Attribute::optional("data_uid", Type::Number).describe(
            "Owner of the data files in the image (default `999`, the `mysql` user of the \
             official images).",
        ))
        .attr(
            Attribute::optional("data_gid", Type::Number)
                .describe("Group of the data files in the image (default `999`)."),
        )
        .attr(Attribute::optional("server_binary", Type::String).describe(
            "The server run on the machine running Terraform (default `/usr/sbin/mariadbd`, \
             else `mariadbd` on `PATH`).",
        ))
        .attr(Attribute::optional("install_db_binary", Type::String).describe(
            "The data directory initialiser (default `mariadb-install-db`).",
        ))
        .attr(
            Attribute::optional("client_binary", Type::String)
                .describe("The command-line client (default `mariadb`)."),
        )
        .attr(Attribute::computed("digest", Type::String).describe("Manifest digest."))
        .attr(Attribute::computed("image_uri", Type::String).describe(
            "`registry/repository@sha256:…`: what deployments should reference.",
        ))
        .attr(Attribute::computed("data_fingerprint", Type::String).describe(
            "SHA-256 over the package's data-population content (tool, ext-data jar and JDBC \
             drivers, from the zip's central directory), the environment, schema, user and \
             extra properties, the server version, the base (by digest or content) and the \
             data directory settings; recorded in the image. A change builds a new image.",
        ))
        .attr(Attribute::computed("server_version", Type::String).describe(
            "The version of the server that wrote the data files (`10.11.6-MariaDB-0+deb12u1`).",
        )),
    )
}
