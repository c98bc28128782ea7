//! The load a run put on its nodes: every HTTP request the simulated
//! clients and staff send is timed and counted per phase and per node,
//! giving the rates reached and the p50/p99 latencies (as seen by the
//! client, queueing included), per node and in total.

use serde::Serialize;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One node's (or all nodes') requests in one phase.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct NodeLoad {
    pub requests: u64,
    pub per_s: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

/// One phase of the run.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct PhaseLoad {
    /// The phase's key (`setup`, `live`, `ballot`...).
    pub phase: String,
    pub seconds: f64,
    /// Per node, in node order.
    pub nodes: Vec<NodeLoad>,
    pub total: NodeLoad,
}

struct PhaseSamples {
    key: &'static str,
    started: Instant,
    ended: Option<Instant>,
    /// Latencies in microseconds, per node.
    per_node: Vec<Vec<u32>>,
}

/// Counts and times requests; cheap to clone (one shared state).
#[derive(Clone)]
pub struct Meter {
    nodes: usize,
    phases: Arc<Mutex<Vec<PhaseSamples>>>,
}

impl Meter {
    pub fn new(nodes: usize) -> Self {
        let m = Self {
            nodes: nodes.max(1),
            phases: Arc::new(Mutex::new(Vec::new())),
        };
        m.start_phase("setup");
        m
    }

    /// Ends the current phase and starts `key`.
    pub fn start_phase(&self, key: &'static str) {
        let now = Instant::now();
        if let Ok(mut p) = self.phases.lock() {
            if let Some(last) = p.last_mut() {
                last.ended.get_or_insert(now);
            }
            p.push(PhaseSamples {
                key,
                started: now,
                ended: None,
                per_node: vec![Vec::new(); self.nodes],
            });
        }
    }

    /// One request to `node` that took `took`.
    pub fn record(&self, node: usize, took: Duration) {
        let us = u32::try_from(took.as_micros()).unwrap_or(u32::MAX);
        if let Ok(mut p) = self.phases.lock()
            && let Some(last) = p.last_mut()
            && let Some(v) = last.per_node.get_mut(node)
        {
            v.push(us);
        }
    }

    /// The figures so far (phases without requests left out).
    pub fn figures(&self) -> Vec<PhaseLoad> {
        let now = Instant::now();
        let Ok(p) = self.phases.lock() else {
            return Vec::new();
        };
        p.iter()
            .filter(|ph| ph.per_node.iter().any(|v| !v.is_empty()))
            .map(|ph| {
                let seconds = ph
                    .ended
                    .unwrap_or(now)
                    .duration_since(ph.started)
                    .as_secs_f64();
                let mut all = Vec::new();
                let nodes = ph
                    .per_node
                    .iter()
                    .map(|v| {
                        all.extend_from_slice(v);
                        load(v.clone(), seconds)
                    })
                    .collect();
                PhaseLoad {
                    phase: ph.key.to_string(),
                    seconds,
                    nodes,
                    total: load(all, seconds),
                }
            })
            .collect()
    }
}

fn load(mut us: Vec<u32>, seconds: f64) -> NodeLoad {
    us.sort_unstable();
    // Counts far below 2^52: exact.
    #[allow(clippy::cast_precision_loss)]
    let requests = us.len() as f64;
    NodeLoad {
        requests: us.len() as u64,
        per_s: if seconds > 0.0 {
            requests / seconds
        } else {
            0.0
        },
        p50_ms: percentile_ms(&us, 0.50),
        p99_ms: percentile_ms(&us, 0.99),
    }
}

/// The `p` quantile of sorted microseconds, in milliseconds (nearest rank,
/// as `bench`'s `percentile`).
fn percentile_ms(sorted_us: &[u32], p: f64) -> f64 {
    if sorted_us.is_empty() {
        return 0.0;
    }
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let i = ((sorted_us.len() as f64 - 1.0) * p).round() as usize;
    f64::from(sorted_us[i.min(sorted_us.len() - 1)]) / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_per_phase_and_node() {
        let m = Meter::new(2);
        m.start_phase("live");
        for ms in 1..=100 {
            m.record(usize::from(ms % 2 == 0), Duration::from_millis(ms));
        }
        m.start_phase("ballot");
        let f = m.figures();
        assert_eq!(f.len(), 1, "phases without requests are left out");
        assert_eq!(f[0].phase, "live");
        assert_eq!(f[0].total.requests, 100);
        assert_eq!((f[0].nodes[0].requests, f[0].nodes[1].requests), (50, 50));
        assert!((f[0].total.p50_ms - 51.0).abs() < 1e-9, "{:?}", f[0].total);
        assert!((f[0].total.p99_ms - 99.0).abs() < 1e-9, "{:?}", f[0].total);
    }
}
