# Database images for the single-instance developer environment: what the
# BuildMySQL Jenkins job made, without a Docker daemon. For each environment a
# local MariaDB server (Debian's mariadb-server on the machine running
# Terraform) is populated by the package's Data Population tool, shut down,
# and its data directory pushed as one layer on a MariaDB base image.
#
# The ECR repository is created (and removed on destroy when empty). Apply
# with an emulated ECR:
#
#   terraform apply -var deployment_package=... -var base=dir:/path/to/rootfs \
#     -var aws_endpoint=http://127.0.0.1:5000 -var registry_endpoint=http://127.0.0.1:5002

terraform {
  required_version = ">= 1.13"
  required_providers {
    ep = {
      source  = "ep-platform/ep"
      version = "~> 0.1"
    }
  }
}

variable "deployment_package" {
  description = "Path to the Elastic Path deployment package (.zip or unpacked directory)."
  type        = string
}

variable "base" {
  description = "The MariaDB image the data goes on (e.g. a mirror of mariadb:10.11 in ECR), or dir:/tar: a local root filesystem."
  type        = string
}

variable "database_password" {
  description = "Password of the application user in the images (what the developer environment connects with)."
  type        = string
  sensitive   = true
  default     = "ep-developer"
}

variable "environments" {
  description = "Environments of the package to build a database image for."
  type        = set(string)
  default     = ["author", "live"]
}

variable "aws_endpoint" {
  description = "Endpoint of an AWS emulator; null for real AWS."
  type        = string
  default     = null
}

variable "registry_endpoint" {
  description = "Registry address behind an emulated ECR; null for real ECR."
  type        = string
  default     = null
}

variable "repository_prefix" {
  description = "The ECR repository is <prefix>/mysql."
  type        = string
  default     = "ep"
}

provider "ep" {
  region = "us-east-1"
  endpoints {
    ecr      = var.aws_endpoint
    sts      = var.aws_endpoint
    registry = var.registry_endpoint
  }
}

data "ep_deployment_package" "release" {
  path = var.deployment_package
}

resource "ep_database_image" "db" {
  for_each = var.environments

  repository         = "${var.repository_prefix}/mysql"
  create_repository  = true
  tags               = ["${each.key}-${data.ep_deployment_package.release.version}"]
  base               = var.base
  deployment_package = var.deployment_package
  environment        = each.key
  database_password  = var.database_password
}

output "images" {
  description = "Environment → image URI (by digest) for the developer environment."
  value       = { for env, image in ep_database_image.db : env => image.image_uri }
}
