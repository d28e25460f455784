//! The message rules as users write them: `deny-message = ["NGAP InitialUEMessage
//! initiating"]`, `message-rate = ["Diameter Credit-Control request 50/s burst 100"]`.
//! A message is a protocol, a procedure or command (a name from `names`, or its code) and,
//! optionally, a kind; a rate is messages a second per source, with a burst.

use anyhow::{anyhow, bail, Result};
use sctp_common::{
    abi::{MessageRule, LABEL_LEN},
    parse::message::{Kind, Protocol},
};

use crate::names;

/// Which messages a rule is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MessageSpec {
    pub protocol: Protocol,
    pub code: u32,
    /// None: every kind.
    pub kind: Option<Kind>,
}

impl MessageSpec {
    /// The rule's slot in the rule set: dropped (`rate` 0) or limited.
    #[must_use]
    pub fn rule(&self, id: u8, rate: u32, burst: u32) -> MessageRule {
        MessageRule::about(self.protocol as u8, self.kind.map(|k| k as u8), self.code, id, rate, burst)
    }

    /// How `rules show` names it, after `prefix` and before `suffix`: by name where the
    /// label has room, else by code.
    #[must_use]
    pub fn label(&self, prefix: &str, suffix: &str) -> String {
        let kind = self.kind.map_or(String::new(), |k| format!(" {}", k.name()));
        let p = self.protocol.name();
        let named = names::name(self.protocol, self.code)
            .map(|n| format!("{prefix} {p} {n}{kind}{suffix}"))
            .filter(|l| l.len() <= LABEL_LEN);
        named.unwrap_or_else(|| format!("{prefix} {p} {}{kind}{suffix}", self.code))
    }
}

/// A `deny-message` entry: `PROTOCOL MESSAGE [KIND]`.
pub fn parse_message(spec: &str) -> Result<MessageSpec> {
    let words: Vec<&str> = spec.split_whitespace().collect();
    message_of(spec, &words)
}

/// A `message-rate` entry: `PROTOCOL MESSAGE [KIND] RATE/s [burst N]`; the burst is the
/// rate unless given.
pub fn parse_rate(spec: &str) -> Result<(MessageSpec, u32, u32)> {
    let words: Vec<&str> = spec.split_whitespace().collect();
    let at = words
        .iter()
        .position(|w| w.ends_with("/s"))
        .ok_or_else(|| anyhow!("message-rate {spec:?}: give a rate, e.g. \"NGAP InitialUEMessage 100/s burst 200\""))?;
    let number = |what: &str, w: &str| -> Result<u32> {
        w.parse::<u32>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| anyhow!("message-rate {spec:?}: the {what} must be a whole number of at least 1, not {w:?}"))
    };
    let rate = number("rate", words[at].trim_end_matches("/s"))?;
    let burst = match &words[at + 1..] {
        [] => rate,
        ["burst", n] => number("burst", n)?,
        _ => bail!("message-rate {spec:?}: after the rate only \"burst N\" may follow"),
    };
    Ok((message_of(spec, &words[..at])?, rate, burst))
}

fn message_of(spec: &str, words: &[&str]) -> Result<MessageSpec> {
    let [protocol, code, rest @ ..] = words else {
        bail!("message {spec:?}: write PROTOCOL MESSAGE [KIND], e.g. \"NGAP InitialUEMessage initiating\" or \"Diameter 272 request\"");
    };
    let protocol = parse_protocol(protocol)?;
    let code = parse_code(protocol, code)?;
    let kind = match rest {
        [] => None,
        [k] => Some(parse_kind(protocol, k)?),
        _ => bail!("message {spec:?}: too many words; write PROTOCOL MESSAGE [KIND]"),
    };
    Ok(MessageSpec { protocol, code, kind })
}

fn parse_protocol(word: &str) -> Result<Protocol> {
    let readable = Protocol::ALL.into_iter().filter(|p| *p != Protocol::Dtls);
    if word.eq_ignore_ascii_case(Protocol::Dtls.name()) {
        bail!("DTLS messages are encrypted and never read: drop them with deny-ppid (47, 66-69)");
    }
    readable.clone().find(|p| p.name().eq_ignore_ascii_case(word)).ok_or_else(|| {
        let all: Vec<&str> = readable.map(Protocol::name).collect();
        anyhow!("unknown protocol {word:?}: one of {}", all.join(", "))
    })
}

/// The largest code of each protocol (see `parse::message::Message::code`).
fn max_code(protocol: Protocol) -> u32 {
    match protocol {
        Protocol::Diameter => 0x00ff_ffff,
        Protocol::M3ua | Protocol::Sua | Protocol::M2ua | Protocol::M2pa => 0xffff,
        _ => 0xff,
    }
}

/// A name from the protocol's table (any case, `-` or `_`), or the code as a number.
fn parse_code(protocol: Protocol, word: &str) -> Result<u32> {
    if let Ok(n) = word.parse::<u32>() {
        let max = max_code(protocol);
        if n > max {
            bail!("{} codes are 0-{max}, not {n}", protocol.name());
        }
        return Ok(n);
    }
    let plain = |s: &str| s.to_ascii_lowercase().replace('_', "-");
    let table = names::table(protocol);
    table.iter().find(|(_, n)| plain(n) == plain(word)).map(|(c, _)| *c).ok_or_else(|| {
        if table.is_empty() {
            anyhow!("{} messages have no names here: give the code as a number", protocol.name())
        } else {
            anyhow!(
                "no {} message is named {word:?}: give its name as `inspect` prints it, or its code",
                protocol.name()
            )
        }
    })
}

/// The kinds a protocol's messages have.
fn kinds(protocol: Protocol) -> &'static [Kind] {
    match protocol {
        Protocol::Diameter => &[Kind::Request, Kind::Answer],
        Protocol::Ngap | Protocol::S1ap | Protocol::X2ap | Protocol::Xnap | Protocol::F1ap | Protocol::E1ap => {
            &[Kind::Initiating, Kind::Successful, Kind::Unsuccessful]
        }
        _ => &[Kind::Message],
    }
}

fn parse_kind(protocol: Protocol, word: &str) -> Result<Kind> {
    let allowed = kinds(protocol);
    allowed.iter().copied().find(|k| k.name().eq_ignore_ascii_case(word)).ok_or_else(|| {
        let names: Vec<&str> = allowed.iter().map(|k| k.name()).collect();
        anyhow!("{} messages are of kind {}, not {word:?}", protocol.name(), names.join(", "))
    })
}

#[cfg(test)]
mod tests {
    use sctp_common::abi::MessageSlot;

    use super::*;

    #[test]
    fn messages_are_read_by_name_or_code_with_or_without_a_kind() {
        let ngap = parse_message("NGAP InitialUEMessage initiating").unwrap();
        assert_eq!(ngap, MessageSpec { protocol: Protocol::Ngap, code: 15, kind: Some(Kind::Initiating) });
        let ccr = parse_message(" diameter  credit_control  Request ").unwrap();
        assert_eq!(ccr, MessageSpec { protocol: Protocol::Diameter, code: 272, kind: Some(Kind::Request) });
        assert_eq!(parse_message("M3UA DATA").unwrap().code, 0x0101);
        assert_eq!(parse_message("X2AP 9").unwrap(), MessageSpec { protocol: Protocol::X2ap, code: 9, kind: None });
        let (m, rate, burst) = parse_rate("S1AP InitialUEMessage 100/s burst 250").unwrap();
        assert_eq!((m.code, m.kind, rate, burst), (12, None, 100, 250));
        // The burst is the rate unless given.
        assert_eq!(parse_rate("Diameter 272 answer 5/s").unwrap().2, 5);
    }

    #[test]
    fn mistakes_say_what_to_write() {
        for (spec, says) in [
            ("NGAP", "write PROTOCOL MESSAGE"),
            ("NGSP NGSetup", "unknown protocol"),
            ("DTLS 0", "deny-ppid"),
            ("NGAP NGSetupp", "no NGAP message is named"),
            ("NGAP 256", "0-255"),
            ("NGAP NGSetup request", "initiating, successful, unsuccessful"),
            ("X2AP Setup", "give the code as a number"),
            ("NGAP NGSetup initiating extra", "too many words"),
        ] {
            let e = parse_message(spec).unwrap_err().to_string();
            assert!(e.contains(says), "{spec}: {e}");
        }
        for (spec, says) in [
            ("NGAP NGSetup", "give a rate"),
            ("NGAP NGSetup 0/s", "at least 1"),
            ("NGAP NGSetup 5/s burst", "only \"burst N\""),
            ("NGAP NGSetup 5/s burst x", "not \"x\""),
        ] {
            let e = parse_rate(spec).unwrap_err().to_string();
            assert!(e.contains(says), "{spec}: {e}");
        }
    }

    #[test]
    fn a_rule_matches_its_messages_and_no_others() {
        let key = |kind: Kind, code| MessageSlot::key(Protocol::Ngap as u8, kind as u8, code, 0, 0).0;
        let any = parse_message("NGAP InitialUEMessage").unwrap().rule(3, 0, 0);
        let one = parse_message("NGAP InitialUEMessage initiating").unwrap().rule(3, 0, 0);
        assert!(any.matches(key(Kind::Initiating, 15)) && any.matches(key(Kind::Successful, 15)));
        assert!(one.matches(key(Kind::Initiating, 15)) && !one.matches(key(Kind::Successful, 15)));
        assert!(!any.matches(key(Kind::Initiating, 21)));
        let s1ap = MessageSlot::key(Protocol::S1ap as u8, Kind::Initiating as u8, 15, 0, 0).0;
        assert!(!any.matches(s1ap));
        let label = parse_message("Diameter Authentication-Information request").unwrap().label("deny-message", "");
        assert_eq!(label, "deny-message Diameter Authentication-Information request");
        let long = parse_rate("Diameter Authentication-Information request 100/s burst 200").unwrap().0;
        assert_eq!(long.label("message-rate", " 100/s burst 200"), "message-rate Diameter 318 request 100/s burst 200");
    }
}
