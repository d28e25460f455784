//! The application messages `sctp_common::parse::message` reads against tshark's
//! dissection on every shared capture: per (protocol, code, kind) the same counts, and
//! Diameter's Result-Codes. A message counts once: at the DATA chunk that begins it (B
//! bit), a retransmitted TSN not again; tshark is asked to reassemble fragmented messages
//! (`sctp.reassembly`), so it dissects each once too.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::Path,
    process::Command,
};

use integration_tests::shared_captures;
use sctp_common::{
    parse::{
        locate_sctp,
        message::{self, Kind, Protocol},
        NoTally, Packet as _,
    },
    proto::{
        chunk::{flag, ty},
        SCTP_COMMON_HEADER,
    },
};
use sctp_user::capture::Capture;

/// (protocol, code, kind) -> messages.
type Counts = BTreeMap<(String, u32, String), u64>;

/// What we read: the counts, and each Diameter answer's (command, result) count.
#[derive(Default)]
struct Ours {
    counts: Counts,
    results: BTreeMap<(u32, u32), u64>,
    /// Answers fragmented before their Result-Code, per command: the first chunk, all the
    /// kernel sees of a message at once, does not hold it.
    result_in_a_later_fragment: BTreeMap<u32, u64>,
}

fn ours(file: &Path) -> Ours {
    let mut capture = Capture::open(file).unwrap();
    let mut seen_tsns = BTreeSet::new();
    let mut out = Ours::default();
    while let Some(frame) = capture.next_frame() {
        let data = frame.data;
        let Ok(loc) = locate_sctp(data, &mut NoTally) else { continue };
        let (Some(src), Some(dst), Some(vtag)) =
            (data.be16_at(loc.offset), data.be16_at(loc.offset + 2), data.be32_at(loc.offset + 4))
        else {
            continue;
        };
        let mut off = loc.offset + SCTP_COMMON_HEADER;
        while off + 4 <= loc.end.min(data.len()) {
            let (kind, flags) = (data[off], data[off + 1]);
            let len = usize::from(data.be16_at(off + 2).unwrap());
            if len < 4 {
                break;
            }
            let header = match kind {
                ty::DATA => 16,
                ty::I_DATA => 20,
                _ => 0,
            };
            if header > 0 && len >= header && off + header <= data.len() {
                let tsn = data.be32_at(off + 4).unwrap();
                let ppid = if kind == ty::DATA { data.be32_at(off + 12) } else { data.be32_at(off + 16) };
                let new = seen_tsns.insert((src, dst, vtag, tsn));
                if let (true, true, Some(protocol)) =
                    (new, flags & flag::BEGIN != 0, ppid.and_then(|p| Protocol::of(p, src, dst)))
                {
                    if let Ok((k, m)) = message::read(data, off + header, len - header, protocol) {
                        *out.counts.entry((protocol.name().into(), m.code, k.name().into())).or_default() += 1;
                        if protocol == Protocol::Diameter && k == Kind::Answer {
                            if m.result == 0 && flags & flag::END == 0 {
                                *out.result_in_a_later_fragment.entry(m.code).or_default() += 1;
                            } else {
                                *out.results.entry((m.code, m.result)).or_default() += 1;
                            }
                        }
                    }
                }
            }
            off += len.next_multiple_of(4);
        }
    }
    out
}

/// tshark's rows of `fields` for the frames of `filter`, each field's occurrences.
fn tshark(file: &Path, filter: &str, fields: &[&str]) -> Vec<Vec<Vec<String>>> {
    let mut c = Command::new("tshark");
    // Over SCTP only: Diameter also runs over TCP in these captures.
    c.arg("-r").arg(file).args(["-o", "sctp.reassembly:TRUE", "-Y", &format!("sctp && {filter}"), "-T", "fields"]);
    for f in fields {
        c.args(["-e", f]);
    }
    let out = c.output().expect("tshark must be installed (cargo xtask setup)");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| l.split('\t').map(|f| f.split(',').filter(|s| !s.is_empty()).map(str::to_string).collect()).collect())
        .collect()
}

/// The AP protocols as tshark names them: (our name, tshark's prefix, its PDU field).
const AP: &[(&str, &str, &str)] = &[
    ("NGAP", "ngap", "ngap.NGAP_PDU"),
    ("S1AP", "s1ap", "s1ap.S1AP_PDU"),
    ("X2AP", "x2ap", "x2ap.X2AP_PDU"),
    ("XnAP", "xnap", "xnap.XnAP_PDU"),
    ("E1AP", "e1ap", "e1ap.E1AP_PDU"),
    ("F1AP", "f1ap", "f1ap.F1AP_PDU"),
];

/// What tshark dissected: the counts, Diameter's (command, result) of its answers, and the
/// AP PDUs whose procedure code could not be told (a frame with several PDUs and codes
/// quoted inside them, as a `CriticalityDiagnostics` does).
fn theirs(file: &Path) -> (Counts, BTreeMap<(u32, u32), u64>, u64) {
    let mut counts = Counts::new();
    let mut unpaired = 0;
    for (name, prefix, pdu) in AP {
        for row in tshark(file, prefix, &[pdu, &format!("{prefix}.procedureCode")]) {
            let (pdus, codes) = (&row[0], &row[1]);
            if pdus.len() > 1 && codes.len() != pdus.len() {
                unpaired += pdus.len() as u64;
                continue;
            }
            for (i, choice) in pdus.iter().enumerate() {
                let kind = match choice.as_str() {
                    "0" => "initiating",
                    "1" => "successful",
                    "2" => "unsuccessful",
                    other => panic!("{name}: PDU choice {other}"),
                };
                *counts.entry(((*name).into(), codes[i].parse().unwrap(), kind.into())).or_default() += 1;
            }
        }
    }
    let mut results = BTreeMap::new();
    let fields =
        ["diameter.flags.request", "diameter.cmd.code", "diameter.Result-Code", "diameter.Experimental-Result-Code"];
    for row in tshark(file, "diameter", &fields) {
        let single = row[0].len() == 1;
        for (i, request) in row[0].iter().enumerate() {
            let kind = if request == "1" || request == "True" { "request" } else { "answer" };
            let code: u32 = row[1][i].parse().unwrap();
            *counts.entry(("Diameter".into(), code, kind.into())).or_default() += 1;
            if kind == "answer" && single {
                let result = row[2].first().or(row[3].first()).map_or(0, |r| r.parse().unwrap());
                *results.entry((code, result)).or_default() += 1;
            }
        }
    }
    for row in tshark(file, "m3ua", &["m3ua.message_class", "m3ua.message_type"]) {
        for (class, ty) in row[0].iter().zip(&row[1]) {
            let code = class.parse::<u32>().unwrap() << 8 | ty.parse::<u32>().unwrap();
            *counts.entry(("M3UA".into(), code, "message".into())).or_default() += 1;
        }
    }
    (counts, results, unpaired)
}

/// Tests anyone can run: no privileges.
mod host {
    use super::*;

    #[test]
    fn messages_match_tshark_on_every_capture() {
        let Some(files) = shared_captures("messages_match_tshark_on_every_capture") else { return };
        let mut total = 0;
        for file in &files {
            let name = file.file_name().unwrap().to_string_lossy();
            let ours = ours(file);
            let (counts, results, unpaired) = theirs(file);
            let ours_paired: u64 = ours.counts.values().sum();
            let theirs_paired: u64 = counts.values().sum();
            eprintln!("{name}: {ours_paired} messages read; tshark {theirs_paired} (+{unpaired} not paired)");
            assert_eq!(ours.counts, counts, "{name}: messages per (protocol, code, kind)");
            // Each answer's result is tshark's, but for those whose Result-Code came in a
            // later fragment: those are exactly the answers tshark has and we lack.
            let mut missing = BTreeMap::<u32, u64>::new();
            for (&(command, result), &n) in &results {
                let have = ours.results.get(&(command, result)).copied().unwrap_or(0);
                assert!(have <= n, "{name}: {have} answers to {command} with result {result}, tshark {n}");
                *missing.entry(command).or_default() += n - have;
            }
            assert!(ours.results.keys().all(|k| results.contains_key(k)), "{name}: {:?} vs {results:?}", ours.results);
            missing.retain(|_, n| *n > 0);
            assert_eq!(missing, ours.result_in_a_later_fragment, "{name}: answers without their result");
            total += ours_paired;
        }
        assert!(total > 1000, "the shared captures hold thousands of messages; read {total}");
    }
}
