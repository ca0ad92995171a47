//! Compiles the wire definitions at build time with a vendored `protoc`, so a
//! fresh machine needs nothing installed beyond the Rust toolchain.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    std::env::set_var("PROTOC", protoc);
    let protos = [
        std::path::PathBuf::from("proto/tfplugin6.proto"),
        std::path::PathBuf::from("proto/go_plugin.proto"),
    ];
    let includes = [
        std::path::PathBuf::from("proto"),
        protoc_bin_vendored::include_path()?,
    ];
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_protos(&protos, &includes)?;
    println!("cargo:rerun-if-changed=proto");
    Ok(())
}
