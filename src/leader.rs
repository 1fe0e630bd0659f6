//! Leader election on a coordination.k8s.io Lease, so that of several replicas only one acts.
//!
//! Every reconciliation first tries to acquire or renew the Lease. Writes carry the
//! resourceVersion that was read, so two candidates can never both win the same round. A leader
//! that stops gracefully releases the Lease and a standby takes over at its next tick; one that
//! dies is replaced once its claim is older than the lease duration.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Api, PostParams};

/// A candidate for leadership of one Lease.
pub struct LeaderElector {
    api: Api<Lease>,
    name: String,
    identity: String,
    lease_duration: Duration,
}

/// What the Lease says now, for a pure decision.
#[derive(Debug, Clone, PartialEq)]
enum Claim {
    /// Nobody holds it (never taken, or released).
    Free,
    /// We hold it.
    Ours,
    /// Someone else holds it, and their claim has expired.
    Expired(String),
    /// Someone else holds it, validly.
    Held(String),
}

fn claim_of(spec: &LeaseSpec, identity: &str, now: Timestamp) -> Claim {
    let holder = spec.holder_identity.as_deref().unwrap_or("");
    if holder.is_empty() {
        return Claim::Free;
    }
    if holder == identity {
        return Claim::Ours;
    }
    let duration = SignedDuration::from_secs(i64::from(spec.lease_duration_seconds.unwrap_or(0)));
    match &spec.renew_time {
        Some(MicroTime(renewed)) if renewed.saturating_add(duration).is_ok_and(|end| end > now) => {
            Claim::Held(holder.into())
        }
        _ => Claim::Expired(holder.into()),
    }
}

impl LeaderElector {
    /// A candidate named `identity` for the Lease `namespace/name`.
    pub fn new(
        client: kube::Client,
        namespace: &str,
        name: &str,
        identity: &str,
        lease_duration: Duration,
    ) -> Self {
        LeaderElector {
            api: Api::namespaced(client, namespace),
            name: name.into(),
            identity: identity.into(),
            lease_duration,
        }
    }

    /// This candidate's identity.
    pub fn identity(&self) -> &str {
        &self.identity
    }

    fn spec(&self, now: Timestamp, acquired: Option<MicroTime>, transitions: i32) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(self.identity.clone()),
            lease_duration_seconds: Some(
                i32::try_from(self.lease_duration.as_secs()).unwrap_or(i32::MAX),
            ),
            acquire_time: Some(acquired.unwrap_or(MicroTime(now))),
            renew_time: Some(MicroTime(now)),
            lease_transitions: Some(transitions),
            ..LeaseSpec::default()
        }
    }

    /// Acquires or renews the Lease; `Ok(true)` when this candidate leads until the next call.
    pub async fn try_lead(&self) -> Result<bool, kube::Error> {
        let now = Timestamp::now();
        let lease = match self.api.get_opt(&self.name).await? {
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
                    Err(e) => Err(e),
                };
            }
        };
        let spec = lease.spec.clone().unwrap_or_default();
        let transitions = spec.lease_transitions.unwrap_or(0);
        let new_spec = match claim_of(&spec, &self.identity, now) {
            Claim::Held(_) => return Ok(false),
            Claim::Ours => self.spec(now, spec.acquire_time.clone(), transitions),
            Claim::Free | Claim::Expired(_) => self.spec(now, None, transitions + 1),
        };
        self.replace(lease, new_spec).await
    }

    /// Gives the Lease up if this candidate holds it, so a standby need not wait for expiry.
    pub async fn release(&self) -> Result<(), kube::Error> {
        let Some(lease) = self.api.get_opt(&self.name).await? else {
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
    async fn replace(&self, mut lease: Lease, spec: LeaseSpec) -> Result<bool, kube::Error> {
        lease.spec = Some(spec);
        match self
            .api
            .replace(&self.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
            Err(e) => Err(e),
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

    fn spec(holder: Option<&str>, renewed_secs_ago: i64, duration: i32) -> LeaseSpec {
        LeaseSpec {
            holder_identity: holder.map(String::from),
            renew_time: Some(MicroTime(
                Timestamp::now() - SignedDuration::from_secs(renewed_secs_ago),
            )),
            lease_duration_seconds: Some(duration),
            ..LeaseSpec::default()
        }
    }

    #[test]
    fn claims_are_read_from_holder_and_renewal() {
        let now = Timestamp::now();
        assert_eq!(claim_of(&spec(None, 0, 15), "me", now), Claim::Free);
        assert_eq!(claim_of(&spec(Some(""), 0, 15), "me", now), Claim::Free);
        assert_eq!(claim_of(&spec(Some("me"), 100, 15), "me", now), Claim::Ours);
        assert_eq!(
            claim_of(&spec(Some("other"), 5, 15), "me", now),
            Claim::Held("other".into())
        );
        assert_eq!(
            claim_of(&spec(Some("other"), 16, 15), "me", now),
            Claim::Expired("other".into())
        );
        let no_renewal = LeaseSpec {
            holder_identity: Some("other".into()),
            ..LeaseSpec::default()
        };
        assert_eq!(
            claim_of(&no_renewal, "me", now),
            Claim::Expired("other".into())
        );
    }
}
