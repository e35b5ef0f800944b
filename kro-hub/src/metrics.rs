//! Prometheus metrics: reconciles, errors, durations, queue depth and API
//! calls by verb, labelled so a platform team can tell controllers and
//! clusters apart.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Labels naming one controller (`rgd`, or `instance/<rgd name>`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ControllerLabels {
    /// Controller name.
    pub controller: String,
}

/// Labels of an API call.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ApiCallLabels {
    /// Target cluster (`hub` for the hub itself).
    pub cluster: String,
    /// HTTP-level verb: get, list, apply, patch, delete, ...
    pub verb: String,
}

fn new_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

/// All metrics of one hub process.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    reconciles: Family<ControllerLabels, Counter>,
    skipped: Family<ControllerLabels, Counter>,
    errors: Family<ControllerLabels, Counter>,
    durations: Family<ControllerLabels, Histogram, fn() -> Histogram>,
    queue_depth: Family<ControllerLabels, Gauge>,
    api_calls: Family<ApiCallLabels, Counter>,
    ready: AtomicBool,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("kro_hub");
        let reconciles = Family::<ControllerLabels, Counter>::default();
        let skipped = Family::<ControllerLabels, Counter>::default();
        let errors = Family::<ControllerLabels, Counter>::default();
        let durations =
            Family::<ControllerLabels, Histogram, fn() -> Histogram>::new_with_constructor(
                new_histogram,
            );
        let queue_depth = Family::<ControllerLabels, Gauge>::default();
        let api_calls = Family::<ApiCallLabels, Counter>::default();
        registry.register("reconciles", "Reconciliations run", reconciles.clone());
        registry.register(
            "reconciles_unchanged",
            "Reconciliations answered without a pass: nothing the last pass read had changed",
            skipped.clone(),
        );
        registry.register(
            "reconcile_errors",
            "Reconciliations that failed",
            errors.clone(),
        );
        registry.register(
            "reconcile_duration_seconds",
            "Time spent in one reconciliation",
            durations.clone(),
        );
        registry.register(
            "queue_depth",
            "Objects waiting to be reconciled",
            queue_depth.clone(),
        );
        registry.register(
            "api_calls",
            "Kubernetes API calls made, by cluster and verb",
            api_calls.clone(),
        );
        Self {
            registry,
            reconciles,
            skipped,
            errors,
            durations,
            queue_depth,
            api_calls,
            ready: AtomicBool::new(false),
        }
    }
}

impl Metrics {
    /// A shared instance.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    fn labels(controller: &str) -> ControllerLabels {
        ControllerLabels {
            controller: controller.to_owned(),
        }
    }

    /// Records one finished reconciliation.
    pub fn reconciled(&self, controller: &str, took: Duration, failed: bool) {
        let labels = Self::labels(controller);
        self.reconciles.get_or_create(&labels).inc();
        self.durations
            .get_or_create(&labels)
            .observe(took.as_secs_f64());
        if failed {
            self.errors.get_or_create(&labels).inc();
        }
    }

    /// Records a reconciliation answered without a pass (it still counts
    /// as a reconciliation).
    pub fn pass_skipped(&self, controller: &str) {
        self.skipped.get_or_create(&Self::labels(controller)).inc();
    }

    /// How many reconciliations `controller` finished so far.
    pub fn reconciles(&self, controller: &str) -> u64 {
        self.reconciles
            .get_or_create(&Self::labels(controller))
            .get()
    }

    /// How many of them were answered without a pass.
    pub fn passes_skipped(&self, controller: &str) -> u64 {
        self.skipped.get_or_create(&Self::labels(controller)).get()
    }

    /// Sets how many objects a controller has queued.
    pub fn set_queue_depth(&self, controller: &str, depth: i64) {
        self.queue_depth
            .get_or_create(&Self::labels(controller))
            .set(depth);
    }

    /// Counts one API call.
    pub fn api_call(&self, cluster: &str, verb: &str) {
        self.api_calls
            .get_or_create(&ApiCallLabels {
                cluster: cluster.to_owned(),
                verb: verb.to_owned(),
            })
            .inc();
    }

    /// How many calls of `verb` were made to `cluster` so far.
    pub fn api_calls(&self, cluster: &str, verb: &str) -> u64 {
        self.api_calls
            .get_or_create(&ApiCallLabels {
                cluster: cluster.to_owned(),
                verb: verb.to_owned(),
            })
            .get()
    }

    /// Marks the process ready (CRDs installed, controllers started).
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Relaxed);
    }

    /// Whether `/readyz` should answer 200.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }

    /// The OpenMetrics text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail; an error here would be a bug in
        // the encoder, and an empty scrape is the safe answer.
        if encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_carries_labelled_counters() {
        let metrics = Metrics::default();
        metrics.reconciled("rgd", Duration::from_millis(3), false);
        metrics.reconciled("rgd", Duration::from_millis(5), true);
        metrics.api_call("member-a", "apply");
        metrics.set_queue_depth("instance/web", 4);
        let text = metrics.render();
        assert!(
            text.contains("kro_hub_reconciles_total{controller=\"rgd\"} 2"),
            "{text}"
        );
        assert!(text.contains("kro_hub_reconcile_errors_total{controller=\"rgd\"} 1"));
        assert!(text.contains("kro_hub_api_calls_total{cluster=\"member-a\",verb=\"apply\"} 1"));
        assert!(text.contains("kro_hub_queue_depth{controller=\"instance/web\"} 4"));
        assert!(text.contains("kro_hub_reconcile_duration_seconds_count{controller=\"rgd\"} 2"));
    }
}
