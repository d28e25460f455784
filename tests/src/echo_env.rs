//! Two namespaces joined by a veth with `sctp-user run` (XDP + echo server) in the server's:
//! the setting of the echo server's VM tests.

use std::{
    path::PathBuf,
    process::{Command, Stdio},
};

use serde_json::Value;

use crate::{
    instance::Instance,
    netns::{veth, Netns},
    sctp_user_bin,
};

pub const SERVER: &str = "198.18.0.2:36412";

pub struct EchoEnv {
    /// `sctp-user run`; `None` only inside `restart`. First: dropped before the namespaces.
    run: Option<Instance>,
    pub client: Netns,
    pub server: Netns,
    report: PathBuf,
    /// The `run` arguments after the fixed ones, for `restart`.
    extra: Vec<String>,
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
        let run = Some(start_run(&server, &report, &extra));
        Self {
            run,
            client,
            server,
            report,
            extra,
        }
    }

    /// Stops the controller (SIGINT) and starts it again with the same arguments.
    pub fn restart(&mut self) -> Value {
        let report = self.stop_run();
        self.run = Some(start_run(&self.server, &self.report, &self.extra));
        report
    }

    /// GET a path of the server's metrics endpoint (inside its namespace).
    pub fn http_get(&self, path: &str) -> String {
        self.server.run(|| crate::http_get("127.0.0.1:9464", path))
    }
}

fn start_run(server: &Netns, report: &std::path::Path, extra: &[String]) -> Instance {
    let mut args = vec!["run".into(), "--iface".into(), "es0".into(), "--report".into(), report.to_string_lossy().into_owned()];
    args.extend_from_slice(extra);
    Instance::start(server, "server", sctp_user_bin(), &args, "attached").expect("sctp-user run attached")
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
        let status = self.run.take().expect("running").stop().unwrap();
        assert!(status.success(), "sctp-user run exited with {status}");
        let text = std::fs::read_to_string(&self.report).expect("report written");
        let _ = std::fs::remove_file(&self.report);
        serde_json::from_str(&text).unwrap()
    }
}
