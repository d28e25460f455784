//! Two namespaces joined by a veth with `sctp-user run` (XDP + echo server) in the server's:
//! the setting of the echo server's VM tests.

use std::{
    io::{BufRead as _, BufReader},
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::mpsc,
    time::Duration,
};

use serde_json::Value;

use crate::{
    netns::{veth, Netns},
    sctp_user_bin,
};

pub const SERVER: &str = "198.18.0.2:36412";

pub struct EchoEnv {
    pub client: Netns,
    pub server: Netns,
    run: Child,
    report: PathBuf,
    /// The `run` arguments after the fixed ones, for `restart`.
    extra: Vec<String>,
    /// The server's output (Mutex: the environment is shared with helper threads).
    log: std::sync::Mutex<mpsc::Receiver<String>>,
}

impl EchoEnv {
    /// Starts `sctp-user run --iface <server veth> --listen SERVER EXTRA...` and waits until
    /// XDP is attached and the server listens. Without `--pin-dir` in EXTRA, `--no-pin`.
    pub fn start(name: &str, extra: &[&str]) -> Self {
        let client = Netns::new(&format!("{name}-c")).unwrap();
        let server = Netns::new(&format!("{name}-s")).unwrap();
        veth(&client, "ec0", "198.18.0.1/24", &server, "es0", "198.18.0.2/24").unwrap();
        // IPv6 on the same link, for dual-stack and multi-homed endpoints.
        client
            .ip(&["-6", "addr", "add", "2001:db8::1/64", "dev", "ec0", "nodad"])
            .unwrap();
        server
            .ip(&["-6", "addr", "add", "2001:db8::2/64", "dev", "es0", "nodad"])
            .unwrap();
        let report = std::env::temp_dir().join(format!("{name}-{}.json", std::process::id()));
        let mut extra: Vec<String> = extra.iter().map(ToString::to_string).collect();
        if !extra.iter().any(|a| a == "--pin-dir") {
            extra.push("--no-pin".into());
        }
        if !extra.iter().any(|a| a == "--listen") {
            extra.extend(["--listen".into(), SERVER.into()]);
        }
        let (run, log) = spawn_run(&server, &report, &extra);
        Self {
            client,
            server,
            run,
            report,
            extra,
            log: std::sync::Mutex::new(log),
        }
    }

    /// Stops the controller (SIGINT) and starts it again with the same arguments.
    pub fn restart(&mut self) -> Value {
        let report = self.stop_run();
        let (run, log) = spawn_run(&self.server, &self.report, &self.extra);
        self.run = run;
        self.log = std::sync::Mutex::new(log);
        report
    }

    /// GET a path of the server's metrics endpoint (inside its namespace).
    pub fn http_get(&self, path: &str) -> String {
        self.server.run(|| crate::http_get("127.0.0.1:9464", path))
    }
}

fn spawn_run(server: &Netns, report: &std::path::Path, extra: &[String]) -> (Child, mpsc::Receiver<String>) {
    {
        let mut run = Command::new("ip")
            .args(["netns", "exec", &server.name])
            .arg(sctp_user_bin())
            .args(["run", "--iface", "es0", "--report"])
            .arg(report)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, log) = mpsc::channel();
        for pipe in [
            Box::new(run.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(run.stderr.take().unwrap()),
        ] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    eprintln!("  server: {line}");
                    let _ = tx.send(line);
                }
            });
        }
        // Loading (verification) is slow under emulation: wait for the word, not a time.
        loop {
            match log.recv_timeout(Duration::from_secs(120)) {
                Ok(line) if line.contains("attached") => break,
                Ok(_) => {}
                Err(e) => panic!("sctp-user run did not attach: {e}"),
            }
        }
        (run, log)
    }
}

impl EchoEnv {
    /// Runs a command in the client namespace; returns (success, stdout).
    pub fn in_client(&self, program: &str, args: &[&str], stdin: Option<&str>) -> (bool, String) {
        let mut c = Command::new("ip")
            .args(["netns", "exec", &self.client.name, program])
            .args(args)
            .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        if let Some(input) = stdin {
            use std::io::Write as _;
            c.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
        }
        let out = c.wait_with_output().unwrap();
        (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Our client in the client namespace.
    pub fn client(&self, args: &[&str]) -> (bool, Value) {
        self.client_to(SERVER, args)
    }

    /// Our client against a given server address.
    pub fn client_to(&self, server: &str, args: &[&str]) -> (bool, Value) {
        let bin = sctp_user_bin();
        let mut full = vec!["client", "--connect", server, "--format", "json"];
        full.extend_from_slice(args);
        let (ok, out) = self.in_client(bin.to_str().unwrap(), &full, None);
        (ok, serde_json::from_str(&out).unwrap_or(Value::Null))
    }

    /// SIGINT (graceful stop) and the report it wrote.
    pub fn stop(mut self) -> Value {
        self.stop_run()
    }

    fn stop_run(&mut self) -> Value {
        // SAFETY: kill(2) on our own child.
        unsafe { libc::kill(self.run.id() as i32, libc::SIGINT) };
        let status = self.run.wait().unwrap();
        while self.log.lock().unwrap().try_recv().is_ok() {}
        assert!(status.success(), "sctp-user run exited with {status}");
        let text = std::fs::read_to_string(&self.report).expect("report written");
        let _ = std::fs::remove_file(&self.report);
        serde_json::from_str(&text).unwrap()
    }
}
