//! The position (Glushkov) automaton of a pattern, with ASCII look-around as conditions.
//!
//! Every class occurrence of the pattern, once counted repetitions are unrolled, is a
//! *position* `p` with a byte set `C_p`. `First` holds the positions a match can start
//! with, `Last` those it can end with, `Follow(q)` those that can come right after `q`,
//! and `nullable` says whether the empty string matches. Glushkov's construction needs no
//! ε-transitions: the sets are computed bottom-up over the parsed pattern (HIR), so the
//! automaton has exactly one state bit per position (no ε-closure to fold into the
//! circuit, which is why this module starts from the HIR and not from a Thompson NFA).
//!
//! Look-around is zero-width, so it sits *between* bytes: each entry of `First`, `Last`,
//! `Follow` and `nullable` carries the [`LookSet`] its path crosses (several entries per
//! position or pair when paths differ). Whether a set holds at a boundary depends on the
//! boundary's [`Boundary`] kind (`^` only at the start, `$` only at the end) and on one
//! bit, `wb = w(previous byte) ⊕ w(next byte)` (`w` = ASCII word byte, `w(none) = 0`):
//! `\b` holds iff `wb`, `\B` iff `¬wb`. So every entry reduces to a [`Cond`] — never,
//! always, `wb`, `¬wb` — per boundary kind; that is DESIGN §8's "few extra state bits".
//!
//! Invariants of a [`PositionAutomaton`]: positions are `0..len()`, each with a non-empty
//! byte set; `follow` lists no pair twice and only conditions that can hold between two
//! bytes; the symbol classes ([`SymbolClasses`]) refine every position's set and, when
//! the pattern has a word boundary, the word bytes.

use super::NfaError;
use regex_syntax::hir::{Class, Hir, HirKind, Look};

/// The ASCII word bytes `[0-9A-Za-z_]`.
pub fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// A set of look-around assertions, all of which a path crosses (a conjunction).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LookSet(u8);

impl LookSet {
    /// No assertion (always holds).
    pub const EMPTY: LookSet = LookSet(0);
    /// `^` (start of text, `\A`).
    pub const START: LookSet = LookSet(1);
    /// `$` (end of text, `\z`).
    pub const END: LookSet = LookSet(2);
    /// ASCII `\b`.
    pub const WORD: LookSet = LookSet(4);
    /// ASCII `\B`.
    pub const NOT_WORD: LookSet = LookSet(8);

    /// Both sets' assertions.
    pub fn union(self, other: LookSet) -> LookSet {
        LookSet(self.0 | other.0)
    }

    fn has(self, l: LookSet) -> bool {
        self.0 & l.0 != 0
    }

    /// What the set reduces to at a boundary of kind `at`.
    pub fn cond(self, at: Boundary) -> Cond {
        let start_ok = matches!(at, Boundary::Start | Boundary::Both);
        let end_ok = matches!(at, Boundary::End | Boundary::Both);
        if (self.has(LookSet::START) && !start_ok) || (self.has(LookSet::END) && !end_ok) {
            return Cond::Never;
        }
        match (self.has(LookSet::WORD), self.has(LookSet::NOT_WORD)) {
            (true, true) => Cond::Never,
            (true, false) => Cond::Wb,
            (false, true) => Cond::NotWb,
            (false, false) => Cond::Always,
        }
    }
}

/// Where a boundary between bytes lies in the text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Boundary {
    /// Before the first byte of a non-empty text.
    Start,
    /// Between two bytes.
    Middle,
    /// After the last byte of a non-empty text.
    End,
    /// The only boundary of the empty text.
    Both,
}

/// A look-around set reduced at one boundary: a linear function of the bit `wb`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Cond {
    /// Never holds.
    Never,
    /// `wb`: the bytes on either side differ in word-ness (`\b`).
    Wb,
    /// `¬wb` (`\B`).
    NotWb,
    /// Always holds.
    Always,
}

impl Cond {
    /// The disjunction of two conditions (again one of the four).
    pub fn or(self, other: Cond) -> Cond {
        match (self, other) {
            (Cond::Never, c) | (c, Cond::Never) => c,
            (Cond::Always, _) | (_, Cond::Always) => Cond::Always,
            (a, b) if a == b => a,
            _ => Cond::Always, // wb ∨ ¬wb
        }
    }

    /// Its value for a given `wb`.
    pub fn holds(self, wb: bool) -> bool {
        match self {
            Cond::Never => false,
            Cond::Always => true,
            Cond::Wb => wb,
            Cond::NotWb => !wb,
        }
    }

    /// The disjunction of many.
    pub fn any(conds: impl IntoIterator<Item = Cond>) -> Cond {
        conds.into_iter().fold(Cond::Never, Cond::or)
    }
}

/// A set of bytes as four 64-bit words (bit `b % 64` of word `b / 64`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct ByteSet(pub [u64; 4]);

impl ByteSet {
    /// Whether `b` is in the set.
    pub fn contains(&self, b: u8) -> bool {
        self.0[usize::from(b >> 6)] >> (b & 63) & 1 == 1
    }

    fn insert_range(&mut self, lo: u8, hi: u8) {
        for b in lo..=hi {
            self.0[usize::from(b >> 6)] |= 1 << (b & 63);
        }
    }

    /// Members.
    pub fn len(&self) -> usize {
        self.0.iter().map(|w| w.count_ones() as usize).sum()
    }

    /// The bytes of either set.
    pub fn union(&self, other: &ByteSet) -> ByteSet {
        ByteSet(std::array::from_fn(|i| self.0[i] | other.0[i]))
    }

    /// Whether no byte is in both.
    pub fn is_disjoint(&self, other: &ByteSet) -> bool {
        self.0.iter().zip(&other.0).all(|(a, b)| a & b == 0)
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The word bytes.
    pub fn word() -> ByteSet {
        let mut s = ByteSet::default();
        for b in 0..=255u8 {
            if is_word_byte(b) {
                s.insert_range(b, b);
            }
        }
        s
    }
}

/// The position automaton of one pattern (see the module docs for its invariants).
#[derive(Clone, Debug)]
pub struct PositionAutomaton {
    /// `C_p`, per position.
    pub bytes: Vec<ByteSet>,
    /// `First`: `(p, looks before p)`, deduplicated.
    pub first: Vec<(u32, LookSet)>,
    /// `Last`: `(p, looks after p)`, deduplicated.
    pub last: Vec<(u32, LookSet)>,
    /// `Follow`: `(q, p, cond)` — `p` may follow `q` when `cond` holds between their
    /// bytes (never [`Cond::Never`]; at most one entry per pair).
    pub follow: Vec<(u32, u32, Cond)>,
    /// The look sets under which the empty string matches (empty: not nullable).
    pub nullable: Vec<LookSet>,
    /// Whether any word boundary occurs (the classes then split word bytes).
    pub uses_word: bool,
}

/// Bottom-up Glushkov sets of a sub-pattern.
struct Frag {
    first: Vec<(u32, LookSet)>,
    last: Vec<(u32, LookSet)>,
    nullable: Vec<LookSet>,
}

/// What a construction is building into.
struct Builder {
    bytes: Vec<ByteSet>,
    follow: Vec<(u32, u32, LookSet)>,
    max_positions: usize,
    uses_word: bool,
}

fn dedup<T: Ord>(mut v: Vec<T>) -> Vec<T> {
    v.sort_unstable();
    v.dedup();
    v
}

/// Drops look sets that can never hold anywhere and those implied by the empty set.
fn simplify_looks(v: Vec<LookSet>) -> Vec<LookSet> {
    let v: Vec<LookSet> = v.into_iter().filter(|l| !(l.has(LookSet::WORD) && l.has(LookSet::NOT_WORD))).collect();
    if v.contains(&LookSet::EMPTY) { vec![LookSet::EMPTY] } else { dedup(v) }
}

fn simplify_ends(v: Vec<(u32, LookSet)>) -> Vec<(u32, LookSet)> {
    let v = dedup(v.into_iter().filter(|(_, l)| !(l.has(LookSet::WORD) && l.has(LookSet::NOT_WORD))).collect());
    // An unconditional entry for p makes p's other entries redundant.
    let free: std::collections::HashSet<u32> =
        v.iter().filter(|(_, l)| *l == LookSet::EMPTY).map(|(p, _)| *p).collect();
    v.into_iter().filter(|(p, l)| *l == LookSet::EMPTY || !free.contains(p)).collect()
}

impl Builder {
    fn position(&mut self, set: ByteSet) -> Result<u32, NfaError> {
        if self.bytes.len() >= self.max_positions {
            return Err(NfaError::TooManyPositions { limit: self.max_positions });
        }
        self.bytes.push(set);
        Ok(self.bytes.len() as u32 - 1)
    }

    fn single(&mut self, set: ByteSet) -> Result<Frag, NfaError> {
        if set.is_empty() {
            // A class that matches nothing: no position, no match.
            return Ok(Frag { first: Vec::new(), last: Vec::new(), nullable: Vec::new() });
        }
        let p = self.position(set)?;
        Ok(Frag { first: vec![(p, LookSet::EMPTY)], last: vec![(p, LookSet::EMPTY)], nullable: Vec::new() })
    }

    fn link(&mut self, from: &[(u32, LookSet)], to: &[(u32, LookSet)]) {
        for &(q, lq) in from {
            for &(p, lp) in to {
                self.follow.push((q, p, lq.union(lp)));
            }
        }
    }

    fn concat(&mut self, a: Frag, b: Frag) -> Frag {
        self.link(&a.last, &b.first);
        let mut first = a.first;
        for n in &a.nullable {
            first.extend(b.first.iter().map(|&(p, l)| (p, l.union(*n))));
        }
        let mut last = b.last;
        for n in &b.nullable {
            last.extend(a.last.iter().map(|&(p, l)| (p, l.union(*n))));
        }
        let nullable = a.nullable.iter().flat_map(|x| b.nullable.iter().map(move |y| x.union(*y))).collect();
        Frag { first: simplify_ends(first), last: simplify_ends(last), nullable: simplify_looks(nullable) }
    }

    fn empty() -> Frag {
        Frag { first: Vec::new(), last: Vec::new(), nullable: vec![LookSet::EMPTY] }
    }

    fn optional(f: Frag) -> Frag {
        let mut nullable = f.nullable;
        nullable.push(LookSet::EMPTY);
        Frag { nullable: simplify_looks(nullable), ..f }
    }

    fn walk(&mut self, h: &Hir) -> Result<Frag, NfaError> {
        match h.kind() {
            HirKind::Empty => Ok(Builder::empty()),
            HirKind::Literal(lit) => {
                let mut f = Builder::empty();
                for &b in lit.0.iter() {
                    let mut s = ByteSet::default();
                    s.insert_range(b, b);
                    let next = self.single(s)?;
                    f = self.concat(f, next);
                }
                Ok(f)
            }
            HirKind::Class(Class::Bytes(c)) => {
                let mut s = ByteSet::default();
                c.ranges().iter().for_each(|r| s.insert_range(r.start(), r.end()));
                self.single(s)
            }
            HirKind::Class(Class::Unicode(c)) => {
                let mut s = ByteSet::default();
                for r in c.ranges() {
                    if u32::from(r.end()) > 0x7f {
                        return Err(NfaError::Unsupported {
                            construct: format!(
                                "a Unicode class reaching beyond ASCII ({h}); write the pattern in ASCII mode, (?-u)"
                            ),
                        });
                    }
                    s.insert_range(r.start() as u8, r.end() as u8);
                }
                self.single(s)
            }
            HirKind::Look(look) => {
                let set = match look {
                    Look::Start => LookSet::START,
                    Look::End => LookSet::END,
                    Look::WordAscii => LookSet::WORD,
                    Look::WordAsciiNegate => LookSet::NOT_WORD,
                    other => {
                        return Err(NfaError::Unsupported {
                            construct: format!("the look-around {}", look_name(*other)),
                        });
                    }
                };
                if matches!(look, Look::WordAscii | Look::WordAsciiNegate) {
                    self.uses_word = true;
                }
                Ok(Frag { first: Vec::new(), last: Vec::new(), nullable: vec![set] })
            }
            HirKind::Capture(c) => self.walk(&c.sub),
            HirKind::Concat(items) => {
                let mut f = Builder::empty();
                for i in items {
                    let next = self.walk(i)?;
                    f = self.concat(f, next);
                }
                Ok(f)
            }
            HirKind::Alternation(alts) => {
                let mut f = Frag { first: Vec::new(), last: Vec::new(), nullable: Vec::new() };
                for a in alts {
                    let g = self.walk(a)?;
                    f.first.extend(g.first);
                    f.last.extend(g.last);
                    f.nullable.extend(g.nullable);
                }
                Ok(Frag {
                    first: simplify_ends(f.first),
                    last: simplify_ends(f.last),
                    nullable: simplify_looks(f.nullable),
                })
            }
            HirKind::Repetition(r) => {
                // X{m,n} = X^m · (X(X(…)?)?)? with n − m nested optionals, so each copy
                // links to the next only; X{m,} = X^(m−1) · X+ (X* when m = 0).
                let mut f = Builder::empty();
                let fixed = match r.max {
                    None => r.min.saturating_sub(1),
                    Some(_) => r.min,
                };
                for _ in 0..fixed {
                    let next = self.walk(&r.sub)?;
                    f = self.concat(f, next);
                }
                match r.max {
                    None => {
                        let g = self.walk(&r.sub)?;
                        self.link(&g.last, &g.first);
                        let g = if r.min == 0 { Builder::optional(g) } else { g };
                        Ok(self.concat(f, g))
                    }
                    Some(max) => {
                        let copies: Vec<Frag> = (r.min..max).map(|_| self.walk(&r.sub)).collect::<Result<_, _>>()?;
                        let mut tail: Option<Frag> = None;
                        for c in copies.into_iter().rev() {
                            let inner = match tail.take() {
                                Some(t) => self.concat(c, t),
                                None => c,
                            };
                            tail = Some(Builder::optional(inner));
                        }
                        Ok(match tail {
                            Some(t) => self.concat(f, t),
                            None => f,
                        })
                    }
                }
            }
        }
    }
}

/// The name of a look-around assertion as a pattern writes it.
fn look_name(l: Look) -> &'static str {
    match l {
        Look::Start => "^ (start of text)",
        Look::End => "$ (end of text)",
        Look::StartLF | Look::EndLF => "multi-line ^ or $ ((?m))",
        Look::StartCRLF | Look::EndCRLF => "CRLF-aware ^ or $ ((?mR))",
        Look::WordUnicode | Look::WordUnicodeNegate => "Unicode word boundary \\b or \\B (use (?-u:\\b))",
        Look::WordStartAscii | Look::WordEndAscii => "word start or end \\< \\> (\\b{start}, \\b{end})",
        Look::WordStartHalfAscii | Look::WordEndHalfAscii => "half word boundary \\b{start-half} or \\b{end-half}",
        _ => "Unicode word start or end",
    }
}

impl PositionAutomaton {
    /// The automaton of a parsed (and, for search, trimmed) pattern with at most
    /// `max_positions` positions.
    pub fn from_hir(hir: &Hir, max_positions: usize) -> Result<PositionAutomaton, NfaError> {
        let mut b = Builder { bytes: Vec::new(), follow: Vec::new(), max_positions, uses_word: false };
        let f = b.walk(hir)?;
        // Follow edges lie between two bytes: reduce each to its condition there and
        // join the conditions of one pair.
        let mut pairs: std::collections::HashMap<(u32, u32), Cond> = std::collections::HashMap::new();
        for (q, p, l) in b.follow {
            let c = l.cond(Boundary::Middle);
            if c != Cond::Never {
                let e = pairs.entry((q, p)).or_insert(Cond::Never);
                *e = e.or(c);
            }
        }
        let mut follow: Vec<(u32, u32, Cond)> = pairs.into_iter().map(|((q, p), c)| (q, p, c)).collect();
        follow.sort_unstable();
        Ok(PositionAutomaton {
            bytes: b.bytes,
            first: f.first,
            last: f.last,
            follow,
            nullable: f.nullable,
            uses_word: b.uses_word,
        })
    }

    /// Positions.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Whether it has no position (it matches at most the empty string).
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Per position, the condition under which a match may start there at a boundary
    /// of kind `at` ([`Cond::Never`] for positions not in `First`).
    pub fn first_conds(&self, at: Boundary) -> Vec<Cond> {
        let mut v = vec![Cond::Never; self.len()];
        for &(p, l) in &self.first {
            v[p as usize] = v[p as usize].or(l.cond(at));
        }
        v
    }

    /// Per position, the condition under which a match may end after it at a boundary
    /// of kind `at`.
    pub fn last_conds(&self, at: Boundary) -> Vec<Cond> {
        let mut v = vec![Cond::Never; self.len()];
        for &(p, l) in &self.last {
            v[p as usize] = v[p as usize].or(l.cond(at));
        }
        v
    }

    /// The condition under which the empty string matches at a boundary of kind `at`.
    pub fn nullable_cond(&self, at: Boundary) -> Cond {
        Cond::any(self.nullable.iter().map(|l| l.cond(at)))
    }
}

/// Symbol classes: the coarsest partition of the 256 bytes that every given byte set
/// (and the word bytes, when asked) is a union of.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SymbolClasses {
    /// The class of every byte.
    pub of_byte: [u16; 256],
    /// Classes (`1..=256`).
    pub count: usize,
}

impl SymbolClasses {
    /// The partition refined by `sets`.
    pub fn refine<'a>(sets: impl IntoIterator<Item = &'a ByteSet>) -> SymbolClasses {
        let mut of_byte = [0u16; 256];
        let mut count = 1usize;
        let mut seen: std::collections::HashSet<ByteSet> = std::collections::HashSet::new();
        for s in sets {
            if !seen.insert(*s) {
                continue;
            }
            let mut renumber: std::collections::HashMap<(u16, bool), u16> = std::collections::HashMap::new();
            let mut next = 0u16;
            for b in 0..=255u8 {
                let key = (of_byte[usize::from(b)], s.contains(b));
                let id = *renumber.entry(key).or_insert_with(|| {
                    next += 1;
                    next - 1
                });
                of_byte[usize::from(b)] = id;
            }
            count = usize::from(next);
        }
        SymbolClasses { of_byte, count }
    }

    /// The classes a byte set is the union of, as a bit mask over classes.
    pub fn classes_of(&self, set: &ByteSet) -> Vec<bool> {
        let mut v = vec![false; self.count];
        for b in 0..=255u8 {
            if set.contains(b) {
                v[usize::from(self.of_byte[usize::from(b)])] = true;
            }
        }
        v
    }

    /// The bytes of every class, as byte sets (the planes of the symbol lookup).
    pub fn members(&self) -> Vec<ByteSet> {
        let mut v = vec![ByteSet::default(); self.count];
        for b in 0..=255u8 {
            v[usize::from(self.of_byte[usize::from(b)])].insert_range(b, b);
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use regex_automata::util::syntax;

    fn auto(p: &str) -> PositionAutomaton {
        let hir = syntax::parse_with(p, &syntax::Config::new().utf8(false)).unwrap();
        PositionAutomaton::from_hir(&hir, 1000).unwrap()
    }

    #[test]
    fn glushkov_sets_of_small_patterns() {
        let a = auto("(?-u)ab|c");
        assert_eq!(a.len(), 3);
        assert_eq!(a.first, vec![(0, LookSet::EMPTY), (2, LookSet::EMPTY)]);
        assert_eq!(a.last, vec![(1, LookSet::EMPTY), (2, LookSet::EMPTY)]);
        assert_eq!(a.follow, vec![(0, 1, Cond::Always)]);
        assert!(a.nullable.is_empty());
        let a = auto("(?-u)a*");
        assert_eq!(a.follow, vec![(0, 0, Cond::Always)]);
        assert_eq!(a.nullable, vec![LookSet::EMPTY]);
        // Counted repetitions unroll: a{2,4} has 4 positions, each copy linked to the next.
        let a = auto("(?-u)a{2,4}");
        assert_eq!(a.len(), 4);
        assert_eq!(a.follow, vec![(0, 1, Cond::Always), (1, 2, Cond::Always), (2, 3, Cond::Always)]);
        assert_eq!(a.last.len(), 3);
    }

    #[test]
    fn looks_become_conditions() {
        let a = auto("(?-u)\\ba\\b");
        assert_eq!(a.first_conds(Boundary::Start), vec![Cond::Wb]);
        assert_eq!(a.last_conds(Boundary::End), vec![Cond::Wb]);
        let a = auto("(?-u)^a$");
        assert_eq!(a.first_conds(Boundary::Middle), vec![Cond::Never]);
        assert_eq!(a.first_conds(Boundary::Start), vec![Cond::Always]);
        assert_eq!(a.last_conds(Boundary::Middle), vec![Cond::Never]);
        // ^ between two bytes never holds: the edge is dropped.
        assert!(auto("(?-u)a^b").follow.is_empty());
        assert_eq!(auto("(?-u)\\b\\B").nullable_cond(Boundary::Middle), Cond::Never);
        assert_eq!(auto("(?-u)(?:\\b|\\B)").nullable_cond(Boundary::Middle), Cond::Always);
    }

    #[test]
    fn unsupported_constructs_are_named() {
        let hir = syntax::parse_with("(?m)^a", &syntax::Config::new().utf8(false)).unwrap();
        let e = PositionAutomaton::from_hir(&hir, 100).unwrap_err().to_string();
        assert!(e.contains("multi-line ^ or $"), "{e}");
        let hir = syntax::parse_with("\\bé", &syntax::Config::new().utf8(false)).unwrap();
        let e = PositionAutomaton::from_hir(&hir, 100).unwrap_err().to_string();
        assert!(e.contains("Unicode word boundary"), "{e}");
        let hir = syntax::parse_with("(?-u)a{200}", &syntax::Config::new().utf8(false)).unwrap();
        let e = PositionAutomaton::from_hir(&hir, 100).unwrap_err();
        assert_eq!(e, NfaError::TooManyPositions { limit: 100 });
    }

    #[test]
    fn classes_refine_every_set() {
        let a = auto("(?-u)[a-c]x[b-d]");
        let c = SymbolClasses::refine(&a.bytes);
        // {a}, {b,c}, {d}, {x}, the rest.
        assert_eq!(c.count, 5);
        assert_eq!(c.of_byte[usize::from(b'b')], c.of_byte[usize::from(b'c')]);
        assert_ne!(c.of_byte[usize::from(b'a')], c.of_byte[usize::from(b'b')]);
        let members = c.members();
        assert_eq!(members.iter().map(ByteSet::len).sum::<usize>(), 256);
    }
}
