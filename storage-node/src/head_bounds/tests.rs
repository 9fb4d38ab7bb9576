use super::*;

#[test]
fn widening_lowers_and_unknown_series_have_no_head() {
    let b = HeadBounds::default();
    assert_eq!(b.head_min(7), i64::MAX);
    b.widen(&[(7, 100), (7, 50), (9000, 5)]);
    assert_eq!(b.head_min(7), 50);
    assert_eq!(b.head_min(9000), 5);
    assert_eq!(b.view().head_min(8), i64::MAX);
    assert_eq!(b.view().head_min(1 << 40), i64::MAX);
}

#[test]
fn narrowing_waits_for_readers_of_older_epochs() {
    let b = HeadBounds::load([(1, 10), (2, 10)]);
    let old_reader = b.register();
    b.compacted(&[(1, 100)]);
    let new_reader = b.register();
    b.apply_ready();
    assert_eq!(b.head_min(1), 10, "a reader from before the compaction");
    drop(old_reader);
    b.apply_ready();
    assert_eq!(b.head_min(1), 100);
    assert_eq!(b.head_min(2), 10, "series 2 was not compacted");
    assert_eq!(b.pending_narrowings(), 0);
    drop(new_reader);
}

#[test]
fn samples_written_after_the_compaction_keep_the_bound_down() {
    let b = HeadBounds::load([(1, 10)]);
    let reader = b.register();
    b.compacted(&[(1, 100)]);
    // A late sample: older than the cut, written after the compaction.
    b.widen(&[(1, 42)]);
    drop(reader);
    b.apply_ready();
    assert_eq!(b.head_min(1), 42);
}

#[test]
fn a_later_compaction_replaces_the_queued_narrowing() {
    let b = HeadBounds::load([(1, 10)]);
    let r1 = b.register();
    b.compacted(&[(1, 100)]);
    b.widen(&[(1, 50)]);
    let r2 = b.register();
    b.compacted(&[(1, 200)]);
    drop(r1);
    b.apply_ready();
    assert_eq!(b.head_min(1), 10, "r2 may still see the sample at 50");
    drop(r2);
    b.apply_ready();
    assert_eq!(b.head_min(1), 200);
}
