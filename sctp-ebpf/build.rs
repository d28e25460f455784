use which::which;

/// Rebuild when bpf-linker changes (it is not a cargo dependency, so cargo would not know).
fn main() {
    if let Ok(linker) = which("bpf-linker") {
        println!("cargo:rerun-if-changed={}", linker.display());
    }
}
