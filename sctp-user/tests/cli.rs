//! The command line's contract for bad input: one clear line on stderr saying what to do,
//! a non-zero exit, never a panic.

use std::process::{Command, Output};

fn sctp_user(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sctp-user"))
        .args(args)
        .output()
        .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

fn kernel_has_sctp() -> bool {
    // SAFETY: socket(2) probe, closed at once.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_SEQPACKET, 132) };
    if fd >= 0 {
        // SAFETY: closing the probe.
        unsafe { libc::close(fd) };
    }
    fd >= 0
}

#[test]
fn a_missing_capture_file_is_one_clear_line() {
    let o = sctp_user(&["inspect", "--pcap", "/nonexistent/file.pcap"]);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(e.starts_with("sctp-user: cannot open /nonexistent/file.pcap"), "{e}");
    assert_eq!(e.trim_end().lines().count(), 1, "{e}");
}

#[test]
fn a_file_that_is_not_a_capture_is_rejected_clearly() {
    let path = std::env::temp_dir().join(format!("not-a-capture-{}.pcap", std::process::id()));
    std::fs::write(&path, b"this is not a pcap file at all").unwrap();
    let o = sctp_user(&["inspect", "--pcap", path.to_str().unwrap()]);
    std::fs::remove_file(&path).unwrap();
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(e.contains("not a pcap or pcapng file"), "{e}");
    assert!(!e.contains("panicked"), "{e}");
}

#[test]
fn bad_arguments_are_refused_with_usage() {
    for args in [
        &["run"][..],
        &["run", "--iface", "lo", "--listen", "not-an-address"],
        &["run", "--iface", "lo", "--flow-capacity", "0"],
        &["client", "--connect", "198.18.0.2:36412", "--associations", "0"],
        &["bench", "--rounds", "0"],
    ] {
        let o = sctp_user(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains("error:"), "{args:?}: {}", stderr(&o));
    }
}

#[test]
#[ignore = "needs root: run by cargo xtask test"]
fn a_missing_interface_is_named() {
    assert!(is_root(), "this test needs root: run it through `cargo xtask test`");
    let o = sctp_user(&["run", "--no-echo", "--iface", "no-such-if0"]);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(e.contains("no interface named \"no-such-if0\""), "{e}");
    assert_eq!(e.trim_end().lines().count(), 1, "{e}");
}

#[test]
fn without_root_loading_says_to_use_sudo() {
    if is_root() {
        // Drop to nobody for this one command when we are root.
        let o = Command::new("setpriv")
            .args([
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                env!("CARGO_BIN_EXE_sctp-user"),
            ])
            .args(["inspect", "--pcap", "/dev/null"])
            .output();
        let Ok(o) = o else {
            eprintln!("SKIPPED without_root_loading_says_to_use_sudo: no setpriv");
            return;
        };
        let e = stderr(&o);
        assert!(!o.status.success());
        assert!(e.contains("needs root") && e.contains("sudo"), "{e}");
        return;
    }
    let o = sctp_user(&["inspect", "--pcap", "/dev/null"]);
    assert!(stderr(&o).contains("needs root"), "{}", stderr(&o));
}

#[test]
fn a_kernel_without_sctp_gets_one_line_saying_what_to_do() {
    if kernel_has_sctp() {
        eprintln!("SKIPPED a_kernel_without_sctp_gets_one_line_saying_what_to_do: this kernel has SCTP");
        return;
    }
    let o = sctp_user(&["run", "--iface", "lo", "--listen", "127.0.0.1:36412"]);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(
        e.contains("this kernel has no SCTP") && e.contains("modprobe sctp") && e.contains("--no-echo"),
        "{e}"
    );
    assert_eq!(e.trim_end().lines().count(), 1, "{e}");
}

#[test]
#[ignore = "needs root: run by cargo xtask test"]
fn directories_and_missing_directories_are_named() {
    assert!(is_root(), "run by cargo xtask test, as root");
    let o = sctp_user(&["inspect", "--pcap", "/tmp"]);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(e.contains("/tmp is a directory: give a pcap or pcapng file"), "{e}");
    assert_eq!(e.trim_end().lines().count(), 1, "{e}");
    let o = sctp_user(&["bench", "--json", "/tmp"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("--json /tmp is a directory"), "{}", stderr(&o));
    let o = sctp_user(&["bench", "--json", "/missing/dir/x.json"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("directory /missing/dir does not exist"), "{}", stderr(&o));
    assert!(!std::path::Path::new("/missing").exists(), "nothing created");
}
