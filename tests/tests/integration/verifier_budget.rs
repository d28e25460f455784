//! The verifier's budget is shared by every feature: the number of instructions it
//! processes to accept each variant of the XDP program, its TC egress companion and their
//! message counts must stay under the budget on the
//! host kernel, so a change that blows it up fails here with the number (not in a timed
//! test: the count is deterministic for a kernel and an object).

use integration_tests::require_root;
use sctp_user::bpf::{LoadOptions, XdpSctp};

/// The budget of the linear variant (its chunk walk's step a `bpf_loop` callback, checked
/// once): a tenth of the verifier's limit. 86,604 on 6.18.44; it was 433,030 when the walk
/// was a bounded loop checked once per path and iteration.
const BUDGET: u32 = 100_000;
/// The multi-buffer variant, every read a helper call: 74,069 on the 6.18 kernel before,
/// 293,442 on 6.18.44 with the same object (its verifier prunes helper reads less).
const MULTI_BUFFER_BUDGET: u32 = 400_000;
/// The variant kernels before 5.17 get, whose walk is a bounded loop of BPF-to-BPF calls
/// (314,929 today): it must stay well inside the verifier's limit of 1,000,000, which
/// 5.10 (pruning less than 6.18) reaches first.
const BOUNDED_BUDGET: u32 = 600_000;
/// The TC egress program and its message count, of the linear and multi-buffer variants:
/// the egress walk reads through the socket buffer helper, as the multi-buffer XDP walk
/// does (319,225 on 6.18 when first checked, against no budget before). Those of the
/// bounded variant have the bounded budget (597,167 then).
const EGRESS_BUDGET: u32 = 400_000;

struct Variant {
    name: &'static str,
    options: LoadOptions,
    budget: u32,
}

/// Tests that need root on this host (BPF, namespaces), not kernel SCTP.
mod root {
    use super::*;

    #[test]
    #[ignore = "needs root: run by cargo xtask test"]
    fn each_program_variant_stays_within_the_verifier_budget() {
        require_root();
        let variants = [
            Variant { name: "linear", options: LoadOptions::default(), budget: BUDGET },
            Variant {
                name: "multi-buffer",
                options: LoadOptions { multi_buffer: true, ..LoadOptions::default() },
                budget: MULTI_BUFFER_BUDGET,
            },
            Variant {
                name: "bounded walk (kernels before 5.17)",
                options: LoadOptions { bounded_walk: true, ..LoadOptions::default() },
                budget: BOUNDED_BUDGET,
            },
        ];
        let mut counts = Vec::new();
        for v in variants {
            let mut prog = XdpSctp::load(&v.options).unwrap();
            let Some(n) = prog.verified_instructions().unwrap() else {
                eprintln!("SKIPPED: this kernel does not report verified instructions (before 5.16)");
                return;
            };
            eprintln!("{} program: the verifier processed {n} instructions (budget {})", v.name, v.budget);
            counts.push((v.name, n, v.budget));
            let tally = prog.verified_tally_instructions().unwrap().unwrap_or(0);
            // The message count it tail-calls, a program verified apart, has the same budget.
            eprintln!("{} message count: the verifier processed {tally} instructions (budget {})", v.name, v.budget);
            counts.push((v.name, tally, v.budget));
            let [egress, egress_tally] = prog.verified_egress_instructions().unwrap().map(|n| n.unwrap_or(0));
            let budget = if v.budget == BOUNDED_BUDGET { BOUNDED_BUDGET } else { EGRESS_BUDGET };
            eprintln!("{} egress program: {egress}, its message count: {egress_tally} (budget {budget})", v.name);
            counts.push((v.name, egress, budget));
            counts.push((v.name, egress_tally, budget));
        }
        for (variant, n, budget) in counts {
            assert!(n <= budget, "{variant} program: {n} instructions processed, over the budget of {budget}");
        }
    }
}
