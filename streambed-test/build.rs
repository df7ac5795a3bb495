//! Tells the crate which target it is built for, so that [`process::command`] can find the
//! runner (an emulator, say) that cargo was told to run this target's programs with.

fn main() {
    let target = std::env::var("TARGET").expect("cargo sets TARGET for build scripts");
    println!("cargo:rustc-env=STREAMBED_TEST_TARGET={target}");
    println!("cargo:rerun-if-changed=build.rs");
}
