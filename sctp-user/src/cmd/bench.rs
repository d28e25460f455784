//! `sctp-user bench`: the program's cost per packet class and per rule.

use std::{
    fmt::Write as _,
    path::{Path, PathBuf},
};

use anyhow::{bail, Context as _, Result};

use crate::bench;

/// Measure the program's cost per packet class against an empty XDP program
/// (`BPF_PROG_TEST_RUN`; needs root).
#[derive(clap::Args)]
pub struct Args {
    /// Runs per measurement inside the kernel.
    #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(u32).range(1..))]
    repeat: u32,
    /// Measurements per class (the median is reported).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=100))]
    rounds: u64,
    /// Also write the results as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
}

pub fn run(args: &Args) -> Result<()> {
    let Args { repeat, rounds, json } = args;
    let (repeat, rounds) = (*repeat, usize::try_from(*rounds)?);
    // Checked before the measurement, which takes a while.
    if let Some(path) = json {
        if path.is_dir() {
            bail!("--json {} is a directory: give a file name", path.display());
        }
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
        if !dir.is_dir() {
            bail!("--json {}: directory {} does not exist", path.display(), dir.display());
        }
    }
    let r = bench::run(repeat, rounds)?;
    let mut out = String::new();
    writeln!(
        out,
        "load: {:.0} ms; verifier processed {} instructions",
        r.load_ms,
        r.verifier_instructions.map_or_else(|| "an unknown number of".into(), |n| n.to_string())
    )?;
    // Costs above the empty program (what BPF_PROG_TEST_RUN itself costs on this
    // machine), as a multiple of the per-flow floor's, and as packets per second per core.
    let floor = r.flow_floor_ns - r.baseline_ns;
    writeln!(
        out,
        "{:<28} {:>10} {:>12} {:>9} {:>14}",
        "class", "ns/packet", "above empty", "x floor", "packets/s/core"
    )?;
    let row = |out: &mut String, name: &str, ns: f64| {
        writeln!(
            out,
            "{name:<28} {ns:>10.1} {:>12.1} {:>9.2} {:>14.0}",
            ns - r.baseline_ns,
            (ns - r.baseline_ns) / floor,
            1e9 / ns
        )
    };
    row(&mut out, "empty XDP program", r.baseline_ns)?;
    row(&mut out, "drop-everything program", r.drop_floor_ns)?;
    row(&mut out, "per-flow floor", r.flow_floor_ns)?;
    for (name, ns) in &r.classes {
        row(&mut out, name, *ns)?;
    }
    // A packet that carries a message against one whose chunk is not read (sent before),
    // timed side by side: whole, and above the empty program.
    writeln!(out, "\n{:<28} {:>14} {:>18}", "message class", "x one_data", "x one_data above")?;
    for (name, p) in &r.message_ratios {
        writeln!(out, "{name:<28} {:>14.2} {:>18.2}", p.ratio, p.ratio_above_empty)?;
    }
    // Where the time goes: what each thing our program does per packet adds to the
    // per-flow floor, alone.
    writeln!(out, "\n{:<36} {:>10}", "the per-flow floor plus", "ns added")?;
    for (what, ns) in &r.floor_with {
        writeln!(out, "{what:<36} {:>10.1}", ns - r.flow_floor_ns)?;
    }
    writeln!(
        out,
        "\n{:<36} {:<16} {:>10} {:>10} {:>9}",
        "rule (packet passes)", "packet", "rule ns", "parser ns", "x parser"
    )?;
    for c in &r.rules {
        writeln!(
            out,
            "{:<36} {:<16} {:>10.1} {:>10.1} {:>9.2}",
            c.rule,
            c.packet,
            c.rule_ns,
            c.parser_ns,
            c.rule_ns / c.parser_ns
        )?;
    }
    super::print(&out)?;
    if let Some(path) = json {
        std::fs::write(path, serde_json::to_string_pretty(&r)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}
