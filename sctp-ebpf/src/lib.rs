//! Empty library target: lets sctp-user name this crate as a build dependency, so cargo
//! rebuilds the controller when the XDP program changes.
#![no_std]

/// What every program binary of this crate needs besides its entry points: the panic
/// handler (a verified program cannot panic; the handler only satisfies `no_std`), the
/// licence the kernel asks of programs that call GPL helpers, and on the host, where
/// `cargo clippy --workspace` checks the binaries with std, an empty `main`.
#[macro_export]
macro_rules! program_boilerplate {
    () => {
        #[cfg(target_arch = "bpf")]
        #[panic_handler]
        fn panic(_info: &core::panic::PanicInfo) -> ! {
            loop {}
        }

        #[link_section = "license"]
        #[no_mangle]
        static LICENSE: [u8; 4] = *b"GPL\0";

        #[cfg(not(target_arch = "bpf"))]
        fn main() {}
    };
}
