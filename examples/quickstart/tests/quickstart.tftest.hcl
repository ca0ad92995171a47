# `terraform test` for the quickstart: run by terraform-tests/tests/examples.rs
# with `deployment_package` and `aws_endpoint` passed as variables.

run "reads_the_package" {
  command = plan

  assert {
    condition     = data.ep_deployment_package.release.version != null
    error_message = "The package version was not read."
  }

  assert {
    condition = alltrue([
      for app in ["cortex", "studio", "cm", "batch", "integration", "search"] :
      contains(keys(data.ep_deployment_package.release.applications), app)
    ])
    error_message = "An application WAR is missing from the package."
  }

  assert {
    condition     = contains(data.ep_deployment_package.release.environments, "author") && contains(data.ep_deployment_package.release.environments, "live")
    error_message = "The author and live environments are missing."
  }

  assert {
    condition     = length(data.ep_deployment_package.release.fingerprint) == 64
    error_message = "The fingerprint is not a SHA-256."
  }
}

run "applies_against_the_emulated_account" {
  command = apply

  assert {
    condition     = output.aws_account == "123456789012"
    error_message = "The provider did not reach the emulated AWS account."
  }

  assert {
    condition     = length(output.applications) >= 6
    error_message = "Expected six applications in the outputs."
  }

  assert {
    condition     = startswith(ep_image.cortex.digest, "sha256:") && endswith(output.cortex_image, ep_image.cortex.digest)
    error_message = "The Cortex image was not pushed by digest."
  }

  assert {
    condition     = ep_image.cortex.package_fingerprint == data.ep_deployment_package.release.fingerprint
    error_message = "The image does not record the package it was built from."
  }
}
