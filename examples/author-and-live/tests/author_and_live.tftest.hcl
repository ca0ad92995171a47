# `terraform test` for the Author and Live example: run by
# terraform-tests/tests/examples.rs against a private moto (ECS, RDS, MQ, ECR),
# the local registry behind the emulated ECR, a MariaDB standing in for the
# temporary instances through the tunnel, and a Consul double.

run "plans_without_building_anything" {
  command = plan

  assert {
    condition     = ep_deployment.env.kind == "author_and_live"
    error_message = "The deployment kind is wrong."
  }
}

run "applies_the_whole_chain" {
  command = apply

  assert {
    condition     = ep_deployment.env.status == "ready"
    error_message = "The deployment is not ready."
  }

  assert {
    condition     = toset(keys(ep_deployment.env.services)) == toset(["author/cm", "live/cortex", "live/search"])
    error_message = "A service is missing."
  }

  assert {
    condition = alltrue([
      for stack in ["author", "live"] :
      endswith(ep_deployment.env.endpoints[stack].database_url, "/commerce_${stack}?characterEncoding=UTF-8") &&
      startswith(ep_deployment.env.endpoints[stack].jms_url, "ssl://")
    ])
    error_message = "A stack's endpoints are missing."
  }

  assert {
    condition     = contains(ep_endpoint_publication.env.keys, "ep/${var.name}/author/EP_DB_URL") && contains(ep_endpoint_publication.env.keys, "ep/${var.name}/live/EP_JMS_URL")
    error_message = "The stacks' endpoints were not published."
  }

  assert {
    condition     = ep_deployment.env.endpoints["live"].search_master_url == "http://live-search.${var.name}.ep.internal:8082/search" && contains(ep_endpoint_publication.env.keys, "ep/${var.name}/live/EP_SEARCH_MASTER_URL")
    error_message = "Live's search is not found by its discovery name, or its URL was not published."
  }

  assert {
    condition     = ep_deployment.env.author.database.snapshot_identifier == ep_rds_snapshot.data["author"].snapshot_identifier
    error_message = "The author database does not come from the author snapshot."
  }
}
