//! What a candidate advertises in the election: its gRPC endpoint (the
//! `NotLeader` hint scrapers follow) and its HTTP address (where
//! followers forward the cluster's HTTP API). Written as the election's
//! value: the bare gRPC URL when there is no HTTP address (what earlier
//! versions wrote, and still read by this one), else a small JSON object.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Advertised {
    /// `http(s)://host:port` of the gRPC server.
    pub grpc: String,
    /// `http(s)://host:port` of the HTTP server, if reachable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<String>,
}

impl Advertised {
    /// The election value.
    pub fn encode(&self) -> String {
        match &self.http {
            None => self.grpc.clone(),
            Some(_) => serde_json::to_string(self).unwrap_or_else(|_| self.grpc.clone()),
        }
    }

    /// Reads an election value: JSON, or a bare gRPC URL.
    pub fn decode(value: &str) -> Self {
        if value.starts_with('{') {
            if let Ok(a) = serde_json::from_str(value) {
                return a;
            }
        }
        Advertised {
            grpc: value.to_string(),
            http: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Advertised;

    #[test]
    fn round_trips_and_reads_a_bare_url() {
        let both = Advertised {
            grpc: "http://10.0.0.1:9091".into(),
            http: Some("http://10.0.0.1:9092".into()),
        };
        assert_eq!(
            both.encode(),
            r#"{"grpc":"http://10.0.0.1:9091","http":"http://10.0.0.1:9092"}"#
        );
        assert_eq!(Advertised::decode(&both.encode()), both);
        let bare = Advertised::decode("http://10.0.0.2:9091");
        assert_eq!(bare.grpc, "http://10.0.0.2:9091");
        assert_eq!(bare.http, None);
        assert_eq!(bare.encode(), "http://10.0.0.2:9091");
    }
}
