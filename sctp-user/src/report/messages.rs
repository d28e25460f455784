//! Application messages as a table for people: one line per (protocol, message, kind),
//! with Diameter's results and response times and the AP procedures' failure ratio.

use std::fmt::Write as _;

use crate::doc::MessageDoc;

/// The messages section of `inspect`'s table (empty without messages).
#[must_use]
#[expect(clippy::cast_precision_loss, reason = "times and ratios shown to two decimals")]
pub(crate) fn to_table(messages: &[MessageDoc]) -> String {
    let mut out = String::new();
    if messages.is_empty() {
        return out;
    }
    let total: u64 = messages.iter().map(|m| m.count).sum();
    let _ = writeln!(out, "application messages {total}");
    let _ = writeln!(out, "  {:<9} {:<44} {:<12} {:>8}  details", "protocol", "message", "kind", "count");
    for m in messages {
        let message = m.label();
        let mut details = Vec::new();
        if let Some(results) = &m.results {
            let r: Vec<String> = results.iter().map(|(code, n)| format!("{code}:{n}")).collect();
            details.push(format!("results {}", r.join(" ")));
        }
        if let Some(r) = m.response_us.filter(|r| r.count > 0) {
            let ms = |us: Option<u64>| us.map_or(0.0, |v| v as f64 / 1000.0);
            details.push(format!(
                "response ms {:.2}/{:.2}/{:.2} (min/mean/max, {})",
                ms(r.min),
                ms(r.mean),
                ms(r.max),
                r.count
            ));
        }
        if let Some(n) = m.unanswered.filter(|n| *n > 0) {
            details.push(format!("unanswered {n}"));
        }
        if m.kind.as_deref() == Some("unsuccessful") {
            let outcomes: u64 = messages
                .iter()
                .filter(|o| o.protocol == m.protocol && o.procedure == m.procedure)
                .filter(|o| matches!(o.kind.as_deref(), Some("successful" | "unsuccessful")))
                .map(|o| o.count)
                .sum();
            details.push(format!("failed {:.1}% of outcomes", 100.0 * m.count as f64 / outcomes.max(1) as f64));
        }
        let kind = m.kind.as_deref().unwrap_or("");
        let _ = writeln!(out, "  {:<9} {message:<44} {kind:<12} {:>8}  {}", m.protocol, m.count, details.join("  "));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_and_answers_are_told() {
        let ap = MessageDoc::ng_setup;
        let t = to_table(&[ap("successful", 3), ap("unsuccessful", 1)]);
        assert!(t.contains("NGSetup (21)") && t.contains("failed 25.0% of outcomes"), "{t}");
        assert_eq!(to_table(&[]), "");
    }
}
