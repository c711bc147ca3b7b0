//! The path of each rule (`pmsm_engine::cost`): `pmsm info --path auto` (each rule's
//! predicted cost on both paths and the model's pick), `pmsm bench-nfa --compare` (both
//! paths measured privately per rule beside the pick) and `pmsm bench-nfa --calibrate`
//! (the runs the model's constants are fitted to).

use crate::machine::MachineArgs;
use crate::output::count;
use crate::sets;
use pmsm_engine::Engine;
use pmsm_engine::cost::{BatchShape, CostModel, NfaCost, Path, PathChoice, fit_relative};
use pmsm_engine::dfa::random::{random_dfa, random_input};
use pmsm_engine::dfa::regex::RegexConfig;
use pmsm_engine::dfa::set::{Grouping, Policy};
use pmsm_engine::mixed::{MixedSet, RulePaths, assign};
use pmsm_engine::nfa::circuit::Program;
use pmsm_engine::nfa::{NfaConfig, NfaSet};
use pmsm_engine::protocol::set::group;
use pmsm_engine::protocol::{ClassMode, Protocol, Reveal};
use pmsm_kernels::rng::WorkloadRng;
use serde_json::{Value, json};

/// A rule's row in `info --path` and `bench-nfa --compare`: both paths' sizes and
/// predictions and the path it takes.
fn rule_json(r: &RulePaths, path: Option<Path>) -> Value {
    let dfa = match &r.dfa {
        Ok(d) => json!({"states": d.rule.dfa.states(), "classes": d.rule.dfa.classes().count(), "n": d.n,
            "predicted_ns_per_byte": d.predicted_ns}),
        Err(e) => json!({"refused": e}),
    };
    let nfa = match &r.nfa {
        Ok(n) => json!({"positions": n.automaton.len(), "ands": n.program.step.and_count(),
            "layers": n.program.step.rounds(), "predicted_ns_per_byte": n.predicted_ns}),
        Err(e) => json!({"refused": e}),
    };
    json!({"id": r.id, "dfa": dfa, "nfa": nfa, "path": path.map(Path::name)})
}

/// Every rule the machine options name, compiled alone on both paths, with each path's
/// prediction for a batch of `shape`.
pub fn rule_paths(m: &MachineArgs, max_positions: usize, shape: BatchShape) -> Result<Vec<RulePaths>, String> {
    if m.full_match || m.alphabet.is_some() {
        return Err("choosing a path compares both on byte texts under search semantics: --full-match and --alphabet are not supported there".into());
    }
    let rules = sets::rules(m).map_err(|e| e.to_string())?;
    let cfg = RegexConfig { max_states: m.max_states, ..Default::default() };
    Ok(RulePaths::of(&rules, &cfg, &NfaConfig { max_positions, ..Default::default() }, shape))
}

/// `info --path auto|dfa|nfa` on rules: each rule on both paths and its path under
/// `choice`, then the two parts as a set would run them (the DFA part grouped by the
/// cost grouping, the NFA part one circuit) and their predicted cost.
pub fn describe(m: &MachineArgs, choice: PathChoice, max_positions: usize) -> Result<Value, String> {
    let shape = BatchShape::GITLEAKS_SAMPLES;
    let rules = rule_paths(m, max_positions, shape)?;
    let mut dfa_rules = Vec::new();
    let mut nfa_rules = Vec::new();
    let mut refused = Vec::new();
    let assigned = assign(&rules, choice, shape);
    for (r, path) in rules.iter().zip(&assigned) {
        match (path, &r.dfa) {
            (Some(Path::Dfa), Ok(d)) => dfa_rules.push(d.rule.clone()),
            (Some(Path::Nfa), _) => nfa_rules.push(r),
            _ => refused.push(r.id.clone()),
        }
    }
    let dfa_part = if dfa_rules.is_empty() {
        json!(null)
    } else {
        let count = dfa_rules.len();
        let set = group(dfa_rules, Policy::Rules, Grouping::Cost, Protocol::LookupXor, ClassMode::Auto, m.max_states)
            .map_err(|e| e.to_string())?;
        json!({"rules": count, "groups": set.groups().len(),
            "predicted_ns_per_byte": CostModel::LOOKUP_XOR.set(&set, ClassMode::Auto)})
    };
    let nfa_part = if nfa_rules.is_empty() {
        json!(null)
    } else {
        let automata = nfa_rules.iter().filter_map(|r| r.nfa.as_ref().ok().map(|n| n.automaton.clone())).collect();
        let program = Program::new(&NfaSet::from_rules(automata));
        let (ands, layers) = (program.step.and_count(), program.step.rounds());
        json!({"rules": nfa_rules.len(), "ands": ands, "layers": layers,
            "predicted_ns_per_byte": NfaCost::MEASURED.predict(ands, layers, shape)})
    };
    let total = dfa_part["predicted_ns_per_byte"].as_f64().unwrap_or(0.0)
        + nfa_part["predicted_ns_per_byte"].as_f64().unwrap_or(0.0);
    Ok(json!({
        "path": choice.name(),
        "batch": {"bytes": shape.bytes, "steps": shape.steps, "what": "the gitleaks sample texts"},
        "rules": rules.iter().zip(&assigned).map(|(r, p)| rule_json(r, *p)).collect::<Vec<_>>(),
        "refused": refused,
        "dfa_part": dfa_part,
        "nfa_part": nfa_part,
        "predicted_ns_per_byte": total,
    }))
}

/// The text form of [`describe`].
pub fn describe_text(v: &Value) -> String {
    let u = |x: &Value| x.as_u64().unwrap_or(0) as usize;
    let mut s = String::new();
    let ns = |x: &Value| x["predicted_ns_per_byte"].as_f64().map_or("-".to_string(), |x| format!("{x:.0}"));
    for r in v["rules"].as_array().into_iter().flatten() {
        let (d, n) = (&r["dfa"], &r["nfa"]);
        let dfa = match d["refused"].as_str() {
            Some(why) => format!("dfa refused ({why})"),
            None => format!("dfa {} states, n = {}, {} ns/byte", d["states"], d["n"], ns(d)),
        };
        let nfa = match n["refused"].as_str() {
            Some(why) => format!("nfa refused ({why})"),
            None => {
                format!("nfa {} in {}, {} ns/byte", count(u(&n["ands"]), "AND"), count(u(&n["layers"]), "layer"), ns(n))
            }
        };
        s.push_str(&format!(
            "{}: {dfa}; {nfa} → {}\n",
            r["id"].as_str().unwrap_or(""),
            r["path"].as_str().unwrap_or("refused")
        ));
    }
    let part = |p: &Value, what: &str| match p {
        Value::Null => format!("{what}: no rule"),
        p if what == "DFA part" => {
            format!(
                "{what}: {} in {}, {} ns/byte",
                count(u(&p["rules"]), "rule"),
                count(u(&p["groups"]), "group"),
                ns(p)
            )
        }
        p => format!(
            "{what}: {}, {} in {} a step, {} ns/byte",
            count(u(&p["rules"]), "rule"),
            count(u(&p["ands"]), "AND"),
            count(u(&p["layers"]), "layer"),
            ns(p)
        ),
    };
    s.push_str(&format!(
        "path {}: {}; {}; {} refused; predicted {:.0} ns per byte in all (for a batch shaped like {}: {} bytes, the longest {})",
        v["path"].as_str().unwrap_or(""),
        part(&v["dfa_part"], "DFA part"),
        part(&v["nfa_part"], "NFA part"),
        v["refused"].as_array().map_or(0, Vec::len),
        v["predicted_ns_per_byte"].as_f64().unwrap_or(0.0),
        v["batch"]["what"].as_str().unwrap_or(""),
        v["batch"]["bytes"],
        v["batch"]["steps"],
    ));
    s
}

/// The texts of `bench-nfa --texts`, every line a text.
pub fn texts(paths: &[std::path::PathBuf]) -> Result<Vec<Vec<u8>>, String> {
    let mut lines: Vec<Vec<u8>> = Vec::new();
    for path in paths {
        let text = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        lines.extend(text.split(|b| *b == b'\n').filter(|l| !l.is_empty()).map(<[u8]>::to_vec));
    }
    if lines.is_empty() {
        return Err("no text to run on (--texts: files of one text per line)".into());
    }
    Ok(lines)
}

/// The fastest of `repeat` private runs of rule `r` alone on `path`, in ns per byte,
/// every hit checked against `re`.
fn measure(
    r: &RulePaths,
    path: PathChoice,
    texts: &[&[u8]],
    re: &regex::bytes::Regex,
    repeat: usize,
    max_states: usize,
) -> Result<f64, String> {
    let bytes: usize = texts.iter().map(|t| t.len()).sum();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let set = MixedSet::new(vec![r.clone()], path, BatchShape::of(texts), max_states, threads)
        .map_err(|e| format!("rule {}: {e}", r.id))?;
    let mut best = f64::INFINITY;
    for _ in 0..repeat.max(1) {
        let report = set.run_texts(texts).map_err(|e| format!("rule {}: {e}", r.id))?;
        if texts.iter().zip(&report.hits).any(|(t, h)| h[0] != re.is_match(t)) {
            return Err(format!("rule {}: the {} path disagrees with regex::bytes", r.id, path.name()));
        }
        best = best.min(report.elapsed.as_secs_f64() * 1e9 / bytes as f64);
    }
    Ok(best)
}

/// `bench-nfa --compare`: every `sample`-th rule that both paths run, measured privately
/// alone on each (the fastest of `repeat` runs on `texts`), beside both predictions and
/// the model's pick; the fraction of rules where the pick was the faster path.
pub fn compare(
    m: &MachineArgs,
    texts: &[Vec<u8>],
    max_positions: usize,
    repeat: usize,
    sample: usize,
) -> Result<Value, String> {
    let refs: Vec<&[u8]> = texts.iter().map(Vec::as_slice).collect();
    let shape = BatchShape::of(&refs);
    let rules = rule_paths(m, max_positions, shape)?;
    let both: Vec<&RulePaths> = rules.iter().filter(|r| r.dfa.is_ok() && r.nfa.is_ok()).collect();
    let mut rows = Vec::new();
    let (mut right, mut picked_ns, mut best_ns) = (0usize, 0.0, 0.0);
    for r in both.iter().step_by(sample.max(1)) {
        let re = regex::bytes::Regex::new(&r.pattern).map_err(|e| format!("rule {}: {e}", r.id))?;
        let dfa_ns = measure(r, PathChoice::Dfa, &refs, &re, repeat, m.max_states)?;
        let nfa_ns = measure(r, PathChoice::Nfa, &refs, &re, repeat, m.max_states)?;
        let pick = r.pick(PathChoice::Auto).expect("both paths run it");
        let faster = if nfa_ns < dfa_ns { Path::Nfa } else { Path::Dfa };
        right += usize::from(pick == faster);
        picked_ns += if pick == Path::Nfa { nfa_ns } else { dfa_ns };
        best_ns += dfa_ns.min(nfa_ns);
        let mut row = rule_json(r, Some(pick));
        row["dfa"]["measured_ns_per_byte"] = json!(dfa_ns);
        row["nfa"]["measured_ns_per_byte"] = json!(nfa_ns);
        row["faster"] = json!(faster.name());
        rows.push(row);
    }
    if rows.is_empty() {
        return Err("no rule that both paths run (the DFA path refuses every rule, or the NFA path does)".into());
    }
    Ok(json!({
        "rules": rules.len(),
        "both_paths": both.len(),
        "measured": rows.len(),
        "sample": sample.max(1),
        "texts": refs.len(),
        "input_bytes": shape.bytes,
        "longest": shape.steps,
        "repeat": repeat.max(1),
        "picked_faster": right,
        "fraction_picked_faster": right as f64 / rows.len() as f64,
        "picked_over_best": picked_ns / best_ns,
        "rows": rows,
    }))
}

/// The text form of [`compare`].
pub fn compare_text(v: &Value) -> String {
    let mut s = format!(
        "{:<32} {:>8} {:>4} {:>12} {:>12} {:>7} {:>6} {:>12} {:>12}  pick faster\n",
        "rule", "states", "n", "dfa pred", "dfa meas", "ANDs", "layers", "nfa pred", "nfa meas"
    );
    let f = |x: &Value| x.as_f64().unwrap_or(0.0);
    for r in v["rows"].as_array().into_iter().flatten() {
        let (d, n) = (&r["dfa"], &r["nfa"]);
        s.push_str(&format!(
            "{:<32} {:>8} {:>4} {:>12.0} {:>12.0} {:>7} {:>6} {:>12.0} {:>12.0}  {} {}{}\n",
            r["id"].as_str().unwrap_or(""),
            d["states"],
            d["n"],
            f(&d["predicted_ns_per_byte"]),
            f(&d["measured_ns_per_byte"]),
            n["ands"],
            n["layers"],
            f(&n["predicted_ns_per_byte"]),
            f(&n["measured_ns_per_byte"]),
            r["path"].as_str().unwrap_or(""),
            r["faster"].as_str().unwrap_or(""),
            if r["path"] == r["faster"] { "" } else { "  (wrong)" },
        ));
    }
    s.push_str(&format!(
        "ns per input byte, each rule alone, private in process, the fastest of {} runs on {} texts ({} bytes, the longest {}); {} of the {} rules both paths run measured (every {}-th), of {} rules: the model picked the faster path for {} ({:.1} %); the picks cost {:.3}× the faster paths in all\n",
        v["repeat"],
        v["texts"],
        v["input_bytes"],
        v["longest"],
        v["measured"],
        v["both_paths"],
        v["sample"],
        v["rules"],
        v["picked_faster"],
        100.0 * f(&v["fraction_picked_faster"]),
        f(&v["picked_over_best"]),
    ));
    s
}

/// The DFA ladder of `--calibrate`: random machines with 16 symbols and `2^(n−4)`
/// states, classes off (so `n` index bits), run on random inputs of the texts' lengths
/// (the batch shape the per-rule choice is made for: chunks, ragged lengths and rounds
/// as the rules' runs have them).
const DFA_LADDER: [u32; 9] = [5, 6, 7, 8, 9, 10, 12, 14, 16];

/// `bench-nfa --calibrate`: every `sample`-th rule the NFA path runs, alone on `texts`
/// (the fastest of `repeat` runs), and the fit of [`NfaCost`] to them; then the DFA
/// ladder on inputs shaped like `texts` and the fit of [`CostModel`] (`n ≤ 8` and
/// `n ≥ 9` apart) beside the one in use.
pub fn calibrate(
    m: &MachineArgs,
    texts: &[Vec<u8>],
    max_positions: usize,
    repeat: usize,
    sample: usize,
) -> Result<Value, String> {
    let refs: Vec<&[u8]> = texts.iter().map(Vec::as_slice).collect();
    let shape = BatchShape::of(&refs);
    let rules = rule_paths(m, max_positions, shape)?;
    let mut nfa_rows = Vec::new();
    let mut fit_rows = Vec::new();
    for r in rules.iter().filter(|r| r.nfa.is_ok()).step_by(sample.max(1)) {
        let Ok(n) = &r.nfa else { unreachable!("filtered") };
        let re = regex::bytes::Regex::new(&r.pattern).map_err(|e| format!("rule {}: {e}", r.id))?;
        let ns = measure(r, PathChoice::Nfa, &refs, &re, repeat, m.max_states)?;
        let (ands, layers) = (n.program.step.and_count(), n.program.step.rounds());
        fit_rows.push((vec![1.0, ands as f64, layers as f64 * shape.steps_per_byte()], ns));
        nfa_rows.push(json!({"id": r.id, "ands": ands, "layers": layers, "measured_ns_per_byte": ns}));
    }
    let nfa_fit = fit_relative(&fit_rows)
        .ok_or("the NFA runs do not determine the constants (too few rules, or all of one size): lower --sample")?;
    let fitted = NfaCost { byte_ns: nfa_fit[0], and_ns: nfa_fit[1], layer_ns: nfa_fit[2] };
    let residuals: Vec<f64> = fit_rows
        .iter()
        .map(|(x, y)| (fitted.byte_ns * x[0] + fitted.and_ns * x[1] + fitted.layer_ns * x[2]) / y - 1.0)
        .collect();
    for (row, e) in nfa_rows.iter_mut().zip(&residuals) {
        row["fit_error"] = json!(e);
    }
    let mut ladder = Vec::new();
    for n in DFA_LADDER {
        let dfa = random_dfa(1 << (n - 4), 16, &mut WorkloadRng::seed_from_u64(u64::from(n)));
        let mut rng = WorkloadRng::seed_from_u64(1);
        let inputs: Vec<Vec<u32>> = refs.iter().map(|t| random_input(16, t.len(), &mut rng)).collect();
        let engine = Engine::builder(dfa.clone())
            .protocol(Protocol::LookupXor)
            .reveal(Reveal::State)
            .classes(ClassMode::Off)
            .build()
            .map_err(|e| format!("n = {n}: {e}"))?;
        let mut best = f64::INFINITY;
        for _ in 0..repeat.max(1) {
            let report = engine.run(&inputs).map_err(|e| format!("n = {n}: {e}"))?;
            if report.outputs.iter().zip(&inputs).any(|(o, i)| o.final_state != Some(dfa.run(i))) {
                return Err(format!("n = {n}: a private output differs from the plaintext evaluator"));
            }
            best = best.min(report.seconds * 1e9 / report.transitions as f64);
        }
        ladder.push((n, best));
    }
    let part = |small: bool| {
        let rows: Vec<(Vec<f64>, f64)> = ladder
            .iter()
            .filter(|(n, _)| (*n <= pmsm_engine::protocol::plan::SMALL_XOR_DOMAIN_BITS) == small)
            .map(|(n, ns)| (vec![1.0, f64::from(*n).exp2()], *ns))
            .collect();
        fit_relative(&rows).unwrap_or_else(|| vec![f64::NAN, f64::NAN])
    };
    let (small, large) = (part(true), part(false));
    let current = CostModel::LOOKUP_XOR;
    Ok(json!({
        "nfa": {
            "texts": refs.len(), "input_bytes": shape.bytes, "longest": shape.steps, "sample": sample.max(1), "repeat": repeat.max(1),
            "rules": nfa_rows,
            "fit": {"byte_ns": fitted.byte_ns, "and_ns": fitted.and_ns, "layer_ns": fitted.layer_ns},
            "in_use": {"byte_ns": NfaCost::MEASURED.byte_ns, "and_ns": NfaCost::MEASURED.and_ns, "layer_ns": NfaCost::MEASURED.layer_ns},
            "max_abs_fit_error": residuals.iter().fold(0.0f64, |a, e| a.max(e.abs())),
        },
        "dfa": {
            "ladder": ladder.iter().map(|(n, ns)| json!({"n": n, "ns_per_lookup": ns})).collect::<Vec<_>>(),
            "fit": {"small_lookup_ns": small[0], "small_entry_ns": small[1], "lookup_ns": large[0], "entry_ns": large[1]},
            "in_use": {"small_lookup_ns": current.small_lookup_ns, "small_entry_ns": current.small_entry_ns,
                "lookup_ns": current.lookup_ns, "entry_ns": current.entry_ns},
        },
    }))
}

/// The text form of [`calibrate`].
pub fn calibrate_text(v: &Value) -> String {
    let n = &v["nfa"];
    let f = |x: &Value| x.as_f64().unwrap_or(f64::NAN);
    let mut s = format!(
        "NFA path: {} rules alone (every {}-th), the fastest of {} runs on {} texts ({} bytes, the longest {}):\n",
        n["rules"].as_array().map_or(0, Vec::len),
        n["sample"],
        n["repeat"],
        n["texts"],
        n["input_bytes"],
        n["longest"]
    );
    for r in n["rules"].as_array().into_iter().flatten() {
        s.push_str(&format!(
            "  {:<32} {:>6} ANDs {:>3} layers {:>10.0} ns/byte (fit {:+.1} %)\n",
            r["id"].as_str().unwrap_or(""),
            r["ands"],
            r["layers"],
            f(&r["measured_ns_per_byte"]),
            100.0 * f(&r["fit_error"])
        ));
    }
    s.push_str(&format!(
        "  fit: byte_ns = {:.2}, and_ns = {:.4}, layer_ns = {:.0} (largest error {:.1} %); in use: {:.2}, {:.4}, {:.0}\n",
        f(&n["fit"]["byte_ns"]),
        f(&n["fit"]["and_ns"]),
        f(&n["fit"]["layer_ns"]),
        100.0 * f(&n["max_abs_fit_error"]),
        f(&n["in_use"]["byte_ns"]),
        f(&n["in_use"]["and_ns"]),
        f(&n["in_use"]["layer_ns"]),
    ));
    let d = &v["dfa"];
    s.push_str("DFA path (lookup-xor, random machines with 16 symbols, classes off, random inputs of the texts' lengths), ns per lookup:\n");
    for r in d["ladder"].as_array().into_iter().flatten() {
        s.push_str(&format!("  n = {:>2}: {:>10.0}\n", r["n"], f(&r["ns_per_lookup"])));
    }
    let c = |x: &Value| {
        format!(
            "{:.1} + {:.3}·2^n up to n = 8, {:.1} + {:.3}·2^n above",
            f(&x["small_lookup_ns"]),
            f(&x["small_entry_ns"]),
            f(&x["lookup_ns"]),
            f(&x["entry_ns"])
        )
    };
    s.push_str(&format!("  fit: {}; in use: {}\n", c(&d["fit"]), c(&d["in_use"])));
    s
}
