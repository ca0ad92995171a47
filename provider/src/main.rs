//! The `terraform-provider-ep` plugin binary.

fn main() -> std::process::ExitCode {
    terraform_provider_ep::plugin::run(terraform_provider_ep::resources::provider_service)
}
