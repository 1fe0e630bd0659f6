//! The SegmentScalers' I/O: kube-runtime reflectors keep them current, each pass turns them
//! into bindings (a created, edited or deleted resource takes effect on the next pass) and
//! writes back their status, by the leader only and only when it changed.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use futures::{FutureExt, StreamExt};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::Resource;

use super::catalog::{declare, Declared, Refusal, ScalerKey};
use super::status::{status, Found};
use super::{SegmentScaler, SegmentScalerStatus};
use crate::config::{Binding, Config};
use crate::reconcile::{BindingChanges, BindingReport, DeclaredBindings, LiveBinding};

/// The field manager of the status writes (server-side apply).
const FIELD_MANAGER: &str = "segment-autoscaler";

/// How long the API server keeps one watch open; the watch client's read timeout is a little
/// longer, so a silent API server is noticed within it.
pub const WATCH_SECONDS: u32 = 50;

/// Builds the live parts of a binding (its target and Flink client).
pub type BindingBuilder = Box<dyn Fn(&Binding) -> Result<LiveBinding, String> + Send + Sync>;

/// The SegmentScalers of the watched namespaces and what they declare.
pub struct SegmentScalers {
    stores: Vec<Store<SegmentScaler>>,
    watches: Vec<tokio::task::JoinHandle<()>>,
    client: kube::Client,
    timeout: Duration,
    config: Config,
    build: BindingBuilder,
    /// The bindings declared now, by SegmentScaler.
    live: BTreeMap<ScalerKey, Declared>,
    /// The SegmentScalers that declare none, and why.
    refused: Vec<Declared>,
    /// The status last written for each, so an unchanged one is not written again.
    written: HashMap<ScalerKey, SegmentScalerStatus>,
}

impl SegmentScalers {
    /// Starts watching SegmentScalers in `namespaces` (all when empty) with `watch_client`,
    /// whose read timeout must exceed [`WATCH_SECONDS`]; statuses are written with `client`,
    /// each write bounded by `timeout`.
    pub fn start(
        watch_client: kube::Client,
        client: kube::Client,
        timeout: Duration,
        config: Config,
        build: BindingBuilder,
    ) -> Self {
        let apis: Vec<Api<SegmentScaler>> = match &config.segment_scalers {
            Some(s) if !s.namespaces.is_empty() => s
                .namespaces
                .iter()
                .map(|ns| Api::namespaced(watch_client.clone(), ns))
                .collect(),
            _ => vec![Api::all(watch_client)],
        };
        let (stores, watches) = apis
            .into_iter()
            .map(|api| {
                let (store, writer) = reflector::store();
                let events = watcher(api, watcher::Config::default().timeout(WATCH_SECONDS))
                    .default_backoff()
                    .reflect(writer)
                    .touched_objects();
                let task = tokio::spawn(async move {
                    futures::pin_mut!(events);
                    while let Some(event) = events.next().await {
                        if let Err(e) = event {
                            tracing::warn!(error = %e, "SegmentScaler watch failed; retrying");
                        }
                    }
                });
                (store, task)
            })
            .unzip();
        SegmentScalers {
            stores,
            watches,
            client,
            timeout,
            config,
            build,
            live: BTreeMap::new(),
            refused: Vec::new(),
            written: HashMap::new(),
        }
    }

    /// Every SegmentScaler seen, once every watch has listed; `None` before.
    fn seen(&self) -> Option<Vec<std::sync::Arc<SegmentScaler>>> {
        let ready = self
            .stores
            .iter()
            .all(|s| s.wait_until_ready().now_or_never().is_some());
        ready.then(|| self.stores.iter().flat_map(Store::state).collect())
    }

    /// Writes `status` to the SegmentScaler through the status subresource.
    async fn write(&self, key: &ScalerKey, status: &SegmentScalerStatus) -> Result<(), String> {
        let api: Api<SegmentScaler> = Api::namespaced(self.client.clone(), &key.namespace);
        let patch = serde_json::json!({
            "apiVersion": SegmentScaler::api_version(&()),
            "kind": SegmentScaler::kind(&()),
            "status": status,
        });
        let params = PatchParams::apply(FIELD_MANAGER).force();
        match tokio::time::timeout(
            self.timeout,
            api.patch_status(&key.name, &params, &Patch::Apply(&patch)),
        )
        .await
        {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!("no answer within {:?}", self.timeout)),
        }
    }

    /// The status the resource shows now, as last seen.
    fn shown(&self, key: &ScalerKey) -> Option<SegmentScalerStatus> {
        self.stores.iter().find_map(|store| {
            store
                .get(&reflector::ObjectRef::new(&key.name).within(&key.namespace))
                .and_then(|s| s.status.clone())
        })
    }
}

impl Drop for SegmentScalers {
    fn drop(&mut self) {
        for watch in &self.watches {
            watch.abort();
        }
    }
}

#[async_trait::async_trait]
impl DeclaredBindings for SegmentScalers {
    fn sync(&mut self) -> BindingChanges {
        let mut changes = BindingChanges::default();
        let Some(seen) = self.seen() else {
            return changes;
        };
        let scalers: Vec<&SegmentScaler> = seen.iter().map(AsRef::as_ref).collect();
        let declared = declare(&scalers, &self.config);
        let mut now_live = BTreeMap::new();
        self.refused.clear();
        for d in declared {
            let Ok(binding) = &d.binding else {
                self.refused.push(d);
                continue;
            };
            // Unchanged: the live binding stays, with its history.
            if self.live.get(&d.key).is_some_and(|old| old.spec == d.spec) {
                now_live.insert(d.key.clone(), d);
                continue;
            }
            match (self.build)(binding) {
                Ok(live) => {
                    tracing::info!(segment_scaler = %d.key, generation = ?d.generation, "binding declared");
                    changes.added.push(live);
                    now_live.insert(d.key.clone(), d);
                }
                Err(message) => self.refused.push(Declared {
                    binding: Err(Refusal::SetupFailed(message)),
                    ..d
                }),
            }
        }
        for (key, _) in self
            .live
            .iter()
            .filter(|(key, old)| now_live.get(*key).is_none_or(|new| new.spec != old.spec))
        {
            tracing::info!(segment_scaler = %key, "binding withdrawn");
            changes.removed.push(key.to_string());
        }
        self.written.retain(|key, _| {
            now_live.contains_key(key) || self.refused.iter().any(|d| d.key == *key)
        });
        self.live = now_live;
        changes
    }

    async fn listed(&self) {
        for store in &self.stores {
            // A dropped writer (the watch task ended) has nothing more to list.
            store.wait_until_ready().await.ok();
        }
    }

    async fn publish(&mut self, reports: &[BindingReport], write: bool) {
        if !write {
            return;
        }
        let now = Time(k8s_openapi::jiff::Timestamp::now());
        let refused = self.refused.iter().filter_map(|d| match &d.binding {
            Err(refusal) => Some((&d.key, d.generation, Found::Refused(refusal))),
            Ok(_) => None,
        });
        let reports: HashMap<&str, &BindingReport> =
            reports.iter().map(|r| (r.binding.as_str(), r)).collect();
        let reconciled = self.live.iter().filter_map(|(key, d)| {
            let report = reports.get(key.to_string().as_str())?;
            Some((key, d.generation, Found::Reconciled(report)))
        });
        let mut changed = Vec::new();
        for (key, generation, found) in refused.chain(reconciled) {
            let shown = self.shown(key);
            let written = self.written.get(key);
            let next = status(written.or(shown.as_ref()), generation, found, &now);
            if shown.as_ref() != Some(&next) && written != Some(&next) {
                changed.push((key.clone(), next));
            }
        }
        // Together: one slow write must not hold the others past the pass's deadline.
        let results =
            futures::future::join_all(changed.iter().map(|(key, next)| self.write(key, next)))
                .await;
        for ((key, next), result) in changed.into_iter().zip(results) {
            match result {
                Ok(()) => {
                    self.written.insert(key, next);
                }
                Err(error) => {
                    tracing::warn!(segment_scaler = %key, %error, "status not written");
                }
            }
        }
    }
}
