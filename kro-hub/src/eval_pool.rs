//! Where CEL runs: a bounded set of blocking threads, never the async
//! workers. An evaluation can take a second or more (it is bounded by the
//! meter's budgets, not by time, since the interpreter cannot be
//! interrupted); on an async worker it would stall `/healthz`, the watches
//! and every other instance. The bound caps the threads (and the memory)
//! that evaluations can hold at once; it is a few times the cores, so a
//! handful of costly instances share the cores with cheap ones instead of
//! holding every permit while the cheap ones queue.

use std::sync::Arc;

use tokio::sync::Semaphore;

/// Runs evaluations off the async workers, a bounded number at a time.
#[derive(Debug, Clone)]
pub struct EvalPool {
    permits: Arc<Semaphore>,
}

impl Default for EvalPool {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, usize::from);
        Self::new((4 * cores).max(8))
    }
}

/// An evaluation that did not return: it panicked (a defect, reported
/// rather than taking the hub down) or the pool was shut down.
#[derive(Debug, thiserror::Error)]
#[error("evaluation did not complete: {0}")]
pub struct EvalAborted(String);

impl EvalPool {
    /// A pool running at most `parallel` evaluations at once.
    pub fn new(parallel: usize) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(parallel.max(1))),
        }
    }

    /// Runs `f` on a blocking thread once a permit is free.
    pub async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, EvalAborted> {
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| EvalAborted(e.to_string()))?;
        let out = tokio::task::spawn_blocking(move || {
            let out = f();
            drop(permit);
            out
        })
        .await;
        out.map_err(|e| EvalAborted(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[tokio::test(flavor = "current_thread")]
    async fn a_long_evaluation_leaves_the_async_worker_free() {
        let pool = EvalPool::new(1);
        let busy = tokio::spawn({
            let pool = pool.clone();
            async move {
                pool.run(|| std::thread::sleep(Duration::from_millis(400)))
                    .await
            }
        });
        // On a single async worker, this timer fires on time only if the
        // evaluation is not holding the worker.
        let started = Instant::now();
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(started.elapsed() < Duration::from_millis(300));
        busy.await.unwrap().unwrap();
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_panic_is_reported_not_propagated() {
        let pool = EvalPool::new(1);
        let err = pool.run(|| panic!("boom")).await.unwrap_err();
        assert!(
            err.to_string().contains("evaluation did not complete"),
            "{err}"
        );
        // The permit came back.
        assert_eq!(pool.run(|| 7).await.unwrap(), 7);
    }
}
