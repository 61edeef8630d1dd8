//! A cursor over the fuzzer's bytes. Every read succeeds: past the end it yields zeros,
//! so any byte string (including the empty one) decodes to some input.

/// The fuzzer's bytes, consumed from the front.
pub struct Input<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Input<'a> {
    /// A cursor at the start of `data`.
    pub fn new(data: &'a [u8]) -> Self {
        Self { data, pos: 0 }
    }

    /// Whether every byte was consumed.
    pub fn is_empty(&self) -> bool {
        self.pos >= self.data.len()
    }

    /// The next byte, 0 past the end.
    pub fn u8(&mut self) -> u8 {
        let b = self.data.get(self.pos).copied().unwrap_or(0);
        self.pos = self.pos.saturating_add(1);
        b
    }

    /// `N` bytes, zero-filled past the end.
    pub fn array<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        for b in &mut out {
            *b = self.u8();
        }
        out
    }

    /// A big-endian u16.
    pub fn u16(&mut self) -> u16 {
        u16::from_be_bytes(self.array())
    }

    /// A big-endian u32.
    pub fn u32(&mut self) -> u32 {
        u32::from_be_bytes(self.array())
    }

    /// A big-endian u64.
    pub fn u64(&mut self) -> u64 {
        u64::from_be_bytes(self.array())
    }

    /// One bit's worth of choice.
    pub fn bool(&mut self) -> bool {
        self.u8() & 1 != 0
    }

    /// A value in `0..n` (`n` > 0; 0 for `n` == 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            return 0;
        }
        let v = if n <= 0x100 {
            self.u8() as u64
        } else if n <= 0x1_0000 {
            self.u16() as u64
        } else {
            self.u64()
        };
        v % n
    }

    /// `len` bytes (zero-filled past the end).
    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.u8()).collect()
    }

    /// Fill `out` with a pattern drawn from the input: a repeated seed byte, a counter,
    /// or the input bytes themselves.
    pub fn fill(&mut self, out: &mut [u8]) {
        let kind = self.u8();
        let seed = self.u8();
        match kind % 4 {
            0 => out.fill(seed),
            1 => {
                for (i, b) in out.iter_mut().enumerate() {
                    *b = seed.wrapping_add(i as u8);
                }
            }
            _ => {
                let n = (self.below(64) + 1) as usize;
                let pat = self.bytes(n);
                for (i, b) in out.iter_mut().enumerate() {
                    *b = pat[i % n];
                }
            }
        }
    }
}
