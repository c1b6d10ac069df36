//! Finding an instance's memory cgroup and reading what happened in it.
//!
//! Instances get a relative `cgroupsPath`, which runc places under the
//! cgroup of the process that runs it (v1: our own memory cgroup; v2: its
//! parent, since ours has processes). So a Stratus confined to a cgroup
//! keeps its instances inside it. Containers run with `--keep`, so the
//! cgroup outlives the process until the executor deletes the container:
//! the OOM counter and the peak usage are read after the exit.

use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum MemoryCgroups {
    /// cgroup v1 memory controller; the directory of our own cgroup.
    V1 {
        own: PathBuf,
    },
    /// cgroup v2; the directory new instance cgroups go under.
    V2 {
        parent: PathBuf,
    },
    Unknown,
}

/// What the memory cgroup recorded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct MemoryStats {
    pub oom_kills: Option<u64>,
    pub max_usage_bytes: Option<u64>,
}

impl MemoryCgroups {
    /// Reads our own placement from `/proc/self/{mountinfo,cgroup}`.
    pub(crate) fn detect() -> MemoryCgroups {
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let cgroup = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
        Self::from_proc(&mountinfo, &cgroup)
    }

    pub(crate) fn from_proc(mountinfo: &str, cgroup: &str) -> MemoryCgroups {
        let mut v1_mount = None;
        let mut v2_mount = None;
        for line in mountinfo.lines() {
            let Some((left, right)) = line.split_once(" - ") else {
                continue;
            };
            let left: Vec<&str> = left.split(' ').collect();
            let right: Vec<&str> = right.split(' ').collect();
            let (Some(root), Some(point), Some(fstype), Some(opts)) =
                (left.get(3), left.get(4), right.first(), right.get(2))
            else {
                continue;
            };
            match *fstype {
                "cgroup" if opts.split(',').any(|o| o == "memory") => {
                    v1_mount = Some((root.to_string(), point.to_string()))
                }
                "cgroup2" => v2_mount = Some((root.to_string(), point.to_string())),
                _ => {}
            }
        }
        let own_path = |want: &dyn Fn(&str) -> bool| {
            cgroup.lines().find_map(|line| {
                let mut parts = line.splitn(3, ':');
                let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
                want(controllers).then(|| path.to_string())
            })
        };
        let join = |mount: &(String, String), path: &str| -> Option<PathBuf> {
            let (root, point) = mount;
            let rel = if root == "/" {
                path
            } else {
                path.strip_prefix(root.as_str())?
            };
            Some(Path::new(point).join(rel.trim_start_matches('/')))
        };
        if let Some(mount) = &v1_mount {
            if let Some(own) =
                own_path(&|c| c.split(',').any(|c| c == "memory")).and_then(|p| join(mount, &p))
            {
                return MemoryCgroups::V1 { own };
            }
        }
        if let Some(mount) = &v2_mount {
            if let Some(own) = own_path(&|c| c.is_empty()) {
                let parent = Path::new(&own)
                    .parent()
                    .map(|p| p.display().to_string())
                    .unwrap_or_else(|| "/".to_string());
                if let Some(parent) = join(mount, &parent) {
                    return MemoryCgroups::V2 { parent };
                }
            }
        }
        MemoryCgroups::Unknown
    }

    /// Where the runtime puts the cgroup with relative path `rel`.
    pub(crate) fn dir_for(&self, rel: &str) -> Option<PathBuf> {
        match self {
            MemoryCgroups::V1 { own } => Some(own.join(rel)),
            MemoryCgroups::V2 { parent } => Some(parent.join(rel)),
            MemoryCgroups::Unknown => None,
        }
    }

    /// Whether a swap limit can be set (cgroup v1 needs swap accounting).
    pub(crate) fn swap_limit_supported(&self) -> bool {
        match self {
            MemoryCgroups::V1 { own } => own.join("memory.memsw.limit_in_bytes").exists(),
            MemoryCgroups::V2 { .. } => true,
            MemoryCgroups::Unknown => false,
        }
    }

    /// The name of the file holding a cgroup's peak memory usage.
    pub(crate) fn peak_file_name(&self) -> Option<&'static str> {
        match self {
            MemoryCgroups::V1 { .. } => Some("memory.max_usage_in_bytes"),
            MemoryCgroups::V2 { .. } => Some("memory.peak"),
            MemoryCgroups::Unknown => None,
        }
    }

    /// Reads the OOM-kill counter and the peak usage of cgroup `dir`.
    pub(crate) fn read_stats(&self, dir: &Path) -> MemoryStats {
        let read = |name: &str| std::fs::read_to_string(dir.join(name)).ok();
        match self {
            MemoryCgroups::V1 { .. } => MemoryStats {
                oom_kills: read("memory.oom_control").and_then(|s| keyed(&s, "oom_kill")),
                max_usage_bytes: read(self.peak_file_name().unwrap_or_default())
                    .and_then(|s| s.trim().parse().ok()),
            },
            MemoryCgroups::V2 { .. } => MemoryStats {
                oom_kills: read("memory.events").and_then(|s| keyed(&s, "oom_kill")),
                max_usage_bytes: read(self.peak_file_name().unwrap_or_default())
                    .and_then(|s| s.trim().parse().ok()),
            },
            MemoryCgroups::Unknown => MemoryStats::default(),
        }
    }
}

/// The value of `key value` in a flat-keyed cgroup file.
fn keyed(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let (k, v) = line.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID_MOUNTS: &str = "\
26 1 0:23 / /sys rw,nosuid - sysfs sysfs rw
30 26 0:27 / /sys/fs/cgroup rw - tmpfs tmpfs rw,mode=755
31 30 0:28 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw
35 30 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
36 30 0:33 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct";

    #[test]
    fn finds_v1_memory_cgroup_on_a_hybrid_host() {
        let cgroup = "4:memory:/process_api/abc\n2:cpu,cpuacct:/\n0::/\n";
        let cg = MemoryCgroups::from_proc(HYBRID_MOUNTS, cgroup);
        assert_eq!(
            cg,
            MemoryCgroups::V1 {
                own: "/sys/fs/cgroup/memory/process_api/abc".into()
            }
        );
        assert_eq!(
            cg.dir_for("stratus-x"),
            Some("/sys/fs/cgroup/memory/process_api/abc/stratus-x".into())
        );
    }

    #[test]
    fn finds_the_v2_parent_on_a_unified_host() {
        let mounts = "31 30 0:28 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw";
        let cg = MemoryCgroups::from_proc(mounts, "0::/system.slice/stratus.service\n");
        assert_eq!(
            cg.dir_for("stratus-x"),
            Some("/sys/fs/cgroup/system.slice/stratus-x".into())
        );
        let cg = MemoryCgroups::from_proc(mounts, "0::/\n");
        assert_eq!(cg.dir_for("s"), Some("/sys/fs/cgroup/s".into()));
        assert_eq!(MemoryCgroups::from_proc("", ""), MemoryCgroups::Unknown);
    }

    #[test]
    fn reads_flat_keyed_files() {
        let text = "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n";
        assert_eq!(keyed(text, "oom_kill"), Some(2));
        assert_eq!(keyed(text, "missing"), None);
    }
}
