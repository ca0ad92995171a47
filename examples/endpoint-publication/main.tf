# Publish an Author and Live deployment's endpoints into Consul, where the
# images read them at start through envconsul:
#
#   envconsul -prefix ep/author/author/ -sanitize -upcase <command>
#
# The endpoints below have the shape of ep_deployment.endpoints (stack →
# endpoint name → value); in a real configuration pass
# `ep_deployment.<name>.endpoints` as it is.

terraform {
  required_version = ">= 1.13"
  required_providers {
    ep = {
      source  = "ep-platform/ep"
      version = "~> 0.1"
    }
  }
}

variable "consul_address" {
  description = "Consul agent, host:port or a URL."
  type        = string
  default     = "127.0.0.1:8500"
}

variable "consul_token" {
  description = "Consul ACL token allowed to write under the prefix (null: CONSUL_HTTP_TOKEN)."
  type        = string
  default     = null
  sensitive   = true
}

variable "database_password" {
  description = "The application user's database password, published as EP_DB_PASS."
  type        = string
  sensitive   = true
}

locals {
  endpoints = {
    author = {
      database_address = "author-db.example.internal"
      database_port    = 3306
      database_url     = "jdbc:mysql://author-db.example.internal:3306/commercedb"
      jms_url          = "failover:(ssl://b-1234.mq.eu-west-1.amazonaws.com:61617)"
    }
    live = {
      database_address = "live-db.example.internal"
      database_port    = 3306
      database_url     = "jdbc:mysql://live-db.example.internal:3306/commercedb"
      jms_url          = "failover:(ssl://b-5678.mq.eu-west-1.amazonaws.com:61617)"
    }
  }
}

provider "ep" {}

resource "ep_endpoint_publication" "deployment" {
  prefix    = "ep/"
  endpoints = local.endpoints
  sensitive_values = {
    "author/EP_DB_PASS" = var.database_password
    "live/EP_DB_PASS"   = var.database_password
  }

  consul {
    address = var.consul_address
    token   = var.consul_token
  }
}

# What the Author stack's images will see (prefix ep/author/).
data "ep_config_store" "author" {
  prefix         = "ep/author/"
  sensitive_keys = ["EP_DB_PASS"]
  consul {
    address = var.consul_address
    token   = var.consul_token
  }
  depends_on = [ep_endpoint_publication.deployment]
}

output "published_keys" {
  value = ep_endpoint_publication.deployment.keys
}

output "author_db_url" {
  value = data.ep_config_store.author.values["EP_DB_URL"]
}
