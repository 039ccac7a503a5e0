//! Compiles proto/greet.proto. A fresh machine has no `protoc`: the vendored one is used
//! unless PROTOC says otherwise.

fn main() {
    if std::env::var_os("PROTOC").is_none() {
        let protoc = protoc_bin_vendored::protoc_bin_path().expect("vendored protoc");
        // SAFETY: build scripts are single-threaded.
        unsafe { std::env::set_var("PROTOC", protoc) };
    }
    println!("cargo:rerun-if-changed=proto/greet.proto");
    tonic_prost_build::compile_protos("proto/greet.proto").expect("greet.proto compiles");
}
