//! Column families and key encodings: the one place that knows how data is
//! laid out in RocksDB.
//!
//! All integers in keys are big-endian so that RocksDB's bytewise order is
//! numeric order. Timestamps are `i64` with the sign bit flipped, so negative
//! timestamps sort before positive ones.
//!
//! | CF                 | key                                         | value                 |
//! |--------------------|---------------------------------------------|-----------------------|
//! | `series`           | series id (u64)                             | encoded label set     |
//! | `series_by_labels` | encoded label set                           | series id (u64)       |
//! | `postings`         | name 0x00 value 0x00 series id (u64)        | empty                 |
//! | `samples`          | series id (u64) + timestamp (flipped i64)   | f64 bits (u64)        |
//! | `chunks`           | series id (u64) + last timestamp (flipped i64) | encoding (u8) + chunk |
//! | `open_chunks`      | series id (u64)                             | chunk (checkpoint)    |
//! | `wal`              | record sequence (u64)                       | [`crate::open_chunks::wal`] record |
//! | `exemplars`        | series id (u64) + ingest time (flipped i64) + exemplar timestamp (flipped i64) | flags (u8) + f64 bits (u64) + encoded label set |
//! | `meta`             | `next_series_id`, `seq/<scraper>`           | u64                   |
//! | `meta`             | `gen/<target>`                              | [`crate::writer::ownership`] fence |
//! | `meta`             | `handover/<target>`                         | [`crate::writer::ownership`] handover |
//!
//! The postings CF also holds the all-series posting: a key with an empty
//! name and an empty value (`0x00 0x00 id`); label names are never empty, so
//! it cannot collide with a real label. Label values may contain any byte
//! (NUL included): a postings key is decoded from both ends (the name stops
//! at the first NUL, the id is the last eight bytes), never by splitting.
//!
//! # Samples: open chunks, head and chunks
//!
//! A series' samples live in three places, and only [`crate::samples`]
//! (with [`crate::open_chunks`] and the [`crate::compactor`]) reads or
//! writes them, besides retention (deleting old ranges) and [`crate::db`]
//! (reading where each head starts, and recovering open chunks, at open):
//!
//! - **Open chunks** (in memory, [`crate::open_chunks`]): a sample newer
//!   than its series' newest is appended to its open chunk; the `wal` CF
//!   holds it (in the scrape batch's `WriteBatch`) until a checkpoint puts
//!   the open chunk in the `open_chunks` CF. Cut chunks go to `chunks`.
//! - The **head** (`samples` CF): one key per sample older than its
//!   series' newest (out of order), written by the writer in the same
//!   `WriteBatch` as the rest of its scrape batch, so ingest stays atomic
//!   and WAL-durable. A sample at an existing timestamp overwrites it.
//! - **Chunks** (`chunks` CF): runs of a series' older samples compressed
//!   together. The key is the series id and the timestamp of the chunk's
//!   LAST sample, so one forward seek to `(id, mint)` finds the first chunk
//!   that can overlap `[mint, maxt]`, the chunk a late sample at `t` belongs
//!   to is the first one at or after `(id, t)`, and the series' newest
//!   compacted timestamp is in the key found by a backward seek. The value is
//!   one encoding byte ([`CHUNK_ENCODING_XOR`]) then the chunk bytes, whose
//!   bit layout [`crate::chunk`] documents (its first sample holds the
//!   chunk's first timestamp).
//!
//! Invariants: a series' chunks never overlap in time (so in key order their
//! samples are in time order); the compactor moves head samples into chunks
//! in one `WriteBatch` that deletes exactly the head keys it encoded, so a
//! crash leaves a sample in the head or in a chunk, never both or neither.
//! Readers read both CFs at one snapshot and merge them by timestamp; if a
//! timestamp is in both, the head wins (it is the newer write).
//!
//! # Native histograms
//!
//! The `histograms` CF holds native histogram samples, one key each, keyed
//! as the head's samples ([`sample_key`]: series id, timestamp). The value
//! is the remote-write `Histogram` message as the scrape sent it (integer
//! histograms as bucket deltas, zigzag varints), without its timestamp,
//! which the key holds; block compression does the rest. A series is
//! either float or histogram in practice; its stale markers are float
//! samples in the float layout, and reads merge both by timestamp.
//!
//! # Exemplars
//!
//! The `exemplars` CF holds the exemplars the writer accepted
//! ([`crate::exemplars`] reads and writes it), one key each, put in the
//! same `WriteBatch` as their scrape's samples. The key is the series id,
//! the **ingest time** (the scrape timestamp of the batch that brought the
//! exemplar) and the exemplar's own timestamp. Ingest time comes second so
//! that a series' keys are in the order the exemplars arrived (Prometheus's
//! circular buffer order) and so that retention can delete a series'
//! exemplars older than its cut-off with one range, exactly as for samples
//! (an exemplar with an old explicit timestamp lives as long as the scrape
//! that brought it). The exemplar timestamp makes the key unique: per
//! series, accepted exemplars have strictly increasing timestamps. The
//! value is a flags byte ([`EXEMPLAR_HAS_TS`]: the exposition gave the
//! timestamp), the value's f64 bits, then the exemplar's labels as
//! [`encode_labels`] writes them.

use scrapegrid_common::{Label, Labels};
use scrapegrid_proto::prometheus as rw;
use scrapegrid_proto::prost::Message as _;

/// Series id -> encoded label set.
pub const CF_SERIES: &str = "series";
/// Encoded label set -> series id.
pub const CF_SERIES_BY_LABELS: &str = "series_by_labels";
/// Label name/value -> series ids, as keys with empty values.
pub const CF_POSTINGS: &str = "postings";
/// Series id and timestamp -> sample value: the head.
pub const CF_SAMPLES: &str = "samples";
/// Series id and last timestamp -> compressed chunk of samples.
pub const CF_CHUNKS: &str = "chunks";
/// Node-wide counters and per-scraper / per-target records.
pub const CF_META: &str = "meta";
/// Series id, ingest time and exemplar timestamp -> exemplar.
pub const CF_EXEMPLARS: &str = "exemplars";
/// Record sequence -> the samples one write appended to open chunks
/// ([`crate::open_chunks::wal`]).
pub const CF_WAL: &str = "wal";
/// Series id -> its open chunk at the last checkpoint
/// ([`crate::open_chunks`]).
pub const CF_OPEN_CHUNKS: &str = "open_chunks";

/// Series id and timestamp -> native histogram sample.
pub const CF_HISTOGRAMS: &str = "histograms";

/// Record sequence -> the samples one write stored, kept until every
/// `remote_write` queue has sent them ([`crate::egress`]).
pub const CF_EGRESS: &str = "egress";

/// Every column family the node opens.
pub const ALL_CFS: [&str; 11] = [
    CF_SERIES,
    CF_SERIES_BY_LABELS,
    CF_POSTINGS,
    CF_SAMPLES,
    CF_CHUNKS,
    CF_META,
    CF_EXEMPLARS,
    CF_WAL,
    CF_OPEN_CHUNKS,
    CF_EGRESS,
    CF_HISTOGRAMS,
];

/// The column families whose keys start with the 8-byte series id; they
/// are opened with that prefix as RocksDB's prefix extractor, so an
/// iterator crossing series must ask for total order
/// ([`crate::db::Db::total_order_read_options`]).
pub const SERIES_PREFIXED_CFS: [&str; 2] = [CF_SAMPLES, CF_CHUNKS];

/// The length of the series-id prefix of [`SERIES_PREFIXED_CFS`] keys.
pub const SERIES_PREFIX_LEN: usize = 8;

/// Meta key of the next series id to allocate.
pub const META_NEXT_SERIES_ID: &[u8] = b"next_series_id";
/// Meta key prefix of the last applied sequence per scraper id.
pub const META_SEQ_PREFIX: &[u8] = b"seq/";
/// Meta key prefix of the highest target generation seen per target id
/// (with the timestamp of that generation's first batch).
pub const META_GEN_PREFIX: &[u8] = b"gen/";
/// Meta key prefix of the series set a target's previous owner handed over.
pub const META_HANDOVER_PREFIX: &[u8] = b"handover/";
/// Meta key the writer writes to learn whether the database takes writes
/// again after the disk was full ([`crate::db::Db::probe_write`]).
pub const META_DISK_PROBE: &[u8] = b"disk_probe";

/// Meta key prefix of each `remote_write` queue's position in
/// [`CF_EGRESS`] ([`crate::egress`]).
pub const META_EGRESS_PREFIX: &[u8] = b"egress/";

/// Series ids start here; 0 is never a valid id.
pub const FIRST_SERIES_ID: u64 = 1;

/// The separator between the parts of a postings key.
const SEP: u8 = 0x00;

/// Returns the `series` CF key of `id`.
pub fn series_key(id: u64) -> [u8; 8] {
    id.to_be_bytes()
}

/// Encodes a u64 value (series ids, sequences, generations).
pub fn encode_u64(v: u64) -> [u8; 8] {
    v.to_be_bytes()
}

/// Decodes a u64 value; `None` when it is not exactly eight bytes.
pub fn decode_u64(b: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(b.try_into().ok()?))
}

/// Encodes a label set: for each label, the name's length (LEB128), the
/// name, the value's length, the value ([`scrapegrid_common::CompactLabels`]'s
/// bytes). Deterministic for a given set, so it is also the
/// `series_by_labels` key.
pub fn encode_labels(labels: &Labels) -> Vec<u8> {
    scrapegrid_common::CompactLabels::new(labels).into_bytes()
}

/// Decodes [`encode_labels`] output; `None` when it is malformed.
pub fn decode_labels(mut b: &[u8]) -> Option<Labels> {
    let mut out: Vec<Label> = Vec::new();
    while !b.is_empty() {
        let name = take_string(&mut b)?;
        let value = take_string(&mut b)?;
        if out.last().is_some_and(|l| l.name >= name) || value.is_empty() {
            return None;
        }
        out.push(Label { name, value });
    }
    Some(Labels::from_sorted_unchecked(out))
}

fn take_string(b: &mut &[u8]) -> Option<String> {
    let len = usize::try_from(take_uvarint(b)?).ok()?;
    if b.len() < len {
        return None;
    }
    let (s, rest) = b.split_at(len);
    *b = rest;
    String::from_utf8(s.to_vec()).ok()
}

/// Appends `v` as LEB128.
pub(crate) fn put_uvarint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Takes a LEB128 value off the front of `b`; `None` when malformed.
pub(crate) fn take_uvarint(b: &mut &[u8]) -> Option<u64> {
    let mut v = 0u64;
    for (i, &byte) in b.iter().enumerate().take(10) {
        v |= u64::from(byte & 0x7f) << (7 * i);
        if byte < 0x80 {
            *b = &b[i + 1..];
            return Some(v);
        }
    }
    None
}

/// Returns the postings prefix of all series with label `name` (any value).
pub fn postings_name_prefix(name: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(name.len() + 1);
    k.extend_from_slice(name.as_bytes());
    k.push(SEP);
    k
}

/// Returns the postings prefix of the series with `name="value"`. A key
/// belongs to this posting list only if it is exactly eight bytes longer.
pub fn postings_prefix(name: &str, value: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(name.len() + value.len() + 10);
    k.extend_from_slice(name.as_bytes());
    k.push(SEP);
    k.extend_from_slice(value.as_bytes());
    k.push(SEP);
    k
}

/// Returns the postings key of series `id` under `name="value"`.
pub fn postings_key(name: &str, value: &str, id: u64) -> Vec<u8> {
    let mut k = postings_prefix(name, value);
    k.extend_from_slice(&id.to_be_bytes());
    k
}

/// Returns the prefix of the all-series posting list.
pub fn all_postings_prefix() -> Vec<u8> {
    postings_prefix("", "")
}

/// Returns the all-series postings key of `id`.
pub fn all_postings_key(id: u64) -> Vec<u8> {
    postings_key("", "", id)
}

/// A decoded postings key.
#[derive(Debug, PartialEq, Eq)]
pub struct PostingsKey<'a> {
    pub name: &'a [u8],
    pub value: &'a [u8],
    pub id: u64,
}

/// Decodes a postings key; `None` when it is malformed.
pub fn decode_postings_key(k: &[u8]) -> Option<PostingsKey<'_>> {
    if k.len() < 10 {
        return None;
    }
    let (head, id) = k.split_at(k.len() - 8);
    let id = decode_u64(id)?;
    let (&last, head) = head.split_last()?;
    if last != SEP {
        return None;
    }
    let name_end = head.iter().position(|&b| b == SEP)?;
    Some(PostingsKey {
        name: &head[..name_end],
        value: &head[name_end + 1..],
        id,
    })
}

/// Returns the smallest key greater than every key starting with `prefix`,
/// or `None` when no such key exists (the prefix is all 0xff).
pub fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// Maps a timestamp to a u64 whose big-endian bytes sort like the i64.
fn flip_ts(ts: i64) -> u64 {
    (ts as u64) ^ (1 << 63)
}

fn unflip_ts(v: u64) -> i64 {
    (v ^ (1 << 63)) as i64
}

/// Returns the `samples` key of series `id` at `ts_ms`.
pub fn sample_key(id: u64, ts_ms: i64) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&id.to_be_bytes());
    k[8..].copy_from_slice(&flip_ts(ts_ms).to_be_bytes());
    k
}

/// Decodes a `samples` key into (series id, timestamp).
pub fn decode_sample_key(k: &[u8]) -> Option<(u64, i64)> {
    if k.len() != 16 {
        return None;
    }
    let id = decode_u64(&k[..8])?;
    let ts = unflip_ts(decode_u64(&k[8..])?);
    Some((id, ts))
}

/// Encodes a sample value bit-exactly (stale markers keep their NaN bits).
pub fn encode_sample_value(v: f64) -> [u8; 8] {
    v.to_bits().to_be_bytes()
}

/// Decodes [`encode_sample_value`] output.
pub fn decode_sample_value(b: &[u8]) -> Option<f64> {
    decode_u64(b).map(f64::from_bits)
}

/// The first byte of a `chunks` value: the chunk is a
/// [`crate::chunk::ChunkEncoder`] chunk (delta-of-delta timestamps, XOR
/// values). Other encodings (native histograms, say) get other bytes.
pub const CHUNK_ENCODING_XOR: u8 = 1;

/// Returns the `chunks` key of the chunk of series `id` whose last sample is
/// at `last_ts_ms`. Same shape as [`sample_key`].
pub fn chunk_key(id: u64, last_ts_ms: i64) -> [u8; 16] {
    sample_key(id, last_ts_ms)
}

/// Decodes a `chunks` key into (series id, last timestamp).
pub fn decode_chunk_key(k: &[u8]) -> Option<(u64, i64)> {
    decode_sample_key(k)
}

/// Encodes a `chunks` value: the encoding byte, then the chunk.
pub fn encode_chunk_value(chunk: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(chunk.len() + 1);
    v.push(CHUNK_ENCODING_XOR);
    v.extend_from_slice(chunk);
    v
}

/// Returns the chunk bytes of a `chunks` value; `None` when its encoding is
/// unknown.
pub fn decode_chunk_value(v: &[u8]) -> Option<&[u8]> {
    match v.split_first() {
        Some((&CHUNK_ENCODING_XOR, chunk)) => Some(chunk),
        _ => None,
    }
}

/// Flag bit of an `exemplars` value: the exposition gave the exemplar's
/// timestamp (otherwise it is its sample's).
pub const EXEMPLAR_HAS_TS: u8 = 1;

/// Returns the `exemplars` key of an exemplar of series `id` that arrived
/// with the scrape at `ingest_ms` and has timestamp `ts_ms`.
pub fn exemplar_key(id: u64, ingest_ms: i64, ts_ms: i64) -> [u8; 24] {
    let mut k = [0u8; 24];
    k[..16].copy_from_slice(&exemplar_prefix(id, ingest_ms));
    k[16..].copy_from_slice(&flip_ts(ts_ms).to_be_bytes());
    k
}

/// Returns the prefix of the `exemplars` keys of series `id` that arrived
/// at `ingest_ms`. Every key of the series that arrived earlier sorts
/// before it, so `[prefix(id, i64::MIN), prefix(id, t))` is what arrived
/// before `t`. Same shape as [`sample_key`].
pub fn exemplar_prefix(id: u64, ingest_ms: i64) -> [u8; 16] {
    sample_key(id, ingest_ms)
}

/// Decodes an `exemplars` key into (series id, ingest time, exemplar
/// timestamp).
pub fn decode_exemplar_key(k: &[u8]) -> Option<(u64, i64, i64)> {
    if k.len() != 24 {
        return None;
    }
    let (id, ingest) = decode_sample_key(&k[..16])?;
    Some((id, ingest, unflip_ts(decode_u64(&k[16..])?)))
}

/// Decodes the (series id, ingest time) of an `exemplars` key, the part
/// [`exemplar_prefix`] encodes.
pub fn decode_exemplar_prefix(k: &[u8]) -> Option<(u64, i64)> {
    decode_exemplar_key(k).map(|(id, ingest, _)| (id, ingest))
}

/// Encodes an `exemplars` value.
pub fn encode_exemplar_value(labels: &Labels, value: f64, has_ts: bool) -> Vec<u8> {
    let encoded = encode_labels(labels);
    let mut v = Vec::with_capacity(9 + encoded.len());
    v.push(if has_ts { EXEMPLAR_HAS_TS } else { 0 });
    v.extend_from_slice(&value.to_bits().to_be_bytes());
    v.extend_from_slice(&encoded);
    v
}

/// Decodes [`encode_exemplar_value`] output into (labels, value, has_ts);
/// `None` when it is malformed or has unknown flags.
pub fn decode_exemplar_value(v: &[u8]) -> Option<(Labels, f64, bool)> {
    let (&flags, rest) = v.split_first()?;
    if flags & !EXEMPLAR_HAS_TS != 0 || rest.len() < 8 {
        return None;
    }
    let (value, labels) = rest.split_at(8);
    Some((
        decode_labels(labels)?,
        decode_sample_value(value)?,
        flags & EXEMPLAR_HAS_TS != 0,
    ))
}

/// Returns the meta key of the last applied sequence of `scraper_id`.
pub fn seq_key(scraper_id: &str) -> Vec<u8> {
    [META_SEQ_PREFIX, scraper_id.as_bytes()].concat()
}

/// Returns the meta key of the position of the `remote_write` queue `name`.
pub fn egress_cursor_key(name: &str) -> Vec<u8> {
    [META_EGRESS_PREFIX, name.as_bytes()].concat()
}

/// Returns the meta key of the highest generation seen for `target_id`.
pub fn gen_key(target_id: &str) -> Vec<u8> {
    [META_GEN_PREFIX, target_id.as_bytes()].concat()
}

/// Returns the meta key of the handover record of `target_id`.
pub fn handover_key(target_id: &str) -> Vec<u8> {
    [META_HANDOVER_PREFIX, target_id.as_bytes()].concat()
}

/// Encodes a native histogram sample's value (its timestamp left out).
pub fn encode_histogram_value(h: &rw::Histogram) -> Vec<u8> {
    if h.timestamp == 0 {
        return h.encode_to_vec();
    }
    let mut h = h.clone();
    h.timestamp = 0;
    h.encode_to_vec()
}

/// Decodes a native histogram sample's value.
pub fn decode_histogram_value(v: &[u8]) -> Option<rw::Histogram> {
    rw::Histogram::decode(v).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_round_trip() {
        let cases = [
            Labels::new(),
            Labels::from_pairs([("__name__", "up"), ("job", "node")]),
            Labels::from_pairs([("a", "x\0y"), ("b", "ü".repeat(100).as_str())]),
        ];
        for l in cases {
            assert_eq!(decode_labels(&encode_labels(&l)), Some(l));
        }
        assert_eq!(decode_labels(&[5, b'a']), None);
        // Unsorted names are rejected.
        let mut bad = encode_labels(&Labels::from_pairs([("b", "1")]));
        bad.extend(encode_labels(&Labels::from_pairs([("a", "1")])));
        assert_eq!(decode_labels(&bad), None);
    }

    #[test]
    fn sample_keys_sort_by_series_then_time() {
        let keys = [
            sample_key(1, i64::MIN),
            sample_key(1, -5),
            sample_key(1, 0),
            sample_key(1, 7),
            sample_key(1, i64::MAX),
            sample_key(2, -1),
            sample_key(256, 0),
        ];
        for w in keys.windows(2) {
            assert!(w[0] < w[1], "{:?} !< {:?}", w[0], w[1]);
        }
        for (id, ts) in [(1, i64::MIN), (3, -1), (u64::MAX, 1_700_000_000_000)] {
            assert_eq!(decode_sample_key(&sample_key(id, ts)), Some((id, ts)));
        }
    }

    #[test]
    fn sample_values_keep_nan_bits() {
        let stale = scrapegrid_proto::stale_marker();
        let back = decode_sample_value(&encode_sample_value(stale)).unwrap();
        assert!(scrapegrid_proto::is_stale_marker(back));
        assert_eq!(decode_sample_value(&encode_sample_value(-0.5)), Some(-0.5));
    }

    #[test]
    fn chunk_keys_and_values() {
        assert!(chunk_key(1, 100) < chunk_key(1, 200));
        assert!(chunk_key(1, i64::MAX) < chunk_key(2, i64::MIN));
        assert_eq!(decode_chunk_key(&chunk_key(9, -3)), Some((9, -3)));
        let v = encode_chunk_value(&[7, 8]);
        assert_eq!(v, [CHUNK_ENCODING_XOR, 7, 8]);
        assert_eq!(decode_chunk_value(&v), Some(&[7u8, 8][..]));
        assert_eq!(decode_chunk_value(&[0, 7]), None);
        assert_eq!(decode_chunk_value(&[]), None);
    }

    #[test]
    fn exemplar_keys_and_values() {
        // A series' exemplars sort by arrival, then by their own timestamp.
        let keys = [
            exemplar_key(1, -5, 100),
            exemplar_key(1, 0, -7),
            exemplar_key(1, 0, 3),
            exemplar_key(1, 10, 1),
            exemplar_key(2, i64::MIN, i64::MIN),
        ];
        for w in keys.windows(2) {
            assert!(w[0] < w[1], "{:?} !< {:?}", w[0], w[1]);
        }
        // The prefix bounds what arrived before a time.
        assert!(exemplar_prefix(1, 10)[..] <= exemplar_key(1, 10, i64::MIN)[..]);
        assert!(exemplar_key(1, 9, i64::MAX)[..] < exemplar_prefix(1, 10)[..]);
        let k = exemplar_key(7, 1_600_000_000_000, -1);
        assert_eq!(decode_exemplar_key(&k), Some((7, 1_600_000_000_000, -1)));
        assert_eq!(decode_exemplar_prefix(&k), Some((7, 1_600_000_000_000)));
        assert_eq!(decode_exemplar_key(&k[..16]), None);

        let labels = Labels::from_pairs([("trace_id", "abc")]);
        let v = encode_exemplar_value(&labels, 0.5, true);
        assert_eq!(decode_exemplar_value(&v), Some((labels.clone(), 0.5, true)));
        let v = encode_exemplar_value(&Labels::new(), -1.0, false);
        assert_eq!(
            decode_exemplar_value(&v),
            Some((Labels::new(), -1.0, false))
        );
        assert_eq!(decode_exemplar_value(&[0, 1, 2]), None, "short value");
        let mut bad = encode_exemplar_value(&labels, 0.5, true);
        bad[0] = 0x80;
        assert_eq!(decode_exemplar_value(&bad), None, "unknown flags");
    }

    #[test]
    fn postings_keys_decode_from_both_ends() {
        let k = postings_key("job", "a\0b", 42);
        assert_eq!(
            decode_postings_key(&k),
            Some(PostingsKey {
                name: b"job",
                value: b"a\0b",
                id: 42
            })
        );
        let all_key = all_postings_key(7);
        let all = decode_postings_key(&all_key).unwrap();
        assert_eq!((all.name, all.value, all.id), (&b""[..], &b""[..], 7));
        // Within one name, keys sort by value then id.
        assert!(postings_key("a", "1", 9) < postings_key("a", "2", 1));
        assert!(postings_key("a", "1", 1) < postings_key("a", "1", 2));
        // The all-series posting sorts before every label.
        assert!(all_postings_key(u64::MAX) < postings_key("a", "", 0));
        assert!(k.starts_with(&postings_name_prefix("job")));
        assert!(!k.starts_with(&postings_name_prefix("jo")));
    }

    #[test]
    fn prefix_end_is_the_next_prefix() {
        assert_eq!(prefix_end(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(prefix_end(&[1, 0xff]), Some(vec![2]));
        assert_eq!(prefix_end(&[0xff, 0xff]), None);
    }

    #[test]
    fn meta_keys() {
        assert_eq!(seq_key("s1"), b"seq/s1");
        assert_eq!(gen_key("t1"), b"gen/t1");
        assert_eq!(decode_u64(&encode_u64(99)), Some(99));
        assert_eq!(decode_u64(b"short"), None);
    }
}
