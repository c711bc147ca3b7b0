//! A rule set's step as a boolean circuit over GF(2): XOR and NOT are free, each AND
//! is one Beaver multiplication, ANDs of equal depth form one round.
//!
//! Gates are built in topological order with constants folded (`x ∧ 0 = 0`,
//! `x ∧ 1 = x`, `¬¬x = x`, …), so a position a match may start at unconditionally costs
//! no AND beyond `B[p]`'s and a first step (state all zero) costs none for the state.
//! `x ∨ y = ¬(¬x ∧ ¬y)`; a disjunction of `k` terms is a balanced tree of depth
//! `⌈log2 k⌉`, over fewer terms where the automaton allows: positions that read
//! disjoint bytes are never set at once, so their `∨` is a free `⊕`, and a disjunction
//! over predecessors another position shares is built once (`Disjunctions`).
//!
//! Evaluation is bit-sliced: every wire holds `W` words, one bit per instance, and an
//! AND layer is handed to one callback ([`Circuit::eval`], [`AndLayer`]) that reads its
//! operands and writes its outputs in place — a plain AND for the reference, one
//! exchange of openings for the private protocol.
//!
//! The step circuit of DESIGN §8 (inputs: the state `D`, the class one-hot `E` of the
//! symbol, the previous symbol's word bit, the `hit` bits; [`StepLayout`]):
//!
//! ```text
//! B[p] = ⊕_{c ∈ C_p} E[c]          wb = w_prev ⊕ ⊕_{c word} E[c]
//! D'[p] = B[p] ∧ ( First_p(wb) ∨ ⋁_{q→p always} D[q] ∨ (wb ∧ ⋁_{q→p if \b} D[q]) ∨ (¬wb ∧ ⋁_{q→p if \B} D[q]) )
//! hit'_r = hit_r ∨ null_r(wb) ∨ ⋁_{p ∈ Last_r} (Last_p(wb) ∧ D[p])
//! ```

use super::NfaSet;
use super::position::{Boundary, ByteSet, Cond};

/// One gate. Operands are indices of earlier gates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gate {
    /// Input wire `i`.
    Input(u32),
    /// A public constant.
    Const(bool),
    /// `a ⊕ b` (free).
    Xor(u32, u32),
    /// `¬a` (free: one server flips its share).
    Not(u32),
    /// `a ∧ b` (one Beaver AND).
    And(u32, u32),
}

/// A circuit with its gates grouped by AND depth.
#[derive(Clone, Debug)]
pub struct Circuit {
    gates: Vec<Gate>,
    inputs: usize,
    outputs: Vec<u32>,
    /// `ands[l]`: the AND gates of depth `l + 1`.
    ands: Vec<Vec<u32>>,
    /// `linear[l]`: the other gates of depth `l` (in topological order).
    linear: Vec<Vec<u32>>,
}

/// Builds a circuit, folding constants.
#[derive(Debug, Default)]
pub struct Builder {
    gates: Vec<Gate>,
    depth: Vec<u32>,
    inputs: usize,
}

/// A wire of a [`Builder`].
pub type Wire = u32;

impl Builder {
    fn push(&mut self, g: Gate, depth: u32) -> Wire {
        self.gates.push(g);
        self.depth.push(depth);
        self.gates.len() as Wire - 1
    }

    fn konst(&self, w: Wire) -> Option<bool> {
        match self.gates[w as usize] {
            Gate::Const(b) => Some(b),
            _ => None,
        }
    }

    /// A new input wire (numbered in creation order).
    pub fn input(&mut self) -> Wire {
        self.inputs += 1;
        self.push(Gate::Input(self.inputs as u32 - 1), 0)
    }

    /// A constant.
    pub fn constant(&mut self, b: bool) -> Wire {
        self.push(Gate::Const(b), 0)
    }

    /// `a ⊕ b`.
    pub fn xor(&mut self, a: Wire, b: Wire) -> Wire {
        match (self.konst(a), self.konst(b)) {
            (Some(x), Some(y)) => self.constant(x ^ y),
            (Some(false), _) => b,
            (_, Some(false)) => a,
            (Some(true), _) => self.not(b),
            (_, Some(true)) => self.not(a),
            _ if a == b => self.constant(false),
            _ => {
                let d = self.depth[a as usize].max(self.depth[b as usize]);
                self.push(Gate::Xor(a, b), d)
            }
        }
    }

    /// `¬a`.
    pub fn not(&mut self, a: Wire) -> Wire {
        match self.gates[a as usize] {
            Gate::Const(b) => self.constant(!b),
            Gate::Not(x) => x,
            _ => {
                let d = self.depth[a as usize];
                self.push(Gate::Not(a), d)
            }
        }
    }

    /// `a ∧ b`.
    pub fn and(&mut self, a: Wire, b: Wire) -> Wire {
        match (self.konst(a), self.konst(b)) {
            (Some(false), _) | (_, Some(false)) => self.constant(false),
            (Some(true), _) => b,
            (_, Some(true)) => a,
            _ if a == b => a,
            _ => {
                let d = self.depth[a as usize].max(self.depth[b as usize]) + 1;
                self.push(Gate::And(a, b), d)
            }
        }
    }

    /// `a ∨ b`.
    pub fn or(&mut self, a: Wire, b: Wire) -> Wire {
        let (na, nb) = (self.not(a), self.not(b));
        let n = self.and(na, nb);
        self.not(n)
    }

    /// The disjunction of `terms` as a balanced tree (constant `0` when empty). Terms of
    /// lower depth are paired first, so the tree's depth is the least possible.
    pub fn or_all(&mut self, mut terms: Vec<Wire>) -> Wire {
        if terms.iter().any(|t| self.konst(*t) == Some(true)) {
            return self.constant(true);
        }
        terms.retain(|t| self.konst(*t) != Some(false));
        while terms.len() > 1 {
            terms.sort_by_key(|t| std::cmp::Reverse(self.depth[*t as usize]));
            let (a, b) = (terms.pop().expect("two terms"), terms.pop().expect("two terms"));
            let o = self.or(a, b);
            terms.push(o);
        }
        terms.pop().unwrap_or_else(|| self.constant(false))
    }

    /// The XOR of `terms`.
    pub fn xor_all(&mut self, terms: &[Wire]) -> Wire {
        let mut acc = self.constant(false);
        for &t in terms {
            acc = self.xor(acc, t);
        }
        acc
    }

    /// A [`Cond`] as a wire, given the wire of `wb`.
    pub fn cond(&mut self, c: Cond, wb: Wire) -> Wire {
        match c {
            Cond::Never => self.constant(false),
            Cond::Always => self.constant(true),
            Cond::Wb => wb,
            Cond::NotWb => self.not(wb),
        }
    }

    /// The finished circuit with the given outputs; gates no output needs are dropped.
    pub fn finish(self, outputs: Vec<Wire>) -> Circuit {
        let n = self.gates.len();
        let mut live = vec![false; n];
        for &o in &outputs {
            live[o as usize] = true;
        }
        for i in (0..n).rev() {
            if !live[i] {
                continue;
            }
            match self.gates[i] {
                Gate::Xor(a, b) | Gate::And(a, b) => {
                    live[a as usize] = true;
                    live[b as usize] = true;
                }
                Gate::Not(a) => live[a as usize] = true,
                Gate::Input(_) | Gate::Const(_) => {}
            }
        }
        // Keep the live gates only, renumbered in order (operands stay earlier).
        let mut new_id = vec![u32::MAX; n];
        let mut gates = Vec::new();
        let mut depth = Vec::new();
        for i in (0..n).filter(|&i| live[i] || matches!(self.gates[i], Gate::Input(_))) {
            let g = {
                let m = |a: u32| new_id[a as usize];
                match self.gates[i] {
                    Gate::Xor(a, b) => Gate::Xor(m(a), m(b)),
                    Gate::And(a, b) => Gate::And(m(a), m(b)),
                    Gate::Not(a) => Gate::Not(m(a)),
                    g => g,
                }
            };
            new_id[i] = gates.len() as u32;
            gates.push(g);
            depth.push(self.depth[i]);
        }
        let outputs: Vec<u32> = outputs.iter().map(|o| new_id[*o as usize]).collect();
        let max = depth.iter().copied().max().unwrap_or(0) as usize;
        let mut ands = vec![Vec::new(); max];
        let mut linear = vec![Vec::new(); max + 1];
        for (i, g) in gates.iter().enumerate() {
            let d = depth[i] as usize;
            match g {
                Gate::And(..) => ands[d - 1].push(i as u32),
                Gate::Input(_) => {} // set before evaluation
                _ => linear[d].push(i as u32),
            }
        }
        while ands.last().is_some_and(Vec::is_empty) {
            ands.pop();
        }
        linear.truncate(ands.len() + 1);
        Circuit { gates, inputs: self.inputs, outputs, ands, linear }
    }
}

impl Circuit {
    /// AND layers (rounds of openings).
    pub fn rounds(&self) -> usize {
        self.ands.len()
    }

    /// AND gates per layer.
    pub fn layer_sizes(&self) -> Vec<usize> {
        self.ands.iter().map(Vec::len).collect()
    }

    /// AND gates in all.
    pub fn and_count(&self) -> usize {
        self.ands.iter().map(Vec::len).sum()
    }

    /// Input wires.
    pub fn inputs(&self) -> usize {
        self.inputs
    }

    /// Evaluates on `w` words per wire. `input(i, words)` writes input `i`'s `w` words;
    /// `flip` is whether this party applies NOT and constants (the plaintext
    /// evaluation, or server 0 on shares; server 1 holds zero shares of constants).
    /// `and_layer(l, layer)` sets layer `l`'s outputs from its operands ([`AndLayer`]).
    /// `scratch` holds every wire's words and is reused from call to call (it grows to
    /// `gates · w` words and is never cleared: each gate is written before it is read).
    /// Returns the outputs, `w` words each, output after output.
    pub fn eval<E>(
        &self,
        scratch: &mut Vec<u64>,
        w: usize,
        flip: bool,
        mut input: impl FnMut(usize, &mut [u64]),
        mut and_layer: impl FnMut(usize, &mut AndLayer<'_>) -> Result<(), E>,
    ) -> Result<Vec<u64>, E> {
        if scratch.len() < self.gates.len() * w {
            scratch.resize(self.gates.len() * w, 0);
        }
        let val = &mut scratch[..self.gates.len() * w];
        let ones = if flip { !0u64 } else { 0 };
        for (i, g) in self.gates.iter().enumerate() {
            if let Gate::Input(k) = g {
                input(*k as usize, &mut val[i * w..(i + 1) * w]);
            }
        }
        let linear = |val: &mut [u64], ids: &[u32]| {
            for &i in ids {
                let i = i as usize;
                let (lo, out) = val.split_at_mut(i * w);
                let out = &mut out[..w];
                match self.gates[i] {
                    Gate::Const(b) => out.fill(if b { ones } else { 0 }),
                    Gate::Xor(a, b) => {
                        let (a, b) = (&lo[a as usize * w..][..w], &lo[b as usize * w..][..w]);
                        for ((o, a), b) in out.iter_mut().zip(a).zip(b) {
                            *o = a ^ b;
                        }
                    }
                    Gate::Not(a) => {
                        for (o, a) in out.iter_mut().zip(&lo[a as usize * w..][..w]) {
                            *o = a ^ ones;
                        }
                    }
                    Gate::Input(_) | Gate::And(..) => unreachable!("linear lists hold neither"),
                }
            }
        };
        linear(val, &self.linear[0]);
        for (l, ids) in self.ands.iter().enumerate() {
            and_layer(l, &mut AndLayer { val, gates: &self.gates, ids, w })?;
            linear(val, &self.linear[l + 1]);
        }
        let mut out = Vec::with_capacity(self.outputs.len() * w);
        for &o in &self.outputs {
            out.extend_from_slice(&val[o as usize * w..(o as usize + 1) * w]);
        }
        Ok(out)
    }

    /// [`Circuit::eval`] in the clear on inputs laid out `w` words per input, input after
    /// input.
    pub fn eval_plain(&self, inputs: &[u64], w: usize) -> Vec<u64> {
        assert_eq!(inputs.len(), self.inputs * w, "circuit inputs: one block of w words per input");
        let r: Result<Vec<u64>, std::convert::Infallible> = self.eval(
            &mut Vec::new(),
            w,
            true,
            |i, out| out.copy_from_slice(&inputs[i * w..(i + 1) * w]),
            |_, layer| {
                layer.set(|_, a, b| a & b);
                Ok(())
            },
        );
        match r {
            Ok(v) => v,
            Err(e) => match e {},
        }
    }
}

/// One AND layer during [`Circuit::eval`]: its gates' operand words, numbered
/// `i = j·w + k` (gate `j` of the layer, instance word `k`), read and written in place.
#[derive(Debug)]
pub struct AndLayer<'a> {
    val: &'a mut [u64],
    gates: &'a [Gate],
    ids: &'a [u32],
    w: usize,
}

impl AndLayer<'_> {
    /// AND words in the layer (gates × instance words).
    pub fn words(&self) -> usize {
        self.ids.len() * self.w
    }

    fn operands(&self, g: u32) -> (usize, usize) {
        let Gate::And(a, b) = self.gates[g as usize] else { unreachable!("AND layers hold ANDs") };
        (a as usize * self.w, b as usize * self.w)
    }

    /// Calls `f(i, x_i, y_i)` for every AND word, in order.
    pub fn for_each(&self, mut f: impl FnMut(usize, u64, u64)) {
        let w = self.w;
        for (j, &g) in self.ids.iter().enumerate() {
            let (a, b) = self.operands(g);
            for (k, (x, y)) in self.val[a..a + w].iter().zip(&self.val[b..b + w]).enumerate() {
                f(j * w + k, *x, *y);
            }
        }
    }

    /// Sets every AND word's output to `f(i, x_i, y_i)`, in order.
    pub fn set(&mut self, mut f: impl FnMut(usize, u64, u64) -> u64) {
        let w = self.w;
        for (j, &g) in self.ids.iter().enumerate() {
            let (a, b) = self.operands(g);
            // Operands are earlier gates than their AND.
            let (lo, hi) = self.val.split_at_mut(g as usize * w);
            let out = &mut hi[..w];
            for (k, ((o, x), y)) in out.iter_mut().zip(&lo[a..a + w]).zip(&lo[b..b + w]).enumerate() {
                *o = f(j * w + k, *x, *y);
            }
        }
    }
}

/// Where the inputs and outputs of the step and final circuits are. Inputs: `D` (one
/// per position, rules back to back), `E` (one per class), `w_prev`, `hit` (one per
/// rule). Step outputs: `D'`, `hit'`, `w_cur`; final outputs: `hit`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StepLayout {
    /// Positions in all.
    pub positions: usize,
    /// Symbol classes.
    pub classes: usize,
    /// Rules.
    pub rules: usize,
}

impl StepLayout {
    /// Input wires.
    pub fn inputs(&self) -> usize {
        self.positions + self.classes + 1 + self.rules
    }
    /// Offset of `E` among the inputs.
    pub fn e_at(&self) -> usize {
        self.positions
    }
    /// Offset of `w_prev`.
    pub fn w_at(&self) -> usize {
        self.positions + self.classes
    }
    /// Offset of `hit`.
    pub fn hit_at(&self) -> usize {
        self.positions + self.classes + 1
    }
    /// Step outputs: `D'`, `hit'`, `w_cur`.
    pub fn step_outputs(&self) -> usize {
        self.positions + self.rules + 1
    }
}

/// The three circuits of a set: the first step (state all zero), every later step, and
/// the release after the last symbol.
#[derive(Clone, Debug)]
pub struct Program {
    /// Wire layout.
    pub layout: StepLayout,
    /// Step 0 (boundary `Start`; `D`, `w_prev` and `hit` are zero and unread).
    pub first: Circuit,
    /// Steps `t ≥ 1` (boundary `Middle`).
    pub step: Circuit,
    /// After the last symbol of a non-empty text (boundary `End`).
    pub release: Circuit,
    /// Per rule, whether the empty text matches.
    pub empty_hits: Vec<bool>,
    /// The class of every byte.
    pub class_of_byte: [u16; 256],
}

/// Which circuit to build.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Part {
    First,
    Step,
    Release,
}

impl Program {
    /// The circuits of `set`.
    pub fn new(set: &NfaSet) -> Program {
        let layout = StepLayout { positions: set.positions(), classes: set.classes.count, rules: set.rules.len() };
        Program {
            layout,
            first: build(set, layout, Part::First),
            step: build(set, layout, Part::Step),
            release: build(set, layout, Part::Release),
            empty_hits: set.rules.iter().map(|r| r.nullable_cond(Boundary::Both).holds(false)).collect(),
            class_of_byte: set.classes.of_byte,
        }
    }

    /// The step circuit for step `t`.
    pub fn step_circuit(&self, t: usize) -> &Circuit {
        if t == 0 { &self.first } else { &self.step }
    }

    /// Runs the program in the clear on many texts at once (the circuit's own reference):
    /// per text, one hit bit per rule.
    pub fn run_plain(&self, texts: &[&[u8]]) -> Vec<Vec<bool>> {
        let n = texts.len();
        let w = n.div_ceil(64).max(1);
        let l = self.layout;
        let mut state = vec![0u64; l.inputs() * w];
        let max_len = texts.iter().map(|t| t.len()).max().unwrap_or(0);
        for t in 0..max_len {
            let active: Vec<u64> = lane_mask(texts.iter().map(|x| x.len() > t), w);
            let mut inputs = state.clone();
            inputs[l.e_at() * w..(l.e_at() + l.classes) * w].fill(0);
            for (i, text) in texts.iter().enumerate() {
                if let Some(&b) = text.get(t) {
                    let c = usize::from(self.class_of_byte[usize::from(b)]);
                    inputs[(l.e_at() + c) * w + i / 64] |= 1 << (i % 64);
                }
            }
            let out = self.step_circuit(t).eval_plain(&inputs, w);
            merge_step(&mut state, w, &out, w, &active, l);
        }
        let out = self.release.eval_plain(&state, w);
        texts
            .iter()
            .enumerate()
            .map(|(i, text)| {
                (0..l.rules)
                    .map(
                        |r| if text.is_empty() { self.empty_hits[r] } else { out[r * w + i / 64] >> (i % 64) & 1 == 1 },
                    )
                    .collect()
            })
            .collect()
    }
}

/// A program's size and its predicted traffic per symbol (per text, per server; the
/// per-step seeds and frame headers aside, which a batch shares).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ProgramCost {
    /// Rules.
    pub rules: usize,
    /// Positions in all.
    pub positions: usize,
    /// Symbol classes.
    pub classes: usize,
    /// ANDs of the first step, of every later step, and of the release.
    pub ands: [usize; 3],
    /// AND layers (rounds) of the first step, of every later step, and of the release.
    pub rounds: [usize; 3],
    /// Bits a server sends its peer per symbol: `2·ANDs` of a step (`d`, `e`) plus the
    /// 8-bit symbol opening.
    pub server_bits_per_symbol: usize,
    /// Bits the dealer sends server 1 per symbol: one `c` bit per AND plus the symbol
    /// lookup's correlation (8-bit mask share, 256-bit one-hot table share).
    pub dealer_bits_per_symbol: usize,
}

impl Program {
    /// Its [`ProgramCost`].
    pub fn cost(&self) -> ProgramCost {
        let c = [&self.first, &self.step, &self.release];
        ProgramCost {
            rules: self.layout.rules,
            positions: self.layout.positions,
            classes: self.layout.classes,
            ands: c.map(Circuit::and_count),
            rounds: c.map(Circuit::rounds),
            server_bits_per_symbol: 2 * self.step.and_count() + 8,
            dealer_bits_per_symbol: self.step.and_count() + 8 + 256,
        }
    }
}

/// Bit `i` set where `active` yields true, over `w` words.
pub fn lane_mask(active: impl Iterator<Item = bool>, w: usize) -> Vec<u64> {
    let mut m = vec![0u64; w];
    for (i, a) in active.enumerate() {
        if a {
            m[i / 64] |= 1 << (i % 64);
        }
    }
    m
}

/// Writes a step's outputs (`D'`, `hit'`, `w_cur`, `ow` words each) into the state (the
/// inputs of the next step, `E` aside, `sw ≥ ow` words each), in the lanes of `active`
/// only: a text that has ended keeps its state. Linear in shares (a public mask), so
/// each server applies it to its own.
pub fn merge_step(state: &mut [u64], sw: usize, out: &[u64], ow: usize, active: &[u64], l: StepLayout) {
    let put = |state: &mut [u64], to: usize, from: usize| {
        for k in 0..ow {
            let s = &mut state[to * sw + k];
            *s = (out[from * ow + k] & active[k]) | (*s & !active[k]);
        }
    };
    for p in 0..l.positions {
        put(state, p, p);
    }
    for r in 0..l.rules {
        put(state, l.hit_at() + r, l.positions + r);
    }
    put(state, l.w_at(), l.positions + l.rules);
}

fn build(set: &NfaSet, l: StepLayout, part: Part) -> Circuit {
    let mut b = Builder::default();
    let inputs: Vec<Wire> = (0..l.inputs()).map(|_| b.input()).collect();
    let zero = b.constant(false);
    let d: Vec<Wire> = if part == Part::First { vec![zero; l.positions] } else { inputs[..l.positions].to_vec() };
    let e = &inputs[l.e_at()..l.e_at() + l.classes];
    let w_prev = if part == Part::First { zero } else { inputs[l.w_at()] };
    let hit: Vec<Wire> =
        if part == Part::First { vec![zero; l.rules] } else { inputs[l.hit_at()..l.hit_at() + l.rules].to_vec() };
    let members = set.classes.members();
    // The classes refine the word bytes when some rule has a word boundary; otherwise
    // no condition reads `wb` and it is left zero.
    let uses_word = set.rules.iter().any(|r| r.uses_word);
    let word_classes: Vec<Wire> = (0..l.classes)
        .filter(|&c| uses_word && super::position::is_word_byte(first_byte(&members[c])))
        .map(|c| e[c])
        .collect();
    // In `Release` there is no next byte: w(next) = 0.
    let w_cur = if part == Part::Release { zero } else { b.xor_all(&word_classes) };
    let wb = b.xor(w_prev, w_cur);
    let (at_first, at_last) = match part {
        Part::First => (Boundary::Start, Boundary::Start),
        Part::Step => (Boundary::Middle, Boundary::Middle),
        Part::Release => (Boundary::End, Boundary::End),
    };
    let mut b_of: std::collections::HashMap<Vec<bool>, Wire> = std::collections::HashMap::new();
    let mut next_d = Vec::with_capacity(l.positions);
    let mut hits = Vec::with_capacity(l.rules);
    let mut base = 0usize;
    for (r, rule) in set.rules.iter().enumerate() {
        let m = rule.len();
        let dr = &d[base..base + m];
        let mut ors = Disjunctions::default();
        // The rule's hit: earlier hits, an empty match here, a match ending before here.
        let mut terms = vec![hit[r], b.cond(rule.nullable_cond(at_last), wb)];
        if part != Part::First {
            let mut ends: [Vec<(Wire, ByteSet)>; 3] = Default::default();
            for (p, c) in rule.last_conds(at_last).into_iter().enumerate() {
                if let Some(k) = cond_kind(c) {
                    ends[k].push((dr[p], rule.bytes[p]));
                }
            }
            terms.push(ors.reach(&mut b, ends, wb));
        }
        hits.push(b.or_all(terms));
        if part != Part::Release {
            let classes_of: Vec<Vec<bool>> = rule.bytes.iter().map(|s| set.classes.classes_of(s)).collect();
            let firsts = rule.first_conds(at_first);
            let mut preds: Vec<[Vec<(Wire, ByteSet)>; 3]> = vec![Default::default(); m];
            for &(q, p, c) in &rule.follow {
                if let Some(k) = cond_kind(c) {
                    preds[p as usize][k].push((dr[q as usize], rule.bytes[q as usize]));
                }
            }
            for p in 0..m {
                // B[p] from the class one-hot: the XOR of its classes, or the complement
                // of the XOR of the others (the one-hot sums to one), whichever is shorter.
                let bp = match b_of.get(&classes_of[p]) {
                    Some(w) => *w,
                    None => {
                        let inside: Vec<Wire> = (0..l.classes).filter(|&c| classes_of[p][c]).map(|c| e[c]).collect();
                        let bp = if 2 * inside.len() <= l.classes {
                            b.xor_all(&inside)
                        } else {
                            let outside: Vec<Wire> =
                                (0..l.classes).filter(|&c| !classes_of[p][c]).map(|c| e[c]).collect();
                            let x = b.xor_all(&outside);
                            b.not(x)
                        };
                        b_of.insert(classes_of[p].clone(), bp);
                        bp
                    }
                };
                let first = b.cond(firsts[p], wb);
                let from = ors.reach(&mut b, std::mem::take(&mut preds[p]), wb);
                let reach = b.or_all(vec![first, from]);
                next_d.push(b.and(bp, reach));
            }
        }
        base += m;
    }
    let outputs = match part {
        Part::Release => hits,
        _ => next_d.into_iter().chain(hits).chain([w_cur]).collect(),
    };
    b.finish(outputs)
}

/// Which of [`Disjunctions::reach`]'s groups a condition goes to (`None`: never).
fn cond_kind(c: Cond) -> Option<usize> {
    match c {
        Cond::Always => Some(0),
        Cond::Wb => Some(1),
        Cond::NotWb => Some(2),
        Cond::Never => None,
    }
}

/// Disjunctions of state wires, each wire with the bytes its position reads, built with
/// fewer ANDs than a plain tree (one cache per rule).
///
/// - A position's bit can be set only after a byte of its own set (`D'[q] = B[q] ∧ …`),
///   so two positions with disjoint byte sets are never set at once and their `∨` is a
///   free `⊕`; the same holds for the `wb` and `¬wb` terms. The terms are coloured
///   greedily into groups of pairwise disjoint byte sets (each group one XOR), and only
///   the groups pay ANDs: `groups − 1` instead of `terms − 1`.
/// - Positions often share predecessors (every alternative after an optional run has
///   the same ones): a disjunction already built over the same terms is reused, and one
///   over a subset of them stands in for that subset. That may deepen the tree (the
///   gitleaks set: 10 AND layers a step become 11), but on its sample texts an AND layer
///   costs about as much as 27 ANDs in process (`NfaCost::MEASURED`), and the reuse
///   saves about 3,000 ANDs there.
#[derive(Default)]
struct Disjunctions {
    /// Built disjunctions: their terms (sorted), the wire, the union of their bytes.
    done: Vec<(Vec<Wire>, Wire, ByteSet)>,
}

impl Disjunctions {
    /// `⋁ always ∨ (wb ∧ ⋁ if_wb) ∨ (¬wb ∧ ⋁ if_not)`.
    fn reach(&mut self, b: &mut Builder, [always, if_wb, if_not]: [Vec<(Wire, ByteSet)>; 3], wb: Wire) -> Wire {
        let mut items = always;
        let mut conditional = Vec::new();
        for (terms, cond) in [(if_wb, Cond::Wb), (if_not, Cond::NotWb)] {
            if terms.is_empty() {
                continue;
            }
            let bytes = union_of(&terms);
            let o = self.or(b, terms);
            let c = b.cond(cond, wb);
            conditional.push((b.and(c, o), bytes));
        }
        if let [(x, sx), (y, sy)] = conditional[..] {
            let o = b.xor(x, y); // exclusive: wb and ¬wb
            items.push((o, sx.union(&sy)));
        } else {
            items.extend(conditional);
        }
        self.or(b, items)
    }

    /// The disjunction of `items`.
    fn or(&mut self, b: &mut Builder, mut items: Vec<(Wire, ByteSet)>) -> Wire {
        items.sort_by_key(|(w, _)| *w);
        items.dedup_by_key(|(w, _)| *w);
        if items.len() < 2 {
            return items.first().map_or_else(|| b.constant(false), |(w, _)| *w);
        }
        let key: Vec<Wire> = items.iter().map(|(w, _)| *w).collect();
        if let Some((_, w, _)) = self.done.iter().find(|(k, ..)| *k == key) {
            return *w;
        }
        // Largest built subsets first, each standing in for its terms.
        let mut left = key.clone();
        let mut parts = Vec::new();
        loop {
            let best = self
                .done
                .iter()
                .filter(|(k, ..)| k.len() < key.len() && is_subset(k, &left))
                .max_by_key(|(k, ..)| k.len());
            let Some((k, w, bytes)) = best else { break };
            left.retain(|x| k.binary_search(x).is_err());
            parts.push((*w, *bytes));
        }
        parts.extend(items.iter().filter(|(w, _)| left.binary_search(w).is_ok()).copied());
        let wire = or_disjoint(b, parts);
        self.done.push((key, wire, union_of(&items)));
        wire
    }
}

/// Whether sorted `a` is within sorted `b`.
fn is_subset(a: &[Wire], b: &[Wire]) -> bool {
    let mut it = b.iter();
    a.iter().all(|x| it.any(|y| y == x))
}

fn union_of(items: &[(Wire, ByteSet)]) -> ByteSet {
    items.iter().fold(ByteSet::default(), |u, (_, s)| u.union(s))
}

/// The disjunction of wires with their byte sets, groups of pairwise disjoint sets
/// XORed first (see [`Disjunctions`]).
fn or_disjoint(b: &mut Builder, mut items: Vec<(Wire, ByteSet)>) -> Wire {
    // Larger sets first: they conflict most, so they open the groups.
    items.sort_by_key(|(_, s)| std::cmp::Reverse(s.len()));
    let mut groups: Vec<(ByteSet, Vec<Wire>)> = Vec::new();
    for (w, s) in items {
        match groups.iter_mut().find(|(u, _)| u.is_disjoint(&s)) {
            Some((u, ws)) => {
                *u = u.union(&s);
                ws.push(w);
            }
            None => groups.push((s, vec![w])),
        }
    }
    let terms: Vec<Wire> = groups.iter().map(|(_, ws)| b.xor_all(ws)).collect();
    b.or_all(terms)
}

fn first_byte(s: &super::position::ByteSet) -> u8 {
    s.0.iter().enumerate().find_map(|(i, w)| (*w != 0).then(|| (i as u8) * 64 + w.trailing_zeros() as u8)).unwrap_or(0)
}
