//! Frames larger than a page (jumbo MTUs, captured GRO frames): XDP hands them over in
//! fragments, which only the multi-buffer program (kernels >= 5.18) reads. Through
//! `BPF_PROG_TEST_RUN` against the host parser, replayed by `inspect`, and live on a veth
//! with MTU 9000 in native mode. On a kernel without multi-buffer XDP each test says so
//! and checks the fallback instead.

use std::{path::PathBuf, process::Command, time::Duration};

use integration_tests::{
    instance::Instance,
    kernel_equals_host_on,
    netns::{veth, Netns},
    pin_to_current_cpu,
    raw::send_frames,
    require_root, sctp_user_bin, HostRun,
};
use sctp_common::{abi::Counter, testing::fixtures};
use sctp_user::bpf::{LoadOptions, XdpSctp};
use serde_json::Value;

fn multi_buffer_program() -> XdpSctp {
    XdpSctp::load(&LoadOptions { multi_buffer: true, ..LoadOptions::default() }).unwrap()
}

/// A capture of jumbo frames (and one too large for any test run), written by us.
fn write_capture(frames: &[Vec<u8>]) -> PathBuf {
    use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
    let path = std::env::temp_dir().join(format!("jumbo-{}.pcap", std::process::id()));
    let header = PcapHeader { snaplen: 262_144, ..PcapHeader::default() };
    let mut w = PcapWriter::with_header(std::fs::File::create(&path).unwrap(), header).unwrap();
    for f in frames {
        let len = u32::try_from(f.len()).unwrap();
        w.write_packet(&PcapPacket::new(Duration::ZERO, len, f)).unwrap();
    }
    path
}

/// Tests of the XDP program itself: as root, on this host and again in the VM on every
/// kernel.
mod kernel {
    use super::*;

    #[test]
    #[ignore = "needs root: run by cargo xtask test"]
    fn jumbo_frames_kernel_equals_host() {
        require_root();
        pin_to_current_cpu();
        let mut prog = multi_buffer_program();
        if !prog.multi_buffer() {
            // The fallback: the linear program refuses such frames, it does not miscount them.
            let fx = &fixtures::jumbo()[0];
            assert!(prog.test_run(&fx.frame, 1).is_err(), "a page-sized program ran a 9,000-byte frame");
            eprintln!(
                "SKIPPED jumbo_frames_kernel_equals_host: this kernel has no multi-buffer XDP (checked the fallback)"
            );
            return;
        }
        for fx in fixtures::jumbo() {
            let host = kernel_equals_host_on(&mut prog, fx.name, &fx.frame);
            for (c, want) in &fx.expect {
                assert_eq!(host.global.get(*c), *want, "{}: {}", fx.name, c.name());
            }
        }
    }

    #[test]
    #[ignore = "needs root: run by cargo xtask test"]
    fn inspect_replays_jumbo_frames_whole() {
        require_root();
        let jumbo = fixtures::jumbo();
        // 80 KiB: more than a multi-buffer test run takes; counted, not fatal.
        let mut huge = jumbo[0].frame.clone();
        huge.resize(80_000, 0);
        let mut frames: Vec<Vec<u8>> = jumbo.iter().map(|f| f.frame.clone()).collect();
        frames.push(huge);
        let path = write_capture(&frames);
        let out = Command::new(sctp_user_bin())
            .args(["inspect", "--engine", "kernel", "--format", "json", "--pcap"])
            .arg(&path)
            .output()
            .unwrap();
        let _ = std::fs::remove_file(&path);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let j: Value = serde_json::from_slice(&out.stdout).unwrap();
        let mut host = HostRun::default();
        for f in &jumbo {
            host.process(&f.frame);
        }
        if !multi_buffer_program().multi_buffer() {
            assert_eq!(j["packets"]["too_large"], 4, "{j}");
            eprintln!("SKIPPED inspect_replays_jumbo_frames_whole: no multi-buffer XDP (checked the fallback)");
            return;
        }
        assert_eq!(j["packets"]["too_large"], 1, "{j}");
        assert_eq!(j["packets"]["total"], 4, "{j}");
        assert_eq!(j["data"]["chunks"], host.global.get(Counter::DataChunks), "{j}");
        assert_eq!(j["data"]["payload_bytes"], host.global.get(Counter::DataPayloadBytes), "{j}");
        assert_eq!(j["chunks"]["3"], host.global.chunk_types[3], "SACK: {j}");
    }

    #[test]
    #[ignore = "needs root: run by cargo xtask test"]
    fn a_jumbo_veth_runs_natively_and_counts_every_chunk() {
        require_root();
        let a = Netns::new("jb-a").unwrap();
        let b = Netns::new("jb-b").unwrap();
        veth(&a, "jba0", "198.18.0.1/24", &b, "jbb0", "198.18.0.2/24").unwrap();
        a.ip(&["link", "set", "jba0", "mtu", "9000"]).unwrap();
        b.ip(&["link", "set", "jbb0", "mtu", "9000"]).unwrap();
        let args = ["run", "--iface", "jbb0", "--mode", "native", "--no-echo", "--no-pin"];
        if !multi_buffer_program().multi_buffer() {
            // Without multi-buffer XDP the veth refuses native XDP at this MTU: say why.
            let out =
                Command::new("ip").args(["netns", "exec", &b.name]).arg(sctp_user_bin()).args(args).output().unwrap();
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success());
            assert!(err.contains("refused its MTU (9000)") && err.contains("--mode generic"), "{err}");
            eprintln!("SKIPPED counting on a jumbo veth: this kernel has no multi-buffer XDP (checked the refusal)");
            return;
        }
        let run = Instance::start(&b, "run", sctp_user_bin(), &args, "metrics on").unwrap();
        let fx = &fixtures::jumbo()[0];
        assert!(fx.frame.len() > 8_900 && fx.frame.len() <= 9_014, "{}", fx.frame.len());
        send_frames(&a, "jba0", &vec![fx.frame.clone(); 5]);
        std::thread::sleep(Duration::from_millis(1500));
        let stats = b.stats().unwrap();
        assert_eq!(stats["xdp"]["data"]["chunks"], 40, "8 DATA chunks in each of 5 frames: {stats}");
        assert_eq!(stats["xdp"]["data"]["payload_bytes"], 40_000, "{stats}");
        assert_eq!(stats["xdp"]["chunks"]["3"], 5, "the SACK near each frame's end: {stats}");
        assert_eq!(stats["xdp"]["packets"]["malformed"], 0, "{stats}");
        run.stop().unwrap();
    }
}
