//! Gorilla-style sample chunks: a pure codec that packs `(t, v)` samples of
//! one series (timestamps in milliseconds, strictly increasing) into a bit
//! stream, after Facebook's Gorilla paper and Prometheus's XOR chunks.
//!
//! Nothing here does IO: [`ChunkEncoder`] appends samples in O(1) to a byte
//! buffer that is a complete, decodable chunk after every append, and
//! [`ChunkDecoder`] iterates one, checking everything it reads, so malformed
//! or truncated input yields a [`ChunkError`], never a panic or a loop.
//!
//! # Layout
//!
//! | part        | encoding                                                    |
//! |-------------|-------------------------------------------------------------|
//! | header      | sample count, `u16` big-endian (2 bytes)                    |
//! | sample 0    | `t` as a zigzag varint, then `v` XOR 0.0                    |
//! | sample 1    | `t1 - t0` (at least 1) as an unsigned varint, then `v` XOR  |
//! | sample 2..n | a steady or a moving sample (below)                         |
//!
//! After the header the chunk is one bit stream, most significant bit first
//! within each byte; the varints are written into it as 8-bit groups (only
//! sample 0's is byte-aligned). The last byte is padded with zero bits and
//! nothing follows it.
//!
//! A timestamp's delta-of-delta `dod = (t[i] - t[i-1]) - (t[i-1] - t[i-2])`,
//! computed modulo 2^64, goes into the first bucket (class) that holds it as
//! a two's-complement integer:
//!
//! | class | payload       | range of `dod`             | moving prefix | steady prefix |
//! |-------|---------------|----------------------------|---------------|---------------|
//! | 0     | none          | 0                          | `0`           | (joint codes) |
//! | 1     | 5 bits        | -16 ..= 15 (scrape jitter) | `10`          | `11 0`        |
//! | 2     | 14 bits       | -8192 ..= 8191             | `110`         | `11 10`       |
//! | 3     | 20 bits       | -524288 ..= 524287         | `1110`        | `11 110`      |
//! | 4     | 32 bits       | ±24.8 days                 | `11110`       | `11 1110`     |
//! | 5     | 64 bits (raw) | anything (the escape)      | `11111`       | `11 1111`     |
//!
//! Sample 2 and every sample after a `dod` of 0 are *steady*: aligned
//! scrapes of a quiet series cost one bit each. A steady sample starts with
//! `0` (dod 0, same value, nothing follows), `10` (dod 0, a changed value:
//! the value code below without its first `1`) or `11` and a class from 1 on
//! (then the full value code). Every other sample is *moving*: its class
//! (from 0 on), then the full value code; jittered timestamps stay there.
//!
//! A value is written as the XOR of its bits with the previous value's bits,
//! so every value (NaNs, the stale marker, -0.0) round-trips bit-exactly:
//!
//! | prefix | payload                                          | meaning        |
//! |--------|--------------------------------------------------|----------------|
//! | `0`    | none                                             | same bits      |
//! | `10`   | the bits inside the current window               | reuse window   |
//! | `11`   | leading zeros (5 bits, at most 31), significant bit count (6 bits, 0 meaning 64), then those bits | new window |
//!
//! The window (leading and trailing zero counts) is the one the last `11`
//! set; a `10` before any `11` is corrupt. The encoder reuses the window when
//! the XOR fits in it and that is not longer than opening a new one.

use thiserror::Error;

/// Why a sample could not be appended or a chunk could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ChunkError {
    /// Appended timestamps must strictly increase.
    #[error("timestamp {t} is not after the previous timestamp {prev}")]
    NotIncreasing { prev: i64, t: i64 },
    /// The chunk already holds `u16::MAX` samples.
    #[error("chunk is full ({} samples)", u16::MAX)]
    Full,
    /// The chunk ends before the samples its header counts.
    #[error("chunk is truncated")]
    Truncated,
    /// The chunk cannot have been written by [`ChunkEncoder`].
    #[error("chunk is corrupt: {0}")]
    Corrupt(String),
}

/// Length of the sample count header.
const HEADER_LEN: usize = 2;

/// Payload bits of each delta-of-delta bucket (its class); the last is the
/// escape.
const DOD_BITS: [u32; 6] = [0, 5, 14, 20, 32, 64];

/// The class of the escape bucket, whose prefix has no terminating zero.
const ESCAPE: usize = DOD_BITS.len() - 1;

/// Leading zeros are written in 5 bits.
const MAX_LEADING: u32 = 31;

/// Bits a new XOR window costs beyond its payload: its `11` prefix, 5 bits of
/// leading zeros and 6 bits of significant bit count.
const NEW_WINDOW_OVERHEAD: u32 = 2 + 5 + 6;

/// Appends samples to a chunk.
#[derive(Debug, Clone)]
pub struct ChunkEncoder {
    w: BitWriter,
    count: u16,
    t: i64,
    v: u64,
    delta: u64,
    /// Whether the last delta-of-delta was 0 (or none was written yet),
    /// which selects the joint code for the next sample.
    steady: bool,
    window: Option<Window>,
}

/// The XOR window of the last `11` value: the bits between `leading` and
/// `trailing` zeros.
#[derive(Debug, Clone, Copy)]
struct Window {
    leading: u32,
    trailing: u32,
}

impl Window {
    fn width(self) -> u32 {
        64 - self.leading - self.trailing
    }
}

impl Default for ChunkEncoder {
    fn default() -> Self {
        Self::new()
    }
}

impl ChunkEncoder {
    /// Returns an encoder holding an empty chunk.
    pub fn new() -> Self {
        Self {
            w: BitWriter::new(),
            count: 0,
            t: 0,
            v: 0,
            delta: 0,
            steady: true,
            window: None,
        }
    }

    /// Appends a sample; `t` must be after the last appended timestamp.
    /// Nothing is written when this fails.
    pub fn append(&mut self, t: i64, v: f64) -> Result<(), ChunkError> {
        let v = v.to_bits();
        if self.count == u16::MAX {
            return Err(ChunkError::Full);
        }
        if self.count > 0 && t <= self.t {
            return Err(ChunkError::NotIncreasing { prev: self.t, t });
        }
        let xor = v ^ self.v;
        match self.count {
            0 => {
                self.w.write_varint(((t << 1) ^ (t >> 63)) as u64);
                // XOR against 0.0: integers and round numbers take a few bits.
                self.write_value(xor);
            }
            1 => {
                self.delta = t.wrapping_sub(self.t) as u64;
                self.w.write_varint(self.delta);
                self.write_value(xor);
            }
            _ => {
                let delta = t.wrapping_sub(self.t) as u64;
                let dod = delta.wrapping_sub(self.delta) as i64;
                if !self.steady {
                    self.write_dod(dod, 0);
                    self.write_value(xor);
                } else if dod != 0 {
                    self.w.write_bits(0b11, 2);
                    self.write_dod(dod, 1);
                    self.write_value(xor);
                } else if xor == 0 {
                    self.w.write_bits(0b0, 1);
                } else {
                    self.w.write_bits(0b10, 2);
                    self.write_changed_value(xor);
                }
                self.delta = delta;
                self.steady = dod == 0;
            }
        }
        self.t = t;
        self.v = v;
        self.count += 1;
        self.w.buf[..HEADER_LEN].copy_from_slice(&self.count.to_be_bytes());
        Ok(())
    }

    /// Writes `dod` in the first bucket from `min_class` on that holds it.
    fn write_dod(&mut self, dod: i64, min_class: usize) {
        let class = if dod == 0 {
            0
        } else {
            (1..ESCAPE)
                .find(|&class| fits_signed(dod, DOD_BITS[class]))
                .unwrap_or(ESCAPE)
        };
        debug_assert!(class >= min_class);
        let ones = (class - min_class) as u32;
        if class == ESCAPE {
            self.w.write_bits((1 << ones) - 1, ones);
        } else {
            self.w.write_bits(((1 << ones) - 1) << 1, ones + 1);
        }
        self.w.write_bits(dod as u64, DOD_BITS[class]);
    }

    fn write_value(&mut self, xor: u64) {
        if xor == 0 {
            self.w.write_bits(0b0, 1);
        } else {
            self.w.write_bits(0b1, 1);
            self.write_changed_value(xor);
        }
    }

    fn write_changed_value(&mut self, xor: u64) {
        let leading = xor.leading_zeros().min(MAX_LEADING);
        let trailing = xor.trailing_zeros();
        let significant = 64 - leading - trailing;
        if let Some(win) = self.window {
            if leading >= win.leading
                && trailing >= win.trailing
                && win.width() <= NEW_WINDOW_OVERHEAD + significant
            {
                self.w.write_bits(0b0, 1);
                self.w.write_bits(xor >> win.trailing, win.width());
                return;
            }
        }
        self.w.write_bits(0b1, 1);
        self.w.write_bits(u64::from(leading), 5);
        // 64 significant bits are written as 0; 0 is never needed.
        self.w.write_bits(u64::from(significant % 64), 6);
        self.w.write_bits(xor >> trailing, significant);
        self.window = Some(Window { leading, trailing });
    }

    /// Returns the last sample appended: its timestamp and value bits.
    pub fn last(&self) -> Option<(i64, u64)> {
        (self.count > 0).then_some((self.t, self.v))
    }

    /// Returns the number of samples appended.
    pub fn len(&self) -> usize {
        usize::from(self.count)
    }

    /// Returns whether no sample was appended.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Returns the chunk so far; it is complete and decodable.
    pub fn bytes(&self) -> &[u8] {
        &self.w.buf
    }

    /// Returns the chunk, consuming the encoder.
    pub fn finish(self) -> Vec<u8> {
        self.w.buf
    }
}

/// Returns whether `x` is representable in `bits` (1 to 63) bits of two's
/// complement.
fn fits_signed(x: i64, bits: u32) -> bool {
    let half = 1i64 << (bits - 1);
    (-half..half).contains(&x)
}

/// Reads the samples of a chunk, oldest first. After the first error it
/// yields nothing more.
#[derive(Debug, Clone)]
pub struct ChunkDecoder<'a> {
    r: BitReader<'a>,
    total: u16,
    read: u16,
    t: i64,
    v: u64,
    delta: u64,
    steady: bool,
    window: Option<Window>,
    done: bool,
}

impl<'a> ChunkDecoder<'a> {
    /// Returns a decoder over `bytes`, having read the header.
    pub fn new(bytes: &'a [u8]) -> Result<Self, ChunkError> {
        let (header, body) = bytes
            .split_first_chunk::<HEADER_LEN>()
            .ok_or(ChunkError::Truncated)?;
        Ok(Self {
            r: BitReader::new(body),
            total: u16::from_be_bytes(*header),
            read: 0,
            t: 0,
            v: 0,
            delta: 0,
            steady: true,
            window: None,
            done: false,
        })
    }

    /// Returns the number of samples the header counts.
    pub fn num_samples(&self) -> usize {
        usize::from(self.total)
    }

    fn read_sample(&mut self) -> Result<(i64, f64), ChunkError> {
        match self.read {
            0 => {
                let z = self.r.read_varint()?;
                self.t = (z >> 1) as i64 ^ -((z & 1) as i64);
                self.read_value()?;
            }
            1 => {
                let delta = self.r.read_varint()?;
                self.advance(delta)?;
                self.read_value()?;
            }
            _ => {
                let dod = if !self.steady {
                    let dod = self.read_dod(0)?;
                    self.read_value()?;
                    dod
                } else if !self.r.read_bit()? {
                    0
                } else if self.r.read_bit()? {
                    let dod = self.read_dod(1)?;
                    self.read_value()?;
                    dod
                } else {
                    self.read_changed_value()?;
                    0
                };
                self.steady = dod == 0;
                self.advance(self.delta.wrapping_add(dod))?;
            }
        }
        self.read += 1;
        Ok((self.t, f64::from_bits(self.v)))
    }

    /// Moves to the next timestamp, `delta` after the current one.
    fn advance(&mut self, delta: u64) -> Result<(), ChunkError> {
        if delta == 0 {
            return Err(ChunkError::Corrupt("timestamp does not increase".into()));
        }
        self.t = self
            .t
            .checked_add_unsigned(delta)
            .ok_or_else(|| ChunkError::Corrupt("timestamp overflows".into()))?;
        self.delta = delta;
        Ok(())
    }

    /// Reads a delta-of-delta in a bucket of class `min_class` or above.
    fn read_dod(&mut self, min_class: usize) -> Result<u64, ChunkError> {
        let mut class = min_class;
        while class < ESCAPE && self.r.read_bit()? {
            class += 1;
        }
        let bits = DOD_BITS[class];
        if bits == 0 {
            return Ok(0);
        }
        let raw = self.r.read_bits(bits)?;
        // Sign-extend the payload.
        let shift = 64 - bits;
        Ok((((raw << shift) as i64) >> shift) as u64)
    }

    fn read_value(&mut self) -> Result<(), ChunkError> {
        if self.r.read_bit()? {
            self.read_changed_value()?;
        }
        Ok(())
    }

    fn read_changed_value(&mut self) -> Result<(), ChunkError> {
        if self.r.read_bit()? {
            let leading = self.r.read_bits(5)? as u32;
            let significant = match self.r.read_bits(6)? as u32 {
                0 => 64,
                n => n,
            };
            if leading + significant > 64 {
                return Err(ChunkError::Corrupt(format!(
                    "xor window of {leading} leading zeros and {significant} bits"
                )));
            }
            self.window = Some(Window {
                leading,
                trailing: 64 - leading - significant,
            });
        }
        let win = self
            .window
            .ok_or_else(|| ChunkError::Corrupt("xor window reused before set".into()))?;
        self.v ^= self.r.read_bits(win.width())? << win.trailing;
        Ok(())
    }

    /// Checks that nothing but zero padding follows the last sample.
    fn check_end(&self) -> Result<(), ChunkError> {
        if self.r.is_at_padding() {
            Ok(())
        } else {
            Err(ChunkError::Corrupt("data after the last sample".into()))
        }
    }
}

impl Iterator for ChunkDecoder<'_> {
    type Item = Result<(i64, f64), ChunkError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let result = if self.read == self.total {
            self.done = true;
            match self.check_end() {
                Ok(()) => return None,
                Err(e) => Err(e),
            }
        } else {
            self.read_sample()
        };
        if result.is_err() {
            self.done = true;
        }
        Some(result)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        if self.done {
            return (0, Some(0));
        }
        // One more item when the end check fails.
        let left = usize::from(self.total - self.read);
        (0, Some(left + 1))
    }
}

/// Returns every sample of a chunk, or the first error.
pub fn decode_all(bytes: &[u8]) -> Result<Vec<(i64, f64)>, ChunkError> {
    let decoder = ChunkDecoder::new(bytes)?;
    let mut out = Vec::with_capacity(decoder.num_samples());
    for sample in decoder {
        out.push(sample?);
    }
    Ok(out)
}

/// Appends bits, most significant first, after a zeroed header.
#[derive(Debug, Clone)]
struct BitWriter {
    buf: Vec<u8>,
    /// Unwritten low bits of the last byte.
    free: u32,
}

impl BitWriter {
    fn new() -> Self {
        Self {
            buf: vec![0; HEADER_LEN],
            free: 0,
        }
    }

    /// Writes the low `n` (at most 64) bits of `value`.
    fn write_bits(&mut self, value: u64, mut n: u32) {
        debug_assert!(n <= 64);
        while n > 0 {
            if self.free == 0 {
                self.buf.push(0);
                self.free = 8;
            }
            let take = n.min(self.free);
            n -= take;
            let part = (value >> n) & ((1 << take) - 1);
            if let Some(last) = self.buf.last_mut() {
                *last |= (part as u8) << (self.free - take);
            }
            self.free -= take;
        }
    }

    /// Writes `value` as an unsigned LEB128 varint, 8 bits per group.
    fn write_varint(&mut self, mut value: u64) {
        while value >= 0x80 {
            self.write_bits((value & 0x7f) | 0x80, 8);
            value >>= 7;
        }
        self.write_bits(value, 8);
    }
}

/// Reads bits written by [`BitWriter`], through a 64-bit buffer refilled
/// a word at a time: a sample costs a few shifts, not a load per bit.
#[derive(Debug, Clone)]
struct BitReader<'a> {
    data: &'a [u8],
    /// The next byte of `data` to load into `buf`.
    next: usize,
    /// The loaded bits not read yet, from the top bit down.
    buf: u64,
    /// How many bits of `buf` are loaded.
    avail: u32,
}

impl<'a> BitReader<'a> {
    fn new(data: &'a [u8]) -> Self {
        Self {
            data,
            next: 0,
            buf: 0,
            avail: 0,
        }
    }

    /// Loads whole bytes into `buf` until it holds more than 56 bits or
    /// `data` ends.
    fn refill(&mut self) {
        if let Some(b) = self.data.get(self.next..self.next + 8) {
            let word = u64::from_be_bytes(b.try_into().expect("eight bytes"));
            // Whole bytes only; a buffer with more than 56 bits loads none.
            let bytes = (64 - self.avail) / 8;
            if bytes > 0 {
                self.buf |= word >> self.avail;
                self.avail += bytes * 8;
                self.next += bytes as usize;
                // Drop the bits of the word past the loaded bytes.
                self.buf &= !(u64::MAX.checked_shr(self.avail).unwrap_or(0));
            }
            return;
        }
        while self.avail <= 56 && self.next < self.data.len() {
            self.buf |= u64::from(self.data[self.next]) << (56 - self.avail);
            self.avail += 8;
            self.next += 1;
        }
    }

    /// Takes the top `n` (1 to `avail`) bits of the buffer.
    fn take(&mut self, n: u32) -> u64 {
        let value = self.buf >> (64 - n);
        self.buf = self.buf.checked_shl(n).unwrap_or(0);
        self.avail -= n;
        value
    }

    /// Returns how many bits are left to read.
    fn left(&self) -> usize {
        (self.data.len() - self.next) * 8 + self.avail as usize
    }

    fn read_bit(&mut self) -> Result<bool, ChunkError> {
        if self.avail == 0 {
            self.refill();
            if self.avail == 0 {
                return Err(ChunkError::Truncated);
            }
        }
        Ok(self.take(1) == 1)
    }

    /// Reads `n` (at most 64) bits.
    fn read_bits(&mut self, n: u32) -> Result<u64, ChunkError> {
        debug_assert!(n <= 64);
        if n == 0 {
            return Ok(0);
        }
        if n > self.avail {
            if self.left() < n as usize {
                return Err(ChunkError::Truncated);
            }
            self.refill();
            if n > self.avail {
                // More than the buffer holds after a refill (at most 64
                // bits asked, at least 57 loaded): two parts.
                let high_bits = self.avail;
                let high = self.take(high_bits);
                self.refill();
                let rest = n - high_bits;
                return Ok((high << rest) | self.take(rest));
            }
        }
        Ok(self.take(n))
    }

    fn read_varint(&mut self) -> Result<u64, ChunkError> {
        let mut value = 0u64;
        for i in 0..10 {
            let group = self.read_bits(8)?;
            if i == 9 && group > 1 {
                return Err(ChunkError::Corrupt("varint overflows 64 bits".into()));
            }
            value |= (group & 0x7f) << (7 * i);
            if group & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(ChunkError::Corrupt("varint longer than 10 bytes".into()))
    }

    /// Returns whether only the zero padding of the last byte is left.
    fn is_at_padding(&self) -> bool {
        // Bits left: the loaded ones and the bytes not loaded yet.
        if self.left() >= 8 {
            return false;
        }
        // Fewer than 8 bits are left, all of them loaded.
        self.buf == 0
    }
}

#[cfg(test)]
mod tests;
