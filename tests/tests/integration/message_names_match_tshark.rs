//! The names `sctp_user::names` gives messages, written from the specifications, against
//! tshark's value tables (`tshark -G values`): every code we name, tshark names alike
//! (its AP names carry the ASN.1 constant's `id-` prefix, its dictionary marks 3GPP's
//! Diameter commands `3GPP-`: both left out here, as the contract's names do). M3UA's
//! names are RFC 4666's message abbreviations, which tshark keeps in no value table.

use std::{collections::BTreeMap, process::Command};

use sctp_common::parse::message::Protocol;
use sctp_user::names;

/// tshark's value table of `field`: code -> names (a field may list a code in several
/// tables, one per protocol version).
fn values(all: &str, field: &str) -> BTreeMap<u32, Vec<String>> {
    let mut table: BTreeMap<u32, Vec<String>> = BTreeMap::new();
    for line in all.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        if f.len() == 4 && f[0] == "V" && f[1] == field {
            if let Ok(code) = f[2].parse() {
                table
                    .entry(code)
                    .or_default()
                    .push(f[3].trim_start_matches("id-").trim_start_matches("3GPP-").to_string());
            }
        }
    }
    table
}

mod host {
    use super::*;

    #[test]
    fn message_names_match_tshark() {
        let out = Command::new("tshark")
            .args(["-G", "values"])
            .output()
            .expect("tshark must be installed (cargo xtask setup)");
        assert!(out.status.success(), "tshark -G values failed");
        let all = String::from_utf8_lossy(&out.stdout);
        for (protocol, field) in [
            (Protocol::Ngap, "ngap.procedureCode"),
            (Protocol::S1ap, "s1ap.procedureCode"),
            (Protocol::Diameter, "diameter.cmd.code"),
        ] {
            let theirs = values(&all, field);
            assert!(!theirs.is_empty(), "tshark has no values of {field}");
            let ours = names::table(protocol);
            assert!(!ours.is_empty());
            let wrong: Vec<String> = ours
                .iter()
                .filter(|(code, name)| !theirs.get(code).is_some_and(|t| t.iter().any(|n| n == name)))
                .map(|(code, name)| format!("{code} {name} (tshark: {:?})", theirs.get(code)))
                .collect();
            assert!(wrong.is_empty(), "{}: names tshark does not give: {wrong:#?}", protocol.name());
            eprintln!(
                "{}: {} names equal to tshark's ({} codes in its table)",
                protocol.name(),
                ours.len(),
                theirs.len()
            );
        }
    }
}
