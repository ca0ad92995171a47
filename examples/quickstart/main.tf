# Quickstart: point the provider at an AWS endpoint (moto locally, or real AWS
# when aws_endpoint is null), read an Elastic Path deployment package, and
# build and push the Cortex image from it to ECR without a Docker daemon.
#
#   scripts/demo   # builds everything, starts the local emulators, applies this

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
  description = "Path to an Elastic Path deployment package (.zip or unpacked directory)."
  type        = string
}

variable "aws_endpoint" {
  description = "Endpoint of an AWS emulator (moto, LocalStack); null for real AWS."
  type        = string
  default     = null
}

variable "repository" {
  description = "ECR repository of the Cortex image."
  type        = string
  default     = "ep/cortex"
}

variable "registry_endpoint" {
  description = "Address of the registry behind an emulated ECR (null for real ECR)."
  type        = string
  default     = null
}

provider "ep" {
  region = "us-east-1"

  endpoints {
    ecr = var.aws_endpoint
    rds = var.aws_endpoint
    ecs = var.aws_endpoint
    mq  = var.aws_endpoint
    ssm = var.aws_endpoint
    sts = var.aws_endpoint

    registry = var.registry_endpoint
  }
}

data "ep_deployment_package" "release" {
  path = var.deployment_package
}

data "ep_caller_identity" "current" {}

resource "ep_image" "cortex" {
  repository         = var.repository
  create_repository  = true
  tags               = [data.ep_deployment_package.release.version]
  deployment_package = data.ep_deployment_package.release.path
  service            = "cortex"
  env = {
    EP_CONTAINER_MEM = "4608"
  }
}

output "package_version" {
  value = data.ep_deployment_package.release.version
}

output "applications" {
  description = "Each application in the package with its WAR's size and digest."
  value = {
    for name, app in data.ep_deployment_package.release.applications :
    name => { path = app.path, size = app.size, sha256 = app.sha256 }
  }
}

output "environments" {
  value = data.ep_deployment_package.release.environments
}

output "package_fingerprint" {
  value = data.ep_deployment_package.release.fingerprint
}

output "aws_account" {
  value = data.ep_caller_identity.current.account_id
}

output "cortex_image" {
  description = "The Cortex image, pinned by digest: what a deployment references."
  value       = ep_image.cortex.image_uri
}
