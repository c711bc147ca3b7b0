//! Durable sessions in process: a service started again on its servers' stores goes on
//! with every acknowledged push, for its client's identity only; and the stores' refusals.

use pmsm_engine::dfa::random::{random_dfa, random_input};
use pmsm_engine::dfa::regex::RegexConfig;
use pmsm_engine::dfa::set::{Grouping, Policy, compile_rules};
use pmsm_engine::protocol::set::group;
use pmsm_engine::protocol::{ClassMode, Protocol, Reveal};
use pmsm_engine::service::{Options, Service, ServiceError};
use pmsm_engine::store::{Store, stats_of};
use pmsm_kernels::Party;
use pmsm_kernels::rng::WorkloadRng;
use std::path::PathBuf;

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("pmsm-test-store-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[test]
fn sessions_survive_a_restart_on_their_stores() {
    let mut rng = WorkloadRng::seed_from_u64(15);
    for (states, symbols, protocol, reveal) in
        [(30, 4, Protocol::LookupXor, Reveal::State), (50, 256, Protocol::LookupRing, Reveal::Accept)]
    {
        let dfa = random_dfa(states, symbols, &mut rng);
        let dir = scratch(&format!("restart-{protocol}"));
        let (p0, p1) = (dir.join("s0.redb"), dir.join("s1.redb"));
        let start = || Service::builder().machine("m", dfa.clone(), protocol, reveal).stores(&p0, &p1).start().unwrap();
        let service = start();
        let client = service.connect_as("m", "alice").unwrap();
        assert!(client.interface().durable);
        let mut held = Vec::new();
        for k in 0..40 {
            let mut s = client.open().unwrap();
            let mut history = Vec::new();
            for _ in 0..1 + k % 3 {
                let syms = random_input(symbols, 1 + rng.below(30) as usize, &mut rng);
                client.push(&mut s, &syms).unwrap();
                history.extend(syms);
            }
            held.push((s.id(), history));
        }
        drop(client);
        service.shutdown().unwrap();
        let stats = stats_of(&p0).unwrap();
        assert_eq!((stats.party, stats.sessions), (0, 40), "{stats:?}");

        let service = start();
        let stranger = service.connect_as("m", "mallory").unwrap();
        assert!(matches!(stranger.resume(held[0].0), Err(ServiceError::NotOwner { .. })));
        let client = service.connect_as("m", "alice").unwrap();
        for (id, history) in &mut held {
            let mut s = client.resume(*id).unwrap();
            assert_eq!(s.pushed() as usize, history.len(), "session {id}");
            let more = random_input(symbols, rng.below(10) as usize, &mut rng);
            client.push(&mut s, &more).unwrap();
            history.extend(more);
            let out = client.release(&mut s).unwrap();
            let end = dfa.run(history);
            match reveal {
                Reveal::State => assert_eq!(out.final_state, Some(end), "session {id}"),
                Reveal::Accept => assert_eq!(out.accept, Some(dfa.is_accepting(end)), "session {id}"),
            }
            if *id % 2 == 0 {
                client.close(s).unwrap();
            }
        }
        drop(client);
        service.shutdown().unwrap();
        // Closed sessions left the stores; the others stay.
        for p in [&p0, &p1] {
            assert_eq!(stats_of(p).unwrap().sessions, held.iter().filter(|(id, _)| id % 2 == 1).count() as u64);
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[test]
fn a_store_short_of_room_refuses_new_work_and_keeps_the_sessions() {
    let mut rng = WorkloadRng::seed_from_u64(16);
    let dfa = random_dfa(20, 6, &mut rng);
    let dir = scratch("room");
    let (p0, p1) = (dir.join("s0.redb"), dir.join("s1.redb"));
    let start = |reserve: u64| {
        let options = Options { store_reserve: reserve, ..Options::default() };
        Service::builder()
            .machine("m", dfa.clone(), Protocol::LookupXor, Reveal::State)
            .options(options)
            .stores(&p0, &p1)
    };
    let service = start(0).start().unwrap();
    let client = service.connect_as("m", "alice").unwrap();
    let mut s = client.open().unwrap();
    let history = random_input(6, 25, &mut rng);
    client.push(&mut s, &history).unwrap();
    let id = s.id();
    drop(client);
    service.shutdown().unwrap();
    // No disk has this much room: nothing new is taken, what was acknowledged is kept.
    let service = start(u64::MAX).start().unwrap();
    let client = service.connect_as("m", "alice").unwrap();
    let refused = client.open().unwrap_err().to_string();
    assert!(refused.contains("under the reserve") && refused.contains("s0.redb"), "{refused}");
    let mut s = client.resume(id).unwrap();
    let refused = client.push(&mut s, &[1, 2]).unwrap_err().to_string();
    assert!(refused.contains("under the reserve") && refused.contains("s1.redb"), "{refused}");
    assert!(refused.contains("what was acknowledged is kept"), "{refused}");
    assert_eq!(client.release(&mut s).unwrap().final_state, Some(dfa.run(&history)));
    client.close(s).unwrap();
    drop(client);
    service.shutdown().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn resume_at_waits_for_what_was_sent_and_refuses_more() {
    let mut rng = WorkloadRng::seed_from_u64(17);
    let dfa = random_dfa(12, 5, &mut rng);
    let dir = scratch("resume-at");
    let (p0, p1) = (dir.join("s0.redb"), dir.join("s1.redb"));
    let service =
        Service::builder().machine("m", dfa, Protocol::LookupXor, Reveal::State).stores(&p0, &p1).start().unwrap();
    let client = service.connect_as("m", "alice").unwrap();
    let mut s = client.open().unwrap();
    client.push(&mut s, &random_input(5, 40, &mut rng)).unwrap();
    // Both servers hold (and committed) the 40 symbols: taken up there.
    assert_eq!(client.resume_at(s.id(), 40).unwrap().pushed(), 40);
    assert_eq!(client.resume_at(s.id(), 7).unwrap().pushed(), 40);
    // More than was sent is refused at once (no wait for symbols that never come).
    let refused = client.resume_at(s.id(), 41).unwrap_err();
    assert!(matches!(refused, ServiceError::BadRequest(_)), "{refused}");
    client.close(s).unwrap();
    drop(client);
    service.shutdown().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn set_sessions_survive_a_restart() {
    let rules: Vec<(String, String)> =
        [("aws", "AKIA[0-9A-Z]{4}"), ("pw", "pass(word)?=[a-z]+"), ("tok", "tok_[a-f0-9]{3}")]
            .iter()
            .map(|(i, p)| (i.to_string(), p.to_string()))
            .collect();
    let (compiled, refused) = compile_rules(&rules, &RegexConfig::default());
    assert!(refused.is_empty());
    let set = group(compiled, Policy::Rules, Grouping::Alone, Protocol::LookupXor, ClassMode::Auto, 1 << 12).unwrap();
    let dir = scratch("set");
    let (p0, p1) = (dir.join("a/s0.redb"), dir.join("b/s1.redb"));
    let start = || Service::builder().set("leaks", set.clone(), Protocol::LookupXor).stores(&p0, &p1).start().unwrap();
    let texts = ["x AKIA12", "34 password=abc tok_", "9f0 and more"];
    let service = start();
    let c = service.connect_as("leaks", "scanner").unwrap();
    let mut s = c.open().unwrap();
    c.push_text(&mut s, texts[0]).unwrap();
    c.push_text(&mut s, texts[1]).unwrap();
    let id = s.id();
    drop(c);
    service.shutdown().unwrap();
    let service = start();
    let c = service.connect_as("leaks", "scanner").unwrap();
    let mut s = c.resume(id).unwrap();
    assert_eq!(s.pushed() as usize, texts[0].len() + texts[1].len());
    c.push_text(&mut s, texts[2]).unwrap();
    let whole = texts.concat();
    let answer = c.release(&mut s).unwrap().answer.unwrap();
    assert_eq!(answer, set.answer(&set.encode(whole.as_bytes(), 0).unwrap()));
    drop(c);
    service.shutdown().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn stores_that_are_not_this_servers_are_refused() {
    let dir = scratch("refuse");
    let (p0, p1) = (dir.join("s0.redb"), dir.join("s1.redb"));
    let dfa = pmsm_engine::dfa::random::random_dfa(5, 3, &mut WorkloadRng::seed_from_u64(1));
    let build = |a: &PathBuf, b: &PathBuf| {
        Service::builder().machine("m", dfa.clone(), Protocol::LookupXor, Reveal::State).stores(a, b).start()
    };
    build(&p0, &p1).unwrap().shutdown().unwrap();
    // The servers' stores swapped: each is the other server's.
    let e = build(&p1, &p0).unwrap_err().to_string();
    assert!(e.contains("belongs to server 1") && e.contains("s1.redb"), "{e}");
    // Server 1's store replaced by a new one: server 0's store ran beside another.
    let other = build(&p0, &dir.join("new1.redb")).unwrap();
    let e = other.connect("m").unwrap().open().unwrap_err().to_string();
    assert!(e.contains("lost or replaced") && e.contains("s0.redb"), "{e}");
    drop(other);
    // A store open in a running service cannot be opened again.
    let running = build(&p0, &p1).unwrap();
    let e = Store::open(&p0, Party::P0).unwrap_err().to_string();
    assert!(e.contains("open in another process"), "{e}");
    running.shutdown().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
