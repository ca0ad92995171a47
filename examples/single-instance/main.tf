# A single-instance developer environment from one deployment package, as
# CloudDeploy's DeploySingleInstanceDevEnvironment job made it, in one apply:
#
#   1. the service images (a Tomcat base from a local root filesystem, then
#      cm, cortex and search on it), pushed to ECR;
#   2. the database image: the package's Data Population tool run against a
#      local MariaDB, its data directory pushed as a layer on a MariaDB base
#      (what the BuildMySQL job did with Docker);
#   3. one ECS task on the EC2 launch type running every service beside that
#      database and an ActiveMQ container, wired together on the task's
#      bridge network. No RDS, no Amazon MQ;
#   4. its database and broker endpoints published into Consul, where the
#      images read them at start.
#
# The cluster must have a container instance with room for the task (about
# 8 GiB); give its ARN. Against real AWS leave aws_endpoint and
# registry_endpoint null.

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
  description = "Deployment name: prefix of the repositories, the task definition and the service."
  type        = string
  default     = "dev"
}

variable "deployment_package" {
  description = "Path to the Elastic Path deployment package (.zip or unpacked directory)."
  type        = string
}

variable "base_rootfs" {
  description = "Directory holding the root filesystem of the Tomcat base image."
  type        = string
}

variable "database_base" {
  description = "The MariaDB image the data goes on (a mirror of mariadb:10.11 in ECR), or dir:/tar: a local root filesystem."
  type        = string
}

variable "environment" {
  description = "Environment of the package whose data the developer database holds."
  type        = string
  default     = "author"
}

variable "database_password" {
  description = "Password of the application user in the database image."
  type        = string
  sensitive   = true
  default     = "ep-developer"
}

variable "database_password_secret_arn" {
  description = "SSM parameter or Secrets Manager secret holding database_password; the services get it as the secret EP_DB_PASS."
  type        = string
}

variable "activemq_image" {
  description = "ActiveMQ image (OpenWire on 61616, console on 8161), e.g. a mirror of apache/activemq-classic in ECR."
  type        = string
}

variable "cluster_arn" {
  description = "ECS cluster whose container instance runs the environment."
  type        = string
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
    sts      = var.aws_endpoint
    registry = var.registry_endpoint
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

# 2. The database image.
resource "ep_database_image" "data" {
  repository         = "${var.name}/mysql"
  create_repository  = true
  tags               = ["${var.environment}-${data.ep_deployment_package.release.version}"]
  base               = var.database_base
  deployment_package = var.deployment_package
  environment        = var.environment
  database_password  = var.database_password
}

# 3. The environment.
resource "ep_deployment" "dev" {
  name        = var.name
  kind        = "single_instance"
  cluster_arn = var.cluster_arn

  single_instance {
    database_image      = ep_database_image.data.image_uri
    activemq_image      = var.activemq_image
    password_secret_arn = var.database_password_secret_arn
  }

  service {
    name  = "cm"
    stack = "single"
    image = ep_image.service["cm"].image_uri
  }
  service {
    name  = "cortex"
    stack = "single"
    image = ep_image.service["cortex"].image_uri
  }
  service {
    name  = "search"
    stack = "single"
    image = ep_image.service["search"].image_uri
  }
}

# 4. The endpoints in the config store: ep/<name>/single/EP_DB_URL, …
resource "ep_endpoint_publication" "dev" {
  prefix    = "ep/${var.name}/"
  endpoints = ep_deployment.dev.endpoints

  consul {
    address = var.consul_address
    token   = var.consul_token
  }
}

output "endpoints" {
  description = "The database and broker the services were given, as the task's containers reach them."
  value       = ep_deployment.dev.endpoints
}

output "task_definition" {
  description = "The task definition ARN running the environment."
  value       = ep_deployment.dev.task_definitions["single/instance"]
}
