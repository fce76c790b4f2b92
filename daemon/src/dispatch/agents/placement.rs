//! Where an invocation goes, decided from a snapshot of the nodes: among
//! ready nodes with the memory free, one with an idle warm instance of the
//! function version (the least busy of them), otherwise the one with the
//! most free memory. Draining, drained and lost nodes get no work. Pure:
//! no locks, no I/O.

use std::collections::HashMap;

use super::nodes::{NodeState, WarmKey};

/// One node as placement sees it.
#[derive(Debug, Clone, Copy)]
pub struct NodeView<'a> {
    /// Its agent id.
    pub id: &'a str,
    /// Where it stands; only [`NodeState::Ready`] nodes get work.
    pub state: NodeState,
    /// Memory it can still give.
    pub free_mb: u64,
    /// Invocations running on it.
    pub running: u32,
    /// Idle warm instances per (function, version, revision).
    pub warm: &'a HashMap<WarmKey, u32>,
}

/// Why no node was chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NoPlacement {
    /// No node is ready (none connected, or all draining, drained or lost).
    #[error("no node is ready")]
    NoReadyNode,
    /// Ready nodes exist but none has the memory free.
    #[error("none of the {ready} ready node(s) has {memory_mb} MB free")]
    NoCapacity {
        /// Ready nodes.
        ready: usize,
        /// Memory asked for.
        memory_mb: u64,
    },
}

/// The node for an invocation of `key` needing `memory_mb`.
pub fn place<'a>(
    nodes: &[NodeView<'a>],
    key: &WarmKey,
    memory_mb: u64,
) -> Result<&'a str, NoPlacement> {
    let ready: Vec<&NodeView<'a>> = nodes
        .iter()
        .filter(|n| n.state == NodeState::Ready)
        .collect();
    if ready.is_empty() {
        return Err(NoPlacement::NoReadyNode);
    }
    let candidates: Vec<Candidate> = ready
        .iter()
        .map(|n| Candidate {
            free_mb: n.free_mb,
            running: n.running,
            warm_idle: n.warm.get(key).copied().unwrap_or(0),
        })
        .collect();
    choose(&candidates, memory_mb)
        .map(|index| ready[index].id)
        .ok_or(NoPlacement::NoCapacity {
            ready: ready.len(),
            memory_mb,
        })
}

/// One ready node as [`choose`] sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate {
    /// Memory it can still give.
    pub free_mb: u64,
    /// Invocations running on it.
    pub running: u32,
    /// Idle warm instances of the function version being placed.
    pub warm_idle: u32,
}

/// Picks the node for an invocation needing `memory_mb`: among nodes with
/// that much free, one with an idle warm instance (the least busy of them),
/// otherwise the one with the most free memory (fewest running on a tie).
/// `None` when no node has room.
pub fn choose(candidates: &[Candidate], memory_mb: u64) -> Option<usize> {
    let fits = || {
        candidates
            .iter()
            .enumerate()
            .filter(move |(_, c)| c.free_mb >= memory_mb)
    };
    fits()
        .filter(|(_, c)| c.warm_idle > 0)
        .min_by_key(|(_, c)| c.running)
        .or_else(|| fits().max_by_key(|(_, c)| (c.free_mb, std::cmp::Reverse(c.running))))
        .map(|(index, _)| index)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(free_mb: u64, running: u32, warm_idle: u32) -> Candidate {
        Candidate {
            free_mb,
            running,
            warm_idle,
        }
    }

    #[test]
    fn a_warm_instance_wins_over_free_memory() {
        let nodes = [node(4000, 0, 0), node(1000, 3, 1), node(8000, 0, 0)];
        assert_eq!(choose(&nodes, 128), Some(1));
    }

    #[test]
    fn without_warm_instances_the_most_free_memory_wins() {
        let nodes = [node(4000, 0, 0), node(1000, 3, 0), node(8000, 5, 0)];
        assert_eq!(choose(&nodes, 128), Some(2));
        let tie = [node(4000, 2, 0), node(4000, 1, 0)];
        assert_eq!(choose(&tie, 128), Some(1));
    }

    #[test]
    fn a_warm_node_without_room_is_skipped_and_nothing_fits_is_none() {
        let nodes = [node(100, 0, 4), node(600, 1, 0)];
        assert_eq!(choose(&nodes, 512), Some(1));
        assert_eq!(choose(&nodes, 1024), None);
        assert_eq!(choose(&[], 1), None);
    }

    fn key(version: &str) -> WarmKey {
        ("f".to_string(), version.to_string(), 1)
    }

    fn view<'a>(
        id: &'a str,
        state: NodeState,
        free_mb: u64,
        warm: &'a HashMap<WarmKey, u32>,
    ) -> NodeView<'a> {
        NodeView {
            id,
            state,
            free_mb,
            running: 0,
            warm,
        }
    }

    #[test]
    fn placement_prefers_a_warm_node_of_the_same_version() {
        let cold = HashMap::new();
        let warm_v1 = HashMap::from([(key("1"), 2)]);
        let nodes = [
            view("big", NodeState::Ready, 8000, &cold),
            view("warm", NodeState::Ready, 1000, &warm_v1),
        ];
        assert_eq!(place(&nodes, &key("1"), 128), Ok("warm"));
        assert_eq!(
            place(&nodes, &key("2"), 128),
            Ok("big"),
            "instances of another version do not count"
        );
    }

    #[test]
    fn placement_without_warm_instances_takes_the_most_free_memory() {
        let cold = HashMap::new();
        let nodes = [
            view("a", NodeState::Ready, 2000, &cold),
            view("b", NodeState::Ready, 6000, &cold),
            view("c", NodeState::Ready, 4000, &cold),
        ];
        assert_eq!(place(&nodes, &key("1"), 128), Ok("b"));
    }

    #[test]
    fn draining_drained_and_lost_nodes_get_no_work() {
        let warm = HashMap::from([(key("1"), 1)]);
        let mut nodes = vec![
            view("draining", NodeState::Draining, 9000, &warm),
            view("drained", NodeState::Drained, 9000, &warm),
            view("lost", NodeState::Lost, 9000, &warm),
        ];
        assert_eq!(place(&nodes, &key("1"), 128), Err(NoPlacement::NoReadyNode));
        nodes.push(view("ready", NodeState::Ready, 500, &warm));
        assert_eq!(place(&nodes, &key("1"), 128), Ok("ready"));
        assert_eq!(place(&[], &key("1"), 128), Err(NoPlacement::NoReadyNode));
    }

    #[test]
    fn no_ready_node_with_the_memory_is_no_capacity() {
        let warm = HashMap::from([(key("1"), 1)]);
        let nodes = [
            view("small", NodeState::Ready, 256, &warm),
            view("smaller", NodeState::Ready, 128, &warm),
            view("drained", NodeState::Drained, 9000, &warm),
        ];
        assert_eq!(
            place(&nodes, &key("1"), 512),
            Err(NoPlacement::NoCapacity {
                ready: 2,
                memory_mb: 512
            })
        );
    }
}
