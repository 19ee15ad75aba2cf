//! Compiles the committed Mesos `.proto` files (see `gen_proto.py`) into Rust
//! with prost-build. `protoc` is not needed: `protox` parses the files in pure
//! Rust and hands prost-build a `FileDescriptorSet`, which is also written to
//! `OUT_DIR/mesos.fds` for the JSON codec's reflection.

use prost::Message;
use std::error::Error;
use std::path::PathBuf;

const PROTO_ROOT: &str = "proto";
const PROTO_FILES: [&str; 2] = [
    "proto/mesos/v1/mesos.proto",
    "proto/mesos/v1/scheduler/scheduler.proto",
];

fn main() -> Result<(), Box<dyn Error>> {
    println!("cargo:rerun-if-changed={PROTO_ROOT}");
    for file in PROTO_FILES {
        println!("cargo:rerun-if-changed={file}");
    }

    let fds = protox::compile(PROTO_FILES, [PROTO_ROOT])?;
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out_dir.join("mesos.fds"), fds.encode_to_vec())?;
    prost_build::Config::new()
        // Deterministic encoding of map fields (TaskInfo.limits, ...): the
        // same message always serializes to the same bytes.
        .btree_map(["."])
        // `prost::Name` gives each type its full protobuf name, which the
        // JSON codec looks up in the descriptors.
        .enable_type_names()
        .compile_fds(fds)?;
    Ok(())
}
