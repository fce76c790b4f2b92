//! Generates the gRPC code with a vendored `protoc`, so no system install is needed.
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    // SAFETY of set_var is not a concern here: build scripts are single-threaded.
    std::env::set_var("PROTOC", protoc);
    tonic_prost_build::configure().compile_protos(
        &[
            "proto/kumo/control/v1/control.proto",
            "proto/kumo/agent/v1/agent.proto",
        ],
        &["proto"],
    )?;
    println!("cargo:rerun-if-changed=proto");
    Ok(())
}
