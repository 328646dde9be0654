//! Guest images, built from Debian packages with `debootstrap`.
//!
//! An image is a directory `<images>/<distro>/<release>/` holding `vmlinuz`,
//! `initrd.img`, `base.qcow2` (the root filesystem, never written: each job
//! gets a copy-on-write overlay), `known_hosts` (the guest's pinned host key)
//! and `image.json`. `<images>/worker_key` is the key the worker logs in with.
//!
//! The guest boots a small PID 1 (`/sbin/builds-init`) instead of systemd: it
//! mounts the kernel filesystems, brings up the network QEMU's user-mode
//! networking expects, and runs sshd.

use anyhow::{bail, Context};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// What every image has (DESIGN §5), plus what the init and tasks need.
const PACKAGES: &[&str] = &[
    "linux-image-amd64",
    "openssh-server",
    "bash",
    "git",
    "curl",
    "ca-certificates",
    "gnupg",
    "sudo",
    "iproute2",
    "kmod",
    "procps",
    "less",
    "xz-utils",
];

/// The guest's PID 1.
const INIT: &str = r#"#!/bin/bash
# builds guest init: mount, network, sshd; then reap children forever.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mkdir -p /dev/pts /dev/shm
mount -t devpts -o gid=5,mode=620,ptmxmode=666 devpts /dev/pts
mount -t tmpfs -o mode=1777 tmpfs /dev/shm
mount -t tmpfs -o mode=755 tmpfs /run
mount -t tmpfs -o mode=1777 tmpfs /tmp
mkdir -p /run/sshd /run/lock
ln -sf /proc/self/fd /dev/fd 2>/dev/null
mount -o remount,rw /
hostname build
modprobe virtio_net 2>/dev/null
ip link set lo up
ip link set eth0 up
# QEMU user-mode networking: guest 10.0.2.15, gateway 10.0.2.2, DNS 10.0.2.3.
ip addr add 10.0.2.15/24 dev eth0
ip route add default via 10.0.2.2
echo "builds-init: network up" > /dev/console
/usr/sbin/sshd -e
echo "builds-init: sshd started" > /dev/console
trap '' TERM INT
while true; do wait -n 2>/dev/null || sleep 5; done
"#;

const SSHD_CONFIG: &str = "PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin no
UseDNS no
PrintMotd no
AcceptEnv LANG LC_*
MaxSessions 64
MaxStartups 64
";

/// The release a name stands for: `debian/stable` is an alias.
pub fn resolve(name: &str) -> anyhow::Result<(&'static str, &'static str)> {
    match name {
        "debian/bookworm" | "debian/stable" => Ok(("debian", "bookworm")),
        "debian/trixie" | "debian/testing" => Ok(("debian", "trixie")),
        other => bail!(
            "no recipe for image {other:?}: this worker builds debian/bookworm (alias \
             debian/stable) and debian/trixie; other distributions need their own mirror \
             and recipe (see README)"
        ),
    }
}

/// Where an image lives.
pub fn image_dir(images: &Path, name: &str) -> PathBuf {
    images.join(name)
}

/// Whether the image is complete and usable.
pub fn is_ready(images: &Path, name: &str) -> bool {
    let dir = image_dir(images, name);
    [
        "vmlinuz",
        "initrd.img",
        "base.qcow2",
        "known_hosts",
        "image.json",
    ]
    .iter()
    .all(|f| dir.join(f).is_file())
}

/// The Debian mirror: `BUILDS_DEBIAN_MIRROR`, else the first main-archive
/// entry (a URL ending in `/debian`) of this machine's apt sources, else
/// deb.debian.org.
pub fn configured_mirror() -> String {
    if let Ok(mirror) = std::env::var("BUILDS_DEBIAN_MIRROR") {
        if !mirror.is_empty() {
            return mirror.trim_end_matches('/').to_string();
        }
    }
    let mut texts = Vec::new();
    if let Ok(entries) = std::fs::read_dir("/etc/apt/sources.list.d") {
        for entry in entries.flatten() {
            texts.extend(std::fs::read_to_string(entry.path()));
        }
    }
    texts.extend(std::fs::read_to_string("/etc/apt/sources.list"));
    for text in &texts {
        for line in text.lines().map(str::trim) {
            let url = if let Some(rest) = line.strip_prefix("URIs:") {
                rest.split_whitespace().next()
            } else if let Some(rest) = line.strip_prefix("deb ") {
                rest.split_whitespace().find(|w| w.starts_with("http"))
            } else {
                None
            };
            if let Some(url) = url.filter(|u| u.trim_end_matches('/').ends_with("/debian")) {
                return url.trim_end_matches('/').to_string();
            }
        }
    }
    "http://deb.debian.org/debian".to_string()
}

fn run(step: &str, command: &mut Command) -> anyhow::Result<()> {
    let output = command
        .output()
        .with_context(|| format!("{step}: cannot run {:?}", command.get_program()))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let stdout = String::from_utf8_lossy(&output.stdout);
        let tail: Vec<&str> = stderr
            .lines()
            .chain(stdout.lines())
            .rev()
            .take(15)
            .collect();
        bail!(
            "{step} failed ({}):\n{}",
            output.status,
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        );
    }
    Ok(())
}

/// The worker's SSH key pair (`<images>/worker_key`), made on first use.
pub fn ensure_worker_key(images: &Path) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(images)?;
    let key = images.join("worker_key");
    if !key.is_file() {
        run(
            "generating the worker key",
            Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-C", "builds-worker", "-f"])
                .arg(&key),
        )?;
    }
    Ok(key)
}

fn write(path: &Path, text: &str, mode: u32) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    Ok(())
}

fn newest(dir: &Path, prefix: &str) -> anyhow::Result<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(prefix))
        })
        .collect();
    found.sort();
    found
        .pop()
        .with_context(|| format!("no {prefix}* in {}", dir.display()))
}

/// Builds `name` into `images` unless it is already there. Prints progress.
pub fn build(images: &Path, name: &str) -> anyhow::Result<PathBuf> {
    let (distro, release) = resolve(name)?;
    let target = image_dir(images, name);
    if is_ready(images, name) {
        println!("image {name}: ready in {} (cached)", target.display());
        return Ok(target);
    }
    let canonical = format!("{distro}/{release}");
    if canonical != name {
        // An alias: build the release, then point the alias at it.
        let real = build(images, &canonical)?;
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let _ = std::fs::remove_file(&target);
        std::os::unix::fs::symlink(&real, &target)
            .with_context(|| format!("linking {} to {}", target.display(), real.display()))?;
        println!("image {name}: alias of {canonical}");
        return Ok(target);
    }
    for tool in [
        "debootstrap",
        "mkfs.ext4",
        "qemu-img",
        "ssh-keygen",
        "chroot",
    ] {
        if which(tool).is_none() {
            bail!("{tool} is not installed (apt-get install debootstrap e2fsprogs qemu-utils openssh-client)");
        }
    }
    let started = Instant::now();
    let step = |what: &str| println!("image {name}: [{:>4}s] {what}", started.elapsed().as_secs());
    let key = ensure_worker_key(images)?;
    let scratch = images.join(format!(".build-{distro}-{release}"));
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(&scratch)?;
    let root = scratch.join("root");
    let mirror = configured_mirror();

    step(&format!(
        "debootstrap {release} from {mirror} (a few minutes)"
    ));
    run(
        "debootstrap",
        Command::new("debootstrap")
            .args([
                "--variant=minbase",
                &format!("--include={}", PACKAGES.join(",")),
            ])
            .arg(release)
            .arg(&root)
            .arg(&mirror),
    )?;

    step("configuring the guest (user build, sshd, init)");
    write(&root.join("sbin/builds-init"), INIT, 0o755)?;
    write(
        &root.join("etc/ssh/sshd_config.d/builds.conf"),
        SSHD_CONFIG,
        0o644,
    )?;
    write(
        &root.join("etc/resolv.conf"),
        "nameserver 10.0.2.3\n",
        0o644,
    )?;
    write(&root.join("etc/hostname"), "build\n", 0o644)?;
    write(
        &root.join("etc/hosts"),
        "127.0.0.1 localhost\n127.0.1.1 build\n",
        0o644,
    )?;
    write(&root.join("etc/fstab"), "", 0o644)?;
    write(
        &root.join("etc/apt/sources.list"),
        &format!("deb {mirror} {release} main\n"),
        0o644,
    )?;
    write(
        &root.join("etc/sudoers.d/build"),
        "build ALL=(ALL) NOPASSWD:ALL\nDefaults !requiretty\n",
        0o440,
    )?;
    run(
        "adding user build",
        Command::new("chroot").arg(&root).args([
            "useradd",
            "-m",
            "-u",
            "1000",
            "-U",
            "-s",
            "/bin/bash",
            "build",
        ]),
    )?;
    let public_key = std::fs::read_to_string(key.with_extension("pub"))?;
    let ssh_dir = root.join("home/build/.ssh");
    write(&ssh_dir.join("authorized_keys"), &public_key, 0o600)?;
    std::os::unix::fs::chown(&ssh_dir, Some(1000), Some(1000))?;
    std::os::unix::fs::chown(ssh_dir.join("authorized_keys"), Some(1000), Some(1000))?;
    std::fs::set_permissions(
        &ssh_dir,
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )?;
    let host_key = std::fs::read_to_string(root.join("etc/ssh/ssh_host_ed25519_key.pub"))
        .context("the guest has no ed25519 host key")?;
    let host_key: Vec<&str> = host_key.split_whitespace().take(2).collect();
    // A small initramfs: only what mounts the root disk. Debian's default
    // (MODULES=most, 35 MB) cost boot time under TCG (it is decompressed in
    // the guest) and memory in QEMU (which holds the initrd for the guest).
    write(
        &root.join("etc/initramfs-tools/conf.d/builds.conf"),
        "MODULES=list\n",
        0o644,
    )?;
    write(
        &root.join("etc/initramfs-tools/modules"),
        "virtio_pci\nvirtio_blk\nvirtio_net\nvirtio_rng\next4\n",
        0o644,
    )?;
    run(
        "making a small initramfs",
        Command::new("chroot")
            .arg(&root)
            .args(["update-initramfs", "-u", "-k", "all"]),
    )?;
    run(
        "cleaning apt caches",
        Command::new("chroot").arg(&root).args(["apt-get", "clean"]),
    )?;

    step("copying kernel and initrd");
    std::fs::copy(
        newest(&root.join("boot"), "vmlinuz-")?,
        scratch.join("vmlinuz"),
    )?;
    std::fs::copy(
        newest(&root.join("boot"), "initrd.img-")?,
        scratch.join("initrd.img"),
    )?;

    step("making the root filesystem (ext4 from the tree, then qcow2)");
    let raw = scratch.join("root.ext4");
    run(
        "mkfs.ext4",
        Command::new("mkfs.ext4")
            .args(["-q", "-F", "-L", "builds-root", "-d"])
            .arg(&root)
            .arg(&raw)
            .arg("8G"),
    )?;
    run(
        "qemu-img convert",
        Command::new("qemu-img")
            .args(["convert", "-O", "qcow2"])
            .arg(&raw)
            .arg(scratch.join("base.qcow2")),
    )?;
    std::fs::remove_file(&raw)?;
    std::fs::remove_dir_all(&root)?;
    write(
        &scratch.join("known_hosts"),
        &format!("{} {}\n", crate::ssh::HOST_ALIAS, host_key.join(" ")),
        0o644,
    )?;
    write(
        &scratch.join("image.json"),
        &serde_json::json!({
            "name": canonical,
            "mirror": mirror,
            "packages": PACKAGES,
            "built": builds_domain::api::format_timestamp(builds_domain::job::now()),
        })
        .to_string(),
        0o644,
    )?;
    if let Some(parent) = target.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let _ = std::fs::remove_dir_all(&target);
    std::fs::rename(&scratch, &target)?;
    step(&format!("ready in {}", target.display()));
    Ok(target)
}

fn which(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(tool))
        .find(|candidate| candidate.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_resolve_with_the_stable_alias() {
        assert_eq!(resolve("debian/stable").unwrap(), ("debian", "bookworm"));
        assert_eq!(resolve("debian/bookworm").unwrap(), ("debian", "bookworm"));
        assert!(resolve("alpine/edge").is_err());
    }

    #[test]
    fn an_incomplete_image_is_not_ready() {
        let dir = tempfile::tempdir().unwrap();
        let image = dir.path().join("debian/bookworm");
        std::fs::create_dir_all(&image).unwrap();
        std::fs::write(image.join("vmlinuz"), b"").unwrap();
        assert!(!is_ready(dir.path(), "debian/bookworm"));
    }
}
