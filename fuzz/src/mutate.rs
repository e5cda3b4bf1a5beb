//! Deterministic input generation for the stable runner: a seeded SplitMix64
//! generator, random byte strings, and libFuzzer-style mutations of corpus
//! entries (bit flips, interesting values, inserts, deletes, splices).
//!
//! Everything here is a pure function of the seed, so a failing input found
//! by `tests/corpus.rs` is reproduced by re-running the test, and the test
//! prints it for the corpus.

/// A small seeded generator (SplitMix64): deterministic, no global state.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator started at `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A value in `0..n` (`0` when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next_u64() % n as u64) as usize
        }
    }

    /// A random byte.
    pub fn byte(&mut self) -> u8 {
        self.next_u64() as u8
    }
}

/// `len` random bytes, biased towards small values and zero runs the way real
/// formats are (about half the bytes are small).
pub fn random_bytes(rng: &mut Rng, len: usize) -> Vec<u8> {
    (0..len)
        .map(|_| match rng.below(4) {
            0 => 0,
            1 => rng.byte() & 0x0f,
            _ => rng.byte(),
        })
        .collect()
}

/// Values that sit on boundaries of the formats' integer fields.
const INTERESTING_U32: [u32; 10] = [
    0,
    1,
    0x7f,
    0x80,
    0xff,
    0xffff,
    0x7fff_ffff,
    0x8000_0000,
    0xffff_ffff,
    16,
];

/// One to four random mutations of `input`; `other` is spliced from.
pub fn mutate(rng: &mut Rng, input: &[u8], other: &[u8], max_len: usize) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..1 + rng.below(4) {
        mutate_once(rng, &mut out, other);
    }
    out.truncate(max_len);
    out
}

fn mutate_once(rng: &mut Rng, out: &mut Vec<u8>, other: &[u8]) {
    let len = out.len();
    match rng.below(9) {
        0 if len > 0 => {
            let i = rng.below(len);
            out[i] ^= 1 << rng.below(8);
        }
        1 if len > 0 => {
            let i = rng.below(len);
            out[i] = rng.byte();
        }
        2 if len >= 4 => {
            let i = rng.below(len - 3);
            let v = INTERESTING_U32[rng.below(INTERESTING_U32.len())];
            out[i..i + 4].copy_from_slice(&v.to_le_bytes());
        }
        3 => {
            let i = rng.below(len + 1);
            let n = 1 + rng.below(8);
            let bytes = random_bytes(rng, n);
            out.splice(i..i, bytes);
        }
        4 if len > 0 => {
            let i = rng.below(len);
            let n = 1 + rng.below((len - i).min(16));
            out.drain(i..i + n);
        }
        5 => {
            let keep = rng.below(len + 1);
            out.truncate(keep);
        }
        6 if len > 0 => {
            let i = rng.below(len);
            let n = 1 + rng.below((len - i).min(32));
            let copy = out[i..i + n].to_vec();
            let at = rng.below(len + 1);
            out.splice(at..at, copy);
        }
        7 if !other.is_empty() => {
            let from = rng.below(other.len());
            let n = 1 + rng.below((other.len() - from).min(64));
            let at = rng.below(len + 1);
            let end = (at + n).min(len);
            out.splice(at..end, other[from..from + n].iter().copied());
        }
        _ => {
            let i = rng.below(len + 1);
            out.insert(i, rng.byte());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_inputs() {
        let run = |seed| {
            let mut rng = Rng::new(seed);
            let base = random_bytes(&mut rng, 64);
            (0..32)
                .map(|_| mutate(&mut rng, &base, b"other", 128))
                .collect::<Vec<_>>()
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
    }

    #[test]
    fn mutations_respect_max_len() {
        let mut rng = Rng::new(1);
        let base = vec![0xAA; 100];
        for _ in 0..1000 {
            assert!(mutate(&mut rng, &base, &base, 100).len() <= 100);
        }
    }
}
