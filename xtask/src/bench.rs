//! `cargo xtask bench`: the XDP program's per-packet cost (sctp-user bench, written to
//! target/bench/xdp.json) and `inspect` timed against tshark, end to end, on the same
//! captures in the same run (written to target/bench/inspect.json).

use std::{
    os::unix::process::ExitStatusExt as _,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{bail, Context as _, Result};
use serde_json::json;

use crate::cmd;

/// The largest capture of the shared set; any pcap can be given instead.
const DEFAULT_CAPTURE: &str = "../shared/captures/pcaptoparquet__30_sctp.pcapng";
/// Packets of the big capture, made of copies of the small one (`mergecap -a`).
const BIG_PACKETS: u64 = 1_000_000;
const ROUNDS: usize = 5;

pub(crate) fn bench(root: &Path, capture: Option<&Path>) -> Result<()> {
    let bin = root.join("target/release/sctp-user");
    let dir = root.join("target/bench");
    std::fs::create_dir_all(&dir)?;
    let json = dir.join("xdp.json");
    cmd::run(Command::new(&bin).args(["bench", "--json"]).arg(&json))?;
    eprintln!("bench: wrote {}", json.display());

    let capture = capture.map_or_else(|| root.join(DEFAULT_CAPTURE), Path::to_path_buf);
    if !capture.exists() {
        eprintln!("bench: SKIPPED inspect vs tshark: {} is absent", capture.display());
        return Ok(());
    }
    let big = big_capture(&bin, &capture, &dir)?;
    let mut rows = Vec::new();
    println!(
        "\n{:<34} {:>9} {:>10} {:>16} {:>16} {:>8} {:>9}",
        "inspect vs tshark -z sctp,stat",
        "packets",
        "tshark s",
        "1 thread s (x)",
        "all cores s (x)",
        "cores x",
        "peak MB"
    );
    for file in [&capture, &big] {
        let packets = packets(&bin, file)?;
        let inspect = |threads: &str| {
            let mut c = Command::new(&bin);
            c.args(["inspect", "--format", "json", "--threads", threads, "--pcap"]).arg(file);
            c
        };
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get).to_string();
        let mut tshark = Command::new("tshark");
        tshark.args(["-q", "-z", "sctp,stat", "-r"]).arg(file);
        let [theirs, one, all] = interleaved([tshark, inspect("1"), inspect(&cores)])?;
        let name = file.file_name().unwrap_or_default().to_string_lossy().into_owned();
        println!(
            "{name:<34} {packets:>9} {:>10.3} {:>9.3} ({:>4.1}) {:>9.3} ({:>4.1}) {:>8.2} {:>9.1}",
            theirs.secs,
            one.secs,
            theirs.secs / one.secs,
            all.secs,
            theirs.secs / all.secs,
            one.secs / all.secs,
            all.peak_mb.max(one.peak_mb),
        );
        rows.push(json!({
            "capture": name, "packets": packets, "cores": cores,
            "tshark_s": theirs.secs, "tshark_peak_mb": theirs.peak_mb,
            "inspect_1_thread_s": one.secs, "inspect_all_cores_s": all.secs,
            "x_tshark_1_thread": theirs.secs / one.secs, "x_tshark_all_cores": theirs.secs / all.secs,
            "x_cores": one.secs / all.secs, "inspect_peak_mb": all.peak_mb.max(one.peak_mb),
        }));
    }
    let out = dir.join("inspect.json");
    std::fs::write(&out, serde_json::to_string_pretty(&json!({ "rounds": ROUNDS, "runs": rows }))?)?;
    eprintln!("bench: wrote {}", out.display());
    Ok(())
}

/// SCTP packets `inspect` counts in the capture (and a check that it reads it).
fn packets(bin: &Path, file: &Path) -> Result<u64> {
    let out = Command::new(bin).args(["inspect", "--format", "json", "--pcap"]).arg(file).output()?;
    if !out.status.success() {
        bail!("inspect {} failed: {}", file.display(), String::from_utf8_lossy(&out.stderr));
    }
    let j: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    j["packets"]["total"].as_u64().context("packets.total in inspect's JSON")
}

/// About `BIG_PACKETS` packets: copies of `small` one after the other (`mergecap -a`),
/// made once and kept in target/bench.
fn big_capture(bin: &Path, small: &Path, dir: &Path) -> Result<PathBuf> {
    let big = dir.join("million.pcapng");
    if big.exists() {
        return Ok(big);
    }
    let copies = BIG_PACKETS.div_ceil(packets(bin, small)?.max(1));
    let mut c = Command::new("mergecap");
    c.args(["-a", "-F", "pcapng", "-w"]).arg(&big);
    for _ in 0..copies {
        c.arg(small);
    }
    cmd::run(&mut c)?;
    Ok(big)
}

/// Median wall time and peak resident memory of a command.
#[derive(Clone, Copy, Default)]
struct Timing {
    secs: f64,
    peak_mb: f64,
}

/// Runs the commands in turn, `ROUNDS` times, so that a noisy moment hits them alike;
/// each one's median time and its largest peak memory.
fn interleaved<const N: usize>(mut cmds: [Command; N]) -> Result<[Timing; N]> {
    let mut times = [(); N].map(|()| Vec::new());
    let mut peaks = [0f64; N];
    for _ in 0..ROUNDS {
        for (i, c) in cmds.iter_mut().enumerate() {
            let (t, peak) = timed(c)?;
            times[i].push(t);
            peaks[i] = peaks[i].max(peak);
        }
    }
    let mut out = [Timing::default(); N];
    for (i, t) in times.iter_mut().enumerate() {
        t.sort();
        out[i] = Timing { secs: t[ROUNDS / 2].as_secs_f64(), peak_mb: peaks[i] };
    }
    Ok(out)
}

/// One run: wall time and peak resident memory in MB (from the kernel's accounting of
/// the child, `wait4`).
fn timed(cmd: &mut Command) -> Result<(Duration, f64)> {
    let start = Instant::now();
    let child = cmd.stdout(Stdio::null()).stderr(Stdio::null()).spawn().context("cannot start the timed command")?;
    let pid = libc::pid_t::try_from(child.id())?;
    let mut status = 0;
    // SAFETY: zeroed rusage is a valid value for wait4 to fill.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waiting for our own child, with valid pointers.
    if unsafe { libc::wait4(pid, &raw mut status, 0, &raw mut usage) } != pid {
        bail!("waiting for {cmd:?}: {}", std::io::Error::last_os_error());
    }
    let elapsed = start.elapsed();
    let status = std::process::ExitStatus::from_raw(status);
    if !status.success() {
        bail!("{cmd:?} failed ({status})");
    }
    // ru_maxrss is in KiB on Linux.
    #[expect(clippy::cast_precision_loss, reason = "a memory size to print")]
    let peak_mb = usage.ru_maxrss as f64 / 1024.0;
    Ok((elapsed, peak_mb))
}
