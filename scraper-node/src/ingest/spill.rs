//! The outbox's overflow on disk: when the storage node is away longer than
//! the outbox holds in memory (`--outbox.memory-batches`), batches go to
//! segment files in `--outbox.dir` in order, and come back into memory as
//! acks make room (vmagent's persistent queue is the model). A segment is
//! deleted once every batch read from it is acked; what a process leaves
//! behind (a `kill -9`, a drain that ran out of time) is sent by the next
//! process with the same `--id`. Over `--outbox.max-disk-usage` the oldest
//! segment is dropped and counted, as vmagent drops its oldest data.
//!
//! A record is `len: u32 LE | xxh3-64 of the bytes: u64 LE | bytes`, the
//! bytes a whole `pb::Batch`: every series it uses defined in it, its
//! references in a space of their own ([`SPILLED_REF`]), so it needs nothing
//! a stream carried before and redefines nothing a live batch relies on. A
//! torn record at the end (the process died writing it) ends its segment.

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use scrapegrid_proto::prost::Message;
use scrapegrid_proto::v1 as pb;

use crate::metrics;

/// Segment files roll over at this size.
const SEGMENT_BYTES: u64 = 16 << 20;
/// A record longer than this is corrupt (a batch is at most the storage
/// node's message limit).
const MAX_RECORD: u32 = 256 << 20;
const HEADER: u64 = 12;

/// Spilled batches reference their series above this bit; live series ids
/// (a process counter) never reach it.
pub(crate) const SPILLED_REF: u64 = 1 << 63;

/// A batch read back: its encoding (decoded again when sent, so memory
/// holds bytes, not a batch of label strings), its segment and its target.
pub(super) struct ReadBack {
    pub(super) segment: u64,
    pub(super) bytes: Vec<u8>,
    pub(super) target_id: String,
    pub(super) generation: u64,
}

/// One segment file.
struct Segment {
    id: u64,
    path: PathBuf,
    bytes: u64,
    /// Records written (for a segment of an earlier process: found valid).
    records: u64,
    /// Records read back, and where the next one starts.
    read: u64,
    read_at: u64,
    /// Records read back and not acked yet.
    outstanding: u64,
    /// No more records come (the writer moved on, or an earlier process
    /// wrote it).
    sealed: bool,
}

impl Segment {
    fn done(&self) -> bool {
        self.sealed && self.read == self.records && self.outstanding == 0
    }
}

/// The segments, oldest first; the last one is written when not sealed.
pub(super) struct Spill {
    dir: PathBuf,
    max_bytes: u64,
    segments: VecDeque<Segment>,
    writer: Option<BufWriter<File>>,
    reader: Option<(u64, BufReader<File>)>,
    bytes: u64,
    next_id: u64,
    /// Keeps the directory this process's alone.
    _lock: File,
}

impl std::fmt::Debug for Spill {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spill")
            .field("dir", &self.dir)
            .field("segments", &self.segments.len())
            .field("bytes", &self.bytes)
            .finish()
    }
}

impl Spill {
    /// Opens `dir` (created if missing), locked for this process, and finds
    /// what an earlier process left.
    pub(super) fn open(dir: &Path, max_bytes: u64) -> io::Result<Self> {
        fs::create_dir_all(dir)?;
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join("lock"))?;
        lock_exclusive(&lock).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!(
                    "{}: another scraper with this --id uses it ({e})",
                    dir.display()
                ),
            )
        })?;
        let mut ids: Vec<u64> = fs::read_dir(dir)?
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                e.file_name()
                    .to_str()?
                    .strip_suffix(".seg")?
                    .parse::<u64>()
                    .ok()
            })
            .collect();
        ids.sort_unstable();
        let mut spill = Spill {
            dir: dir.to_path_buf(),
            max_bytes,
            segments: VecDeque::new(),
            writer: None,
            reader: None,
            bytes: 0,
            next_id: ids.last().map_or(1, |l| l + 1),
            _lock: lock,
        };
        for id in ids {
            let path = spill.segment_path(id);
            let (records, bytes) = scan(&path)?;
            if records == 0 {
                fs::remove_file(&path)?;
                continue;
            }
            spill.bytes += bytes;
            spill.segments.push_back(Segment {
                id,
                path,
                bytes,
                records,
                read: 0,
                read_at: 0,
                outstanding: 0,
                sealed: true,
            });
        }
        let left = spill.unread();
        if left > 0 {
            tracing::info!(dir = %dir.display(), batches = left, bytes = spill.bytes, "outbox: sending what an earlier process spilled to disk");
        }
        spill.gauge();
        Ok(spill)
    }

    fn segment_path(&self, id: u64) -> PathBuf {
        self.dir.join(format!("{id:020}.seg"))
    }

    /// Batches written and not read back yet.
    pub(super) fn unread(&self) -> u64 {
        self.segments.iter().map(|s| s.records - s.read).sum()
    }

    /// Appends a batch. A failed write leaves nothing of it behind: the
    /// segment is cut back to its last whole record and sealed, and the
    /// next batch starts a new one.
    pub(super) fn append(&mut self, batch: &pb::Batch) -> io::Result<()> {
        let bytes = batch.encode_to_vec();
        let writing = self.segments.back().is_some_and(|s| !s.sealed);
        if !writing
            || self
                .segments
                .back()
                .is_some_and(|s| s.bytes >= SEGMENT_BYTES)
        {
            self.roll()?;
        }
        let w = self.writer.as_mut().expect("a segment is open for writing");
        let written = w
            .write_all(&(bytes.len() as u32).to_le_bytes())
            .and_then(|()| w.write_all(&xxhash_rust::xxh3::xxh3_64(&bytes).to_le_bytes()))
            .and_then(|()| w.write_all(&bytes))
            // Readable at once: the reader may be on this segment.
            .and_then(|()| w.flush());
        if let Err(error) = written {
            self.seal_written(true);
            return Err(error);
        }
        let s = self.segments.back_mut().expect("the segment written");
        s.records += 1;
        s.bytes += HEADER + bytes.len() as u64;
        self.bytes += HEADER + bytes.len() as u64;
        ::metrics::counter!(metrics::BATCHES_SPILLED).increment(1);
        self.enforce_limit();
        self.gauge();
        Ok(())
    }

    /// Stops writing the last segment; with `cut`, its file is cut back to
    /// its whole records (what a failed write left goes).
    fn seal_written(&mut self, cut: bool) {
        let Some(w) = self.writer.take() else {
            return;
        };
        // Whatever the buffer still holds is dropped, not written.
        let (file, _) = w.into_parts();
        if let Some(s) = self.segments.back_mut().filter(|s| !s.sealed) {
            s.sealed = true;
            if cut {
                if let Err(error) = file.set_len(s.bytes) {
                    tracing::error!(path = %s.path.display(), %error, "outbox: cutting a failed write off a spilled segment failed");
                }
            }
        }
    }

    /// Seals the segment written and starts the next one.
    fn roll(&mut self) -> io::Result<()> {
        // Every append flushed: nothing is buffered.
        self.seal_written(false);
        if let Some(s) = self.segments.back_mut() {
            s.sealed = true;
        }
        self.collect();
        let id = self.next_id;
        self.next_id += 1;
        let path = self.segment_path(id);
        let file = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .open(&path)?;
        self.writer = Some(BufWriter::new(file));
        self.segments.push_back(Segment {
            id,
            path,
            bytes: 0,
            records: 0,
            read: 0,
            read_at: 0,
            outstanding: 0,
            sealed: false,
        });
        Ok(())
    }

    /// Drops the oldest sealed segments while over the limit.
    fn enforce_limit(&mut self) {
        while self.max_bytes > 0 && self.bytes > self.max_bytes && self.segments.len() > 1 {
            let s = self.segments.pop_front().expect("more than one segment");
            let dropped = s.records - s.read;
            self.bytes -= s.bytes;
            if self.reader.as_ref().is_some_and(|(id, _)| *id == s.id) {
                self.reader = None;
            }
            ::metrics::counter!(metrics::BATCHES_DROPPED).increment(dropped);
            tracing::warn!(dir = %self.dir.display(), batches = dropped, limit = self.max_bytes, "outbox: over --outbox.max-disk-usage; dropped the oldest spilled batches");
            if let Err(error) = fs::remove_file(&s.path) {
                tracing::warn!(path = %s.path.display(), %error, "outbox: removing a dropped segment failed");
            }
        }
    }

    /// Reads the oldest batch not read yet. A record that does not read
    /// back whole ends its segment (logged and counted).
    pub(super) fn read(&mut self) -> Option<ReadBack> {
        loop {
            let s = self.segments.iter_mut().find(|s| s.read < s.records)?;
            if self.reader.as_ref().is_none_or(|(id, _)| *id != s.id) {
                let opened = File::open(&s.path).and_then(|mut f| {
                    f.seek(SeekFrom::Start(s.read_at))?;
                    Ok(f)
                });
                match opened {
                    Ok(f) => self.reader = Some((s.id, BufReader::new(f))),
                    Err(error) => {
                        tracing::error!(path = %s.path.display(), %error, "outbox: a spilled segment cannot be read; its batches are lost");
                        self.give_up_segment();
                        continue;
                    }
                }
            }
            let (_, r) = self.reader.as_mut().expect("opened above");
            match read_record(r) {
                Ok(Some(bytes)) => {
                    s.read += 1;
                    s.read_at += HEADER + bytes.len() as u64;
                    match pb::Batch::decode(bytes.as_slice()) {
                        Ok(b) => {
                            s.outstanding += 1;
                            return Some(ReadBack {
                                segment: s.id,
                                target_id: b.target_id,
                                generation: b.target_generation,
                                bytes,
                            });
                        }
                        Err(error) => {
                            tracing::error!(path = %s.path.display(), %error, "outbox: a spilled batch does not decode; skipped");
                            ::metrics::counter!(metrics::BATCHES_DROPPED).increment(1);
                        }
                    }
                }
                Ok(None) | Err(_) => {
                    tracing::error!(path = %s.path.display(), lost = s.records - s.read, "outbox: a spilled segment ends early; the rest is lost");
                    self.give_up_segment();
                }
            }
        }
    }

    /// Counts the unread rest of the first segment with any as lost, and
    /// stops writing it if it is the one written (later batches start a
    /// new segment rather than follow a record that does not read).
    fn give_up_segment(&mut self) {
        let Some(s) = self.segments.iter_mut().find(|s| s.read < s.records) else {
            return;
        };
        ::metrics::counter!(metrics::BATCHES_DROPPED).increment(s.records - s.read);
        s.read = s.records;
        s.read_at = s.bytes;
        let written = !s.sealed;
        self.reader = None;
        if written {
            self.seal_written(false);
        }
        self.collect();
    }

    /// A batch read from segment `id` is acked.
    pub(super) fn acked(&mut self, id: u64) {
        if let Some(s) = self.segments.iter_mut().find(|s| s.id == id) {
            s.outstanding = s.outstanding.saturating_sub(1);
        }
        // The segment written is sealed once read up: appends start anew.
        if self
            .segments
            .back()
            .is_some_and(|s| !s.sealed && s.read == s.records && s.outstanding == 0)
        {
            self.seal_written(false);
        }
        self.collect();
        self.gauge();
    }

    /// Deletes segments whose every batch is acked.
    fn collect(&mut self) {
        let mut i = 0;
        while i < self.segments.len() {
            if self.segments[i].done() {
                let s = self.segments.remove(i).expect("in range");
                self.bytes -= s.bytes;
                if self.reader.as_ref().is_some_and(|(id, _)| *id == s.id) {
                    self.reader = None;
                }
                if let Err(error) = fs::remove_file(&s.path) {
                    tracing::warn!(path = %s.path.display(), %error, "outbox: removing a delivered segment failed");
                }
            } else {
                i += 1;
            }
        }
    }

    fn gauge(&self) {
        ::metrics::gauge!(metrics::OUTBOX_DISK_BYTES).set(self.bytes as f64);
    }
}

/// Reads one record; `None` at a clean end, an error at a torn or corrupt one.
fn read_record(r: &mut impl Read) -> io::Result<Option<Vec<u8>>> {
    let mut header = [0u8; HEADER as usize];
    match r.read_exact(&mut header[..4]) {
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        other => other?,
    }
    r.read_exact(&mut header[4..])?;
    let len = u32::from_le_bytes(header[..4].try_into().expect("4 bytes"));
    if len > MAX_RECORD {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "record too long",
        ));
    }
    let sum = u64::from_le_bytes(header[4..].try_into().expect("8 bytes"));
    let mut bytes = vec![0; len as usize];
    r.read_exact(&mut bytes)?;
    if xxhash_rust::xxh3::xxh3_64(&bytes) != sum {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "checksum mismatch",
        ));
    }
    Ok(Some(bytes))
}

/// Counts the whole records of a segment an earlier process wrote, and
/// cuts a torn tail off; returns (records, bytes).
fn scan(path: &Path) -> io::Result<(u64, u64)> {
    let mut r = BufReader::new(File::open(path)?);
    let (mut records, mut bytes) = (0, 0);
    while let Ok(Some(b)) = read_record(&mut r) {
        records += 1;
        bytes += HEADER + b.len() as u64;
    }
    let len = fs::metadata(path)?.len();
    if len > bytes {
        tracing::warn!(path = %path.display(), kept = records, cut = len - bytes, "outbox: a spilled segment ends in a torn record; cut there");
        OpenOptions::new().write(true).open(path)?.set_len(bytes)?;
    }
    Ok((records, bytes))
}

fn lock_exclusive(f: &File) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: flock on a descriptor this process owns; it has no memory
    // effects.
    let rc = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(n: u64) -> pb::Batch {
        pb::Batch {
            target_id: format!("t{n}"),
            timestamp_ms: n as i64,
            values: vec![n as f64; 10],
            ..Default::default()
        }
    }

    fn drain(s: &mut Spill) -> Vec<i64> {
        let mut out = Vec::new();
        while let Some(r) = s.read() {
            out.push(pb::Batch::decode(r.bytes.as_slice()).unwrap().timestamp_ms);
            s.acked(r.segment);
        }
        out
    }

    #[test]
    fn batches_come_back_in_order_and_delivered_segments_go() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Spill::open(dir.path(), 0).unwrap();
        for n in 0..5 {
            s.append(&batch(n)).unwrap();
        }
        assert_eq!(s.unread(), 5);
        let first = s.read().unwrap();
        assert_eq!(first.target_id, "t0");
        // Appends go on while reading.
        s.append(&batch(5)).unwrap();
        s.acked(first.segment);
        assert_eq!(drain(&mut s), vec![1, 2, 3, 4, 5]);
        assert_eq!(s.bytes, 0, "every segment delivered is deleted");
        let left: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name() != "lock")
            .collect();
        assert!(left.is_empty(), "{left:?}");
        // Appending after it emptied starts a new segment.
        s.append(&batch(6)).unwrap();
        assert_eq!(drain(&mut s), vec![6]);
    }

    #[test]
    fn the_next_process_sends_what_was_left_and_a_torn_tail_is_cut() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut s = Spill::open(dir.path(), 0).unwrap();
            for n in 0..3 {
                s.append(&batch(n)).unwrap();
            }
            // Read, never acked: the process dies.
            s.read().unwrap();
        }
        let seg = fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .find(|e| e.file_name().to_string_lossy().ends_with(".seg"))
            .unwrap()
            .path();
        // A torn record at the end.
        let mut f = OpenOptions::new().append(true).open(&seg).unwrap();
        f.write_all(&[9, 0, 0, 0, 1, 2]).unwrap();
        drop(f);
        let mut s = Spill::open(dir.path(), 0).unwrap();
        assert_eq!(s.unread(), 3);
        s.append(&batch(3)).unwrap();
        assert_eq!(drain(&mut s), vec![0, 1, 2, 3]);
    }

    #[test]
    fn a_record_that_does_not_read_back_ends_its_segment_and_later_ones_go_on() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Spill::open(dir.path(), 0).unwrap();
        s.append(&batch(0)).unwrap();
        s.append(&batch(1)).unwrap();
        // Damage the second record's bytes in the segment being written.
        let path = s.segments.back().unwrap().path.clone();
        let mut data = fs::read(&path).unwrap();
        let last = data.len() - 1;
        data[last] ^= 0xff;
        fs::write(&path, data).unwrap();
        assert_eq!(drain(&mut s), vec![0], "the damaged one is lost");
        // Later batches do not follow the damaged record.
        s.append(&batch(2)).unwrap();
        assert_eq!(drain(&mut s), vec![2]);
    }

    #[test]
    fn a_second_process_with_the_same_directory_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let _s = Spill::open(dir.path(), 0).unwrap();
        let err = Spill::open(dir.path(), 0).unwrap_err();
        assert!(err.to_string().contains("another scraper"), "{err}");
    }

    #[test]
    fn over_the_limit_the_oldest_segment_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Spill::open(dir.path(), 1).unwrap();
        let big = pb::Batch {
            values: vec![1.0; (SEGMENT_BYTES / 8) as usize + 1],
            ..batch(0)
        };
        s.append(&big).unwrap();
        s.append(&batch(1)).unwrap();
        // The first segment (over the segment size) was dropped when the
        // second began to count.
        assert_eq!(drain(&mut s), vec![1]);
    }
}
