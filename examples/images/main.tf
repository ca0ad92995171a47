# Service images: a Tomcat base built from a local root filesystem (no Docker
# daemon), then the five Elastic Path service images on top of it, pushed to
# ECR. Apply with an emulated ECR:
#
#   terraform apply -var deployment_package=... -var base_rootfs=... \
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
  description = "Path to the Elastic Path deployment package (.zip or directory)."
  type        = string
}

variable "base_rootfs" {
  description = "Directory holding the root filesystem of the base image (OS, JDK, Tomcat)."
  type        = string
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
  description = "ECR repositories are named <prefix>/<image>."
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

resource "ep_image" "tomcat" {
  repository         = "${var.repository_prefix}/tomcat"
  create_repository  = true
  tags               = ["9"]
  deployment_package = var.deployment_package
  base               = "dir:${var.base_rootfs}"
  layer {
    source      = "database/jdbc/*.jar"
    destination = "/usr/local/tomcat/lib"
  }
  env = {
    CATALINA_HOME = "/usr/local/tomcat"
  }
  exposed_ports = ["8080"]
}

locals {
  services = {
    cortex      = { memory = "4608" }
    cm          = { memory = "3072" }
    batch       = { memory = "3072" }
    integration = { memory = "3072" }
    search      = { memory = "3072" }
  }
}

resource "ep_image" "service" {
  for_each = local.services

  repository         = "${var.repository_prefix}/${each.key}"
  create_repository  = true
  tags               = [data.ep_deployment_package.release.version]
  deployment_package = var.deployment_package
  service            = each.key
  base               = ep_image.tomcat.image_uri
  env = {
    EP_CONTAINER_MEM = each.value.memory
  }
}

output "images" {
  description = "Image URIs by service, pinned by digest."
  value       = { for name, image in ep_image.service : name => image.image_uri }
}
