//! A small deterministic generator (xorshift64*) for property tests,
//! simulations and benchmark inputs: the same seed gives the same sequence,
//! so a failure or a figure reproduces. Not for anything that needs
//! unpredictability.

/// xorshift64*. The seed must not be 0 (the sequence would stay 0).
#[derive(Clone, Debug)]
pub struct XorShift(u64);

impl XorShift {
    pub fn new(seed: u64) -> Self {
        XorShift(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Returns a number in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// Returns an index in `0..n` (n > 0).
    pub fn index(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// Returns a number in `lo..=hi` (a span below 2^63).
    pub fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next_u64() % (hi - lo + 1) as u64) as i64
    }

    /// Returns a number in `0.0..1.0`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Returns true with probability 1/n.
    pub fn one_in(&mut self, n: usize) -> bool {
        self.index(n) == 0
    }

    /// Returns true with probability `percent`/100.
    pub fn chance(&mut self, percent: usize) -> bool {
        self.index(100) < percent
    }

    /// Returns one of `items` (not empty).
    pub fn pick<'t, T>(&mut self, items: &'t [T]) -> &'t T {
        &items[self.index(items.len())]
    }

    /// Returns a copy of one of `items` (not empty).
    pub fn choose<T: Copy>(&mut self, items: &[T]) -> T {
        *self.pick(items)
    }
}

#[cfg(test)]
mod tests {
    use super::XorShift;

    #[test]
    fn a_seed_gives_the_same_sequence_and_ranges_hold() {
        let mut a = XorShift::new(7);
        let mut b = XorShift::new(7);
        let xs: Vec<u64> = (0..4).map(|_| a.next_u64()).collect();
        assert_eq!(xs, (0..4).map(|_| b.next_u64()).collect::<Vec<_>>());
        assert_ne!(xs[0], xs[1]);
        for _ in 0..1000 {
            assert!((-3..=5).contains(&a.range(-3, 5)));
            assert!((0.0..1.0).contains(&a.unit()));
            assert!(a.index(3) < 3);
        }
    }
}
