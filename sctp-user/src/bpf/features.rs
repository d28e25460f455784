//! What the running kernel offers the XDP program, found by loading tiny programs that
//! call each helper (as libbpf's helper probes do, through aya), not by reading its
//! version: distributions backport features, and a version says nothing of those.

use aya::{
    programs::ProgramType,
    sys::{is_helper_supported, BpfHelper},
};

/// The kernel features that choose the program's variant and its clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Features {
    /// `bpf_loop` (5.17): the chunk walk's steps are a callback the verifier checks once;
    /// without it, the bounded-loop variant.
    pub kernel_loop: bool,
    /// `bpf_ktime_get_coarse_ns` (5.11): the clock of flow ages and rates; without it,
    /// the precise clock.
    pub coarse_clock: bool,
    /// Multi-buffer XDP (5.18), probed by `bpf_xdp_get_buff_len`, which came with it.
    pub multi_buffer: bool,
}

impl Features {
    /// Probes the running kernel (needs the privileges loading needs). A probe that
    /// cannot tell (an unexpected error) counts as absent: the variant chosen then runs on
    /// any kernel, at a cost.
    #[must_use]
    pub fn probe() -> Self {
        let has = |helper: BpfHelper| match is_helper_supported(ProgramType::Xdp, helper) {
            Ok(yes) => yes,
            Err(e) => {
                log::debug!("probing {helper:?} failed ({e}): taken as absent");
                false
            }
        };
        Self {
            kernel_loop: has(BpfHelper::BPF_FUNC_loop),
            coarse_clock: has(BpfHelper::BPF_FUNC_ktime_get_coarse_ns),
            multi_buffer: has(BpfHelper::BPF_FUNC_xdp_get_buff_len),
        }
    }
}
