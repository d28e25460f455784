//! Every capture variant tshark reads, `inspect` reads the same: pcap in both byte orders
//! and resolutions, modified pcap, records longer than the snapshot or the original
//! length, pcapng with several sections and interfaces of different link types and
//! resolutions, options without the end marker, simple and obsolete packet blocks, custom
//! and statistics blocks, the link types Ethernet, SLL, SLL2, raw IP and BSD loopback,
//! gzip and zstd, and a file cut short. The variants are made by tshark's own tools
//! (editcap, mergecap) and by our byte-level writer; tshark reads each as the reference.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use integration_tests::{
    capture_writer::{pcap, relink, PcapNg, Record},
    inspect_json,
    tshark::{our_view, tshark_span, tshark_view},
};
use sctp_common::builder::{Chunk, SctpPacket, V4, V6};
use sctp_user::{replay::engine::Kind, rules::Compiled};

/// 2026-01-01 plus a nanosecond part that micro-second formats round off.
const T0: u64 = 1_767_225_600_000_000_000;

/// Ethernet frames of three associations (IPv4 and IPv6), one with a bad checksum.
fn base() -> Vec<Record> {
    let mut frames = Vec::new();
    let mut p = |ip, vtag, ports: (u16, u16), chunks| {
        let mut pkt = SctpPacket::new(ip, vtag, chunks);
        (pkt.src_port, pkt.dst_port) = ports;
        frames.push(pkt.frame());
    };
    p(V4, 0, (5000, 36412), vec![Chunk::init(1, 0x1111, 65_536, 4, 4, 1)]);
    p(V4, 0x1111, (36412, 5000), vec![Chunk::init(2, 0x2222, 65_536, 4, 4, 100)]);
    for tsn in 1..=6 {
        p(V4, 0x2222, (5000, 36412), vec![Chunk::data(tsn, 0, 0, 18, 40), Chunk::data(tsn + 100, 1, 0, 18, 7)]);
        p(V4, 0x1111, (36412, 5000), vec![Chunk::sack(tsn, 65_536, 1, 0)]);
    }
    for tsn in 1..=4 {
        p(V6, 0x3333, (2905, 2905), vec![Chunk::data(tsn, 0, 0, 3, 100)]);
        p(V6, 0x4444, (2905, 2905), vec![Chunk::new(4, 0, vec![0, 1, 0, 8, 1, 2, 3, 4])]);
    }
    // Offload trouble: a checksum that does not match.
    let last = frames.len() - 1;
    *frames[last].last_mut().unwrap() ^= 0xff;
    frames.into_iter().zip(0u64..).map(|(f, i)| Record::new(T0 + i * 1_234_567 + 891, f)).collect()
}

fn relinked(records: &[Record], f: impl Fn(&[u8]) -> Vec<u8>) -> Vec<Record> {
    records.iter().map(|r| Record::new(r.ts_ns, f(&r.data))).collect()
}

struct Dir(PathBuf);

impl Dir {
    /// A directory of the test `test` (tests run at once, each removes its own).
    fn new(test: &str) -> Self {
        let d = std::env::temp_dir().join(format!("capture-formats-{test}-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        Self(d)
    }

    fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }

    /// A file made by one of tshark's tools from `inputs`, with the output format `format`.
    fn tool(&self, name: &str, tool: &str, format: &str, inputs: &[&Path]) -> PathBuf {
        let out = self.0.join(name);
        let mut c = Command::new(tool);
        c.args(["-F", format]);
        if tool == "mergecap" {
            c.arg("-w").arg(&out).args(inputs);
        } else {
            c.args(inputs).arg(&out);
        }
        let o = c.output().unwrap_or_else(|e| panic!("{tool}: {e} (cargo xtask setup installs it)"));
        assert!(o.status.success(), "{tool} {inputs:?}: {}", String::from_utf8_lossy(&o.stderr));
        out
    }
}

/// `KEEP_CAPTURES=1` keeps the variants for a look at them after a failure.
impl Drop for Dir {
    fn drop(&mut self) {
        if std::env::var_os("KEEP_CAPTURES").is_none() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// Every variant of the base capture, written in `dir`: (name, the file we read, the one
/// tshark reads).
fn variants(dir: &Dir) -> Vec<(&'static str, PathBuf, PathBuf)> {
    let eth = base();
    let half = eth.len() / 2;
    let sll = relinked(&eth, relink::sll);
    let mut variants: Vec<(&str, PathBuf, PathBuf)> = Vec::new();
    let mut own = |name: &'static str, bytes: Vec<u8>| {
        let p = dir.write(name, &bytes);
        variants.push((name, p.clone(), p));
    };
    own("pcap-le-usec.pcap", pcap(&eth, 1, false, false, 65_535));
    own("pcap-be-nsec.pcap", pcap(&eth, 1, true, true, 65_535));
    own("sll.pcap", pcap(&sll, 113, false, false, 65_535));
    own("sll2.pcap", pcap(&relinked(&eth, relink::sll2), 276, false, true, 65_535));
    own("raw-ip.pcap", pcap(&relinked(&eth, relink::raw), 101, true, false, 65_535));
    own("null.pcap", pcap(&relinked(&eth, |f| relink::loopback(f, false)), 0, false, false, 65_535));
    own("loop.pcap", pcap(&relinked(&eth, |f| relink::loopback(f, true)), 108, false, false, 65_535));
    // Records longer than the header's snapshot length, and longer than the wire's.
    own("over-snaplen.pcap", pcap(&eth, 1, false, false, 64));
    let longer: Vec<Record> = eth.iter().map(|r| Record { orig_len: r.orig_len - 4, ..r.clone() }).collect();
    own("over-origlen.pcap", pcap(&longer, 1, false, false, 65_535));
    // Cut short by the snapshot length: the checksum cannot be checked there.
    let snapped: Vec<Record> =
        eth.iter().map(|r| Record { data: r.data[..80.min(r.data.len())].to_vec(), ..r.clone() }).collect();
    own("snapped.pcap", pcap(&snapped, 1, false, false, 80));
    // Two sections, the second with an interface of another link type and resolution.
    let mut two = PcapNg::default();
    two.section().interface(1, 6, true);
    for r in &eth[..half] {
        two.enhanced(0, 6, r, true);
    }
    two.section().interface(113, 9, false);
    for r in &sll[half..] {
        two.enhanced(0, 9, r, false);
    }
    own("two-sections.pcapng", two.bytes);
    // One section, two interfaces, every kind of packet block, and blocks without packets.
    let mut mixed = PcapNg::default();
    mixed.section().interface(1, 6, true).interface(113, 9, false).custom();
    for (i, r) in eth.iter().enumerate() {
        match i % 4 {
            0 => mixed.enhanced(0, 6, r, true),
            1 => mixed.enhanced(1, 9, &sll[i], false),
            2 => mixed.obsolete(0, r),
            _ => mixed.enhanced(0, 6, r, false).statistics(),
        };
    }
    mixed.simple(&eth[0]);
    own("mixed-blocks.pcapng", mixed.bytes);
    let usec = dir.0.join("pcap-le-usec.pcap");
    let nsec = dir.0.join("pcap-be-nsec.pcap");
    let sll_file = dir.0.join("sll.pcap");
    let made: [(&str, &str, &str, Vec<&Path>); 4] = [
        ("editcap-nsecpcap.pcap", "editcap", "nsecpcap", vec![&usec]),
        ("editcap-modpcap.pcap", "editcap", "modpcap", vec![&usec]),
        ("editcap-pcapng.pcapng", "editcap", "pcapng", vec![&nsec]),
        ("mergecap-links.pcapng", "mergecap", "pcapng", vec![&sll_file, &nsec]),
    ];
    for (name, tool, format, inputs) in made {
        let p = dir.tool(name, tool, format, &inputs);
        variants.push((name, p.clone(), p));
    }
    // Compressed: tshark reads gzip itself; for zstd (not in Debian 12's tshark) it reads
    // the file before compression.
    let pcapng = std::fs::read(dir.0.join("editcap-pcapng.pcapng")).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, &pcapng).unwrap();
    let gz = dir.write("pcapng.gz", &gz.finish().unwrap());
    variants.push(("pcapng.gz", gz.clone(), gz));
    let zst = dir.write("pcapng.zst", &zstd::encode_all(&pcapng[..], 3).unwrap());
    variants.push(("pcapng.zst", zst, dir.0.join("editcap-pcapng.pcapng")));
    // Cut short inside the last record.
    let mut cut = pcap(&eth, 1, false, true, 65_535);
    cut.truncate(cut.len() - 5);
    let cut = dir.write("cut-short.pcap", &cut);
    variants.push(("cut-short.pcap", cut.clone(), cut));
    variants
}

/// Everything the reader counts in `path`, read to its end.
fn read_all(path: &Path) -> sctp_user::capture::ReadStats {
    let mut c = sctp_user::capture::Capture::open(path).unwrap();
    while c.next_frame().is_some() {}
    c.stats
}

/// Tests anyone can run: no privileges.
mod host {
    use super::*;

    #[test]
    fn every_variant_reads_as_tshark_reads_it() {
        let dir = Dir::new("variants");
        let variants = variants(&dir);
        for (name, ours, theirs) in &variants {
            let j = inspect_json(ours, Kind::Host, &Compiled::none());
            let (mut view, reference) = (our_view(&j), tshark_view(theirs));
            if *name == "snapped.pcap" {
                // A DATA chunk cut by the snapshot length: tshark stops dissecting the packet
                // without naming the chunk; we count the chunk by its type and flag the packet
                // (its chunk runs past the packet). Six IPv4 packets and four IPv6 ones.
                assert_eq!(view.chunks.remove("0"), Some(10), "{name}: {j}");
                assert_eq!(j["errors"]["chunk_beyond_packet"], 10, "{name}: {j}");
            }
            assert_eq!(view, reference, "{name}: inspect and tshark disagree");
            let span = (j["first_ns"].as_u64().unwrap(), j["last_ns"].as_u64().unwrap());
            assert_eq!(Some(span), tshark_span(theirs), "{name}: first and last capture times");
            let damaged = j["damaged"].as_str();
            assert_eq!(damaged.is_some(), *name == "cut-short.pcap", "{name}: {damaged:?}");
            eprintln!("{name}: {} SCTP packets, as tshark reads them", j["packets"]["sctp"]);
        }
    }

    /// Files no tool makes on purpose: a link type we cannot read is counted in pcap as in
    /// pcapng; a million interfaces cost no memory by the million; a malformed block is one
    /// short line, not the megabyte after it.
    #[test]
    fn hostile_files_cost_neither_memory_nor_a_screenful() {
        let dir = Dir::new("hostile");
        let records = base();
        let n = records.len() as u64;
        let wifi = read_all(&dir.write("wifi.pcap", &pcap(&records, 105, false, false, 65_535)));
        assert_eq!((wifi.records, wifi.unsupported_link, wifi.damaged), (n, n, None));

        let mut many = PcapNg::default();
        many.section();
        for _ in 0..100_000 {
            many.interface(1, 9, true);
        }
        many.enhanced(99_999, 9, &records[0], true).enhanced(0, 9, &records[1], true);
        let read = read_all(&dir.write("interfaces.pcapng", &many.bytes));
        assert_eq!((read.records, read.unsupported_link), (2, 1), "the packet of an interface beyond the bound");
        assert_eq!(read.skipped_blocks, 100_000 - 4096);

        let mut broken = PcapNg::default();
        broken.section().interface(1, 9, true).enhanced(0, 9, &records[0], true);
        // A block 10 bytes long: shorter than any block can be.
        broken.bytes.extend(6u32.to_le_bytes().into_iter().chain(10u32.to_le_bytes()));
        broken.bytes.extend(std::iter::repeat_n(0xab, 1 << 20));
        let read = read_all(&dir.write("broken.pcapng", &broken.bytes));
        let damaged = read.damaged.unwrap();
        assert_eq!(read.records, 1);
        assert!(damaged.contains("a malformed block") && damaged.len() < 200, "{damaged}");
    }
}
