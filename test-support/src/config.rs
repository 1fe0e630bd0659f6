//! The autoscaler's configuration for a test: one binding with the defaults most tests share,
//! each changed by a method, written as the YAML `segment-autoscaler` reads.

use std::fmt::Display;
use std::path::Path;

/// The Lease's duration in tests with leader election: short enough for a test, and valid with
/// the other timings of [`AutoscalerConfig::leader_election`] (renew deadline 2 s + call timeout
/// 1 s <= 4 s).
pub const LEASE_SECS: u64 = 4;

/// A configuration with one binding: interval 500ms, `max_replicas` 8, a 2 s scale-down
/// stabilization, unless changed.
#[derive(Debug, Clone)]
pub struct AutoscalerConfig {
    interval: Option<String>,
    sections: Vec<String>,
    name: String,
    streams: Vec<String>,
    source: Option<String>,
    max_replicas: u32,
    stabilization: Option<String>,
    target: String,
    flink: Option<String>,
}

impl AutoscalerConfig {
    /// A binding named `name` of `streams` (`scope/stream`) scaling `target` (its YAML flow
    /// mapping, e.g. from [`deployment`] or [`stack_taskmanagers`]).
    pub fn binding(name: &str, streams: &[&str], target: String) -> Self {
        AutoscalerConfig {
            interval: Some("500ms".into()),
            sections: Vec::new(),
            name: name.into(),
            streams: streams.iter().map(|s| s.to_string()).collect(),
            source: None,
            max_replicas: 8,
            stabilization: Some("2s".into()),
            target,
            flink: None,
        }
    }

    /// Time between two reconciliations.
    pub fn interval(mut self, interval: &str) -> Self {
        self.interval = Some(interval.into());
        self
    }

    /// The autoscaler's default interval (none written).
    pub fn default_interval(mut self) -> Self {
        self.interval = None;
        self
    }

    /// A top-level section, as one line of YAML (e.g. `pravega: {controller: "tcp://..."}`).
    pub fn section(mut self, line: impl Display) -> Self {
        self.sections.push(line.to_string());
        self
    }

    /// The Pravega controller as a source.
    pub fn pravega(self, controller: &str) -> Self {
        self.section(format!("pravega: {{controller: \"{controller}\"}}"))
    }

    /// More fields of the `pravega` section (e.g. `tune_scaling_policy: {...}`).
    pub fn pravega_fields(mut self, more: &str) -> Self {
        for section in &mut self.sections {
            if let Some(rest) = section.strip_prefix("pravega: {") {
                *section = format!("pravega: {{{more}, {rest}");
            }
        }
        self
    }

    /// Prometheus as a source.
    pub fn prometheus(self, url: &str) -> Self {
        self.section(format!("prometheus: {{url: \"{url}\"}}"))
    }

    /// Kubernetes through `kubeconfig`, each call within `timeout` if given.
    pub fn kubernetes(self, kubeconfig: &Path, timeout: Option<&str>) -> Self {
        let timeout = timeout.map_or(String::new(), |t| format!(", timeout: {t}"));
        self.section(format!(
            "kubernetes: {{kubeconfig: \"{}\"{timeout}}}",
            kubeconfig.display()
        ))
    }

    /// Leader election on the Lease `segment-autoscaler` in `namespace`, as `identity`, with
    /// the timings every test uses ([`LEASE_SECS`]; with a Kubernetes timeout of 1 s).
    pub fn leader_election(self, namespace: &str, identity: &str) -> Self {
        self.section(format!(
            "leader_election: {{namespace: {namespace}, lease_name: segment-autoscaler, lease_duration: {LEASE_SECS}s, renew_deadline: 2s, retry_period: 500ms, identity: {identity}}}"
        ))
    }

    /// The binding's source (`controller`, `prometheus` or `auto`; unset: the default, auto).
    pub fn source(mut self, source: &str) -> Self {
        self.source = Some(source.into());
        self
    }

    /// Its `max_replicas`.
    pub fn max_replicas(mut self, max_replicas: u32) -> Self {
        self.max_replicas = max_replicas;
        self
    }

    /// Its scale-down stabilization (None: the autoscaler's default).
    pub fn stabilization(mut self, stabilization: Option<&str>) -> Self {
        self.stabilization = stabilization.map(String::from);
        self
    }

    /// Its Flink JobManager, with more `flink` fields if given (e.g. `timeout: 2s`).
    pub fn flink(mut self, rest_url: &str, more: &str) -> Self {
        let more = if more.is_empty() {
            String::new()
        } else {
            format!(", {more}")
        };
        self.flink = Some(format!("{{rest_url: \"{rest_url}\"{more}}}"));
        self
    }

    /// The YAML.
    pub fn yaml(&self) -> String {
        let mut text = match &self.interval {
            Some(interval) => format!("interval: {interval}\n"),
            None => String::new(),
        };
        for section in &self.sections {
            text.push_str(section);
            text.push('\n');
        }
        text.push_str(&format!(
            "bindings:\n  - name: {}\n    streams: [{}]\n",
            self.name,
            self.streams.join(", ")
        ));
        if let Some(source) = &self.source {
            text.push_str(&format!("    source: {source}\n"));
        }
        text.push_str(&format!("    max_replicas: {}\n", self.max_replicas));
        if let Some(stabilization) = &self.stabilization {
            text.push_str(&format!("    scale_down_stabilization: {stabilization}\n"));
        }
        text.push_str(&format!("    target: {}\n", self.target));
        if let Some(flink) = &self.flink {
            text.push_str(&format!("    flink: {flink}\n"));
        }
        text
    }
}

impl AutoscalerConfig {
    /// A binding `local` of `scope/load` (controller source) on the local stack's TaskManagers,
    /// 1 to 3 of them, every second.
    pub fn local_taskmanagers(stack: &crate::Stack, scope: &str) -> Self {
        let load = format!("{scope}/load");
        AutoscalerConfig::binding("local", &[&load], stack_taskmanagers(&stack.stack_script))
            .interval("1s")
            .pravega(&stack.pravega_controller)
            .source("controller")
            .max_replicas(3)
    }
}

/// The target of a Deployment.
pub fn deployment(namespace: &str, name: &str) -> String {
    format!("{{kind: deployment, namespace: {namespace}, name: {name}}}")
}

/// The target of the local stack's TaskManagers, through `deploy/local/stack taskmanagers`.
pub fn stack_taskmanagers(stack_script: &Path) -> String {
    let script = stack_script.display();
    format!(
        "{{kind: command, get: [\"{script}\", taskmanagers], set: [\"{script}\", taskmanagers, \"{{replicas}}\"]}}"
    )
}

/// A command target (argv lists, `{replicas}` in `set`), with its own timeout if given.
pub fn command(get: &[&str], set: &[&str], timeout: Option<&str>) -> String {
    let list = |argv: &[&str]| {
        argv.iter()
            .map(|a| format!("{a:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let timeout = timeout.map_or(String::new(), |t| format!(", timeout: {t}"));
    format!(
        "{{kind: command, get: [{}], set: [{}]{timeout}}}",
        list(get),
        list(set)
    )
}
