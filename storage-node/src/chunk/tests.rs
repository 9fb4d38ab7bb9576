use scrapegrid_proto::STALE_NAN_BITS;

use super::*;
use scrapegrid_common::xorshift::XorShift as Rng;

fn encode(samples: &[(i64, f64)]) -> Vec<u8> {
    let mut enc = ChunkEncoder::new();
    for &(t, v) in samples {
        enc.append(t, v).unwrap();
    }
    assert_eq!(enc.len(), samples.len());
    enc.finish()
}

/// Asserts that `samples` round-trip bit-exactly, through `decode_all` and
/// through the decoder after every append.
fn assert_round_trip(name: &str, samples: &[(i64, f64)]) {
    let bits = |s: &[(i64, f64)]| s.iter().map(|&(t, v)| (t, v.to_bits())).collect::<Vec<_>>();
    let mut enc = ChunkEncoder::new();
    for (i, &(t, v)) in samples.iter().enumerate() {
        enc.append(t, v).unwrap();
        let decoded = decode_all(enc.bytes()).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(bits(&decoded), bits(&samples[..=i]), "{name} after {i}");
    }
    let bytes = enc.finish();
    let decoded: Vec<_> = ChunkDecoder::new(&bytes)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(bits(&decoded), bits(samples), "{name}");
}

/// Samples at `ts` with values `vs`, cycled.
fn zip(ts: &[i64], vs: &[f64]) -> Vec<(i64, f64)> {
    ts.iter()
        .zip(vs.iter().cycle())
        .map(|(&t, &v)| (t, v))
        .collect()
}

fn every(start: i64, step: i64, n: i64) -> Vec<i64> {
    (0..n).map(|i| start + i * step).collect()
}

const EDGE_VALUES: [f64; 16] = [
    0.0,
    -0.0,
    f64::INFINITY,
    f64::NEG_INFINITY,
    f64::MIN_POSITIVE,
    -f64::MIN_POSITIVE,
    f64::MAX,
    f64::MIN,
    f64::EPSILON,
    1.0,
    -1.0,
    12_345.678,
    // Stale marker, a normal NaN, the smallest subnormal, the largest.
    f64::from_bits(STALE_NAN_BITS),
    f64::from_bits(0x7ff8_0000_0000_0001),
    f64::from_bits(1),
    f64::from_bits(0x000f_ffff_ffff_ffff),
];

#[test]
fn round_trips_table() {
    let start = 1_700_000_000_000;
    let jitter = [0, 1, -1, 1, 0, -1, -1, 1, 0, 1];
    let jittered: Vec<i64> = (0..40)
        .map(|i| start + i * 15_000 + jitter[i as usize % jitter.len()])
        .collect();
    let irregular = [
        start,
        start + 1,
        start + 15_000,
        start + 15_001,
        start + 75_000,
        start + 75_016,
        start + 75_032,
        start + 3_675_032,
        start + 3_675_033,
        start + 90_000_000_000,
        start + 90_000_000_001,
    ];
    let counter_with_resets = [10.0, 12.0, 15.0, 0.0, 3.0, 3.0, 1e9, 0.0, 0.5];
    let cases: Vec<(&str, Vec<(i64, f64)>)> = vec![
        ("empty", vec![]),
        ("single sample", vec![(start, 42.0)]),
        (
            "single stale marker",
            vec![(-5, f64::from_bits(STALE_NAN_BITS))],
        ),
        ("edge values", zip(&every(start, 15_000, 48), &EDGE_VALUES)),
        ("edge values reversed", {
            let mut vs = EDGE_VALUES;
            vs.reverse();
            zip(&every(start, 1, 32), &vs)
        }),
        (
            "stale after values",
            zip(
                &every(0, 15_000, 6),
                &[
                    1.0,
                    2.0,
                    f64::from_bits(STALE_NAN_BITS),
                    f64::from_bits(STALE_NAN_BITS),
                    3.0,
                ],
            ),
        ),
        ("constant", zip(&every(start, 15_000, 120), &[7.5])),
        ("jitter ±1ms", zip(&jittered, &[1.0, 2.0, 2.0, 3.5])),
        ("irregular intervals", zip(&irregular, &[5.0, 6.0])),
        (
            "counter resets",
            zip(&every(start, 30_000, 9), &counter_with_resets),
        ),
        (
            "negative timestamps",
            zip(&every(-1_000_000, 333, 20), &[-1.0, 1.0]),
        ),
        (
            "i64 extremes",
            zip(
                &[i64::MIN, i64::MIN + 1, -1, 0, 1, i64::MAX - 1, i64::MAX],
                &EDGE_VALUES,
            ),
        ),
        ("only the extremes", zip(&[i64::MIN, i64::MAX], &[1.0])),
        (
            "huge then tiny deltas",
            zip(&[i64::MIN, 0, 1, 2, i64::MAX], &[1.0]),
        ),
    ];
    for (name, samples) in &cases {
        assert_round_trip(name, samples);
    }
}

/// Every delta-of-delta bucket, at both ends of its range and just past it.
#[test]
fn round_trips_bucket_boundaries() {
    for bits in [5u32, 14, 20, 32] {
        let half = 1i64 << (bits - 1);
        for dod in [-half - 1, -half, -half + 1, -1, 1, half - 1, half] {
            let base = 1i64 << 40;
            // Deltas base, base + dod, base: two delta-of-deltas, ±dod,
            // first in the steady context, then in the other one.
            let ts = [0, base, 2 * base + dod, 3 * base + dod, 4 * base + 2 * dod];
            assert_round_trip(&format!("dod {dod}"), &zip(&ts, &[1.0, 2.0]));
        }
    }
}

#[test]
fn round_trips_random_sequences() {
    let mut rng = Rng::new(0x5eed_1234_abcd_ef01);
    for case in 0..500 {
        let n = rng.range(0, 300) as usize;
        let mut t = match rng.range(0, 3) {
            0 => i64::MIN,
            1 => rng.range(-1 << 50, 1 << 50),
            _ => 1_700_000_000_000,
        };
        let interval = rng.range(1, 60_000);
        let mut v = 0.0f64;
        let mut samples = Vec::with_capacity(n);
        for _ in 0..n {
            let step = match rng.range(0, 9) {
                0 => rng.range(1, i64::MAX >> 20),
                1 => 1,
                2..=5 => interval,
                _ => (interval + rng.range(-5, 5)).max(1),
            };
            let Some(next) = t.checked_add(step) else {
                break;
            };
            t = next;
            v = match rng.range(0, 9) {
                0 => f64::from_bits(rng.next_u64()),
                1 => EDGE_VALUES[rng.range(0, EDGE_VALUES.len() as i64 - 1) as usize],
                2 | 3 => v,
                4 => 0.0,
                5 => v + 0.1 * rng.range(0, 100) as f64,
                _ => v + rng.range(0, 5) as f64,
            };
            samples.push((t, v));
        }
        let bytes = encode(&samples);
        let decoded = decode_all(&bytes).unwrap_or_else(|e| panic!("case {case}: {e}"));
        let same = decoded.len() == samples.len()
            && decoded
                .iter()
                .zip(&samples)
                .all(|(a, b)| a.0 == b.0 && a.1.to_bits() == b.1.to_bits());
        assert!(same, "case {case}");
    }
}

#[test]
fn append_rejects_timestamps_that_do_not_increase() {
    let mut enc = ChunkEncoder::new();
    enc.append(100, 1.0).unwrap();
    let before = enc.bytes().to_vec();
    for t in [100, 99, i64::MIN] {
        assert_eq!(
            enc.append(t, 2.0),
            Err(ChunkError::NotIncreasing { prev: 100, t })
        );
    }
    assert_eq!(enc.bytes(), before);
    assert_eq!(enc.len(), 1);
    enc.append(101, 2.0).unwrap();
    assert_eq!(decode_all(enc.bytes()).unwrap(), [(100, 1.0), (101, 2.0)]);
}

#[test]
fn append_stops_at_the_count_limit() {
    let mut enc = ChunkEncoder::new();
    for t in 0..i64::from(u16::MAX) {
        enc.append(t, 1.0).unwrap();
    }
    assert_eq!(enc.append(i64::MAX, 1.0), Err(ChunkError::Full));
    let decoded = decode_all(enc.bytes()).unwrap();
    assert_eq!(decoded.len(), usize::from(u16::MAX));
    assert_eq!(decoded.last(), Some(&(i64::from(u16::MAX) - 1, 1.0)));
}

/// Pins the layout: issue 4 stores these bytes.
#[test]
fn layout_is_stable() {
    assert_eq!(ChunkEncoder::new().finish(), [0, 0]);
    // 1.0 XOR 0.0 opens a window: `11`, 2 leading zeros (00010), 10
    // significant bits (001010), 1111111111.
    let one = "11 00010 001010 1111111111";
    // t = -1 (zigzag 1), 1.0; +2ms (varint 2), same value `0`; +2ms again
    // from the steady context, same value: one `0` bit.
    let bytes = encode(&[(-1, 1.0), (1, 1.0), (3, 1.0)]);
    assert_eq!(bytes, pack(&[0, 3, 1], &format!("{one} 00000010 0 0")));
    // Delta 10, same value; then a +1ms jitter (dod 1) from the steady
    // context: `11`, class 1 (`0`), 5 bits 00001, same value `0`.
    let bytes = encode(&[(0, 1.0), (10, 1.0), (21, 1.0)]);
    assert_eq!(
        bytes,
        pack(&[0, 3, 0], &format!("{one} 00001010 0 11 0 00001 0"))
    );
    assert_eq!(bytes, [0, 3, 0, 0xc4, 0x57, 0xfe, 0x14, 0xc1, 0x00]);
    // Then a jittered sample outside the steady context: class 1 is `10`.
    let bytes = encode(&[(0, 1.0), (10, 1.0), (21, 1.0), (31, 1.0)]);
    assert_eq!(
        bytes,
        pack(
            &[0, 4, 0],
            &format!("{one} 00001010 0 11 0 00001 0 10 11111 0")
        )
    );
}

/// Returns `bytes` followed by the bits of `bits` (spaces ignored), padded.
fn pack(bytes: &[u8], bits: &str) -> Vec<u8> {
    let bits: Vec<u8> = bits
        .bytes()
        .filter(|b| *b != b' ')
        .map(|b| b - b'0')
        .collect();
    let mut out = bytes.to_vec();
    for byte in bits.chunks(8) {
        let v = byte.iter().fold(0u8, |acc, b| (acc << 1) | b);
        out.push(v << (8 - byte.len()));
    }
    out
}

/// A chunk that exercises every code: jitter, buckets, the escape, windows.
fn varied_chunk() -> Vec<u8> {
    let mut samples = vec![(i64::MIN, f64::from_bits(STALE_NAN_BITS))];
    let mut t = -1_000_000_000i64;
    for (i, step) in [15_000, 15_000, 15_003, 14_998, 30_000, 1, 1 << 40, 15_000]
        .iter()
        .cycle()
        .take(40)
        .enumerate()
    {
        t += step;
        samples.push((t, EDGE_VALUES[i % EDGE_VALUES.len()] + (i % 3) as f64));
    }
    samples.push((i64::MAX, 0.0));
    encode(&samples)
}

#[test]
fn every_truncation_errors() {
    let bytes = varied_chunk();
    for len in 0..bytes.len() {
        let got = decode_all(&bytes[..len]);
        assert_eq!(got, Err(ChunkError::Truncated), "prefix of {len} bytes");
        // The iterator ends with the error, then stays ended.
        if let Ok(mut dec) = ChunkDecoder::new(&bytes[..len]) {
            assert!(dec.by_ref().any(|r| r.is_err()));
            assert!(dec.next().is_none());
        }
    }
    assert!(decode_all(&bytes).is_ok());
}

#[test]
fn decoder_rejects_malformed_chunks() {
    let corrupt = |bytes: &[u8]| matches!(decode_all(bytes), Err(ChunkError::Corrupt(_)));
    let mut trailing = varied_chunk();
    trailing.push(0);
    assert!(corrupt(&trailing), "a byte after the last sample");
    assert!(corrupt(&[0, 0, 0]), "a byte in an empty chunk");
    let mut padding = encode(&[(0, 1.0)]);
    padding.push(0x01);
    assert!(corrupt(&padding), "set padding bits");
    let mut overflow = vec![0, 1];
    overflow.extend([0xff; 10]);
    assert!(corrupt(&overflow), "an 11-byte varint");
    // t 0, 0.0 (`0`), delta 0, 0.0.
    assert!(corrupt(&pack(&[0, 2, 0], "0 00000000 0")), "a zero delta");
    // t i64::MAX (zigzag u64::MAX - 1), 0.0, delta 1, 0.0.
    let mut max = vec![
        0, 2, 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
    ];
    max = pack(&max, "0 00000001 0");
    assert!(corrupt(&max), "a timestamp past i64::MAX");
    // t 0, then a value that reuses the window (`10`) before any was set.
    assert!(
        corrupt(&pack(&[0, 1, 0], "10")),
        "a window reused before set"
    );
    // t 0, a new window of 31 leading zeros and 40 significant bits.
    let window = pack(&[0, 1, 0], &format!("11 11111 101000 {}", "1".repeat(40)));
    assert!(corrupt(&window), "a window wider than 64 bits");
}

#[test]
fn random_corruption_never_panics() {
    let mut rng = Rng::new(0xdead_beef_cafe_f00d);
    let valid = varied_chunk();
    let mut outcomes = [0usize; 2];
    for _ in 0..20_000 {
        let mut bytes = valid.clone();
        for _ in 0..rng.range(1, 4) {
            if bytes.is_empty() {
                break;
            }
            let i = rng.range(0, bytes.len() as i64 - 1) as usize;
            match rng.range(0, 2) {
                0 => bytes[i] ^= 1 << rng.range(0, 7),
                1 => bytes[i] = rng.next_u64() as u8,
                _ => bytes.truncate(i),
            }
        }
        let decoded = decode_all(&bytes);
        // Whatever decodes is a valid chunk: increasing timestamps.
        if let Ok(samples) = &decoded {
            assert!(samples.windows(2).all(|w| w[0].0 < w[1].0));
        }
        outcomes[usize::from(decoded.is_ok())] += 1;
    }
    for _ in 0..5_000 {
        let len = rng.range(0, 64) as usize;
        let bytes: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
        let _ = decode_all(&bytes);
    }
    assert!(outcomes[0] > 0, "corruption is sometimes detected");
}

/// Samples every 15s from a round timestamp (`seed` picks the randomness), with `jitter` ms of uniform
/// jitter, and values from `next`.
fn scrapes(
    seed: u64,
    n: i64,
    jitter: i64,
    mut next: impl FnMut(&mut Rng, f64) -> f64,
) -> Vec<(i64, f64)> {
    let mut rng = Rng::new(0x0123_4567_89ab_cdef ^ seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let mut v = 1_234.0;
    (0..n)
        .map(|i| {
            let t = 1_700_000_000_000 + i * 15_000 + rng.range(-jitter, jitter);
            v = next(&mut rng, v);
            (t, v)
        })
        .collect()
}

fn bytes_per_sample(samples: &[(i64, f64)]) -> f64 {
    encode(samples).len() as f64 / samples.len() as f64
}

#[test]
fn sizes_are_realistic() {
    // A low-rate counter (errors, rare requests): +1 on about a quarter of
    // the scrapes, averaged over chunks from a few seeds (single chunks
    // spread by about ±0.05). Each ±5ms-jittered timestamp alone costs about
    // 7 bits, so busier counters do not fit in 1.4 bytes.
    let sizes: Vec<f64> = (1..=8)
        .map(|seed| {
            let counter = scrapes(seed, 120, 5, |r, v| {
                v + f64::from(u8::from(r.range(0, 3) == 0))
            });
            bytes_per_sample(&counter)
        })
        .collect();
    let mean = sizes.iter().sum::<f64>() / sizes.len() as f64;
    assert!(mean < 1.4, "jittered counter: {sizes:?} bytes/sample");
    // A constant gauge on aligned timestamps: one bit per sample.
    let gauge = scrapes(1, 120, 0, |_, v| v);
    let size = bytes_per_sample(&gauge);
    assert!(size < 0.3, "constant gauge: {size} bytes/sample");
}

/// Bits read back at every width and offset are the bits written, up to
/// the last one; one bit more is `Truncated`.
#[test]
fn bit_reader_reads_what_the_writer_wrote() {
    let mut rng = Rng::new(7);
    for round in 0..200 {
        let mut w = BitWriter::new();
        let mut written = Vec::new();
        for _ in 0..rng.index(40) {
            let n = rng.below(65) as u32;
            let v = match n {
                0 => 0,
                64 => rng.next_u64(),
                n => rng.next_u64() & ((1u64 << n) - 1),
            };
            w.write_bits(v, n);
            written.push((v, n));
        }
        let total: u32 = written.iter().map(|w| w.1).sum();
        let bytes = w.buf[HEADER_LEN..].to_vec();
        let mut r = BitReader::new(&bytes);
        for &(v, n) in &written {
            assert_eq!(r.read_bits(n).unwrap(), v, "round {round}: {n} bits");
        }
        assert!(r.is_at_padding());
        let left = bytes.len() as u32 * 8 - total;
        assert!(r.read_bits(left + 1).is_err());
        assert!(r.read_bits(left).is_ok());
        assert!(r.read_bit().is_err());
    }
}
