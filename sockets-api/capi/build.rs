//! Compiles the C shim: the variadic fcntl/ioctl entry points and packetdrill's
//! `packetdrill_interface_init`, which fills packetdrill's struct of function pointers.
fn main() {
    println!("cargo:rerun-if-changed=csrc/shim.c");
    println!("cargo:rerun-if-changed=include/tapstack.h");
    cc::Build::new().file("csrc/shim.c").include("include").warnings(true).compile("tapstack_shim");
}
