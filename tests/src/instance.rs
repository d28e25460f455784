//! A long-running command (`sctp-user run`, the textbook echo server) started inside a
//! namespace, its output forwarded line by line, ready when a word appears, stopped with
//! SIGINT as an operator's Ctrl-C would.

use std::{
    ffi::OsStr,
    io::{BufRead as _, BufReader},
    process::{Child, Command, ExitStatus, Stdio},
    sync::{mpsc, Mutex},
    time::Duration,
};

use anyhow::{bail, Context as _, Result};

use crate::netns::Netns;

/// How long a command may take to print its ready word: loading (the verifier) takes
/// seconds under emulation.
const READY_TIMEOUT: Duration = Duration::from_mins(2);

pub struct Instance {
    child: Child,
    /// Output lines not yet read (Mutex: instances are shared with helper threads).
    lines: Mutex<mpsc::Receiver<String>>,
}

impl Instance {
    /// Starts `program ARGS` in `ns` and waits until a line of its output contains `ready`.
    /// Every line is forwarded to stderr prefixed with `label`.
    pub fn start<S: AsRef<OsStr>>(
        ns: &Netns,
        label: &str,
        program: impl AsRef<OsStr>,
        args: &[S],
        ready: &str,
    ) -> Result<Self> {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &ns.name]).arg(program.as_ref()).args(args);
        Self::spawn(command, label, ready)
    }

    /// Starts `command` as it is (in this process's namespaces) and waits until a line of
    /// its output contains `ready`; every line is forwarded to stderr prefixed with `label`.
    pub fn spawn(mut command: Command, label: &str, ready: &str) -> Result<Self> {
        let program = command.get_program().to_os_string();
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("cannot start {}", program.to_string_lossy()))?;
        let (tx, lines) = mpsc::channel();
        let pipes: [Box<dyn std::io::Read + Send>; 2] = [
            Box::new(child.stdout.take().context("stdout piped")?),
            Box::new(child.stderr.take().context("stderr piped")?),
        ];
        for pipe in pipes {
            let (tx, label) = (tx.clone(), label.to_string());
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    eprintln!("  {label}: {line}");
                    let _ = tx.send(line);
                }
            });
        }
        let instance = Self { child, lines: Mutex::new(lines) };
        instance.wait_for(ready)?;
        Ok(instance)
    }

    /// dumpcap capturing SCTP on `ifname` in `ns` into `path`, given `settle` to open the
    /// interface (with -q it says nothing to wait for). Stop it with [`Instance::stop`].
    pub fn dumpcap(ns: &Netns, ifname: &str, path: &std::path::Path, settle: Duration) -> Result<Self> {
        let path = path.to_str().context("a capture path in UTF-8")?;
        let dumpcap = Self::start(ns, "dumpcap", "dumpcap", &["-q", "-i", ifname, "-f", "sctp", "-w", path], "")?;
        std::thread::sleep(settle);
        Ok(dumpcap)
    }

    /// Waits until a line of output contains `word`.
    pub fn wait_for(&self, word: &str) -> Result<()> {
        let lines = self.lines.lock().expect("no thread panicked holding the lines");
        loop {
            match lines.recv_timeout(READY_TIMEOUT) {
                Ok(line) if line.contains(word) => return Ok(()),
                Ok(_) => {}
                Err(e) => bail!("no line with {word:?} in {} s: {e}", READY_TIMEOUT.as_secs()),
            }
        }
    }

    /// Waits until the command exits by itself (within the ready timeout).
    pub fn wait_exit(mut self) -> Result<ExitStatus> {
        let deadline = std::time::Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            if std::time::Instant::now() > deadline {
                bail!("still running after {} s", READY_TIMEOUT.as_secs());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The CPU time the command spent so far, user and system, all its threads
    /// (`/proc/PID/stat`, sampled at each tick: good over seconds). `ip netns exec`
    /// execs the command in its own process.
    pub fn cpu_secs(&self) -> Result<f64> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id()))?;
        // After the command name in parentheses: state is field 3, utime 14, stime 15.
        let fields: Vec<&str> =
            stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or_default().split_whitespace().collect();
        let ticks = |i: usize| fields.get(i - 3).and_then(|t| t.parse::<f64>().ok()).context("/proc/PID/stat");
        // In USER_HZ, 100 on Linux.
        Ok((ticks(14)? + ticks(15)?) / 100.0)
    }

    /// Whether the command is still running.
    pub fn running(&mut self) -> bool {
        self.child.try_wait().is_ok_and(|s| s.is_none())
    }

    /// SIGKILL, as a crash would end it.
    pub fn kill(mut self) -> Result<()> {
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }

    /// SIGINT, then waits for the exit.
    pub fn stop(self) -> Result<ExitStatus> {
        self.stop_with(libc::SIGINT).map(|(status, _)| status)
    }

    /// Sends `signal`, waits for the exit, and returns the lines not read yet (those of
    /// the final report among them).
    pub fn stop_with(mut self, signal: i32) -> Result<(ExitStatus, Vec<String>)> {
        let pid = i32::try_from(self.child.id()).context("pid out of range")?;
        // SAFETY: kill(2) on our own child, which has not been reaped yet.
        unsafe { libc::kill(pid, signal) };
        let status = self.child.wait()?;
        // The forwarding threads end with the pipes, and the channel with them.
        let lines = self.lines.lock().expect("no thread panicked");
        let rest = std::iter::from_fn(|| lines.recv_timeout(Duration::from_secs(10)).ok()).collect();
        Ok((status, rest))
    }
}

impl Drop for Instance {
    /// A test that failed half-way must not leave the command running.
    fn drop(&mut self) {
        if self.child.try_wait().is_ok_and(|s| s.is_none()) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
