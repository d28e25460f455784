//! `cargo xtask dist`: what an operator installs, in `target/dist/`: a static `sctp-user`
//! (the XDP object embedded) that runs in an empty root file system, a tarball with it
//! and everything deployed beside it, a Debian package, and an OCI image archive.
//!
//! The package is made by `dpkg-deb` from a staged tree (Debian's own tool, already on
//! every Debian machine; cargo-deb would add a build of its own and a second manifest of
//! the same files), the image by buildah from scratch, written as an OCI archive.

use std::{
    fs,
    os::unix::fs::PermissionsExt as _,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, Result};

use crate::{cmd, static_build};

const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The image's name in its archive (`umoci unpack --image DIR:sctp-xdp:VERSION`).
const IMAGE_NAME: &str = "sctp-xdp";
/// The unprivileged user the image runs as (nobody): the capabilities come from the
/// runtime, never from root.
const IMAGE_USER: &str = "65534:65534";

/// Builds everything; returns the directory.
pub(crate) fn dist(root: &Path) -> Result<PathBuf> {
    let dir = root.join("target/dist");
    if dir.exists() {
        fs::remove_dir_all(&dir).with_context(|| format!("removing the old {}", dir.display()))?;
    }
    fs::create_dir_all(&dir)?;
    let bin = static_build::build(root, "sctp-user", "sctp-user")?;
    fs::copy(&bin, dir.join("sctp-user"))?;
    tarball(root, &dir)?;
    deb(root, &dir)?;
    image(&dir)?;
    eprintln!("dist: {}", dir.display());
    for entry in fs::read_dir(&dir)? {
        let entry = entry?;
        if entry.file_type()?.is_file() {
            eprintln!("  {:>12} {}", entry.metadata()?.len(), entry.file_name().to_string_lossy());
        }
    }
    Ok(dir)
}

/// Copies `from` (a file or a directory) to `to`, recursively.
fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    if from.is_dir() {
        fs::create_dir_all(to)?;
        for entry in fs::read_dir(from)? {
            let entry = entry?;
            copy_tree(&entry.path(), &to.join(entry.file_name()))?;
        }
    } else {
        if let Some(parent) = to.parent() {
            fs::create_dir_all(parent)?;
        }
        fs::copy(from, to).with_context(|| format!("copying {}", from.display()))?;
    }
    Ok(())
}

/// `sctp-xdp-VERSION-x86_64-linux.tar.gz`: the binary, the units, the manifests, the
/// Prometheus rules, the dashboards and the README.
fn tarball(root: &Path, dir: &Path) -> Result<()> {
    let name = format!("sctp-xdp-{VERSION}-x86_64-linux");
    let stage = dir.join(&name);
    copy_tree(&dir.join("sctp-user"), &stage.join("bin/sctp-user"))?;
    for part in ["deploy", "dashboards", "README.md"] {
        copy_tree(&root.join(part), &stage.join(part))?;
    }
    cmd::run(
        Command::new("tar")
            .arg("-C")
            .arg(dir)
            .args(["--owner=0", "--group=0", "-czf"])
            .arg(format!("{name}.tar.gz"))
            .arg(&name)
            .current_dir(dir),
    )?;
    fs::remove_dir_all(&stage)?;
    Ok(())
}

const CONTROL: &str = "Package: sctp-xdp
Version: {VERSION}
Architecture: amd64
Maintainer: sctp-xdp developers <sctp-xdp@example.invalid>
Section: net
Priority: optional
Recommends: systemd
Description: eBPF/XDP-accelerated SCTP inspector and fast path
 sctp-user attaches an XDP program (and a TC egress companion) that counts every
 SCTP packet, chunk and association and drops bad traffic by rules, runs an SCTP
 echo server, and exports Prometheus metrics. The unit sctp-xdp@IFACE runs it on an
 interface as an unprivileged system user holding CAP_BPF, CAP_NET_ADMIN and
 CAP_PERFMON.
";

/// The system user exists before the unit is started; units are reloaded both ways.
const POSTINST: &str = "#!/bin/sh
set -e
if [ \"$1\" = configure ]; then
    if command -v systemd-sysusers >/dev/null 2>&1; then
        systemd-sysusers sctp-xdp.conf
    elif ! getent passwd sctp-xdp >/dev/null; then
        adduser --system --group --no-create-home --home /nonexistent sctp-xdp
    fi
    if [ -d /run/systemd/system ]; then
        systemctl daemon-reload || true
    fi
fi
";

const POSTRM: &str = "#!/bin/sh
set -e
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload || true
fi
";

/// `sctp-xdp_VERSION_amd64.deb`.
fn deb(root: &Path, dir: &Path) -> Result<()> {
    let stage = dir.join("deb");
    let put = |from: &Path, to: &str| copy_tree(from, &stage.join(to));
    put(&dir.join("sctp-user"), "usr/bin/sctp-user")?;
    let systemd = root.join("deploy/systemd");
    for unit in ["sctp-xdp@.service", "sctp-xdp-bpffs.service"] {
        put(&systemd.join(unit), &format!("usr/lib/systemd/system/{unit}"))?;
    }
    put(&systemd.join("sctp-xdp.sysusers"), "usr/lib/sysusers.d/sctp-xdp.conf")?;
    put(&root.join("README.md"), "usr/share/doc/sctp-xdp/README.md")?;
    put(&root.join("dashboards"), "usr/share/sctp-xdp/dashboards")?;
    put(&root.join("deploy/prometheus"), "usr/share/sctp-xdp/prometheus")?;
    put(&root.join("deploy/kubernetes"), "usr/share/sctp-xdp/kubernetes")?;
    let debian = stage.join("DEBIAN");
    fs::create_dir_all(&debian)?;
    fs::write(debian.join("control"), CONTROL.replace("{VERSION}", VERSION))?;
    for (name, text) in [("postinst", POSTINST), ("postrm", POSTRM)] {
        let path = debian.join(name);
        fs::write(&path, text)?;
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755))?;
    }
    cmd::run(
        Command::new("dpkg-deb")
            .args(["--root-owner-group", "-Zxz", "--build"])
            .arg(&stage)
            .arg(dir.join(format!("sctp-xdp_{VERSION}_amd64.deb"))),
    )?;
    fs::remove_dir_all(&stage)?;
    Ok(())
}

/// `sctp-xdp-VERSION.oci.tar`: an OCI image from scratch holding the static binary,
/// built by buildah offline (no registry, no daemon; its own storage under target/).
fn image(dir: &Path) -> Result<()> {
    let storage = dir.join("buildah");
    let buildah = || {
        let mut c = Command::new("buildah");
        c.arg("--root")
            .arg(storage.join("root"))
            .arg("--runroot")
            .arg(storage.join("run"))
            .args(["--storage-driver", "vfs"]);
        c
    };
    let container = cmd::output(buildah().args(["from", "scratch"]))
        .context("buildah cannot start a container here (it needs root, or user namespaces with subuids): run `sudo -E cargo xtask dist`")?
        .trim()
        .to_string();
    let built = (|| {
        cmd::run(
            buildah()
                .args(["copy", "--chmod", "0755", &container])
                .arg(dir.join("sctp-user"))
                .arg("/usr/bin/sctp-user"),
        )?;
        cmd::run(buildah().args([
            "config",
            "--entrypoint",
            r#"["/usr/bin/sctp-user"]"#,
            "--cmd",
            "run --help",
            "--user",
            IMAGE_USER,
            "--port",
            "9464/tcp",
            "--label",
            &format!("org.opencontainers.image.version={VERSION}"),
            "--label",
            "org.opencontainers.image.title=sctp-xdp",
            &container,
        ]))?;
        let archive = dir.join(format!("{IMAGE_NAME}-{VERSION}.oci.tar"));
        cmd::run(
            buildah()
                .args(["commit", "--rm", &container])
                .arg(format!("oci-archive:{}:{IMAGE_NAME}:{VERSION}", archive.display())),
        )
    })();
    if built.is_err() {
        let _ = cmd::run(buildah().args(["rm", &container]));
    }
    let _ = fs::remove_dir_all(&storage);
    built
}
