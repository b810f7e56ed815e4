//! Compiles `schema/*.capnp` with the `capnp` tool (Debian package `capnproto`).

fn main() {
    println!("cargo:rerun-if-changed=schema/node.capnp");
    if let Err(e) = capnpc::CompilerCommand::new()
        .src_prefix("schema")
        .file("schema/node.capnp")
        .run()
    {
        panic!(
            "compiling schema/node.capnp failed: {e}\n\
             The `capnp` compiler must be on PATH (Debian: apt-get install capnproto; \
             `make setup` installs it)."
        );
    }
}
