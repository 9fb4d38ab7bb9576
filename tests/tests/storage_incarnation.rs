//! Two processes with one scraper id (issue 17's hole: they shared a
//! sequence space). Each says its incarnation in its `WriteHello`; the
//! newest owns the id. The older one's next batch, numbered from the same
//! last sequence as the newer one's, was acked as a duplicate without
//! being stored; now it is refused (SUPERSEDED), its Hello fails with
//! FAILED_PRECONDITION, and what the newer one sent is what is stored.

use scrapegrid_proto::v1 as pb;
use scrapegrid_tests::storage::{batch, series, Node, Stream};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_newest_process_owns_a_scraper_id() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path()).await;
    let endpoint = format!("http://{}", node.grpc);
    let def = || vec![series(1, &[("__name__", "twin"), ("job", "j")])];

    let (mut old, last) = Stream::open_as(&endpoint, "s", 11).await.unwrap();
    assert_eq!(last, 0);
    let ack = old.send(batch(1, 1_000, def(), vec![1], vec![1.0])).await;
    assert_eq!(ack.status, pb::AckStatus::Applied as i32);

    // A second process with the same id: it numbers from 1 too.
    let (mut new, last) = Stream::open_as(&endpoint, "s", 22).await.unwrap();
    assert_eq!(last, 1);
    let ack = new.send(batch(2, 2_000, def(), vec![1], vec![2.0])).await;
    assert_eq!(ack.status, pb::AckStatus::Applied as i32);

    // The older one's next batch has the same number: refused, not a
    // duplicate.
    let ack = old.send(batch(2, 3_000, vec![], vec![1], vec![3.0])).await;
    assert_eq!(ack.status, pb::AckStatus::Refused as i32, "{ack:?}");
    assert_eq!(ack.reason, pb::RefuseReason::Superseded as i32, "{ack:?}");
    assert!(ack.message.contains("--id"), "{ack:?}");

    // It cannot come back; the newer one can reconnect.
    let refused = Stream::open_as(&endpoint, "s", 11)
        .await
        .err()
        .expect("refused");
    assert_eq!(
        refused.code(),
        tonic::Code::FailedPrecondition,
        "{refused:?}"
    );
    assert!(refused.message().contains("newer process"), "{refused:?}");
    let (_, last) = Stream::open_as(&endpoint, "s", 22).await.unwrap();
    assert_eq!(last, 2);

    // Stored: the older one's first batch and the newer one's, nothing else.
    let stored: serde_json::Value = reqwest::get(node.url("/api/v1/query?query=twin[1h]&time=10"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let values = &stored["data"]["result"][0]["values"];
    assert_eq!(values, &serde_json::json!([[1, "1"], [2, "2"]]), "{stored}");
    node.stop().await;
}
