# Run against a Consul (or the test double): terraform test -var=consul_address=… -var=consul_token=…

variables {
  database_password = "example-Passw0rd"
}

run "publishes_author_and_live" {
  command = apply

  assert {
    condition     = length(ep_endpoint_publication.deployment.keys) == 10
    error_message = "four endpoints per stack and two passwords are published"
  }

  assert {
    condition     = output.author_db_url == "jdbc:mysql://author-db.example.internal:3306/commercedb"
    error_message = "the Author stack reads its own database URL"
  }

  assert {
    condition     = contains(ep_endpoint_publication.deployment.keys, "ep/live/EP_DB_HOSTNAME")
    error_message = "live endpoints are under ep/live/"
  }
}
