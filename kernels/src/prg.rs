//! The fixed-key AES PRG, Matyas–Meyer–Oseas form.
//!
//! `H(x) = AES_K(x) ⊕ x` with one public key `K` fixed for all of pmsm ([`PRG_KEY`]),
//! modelled as a correlation-robust hash (Guo–Katz–Wang–Yu, S&P 2020). The DPF's
//! length-doubling PRG is `G(s) = (H(s ⊕ TWEAK_LEFT), H(s ⊕ TWEAK_RIGHT))` for seeds
//! whose least significant bit is zero, so the two inputs differ and no two seeds of a
//! tree collide except with probability ~2^-127 (DESIGN §4: "one key and a tweak").
//! The DPF's last level fans out in counter mode, `H(s ⊕ j)` for `j < F ≤ 16`: the same
//! tweaks extended to the low bits, distinct inputs for distinct `(s, j)` except with
//! the same negligible probability.
//!
//! The key schedule is computed once per process ([`FixedKeyPrg::get`]). The `aes`
//! crate selects VAES-512, AES-NI or a constant-time bitsliced fallback at run time;
//! calling [`FixedKeyPrg::hash_in_place`] on many blocks at once lets it keep every
//! AES unit busy (the reason the DPF expands trees level by level).
//!
//! Blocks are `u128` read from 16 little-endian bytes.

use aes::Aes128;
use aes::cipher::{Array, BlockCipherEncrypt, KeyInit};
use std::sync::OnceLock;

#[cfg(target_endian = "big")]
compile_error!("pmsm-kernels assumes a little-endian target (u128 blocks are AES byte order)");

/// The public AES key: the first 16 bytes of SHA-256("pmsm fixed-key AES PRG v1").
pub const PRG_KEY: [u8; 16] =
    [0x90, 0x5c, 0x64, 0x50, 0xdb, 0x5c, 0xaa, 0xa1, 0x39, 0x73, 0x21, 0xbf, 0x45, 0xdd, 0xc6, 0x35];

/// Domain separation: XORed into a seed (lsb clear) to derive its left child.
pub const TWEAK_LEFT: u128 = 0;
/// Domain separation: XORed into a seed (lsb clear) to derive its right child.
pub const TWEAK_RIGHT: u128 = 1;

/// Blocks processed per AES call in [`FixedKeyPrg::hash_in_place`].
const BATCH: usize = 256;

/// The process-wide fixed-key AES permutation.
pub struct FixedKeyPrg {
    cipher: Aes128,
    /// The expanded key, for kernels that run AES rounds themselves (public: the key is).
    round_keys: RoundKeys,
}

/// The eleven AES-128 round keys, each as a block (16 bytes little-endian, the order
/// the AES instructions read them in).
pub(crate) type RoundKeys = [u128; 11];

/// The AES S-box, computed from its definition (inverse in GF(2^8), then the affine map):
/// `p` walks the multiplicative group by powers of 3 while `q` walks it by powers of 3⁻¹.
fn sbox() -> [u8; 256] {
    let mut sbox = [0u8; 256];
    let (mut p, mut q) = (1u8, 1u8);
    loop {
        p ^= (p << 1) ^ if p & 0x80 != 0 { 0x1b } else { 0 };
        q ^= q << 1;
        q ^= q << 2;
        q ^= q << 4;
        if q & 0x80 != 0 {
            q ^= 0x09;
        }
        let x = q ^ q.rotate_left(1) ^ q.rotate_left(2) ^ q.rotate_left(3) ^ q.rotate_left(4);
        sbox[p as usize] = x ^ 0x63;
        if p == 1 {
            break;
        }
    }
    sbox[0] = 0x63;
    sbox
}

/// The AES-128 key schedule (FIPS-197 §5.2).
fn expand_key(key: [u8; 16]) -> RoundKeys {
    let sbox = sbox();
    let mut w = [[0u8; 4]; 44];
    for (i, word) in w.iter_mut().take(4).enumerate() {
        word.copy_from_slice(&key[4 * i..4 * i + 4]);
    }
    let mut rcon = 1u8;
    for i in 4..44 {
        let mut t = w[i - 1];
        if i % 4 == 0 {
            t = [sbox[t[1] as usize] ^ rcon, sbox[t[2] as usize], sbox[t[3] as usize], sbox[t[0] as usize]];
            rcon = (rcon << 1) ^ if rcon & 0x80 != 0 { 0x1b } else { 0 };
        }
        w[i] = core::array::from_fn(|b| w[i - 4][b] ^ t[b]);
    }
    core::array::from_fn(|r| {
        let bytes: [u8; 16] = core::array::from_fn(|b| w[4 * r + b / 4][b % 4]);
        u128::from_le_bytes(bytes)
    })
}

impl core::fmt::Debug for FixedKeyPrg {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("FixedKeyPrg(AES-128, public key)")
    }
}

static PRG: OnceLock<FixedKeyPrg> = OnceLock::new();

impl FixedKeyPrg {
    /// The shared instance (key schedule computed on first use).
    pub fn get() -> &'static FixedKeyPrg {
        PRG.get_or_init(|| FixedKeyPrg::with_key(PRG_KEY))
    }

    /// A PRG under another key (tests and known-answer checks).
    pub fn with_key(key: [u8; 16]) -> FixedKeyPrg {
        FixedKeyPrg { cipher: Aes128::new(&Array::from(key)), round_keys: expand_key(key) }
    }

    /// The expanded key (for the fused DPF kernels).
    pub(crate) fn round_keys(&self) -> &RoundKeys {
        &self.round_keys
    }

    /// Raw AES encryption of each block in place (no feed-forward).
    pub fn encrypt_in_place(&self, blocks: &mut [u128]) {
        let bytes: &mut [[u8; 16]] = bytemuck::cast_slice_mut(blocks);
        self.cipher.encrypt_blocks(Array::cast_slice_from_core_mut(bytes));
    }

    /// `x ← AES(x) ⊕ x` for every block, many blocks per AES call.
    pub fn hash_in_place(&self, blocks: &mut [u128]) {
        let mut saved = [0u128; BATCH];
        for chunk in blocks.chunks_mut(BATCH) {
            let saved = &mut saved[..chunk.len()];
            saved.copy_from_slice(chunk);
            self.encrypt_in_place(chunk);
            for (x, s) in chunk.iter_mut().zip(saved.iter()) {
                *x ^= *s;
            }
        }
    }

    /// `H(x) = AES(x) ⊕ x` for one block.
    #[inline]
    pub fn hash(&self, x: u128) -> u128 {
        let mut b = [x];
        self.hash_in_place(&mut b);
        b[0]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(hex: &str) -> u128 {
        let mut b = [0u8; 16];
        for (i, byte) in b.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap();
        }
        u128::from_le_bytes(b)
    }

    #[test]
    fn fips197_appendix_c1_known_answer() {
        let key = block("000102030405060708090a0b0c0d0e0f").to_le_bytes();
        let mut b = [block("00112233445566778899aabbccddeeff")];
        FixedKeyPrg::with_key(key).encrypt_in_place(&mut b);
        assert_eq!(b[0], block("69c4e0d86a7b0430d8cdb78070b4c55a"));
    }

    #[test]
    fn hash_is_mmo_and_batches_agree_with_singles() {
        let prg = FixedKeyPrg::get();
        let xs: Vec<u128> = (0..1000u128).map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835)).collect();
        let mut batch = xs.clone();
        prg.hash_in_place(&mut batch);
        for (x, h) in xs.iter().zip(&batch) {
            let mut e = [*x];
            prg.encrypt_in_place(&mut e);
            assert_eq!(*h, e[0] ^ x);
            assert_eq!(prg.hash(*x), *h);
        }
    }

    #[test]
    fn key_schedule_matches_fips197_appendix_a1() {
        let s = sbox();
        assert_eq!((s[0x00], s[0x01], s[0x53], s[0xff]), (0x63, 0x7c, 0xed, 0x16));
        let rk = expand_key(block("2b7e151628aed2a6abf7158809cf4f3c").to_le_bytes());
        assert_eq!(rk[0], block("2b7e151628aed2a6abf7158809cf4f3c"));
        assert_eq!(rk[1], block("a0fafe1788542cb123a339392a6c7605"));
        assert_eq!(rk[10], block("d014f9a8c9ee2589e13f0cc8b6630ca6"));
    }

    #[test]
    fn key_constant_is_the_documented_hash_prefix() {
        // Guards against an accidental edit of PRG_KEY (hex of the documented SHA-256 prefix).
        let hex: String = PRG_KEY.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, "905c6450db5caaa1397321bf45ddc635");
    }
}
