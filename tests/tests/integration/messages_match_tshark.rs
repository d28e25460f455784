//! The application messages `inspect` reports (its JSON's `messages`) against tshark's
//! dissection on every shared capture: per (protocol, code, kind) the same counts,
//! Diameter's Result-Codes, and each answer timed from its request as tshark times it. A
//! message counts once: at the DATA chunk that begins it (B bit), a retransmitted TSN not
//! again; tshark is asked to reassemble fragmented messages (`sctp.reassembly`), so it
//! dissects each once too.

use std::{collections::BTreeMap, path::Path, process::Command};

use integration_tests::{inspect_json, shared_captures, tshark::nanoseconds};
use sctp_common::parse::{locate_sctp, NoTally};
use sctp_user::{assoc::messages::MessageWatch, capture::Capture, replay::engine::Kind, rules::Compiled};

/// (protocol, code, kind) -> messages.
type Counts = BTreeMap<(String, u32, String), u64>;

/// What we read: the counts, and each Diameter answer's (command, result) count.
#[derive(Default)]
struct Ours {
    counts: Counts,
    results: BTreeMap<(u32, u32), u64>,
    /// Answers fragmented before their Result-Code, per command: the first chunk, all the
    /// kernel sees of a message at once, does not hold it (inspect's result "0").
    result_in_a_later_fragment: BTreeMap<u32, u64>,
    /// Diameter answers timed from their requests per command: (count, least, greatest µs).
    response_us: BTreeMap<u32, (u64, u64, u64)>,
}

/// What `inspect` reports: its JSON's `messages`.
fn ours(file: &Path) -> Ours {
    let doc = inspect_json(file, Kind::Host, &Compiled::none());
    let mut out = Ours::default();
    for m in doc["messages"].as_array().unwrap() {
        let n = |k: &str| m[k].as_u64().map(|v| u32::try_from(v).unwrap());
        let protocol = m["protocol"].as_str().unwrap().to_string();
        let (code, kind) = match (n("procedure"), n("command"), n("class")) {
            (Some(p), _, _) => (p, m["kind"].as_str().unwrap().to_string()),
            (_, Some(c), _) => (c, m["kind"].as_str().unwrap().to_string()),
            (_, _, Some(class)) => (class << 8 | n("type").unwrap(), "message".to_string()),
            _ => (n("code").unwrap(), "message".to_string()),
        };
        let count = m["count"].as_u64().unwrap();
        *out.counts.entry((protocol, code, kind)).or_default() += count;
        for (result, k) in m["results"].as_object().into_iter().flatten() {
            let (result, k): (u32, u64) = (result.parse().unwrap(), k.as_u64().unwrap());
            if result == 0 {
                *out.result_in_a_later_fragment.entry(code).or_default() += k;
            } else {
                *out.results.entry((code, result)).or_default() += k;
            }
        }
        if let Some(r) = m.get("response_us").filter(|r| r["count"].as_u64() > Some(0)) {
            let us = |k: &str| r[k].as_u64().unwrap();
            let e = out.response_us.entry(code).or_insert((0, u64::MAX, 0));
            *e = (e.0 + us("count"), e.1.min(us("min")), e.2.max(us("max")));
        }
    }
    out
}

/// An answer: the time of the frame that brought it (ns) and its command.
type Answer = (u64, u32);

/// Our Diameter answers timed from their requests, as `inspect`'s frame watch times them
/// (the same `MessageWatch`, without an association table: it pairs by ports).
fn our_response_times(file: &Path) -> BTreeMap<Answer, Vec<u64>> {
    let mut capture = Capture::open(file).unwrap();
    let mut watch = MessageWatch::default();
    let mut out = BTreeMap::<Answer, Vec<u64>>::new();
    while let Some(f) = capture.next_frame() {
        let Ok(loc) = locate_sctp(f.data, &mut NoTally) else { continue };
        for c in watch.frame(f.data, &loc, f.ts_ns, None) {
            if let Some(ns) = c.response_ns {
                out.entry((f.ts_ns, c.key.code)).or_default().push(ns);
            }
        }
    }
    out
}

/// Each Diameter answer tshark pairs with its request, as we time it: from the frame of
/// the request's first chunk to the frame of the answer's first chunk (all the kernel sees
/// of a message at once), where tshark times a fragmented message from its last fragment,
/// the frame it reassembles it in. Only answers in frames of one Diameter message, whose
/// request is in such a frame too: a field's occurrences are listed per field, not per
/// message, so in a frame of several the fragments could not be told apart. Also how many
/// answers tshark timed in all.
fn their_response_times(file: &Path) -> (Vec<(Answer, u64)>, usize) {
    let time: BTreeMap<u64, u64> = tshark(file, "sctp", &["frame.number", "frame.time_epoch"])
        .iter()
        .map(|r| (number(&r[0][0]), nanoseconds(&r[1][0])))
        .collect();
    let fields = ["frame.number", "sctp.fragment", "diameter.flags.request", "diameter.cmd.code", "diameter.answer_to"];
    let rows = tshark(file, "diameter", &fields);
    // A frame of one Diameter message -> the frame of that message's first chunk.
    let first: BTreeMap<u64, u64> = rows
        .iter()
        .filter(|r| r[2].len() == 1)
        .map(|r| (number(&r[0][0]), r[1].iter().map(|f| number(f)).min().unwrap_or(number(&r[0][0]))))
        .collect();
    let (mut out, mut timed) = (Vec::new(), 0);
    for row in &rows {
        timed += row[4].len();
        let (Some(answer), [request]) = (first.get(&number(&row[0][0])), &row[4][..]) else { continue };
        let Some(request) = first.get(&number(request)) else { continue };
        out.push(((time[answer], row[3][0].parse().unwrap()), time[answer] - time[request]));
    }
    (out, timed)
}

/// A frame number as tshark prints it.
fn number(s: &str) -> u64 {
    s.parse().unwrap()
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
        let (mut total, mut timed) = (0, 0);
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
            // Response times, answer by answer: every answer tshark pairs with its request,
            // we time from the same request, to the nanosecond. We time more: tshark pairs
            // within one conversation of addresses, so an answer sent back on another path
            // of a multi-homed association goes untimed there (pcaptoparquet: 16 answers
            // each to 271 and 280).
            if !counts.keys().any(|(protocol, ..)| protocol == "Diameter") {
                continue;
            }
            let mut mine = our_response_times(file);
            let mut per_command = BTreeMap::<u32, (u64, u64, u64)>::new();
            for (&(_, command), times) in &mine {
                for &ns in times {
                    let e = per_command.entry(command).or_insert((0, u64::MAX, 0));
                    *e = (e.0 + 1, e.1.min(ns / 1000), e.2.max(ns / 1000));
                }
            }
            assert_eq!(ours.response_us, per_command, "{name}: inspect's response times, per command, in µs");
            let (theirs, tshark_timed) = their_response_times(file);
            // Every answer tshark timed is compared: none shares its frame with another message.
            assert_eq!(theirs.len(), tshark_timed, "{name}: answers tshark timed in frames of several messages");
            for &((at, command), t) in &theirs {
                // Answers to one command in one frame: each of tshark's times is one of ours.
                let ours = mine.entry((at, command)).or_default();
                let Some(i) = ours.iter().position(|&ns| ns == t) else {
                    panic!("{name}: the answer to {command} at {at} ns: {ours:?} here, tshark {t}")
                };
                ours.swap_remove(i);
            }
            let untimed_there: usize = mine.values().map(Vec::len).sum();
            eprintln!(
                "{name}: {tshark_timed} Diameter answers timed as tshark times them; {untimed_there} more timed here"
            );
            timed += theirs.len();
        }
        assert!(total > 1000, "the shared captures hold thousands of messages; read {total}");
        assert!(timed > 700, "the shared captures hold hundreds of Diameter answers tshark times; {timed}");
        eprintln!("{total} messages equal to tshark's; {timed} Diameter answers timed as tshark times them");
    }
}
