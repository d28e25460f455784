//! Associations against tshark's (`-o sctp.association_index:TRUE`), on every capture in
//! ../shared/captures, built from each frame (as `inspect` does) and from the summaries
//! the parser core hands the XDP program's ring (as a live `run` does): packet by packet, the same packets in the same association; and
//! each association's paths hold every (source, destination) address pair tshark puts in
//! it; and each association's DATA-to-SACK round trips lie within those tshark's fields
//! give (time, tag, TSN, cumulative ack) for the same packets. Not compared: packets tshark leaves without an association (it cannot place an IP
//! fragment, or a packet whose tag it has not learned), and tshark's associations that
//! cannot be one. tshark pairs directions it did not see begin by ports and tags alone: on
//! a capture of many peers on the same ports (NGAP's 38412/38421, M3UA's 2905) it joins
//! one peer's packets to another's reply, or to a handshake that never completed, where
//! we pair by addresses too. An association cannot be one when an address sends or
//! receives two tags (each side sends its peer's tag and receives its own), when a packet
//! carries a tag its INIT and INIT-ACK did not announce, when its two tags never go both
//! ways between one pair of addresses (a reply comes back from where its request went),
//! or when it shares a path (addresses and ports) with another association at the same
//! time (both are left out: which one is wrong takes more than tshark's view to tell).

use std::{collections::BTreeMap, path::Path, process::Command};

use integration_tests::{shared_captures, tshark::nanoseconds, HostRun};
use sctp_user::{
    assoc::{
        packet_view::{self, PacketView},
        Associations,
    },
    capture::Capture,
};

/// A packet as tshark sees it: its association (`None`: none), source and destination
/// address, tag, and whether it may carry its sender's own tag (ABORT or
/// SHUTDOWN-COMPLETE with the T bit).
struct Theirs {
    index: Option<u64>,
    pair: (String, String),
    vtag: String,
    may_reflect: bool,
    /// Tags announced by an INIT or INIT-ACK in this packet.
    announced: Vec<String>,
    /// Source and destination port.
    ports: (String, String),
}

/// Frame number (from 1) -> what tshark says of it.
fn tshark_assocs(file: &Path) -> BTreeMap<u64, Theirs> {
    let out = Command::new("tshark")
        .arg("-r")
        .arg(file)
        .args(["-o", "sctp.association_index:TRUE", "-o", "ip.defragment:FALSE"])
        .args(["-Y", "sctp && !icmp && !icmpv6", "-T", "fields", "-e", "frame.number", "-e", "sctp.assoc_index"])
        .args(["-e", "ip.src", "-e", "ip.dst", "-e", "ipv6.src", "-e", "ipv6.dst"])
        .args(["-e", "sctp.verification_tag", "-e", "sctp.chunk_type"])
        .args(["-e", "sctp.init_initiate_tag", "-e", "sctp.initack_initiate_tag"])
        .args(["-e", "sctp.srcport", "-e", "sctp.dstport"])
        .output()
        .expect("tshark must be installed (cargo xtask setup)");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split('\t').chain(std::iter::repeat("")).take(12).collect();
            let first = |s: &str| s.split(',').next().unwrap_or_default().to_string();
            let src = if f[2].is_empty() { first(f[4]) } else { first(f[2]) };
            let dst = if f[3].is_empty() { first(f[5]) } else { first(f[3]) };
            let may_reflect = f[7].split(',').any(|t| t == "6" || t == "14");
            let announced = [f[8], f[9]].iter().filter(|t| !t.is_empty()).map(|t| first(t)).collect();
            let theirs = Theirs {
                index: first(f[1]).parse().ok(),
                pair: (src, dst),
                vtag: first(f[6]),
                may_reflect,
                announced,
                ports: (first(f[10]), first(f[11])),
            };
            (f[0].parse().unwrap(), theirs)
        })
        .collect()
}

/// Per association of ours (`ours`: frame number -> association): the least and
/// greatest round trip from a DATA chunk sent once to the first SACK covering its TSN,
/// from the times, tags, TSNs and cumulative acks tshark dissects (its own TSN analysis
/// gives no round trips on these captures in tshark 4.0), in ns. A DATA goes to the tag of
/// its receiver, and that receiver's SACK carries the other tag.
fn tshark_data_rtts(file: &Path, ours: &BTreeMap<u64, usize>) -> BTreeMap<usize, (u64, u64)> {
    let out = Command::new("tshark")
        .arg("-r")
        .arg(file)
        .args(["-o", "sctp.association_index:TRUE", "-o", "ip.defragment:FALSE"])
        .args(["-Y", "sctp.data_tsn_raw || sctp.sack_cumulative_tsn_ack_raw", "-T", "fields"])
        .args(["-e", "frame.number", "-e", "frame.time_epoch", "-e", "sctp.verification_tag"])
        .args(["-e", "sctp.data_tsn_raw", "-e", "sctp.sack_cumulative_tsn_ack_raw"])
        .output()
        .expect("tshark must be installed (cargo xtask setup)");
    // (association, receiver's tag) -> TSN -> (first sent, sent again).
    let mut sent: BTreeMap<(usize, String), BTreeMap<u32, (u64, bool)>> = BTreeMap::new();
    let mut rtts: BTreeMap<usize, (u64, u64)> = BTreeMap::new();
    for line in String::from_utf8(out.stdout).unwrap().lines() {
        let f: Vec<&str> = line.split('\t').chain(std::iter::repeat("")).take(5).collect();
        let ns = nanoseconds(f[1]);
        let Some(&index) = f[0].parse::<u64>().ok().and_then(|frame| ours.get(&frame)) else {
            continue;
        };
        let tag = f[2].split(',').next().unwrap_or_default().to_string();
        for tsn in f[3].split(',').filter_map(|t| t.parse::<u32>().ok()) {
            let e = sent.entry((index, tag.clone())).or_default().entry(tsn).or_insert((ns, false));
            e.1 |= e.0 != ns;
        }
        for cum in f[4].split(',').filter_map(|t| t.parse::<u32>().ok()) {
            for (_, tsns) in sent.iter_mut().filter(|((i, to), _)| *i == index && *to != tag) {
                tsns.retain(|tsn, (first, again)| {
                    let covered = cum.wrapping_sub(*tsn) < 1 << 31;
                    if covered && !*again {
                        let r = rtts.entry(index).or_insert((u64::MAX, 0));
                        *r = (r.0.min(ns - *first), r.1.max(ns - *first));
                    }
                    !covered
                });
            }
        }
    }
    rtts
}

/// How a frame becomes the packet associations count.
#[derive(Clone, Copy)]
enum Source {
    /// From the frame's bytes (`inspect`).
    Frame,
    /// From the summary the parser core writes after its walk (a live `run`).
    Summary,
}

/// Frame number -> our association, and the associations.
fn our_assocs(file: &Path, source: Source) -> (BTreeMap<u64, usize>, Associations) {
    let mut cap = Capture::open(file).unwrap();
    let mut assocs = Associations::default();
    let mut ids = BTreeMap::new();
    let mut host = HostRun::default();
    // Frames that sent no summary up, with their flow: (ports, tag).
    let mut counted_only = Vec::new();
    while let Some(frame) = cap.next_frame() {
        let ts = frame.ts_ns;
        host.process_at(frame.data, ts);
        let summary = host.events.packets.pop();
        let view: Option<PacketView> = match source {
            Source::Frame => packet_view::view(frame.data),
            Source::Summary => {
                if summary.is_none() {
                    if let Some(p) = packet_view::view(frame.data) {
                        counted_only.push((cap.stats.records, (p.src.1, p.dst.1, p.vtag)));
                    }
                }
                summary.map(|s| packet_view::from_summary(&s))
            }
        };
        if let Some(p) = view {
            ids.insert(cap.stats.records, assocs.add(&p, ts).expect("within the bound").0);
        }
    }
    // Those belong to the association of their flow: the first packet of every path of a
    // flow went up, so user space knows every flow's association.
    for (frame, (src, dst, vtag)) in counted_only {
        let id = assocs.direction_id(src, dst, vtag).unwrap_or_else(|| {
            panic!("{}: frame {frame} sent no summary and its flow is in no association", file.display())
        });
        ids.insert(frame, id);
    }
    // The counts are the kernel's accounting's: each association holds exactly its frames.
    assocs.overlay(&|k| host.flows.get(k));
    let mut frames_of: BTreeMap<usize, u64> = BTreeMap::new();
    for id in ids.values() {
        *frames_of.entry(assocs.resolve(*id)).or_default() += 1;
    }
    for (id, frames) in frames_of {
        let a = &assocs.list[id];
        assert_eq!(a.packets, frames, "{}: association {id} ({:?})", file.display(), a.endpoints);
    }
    (ids, assocs)
}

fn match_tshark(source: Source) {
    let Some(files) = shared_captures("associations_match_tshark") else { return };
    for file in &files {
        let name = file.file_name().unwrap().to_string_lossy();
        let theirs = tshark_assocs(file);
        let (ours, assocs) = our_assocs(file, source);
        let ours: BTreeMap<u64, usize> = ours.into_iter().map(|(f, id)| (f, assocs.resolve(id))).collect();
        // tshark's index -> ours, and back: a bijection over the packets tshark places.
        let disjoint = not_one_association(&theirs);
        let (mut to_ours, mut to_theirs) = (BTreeMap::new(), BTreeMap::new());
        let mut unplaced = 0;
        for (frame, t) in &theirs {
            let pair = &t.pair;
            let Some(index) = t.index.filter(|i| !disjoint.contains(i)) else {
                unplaced += 1;
                continue;
            };
            let Some(&id) = ours.get(frame) else { panic!("{name}: frame {frame} is SCTP to tshark, not to us") };
            let mapped = *to_ours.entry(index).or_insert(id);
            assert_eq!(
                mapped, id,
                "{name}: frame {frame} is in tshark's association {index} with other frames than ours"
            );
            let back = *to_theirs.entry(id).or_insert(index);
            assert_eq!(back, index, "{name}: frame {frame}: our association {id} spans tshark's {back} and {index}");
            let paths: Vec<(String, String)> =
                assocs.list[id].paths.keys().map(|(s, d)| (s.to_string(), d.to_string())).collect();
            assert!(paths.contains(pair), "{name}: frame {frame}: path {pair:?} missing from {paths:?}");
        }
        assert_eq!(ours.len(), theirs.len(), "{name}: SCTP packets");
        // Each of our DATA-to-SACK round trips is one of the pairs tshark's fields give.
        let bounds = tshark_data_rtts(file, &ours);
        let mut checked = 0;
        for id in ours.values().collect::<std::collections::BTreeSet<_>>() {
            let rtt = &assocs.list[*id].rtt;
            if rtt.count == 0 {
                continue;
            }
            let (low, high) = bounds
                .get(id)
                .copied()
                .unwrap_or_else(|| panic!("{name}: association {id}: none from tshark's fields, ours {rtt:?}"));
            assert!(
                low <= rtt.min_ns && rtt.max_ns <= high,
                "{name}: association {id}: ours {rtt:?} outside [{low}, {high}] ns"
            );
            checked += 1;
        }
        eprintln!(
            "{name}: {} associations as tshark's, {} in all ({checked} with round trips within tshark's fields'){}",
            to_ours.len(),
            assocs.iter().count(),
            if unplaced > 0 {
                format!(
                    " ({unplaced} packet(s) not compared: in no association of tshark's, or in {} that cannot be one)",
                    disjoint.len()
                )
            } else {
                String::new()
            }
        );
    }
}

/// tshark's associations that cannot be one association of ours: tags that contradict
/// each other, or a path in use by two of its associations at once.
fn not_one_association(theirs: &BTreeMap<u64, Theirs>) -> Vec<u64> {
    let mut members: BTreeMap<u64, Vec<&Theirs>> = BTreeMap::new();
    for t in theirs.values() {
        if let Some(i) = t.index {
            members.entry(i).or_default().push(t);
        }
    }
    let impossible = |m: &Vec<&Theirs>| {
        // Tags by the address sending them and by the one receiving them.
        let mut tags: BTreeMap<(bool, &str), std::collections::BTreeSet<&str>> = BTreeMap::new();
        for t in m.iter().filter(|t| !t.may_reflect && t.vtag != "0x00000000") {
            tags.entry((true, t.pair.0.as_str())).or_default().insert(t.vtag.as_str());
            tags.entry((false, t.pair.1.as_str())).or_default().insert(t.vtag.as_str());
        }
        let announced: Vec<&str> = m.iter().flat_map(|t| t.announced.iter().map(String::as_str)).collect();
        let unannounced =
            !announced.is_empty() && m.iter().any(|t| t.vtag != "0x00000000" && !announced.contains(&t.vtag.as_str()));
        let tags_seen: std::collections::BTreeSet<&str> =
            m.iter().map(|t| t.vtag.as_str()).filter(|t| *t != "0x00000000").collect();
        let both_ways = m.iter().any(|t| m.iter().any(|u| u.pair.0 == t.pair.1 && u.pair.1 == t.pair.0));
        unannounced || (tags_seen.len() > 1 && !both_ways) || tags.values().any(|t| t.len() > 1)
    };
    let mut disjoint: Vec<u64> = members.iter().filter(|(_, m)| impossible(m)).map(|(i, _)| *i).collect();
    // Paths (either way) in use by two associations at once.
    let mut spans: BTreeMap<u64, (u64, u64)> = BTreeMap::new();
    let mut users: BTreeMap<[(&str, &str); 2], std::collections::BTreeSet<u64>> = BTreeMap::new();
    for (frame, t) in theirs {
        let Some(i) = t.index else { continue };
        let span = spans.entry(i).or_insert((*frame, *frame));
        span.1 = *frame;
        let mut ends = [(t.pair.0.as_str(), t.ports.0.as_str()), (t.pair.1.as_str(), t.ports.1.as_str())];
        ends.sort_unstable();
        users.entry(ends).or_default().insert(i);
    }
    for shared in users.values() {
        for a in shared {
            for b in shared.iter().filter(|b| *b != a) {
                let (sa, sb) = (spans[a], spans[b]);
                if sa.0 <= sb.1 && sb.0 <= sa.1 && !disjoint.contains(a) {
                    disjoint.push(*a);
                }
            }
        }
    }
    disjoint
}

/// Tests anyone can run: no privileges.
mod host {
    use super::*;

    #[test]
    fn associations_and_their_packets_match_tsharks() {
        match_tshark(Source::Frame);
    }

    #[test]
    fn associations_from_the_kernels_summaries_match_tsharks() {
        match_tshark(Source::Summary);
    }
}
