//! The application messages `inspect` reports (its JSON's `messages`) against tshark's
//! dissection on every shared capture: per (protocol, code, kind) the same counts,
//! Diameter's Result-Codes, and each command's answers timed from their requests as
//! tshark times them. A message counts once: at the DATA chunk that begins it (B bit), a
//! retransmitted TSN not again; tshark is asked to reassemble fragmented messages
//! (`sctp.reassembly`), so it dissects each once too.

use std::{collections::BTreeMap, path::Path, process::Command};

use integration_tests::{inspect_json, shared_captures};
use sctp_user::{replay::engine::Kind, rules::Compiled};

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

/// tshark's Diameter response times per command: (answers timed, least, greatest), in µs.
/// In a frame of several messages only when each has its time (a field's occurrences are
/// listed per field, not per message).
fn their_response_times(file: &Path) -> BTreeMap<u32, (u64, u64, u64)> {
    let mut out = BTreeMap::new();
    let fields = ["diameter.flags.request", "diameter.cmd.code", "diameter.resp_time"];
    for row in tshark(file, "diameter.flags.request == 0", &fields) {
        let answers: Vec<&String> =
            row[1].iter().zip(&row[0]).filter(|(_, r)| *r == "0" || *r == "False").map(|(c, _)| c).collect();
        if answers.len() != row[2].len() {
            continue;
        }
        for (code, time) in answers.into_iter().zip(&row[2]) {
            #[expect(clippy::cast_possible_truncation, clippy::cast_sign_loss, reason = "seconds to whole µs")]
            let us = (time.parse::<f64>().unwrap() * 1e6) as u64;
            let e = out.entry(code.parse().unwrap()).or_insert((0, u64::MAX, 0));
            *e = (e.0 + 1, e.1.min(us), e.2.max(us));
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
            // Response times: every answer tshark times, we time. We time more: tshark pairs
            // a request with its answer within one conversation of addresses, so an answer
            // sent back on another path of a multi-homed association goes untimed there
            // (pcaptoparquet: 16 answers each to 271 and 280). The extremes are within a
            // millisecond: tshark times a fragmented message from its last fragment, we
            // from its first chunk (all the kernel sees of it at once); 82 ms to 97 ms for
            // pcaptoparquet's Server-Assignment answers, 0.1 ms apart.
            for (c, (n, tmin, tmax)) in their_response_times(file) {
                let (count, min, max) = ours.response_us.get(&c).copied().unwrap_or_default();
                assert!(count >= n, "{name}: {count} answers to {c} timed, tshark {n}");
                assert!(
                    min.abs_diff(tmin) <= 1000 && max.abs_diff(tmax) <= 1000,
                    "{name}: {c}: {min}-{max} µs, tshark {tmin}-{tmax}"
                );
                timed += n;
            }
            total += ours_paired;
        }
        assert!(total > 1000, "the shared captures hold thousands of messages; read {total}");
        assert!(timed > 100, "the shared captures hold hundreds of Diameter answers tshark times; {timed}");
        eprintln!("{total} messages equal to tshark's; {timed} Diameter answers timed as tshark times them");
    }
}
