//! Network namespaces that a test creates for itself (and deletes when dropped), joined by
//! veth pairs, with work run inside them on a thread that joined the namespace.

use std::{fs::File, os::fd::AsRawFd as _, process::Command};

use anyhow::{bail, Context as _, Result};

fn ip(args: &[&str]) -> Result<()> {
    let out = Command::new("ip").args(args).output().context("cannot run ip (iproute2)")?;
    if !out.status.success() {
        bail!("ip {} failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}

/// A named network namespace, deleted on drop.
pub struct Netns {
    pub name: String,
}

impl Netns {
    /// Creates `<prefix>-<pid>` with loopback up.
    pub fn new(prefix: &str) -> Result<Self> {
        let name = format!("{prefix}-{}", std::process::id());
        let _ = ip(&["netns", "del", &name]);
        ip(&["netns", "add", &name])?;
        let ns = Self { name };
        ns.ip(&["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// Runs `ip -n <ns> ARGS`.
    pub fn ip(&self, args: &[&str]) -> Result<()> {
        let mut full = vec!["-n", self.name.as_str()];
        full.extend_from_slice(args);
        ip(&full)
    }

    /// Runs `f` on a thread inside this namespace. Sockets it creates belong to the
    /// namespace and may be used from any thread afterwards.
    pub fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        let path = format!("/run/netns/{}", self.name);
        std::thread::scope(|s| {
            s.spawn(|| {
                let file = File::open(&path).unwrap_or_else(|e| panic!("open {path}: {e}"));
                // SAFETY: a valid namespace fd; only this thread changes namespace.
                let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
                assert_eq!(rc, 0, "setns {path}: {}", std::io::Error::last_os_error());
                f()
            })
            .join()
            .expect("thread inside the namespace panicked")
        })
    }
}

impl Netns {
    /// Sets a sysctl of this namespace (`net.sctp.hb_interval`: dots become slashes).
    pub fn sysctl(&self, key: &str, value: &str) -> Result<()> {
        let path = format!("/proc/sys/{}", key.replace('.', "/"));
        self.run(|| std::fs::write(&path, value)).with_context(|| format!("sysctl {key}={value}"))
    }

    /// SCTP timers short enough for heartbeats every half second and a path failover
    /// within a few seconds, even under emulation (each association copies them as it
    /// starts). The least RTO stays above the peer's delayed SACK (200 ms) plus a delayed
    /// path's 50 ms: below, every DATA would time out and go again on the other path.
    pub fn quick_sctp_timers(&self) -> Result<()> {
        for (key, value) in [
            ("rto_min", "400"),
            ("rto_initial", "400"),
            ("rto_max", "1000"),
            ("hb_interval", "100"),
            ("path_max_retrans", "2"),
        ] {
            self.sysctl(&format!("net.sctp.{key}"), value)?;
        }
        Ok(())
    }

    /// Runs `tc ARGS` in this namespace.
    pub fn tc(&self, args: &[&str]) -> Result<()> {
        let status = self.run(|| std::process::Command::new("tc").args(args).status()).context("cannot run tc")?;
        anyhow::ensure!(status.success(), "tc {} failed ({status})", args.join(" "));
        Ok(())
    }

    /// `/stats` of the `sctp-user run` in this namespace (metrics on 127.0.0.1:9464).
    pub fn stats(&self) -> Result<serde_json::Value> {
        let body = self.run(|| crate::http_get("127.0.0.1:9464", "/stats"));
        serde_json::from_str(&body).context("/stats is not JSON")
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = ip(&["netns", "del", &self.name]);
    }
}

/// A veth pair between two namespaces, each end up with the given address (CIDR).
pub fn veth(a: &Netns, a_if: &str, a_addr: &str, b: &Netns, b_if: &str, b_addr: &str) -> Result<()> {
    ip(&["link", "add", a_if, "netns", &a.name, "type", "veth", "peer", "name", b_if, "netns", &b.name])?;
    for (ns, ifname, addr) in [(a, a_if, a_addr), (b, b_if, b_addr)] {
        let family = if addr.contains(':') { "-6" } else { "-4" };
        let mut args = vec![family, "addr", "add", addr, "dev", ifname];
        if family == "-6" {
            args.push("nodad"); // usable at once, no duplicate address detection wait
        }
        ns.ip(&args)?;
        ns.ip(&["link", "set", ifname, "up"])?;
    }
    Ok(())
}

/// The bpffs that commands under `ip netns exec` share with the host (/run is kept
/// there, /sys is not), as the README says to set up; unmounted again if the test
/// mounted it.
pub const RUN_BPFFS: &str = "/run/sctp-xdp/bpffs";

pub struct HostBpffs(bool);

impl HostBpffs {
    #[must_use]
    pub fn ensure() -> Self {
        let mounted =
            std::fs::read_to_string("/proc/mounts").unwrap().lines().any(|l| l.split(' ').nth(1) == Some(RUN_BPFFS));
        if !mounted {
            std::fs::create_dir_all(RUN_BPFFS).unwrap();
            let ok = std::process::Command::new("mount").args(["-t", "bpf", "bpf", RUN_BPFFS]).status().unwrap();
            assert!(ok.success(), "mount -t bpf bpf {RUN_BPFFS}");
        }
        Self(!mounted)
    }
}

impl Drop for HostBpffs {
    fn drop(&mut self) {
        if self.0 {
            let _ = std::process::Command::new("umount").arg(RUN_BPFFS).status();
        }
    }
}
