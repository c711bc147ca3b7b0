//! Fuzzes every decoder of untrusted bytes: the stream envelope, the handshake, the
//! session spec, protocol frames and DPF keys (`pmsm_engine::fuzzing`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    pmsm_engine::fuzzing::decode_untrusted(data);
});
