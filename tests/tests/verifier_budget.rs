//! The verifier's budget is shared by every feature: the number of instructions it
//! processes to accept each variant of the XDP program must stay under the budget on the
//! host kernel, so a change that blows it up fails here with the number (not in a timed
//! test: the count is deterministic for a kernel and an object).

use integration_tests::require_root;
use sctp_user::bpf::{LoadOptions, XdpSctp};

/// The budget per variant: a tenth of the verifier's limit of 1,000,000.
const BUDGET: u32 = 100_000;

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
    for want_frags in [false, true] {
        let Some((frags, n)) = count(want_frags) else {
            eprintln!("SKIPPED: this kernel does not report verified instructions (before 5.16)");
            return;
        };
        let variant = if frags { "multi-buffer" } else { "linear" };
        eprintln!("{variant} program: the verifier processed {n} instructions (budget {BUDGET})");
        assert!(n <= BUDGET, "{variant} program: {n} instructions processed, over the budget of {BUDGET}");
    }
}
