//! One cgroup per instance (cgroups-rs; v1 controllers or the v2 unified
//! hierarchy, whichever the host uses): memory without swap, CPU weight
//! proportional to memory, a process limit; peak memory and OOM kills read
//! back for REPORT lines.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use cgroups_rs::fs::cpu::CpuController;
use cgroups_rs::fs::memory::MemController;
use cgroups_rs::fs::pid::PidController;
use cgroups_rs::fs::{hierarchies, Cgroup, Controller, MaxValue};

use super::SandboxError;

/// Memory that buys one full CPU weight unit, as on Lambda (1769 MB = 1 vCPU).
const MB_PER_VCPU: u64 = kumo_proto::model::MEMORY_MB_PER_VCPU as u64;

/// The cgroup of one sandbox.
#[derive(Debug)]
pub struct InstanceCgroup {
    cgroup: Cgroup,
    name: String,
    v2: bool,
    memory_dir: Option<PathBuf>,
}

fn cgroup_error(op: &'static str, path: &str, err: impl std::fmt::Display) -> SandboxError {
    SandboxError::Cgroup {
        op,
        path: path.to_string(),
        message: err.to_string(),
    }
}

impl InstanceCgroup {
    /// Creates `<parent>/<id>` with the limits set.
    pub fn create(
        parent: &str,
        id: &str,
        memory_mb: u32,
        max_processes: u32,
    ) -> Result<Self, SandboxError> {
        let name = format!("{}/{}", parent.trim_matches('/'), id);
        let hierarchy = hierarchies::auto();
        let v2 = hierarchy.v2();
        let controllers = vec!["memory".to_string(), "cpu".to_string(), "pids".to_string()];
        let cgroup = Cgroup::new_with_specified_controllers(hierarchy, &name, Some(controllers))
            .map_err(|e| cgroup_error("create", &name, e))?;
        let mut this = Self {
            cgroup,
            name,
            v2,
            memory_dir: None,
        };
        if let Err(err) = this.apply_limits(memory_mb, max_processes) {
            let _ = this.cgroup.delete();
            return Err(err);
        }
        Ok(this)
    }

    fn apply_limits(&mut self, memory_mb: u32, max_processes: u32) -> Result<(), SandboxError> {
        self.set_memory(None, memory_mb)?;
        let pids: &PidController = self
            .cgroup
            .controller_of()
            .ok_or_else(|| cgroup_error("find controller", &self.name, "no pids controller"))?;
        pids.set_pid_max(MaxValue::Value(i64::from(max_processes)))
            .map_err(|e| cgroup_error("set pids.max", &self.name, e))?;
        Ok(())
    }

    /// Changes the memory limit (and the CPU share that follows it) of a
    /// running sandbox: a blank one being claimed for a function.
    pub fn resize(&mut self, from_mb: u32, to_mb: u32) -> Result<(), SandboxError> {
        self.set_memory(Some(from_mb), to_mb)
    }

    /// Sets the memory limit without swap, and the CPU share proportional
    /// to it. `from_mb` is the current limit (`None`: unlimited).
    fn set_memory(&mut self, from_mb: Option<u32>, to_mb: u32) -> Result<(), SandboxError> {
        let bytes = i64::from(to_mb) * 1024 * 1024;
        let memory: &MemController = self
            .cgroup
            .controller_of()
            .ok_or_else(|| cgroup_error("find controller", &self.name, "no memory controller"))?;
        // No swap: the memory+swap limit equals the memory limit (v1), or
        // memory.swap.max = 0 (v2); either only when swap accounting exists.
        let (swap_file, swap_limit) = if self.v2 {
            ("memory.swap.max", 0)
        } else {
            ("memory.memsw.limit_in_bytes", bytes)
        };
        let swap = memory.path().join(swap_file).exists().then_some(swap_limit);
        let set_memory = || {
            memory
                .set_limit(bytes)
                .map_err(|e| cgroup_error("set memory limit", &self.name, e))
        };
        let set_swap = |limit| {
            memory
                .set_memswap_limit(limit)
                .map_err(|e| cgroup_error("set swap limit", &self.name, e))
        };
        // v1 keeps memory ≤ memory+swap at every step: raise the swap
        // limit first when growing, the memory limit first when shrinking.
        if from_mb.is_some_and(|from| to_mb >= from) {
            swap.map(set_swap).transpose()?;
            set_memory()?;
        } else {
            set_memory()?;
            swap.map(set_swap).transpose()?;
        }
        let memory_dir = memory.path().to_path_buf();
        self.memory_dir = Some(memory_dir);
        let cpu: &CpuController = self
            .cgroup
            .controller_of()
            .ok_or_else(|| cgroup_error("find controller", &self.name, "no cpu controller"))?;
        // cgroups-rs writes the number as is: cpu.shares on v1, cpu.weight
        // on v2, whose scales differ.
        cpu.set_shares(cpu_share(to_mb, self.v2))
            .map_err(|e| cgroup_error("set cpu shares", &self.name, e))
    }

    /// The `cgroup.procs` file of every hierarchy this cgroup lives in.
    pub fn procs_files(&self) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = self
            .cgroup
            .subsystems()
            .iter()
            .map(|s| s.to_controller().path().join("cgroup.procs"))
            .collect();
        files.sort();
        files.dedup();
        files
    }

    /// Peak memory use in bytes.
    pub fn max_memory_used_bytes(&self) -> Option<u64> {
        let file = if self.v2 {
            "memory.peak"
        } else {
            "memory.max_usage_in_bytes"
        };
        read_trimmed(&self.memory_dir.as_ref()?.join(file))?
            .parse()
            .ok()
    }

    /// Number of processes the kernel OOM-killed in this cgroup.
    pub fn oom_kills(&self) -> u64 {
        let file = if self.v2 {
            "memory.events"
        } else {
            "memory.oom_control"
        };
        let Some(dir) = &self.memory_dir else {
            return 0;
        };
        read_trimmed(&dir.join(file))
            .and_then(|text| {
                text.lines()
                    .find_map(|l| l.strip_prefix("oom_kill "))
                    .and_then(|n| n.trim().parse().ok())
            })
            .unwrap_or(0)
    }

    /// Kills whatever is left in the cgroup and removes it, retrying for up
    /// to 10 s while the kernel still reports it busy.
    pub fn remove(self) -> Result<(), SandboxError> {
        let mut last = String::new();
        let deadline = Instant::now() + Duration::from_secs(10);
        for attempt in 0u64.. {
            if Instant::now() > deadline {
                break;
            }
            // v2 (5.14+): cgroup.kill kills every process in the cgroup at
            // once, also those a fork bomb creates while pids are listed.
            if let Some(dir) = self.memory_dir.as_ref().filter(|_| self.v2) {
                let _ = std::fs::write(dir.join("cgroup.kill"), "1");
            }
            for pid in self.cgroup.procs() {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid.pid as i32),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            match self.cgroup.delete() {
                Ok(()) if !self.cgroup.exists() => return Ok(()),
                Ok(()) => last = "still exists after delete".into(),
                Err(e) => last = e.to_string(),
            }
            std::thread::sleep(Duration::from_millis((2 * (attempt + 1)).min(50)));
        }
        Err(cgroup_error("remove", &self.name, last))
    }
}

/// Removes the parent cgroup of this agent's instances if it is empty
/// (best effort: a parent still holding instances is left alone).
pub fn remove_parent_if_empty(parent: &str) {
    let controllers = vec!["memory".to_string(), "cpu".to_string(), "pids".to_string()];
    let cgroup = Cgroup::load_with_specified_controllers(
        hierarchies::auto(),
        parent.trim_matches('/'),
        controllers,
    );
    if cgroup.exists() && cgroup.procs().is_empty() {
        let _ = cgroup.delete();
    }
}

/// The CPU share of `memory_mb`: one vCPU's worth of memory gets the
/// default share of a cgroup, 1024 in v1 `cpu.shares` (range 2..=262144),
/// 100 in v2 `cpu.weight` (range 1..=10000).
fn cpu_share(memory_mb: u32, v2: bool) -> u64 {
    let (default, min, max) = if v2 {
        (100, 1, 10_000)
    } else {
        (1024, 2, 262_144)
    };
    (u64::from(memory_mb) * default / MB_PER_VCPU).clamp(min, max)
}

fn read_trimmed(path: &Path) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_share_follows_memory_on_each_scale() {
        let vcpu = MB_PER_VCPU as u32;
        assert_eq!(cpu_share(vcpu, false), 1024);
        assert_eq!(cpu_share(vcpu, true), 100);
        assert_eq!(cpu_share(128, false), 74);
        assert_eq!(cpu_share(128, true), 7);
        assert_eq!(cpu_share(1, false), 2);
        assert_eq!(cpu_share(1, true), 1);
        assert_eq!(cpu_share(10_240, true), 578);
    }
}
