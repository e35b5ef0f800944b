//! Leader election on a `coordination.k8s.io/v1` Lease, so that of several
//! hub replicas exactly one acts. Takeover and renewal are optimistic
//! updates guarded by resourceVersion: two replicas racing for an expired
//! lease cannot both win, because the loser's write gets 409 Conflict.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::Client;
use kube::api::{Api, ObjectMeta, PostParams};
use tokio::sync::watch;

/// Settings of one election.
#[derive(Debug, Clone)]
pub struct LeaseConfig {
    /// Lease name.
    pub name: String,
    /// Namespace of the Lease.
    pub namespace: String,
    /// This replica's identity (pod name or host + pid).
    pub identity: String,
    /// How long a lease stays valid without renewal.
    pub lease_duration: Duration,
}

/// The result of one acquisition attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    /// We hold the lease now.
    Leader,
    /// Another live replica holds it.
    Follower {
        /// The current holder.
        holder: String,
    },
}

/// Runs the election for one replica.
#[derive(Debug, Clone)]
pub struct LeaderElector {
    api: Api<Lease>,
    config: LeaseConfig,
}

fn is_conflict(err: &kube::Error) -> bool {
    matches!(err, kube::Error::Api(status) if status.code == 409)
}

impl LeaderElector {
    /// An elector over `client`'s cluster.
    pub fn new(client: Client, config: LeaseConfig) -> Self {
        let api = Api::namespaced(client, &config.namespace);
        Self { api, config }
    }

    fn lease_seconds(&self) -> i32 {
        i32::try_from(self.config.lease_duration.as_secs().max(1)).unwrap_or(i32::MAX)
    }

    fn spec_for_us(&self, now: Timestamp, transitions: i32) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(self.config.identity.clone()),
            lease_duration_seconds: Some(self.lease_seconds()),
            acquire_time: Some(MicroTime(now)),
            renew_time: Some(MicroTime(now)),
            lease_transitions: Some(transitions),
            ..LeaseSpec::default()
        }
    }

    /// One attempt to acquire or renew the lease.
    pub async fn try_acquire(&self) -> Result<Attempt, kube::Error> {
        let now = Timestamp::now();
        let Some(mut lease) = self.api.get_opt(&self.config.name).await? else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.config.name.clone()),
                    namespace: Some(self.config.namespace.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(self.spec_for_us(now, 0)),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(Attempt::Leader),
                Err(e) if is_conflict(&e) => Ok(self.follower_of(None)),
                Err(e) => Err(e),
            };
        };
        let spec = lease.spec.clone().unwrap_or_default();
        let holder = spec.holder_identity.clone().unwrap_or_default();
        let ours = holder == self.config.identity;
        let expired = match (&spec.renew_time, spec.lease_duration_seconds) {
            (Some(MicroTime(renewed)), Some(secs)) => renewed
                .saturating_add(SignedDuration::from_secs(i64::from(secs)))
                .map(|deadline| deadline < now)
                .unwrap_or(true),
            _ => true,
        };
        if !ours && !expired && !holder.is_empty() {
            return Ok(self.follower_of(Some(holder)));
        }
        let mut next = if ours {
            LeaseSpec {
                renew_time: Some(MicroTime(now)),
                lease_duration_seconds: Some(self.lease_seconds()),
                ..spec
            }
        } else {
            self.spec_for_us(now, spec.lease_transitions.unwrap_or(0).saturating_add(1))
        };
        next.holder_identity = Some(self.config.identity.clone());
        lease.spec = Some(next);
        match self
            .api
            .replace(&self.config.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => Ok(Attempt::Leader),
            Err(e) if is_conflict(&e) => Ok(self.follower_of(None)),
            Err(e) => Err(e),
        }
    }

    fn follower_of(&self, holder: Option<String>) -> Attempt {
        Attempt::Follower {
            holder: holder.unwrap_or_else(|| "another replica".to_owned()),
        }
    }

    /// Gives the lease up if this replica holds it: no holder, expired at
    /// once, so a standby takes over on its next attempt instead of waiting
    /// out the lease. Guarded by resourceVersion like every write here.
    /// Whether it was released.
    pub async fn release(&self) -> Result<bool, kube::Error> {
        let Some(mut lease) = self.api.get_opt(&self.config.name).await? else {
            return Ok(false);
        };
        let spec = lease.spec.clone().unwrap_or_default();
        if spec.holder_identity.as_deref() != Some(self.config.identity.as_str()) {
            return Ok(false);
        }
        let now = MicroTime(Timestamp::now());
        lease.spec = Some(LeaseSpec {
            holder_identity: None,
            lease_duration_seconds: Some(1),
            acquire_time: Some(now.clone()),
            renew_time: Some(now),
            ..spec
        });
        match self
            .api
            .replace(&self.config.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if is_conflict(&e) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Waits until this replica leads, then keeps renewing in the
    /// background until the leadership is lost or released.
    pub async fn lead(self) -> Leadership {
        let retry = self.config.lease_duration / 3;
        loop {
            match self.try_acquire().await {
                Ok(Attempt::Leader) => break,
                Ok(Attempt::Follower { holder }) => {
                    tracing::info!(%holder, lease = %self.config.name, "waiting for leadership");
                }
                Err(error) => tracing::warn!(%error, "leader election attempt failed"),
            }
            tokio::time::sleep(retry).await;
        }
        tracing::info!(identity = %self.config.identity, "acquired leadership");
        let (tx, held) = watch::channel(true);
        let elector = self.clone();
        let renewing = tokio::spawn(async move {
            let mut last_renewal = tokio::time::Instant::now();
            loop {
                tokio::time::sleep(retry).await;
                match elector.try_acquire().await {
                    Ok(Attempt::Leader) => last_renewal = tokio::time::Instant::now(),
                    Ok(Attempt::Follower { holder }) => {
                        tracing::error!(%holder, "leadership lost");
                        let _ = tx.send(false);
                        return;
                    }
                    Err(error) => {
                        tracing::warn!(%error, "lease renewal failed");
                        if last_renewal.elapsed() >= elector.config.lease_duration {
                            let _ = tx.send(false);
                            return;
                        }
                    }
                }
            }
        });
        Leadership {
            held,
            renewing,
            elector: self,
        }
    }
}

/// This replica's leadership, renewed in the background.
#[derive(Debug)]
pub struct Leadership {
    /// Turns `false` if the leadership is lost; the holder must then stop
    /// acting.
    pub held: watch::Receiver<bool>,
    renewing: tokio::task::JoinHandle<()>,
    elector: LeaderElector,
}

impl Leadership {
    /// Stops renewing and gives the lease up (see
    /// [`LeaderElector::release`]): call it once this replica has stopped
    /// acting, so a standby takes over at once rather than after the lease
    /// runs out, as client-go's `ReleaseOnCancel` does.
    pub async fn release(self) -> Result<bool, kube::Error> {
        // A renewal after the release would take the lease back.
        self.renewing.abort();
        let _ = self.renewing.await;
        self.elector.release().await
    }
}
