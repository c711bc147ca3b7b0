//! Embedding pmsm as a service: the servers hold a rule set; clients that know only its
//! interface open long-lived sessions, push text as it arrives, and ask for the accept
//! bit whenever they like. Sessions of every client share the servers' waves.
//!
//! ```sh
//! cargo run --release -p pmsm-engine --example service
//! ```

use pmsm_engine::Error;
use pmsm_engine::dfa::regex::{RegexConfig, compile};
use pmsm_engine::protocol::{Protocol, Reveal};
use pmsm_engine::service::Service;

fn main() -> Result<(), Error> {
    // The machine's owner fixes the protocol and the output policy on the servers.
    let rules = [r"(?:AKIA|ASIA)[0-9A-Z]{16}".to_string(), r"-----BEGIN [A-Z ]*PRIVATE KEY-----".to_string()];
    let dfa = compile(&rules, &RegexConfig::default())?;
    let service = Service::builder().machine("secrets", dfa, Protocol::LookupXor, Reveal::Accept).start()?;

    // A client is given the interface: alphabet, share widths, policy. No table.
    let client = service.connect("secrets")?;
    println!("interface: {}", client.interface().to_json());

    // A log stream, one line at a time, into one session; a release after each line.
    let mut session = client.open()?;
    for line in ["user logged in", "config: aws_key=AKIAIOSFODNN7EX", "AMPLE and more", "logged out"] {
        client.push_text(&mut session, line)?;
        let out = client.release(&mut session)?;
        println!(
            "{:>5} after {:>3} symbols  ({line})",
            if out.accept == Some(true) { "HIT" } else { "clean" },
            out.symbols
        );
    }
    client.close(session)?;

    // Many clients at once: their sessions are batched together by server 0.
    std::thread::scope(|scope| {
        for t in 0..4 {
            let client = service.connect("secrets").expect("served");
            scope.spawn(move || {
                let mut s = client.open().expect("open");
                client.push_text(&mut s, format!("thread {t}: -----BEGIN RSA PRIVATE KEY-----")).expect("push");
                assert_eq!(client.release(&mut s).expect("release").accept, Some(true));
                client.close(s).expect("close");
            });
        }
    });
    let stats = service.stats();
    println!(
        "{} waves, {} transitions (both servers count)",
        stats.waves.load(std::sync::atomic::Ordering::Relaxed),
        stats.transitions.load(std::sync::atomic::Ordering::Relaxed)
    );
    service.shutdown()?;
    Ok(())
}
