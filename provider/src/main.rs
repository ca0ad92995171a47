//! The `terraform-provider-ep` plugin binary.

#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    // Terraform starts the plugin without arguments; people ask it for its version.
    if std::env::args().nth(1).as_deref() == Some("--version") {
        println!(
            "terraform-provider-ep {}",
            ep_imagebuild::build_info::version_line()
        );
        return std::process::ExitCode::SUCCESS;
    }
    terraform_provider_ep::plugin::run(terraform_provider_ep::resources::provider_service)
}
