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
/// The server's address on the second link of a multi-homed setting.
pub const SERVER_2: &str = "198.18.1.2:36412";

pub struct EchoEnv {
    /// `sctp-user run`; `None` only inside `restart`. First: dropped before the namespaces.
    run: Option<Instance>,
    pub client: Netns,
    pub server: Netns,
    report: PathBuf,
    /// The `run` arguments after the fixed ones, for `restart`.
    extra: Vec<String>,
    /// Veth pairs between the namespaces: ec0/es0, and ec1/es1 when multi-homed.
    links: usize,
}

impl EchoEnv {
    /// Starts `sctp-user run --iface <server veth> --listen SERVER EXTRA...` and waits until
    /// XDP is attached and the server listens. Without `--pin-dir` in EXTRA, `--no-pin`.
    #[must_use]
    pub fn start(name: &str, extra: &[&str]) -> Self {
        Self::start_with(name, 1, extra, |_| {})
    }

    /// As [`EchoEnv::start`], over `links` veth pairs (1 or 2; the second is ec1
    /// 198.18.1.1/24 and es1 198.18.1.2/24: `run` attaches to both and the server listens
    /// on both addresses), with `prepare` run on the namespaces before `run` starts
    /// (sysctls, qdiscs).
    #[must_use]
    pub fn start_with(name: &str, links: usize, extra: &[&str], prepare: impl FnOnce(&Self)) -> Self {
        assert!((1..=2).contains(&links), "one or two links");
        let client = Netns::new(&format!("{name}-c")).unwrap();
        let server = Netns::new(&format!("{name}-s")).unwrap();
        veth(&client, "ec0", "198.18.0.1/24", &server, "es0", "198.18.0.2/24").unwrap();
        // IPv6 on the same link, for dual-stack and multi-homed endpoints.
        client.ip(&["-6", "addr", "add", "2001:db8::1/64", "dev", "ec0", "nodad"]).unwrap();
        server.ip(&["-6", "addr", "add", "2001:db8::2/64", "dev", "es0", "nodad"]).unwrap();
        if links == 2 {
            veth(&client, "ec1", "198.18.1.1/24", &server, "es1", "198.18.1.2/24").unwrap();
        }
        let report = std::env::temp_dir().join(format!("{name}-{}.json", std::process::id()));
        let mut extra: Vec<String> = extra.iter().map(ToString::to_string).collect();
        if !extra.iter().any(|a| a == "--pin-dir") {
            extra.push("--no-pin".into());
        }
        if !extra.iter().any(|a| a == "--listen") {
            extra.extend(["--listen".into(), SERVER.into()]);
            if links == 2 {
                extra.extend(["--listen".into(), SERVER_2.into()]);
            }
        }
        let mut env = Self { run: None, client, server, report, extra, links };
        prepare(&env);
        env.run = Some(start_run(&env.server, &env.report, env.links, &env.extra));
        env
    }

    /// Stops the controller (SIGINT) and starts it again with the same arguments.
    pub fn restart(&mut self) -> Value {
        let report = self.stop_run();
        self.run = Some(start_run(&self.server, &self.report, self.links, &self.extra));
        report
    }

    /// GET a path of the server's metrics endpoint (inside its namespace).
    pub fn http_get(&self, path: &str) -> String {
        self.server.run(|| crate::http_get("127.0.0.1:9464", path))
    }
}

fn start_run(server: &Netns, report: &std::path::Path, links: usize, extra: &[String]) -> Instance {
    let mut args = vec!["run".into(), "--report".into(), report.to_string_lossy().into_owned()];
    for i in 0..links {
        args.extend(["--iface".into(), format!("es{i}")]);
    }
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

    /// Our client against `server`, started in the background (wait on the child for its
    /// JSON report).
    pub fn spawn_client(&self, server: &str, args: &[&str]) -> std::process::Child {
        Command::new("ip")
            .args(["netns", "exec", &self.client.name])
            .arg(sctp_user_bin())
            .args(["client", "--connect", server, "--format", "json"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap()
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
