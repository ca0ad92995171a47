# Author and Live RDS snapshots from one deployment package: what the
# CreateRdsSnapshotAuthor and CreateRdsSnapshotLive Jenkins jobs made. Each
# snapshot comes from a temporary MySQL instance populated by the package's
# Data Population tool; the instance is deleted afterwards. Author and Live
# environments then restore their databases from these snapshots.
#
# The tool runs on the machine running Terraform (runner "local") and must
# reach the instance: set tunnel_host/tunnel_port to the local end of an SSH
# tunnel or proxy into the DB subnets, or leave them null when this machine
# can reach the instance's endpoint directly.

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

variable "database_password" {
  description = "Password of the application user the snapshots hold (what deployments connect with)."
  type        = string
  sensitive   = true
}

variable "db_subnet_group_name" {
  description = "DB subnet group for the temporary instances."
  type        = string
  default     = null
}

variable "vpc_security_group_ids" {
  description = "Security groups for the temporary instances."
  type        = list(string)
  default     = null
}

variable "tunnel_host" {
  description = "Local end of a tunnel to the instances (null: connect to their endpoint)."
  type        = string
  default     = null
}

variable "tunnel_port" {
  description = "Port of the tunnel's local end."
  type        = number
  default     = 3306
}

provider "ep" {
  region = "eu-west-1"
}

locals {
  environments = {
    author = "commerce_author"
    live   = "commerce_live"
  }
}

resource "ep_rds_snapshot" "db" {
  for_each = local.environments

  name               = "ep-${each.key}"
  deployment_package = var.deployment_package
  environment        = each.key
  schema_name        = each.value
  database_password  = var.database_password

  engine_version         = "8.0"
  instance_class         = "db.t3.medium"
  allocated_storage      = 20
  db_subnet_group_name   = var.db_subnet_group_name
  vpc_security_group_ids = var.vpc_security_group_ids

  dynamic "tunnel" {
    for_each = var.tunnel_host == null ? [] : [1]
    content {
      host = var.tunnel_host
      port = var.tunnel_port
    }
  }

  phase_timeouts {
    instance = "40m"
    tool     = "60m"
    snapshot = "20m"
  }

  lifecycle {
    # A new package takes the new snapshot before the old one is deleted.
    create_before_destroy = true
  }
}

output "snapshots" {
  description = "Snapshot identifier per environment, for the deployments to restore."
  value       = { for env, s in ep_rds_snapshot.db : env => s.snapshot_identifier }
}
