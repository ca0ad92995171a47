//! The `terraform-provider-ep` plugin binary.

#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    terraform_provider_ep::plugin::run(terraform_provider_ep::resources::provider_service)
}
