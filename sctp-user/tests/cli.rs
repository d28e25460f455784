//! The command line's contract for bad input: one clear line on stderr saying what to do,
//! a non-zero exit, never a panic.

use std::process::{Command, Output};

fn sctp_user(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sctp-user")).args(args).output().unwrap()
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
    assert!(e.contains("is not a capture: inspect reads pcap and pcapng files"), "{e}");
    assert_eq!(e.trim_end().lines().count(), 1, "{e}");
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
fn an_interface_name_the_kernel_could_not_give_is_refused_escaped() {
    for (args, shown) in [
        (&["rules", "show", "--iface", "../../../tmp"][..], r#""../../../tmp""#),
        (&["run", "--iface", "eth0\u{1b}[31m"], r#""eth0\u{1b}[31m""#),
        (&["run", "--iface", "lo,"], r#""""#),
        (&["flood", "--iface", "a-name-far-too-long", "--dst-mac", "02:00:00:00:00:01"], r#""a-name-far-too-long""#),
    ] {
        let o = sctp_user(args);
        let e = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {e}");
        assert!(e.contains(&format!("{shown} is not a valid interface name")), "{args:?}: {e}");
        assert!(!e.contains('\u{1b}'), "{args:?}: the escape is echoed raw: {e}");
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

/// Without the capabilities (as nobody, with none), loading names each one missing and
/// what it is for, in one line.
#[test]
fn without_the_capabilities_loading_names_them() {
    if is_root() {
        // Drop to nobody for this one command when we are root.
        let o = Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", env!("CARGO_BIN_EXE_sctp-user")])
            .args(["inspect", "--engine", "kernel", "--pcap", "/dev/null"])
            .output();
        let Ok(o) = o else {
            eprintln!("SKIPPED without_the_capabilities_loading_names_them: no setpriv");
            return;
        };
        assert!(!o.status.success());
        says_what_is_missing(&stderr(&o));
        return;
    }
    let o = sctp_user(&["inspect", "--engine", "kernel", "--pcap", "/dev/null"]);
    says_what_is_missing(&stderr(&o));
}

fn says_what_is_missing(e: &str) {
    for cap in ["CAP_BPF (", "CAP_NET_ADMIN (", "CAP_PERFMON ("] {
        assert!(e.contains(cap), "{cap}: {e}");
    }
    assert!(e.contains("run as root, or grant them"), "{e}");
    assert_eq!(e.trim_end().lines().count(), 1, "{e}");
}

#[test]
fn a_kernel_without_sctp_gets_one_line_saying_what_to_do() {
    if kernel_has_sctp() {
        eprintln!("SKIPPED a_kernel_without_sctp_gets_one_line_saying_what_to_do: this kernel has SCTP");
        return;
    }
    if sctp_user::sys::privilege::require(sctp_user::sys::privilege::LOAD).is_err() {
        // `run` names the missing capabilities first (without_the_capabilities_loading_names_them).
        eprintln!("SKIPPED a_kernel_without_sctp_gets_one_line_saying_what_to_do: no capabilities to load XDP");
        return;
    }
    let o = sctp_user(&["run", "--iface", "lo", "--listen", "127.0.0.1:36412"]);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(e.contains("this kernel has no SCTP") && e.contains("modprobe sctp") && e.contains("--no-echo"), "{e}");
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

/// Bytes of the first frame of [`own_capture`].
fn own_capture_first_frame_len() -> usize {
    use sctp_common::builder::{Chunk, SctpPacket, V4};
    SctpPacket::new(V4, 7, vec![Chunk::data(1, 0, 0, 18, 10)]).frame().len()
}

/// A pcap of our own: three DATA chunks in two packets.
fn own_capture() -> Vec<u8> {
    use pcap_file::pcap::{PcapPacket, PcapWriter};
    use sctp_common::builder::{Chunk, SctpPacket, V4};
    let mut w = PcapWriter::new(Vec::new()).unwrap();
    for chunks in [vec![Chunk::data(1, 0, 0, 18, 10)], vec![Chunk::data(2, 0, 1, 18, 10), Chunk::data(3, 0, 2, 18, 10)]]
    {
        let f = SctpPacket::new(V4, 7, chunks).frame();
        w.write_packet(&PcapPacket::new(std::time::Duration::ZERO, u32::try_from(f.len()).unwrap(), &f)).unwrap();
    }
    w.into_writer()
}

/// `--pcap -`, `/dev/stdin` and a FIFO: the capture is read once, in order; gzip and zstd
/// compressed captures open as they are.
#[test]
fn a_capture_is_read_from_a_pipe_a_fifo_or_compressed() {
    use std::io::Write as _;
    let capture = own_capture();
    let data_chunks = |path: &str, stdin: Option<&[u8]>| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_sctp-user"))
            .args(["inspect", "--format", "json", "--pcap", path])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut input = c.stdin.take().unwrap();
        if let Some(bytes) = stdin {
            input.write_all(bytes).unwrap();
        }
        drop(input);
        let out = c.wait_with_output().unwrap();
        assert!(out.status.success(), "{path}: {}", String::from_utf8_lossy(&out.stderr));
        let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        j["data"]["chunks"].as_u64().unwrap()
    };
    assert_eq!(data_chunks("-", Some(&capture)), 3);
    assert_eq!(data_chunks("/dev/stdin", Some(&capture)), 3);
    let fifo = std::env::temp_dir().join(format!("capture-fifo-{}", std::process::id()));
    let _ = std::fs::remove_file(&fifo);
    let c_path = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: mkfifo on a valid C string.
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
    let writer = {
        let (fifo, capture) = (fifo.clone(), capture.clone());
        std::thread::spawn(move || std::fs::write(fifo, capture).unwrap())
    };
    assert_eq!(data_chunks(fifo.to_str().unwrap(), None), 3);
    writer.join().unwrap();
    let _ = std::fs::remove_file(&fifo);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&capture).unwrap();
    assert_eq!(data_chunks("-", Some(&gz.finish().unwrap())), 3);
    assert_eq!(data_chunks("-", Some(&zstd::encode_all(&capture[..], 3).unwrap())), 3);
}

/// A capture cut short in its last record: what comes before the damage is reported, and
/// one line says where.
#[test]
fn a_damaged_capture_reports_what_came_before() {
    let mut capture = own_capture();
    capture.truncate(capture.len() - 5);
    let path = std::env::temp_dir().join(format!("cut-{}.pcap", std::process::id()));
    std::fs::write(&path, &capture).unwrap();
    let o = sctp_user(&["inspect", "--format", "json", "--pcap", path.to_str().unwrap()]);
    let _ = std::fs::remove_file(&path);
    assert!(o.status.success(), "{}", stderr(&o));
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(j["data"]["chunks"], 1, "the first packet's DATA chunk: {j}");
    let damaged = j["damaged"].as_str().unwrap_or_default();
    let at = format!("damaged at byte {} (frame 2)", 24 + 16 + own_capture_first_frame_len());
    assert!(damaged.starts_with(&at), "{j}");
    let e = stderr(&o);
    assert!(e.contains(&at) && e.trim_end().lines().count() == 1, "{e}");
}

/// A closed standard output (`| head`) ends the report quietly, by SIGPIPE, as it ends
/// other tools; a full one is one line naming it.
#[test]
fn a_closed_or_full_standard_output_ends_the_report_as_other_tools_do() {
    use std::os::unix::process::ExitStatusExt as _;
    let path = std::env::temp_dir().join(format!("stdout-{}.pcap", std::process::id()));
    std::fs::write(&path, own_capture()).unwrap();
    let inspect = || {
        let mut c = Command::new(env!("CARGO_BIN_EXE_sctp-user"));
        c.args(["inspect", "--pcap", path.to_str().unwrap()]).stderr(std::process::Stdio::piped());
        c
    };
    // Closed before the report starts: its reading end is gone when the child starts.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let o = inspect().stdout(writer).output().unwrap();
    assert_eq!(o.status.signal(), Some(libc::SIGPIPE), "{}", stderr(&o));
    assert_eq!(stderr(&o), "");
    let o = inspect().stdout(std::fs::File::create("/dev/full").unwrap()).output().unwrap();
    let _ = std::fs::remove_file(&path);
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{e}");
    assert!(e.starts_with("sctp-user: writing the report to standard output: No space left on device"), "{e}");
    assert_eq!(e.trim_end().lines().count(), 1, "{e}");
}
