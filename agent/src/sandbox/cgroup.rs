//! One cgroup per instance (cgroups-rs; v1 controllers or the v2 unified
//! hierarchy, whichever the host uses): memory without swap, CPU weight
//! proportional to memory, a process limit; peak memory and OOM kills read
//! back for REPORT lines; on v1 also the `freezer` and `cpuacct`
//! controllers (v2 has `cgroup.freeze` and `cpu.stat` in every cgroup), so
//! an idle sandbox can be frozen (see `freezer`).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use cgroups_rs::fs::cpu::CpuController;
use cgroups_rs::fs::memory::MemController;
use cgroups_rs::fs::pid::PidController;
use cgroups_rs::fs::{hierarchies, Cgroup, Controller, MaxValue};

use super::freezer::Freezer;
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

/// The controllers an instance cgroup is created with (v1 has separate
/// freezer and CPU-accounting hierarchies; on v2 both are built in).
fn controllers(v2: bool) -> Vec<String> {
    let mut names = vec!["memory", "cpu", "pids"];
    if !v2 {
        names.extend(["freezer", "cpuacct"]);
    }
    names.into_iter().map(String::from).collect()
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
        let cgroup =
            Cgroup::new_with_specified_controllers(hierarchy, &name, Some(controllers(v2)))
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
        self.apply(&[Limit::PidsMax(i64::from(max_processes))])
    }

    /// The existing cgroup `<parent>/<id>` (e.g. left by a killed agent),
    /// for [`InstanceCgroup::remove`].
    pub fn load(parent: &str, id: &str) -> Self {
        let name = format!("{}/{}", parent.trim_matches('/'), id);
        let hierarchy = hierarchies::auto();
        let v2 = hierarchy.v2();
        let cgroup = Cgroup::load_with_specified_controllers(hierarchy, &name, controllers(v2));
        Self {
            cgroup,
            name,
            v2,
            memory_dir: None,
        }
    }

    /// Names of the cgroups under `parent` in any of its hierarchies.
    pub fn children(parent: &str) -> Vec<String> {
        let hierarchy = hierarchies::auto();
        let v2 = hierarchy.v2();
        let cgroup = Cgroup::load_with_specified_controllers(
            hierarchy,
            parent.trim_matches('/'),
            controllers(v2),
        );
        let mut names: Vec<String> = cgroup
            .subsystems()
            .iter()
            .filter_map(|s| std::fs::read_dir(s.to_controller().path()).ok())
            .flatten()
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        names.sort();
        names.dedup();
        names
    }

    /// The cgroup's `name` controller.
    fn controller<'a, T>(&'a self, name: &str) -> Result<&'a T, SandboxError>
    where
        &'a T: From<&'a cgroups_rs::fs::Subsystem>,
        T: Controller + cgroups_rs::fs::ControllIdentifier,
    {
        self.cgroup.controller_of().ok_or_else(|| {
            cgroup_error(
                "find controller",
                &self.name,
                format!("no {name} controller"),
            )
        })
    }

    /// Changes the memory limit (and the CPU share that follows it) of a
    /// running sandbox: a blank one being claimed for a function.
    pub fn resize(&mut self, from_mb: u32, to_mb: u32) -> Result<(), SandboxError> {
        self.set_memory(Some(from_mb), to_mb)
    }

    /// Sets the memory limit without swap, and the CPU share proportional
    /// to it. `from_mb` is the current limit (`None`: unlimited).
    fn set_memory(&mut self, from_mb: Option<u32>, to_mb: u32) -> Result<(), SandboxError> {
        let memory_dir = self
            .controller::<MemController>("memory")?
            .path()
            .to_path_buf();
        // Swap limits only where swap is accounted (v1 memsw files; v2
        // memory.swap.max exists only with swap accounting).
        let swap_file = if self.v2 {
            "memory.swap.max"
        } else {
            "memory.memsw.limit_in_bytes"
        };
        let swap_accounting = memory_dir.join(swap_file).exists();
        self.apply(&memory_limits(self.v2, swap_accounting, from_mb, to_mb))?;
        self.memory_dir = Some(memory_dir);
        Ok(())
    }

    /// Writes `limits` in order, through cgroups-rs's controllers.
    fn apply(&self, limits: &[Limit]) -> Result<(), SandboxError> {
        for limit in limits {
            let op = limit.file(self.v2);
            let failed = |e: cgroups_rs::fs::error::Error| cgroup_error(op, &self.name, e);
            match *limit {
                Limit::Memory(bytes) => {
                    self.controller::<MemController>("memory")?.set_limit(bytes)
                }
                Limit::MemorySwap(bytes) => self
                    .controller::<MemController>("memory")?
                    .set_memswap_limit(bytes),
                // cgroups-rs writes the number as is: cpu.shares on v1,
                // cpu.weight on v2 (`memory_limits` uses each scale).
                Limit::CpuShares(shares) => {
                    self.controller::<CpuController>("cpu")?.set_shares(shares)
                }
                Limit::PidsMax(max) => self
                    .controller::<PidController>("pids")?
                    .set_pid_max(MaxValue::Value(max)),
            }
            .map_err(failed)?;
        }
        Ok(())
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

    /// The freezer of this cgroup, if the host has one (v2 always; v1 when
    /// the `freezer` hierarchy is mounted).
    pub fn freezer(&self) -> Option<Freezer> {
        let dir = if self.v2 {
            self.memory_dir.clone()?
        } else {
            self.cgroup.subsystems().iter().find_map(|s| match s {
                cgroups_rs::fs::Subsystem::Freezer(c) => Some(c.path().to_path_buf()),
                _ => None,
            })?
        };
        Some(Freezer::new(&dir, self.v2))
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
        // A process frozen by the v1 freezer dies only once thawed.
        if let Some(freezer) = self.freezer() {
            let _ = freezer.thaw_for_kill(&super::syscall::Linux);
        }
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

/// One limit written to an instance's cgroup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// Memory limit in bytes.
    Memory(i64),
    /// Memory+swap limit in bytes (v1), swap limit (v2).
    MemorySwap(i64),
    /// CPU share: `cpu.shares` on v1, `cpu.weight` on v2 (each on its own scale).
    CpuShares(u64),
    /// Largest number of processes.
    PidsMax(i64),
}

impl Limit {
    /// The control file the limit is written to.
    pub fn file(&self, v2: bool) -> &'static str {
        match (self, v2) {
            (Limit::Memory(_), false) => "memory.limit_in_bytes",
            (Limit::Memory(_), true) => "memory.max",
            (Limit::MemorySwap(_), false) => "memory.memsw.limit_in_bytes",
            (Limit::MemorySwap(_), true) => "memory.swap.max",
            (Limit::CpuShares(_), false) => "cpu.shares",
            (Limit::CpuShares(_), true) => "cpu.weight",
            (Limit::PidsMax(_), _) => "pids.max",
        }
    }
}

/// The writes that set a memory limit of `to_mb` without swap and the CPU
/// share proportional to it, in a safe order. `from_mb` is the current
/// limit (`None`: unlimited); `swap_accounting` whether the hierarchy
/// accounts swap (v1 memsw files, v2 `memory.swap.max`).
pub fn memory_limits(
    v2: bool,
    swap_accounting: bool,
    from_mb: Option<u32>,
    to_mb: u32,
) -> Vec<Limit> {
    let bytes = i64::from(to_mb) * 1024 * 1024;
    // No swap: the memory+swap limit equals the memory limit (v1), or
    // memory.swap.max = 0 (v2); either only when swap is accounted.
    let swap = swap_accounting.then_some(Limit::MemorySwap(if v2 { 0 } else { bytes }));
    let memory = Limit::Memory(bytes);
    // v1 keeps memory ≤ memory+swap at every step: raise the swap
    // limit first when growing, the memory limit first when shrinking.
    let mut limits = if from_mb.is_some_and(|from| to_mb >= from) {
        swap.into_iter().chain([memory]).collect::<Vec<_>>()
    } else {
        [memory].into_iter().chain(swap).collect()
    };
    limits.push(Limit::CpuShares(cpu_share(to_mb, v2)));
    limits
}

/// Removes the parent cgroup of this agent's instances if it is empty
/// (best effort: a parent still holding instances is left alone).
pub fn remove_parent_if_empty(parent: &str) {
    let hierarchy = hierarchies::auto();
    let v2 = hierarchy.v2();
    let cgroup = Cgroup::load_with_specified_controllers(
        hierarchy,
        parent.trim_matches('/'),
        controllers(v2),
    );
    if cgroup.exists() && cgroup.procs().is_empty() {
        if let Err(err) = cgroup.delete() {
            tracing::warn!(%err, cgroup = parent, "removing the instances' parent cgroup");
        }
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

    fn files(limits: &[Limit], v2: bool) -> Vec<(&'static str, Limit)> {
        limits.iter().map(|l| (l.file(v2), *l)).collect()
    }

    const MB128: i64 = 128 * 1024 * 1024;

    #[test]
    fn a_new_128_mb_cgroup_on_v1_limits_memory_then_memsw_then_cpu() {
        let limits = memory_limits(false, true, None, 128);
        assert_eq!(
            files(&limits, false),
            [
                ("memory.limit_in_bytes", Limit::Memory(MB128)),
                ("memory.memsw.limit_in_bytes", Limit::MemorySwap(MB128)),
                ("cpu.shares", Limit::CpuShares(128 * 1024 / 1769)),
            ]
        );
        assert_eq!(Limit::PidsMax(64).file(false), "pids.max");
    }

    #[test]
    fn v1_without_swap_accounting_sets_no_memsw() {
        let limits = memory_limits(false, false, None, 128);
        assert_eq!(limits, [Limit::Memory(MB128), Limit::CpuShares(74)]);
    }

    #[test]
    fn v2_uses_its_file_names_and_a_zero_swap_limit() {
        let limits = memory_limits(true, true, None, 128);
        assert_eq!(
            files(&limits, true),
            [
                ("memory.max", Limit::Memory(MB128)),
                ("memory.swap.max", Limit::MemorySwap(0)),
                ("cpu.weight", Limit::CpuShares(7)),
            ]
        );
        // Without swap accounting there is no memory.swap.max to write.
        assert_eq!(
            memory_limits(true, false, None, 128),
            [Limit::Memory(MB128), Limit::CpuShares(7)]
        );
        assert_eq!(Limit::PidsMax(64).file(true), "pids.max");
    }

    #[test]
    fn growing_raises_memsw_first_and_shrinking_lowers_memory_first() {
        let gb = 1024 * 1024 * 1024;
        assert_eq!(
            memory_limits(false, true, Some(128), 1024)[..2],
            [Limit::MemorySwap(gb), Limit::Memory(gb)]
        );
        assert_eq!(
            memory_limits(false, true, Some(1024), 128)[..2],
            [Limit::Memory(MB128), Limit::MemorySwap(MB128)]
        );
        // A tiny limit still gets the smallest valid share.
        assert_eq!(memory_limits(false, true, None, 1)[2], Limit::CpuShares(2));
        // A full vCPU's memory buys the default share of each scale.
        assert_eq!(
            memory_limits(false, true, None, 1769)[2],
            Limit::CpuShares(1024)
        );
        assert_eq!(
            memory_limits(true, true, None, 1769)[2],
            Limit::CpuShares(100)
        );
    }

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
