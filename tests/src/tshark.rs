//! What tshark, the reference dissector, says about a capture, and the same view of
//! `inspect`'s JSON, so that the two compare field by field.
//!
//! tshark is asked for SCTP that is not inside an ICMP error (`!icmp && !icmpv6`): the
//! XDP program looks at packets, not at headers quoted inside ICMP errors.

use std::{collections::BTreeMap, path::Path, process::Command};

use serde_json::Value;

/// What tshark says about a capture.
#[derive(Debug, Default, PartialEq)]
pub struct View {
    pub sctp_packets: u64,
    pub chunks: BTreeMap<String, u64>,
    pub data_chunks: u64,
    pub data_payload_bytes: u64,
    pub flows: BTreeMap<(u64, u64, u64), u64>,
    pub bad_checksums: u64,
}

#[must_use]
pub fn tshark_view(file: &Path) -> View {
    let out = Command::new("tshark")
        .args(["-r"])
        .arg(file)
        // IP fragments as on the wire, not reassembled: inspect parses each packet alone,
        // and a first fragment holds only the start of its last chunk.
        .args(["-o", "ip.defragment:FALSE", "-o", "sctp.checksum:crc-32c"])
        .args(["-Y", "sctp && !icmp && !icmpv6", "-T", "fields"])
        .args(["-e", "sctp.srcport", "-e", "sctp.dstport", "-e", "sctp.verification_tag"])
        .args(["-e", "sctp.chunk_type", "-e", "sctp.chunk_length"])
        .args(["-e", "ip.len", "-e", "ip.hdr_len", "-e", "sctp.checksum.status", "-e", "ip.flags.mf"])
        .output()
        .expect("tshark must be installed (cargo xtask setup)");
    // A capture cut short is read up to the damage, and said so on stderr.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() || stderr.contains("cut short"), "tshark failed on {}: {stderr}", file.display());
    let mut v = View::default();
    for line in String::from_utf8(out.stdout).unwrap().lines() {
        let f: Vec<&str> = line.split('\t').collect();
        let first = |s: &str| s.split(',').next().unwrap().to_string();
        let vtag = u64::from_str_radix(first(f[2]).trim_start_matches("0x"), 16).unwrap();
        *v.flows.entry((first(f[0]).parse().unwrap(), first(f[1]).parse().unwrap(), vtag)).or_default() += 1;
        v.sctp_packets += 1;
        // 0: bad, 1: good, empty: not checked (the packet is cut short). tshark also checks
        // a first IP fragment (it cannot match), which we leave unchecked.
        let first_fragment = f.get(8).is_some_and(|mf| mf.starts_with('1') || mf.starts_with('T'));
        v.bad_checksums += u64::from(f.get(7) == Some(&"0") && !first_fragment);
        let types: Vec<u64> = f[3].split(',').filter(|s| !s.is_empty()).map(|s| s.parse().unwrap()).collect();
        let lens: Vec<u64> = f[4].split(',').filter(|s| !s.is_empty()).map(|s| s.parse().unwrap()).collect();
        // Bytes of SCTP chunks this IPv4 packet holds (a first fragment: fewer than its
        // chunks' lengths say); IPv6 rows leave the fields empty.
        let mut room = match (f.get(5).map(|x| first(x).parse::<u64>()), f.get(6).map(|x| first(x).parse::<u64>())) {
            (Some(Ok(ip_len)), Some(Ok(hdr))) => ip_len.saturating_sub(hdr + 12),
            _ => u64::MAX,
        };
        for (i, t) in types.iter().enumerate() {
            *v.chunks.entry(t.to_string()).or_default() += 1;
            let present = lens[i].min(room);
            room = room.saturating_sub((lens[i] + 3) & !3);
            let header = match t {
                0 => 16,
                64 => 20,
                _ => continue,
            };
            v.data_chunks += 1;
            v.data_payload_bytes += present.saturating_sub(header);
        }
    }
    v
}

/// The same view of `inspect`'s JSON ([`crate::inspect_json`]).
#[must_use]
pub fn our_view(j: &Value) -> View {
    let n = |v: &Value| v.as_u64().unwrap();
    View {
        sctp_packets: n(&j["packets"]["sctp"]),
        chunks: j["chunks"].as_object().unwrap().iter().map(|(k, v)| (k.clone(), n(v))).collect(),
        data_chunks: n(&j["data"]["chunks"]),
        data_payload_bytes: n(&j["data"]["payload_bytes"]),
        flows: j["flows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| ((n(&f["src_port"]), n(&f["dst_port"]), n(&f["vtag"])), n(&f["packets"])))
            .collect(),
        bad_checksums: n(&j["bad_checksums"]),
    }
}

/// The capture times (ns since the epoch) of the first and the last frame, as tshark
/// reads them.
#[must_use]
pub fn tshark_span(file: &Path) -> Option<(u64, u64)> {
    let out = Command::new("tshark")
        .arg("-r")
        .arg(file)
        .args(["-T", "fields", "-e", "frame.time_epoch"])
        .output()
        .expect("tshark must be installed (cargo xtask setup)");
    let times: Vec<u64> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        // Records without a time (a simple packet block; tshark lists a custom block too).
        .filter(|t| !t.is_empty())
        .map(nanoseconds)
        .collect();
    Some((*times.first()?, *times.last()?))
}

/// Seconds as tshark prints them ("1598111549.563797928", "0.000347959") in ns, exactly.
#[must_use]
pub fn nanoseconds(s: &str) -> u64 {
    let (whole, fraction) = s.split_once('.').unwrap_or((s, ""));
    let fraction = format!("{fraction:0<9}");
    whole.parse::<u64>().unwrap() * 1_000_000_000 + fraction[..9].parse::<u64>().unwrap()
}
