//! What `cargo xtask vm` and the VM's `/init` (this package's binary) agree on.

/// `/init` prints this first: the guest's kernel is up (a host whose KVM cannot run the
/// guest never sees it).
pub const STARTED: &str = "vm-init: started";

/// `/init` prints this with the command's exit status before it powers off.
pub const MARKER: &str = "SCTP_XDP_VM_EXIT=";

/// Files of the initramfs: the command line to run (a shell command line) and the
/// directory to run it in, as plain data, so nothing needs quoting.
pub const COMMAND_FILE: &str = "command";
pub const CWD_FILE: &str = "cwd";
/// Where the modules wait, numbered in the order they load.
pub const MODULES_DIR: &str = "modules";
