//! The verifier's budget is shared by every feature: the number of instructions it
//! processes to accept each variant of the XDP program must stay under the budget on the
//! host kernel, so a change that blows it up fails here with the number (not in a timed
//! test: the count is deterministic for a kernel and an object).

use integration_tests::require_root;
use sctp_user::bpf::{LoadOptions, XdpSctp};

/// The budget per variant on the host kernel (6.18): a tenth of the verifier's limit.
/// Today the linear variant needs 48,119 and the multi-buffer one 20,140 (the chunk
/// walk's step is a `bpf_loop` callback, checked once; it was 433,030 and 131,686 when
/// the walk was a bounded loop, checked once per iteration). Kernels before 5.17 get the
/// bounded loop still: their count is printed by the VM runs (`sctp-user bench`).
const LINEAR_BUDGET: u32 = 100_000;
const MULTI_BUFFER_BUDGET: u32 = 100_000;

fn count(multi_buffer: bool) -> Option<(bool, u32)> {
    let mut prog = XdpSctp::load(&LoadOptions {
        multi_buffer,
        ..LoadOptions::default()
    })
    .unwrap();
    let n = prog.verified_instructions().unwrap()?;
    Some((prog.multi_buffer(), n))
}

#[test]
#[ignore = "needs root: run by cargo xtask test"]
fn each_program_variant_stays_within_the_verifier_budget() {
    require_root();
    let mut counts = Vec::new();
    for want_frags in [false, true] {
        let Some((frags, n)) = count(want_frags) else {
            eprintln!("SKIPPED: this kernel does not report verified instructions (before 5.16)");
            return;
        };
        let (variant, budget) = if frags {
            ("multi-buffer", MULTI_BUFFER_BUDGET)
        } else {
            ("linear", LINEAR_BUDGET)
        };
        eprintln!("{variant} program: the verifier processed {n} instructions (budget {budget})");
        counts.push((variant, n, budget));
    }
    for (variant, n, budget) in counts {
        assert!(n <= budget, "{variant} program: {n} instructions processed, over the budget of {budget}");
    }
}
