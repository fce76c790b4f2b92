//! Claiming a blank sandbox from the agent's side (see `sandbox::claim`
//! for the protocol and the init's side): the memory limit, the outbound
//! link's allow-list, the package and `/tmp` mounts, the assignment.

use std::os::fd::AsRawFd;

use super::super::channel;
use super::super::claim::{self, Claim, ClaimSpec};
use super::{prepare_tmp_disk, warn_tmpfs_fallback, Sandbox, SandboxError, START_TIMEOUT};

impl Sandbox {
    /// Gives a blank sandbox to a function (see the `claim` module). On error
    /// the sandbox is unusable and should be destroyed.
    pub async fn claim(&mut self, spec: ClaimSpec) -> Result<(), SandboxError> {
        let instance = self.id.clone();
        let failed = |message: String| SandboxError::Init {
            instance: instance.clone(),
            message,
        };
        let (writer, answer) = self
            .claim
            .take()
            .ok_or_else(|| failed("the sandbox is not blank (already claimed)".into()))?;
        self.unpark();
        if let Some(cgroup) = self.cgroup.as_mut() {
            cgroup.resize(spec.blank_memory_mb, spec.memory_mb)?;
        }
        if !spec.egress_allow.is_empty() {
            let mut link = self.outbound.take().ok_or_else(|| {
                failed("an egress allow-list for a sandbox without an outbound link".into())
            })?;
            let allow = spec.egress_allow.clone();
            let (link, restricted) = tokio::task::spawn_blocking(move || {
                let restricted = link.restrict(&allow);
                (link, restricted)
            })
            .await
            .map_err(|e| failed(format!("applying the egress allow-list: {e}")))?;
            self.outbound = Some(link);
            restricted.map_err(|e| failed(e.to_string()))?;
        }
        let tree = claim::detached_read_only_tree(&spec.task_dir).map_err(|e| {
            failed(format!(
                "cloning {} as a read-only mount: {e}",
                spec.task_dir.display()
            ))
        })?;
        let opt = match &spec.opt_dir {
            Some(dir) => Some(claim::detached_read_only_tree(dir).map_err(|e| {
                failed(format!(
                    "cloning {} as a read-only mount: {e}",
                    dir.display()
                ))
            })?),
            None => None,
        };
        let disk = prepare_tmp_disk(&self.state_dir, &self.id, spec.tmp_size_mb).await;
        let tmp_mount = disk.and_then(|disk| {
            disk.detached_mount(self.uid, self.gid)
                .map_err(|err| warn_tmpfs_fallback(&self.id, &err))
                .ok()
        });
        let claim = Claim {
            tmp_size_mb: spec.tmp_size_mb,
            tmp_disk: tmp_mount.is_some(),
            opt: opt.is_some(),
            assignment: spec.assignment,
        };
        let bytes =
            serde_json::to_vec(&claim).map_err(|e| failed(format!("encoding the claim: {e}")))?;
        let mut fds = vec![tree.as_raw_fd()];
        fds.extend(opt.as_ref().map(|m| m.as_raw_fd()));
        fds.extend(tmp_mount.as_ref().map(|m| m.as_raw_fd()));
        channel::send_raw(writer.as_raw_fd(), &bytes, &fds)
            .map_err(|e| failed(format!("sending the claim: {e}")))?;
        drop(tree);
        drop(opt);
        drop(tmp_mount);
        match tokio::time::timeout(START_TIMEOUT, answer).await {
            Ok(Ok(Ok(()))) => Ok(()),
            Ok(Ok(Err(message))) => Err(failed(message)),
            Ok(Err(_)) => Err(failed("the sandbox ended before it was claimed".into())),
            Err(_) => Err(failed(format!(
                "the claim took longer than {START_TIMEOUT:?}"
            ))),
        }
    }
}
