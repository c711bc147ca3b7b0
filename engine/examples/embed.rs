//! Embedding pmsm: compile a rule set, run a batch privately, read the outputs and the
//! communication report.
//!
//! ```sh
//! cargo run --release -p pmsm-engine --example embed
//! ```

use pmsm_engine::dfa::regex::{RegexConfig, compile};
use pmsm_engine::protocol::{Protocol, Reveal};
use pmsm_engine::transport::Link;
use pmsm_engine::{Engine, Error};

fn main() -> Result<(), Error> {
    // The servers know the machine; the client's texts stay secret-shared.
    let patterns = vec![r"(?:AKIA|ASIA)[0-9A-Z]{16}".to_string(), r"-----BEGIN [A-Z ]*PRIVATE KEY-----".to_string()];
    let dfa = compile(&patterns, &RegexConfig::default())?;
    let engine = Engine::builder(dfa)
        .protocol(Protocol::LookupXor) // boolean shares: the fast path
        .reveal(Reveal::Accept) // the client learns one bit per text
        .chunk(1024) // instances whose openings travel in one frame
        .threads(2) // the dealer's key-generation workers
        .build()?;
    println!(
        "lookup domain 2^{}, symbol classes: {:?}",
        engine.plan().unwrap().step_bits(),
        engine.plan().unwrap().classes.as_ref().map(|c| c.count)
    );

    // Any byte strings: &str, String, Vec<u8>, &[u8].
    let texts =
        ["nothing to see here", "aws_access_key_id = AKIAIOSFODNN7EXAMPLE", "-----BEGIN RSA PRIVATE KEY-----", ""];
    let report = engine.run_texts(&texts)?;
    for (text, out) in texts.iter().zip(&report.outputs) {
        println!("{:>5}  {text}", if out.accept == Some(true) { "HIT" } else { "clean" });
    }
    println!("{} transitions in {:.3} s", report.transitions, report.seconds);
    for link in Link::ALL {
        println!("{:>14}: {} bits", link.name(), report.bytes.get(link) * 8);
    }
    Ok(())
}
