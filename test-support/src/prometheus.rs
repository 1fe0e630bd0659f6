//! Prometheus: instant queries.

/// The values of an instant PromQL query, one per series.
pub async fn prometheus_values(prometheus_url: &str, query: &str) -> Result<Vec<f64>, String> {
    let client =
        prometheus_http_query::Client::try_from(prometheus_url).map_err(|e| e.to_string())?;
    let answer = client.query(query).get().await.map_err(|e| e.to_string())?;
    let series = answer
        .data()
        .as_vector()
        .ok_or_else(|| format!("{query}: not an instant vector"))?;
    Ok(series.iter().map(|s| s.sample().value()).collect())
}
