# `terraform test` for the single-instance example: run by
# terraform-tests/tests/examples.rs against a private moto (ECR, ECS), the
# local registry behind the emulated ECR, the machine's MariaDB server (which
# the database image is populated with) and a Consul double.

run "plans_without_building_anything" {
  command = plan

  assert {
    condition     = ep_deployment.dev.kind == "single_instance"
    error_message = "The deployment kind is wrong."
  }
}

run "applies_images_database_and_environment" {
  command = apply

  assert {
    condition     = ep_deployment.dev.status == "ready"
    error_message = "The deployment is not ready."
  }

  assert {
    condition     = ep_deployment.dev.single_instance.database_image == ep_database_image.data.image_uri && strcontains(ep_database_image.data.image_uri, "/${var.name}/mysql@sha256:")
    error_message = "The environment does not run the database image that was built."
  }

  assert {
    condition     = ep_deployment.dev.endpoints["single"].database_url == "jdbc:mysql://mysql:3306/commercedb?characterEncoding=UTF-8" && ep_deployment.dev.endpoints["single"].jms_url == "tcp://activemq:61616"
    error_message = "The services are not wired to the task's database and broker."
  }

  assert {
    condition     = length(ep_deployment.dev.task_definitions) == 1 && contains(keys(ep_deployment.dev.task_definitions), "single/instance") && ep_deployment.dev.databases == null && ep_deployment.dev.brokers == null
    error_message = "A single-instance environment is one task definition, with no RDS or Amazon MQ."
  }

  assert {
    condition     = ep_database_image.data.server_version != "" && length(ep_database_image.data.data_fingerprint) == 64
    error_message = "The database image does not record what made it."
  }

  assert {
    condition     = contains(ep_endpoint_publication.dev.keys, "ep/${var.name}/single/EP_DB_URL") && contains(ep_endpoint_publication.dev.keys, "ep/${var.name}/single/EP_JMS_URL")
    error_message = "The environment's endpoints were not published."
  }
}
