//! The standard gRPC services on every gRPC server (issue 16): the health
//! service answers without the node's tokens, per service and for the whole
//! server, and turns `NOT_SERVING` when the node shuts down; server
//! reflection (v1 and v1alpha, what `grpcurl list` uses) lists the node's
//! services and serves their `.proto` files. Real binaries on loopback,
//! with tokens on, so "no token needed" is what is tested.

use std::time::Duration;

use tonic::transport::Channel;

use anyhow::Result;
use scrapegrid_tests::{bin, start_storage_with, Process, ANY_PORT};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
use tonic_reflection::pb::v1::ServerReflectionRequest;
use tonic_reflection::pb::v1alpha::server_reflection_client::ServerReflectionClient as AlphaClient;
use tonic_reflection::pb::v1alpha::server_reflection_request::MessageRequest as AlphaRequest;
use tonic_reflection::pb::v1alpha::server_reflection_response::MessageResponse as AlphaResponse;
use tonic_reflection::pb::v1alpha::ServerReflectionRequest as AlphaReflectionRequest;

/// A channel to `url` (the generated clients of the standard services
/// come without `connect`).
async fn channel(url: &str) -> Result<Channel> {
    Ok(Channel::from_shared(url.to_string())?.connect().await?)
}

async fn status(url: &str, service: &str) -> Result<ServingStatus, tonic::Status> {
    let channel = channel(url)
        .await
        .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
    let mut client = HealthClient::new(channel);
    let r = client
        .check(HealthCheckRequest {
            service: service.into(),
        })
        .await?;
    Ok(ServingStatus::try_from(r.into_inner().status).unwrap())
}

/// One reflection request on a v1 stream; returns its response.
async fn reflect(url: &str, request: MessageRequest) -> Result<MessageResponse> {
    let mut client = ServerReflectionClient::new(channel(url).await?);
    let req = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(request),
    };
    let mut stream = client
        .server_reflection_info(tokio_stream::iter([req]))
        .await?
        .into_inner();
    let resp = stream.message().await?.expect("a reflection response");
    Ok(resp.message_response.expect("a message response"))
}

async fn services(url: &str) -> Result<Vec<String>> {
    match reflect(url, MessageRequest::ListServices(String::new())).await? {
        MessageResponse::ListServicesResponse(l) => {
            let mut names: Vec<String> = l.service.into_iter().map(|s| s.name).collect();
            names.sort();
            Ok(names)
        }
        other => panic!("{other:?}"),
    }
}

/// The `.proto` file defining `symbol`, as reflection serves it (an
/// encoded `FileDescriptorProto`, whose name field is plain bytes).
async fn file_of(url: &str, symbol: &str) -> Result<Vec<u8>> {
    match reflect(url, MessageRequest::FileContainingSymbol(symbol.into())).await? {
        MessageResponse::FileDescriptorResponse(f) => Ok(f.file_descriptor_proto.concat()),
        other => panic!("{symbol}: {other:?}"),
    }
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

// Multi-threaded: `Process::terminate` blocks its thread while it waits,
// and the clients' connections must still answer the server's GOAWAY.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_reflection_answer_without_tokens_on_every_grpc_server() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let token = |name: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, format!("{name}-secret\n")).unwrap();
        path.display().to_string()
    };
    let (write, read, join) = (token("write"), token("read"), token("join"));
    let mut storage = start_storage_with(
        dir.path(),
        "storage",
        &["--write-token-file", &write, "--read-token-file", &read],
    )
    .await?;
    let storage_url = format!("http://{}", storage.grpc);

    let config = dir.path().join("prometheus.yml");
    std::fs::write(&config, "scrape_configs: []\n")?;
    let args: Vec<String> = [
        "--config",
        &config.display().to_string(),
        "--grpc-addr",
        ANY_PORT,
        "--http-addr",
        ANY_PORT,
        "--storage",
        &storage_url,
        "--join-token-file",
        &join,
        "--read-token-file",
        &read,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut cp = Process::spawn("control-plane", &bin("control-plane"), &args, dir.path())?;
    let cp_url = format!("http://{}", cp.listening("grpc").await?);

    // The node's own services still want their token: the open ones are
    // only health and reflection.
    let query = scrapegrid_proto::v1::query_client::QueryClient::connect(storage_url.clone())
        .await?
        .label_names(scrapegrid_proto::v1::LabelNamesRequest::default())
        .await;
    assert_eq!(
        query.unwrap_err().code(),
        tonic::Code::Unauthenticated,
        "the Query service without its token"
    );

    for (url, own) in [
        (
            &storage_url,
            &["scrapegrid.v1.Ingest", "scrapegrid.v1.Query"][..],
        ),
        (&cp_url, &["scrapegrid.v1.ControlPlane"][..]),
    ] {
        assert_eq!(status(url, "").await?, ServingStatus::Serving, "{url}");
        for s in own {
            assert_eq!(status(url, s).await?, ServingStatus::Serving, "{url} {s}");
        }
        let unknown = status(url, "scrapegrid.v1.Nothing").await.unwrap_err();
        assert_eq!(unknown.code(), tonic::Code::NotFound, "{url}");

        let listed = services(url).await?;
        for s in own.iter().chain(&[
            "grpc.health.v1.Health",
            "grpc.reflection.v1.ServerReflection",
        ]) {
            assert!(
                listed.iter().any(|l| l == s),
                "{url}: {s} not in {listed:?}"
            );
        }
        for s in own.iter() {
            let file = file_of(url, s).await?;
            let name = format!("scrapegrid/v1/{}.proto", proto_file(s));
            assert!(contains(&file, &name), "{url}: {s} is not in {name}");
        }
    }

    // grpcurl falls back to v1alpha on servers without v1; both answer.
    let mut alpha = AlphaClient::new(channel(&storage_url).await?);
    let req = AlphaReflectionRequest {
        host: String::new(),
        message_request: Some(AlphaRequest::ListServices(String::new())),
    };
    let resp = alpha
        .server_reflection_info(tokio_stream::iter([req]))
        .await?
        .into_inner()
        .message()
        .await?
        .and_then(|r| r.message_response);
    match resp {
        Some(AlphaResponse::ListServicesResponse(l)) => {
            assert!(l.service.iter().any(|s| s.name == "scrapegrid.v1.Ingest"))
        }
        other => panic!("{other:?}"),
    }

    // A watcher sees the storage node stop serving once it is told to
    // shut down, before it exits.
    let mut watch = HealthClient::new(channel(&storage_url).await?)
        .watch(HealthCheckRequest {
            service: "scrapegrid.v1.Ingest".into(),
        })
        .await?
        .into_inner();
    let first = watch.message().await?.expect("a first status");
    assert_eq!(first.status, ServingStatus::Serving as i32);
    // SAFETY: kill(2) on the PID of a child this test started.
    unsafe { libc::kill(storage.process.pid(), libc::SIGTERM) };
    let next = tokio::time::timeout(Duration::from_secs(10), watch.message())
        .await?
        .map(|m| m.map(|m| m.status));
    assert_eq!(next?, Some(ServingStatus::NotServing as i32));
    drop(watch);
    storage.process.terminate(Duration::from_secs(20))?;
    cp.terminate(Duration::from_secs(20))?;
    Ok(())
}

fn proto_file(service: &str) -> &'static str {
    match service {
        "scrapegrid.v1.Ingest" => "ingest",
        "scrapegrid.v1.Query" => "query",
        "scrapegrid.v1.ControlPlane" => "control",
        other => panic!("{other}"),
    }
}
