//! Standard output as a report's destination.

/// Lets a closed standard output (`sctp-user inspect ... | head`) end the process quietly
/// by SIGPIPE, as it ends other command-line tools. Rust ignores SIGPIPE (a write then
/// fails with EPIPE, which would end the report with an error line); only for commands
/// that write reports and no sockets: for `run`, SIGPIPE would end the service on any
/// peer's closed connection.
pub fn end_quietly_when_closed() {
    // SAFETY: restores the default disposition of one signal; no handler is involved.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}
