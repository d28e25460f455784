//! CPU placement.

/// Pins the calling thread to the CPU it runs on. `BPF_PROG_TEST_RUN` runs on the
/// caller's CPU, and a flow's TSN state (highest TSN, DATA at or below it) is kept per
/// CPU: a replay whose frames run on two CPUs judges each against that CPU's own highest
/// TSN, while the host engine sees one sequence.
pub fn pin_to_current() {
    // SAFETY: plain libc calls on this thread with a zeroed, then filled, cpu_set_t.
    unsafe {
        let cpu = usize::try_from(libc::sched_getcpu()).unwrap_or(0);
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &raw const set);
    }
}
