//! The OCI runtime configuration (`config.json`) of an instance's bundle,
//! and the image `USER` resolution it needs.
//!
//! The shape follows runc's own `runc spec` defaults, changed where an
//! instance differs: no network namespace (the host network, so the
//! instance reaches its Runtime API on loopback), a read-only root, a
//! size-limited `/tmp`, memory and pid limits, `/etc/resolv.conf` and
//! `/etc/hosts` from the host, and a small capability set that only root
//! inside the instance keeps (nothing is ambient, so a non-root user has
//! none, as on Lambda).

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::confined;

/// Capabilities of a root process in an instance: enough to manage its own
/// files and users, nothing that reaches the host (no raw sockets, no
/// binding privileged ports on the shared network, no mounts).
pub(crate) const CAPABILITIES: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
];

/// Lambda's limits on open files and on processes/threads.
const NOFILE: u64 = 1024;
const PIDS: u64 = 1024;

pub(crate) struct RuntimeConfig<'a> {
    pub rootfs: &'a Path,
    pub args: &'a [String],
    pub env: &'a [(String, String)],
    pub cwd: &'a str,
    pub uid: u32,
    pub gid: u32,
    pub memory_limit_bytes: u64,
    pub swap_limit: bool,
    pub tmp_size_bytes: u64,
    pub cgroups_path: &'a str,
    /// Host files bind-mounted read-only at the same path.
    pub host_files: &'a [PathBuf],
    /// Host directories bind-mounted read-only: (source, destination).
    pub read_only_dirs: &'a [(PathBuf, String)],
}

impl RuntimeConfig<'_> {
    pub(crate) fn to_json(&self) -> Value {
        let caps = CAPABILITIES;
        let env: Vec<String> = self.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let mut mounts = vec![
            json!({"destination": "/proc", "type": "proc", "source": "proc"}),
            json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
                   "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
            json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts",
                   "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]}),
            json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
                   "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]}),
            json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
                   "options": ["nosuid", "noexec", "nodev"]}),
            json!({"destination": "/sys", "type": "sysfs", "source": "sysfs",
                   "options": ["nosuid", "noexec", "nodev", "ro"]}),
            json!({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
                   "options": ["nosuid", "nodev", "mode=1777",
                               format!("size={}", self.tmp_size_bytes)]}),
        ];
        for file in self.host_files {
            mounts.push(json!({"destination": file, "type": "bind", "source": file,
                               "options": ["rbind", "ro", "nosuid", "nodev", "noexec"]}));
        }
        for (source, destination) in self.read_only_dirs {
            mounts.push(
                json!({"destination": destination, "type": "bind", "source": source,
                               "options": ["rbind", "ro", "nosuid", "nodev"]}),
            );
        }
        let mut memory = json!({"limit": self.memory_limit_bytes});
        if self.swap_limit {
            // memory+swap equal to memory: no swap.
            memory["swap"] = json!(self.memory_limit_bytes);
        }
        json!({
            "ociVersion": "1.0.2",
            "process": {
                "terminal": false,
                "user": {"uid": self.uid, "gid": self.gid},
                "args": self.args,
                "env": env,
                "cwd": self.cwd,
                "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
                "rlimits": [{"type": "RLIMIT_NOFILE", "hard": NOFILE, "soft": NOFILE}],
                "noNewPrivileges": true
            },
            "root": {"path": self.rootfs, "readonly": true},
            "mounts": mounts,
            "linux": {
                "resources": {
                    "devices": [{"allow": false, "access": "rwm"}],
                    "memory": memory,
                    "pids": {"limit": PIDS}
                },
                "cgroupsPath": self.cgroups_path,
                "namespaces": [{"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}],
                "maskedPaths": [
                    "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
                    "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
                    "/proc/sched_debug", "/sys/firmware", "/proc/scsi"
                ],
                "readonlyPaths": [
                    "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"
                ]
            }
        })
    }
}

/// Resolves an image `USER` (`name`, `uid`, `name:group`, `uid:gid`) to
/// numbers using the image's own `/etc/passwd` and `/etc/group`. `None` or
/// empty is root. A numeric uid that the image does not list gets gid 0,
/// as Docker does.
pub(crate) fn resolve_user(rootfs: &Path, user: Option<&str>) -> Result<(u32, u32), String> {
    let Some(user) = user.filter(|u| !u.is_empty()) else {
        return Ok((0, 0));
    };
    let (u, g) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    let read = |path: &str| -> String {
        confined::read_small_file(rootfs, path, 1 << 20)
            .ok()
            .flatten()
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    };
    let passwd = if u.parse::<u32>().is_ok() && g.is_some_and(|g| g.parse::<u32>().is_ok()) {
        String::new()
    } else {
        read("/etc/passwd")
    };
    // name:password:uid:gid:...
    let entry = |matches: &dyn Fn(&[&str]) -> bool| {
        passwd.lines().find_map(|line| {
            let f: Vec<&str> = line.split(':').collect();
            (f.len() >= 4 && matches(&f))
                .then(|| (f[2].parse::<u32>().ok(), f[3].parse::<u32>().ok()))
        })
    };
    let (uid, primary_gid) = match u.parse::<u32>() {
        Ok(uid) => (uid, entry(&|f| f[2] == u).and_then(|(_, g)| g).unwrap_or(0)),
        Err(_) => match entry(&|f| f[0] == u) {
            Some((Some(uid), Some(gid))) => (uid, gid),
            _ => return Err(format!("user {u:?} is not in the image's /etc/passwd")),
        },
    };
    let gid = match g {
        None => primary_gid,
        Some(g) => match g.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => read("/etc/group")
                .lines()
                .find_map(|line| {
                    let f: Vec<&str> = line.split(':').collect();
                    (f.len() >= 3 && f[0] == g)
                        .then(|| f[2].parse::<u32>().ok())
                        .flatten()
                })
                .ok_or_else(|| format!("group {g:?} is not in the image's /etc/group"))?,
        },
    };
    Ok((uid, gid))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_has_host_network_limits_and_read_only_root() {
        let args = vec!["/bin/app".to_string(), "x".to_string()];
        let env = vec![("A".to_string(), "1".to_string())];
        let files = vec![PathBuf::from("/etc/hosts")];
        let c = RuntimeConfig {
            rootfs: Path::new("/data/rootfs/abc"),
            args: &args,
            env: &env,
            cwd: "/var/task",
            uid: 993,
            gid: 990,
            memory_limit_bytes: 128 << 20,
            swap_limit: true,
            tmp_size_bytes: 512 << 20,
            cgroups_path: "stratus-i1",
            host_files: &files,
            read_only_dirs: &[],
        }
        .to_json();
        let namespaces: Vec<&str> = c["linux"]["namespaces"]
            .as_array()
            .expect("namespaces")
            .iter()
            .filter_map(|n| n["type"].as_str())
            .collect();
        assert_eq!(namespaces, ["pid", "ipc", "uts", "mount"]);
        assert_eq!(
            c["root"],
            json!({"path": "/data/rootfs/abc", "readonly": true})
        );
        assert_eq!(c["process"]["args"], json!(["/bin/app", "x"]));
        assert_eq!(c["process"]["env"], json!(["A=1"]));
        assert_eq!(c["process"]["user"], json!({"uid": 993, "gid": 990}));
        assert_eq!(c["process"]["noNewPrivileges"], json!(true));
        assert!(c["process"]["capabilities"].get("ambient").is_none());
        assert_eq!(
            c["linux"]["resources"]["memory"],
            json!({"limit": 134217728u64, "swap": 134217728u64})
        );
        let tmp = c["mounts"]
            .as_array()
            .expect("mounts")
            .iter()
            .find(|m| m["destination"] == "/tmp")
            .expect("tmp mount");
        assert!(tmp["options"]
            .as_array()
            .expect("options")
            .contains(&json!("size=536870912")));
        let hosts = c["mounts"]
            .as_array()
            .expect("mounts")
            .iter()
            .find(|m| m["destination"] == "/etc/hosts")
            .expect("hosts mount");
        assert_eq!(hosts["type"], "bind");
    }

    #[test]
    fn resolves_users_from_the_image() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        std::fs::create_dir(root.join("etc")).expect("mkdir");
        std::fs::write(
            root.join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\nsbx_user1051:x:993:990::/home/sbx_user1051:/sbin/nologin\n",
        )
        .expect("write");
        std::fs::write(root.join("etc/group"), "root:x:0:\nsbx:x:990:\n").expect("write");
        let check = |user: Option<&str>, want: Result<(u32, u32), ()>| {
            assert_eq!(resolve_user(root, user).map_err(|_| ()), want, "{user:?}");
        };
        check(None, Ok((0, 0)));
        check(Some(""), Ok((0, 0)));
        check(Some("1000"), Ok((1000, 0)));
        check(Some("993"), Ok((993, 990)));
        check(Some("1000:1000"), Ok((1000, 1000)));
        check(Some("sbx_user1051"), Ok((993, 990)));
        check(Some("sbx_user1051:root"), Ok((993, 0)));
        check(Some("1000:sbx"), Ok((1000, 990)));
        check(Some("nobody"), Err(()));
        check(Some("1000:nogroup"), Err(()));
    }
}
