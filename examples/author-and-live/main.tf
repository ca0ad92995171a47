# An Elastic Path Author and Live environment from one deployment package, as
# CloudDeploy's pipeline made it, in one apply:
#
#   1. the service images (a Tomcat base from a local root filesystem, then
#      cm, cortex and search on it), pushed to ECR;
#   2. the Author and Live data: RDS snapshots populated by the package's
#      Data Population tool;
#   3. the deployment: per stack a database restored from its snapshot and an
#      ActiveMQ broker, and the services on ECS Fargate wired to them;
#   4. the stacks' database and broker endpoints published into Consul, where
#      the images read them at start (what the RDSEndpointFunction and
#      ActiveMqEndpointFunction Lambdas did).
#
# Against real AWS leave aws_endpoint and registry_endpoint null. The Data
# Population tool runs on this machine and must reach the temporary instances:
# set tunnel_host/tunnel_port to the local end of a tunnel into the DB subnets.

terraform {
  required_version = ">= 1.13"
  required_providers {
    ep = {
      source  = "ep-platform/ep"
      version = "~> 0.1"
    }
  }
}

variable "name" {
  description = "Deployment name: prefix of every part."
  type        = string
  default     = "demo"
}

variable "deployment_package" {
  description = "Path to the Elastic Path deployment package (.zip or unpacked directory)."
  type        = string
}

variable "base_rootfs" {
  description = "Directory holding the root filesystem of the Tomcat base image."
  type        = string
}

variable "subnet_ids" {
  description = "Subnets of the tasks and brokers."
  type        = list(string)
}

variable "vpc_id" {
  description = "VPC of the Cloud Map namespace the services register in, so the Tomcats find search by name; null: no service discovery (then give EP_SEARCH_MASTER_URL in the services' environment)."
  type        = string
  default     = null
}

variable "security_group_ids" {
  description = "Security groups of the tasks, databases and brokers."
  type        = list(string)
}

variable "database_password" {
  description = "Password of the application user the snapshots hold."
  type        = string
  sensitive   = true
}

variable "database_password_secret_arns" {
  description = "Per stack, the SSM parameter or Secrets Manager secret holding that password."
  type        = map(string)
}

variable "broker_password" {
  description = "Password of the brokers' `ep` user (12–250 characters, no commas)."
  type        = string
  sensitive   = true
}

variable "broker_password_version" {
  description = "Bump it when broker_password changes: the password is write-only, so Terraform cannot see it change."
  type        = number
  default     = 1
}

variable "master_username" {
  description = "Master user of the temporary instances (null: the default)."
  type        = string
  default     = null
}

variable "master_password" {
  description = "Master password of the temporary instances (null: generated)."
  type        = string
  default     = null
  sensitive   = true
}

variable "tunnel_host" {
  description = "Local end of a tunnel to the temporary DB instances (null: their endpoint)."
  type        = string
  default     = null
}

variable "tunnel_port" {
  description = "Port of the tunnel's local end."
  type        = number
  default     = 3306
}

variable "consul_address" {
  description = "Consul agent, host:port or a URL."
  type        = string
  default     = "127.0.0.1:8500"
}

variable "consul_token" {
  description = "Consul ACL token allowed to write under ep/<name>/ (null: CONSUL_HTTP_TOKEN)."
  type        = string
  default     = null
  sensitive   = true
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

provider "ep" {
  region = "us-east-1"
  endpoints {
    ecr      = var.aws_endpoint
    ecs      = var.aws_endpoint
    rds      = var.aws_endpoint
    mq       = var.aws_endpoint
    sts      = var.aws_endpoint
    registry = var.registry_endpoint

    servicediscovery = var.aws_endpoint
  }
}

data "ep_deployment_package" "release" {
  path = var.deployment_package
}

# 1. Images.
resource "ep_image" "tomcat" {
  repository         = "${var.name}/tomcat"
  create_repository  = true
  deployment_package = var.deployment_package
  base               = "dir:${var.base_rootfs}"
  layer {
    source      = "database/jdbc/*.jar"
    destination = "/usr/local/tomcat/lib"
  }
  exposed_ports = ["8080"]
}

resource "ep_image" "service" {
  for_each = toset(["cm", "cortex", "search"])

  repository         = "${var.name}/${each.key}"
  create_repository  = true
  tags               = [data.ep_deployment_package.release.version]
  deployment_package = var.deployment_package
  service            = each.key
  base               = ep_image.tomcat.image_uri
}

# 2. Data.
resource "ep_rds_snapshot" "data" {
  for_each = toset(["author", "live"])

  name               = "${var.name}-${each.key}"
  deployment_package = var.deployment_package
  environment        = each.key
  schema_name        = "commerce_${each.key}"
  database_username  = "ep_${each.key}"
  database_password  = var.database_password
  master_username    = var.master_username
  master_password    = var.master_password

  dynamic "tunnel" {
    for_each = var.tunnel_host == null ? [] : [1]
    content {
      host = var.tunnel_host
      port = var.tunnel_port
    }
  }

  lifecycle {
    create_before_destroy = true
  }
}

# 3. The environment.
resource "ep_deployment" "env" {
  name               = var.name
  kind               = "author_and_live"
  subnet_ids         = var.subnet_ids
  security_group_ids = var.security_group_ids

  # Every service registers as <stack>-<service>.<name>.ep.internal; the
  # Tomcats get EP_SEARCH_MASTER_URL to their stack's search.
  dynamic "service_discovery" {
    for_each = var.vpc_id == null ? [] : [var.vpc_id]
    content {
      vpc_id = service_discovery.value
    }
  }

  author {
    database {
      snapshot_identifier = ep_rds_snapshot.data["author"].snapshot_identifier
      schema_name         = ep_rds_snapshot.data["author"].schema_name
      username            = ep_rds_snapshot.data["author"].database_username
      password_secret_arn = var.database_password_secret_arns["author"]
    }
    broker {
      user {
        username            = "ep"
        password_wo         = var.broker_password
        password_wo_version = var.broker_password_version
      }
    }
  }

  live {
    database {
      snapshot_identifier = ep_rds_snapshot.data["live"].snapshot_identifier
      schema_name         = ep_rds_snapshot.data["live"].schema_name
      username            = ep_rds_snapshot.data["live"].database_username
      password_secret_arn = var.database_password_secret_arns["live"]
    }
    broker {
      user {
        username            = "ep"
        password_wo         = var.broker_password
        password_wo_version = var.broker_password_version
      }
    }
  }

  service {
    name  = "cm"
    stack = "author"
    image = ep_image.service["cm"].image_uri
  }
  service {
    name  = "cortex"
    stack = "live"
    image = ep_image.service["cortex"].image_uri
  }
  service {
    name  = "search"
    stack = "live"
    image = ep_image.service["search"].image_uri
  }
}

# 4. The endpoints in the config store: ep/<name>/author/EP_DB_URL, …
resource "ep_endpoint_publication" "env" {
  prefix    = "ep/${var.name}/"
  endpoints = ep_deployment.env.endpoints

  consul {
    address = var.consul_address
    token   = var.consul_token
  }
}

output "endpoints" {
  description = "Per stack, the database and broker endpoints the services were given."
  value       = ep_deployment.env.endpoints
}

output "published_keys" {
  description = "The config store keys the publication owns."
  value       = ep_endpoint_publication.env.keys
}

output "services" {
  description = "ECS service ARNs by stack/service."
  value       = ep_deployment.env.services
}
