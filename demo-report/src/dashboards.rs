//! The Grafana dashboards' queries, made runnable so a report can check that each had data.

use std::path::Path;

/// Every PromQL query of the Grafana dashboards in `dir`, as `(dashboard / panel, expr)`,
/// with the template variables replaced so Prometheus can run them: `$job` and `$instance`
/// match everything, `$__rate_interval` is `rate_interval`.
pub fn dashboard_queries(dir: &Path, rate_interval: &str) -> Result<Vec<(String, String)>, String> {
    let mut queries = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    files.sort();
    for file in files {
        let text =
            std::fs::read_to_string(&file).map_err(|e| format!("{}: {e}", file.display()))?;
        let dashboard: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| format!("{}: {e}", file.display()))?;
        let title = dashboard["title"].as_str().unwrap_or("?").to_string();
        // Panels may sit inside collapsed rows.
        let mut panels: Vec<&serde_json::Value> = dashboard["panels"]
            .as_array()
            .into_iter()
            .flatten()
            .collect();
        while let Some(panel) = panels.pop() {
            panels.extend(panel["panels"].as_array().into_iter().flatten());
            for target in panel["targets"].as_array().into_iter().flatten() {
                if let Some(expr) = target["expr"].as_str() {
                    let runnable = expr
                        .replace("$__rate_interval", rate_interval)
                        .replace("\"$job\"", "\".+\"")
                        .replace("\"$instance\"", "\".+\"");
                    queries.push((
                        format!("{title} / {}", panel["title"].as_str().unwrap_or("?")),
                        runnable,
                    ));
                }
            }
        }
    }
    Ok(queries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dashboard_queries_are_made_runnable() {
        let dir = std::env::temp_dir().join(format!("sa-dash-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let dashboard = serde_json::json!({"title": "d", "panels": [
            {"title": "p", "targets": [{"expr": "sum(rate(x_total{job=~\"$job\", instance=~\"$instance\"}[$__rate_interval]))"}]},
            {"title": "row", "type": "row", "panels": [{"title": "inner", "targets": [{"expr": "up"}]}]}
        ]});
        std::fs::write(dir.join("d.json"), dashboard.to_string()).unwrap();
        std::fs::write(dir.join("notes.txt"), "not a dashboard").unwrap();
        let mut queries = dashboard_queries(&dir, "1m").unwrap();
        queries.sort();
        assert_eq!(
            queries,
            vec![
                ("d / inner".to_string(), "up".to_string()),
                (
                    "d / p".to_string(),
                    "sum(rate(x_total{job=~\".+\", instance=~\".+\"}[1m]))".to_string()
                ),
            ]
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_project_dashboards_have_queries() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../dashboards");
        let queries = dashboard_queries(&dir, "1m").unwrap();
        assert!(queries.len() >= 9, "{queries:?}");
        assert!(
            queries.iter().all(|(_, q)| !q.contains('$')),
            "every variable is replaced: {queries:?}"
        );
    }

    /// What Grafana's dashboard linter asks of a provisioned dashboard: not editable, variables
    /// with capitalised labels, and no panel mixing a unitless gauge into a seconds axis.
    #[test]
    fn the_project_dashboard_passes_the_linter_findings() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../dashboards/segment-autoscaler.json");
        let dashboard: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        assert_eq!(dashboard["editable"], false, "provisioned: not editable");
        for variable in dashboard["templating"]["list"].as_array().unwrap() {
            let label = variable["label"].as_str().unwrap_or_default();
            assert!(
                label.chars().next().is_some_and(char::is_uppercase),
                "variable {} has a capitalised label: {label:?}",
                variable["name"]
            );
        }
        for panel in dashboard["panels"].as_array().unwrap() {
            let unit = panel["fieldConfig"]["defaults"]["unit"].as_str();
            for target in panel["targets"].as_array().into_iter().flatten() {
                let expr = target["expr"].as_str().unwrap_or_default();
                if !expr.contains("segment_autoscaler_leader") || unit != Some("s") {
                    continue;
                }
                let overridden = panel["fieldConfig"]["overrides"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|o| {
                        o["matcher"]["options"] == target["refId"]
                            && o["properties"].as_array().is_some_and(|props| {
                                props.iter().any(|p| p["id"] == "unit" && p["value"] != "s")
                            })
                    });
                assert!(
                    overridden,
                    "panel {} shows the leader gauge in seconds",
                    panel["title"]
                );
            }
        }
    }
}
