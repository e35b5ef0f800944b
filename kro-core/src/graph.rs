//! The dependency DAG of an RGD's resources: a stable topological order (ties
//! broken by declaration order) and cycle reports that print the cycle.

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap};

use petgraph::algo::tarjan_scc;
use petgraph::graph::{DiGraph, NodeIndex};

/// Resources (by declaration index) and what each depends on.
#[derive(Debug, Clone)]
pub struct Dag {
    graph: DiGraph<usize, ()>,
}

/// A dependency cycle, as the ids along it with the first repeated last.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cycle(pub Vec<usize>);

impl Dag {
    /// Builds the DAG: `deps[i]` are the indices node `i` depends on.
    pub fn new(deps: &[BTreeSet<usize>]) -> Self {
        let mut graph = DiGraph::with_capacity(deps.len(), deps.iter().map(BTreeSet::len).sum());
        let nodes: Vec<NodeIndex> = (0..deps.len()).map(|i| graph.add_node(i)).collect();
        for (i, ds) in deps.iter().enumerate() {
            for &d in ds {
                if let (Some(&from), Some(&to)) = (nodes.get(d), nodes.get(i)) {
                    // Edge from dependency to dependent: creation order.
                    graph.add_edge(from, to, ());
                }
            }
        }
        Self { graph }
    }

    /// Kahn's algorithm, always taking the earliest-declared ready node, so
    /// the order only changes when dependencies do.
    pub fn topological_order(&self) -> Result<Vec<usize>, Cycle> {
        let n = self.graph.node_count();
        let mut indegree: Vec<usize> = (0..n)
            .map(|i| {
                self.graph
                    .neighbors_directed(NodeIndex::new(i), petgraph::Direction::Incoming)
                    .count()
            })
            .collect();
        let mut ready: BinaryHeap<Reverse<usize>> =
            (0..n).filter(|&i| indegree[i] == 0).map(Reverse).collect();
        let mut order = Vec::with_capacity(n);
        while let Some(Reverse(i)) = ready.pop() {
            order.push(i);
            for next in self.graph.neighbors(NodeIndex::new(i)) {
                let j = next.index();
                indegree[j] -= 1;
                if indegree[j] == 0 {
                    ready.push(Reverse(j));
                }
            }
        }
        if order.len() == n {
            Ok(order)
        } else {
            Err(self.find_cycle())
        }
    }

    /// One cycle, starting at its earliest-declared node, following
    /// "depends on" edges.
    fn find_cycle(&self) -> Cycle {
        let mut sccs: Vec<Vec<NodeIndex>> = tarjan_scc(&self.graph)
            .into_iter()
            .filter(|c| c.len() > 1 || self.graph.contains_edge(c[0], c[0]))
            .collect();
        for c in &mut sccs {
            c.sort();
        }
        sccs.sort();
        let Some(scc) = sccs.first() else {
            return Cycle(Vec::new());
        };
        let members: BTreeSet<NodeIndex> = scc.iter().copied().collect();
        let start = scc[0];
        // Walk dependencies (incoming edges) inside the SCC, smallest first,
        // until a node repeats.
        let mut path = vec![start];
        let mut seen = BTreeSet::from([start]);
        let mut cur = start;
        loop {
            let mut deps: Vec<NodeIndex> = self
                .graph
                .neighbors_directed(cur, petgraph::Direction::Incoming)
                .filter(|d| members.contains(d))
                .collect();
            deps.sort();
            let next = deps
                .iter()
                .copied()
                .find(|d| *d == start)
                .or_else(|| deps.iter().copied().find(|d| !seen.contains(d)))
                .or_else(|| deps.first().copied());
            let Some(next) = next else { break };
            path.push(next);
            if !seen.insert(next) {
                break;
            }
            cur = next;
        }
        // Trim to the repeated node so the printout is a closed loop.
        if let Some(last) = path.last().copied()
            && let Some(pos) = path.iter().position(|p| *p == last)
        {
            path.drain(..pos);
        }
        Cycle(path.into_iter().map(NodeIndex::index).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deps(list: &[&[usize]]) -> Vec<BTreeSet<usize>> {
        list.iter().map(|d| d.iter().copied().collect()).collect()
    }

    #[test]
    fn order_is_stable_by_declaration() {
        // 0 and 2 are independent; 1 depends on 2.
        let dag = Dag::new(&deps(&[&[], &[2], &[]]));
        assert_eq!(dag.topological_order().unwrap(), [0, 2, 1]);
        let dag = Dag::new(&deps(&[&[3], &[], &[1], &[]]));
        assert_eq!(dag.topological_order().unwrap(), [1, 2, 3, 0]);
    }

    #[test]
    fn cycles_are_reported_as_closed_loops() {
        let dag = Dag::new(&deps(&[&[1], &[2], &[0], &[]]));
        assert_eq!(
            dag.topological_order().unwrap_err(),
            Cycle(vec![0, 1, 2, 0])
        );
        let dag = Dag::new(&deps(&[&[], &[1]]));
        assert_eq!(dag.topological_order().unwrap_err(), Cycle(vec![1, 1]));
    }
}
