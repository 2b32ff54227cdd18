//! A deliberately tiny FHIRPath subset for invariants.
//!
//! Full FHIRPath is a language of its own; most R4 invariants, though, are of the shape
//! `a.b.exists() or c.empty()`. We evaluate exactly that subset — paths, `exists()`, `empty()`,
//! `not()`, `hasValue()`, `and`/`or`/`xor`/`implies`, parentheses — with FHIRPath's three-valued
//! logic. The generator only ships invariants whose expression stays inside the subset, and
//! [`Expr::parse`] rejects anything else, so an invariant is either evaluated exactly or not at all.

use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Expr {
    /// A path from the context element; a leading `$this` is implied.
    Path(Vec<String>),
    Exists(Box<Expr>),
    Empty(Box<Expr>),
    Not(Box<Expr>),
    HasValue(Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Xor(Box<Expr>, Box<Expr>),
    Implies(Box<Expr>, Box<Expr>),
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Dot,
    Open,
    Close,
}

fn tokenize(s: &str) -> Option<Vec<Tok>> {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            c if c.is_ascii_whitespace() => i += 1,
            b'.' => {
                out.push(Tok::Dot);
                i += 1
            }
            b'(' => {
                out.push(Tok::Open);
                i += 1
            }
            b')' => {
                out.push(Tok::Close);
                i += 1
            }
            c if c.is_ascii_alphabetic() || c == b'_' || c == b'$' => {
                let start = i;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b'$') {
                    i += 1;
                }
                out.push(Tok::Ident(s[start..i].to_string()));
            }
            _ => return None,
        }
    }
    Some(out)
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
}

impl Parser {
    fn peek_ident(&self, word: &str) -> bool {
        matches!(self.toks.get(self.pos), Some(Tok::Ident(w)) if w == word)
    }
    fn implies(&mut self) -> Option<Expr> {
        let mut left = self.or()?;
        while self.peek_ident("implies") {
            self.pos += 1;
            left = Expr::Implies(Box::new(left), Box::new(self.or()?));
        }
        Some(left)
    }
    fn or(&mut self) -> Option<Expr> {
        let mut left = self.and()?;
        loop {
            if self.peek_ident("or") {
                self.pos += 1;
                left = Expr::Or(Box::new(left), Box::new(self.and()?));
            } else if self.peek_ident("xor") {
                self.pos += 1;
                left = Expr::Xor(Box::new(left), Box::new(self.and()?));
            } else {
                return Some(left);
            }
        }
    }
    fn and(&mut self) -> Option<Expr> {
        let mut left = self.term()?;
        while self.peek_ident("and") {
            self.pos += 1;
            left = Expr::And(Box::new(left), Box::new(self.term()?));
        }
        Some(left)
    }
    /// primary ( '.' (ident | func '(' ')') )*
    fn term(&mut self) -> Option<Expr> {
        let mut e = match self.toks.get(self.pos)? {
            Tok::Open => {
                self.pos += 1;
                let inner = self.implies()?;
                (self.toks.get(self.pos)? == &Tok::Close).then_some(())?;
                self.pos += 1;
                inner
            }
            Tok::Ident(w) if !matches!(w.as_str(), "and" | "or" | "xor" | "implies") => {
                self.pos += 1;
                if self.toks.get(self.pos) == Some(&Tok::Open) {
                    return None; // a function call without a focus: outside the subset
                }
                Expr::Path(if w == "$this" { vec![] } else { vec![w.clone()] })
            }
            _ => return None,
        };
        while self.toks.get(self.pos) == Some(&Tok::Dot) {
            self.pos += 1;
            let Some(Tok::Ident(w)) = self.toks.get(self.pos).cloned() else {
                return None;
            };
            self.pos += 1;
            if self.toks.get(self.pos) == Some(&Tok::Open) {
                (self.toks.get(self.pos + 1)? == &Tok::Close).then_some(())?;
                self.pos += 2;
                e = match w.as_str() {
                    "exists" => Expr::Exists(Box::new(e)),
                    "empty" => Expr::Empty(Box::new(e)),
                    "not" => Expr::Not(Box::new(e)),
                    "hasValue" => Expr::HasValue(Box::new(e)),
                    _ => return None,
                };
            } else {
                match &mut e {
                    Expr::Path(p) => p.push(w),
                    _ => return None,
                }
            }
        }
        Some(e)
    }
}

enum Val<'a> {
    Coll(Vec<&'a Value>),
    Bool(Option<bool>),
}

impl Val<'_> {
    /// FHIRPath singleton evaluation of a collection as a boolean.
    fn truth(&self) -> Option<bool> {
        match self {
            Val::Bool(b) => *b,
            Val::Coll(c) if c.is_empty() => None,
            Val::Coll(c) if c.len() == 1 => Some(c[0].as_bool().unwrap_or(true)),
            Val::Coll(_) => Some(true),
        }
    }
    fn is_empty(&self) -> bool {
        match self {
            Val::Bool(b) => b.is_none(),
            Val::Coll(c) => c.is_empty(),
        }
    }
}

/// Children of `v` named `name`; a choice element `value` also matches `valueQuantity`, ...
pub(crate) fn children<'a>(v: &'a Value, name: &str, out: &mut Vec<&'a Value>) {
    let Some(obj) = v.as_object() else { return };
    let mut push = |x: &'a Value| match x {
        Value::Array(items) => out.extend(items.iter().filter(|i| !i.is_null())),
        Value::Null => {}
        other => out.push(other),
    };
    if let Some(x) = obj.get(name) {
        push(x);
        return;
    }
    for (k, x) in obj {
        if k.len() > name.len() && k.starts_with(name) && k.as_bytes()[name.len()].is_ascii_uppercase() {
            push(x);
        }
    }
}

impl Expr {
    /// Parse an expression of the supported subset; `None` for anything outside it.
    pub fn parse(s: &str) -> Option<Expr> {
        let mut p = Parser { toks: tokenize(s)?, pos: 0 };
        let e = p.implies()?;
        (p.pos == p.toks.len()).then_some(e)
    }

    /// Evaluate against a context element: `Some(true/false)`, or `None` for the empty result
    /// (which an invariant treats as satisfied).
    pub fn eval(&self, ctx: &Value) -> Option<bool> {
        self.eval_val(ctx).truth()
    }

    fn eval_val<'a>(&self, ctx: &'a Value) -> Val<'a> {
        let tri_and = |a: Option<bool>, b: Option<bool>| match (a, b) {
            (Some(false), _) | (_, Some(false)) => Some(false),
            (Some(true), Some(true)) => Some(true),
            _ => None,
        };
        let tri_or = |a: Option<bool>, b: Option<bool>| match (a, b) {
            (Some(true), _) | (_, Some(true)) => Some(true),
            (Some(false), Some(false)) => Some(false),
            _ => None,
        };
        match self {
            Expr::Path(segs) => {
                let mut cur = vec![ctx];
                for s in segs {
                    let mut next = Vec::new();
                    for v in cur {
                        children(v, s, &mut next);
                    }
                    cur = next;
                }
                Val::Coll(cur)
            }
            Expr::Exists(e) => Val::Bool(Some(!e.eval_val(ctx).is_empty())),
            Expr::Empty(e) => Val::Bool(Some(e.eval_val(ctx).is_empty())),
            Expr::Not(e) => Val::Bool(e.eval_val(ctx).truth().map(|b| !b)),
            Expr::HasValue(e) => Val::Bool(Some(match e.eval_val(ctx) {
                Val::Coll(c) => c.len() == 1 && !c[0].is_object(),
                Val::Bool(b) => b.is_some(),
            })),
            Expr::And(a, b) => Val::Bool(tri_and(a.eval(ctx), b.eval(ctx))),
            Expr::Or(a, b) => Val::Bool(tri_or(a.eval(ctx), b.eval(ctx))),
            Expr::Xor(a, b) => Val::Bool(match (a.eval(ctx), b.eval(ctx)) {
                (Some(x), Some(y)) => Some(x != y),
                _ => None,
            }),
            Expr::Implies(a, b) => Val::Bool(match (a.eval(ctx), b.eval(ctx)) {
                (Some(false), _) => Some(true),
                (_, Some(true)) => Some(true),
                (Some(true), r) => r,
                (None, _) => None,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn evaluates_the_common_shapes() {
        let e = Expr::parse("code.empty() or system.exists()").expect("parses");
        assert_eq!(e.eval(&json!({"code": "kg"})), Some(false));
        assert_eq!(e.eval(&json!({"code": "kg", "system": "http://unitsofmeasure.org"})), Some(true));
        let e = Expr::parse("dataAbsentReason.empty() or value.empty()").expect("parses");
        assert_eq!(e.eval(&json!({"valueQuantity": {"value": 1}, "dataAbsentReason": {"text": "x"}})), Some(false));
        let e = Expr::parse("(isModifier.exists() and isModifier) implies isModifierReason.exists()").expect("parses");
        assert_eq!(e.eval(&json!({"isModifier": true})), Some(false));
        assert_eq!(e.eval(&json!({"isModifier": false})), Some(true));
    }

    #[test]
    fn rejects_what_it_cannot_evaluate() {
        assert!(Expr::parse("type.select(code).isDistinct()").is_none());
        assert!(Expr::parse("value.matches('[0-9]+')").is_none());
        assert!(Expr::parse("a or").is_none());
    }
}
