//! Leader election on a coordination.k8s.io Lease, so that of several replicas only one acts.
//!
//! Modelled on client-go's `leaderelection`: a background task acquires or renews the Lease
//! every `retry_period`; writes carry the resourceVersion that was read, so two candidates can
//! never both win one round. Time is judged on this replica's monotonic clock only, never by
//! comparing another replica's `renewTime` with the local wall clock:
//! - the leader may act until `renew_deadline` after the *start* of its last successful
//!   renewal ([`Leadership::is_held`], checked right before every write);
//! - a standby takes over only when the Lease record has stayed unchanged for
//!   `leaseDurationSeconds` since *it first saw* that record.
//!
//! Configuration validation keeps `renew_deadline + kubernetes.timeout <= lease_duration`, so a
//! write the leader starts just before its deadline ends before any standby may take over.
//! kube-lease-manager was considered and not used: it judges expiry by comparing `renewTime`
//! with the local wall clock, which clock skew between nodes defeats.

use std::future::Future;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, PostParams};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::config::LeaderElectionConfig;

/// Why a Lease call failed.
#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    /// The Kubernetes API refused or failed the request.
    #[error("lease {lease}: {source}")]
    Kubernetes {
        /// The Lease, `namespace/name`.
        lease: String,
        /// The API error.
        source: kube::Error,
    },
    /// The API did not answer in time.
    #[error("lease {lease}: no answer within {after:?}")]
    Timeout {
        /// The Lease, `namespace/name`.
        lease: String,
        /// The bound.
        after: Duration,
    },
}

/// The Lease's timings (see [`LeaderElectionConfig`]).
#[derive(Debug, Clone, Copy)]
pub struct LeaseTimings {
    /// How long a claim lasts without renewal, as written into the Lease.
    pub lease_duration: Duration,
    /// How long the leader acts after its last successful renewal began.
    pub renew_deadline: Duration,
    /// Time between two attempts.
    pub retry_period: Duration,
}

impl From<&LeaderElectionConfig> for LeaseTimings {
    fn from(le: &LeaderElectionConfig) -> Self {
        LeaseTimings {
            lease_duration: le.lease_duration,
            renew_deadline: le.renew_deadline,
            retry_period: le.retry_period,
        }
    }
}

/// Whether this replica may act now: a cheap, clonable view of the elector's state.
#[derive(Debug, Clone)]
pub struct Leadership(Option<watch::Receiver<Option<Instant>>>);

impl Leadership {
    /// Leadership without election: always held (a single replica).
    pub const fn unconditional() -> Self {
        Leadership(None)
    }

    /// A leadership that lapses at `until`, for tests of the fence.
    #[cfg(test)]
    pub(crate) fn until(until: Instant) -> Self {
        Leadership(Some(watch::channel(Some(until)).1))
    }

    /// Whether this replica holds the Lease at this instant (its last renewal began less than
    /// `renew_deadline` ago). Checked right before every write.
    pub fn is_held(&self) -> bool {
        match &self.0 {
            None => true,
            Some(until) => until.borrow().is_some_and(|until| Instant::now() < until),
        }
    }
}

/// A candidate for leadership of one Lease.
pub struct LeaderElector {
    api: Api<Lease>,
    lease: String,
    name: String,
    identity: String,
    timings: LeaseTimings,
    /// The bound of one attempt (read, then write).
    attempt_timeout: Duration,
}

/// The Lease record as last read, and when this replica first saw it.
#[derive(Debug, Clone)]
struct Observed {
    spec: LeaseSpec,
    since: Instant,
}

/// What the Lease says now, for a pure decision.
#[derive(Debug, Clone, PartialEq)]
enum Claim {
    /// Nobody holds it (never taken, or released).
    Free,
    /// We hold it.
    Ours,
    /// Someone else holds it, and its record has not changed for the lease duration.
    Expired(String),
    /// Someone else holds it, validly.
    Held(String),
}

/// Reads the claim from the record and how long this replica has seen it unchanged.
fn claim_of(spec: &LeaseSpec, identity: &str, unchanged_for: Duration) -> Claim {
    let holder = spec.holder_identity.as_deref().unwrap_or("");
    if holder.is_empty() {
        return Claim::Free;
    }
    if holder == identity {
        return Claim::Ours;
    }
    let duration = Duration::from_secs(
        spec.lease_duration_seconds
            .and_then(|s| u64::try_from(s).ok())
            .unwrap_or(0),
    );
    if unchanged_for >= duration {
        Claim::Expired(holder.into())
    } else {
        Claim::Held(holder.into())
    }
}

impl LeaderElector {
    /// A candidate named `identity` for the Lease `namespace/name`; each attempt (a read and
    /// a write) is bounded by twice `call_timeout`.
    pub fn new(
        client: kube::Client,
        namespace: &str,
        name: &str,
        identity: &str,
        timings: LeaseTimings,
        call_timeout: Duration,
    ) -> Self {
        LeaderElector {
            api: Api::namespaced(client, namespace),
            lease: format!("{namespace}/{name}"),
            name: name.into(),
            identity: identity.into(),
            timings,
            attempt_timeout: call_timeout * 2,
        }
    }

    /// This candidate's identity.
    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// Starts campaigning in the background: returns the [`Leadership`] view and the task,
    /// which campaigns until `stop` completes, then releases the Lease if it holds it.
    pub fn spawn(
        self,
        stop: impl Future<Output = ()> + Send + 'static,
    ) -> (Leadership, tokio::task::JoinHandle<()>) {
        let (lead_until, leadership) = watch::channel(None);
        let task = tokio::spawn(self.campaign(lead_until, stop));
        (Leadership(Some(leadership)), task)
    }

    async fn campaign(
        self,
        lead_until: watch::Sender<Option<Instant>>,
        stop: impl Future<Output = ()>,
    ) {
        tokio::pin!(stop);
        let mut observed: Option<Observed> = None;
        loop {
            let began = Instant::now();
            let attempt = tokio::time::timeout(
                self.attempt_timeout,
                self.try_acquire_or_renew(&mut observed),
            );
            let outcome = tokio::select! {
                biased;
                _ = &mut stop => break,
                outcome = attempt => outcome.unwrap_or_else(|_| Err(LeaseError::Timeout {
                    lease: self.lease.clone(),
                    after: self.attempt_timeout,
                })),
            };
            match outcome {
                Ok(true) => {
                    lead_until.send_replace(Some(began + self.timings.renew_deadline));
                }
                Ok(false) => {
                    lead_until.send_replace(None);
                }
                // The leader keeps acting until its deadline passes; `is_held` sees to that.
                Err(e) => tracing::warn!(error = %e, "could not acquire or renew the lease"),
            }
            tokio::select! {
                biased;
                _ = &mut stop => break,
                _ = tokio::time::sleep(self.timings.retry_period) => {}
            }
        }
        let held = lead_until.send_replace(None).is_some();
        if held {
            let release = tokio::time::timeout(self.attempt_timeout, self.release());
            match release.await {
                Ok(Ok(())) => tracing::info!(lease = %self.lease, "released the lease"),
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "could not release the lease; a standby takes over when it expires")
                }
                Err(_) => {
                    tracing::warn!(lease = %self.lease, "releasing the lease timed out; a standby takes over when it expires")
                }
            }
        }
    }

    fn spec(&self, now: Timestamp, acquired: Option<MicroTime>, transitions: i32) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(self.identity.clone()),
            // Validation keeps the duration within i32 seconds.
            lease_duration_seconds: Some(
                i32::try_from(self.timings.lease_duration.as_secs()).unwrap_or(i32::MAX),
            ),
            acquire_time: Some(acquired.unwrap_or(MicroTime(now))),
            renew_time: Some(MicroTime(now)),
            lease_transitions: Some(transitions),
            ..LeaseSpec::default()
        }
    }

    fn error(&self, source: kube::Error) -> LeaseError {
        LeaseError::Kubernetes {
            lease: self.lease.clone(),
            source,
        }
    }

    /// Acquires or renews the Lease; `Ok(true)` when this candidate holds it now.
    async fn try_acquire_or_renew(
        &self,
        observed: &mut Option<Observed>,
    ) -> Result<bool, LeaseError> {
        let now = Timestamp::now();
        let lease = match self
            .api
            .get_opt(&self.name)
            .await
            .map_err(|e| self.error(e))?
        {
            Some(lease) => lease,
            None => {
                let lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(self.name.clone()),
                        ..ObjectMeta::default()
                    },
                    spec: Some(self.spec(now, None, 0)),
                };
                return match self.api.create(&PostParams::default(), &lease).await {
                    Ok(_) => Ok(true),
                    Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
                    Err(e) => Err(self.error(e)),
                };
            }
        };
        let spec = lease.spec.clone().unwrap_or_default();
        let seen = Instant::now();
        let since = match observed {
            Some(o) if o.spec == spec => o.since,
            _ => seen,
        };
        *observed = Some(Observed {
            spec: spec.clone(),
            since,
        });
        let transitions = spec.lease_transitions.unwrap_or(0);
        let new_spec = match claim_of(&spec, &self.identity, seen - since) {
            Claim::Held(_) => return Ok(false),
            Claim::Ours => self.spec(now, spec.acquire_time.clone(), transitions),
            Claim::Free | Claim::Expired(_) => self.spec(now, None, transitions.saturating_add(1)),
        };
        self.replace(lease, new_spec).await
    }

    /// Gives the Lease up if this candidate holds it, so a standby need not wait for expiry.
    async fn release(&self) -> Result<(), LeaseError> {
        let Some(lease) = self
            .api
            .get_opt(&self.name)
            .await
            .map_err(|e| self.error(e))?
        else {
            return Ok(());
        };
        let spec = lease.spec.clone().unwrap_or_default();
        if spec.holder_identity.as_deref() != Some(self.identity.as_str()) {
            return Ok(());
        }
        let released = LeaseSpec {
            holder_identity: None,
            ..spec
        };
        self.replace(lease, released).await.map(drop)
    }

    /// Replaces the Lease's spec, guarded by the resourceVersion it was read at.
    async fn replace(&self, mut lease: Lease, spec: LeaseSpec) -> Result<bool, LeaseError> {
        lease.spec = Some(spec);
        match self
            .api
            .replace(&self.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
            Err(e) => Err(self.error(e)),
        }
    }
}

/// A default identity: host name and process id.
pub fn default_identity() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "unknown-host".into());
    format!("{host}-{}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(holder: Option<&str>, duration: i32) -> LeaseSpec {
        LeaseSpec {
            holder_identity: holder.map(String::from),
            // Far in the future on purpose: a skewed wall clock must not matter.
            renew_time: Some(MicroTime(
                Timestamp::now() + k8s_openapi::jiff::SignedDuration::from_hours(5),
            )),
            lease_duration_seconds: Some(duration),
            ..LeaseSpec::default()
        }
    }

    #[test]
    fn claims_are_read_from_holder_and_unchanged_time() {
        let secs = Duration::from_secs;
        assert_eq!(claim_of(&spec(None, 15), "me", secs(0)), Claim::Free);
        assert_eq!(claim_of(&spec(Some(""), 15), "me", secs(0)), Claim::Free);
        assert_eq!(
            claim_of(&spec(Some("me"), 15), "me", secs(100)),
            Claim::Ours
        );
        assert_eq!(
            claim_of(&spec(Some("other"), 15), "me", secs(14)),
            Claim::Held("other".into())
        );
        // Expiry follows how long this replica saw the record unchanged, whatever renewTime
        // (five hours ahead here) says.
        assert_eq!(
            claim_of(&spec(Some("other"), 15), "me", secs(15)),
            Claim::Expired("other".into())
        );
        let no_duration = LeaseSpec {
            holder_identity: Some("other".into()),
            ..LeaseSpec::default()
        };
        assert_eq!(
            claim_of(&no_duration, "me", secs(0)),
            Claim::Expired("other".into())
        );
    }

    #[tokio::test(start_paused = true)]
    async fn leadership_lapses_at_its_deadline_without_a_renewal() {
        let (lead_until, view) = watch::channel(None);
        let leadership = Leadership(Some(view));
        assert!(!leadership.is_held(), "not held before any renewal");
        lead_until.send_replace(Some(Instant::now() + Duration::from_secs(10)));
        assert!(leadership.is_held());
        tokio::time::advance(Duration::from_secs(9)).await;
        assert!(leadership.is_held());
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(!leadership.is_held(), "held no longer at the deadline");
        assert!(Leadership::unconditional().is_held());
    }
}
