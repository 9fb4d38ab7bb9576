//! `/api/v1/status/tsdb` in Prometheus 2.42's shape: head statistics and
//! the top ten of the postings statistics ([`Index::stats`]). The index
//! has no head and blocks, so the counts cover every series stored;
//! `chunkCount` and the times are those of the open chunks in memory (the
//! head's counterpart), `minTime` `i64::MAX` and `maxTime` `i64::MIN` when
//! there are none, as an empty Prometheus head.

use axum::extract::State;
use axum::response::Response;
use serde_json::{json, Value};

use super::{blocking, success, ApiError, ApiState};
use crate::index::Index;

pub async fn tsdb_status(State(state): State<ApiState>) -> Result<Response, ApiError> {
    let data = blocking(&state, |db| {
        let stats = Index::at(db, &db.raw().snapshot()).stats()?;
        let open = db.open_chunks();
        let (min_time, max_time) = open.time_bounds().unwrap_or((i64::MAX, i64::MIN));
        let list = |l: &[(String, u64)]| -> Value {
            l.iter()
                .map(|(name, value)| json!({"name": name, "value": value}))
                .collect()
        };
        Ok(json!({
            "headStats": {
                "numSeries": stats.num_series,
                "numLabelPairs": stats.num_label_pairs,
                "chunkCount": open.series(),
                "minTime": min_time,
                "maxTime": max_time,
            },
            "seriesCountByMetricName": list(&stats.series_by_metric),
            "labelValueCountByLabelName": list(&stats.values_by_label),
            "memoryInBytesByLabelName": list(&stats.bytes_by_label),
            "seriesCountByLabelValuePair": list(&stats.series_by_pair),
        }))
    })
    .await?;
    Ok(success(&data.to_string()))
}
