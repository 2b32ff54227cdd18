//! A FHIRPath evaluator for invariants, on `serde_json::Value`s.
//!
//! R4's invariants use a modest part of FHIRPath: paths, literals, the boolean operators with
//! three-valued logic, comparisons, `in`/`contains`, `|`, `is`/`as`, and a few dozen functions
//! (`exists`, `all`, `where`, `select`, `count`, `isDistinct`, `matches`, ...). We evaluate that
//! part directly on the JSON, without a typed model. [`Expr::parse`] rejects what it does not
//! know (`memberOf()`, `htmlChecks()`, `today()`, ...), and an evaluation that
//! would need type information the JSON does not carry gives up instead of guessing, so an
//! invariant is either evaluated exactly or not at all: it never produces a false error.
//!
//! Why our own and not a general engine: measured build cost and speed (of
//! helios-fhirpath measured against this one).

use regex::Regex;
use serde_json::Value;

#[derive(Debug, Clone)]
pub(crate) enum Expr {
    /// The focus (`$this`, or the start of a path).
    This,
    /// `%context`: the element the invariant is evaluated on.
    Context,
    /// `%resource`: the resource that holds it.
    Resource,
    /// `%rootResource`: the resource a contained resource is contained in (else `%resource`).
    RootResource,
    Lit(Lit),
    /// `focus.name`; a choice element `value` also matches `valueQuantity`, ...
    Member(Box<Expr>, String),
    Call(Box<Expr>, Func, Vec<Expr>),
    Index(Box<Expr>, Box<Expr>),
    Bin(Op, Box<Expr>, Box<Expr>),
    Is(Box<Expr>, String),
    As(Box<Expr>, String),
    Neg(Box<Expr>),
}

#[derive(Debug, Clone)]
pub(crate) enum Lit {
    Bool(bool),
    Str(String),
    Num(f64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    And,
    Or,
    Xor,
    Implies,
    Eq,
    Ne,
    Equiv,
    NotEquiv,
    Lt,
    Gt,
    Le,
    Ge,
    In,
    Contains,
    Union,
    Add,
    Sub,
    Mul,
    Div,
    Concat,
}

#[derive(Debug, Clone)]
pub(crate) enum Func {
    Empty,
    Exists,
    All,
    Not,
    HasValue,
    Count,
    First,
    Last,
    Tail,
    Where,
    Select,
    Distinct,
    IsDistinct,
    StartsWith,
    EndsWith,
    ContainsStr,
    Matches(Option<Regex>),
    Length,
    Substring,
    Upper,
    Lower,
    Iif,
    Children,
    Descendants,
    Trace,
    OfType(String),
    Intersect,
    Exclude,
    UnionFn,
    Combine,
    AllTrue,
    AnyTrue,
    AllFalse,
    AnyFalse,
    ToInteger,
    ReplaceMatches,
    Single,
    ToStringFn,
    /// `extension(url)`: the extensions with that url.
    Extension,
    /// `resolve()`: the resources references point to, found among the contained resources or
    /// in the enclosing Bundle (see [`resolve`]).
    Resolve,
}

// ---------------------------------------------------------------- lexer

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    /// `%name` constants.
    Const(String),
    Str(String),
    Num(f64),
    Sym(&'static str),
}

const SYMS: &[&str] =
    &["<=", ">=", "!=", "!~", "=", "~", "<", ">", "|", "+", "-", "*", "/", "&", "(", ")", "[", "]", ".", ","];

fn tokenize(s: &str) -> Option<Vec<Tok>> {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    'outer: while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        if c == b'\'' {
            let mut v = String::new();
            let mut j = i + 1;
            let chars: Vec<char> = s[j..].chars().collect();
            let mut k = 0;
            while k < chars.len() {
                match chars[k] {
                    '\'' => {
                        j += chars[..=k].iter().map(|c| c.len_utf8()).sum::<usize>();
                        out.push(Tok::Str(v));
                        i = j;
                        continue 'outer;
                    }
                    '\\' => {
                        let n = *chars.get(k + 1)?;
                        match n {
                            'n' => v.push('\n'),
                            't' => v.push('\t'),
                            'r' => v.push('\r'),
                            'f' => v.push('\u{c}'),
                            '\'' | '"' | '`' | '\\' | '/' => v.push(n),
                            // Not a FHIRPath escape: kept as written (a regex's `\s` stays `\s`).
                            other => {
                                v.push('\\');
                                v.push(other);
                            }
                        }
                        k += 2;
                    }
                    ch => {
                        v.push(ch);
                        k += 1;
                    }
                }
            }
            return None;
        }
        if c == b'`' {
            let end = s[i + 1..].find('`')? + i + 1;
            out.push(Tok::Ident(s[i + 1..end].to_string()));
            i = end + 1;
            continue;
        }
        if c.is_ascii_digit() {
            let start = i;
            while i < b.len()
                && (b[i].is_ascii_digit() || (b[i] == b'.' && b.get(i + 1).is_some_and(u8::is_ascii_digit)))
            {
                i += 1;
            }
            out.push(Tok::Num(s[start..i].parse().ok()?));
            continue;
        }
        if c.is_ascii_alphabetic() || c == b'_' || c == b'$' || c == b'%' {
            let start = i;
            i += 1;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            let word = &s[start..i];
            out.push(match word.strip_prefix('%') {
                Some(name) => Tok::Const(name.to_string()),
                None => Tok::Ident(word.to_string()),
            });
            continue;
        }
        for sym in SYMS {
            if s[i..].starts_with(sym) {
                out.push(Tok::Sym(sym));
                i += sym.len();
                continue 'outer;
            }
        }
        return None;
    }
    Some(out)
}

// ---------------------------------------------------------------- parser

/// Types whose test (`is`, `as`, `ofType`) can be decided on the JSON in general: not the
/// string-like primitives (`as(canonical)` on a JSON string depends on the definition). Complex
/// types are decided through the choice key (`valueQuantity`), or not at all.
fn checkable_type(t: &str) -> bool {
    use super::primitive::{json_kind, JsonKind, TYPES};
    !TYPES.iter().any(|p| p.eq_ignore_ascii_case(t) && json_kind(p) == JsonKind::String)
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }
    fn sym(&mut self, s: &str) -> bool {
        if matches!(self.peek(), Some(Tok::Sym(x)) if *x == s) {
            self.pos += 1;
            true
        } else {
            false
        }
    }
    fn word(&mut self, w: &str) -> bool {
        if matches!(self.peek(), Some(Tok::Ident(x)) if x == w) {
            self.pos += 1;
            true
        } else {
            false
        }
    }
    fn expect(&mut self, s: &str) -> Option<()> {
        self.sym(s).then_some(())
    }

    fn implies(&mut self) -> Option<Expr> {
        let mut l = self.or()?;
        while self.word("implies") {
            l = Expr::Bin(Op::Implies, Box::new(l), Box::new(self.or()?));
        }
        Some(l)
    }
    fn or(&mut self) -> Option<Expr> {
        let mut l = self.and()?;
        loop {
            let op = if self.word("or") {
                Op::Or
            } else if self.word("xor") {
                Op::Xor
            } else {
                return Some(l);
            };
            l = Expr::Bin(op, Box::new(l), Box::new(self.and()?));
        }
    }
    fn and(&mut self) -> Option<Expr> {
        let mut l = self.membership()?;
        while self.word("and") {
            l = Expr::Bin(Op::And, Box::new(l), Box::new(self.membership()?));
        }
        Some(l)
    }
    fn membership(&mut self) -> Option<Expr> {
        let mut l = self.equality()?;
        loop {
            let op = if self.word("in") {
                Op::In
            } else if self.word("contains") {
                Op::Contains
            } else {
                return Some(l);
            };
            l = Expr::Bin(op, Box::new(l), Box::new(self.equality()?));
        }
    }
    fn equality(&mut self) -> Option<Expr> {
        let mut l = self.inequality()?;
        loop {
            let op = [("=", Op::Eq), ("!=", Op::Ne), ("~", Op::Equiv), ("!~", Op::NotEquiv)]
                .into_iter()
                .find(|(s, _)| self.sym(s))
                .map(|(_, o)| o);
            let Some(op) = op else { return Some(l) };
            l = Expr::Bin(op, Box::new(l), Box::new(self.inequality()?));
        }
    }
    fn inequality(&mut self) -> Option<Expr> {
        let mut l = self.union()?;
        loop {
            let op = [("<=", Op::Le), (">=", Op::Ge), ("<", Op::Lt), (">", Op::Gt)]
                .into_iter()
                .find(|(s, _)| self.sym(s))
                .map(|(_, o)| o);
            let Some(op) = op else { return Some(l) };
            l = Expr::Bin(op, Box::new(l), Box::new(self.union()?));
        }
    }
    fn union(&mut self) -> Option<Expr> {
        let mut l = self.type_expr()?;
        while self.sym("|") {
            l = Expr::Bin(Op::Union, Box::new(l), Box::new(self.type_expr()?));
        }
        Some(l)
    }
    fn type_expr(&mut self) -> Option<Expr> {
        let mut l = self.additive()?;
        loop {
            // `$this is/as <type>`: the context's type is known where it is a choice element
            // (`effectiveDateTime`), so any type may be asked of it (vs-1); elsewhere only the
            // types that JSON shows.
            let this = matches!(l, Expr::This);
            if self.word("is") {
                let t = if this { self.type_name_any()? } else { self.type_name()? };
                l = Expr::Is(Box::new(l), t);
            } else if self.word("as") {
                let t = if this { self.type_name_any()? } else { self.type_name()? };
                l = Expr::As(Box::new(l), t);
            } else {
                return Some(l);
            }
        }
    }
    fn type_name(&mut self) -> Option<String> {
        let name = self.type_name_any()?;
        checkable_type(&name).then_some(name)
    }
    fn type_name_any(&mut self) -> Option<String> {
        let Some(Tok::Ident(mut name)) = self.peek().cloned() else { return None };
        self.pos += 1;
        // FHIR.Quantity, System.String
        while self.sym(".") {
            let Some(Tok::Ident(n)) = self.peek().cloned() else { return None };
            self.pos += 1;
            name = n;
        }
        Some(name)
    }
    fn additive(&mut self) -> Option<Expr> {
        let mut l = self.multiplicative()?;
        loop {
            let op = [("+", Op::Add), ("-", Op::Sub), ("&", Op::Concat)]
                .into_iter()
                .find(|(s, _)| self.sym(s))
                .map(|(_, o)| o);
            let Some(op) = op else { return Some(l) };
            l = Expr::Bin(op, Box::new(l), Box::new(self.multiplicative()?));
        }
    }
    fn multiplicative(&mut self) -> Option<Expr> {
        let mut l = self.unary()?;
        loop {
            let op = if self.sym("*") {
                Op::Mul
            } else if self.sym("/") {
                Op::Div
            } else {
                return Some(l);
            };
            l = Expr::Bin(op, Box::new(l), Box::new(self.unary()?));
        }
    }
    fn unary(&mut self) -> Option<Expr> {
        if self.sym("-") {
            return Some(Expr::Neg(Box::new(self.unary()?)));
        }
        self.invocation_chain()
    }
    fn invocation_chain(&mut self) -> Option<Expr> {
        let mut e = self.term()?;
        loop {
            if self.sym(".") {
                let Some(Tok::Ident(name)) = self.peek().cloned() else { return None };
                self.pos += 1;
                e = self.member_or_call(e, name)?;
            } else if self.sym("[") {
                let idx = self.implies()?;
                self.expect("]")?;
                e = Expr::Index(Box::new(e), Box::new(idx));
            } else {
                return Some(e);
            }
        }
    }
    fn member_or_call(&mut self, focus: Expr, name: String) -> Option<Expr> {
        if !self.sym("(") {
            return Some(Expr::Member(Box::new(focus), name));
        }
        let mut args = Vec::new();
        if !self.sym(")") {
            loop {
                args.push(self.implies()?);
                if self.sym(")") {
                    break;
                }
                self.expect(",")?;
            }
        }
        let f = match (name.as_str(), args.len()) {
            ("empty", 0) => Func::Empty,
            ("exists", 0 | 1) => Func::Exists,
            ("all", 1) => Func::All,
            ("not", 0) => Func::Not,
            ("hasValue", 0) => Func::HasValue,
            ("count", 0) => Func::Count,
            ("first", 0) => Func::First,
            ("last", 0) => Func::Last,
            ("tail", 0) => Func::Tail,
            ("where", 1) => Func::Where,
            ("select", 1) => Func::Select,
            ("distinct", 0) => Func::Distinct,
            ("isDistinct", 0) => Func::IsDistinct,
            ("startsWith", 1) => Func::StartsWith,
            ("endsWith", 1) => Func::EndsWith,
            ("contains", 1) => Func::ContainsStr,
            ("matches", 1) => {
                // A literal pattern is compiled once; FHIRPath (R4) matches the whole string.
                let re = match &args[0] {
                    Expr::Lit(Lit::Str(p)) => Some(Regex::new(&format!("^(?s:{p})$")).ok()?),
                    _ => None,
                };
                Func::Matches(re)
            }
            ("length", 0) => Func::Length,
            ("substring", 1 | 2) => Func::Substring,
            ("upper", 0) => Func::Upper,
            ("lower", 0) => Func::Lower,
            ("iif", 2 | 3) => Func::Iif,
            ("children", 0) => Func::Children,
            ("descendants", 0) => Func::Descendants,
            ("trace", 1 | 2) => Func::Trace,
            ("ofType", 1) => match &args[0] {
                Expr::Member(f, t) if matches!(**f, Expr::This) && checkable_type(t) => Func::OfType(t.clone()),
                _ => return None,
            },
            ("is", 1) | ("as", 1) => {
                let Expr::Member(f, t) = &args[0] else { return None };
                if !matches!(**f, Expr::This) || !checkable_type(t) {
                    return None;
                }
                let t = t.clone();
                return Some(if name == "is" { Expr::Is(Box::new(focus), t) } else { Expr::As(Box::new(focus), t) });
            }
            ("intersect", 1) => Func::Intersect,
            ("exclude", 1) => Func::Exclude,
            ("union", 1) => Func::UnionFn,
            ("combine", 1) => Func::Combine,
            ("allTrue", 0) => Func::AllTrue,
            ("allFalse", 0) => Func::AllFalse,
            ("anyFalse", 0) => Func::AnyFalse,
            ("toInteger", 0) => Func::ToInteger,
            ("replaceMatches", 2) => Func::ReplaceMatches,
            ("anyTrue", 0) => Func::AnyTrue,
            ("single", 0) => Func::Single,
            ("toString", 0) => Func::ToStringFn,
            ("extension", 1) => Func::Extension,
            ("resolve", 0) => Func::Resolve,
            _ => return None, // memberOf(), htmlChecks(), today(), ...: not evaluated
        };
        Some(Expr::Call(Box::new(focus), f, args))
    }
    fn term(&mut self) -> Option<Expr> {
        let t = self.peek()?.clone();
        self.pos += 1;
        match t {
            Tok::Sym("(") => {
                let e = self.implies()?;
                self.expect(")")?;
                Some(e)
            }
            Tok::Str(s) => Some(Expr::Lit(Lit::Str(s))),
            Tok::Num(n) => Some(Expr::Lit(Lit::Num(n))),
            Tok::Const(c) => {
                let v = match c.as_str() {
                    "context" => return Some(Expr::Context),
                    "resource" => return Some(Expr::Resource),
                    "rootResource" => return Some(Expr::RootResource),
                    "ucum" => "http://unitsofmeasure.org",
                    "loinc" => "http://loinc.org",
                    "sct" => "http://snomed.info/sct",
                    _ => return None, // %resource, %context, ...: not evaluated
                };
                Some(Expr::Lit(Lit::Str(v.to_string())))
            }
            Tok::Ident(w) => match w.as_str() {
                "true" => Some(Expr::Lit(Lit::Bool(true))),
                "false" => Some(Expr::Lit(Lit::Bool(false))),
                "$this" => Some(Expr::This),
                "and" | "or" | "xor" | "implies" | "is" | "as" | "in" | "contains" => None,
                w if w.starts_with('$') => None, // $index, $total
                _ => self.member_or_call(Expr::This, w),
            },
            _ => None,
        }
    }
}

// ---------------------------------------------------------------- evaluation

/// One item of a collection: a JSON node (with the type its choice key names, if any) or a
/// computed value.
#[derive(Debug, Clone)]
enum Item<'a> {
    J(&'a Value, Option<&'a str>),
    B(bool),
    S(String),
    N(f64),
}

/// What `%context`, `%resource` and `%rootResource` are, and the Bundle around them (for
/// `resolve()`).
struct Env<'a> {
    context: &'a Value,
    resource: Option<&'a Value>,
    root: Option<&'a Value>,
    bundle: Option<&'a Value>,
}

/// Evaluation gave up: the result would depend on something the JSON does not say.
struct Unknown;

type Coll<'a> = Vec<Item<'a>>;
type R<T> = Result<T, Unknown>;

/// Children of `v` named `name`; a choice element `value` also matches `valueQuantity`, ...
pub(crate) fn children<'a>(v: &'a Value, name: &str, out: &mut Vec<&'a Value>) {
    let mut items = Vec::new();
    typed_children(v, name, &mut items);
    out.extend(items.into_iter().map(|(v, _)| v));
}

fn typed_children<'a>(v: &'a Value, name: &str, out: &mut Vec<(&'a Value, Option<&'a str>)>) {
    let Some(obj) = v.as_object() else { return };
    let mut push = |x: &'a Value, ty: Option<&'a str>| match x {
        Value::Array(items) => out.extend(items.iter().filter(|i| !i.is_null()).map(|i| (i, ty))),
        Value::Null => {}
        other => out.push((other, ty)),
    };
    if let Some(x) = obj.get(name) {
        push(x, None);
        return;
    }
    for (k, x) in obj {
        if k.len() > name.len() && k.starts_with(name) && k.as_bytes()[name.len()].is_ascii_uppercase() {
            push(x, Some(&k[name.len()..]));
        }
    }
}

fn item_eq(a: &Item<'_>, b: &Item<'_>) -> Option<bool> {
    Some(match (a, b) {
        (Item::J(x, _), Item::J(y, _)) => match (x.as_f64(), y.as_f64()) {
            (Some(p), Some(q)) => p == q,
            _ => x == y,
        },
        (Item::J(x, _), o) | (o, Item::J(x, _)) => match (x, o) {
            (Value::String(s), Item::S(t)) => s == t,
            (Value::Bool(p), Item::B(q)) => p == q,
            (Value::Number(n), Item::N(m)) => n.as_f64() == Some(*m),
            (Value::Object(_) | Value::Array(_), _) => return None,
            _ => false,
        },
        (Item::S(s), Item::S(t)) => s == t,
        (Item::B(p), Item::B(q)) => p == q,
        (Item::N(p), Item::N(q)) => p == q,
        _ => false,
    })
}

fn as_str<'b>(i: &'b Item<'_>) -> Option<&'b str> {
    match i {
        Item::J(Value::String(s), _) => Some(s),
        Item::S(s) => Some(s),
        _ => None,
    }
}

fn as_num(i: &Item<'_>) -> Option<f64> {
    match i {
        Item::J(Value::Number(n), _) => n.as_f64(),
        Item::N(n) => Some(*n),
        _ => None,
    }
}

/// FHIRPath singleton evaluation as a boolean: empty → None.
fn truth(c: &Coll<'_>) -> R<Option<bool>> {
    match c.as_slice() {
        [] => Ok(None),
        [Item::B(b)] | [Item::J(Value::Bool(b), _)] => Ok(Some(*b)),
        [_] => Ok(Some(true)),
        _ => Err(Unknown),
    }
}

fn boolean<'a>(b: Option<bool>) -> Coll<'a> {
    b.map(|b| vec![Item::B(b)]).unwrap_or_default()
}

fn single<'a, 'c>(c: &'c Coll<'a>) -> R<Option<&'c Item<'a>>> {
    match c.as_slice() {
        [] => Ok(None),
        [x] => Ok(Some(x)),
        _ => Err(Unknown),
    }
}

/// Whether an item is of FHIR type `t`, if that can be told.
fn is_type(i: &Item<'_>, t: &str) -> R<bool> {
    let lt = t.to_ascii_lowercase();
    match i {
        Item::J(_, Some(ty)) => Ok(ty.eq_ignore_ascii_case(t)),
        Item::J(Value::Bool(_), None) | Item::B(_) => Ok(lt == "boolean"),
        Item::J(Value::Number(n), None) => match lt.as_str() {
            "decimal" => Ok(true),
            "integer" => Ok(n.is_i64() || n.is_u64()),
            "string" | "boolean" | "quantity" | "date" | "datetime" => Ok(false),
            _ => Err(Unknown),
        },
        Item::N(_) => Ok(lt == "decimal"),
        Item::S(_) => Ok(lt == "string"),
        // A resource names its type; the abstract ones (Resource, DomainResource) are not decided.
        Item::J(Value::Object(o), None) if t.starts_with(|c: char| c.is_ascii_uppercase()) => {
            match o.get("resourceType").and_then(Value::as_str) {
                Some(_) if t == "Resource" || t == "DomainResource" => Err(Unknown),
                Some(rt) => Ok(rt == t),
                None => Err(Unknown),
            }
        }
        // Strings and objects without a choice key: their FHIR type comes from the definition.
        _ => Err(Unknown),
    }
}

fn distinct_push<'a>(out: &mut Coll<'a>, i: Item<'a>) -> R<()> {
    for x in out.iter() {
        if item_eq(x, &i).ok_or(Unknown)? {
            return Ok(());
        }
    }
    out.push(i);
    Ok(())
}

fn compare(a: &Item<'_>, b: &Item<'_>) -> R<std::cmp::Ordering> {
    if let (Some(x), Some(y)) = (as_num(a), as_num(b)) {
        return x.partial_cmp(&y).ok_or(Unknown);
    }
    if let (Some(x), Some(y)) = (as_str(a), as_str(b)) {
        // Dates of different precision are not comparable this simply.
        if x.len() == y.len() || !(x.starts_with(|c: char| c.is_ascii_digit())) {
            return Ok(x.cmp(y));
        }
    }
    Err(Unknown)
}

impl Expr {
    /// Parse an expression of the supported part of FHIRPath; `None` for anything else.
    pub fn parse(s: &str) -> Option<Expr> {
        let mut p = Parser { toks: tokenize(s)?, pos: 0 };
        let e = p.implies()?;
        (p.pos == p.toks.len()).then_some(e)
    }

    /// Evaluate against a context element: `Some(true/false)`, or `None` for the empty result
    /// (which an invariant treats as satisfied) and for a result that cannot be told exactly.
    #[cfg(test)]
    pub fn eval(&self, ctx: &Value) -> Option<bool> {
        self.eval_in(ctx, None, None)
    }

    /// Evaluate on `ctx` (see `eval`) with `%resource` (the resource holding `ctx`) and `%rootResource`
    /// (the resource that contains it, if it is contained); without them, an invariant that
    /// names them is not evaluated.
    #[cfg(test)]
    pub fn eval_in(&self, ctx: &Value, resource: Option<&Value>, root: Option<&Value>) -> Option<bool> {
        self.eval_typed(ctx, None, resource, root, None)
    }

    /// `eval_in` with the context's FHIR type where the caller knows it (a choice element's
    /// type from its JSON key: `DateTime` for `effectiveDateTime`), and the Bundle the resource
    /// is an entry of (or is contained in an entry of), for `resolve()`.
    pub fn eval_typed(
        &self,
        ctx: &Value,
        ctx_type: Option<&str>,
        resource: Option<&Value>,
        root: Option<&Value>,
        bundle: Option<&Value>,
    ) -> Option<bool> {
        let focus = vec![Item::J(ctx, ctx_type)];
        let env = Env { context: ctx, resource, root, bundle };
        let c = self.ev(&focus, &env).ok()?;
        truth(&c).ok().flatten()
    }

    fn ev<'a>(&self, focus: &Coll<'a>, env: &Env<'a>) -> R<Coll<'a>> {
        match self {
            Expr::This => Ok(focus.clone()),
            Expr::Context => Ok(vec![Item::J(env.context, None)]),
            Expr::Resource => Ok(vec![Item::J(env.resource.ok_or(Unknown)?, None)]),
            Expr::RootResource => Ok(vec![Item::J(env.root.or(env.resource).ok_or(Unknown)?, None)]),
            Expr::Lit(l) => Ok(match l {
                Lit::Bool(b) => vec![Item::B(*b)],
                Lit::Str(s) => vec![Item::S(s.clone())],
                Lit::Num(n) => vec![Item::N(*n)],
            }),
            Expr::Member(f, name) => {
                let base = f.ev(focus, env)?;
                let mut out = Vec::new();
                let mut tmp = Vec::new();
                for i in &base {
                    if let Item::J(v, _) = i {
                        tmp.clear();
                        typed_children(v, name, &mut tmp);
                        out.extend(tmp.iter().map(|(v, t)| Item::J(v, *t)));
                    }
                }
                Ok(out)
            }
            Expr::Index(f, idx) => {
                let base = f.ev(focus, env)?;
                let i = single(&idx.ev(focus, env)?)?.and_then(as_num).ok_or(Unknown)?;
                Ok(base.into_iter().nth(i as usize).into_iter().collect())
            }
            Expr::Neg(e) => {
                let c = e.ev(focus, env)?;
                match single(&c)? {
                    None => Ok(vec![]),
                    Some(i) => Ok(vec![Item::N(-as_num(i).ok_or(Unknown)?)]),
                }
            }
            Expr::Is(e, t) => {
                let c = e.ev(focus, env)?;
                match single(&c)? {
                    None => Ok(vec![]),
                    Some(i) => Ok(vec![Item::B(is_type(i, t)?)]),
                }
            }
            Expr::As(e, t) => {
                let c = e.ev(focus, env)?;
                let mut out = Vec::new();
                for i in c {
                    if is_type(&i, t)? {
                        out.push(i);
                    }
                }
                Ok(out)
            }
            Expr::Bin(op, a, b) => self.binary(*op, a, b, focus, env),
            // `name.extension(url)`: a primitive's extensions are in its `_name` sibling.
            Expr::Call(f, Func::Extension, args) if matches!(**f, Expr::Member(..)) => {
                let Expr::Member(parent, name) = &**f else { return Err(Unknown) };
                let parents = parent.ev(focus, env)?;
                let url = single(&args[0].ev(focus, env)?)?.and_then(as_str).ok_or(Unknown)?.to_string();
                let mut holders = Vec::new();
                for p in &parents {
                    let Item::J(Value::Object(o), _) = p else { return Err(Unknown) };
                    extension_holders(o, name, &mut holders);
                }
                Ok(holders
                    .into_iter()
                    .flat_map(|h| h.get("extension").and_then(Value::as_array).into_iter().flatten())
                    .filter(|x| x.get("url").and_then(Value::as_str) == Some(url.as_str()))
                    .map(|x| Item::J(x, None))
                    .collect())
            }
            Expr::Call(f, func, args) => {
                let base = f.ev(focus, env)?;
                call(func, base, args, env)
            }
        }
    }

    fn binary<'a>(&self, op: Op, a: &Expr, b: &Expr, focus: &Coll<'a>, env: &Env<'a>) -> R<Coll<'a>> {
        let logic = |x: &Expr| -> R<Option<bool>> { truth(&x.ev(focus, env)?) };
        match op {
            Op::And => {
                let l = logic(a)?;
                if l == Some(false) {
                    return Ok(boolean(Some(false)));
                }
                let r = logic(b)?;
                Ok(boolean(match (l, r) {
                    (_, Some(false)) => Some(false),
                    (Some(true), Some(true)) => Some(true),
                    _ => None,
                }))
            }
            Op::Or => {
                let l = logic(a)?;
                if l == Some(true) {
                    return Ok(boolean(Some(true)));
                }
                let r = logic(b)?;
                Ok(boolean(match (l, r) {
                    (_, Some(true)) => Some(true),
                    (Some(false), Some(false)) => Some(false),
                    _ => None,
                }))
            }
            Op::Xor => Ok(boolean(match (logic(a)?, logic(b)?) {
                (Some(x), Some(y)) => Some(x != y),
                _ => None,
            })),
            Op::Implies => {
                let l = logic(a)?;
                if l == Some(false) {
                    return Ok(boolean(Some(true)));
                }
                let r = logic(b)?;
                Ok(boolean(match (l, r) {
                    (_, Some(true)) => Some(true),
                    (Some(true), r) => r,
                    _ => None,
                }))
            }
            _ => {
                let l = a.ev(focus, env)?;
                let r = b.ev(focus, env)?;
                binary_values(op, l, r)
            }
        }
    }
}

fn binary_values<'a>(op: Op, l: Coll<'a>, r: Coll<'a>) -> R<Coll<'a>> {
    match op {
        Op::Eq | Op::Ne => {
            if l.is_empty() || r.is_empty() {
                return Ok(vec![]);
            }
            if l.len() != r.len() {
                return Ok(boolean(Some(op == Op::Ne)));
            }
            let mut eq = true;
            for (x, y) in l.iter().zip(&r) {
                eq &= item_eq(x, y).ok_or(Unknown)?;
            }
            Ok(boolean(Some(eq == (op == Op::Eq))))
        }
        Op::Equiv | Op::NotEquiv => {
            let eq = match (single(&l)?, single(&r)?) {
                (None, None) => true,
                (Some(x), Some(y)) => match (as_str(x), as_str(y)) {
                    (Some(s), Some(t)) => s.trim().eq_ignore_ascii_case(t.trim()),
                    _ => item_eq(x, y).ok_or(Unknown)?,
                },
                _ => false,
            };
            Ok(boolean(Some(eq == (op == Op::Equiv))))
        }
        Op::Lt | Op::Gt | Op::Le | Op::Ge => {
            let (Some(x), Some(y)) = (single(&l)?, single(&r)?) else { return Ok(vec![]) };
            let o = compare(x, y)?;
            use std::cmp::Ordering::*;
            Ok(boolean(Some(match op {
                Op::Lt => o == Less,
                Op::Gt => o == Greater,
                Op::Le => o != Greater,
                _ => o != Less,
            })))
        }
        Op::In | Op::Contains => {
            let (needle, hay) = if op == Op::In { (l, r) } else { (r, l) };
            let Some(n) = single(&needle)? else { return Ok(vec![]) };
            let mut found = false;
            for h in &hay {
                found |= item_eq(n, h).ok_or(Unknown)?;
            }
            Ok(boolean(Some(found)))
        }
        Op::Union => {
            let mut out = Vec::new();
            for i in l.into_iter().chain(r) {
                distinct_push(&mut out, i)?;
            }
            Ok(out)
        }
        Op::Concat => {
            let s = |c: &Coll<'_>| -> R<String> {
                Ok(match single(c)? {
                    None => String::new(),
                    Some(i) => as_str(i).ok_or(Unknown)?.to_string(),
                })
            };
            Ok(vec![Item::S(s(&l)? + &s(&r)?)])
        }
        Op::Add | Op::Sub | Op::Mul | Op::Div => {
            let (Some(x), Some(y)) = (single(&l)?, single(&r)?) else { return Ok(vec![]) };
            if let (Op::Add, Some(s), Some(t)) = (op, as_str(x), as_str(y)) {
                return Ok(vec![Item::S(format!("{s}{t}"))]);
            }
            let (p, q) = (as_num(x).ok_or(Unknown)?, as_num(y).ok_or(Unknown)?);
            Ok(match op {
                Op::Add => vec![Item::N(p + q)],
                Op::Sub => vec![Item::N(p - q)],
                Op::Mul => vec![Item::N(p * q)],
                _ if q == 0.0 => vec![],
                _ => vec![Item::N(p / q)],
            })
        }
        _ => Err(Unknown),
    }
}

fn each<'a>(base: &Coll<'a>, e: &Expr, env: &Env<'a>, mut f: impl FnMut(&Item<'a>, Coll<'a>) -> R<bool>) -> R<()> {
    for i in base {
        let r = e.ev(&vec![i.clone()], env)?;
        if !f(i, r)? {
            break;
        }
    }
    Ok(())
}

/// The objects that hold the extensions of the elements `name` of `o`: a complex value itself; a
/// primitive's `_name` sibling (item by item for a list); a choice element's typed keys alike.
fn extension_holders<'a>(o: &'a serde_json::Map<String, Value>, name: &str, out: &mut Vec<&'a Value>) {
    let matches = |k: &str| {
        k == name || (k.len() > name.len() && k.starts_with(name) && k.as_bytes()[name.len()].is_ascii_uppercase())
    };
    for (k, x) in o {
        if let Some(bare) = k.strip_prefix('_') {
            // Extensions of a primitive without a value: only the `_name` key is there.
            if matches(bare) && !o.contains_key(bare) {
                match x {
                    Value::Array(items) => out.extend(items.iter().filter(|i| i.is_object())),
                    Value::Object(_) => out.push(x),
                    _ => {}
                }
            }
            continue;
        }
        if !matches(k) {
            continue;
        }
        let sibling = o.get(&format!("_{k}"));
        match x {
            Value::Object(_) => out.push(x),
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    if item.is_object() {
                        out.push(item);
                    } else if let Some(s) = sibling.and_then(|s| s.get(i)).filter(|s| s.is_object()) {
                        out.push(s);
                    }
                }
            }
            _ => out.extend(sibling.filter(|s| s.is_object())),
        }
    }
}

/// The resource a reference names, among the contained resources of `%rootResource` (`#id`, or
/// `#` for the root itself) or the entries of the enclosing Bundle (by fullUrl, or by `Type/id`
/// when exactly one entry has that type and id). A reference it cannot find gives up rather
/// than resolve to nothing: outside a Bundle, the HL7 validator may find it on a server.
fn resolve<'a>(reference: &str, env: &Env<'a>) -> R<&'a Value> {
    let root = env.root.or(env.resource).ok_or(Unknown)?;
    if let Some(id) = reference.strip_prefix('#') {
        if id.is_empty() {
            return Ok(root);
        }
        let contained = root.get("contained").and_then(Value::as_array).into_iter().flatten();
        let mut found = contained.filter(|r| r.get("id").and_then(Value::as_str) == Some(id));
        return match (found.next(), found.next()) {
            (Some(r), None) => Ok(r),
            _ => Err(Unknown),
        };
    }
    let bundle = env.bundle.ok_or(Unknown)?;
    if reference.contains("/_history/") {
        return Err(Unknown);
    }
    let entries = bundle.get("entry").and_then(Value::as_array).ok_or(Unknown)?;
    let by_full_url = |e: &&'a Value| e.get("fullUrl").and_then(Value::as_str) == Some(reference);
    let local = reference.split_once('/').filter(|(t, i)| {
        !t.is_empty() && !i.is_empty() && !i.contains('/') && t.starts_with(|c: char| c.is_ascii_uppercase())
    });
    let by_type_id = |e: &&'a Value| {
        local.is_some_and(|(t, i)| {
            e.pointer("/resource/resourceType").and_then(Value::as_str) == Some(t)
                && e.pointer("/resource/id").and_then(Value::as_str) == Some(i)
        })
    };
    let mut found = entries.iter().filter(|e| by_full_url(e) || by_type_id(e));
    match (found.next(), found.next()) {
        (Some(e), None) => e.get("resource").ok_or(Unknown),
        _ => Err(Unknown),
    }
}

fn all_descendants<'a>(v: &'a Value, out: &mut Coll<'a>) {
    if let Value::Object(o) = v {
        for (k, x) in o {
            if k.starts_with('_') || k == "resourceType" {
                continue;
            }
            let items: Vec<&Value> = match x {
                Value::Array(a) => a.iter().filter(|i| !i.is_null()).collect(),
                other => vec![other],
            };
            for i in items {
                out.push(Item::J(i, None));
                all_descendants(i, out);
            }
        }
    }
}

fn call<'a>(func: &Func, base: Coll<'a>, args: &[Expr], env: &Env<'a>) -> R<Coll<'a>> {
    let arg = |k: usize| -> R<Coll<'a>> { args[k].ev(&base, env) };
    let string_fn = |f: &dyn Fn(&str) -> R<Coll<'a>>| -> R<Coll<'a>> {
        match single(&base)? {
            None => Ok(vec![]),
            Some(i) => f(as_str(i).ok_or(Unknown)?),
        }
    };
    match func {
        Func::Empty => Ok(boolean(Some(base.is_empty()))),
        Func::Exists if args.is_empty() => Ok(boolean(Some(!base.is_empty()))),
        Func::Exists => {
            let mut any = false;
            each(&base, &args[0], env, |_, r| {
                any = truth(&r)? == Some(true);
                Ok(!any)
            })?;
            Ok(boolean(Some(any)))
        }
        Func::All => {
            let mut all = true;
            each(&base, &args[0], env, |_, r| {
                all = truth(&r)? == Some(true);
                Ok(all)
            })?;
            Ok(boolean(Some(all)))
        }
        Func::Not => Ok(boolean(truth(&base)?.map(|b| !b))),
        Func::HasValue => {
            Ok(boolean(Some(matches!(base.as_slice(), [Item::J(v, _)] if !v.is_object() && !v.is_array()))))
        }
        Func::Count => Ok(vec![Item::N(base.len() as f64)]),
        Func::Extension => {
            let a = arg(0)?;
            let Some(url) = single(&a)? else { return Ok(vec![]) };
            let url = as_str(url).ok_or(Unknown)?;
            let mut out = Vec::new();
            for i in &base {
                match i {
                    Item::J(Value::Object(m), _) => {
                        let exts = m.get("extension").and_then(Value::as_array).into_iter().flatten();
                        out.extend(
                            exts.filter(|x| x.get("url").and_then(Value::as_str) == Some(url))
                                .map(|x| Item::J(x, None)),
                        );
                    }
                    // A primitive's extensions are in its `_name` sibling, which the JSON value
                    // does not reach: not evaluated rather than wrongly empty.
                    _ => return Err(Unknown),
                }
            }
            Ok(out)
        }
        Func::Resolve => {
            let mut out = Vec::new();
            for i in &base {
                let reference = match i {
                    Item::J(Value::Object(o), _) => match o.get("reference").and_then(Value::as_str) {
                        Some(r) => r,
                        // A Reference by identifier only points to nothing resolve() can find.
                        None if o.contains_key("identifier") || o.contains_key("display") => continue,
                        None => return Err(Unknown),
                    },
                    other => as_str(other).ok_or(Unknown)?,
                };
                out.push(Item::J(resolve(reference, env)?, None));
            }
            Ok(out)
        }
        Func::First => Ok(base.into_iter().take(1).collect()),
        Func::Last => Ok(base.into_iter().last().into_iter().collect()),
        Func::Tail => Ok(base.into_iter().skip(1).collect()),
        Func::Single => match base.len() {
            0 | 1 => Ok(base),
            _ => Err(Unknown),
        },
        Func::Where => {
            let mut out = Vec::new();
            each(&base, &args[0], env, |i, r| {
                if truth(&r)? == Some(true) {
                    out.push(i.clone());
                }
                Ok(true)
            })?;
            Ok(out)
        }
        Func::Select => {
            let mut out = Vec::new();
            each(&base, &args[0], env, |_, r| {
                out.extend(r);
                Ok(true)
            })?;
            Ok(out)
        }
        Func::Distinct => {
            let mut out = Vec::new();
            for i in base {
                distinct_push(&mut out, i)?;
            }
            Ok(out)
        }
        Func::IsDistinct => {
            let n = base.len();
            let mut out = Vec::new();
            for i in base {
                distinct_push(&mut out, i)?;
            }
            Ok(boolean(Some(out.len() == n)))
        }
        Func::StartsWith | Func::EndsWith | Func::ContainsStr => {
            let a = arg(0)?;
            let Some(p) = single(&a)? else { return Ok(vec![]) };
            let p = as_str(p).ok_or(Unknown)?.to_string();
            string_fn(&|s| {
                Ok(boolean(Some(match func {
                    Func::StartsWith => s.starts_with(&p),
                    Func::EndsWith => s.ends_with(&p),
                    _ => s.contains(&p),
                })))
            })
        }
        Func::Matches(re) => {
            let re = match re {
                Some(re) => re.clone(),
                None => {
                    let a = arg(0)?;
                    let Some(p) = single(&a)? else { return Ok(vec![]) };
                    Regex::new(&format!("^(?s:{})$", as_str(p).ok_or(Unknown)?)).map_err(|_| Unknown)?
                }
            };
            string_fn(&|s| Ok(boolean(Some(re.is_match(s)))))
        }
        Func::Length => string_fn(&|s| Ok(vec![Item::N(s.chars().count() as f64)])),
        Func::Upper => string_fn(&|s| Ok(vec![Item::S(s.to_uppercase())])),
        Func::Lower => string_fn(&|s| Ok(vec![Item::S(s.to_lowercase())])),
        Func::ToStringFn => match single(&base)? {
            None => Ok(vec![]),
            Some(Item::J(Value::String(s), _)) => Ok(vec![Item::S(s.clone())]),
            Some(Item::S(s)) => Ok(vec![Item::S(s.clone())]),
            Some(Item::B(b)) | Some(Item::J(Value::Bool(b), _)) => Ok(vec![Item::S(b.to_string())]),
            Some(_) => Err(Unknown),
        },
        Func::Substring => {
            let start = single(&arg(0)?)?.and_then(as_num);
            let len = if args.len() > 1 { single(&arg(1)?)?.and_then(as_num) } else { None };
            let Some(start) = start else { return Ok(vec![]) };
            string_fn(&|s| {
                let chars: Vec<char> = s.chars().collect();
                let st = start as usize;
                if start < 0.0 || st >= chars.len() {
                    return Ok(vec![]);
                }
                let end = len.map_or(chars.len(), |l| (st + l.max(0.0) as usize).min(chars.len()));
                Ok(vec![Item::S(chars[st..end].iter().collect())])
            })
        }
        Func::Iif => {
            let c = truth(&args[0].ev(&base, env)?)?;
            if c == Some(true) {
                args[1].ev(&base, env)
            } else if args.len() > 2 {
                args[2].ev(&base, env)
            } else {
                Ok(vec![])
            }
        }
        Func::Children => {
            let mut out = Vec::new();
            for i in &base {
                if let Item::J(Value::Object(o), _) = i {
                    for (k, x) in o {
                        if k.starts_with('_') || k == "resourceType" {
                            continue;
                        }
                        match x {
                            Value::Array(a) => out.extend(a.iter().filter(|v| !v.is_null()).map(|v| Item::J(v, None))),
                            other => out.push(Item::J(other, None)),
                        }
                    }
                }
            }
            Ok(out)
        }
        Func::Descendants => {
            let mut out = Vec::new();
            for i in &base {
                if let Item::J(v, _) = i {
                    all_descendants(v, &mut out);
                }
            }
            Ok(out)
        }
        Func::Trace => Ok(base),
        Func::OfType(t) => {
            let mut out = Vec::new();
            for i in base {
                if is_type(&i, t)? {
                    out.push(i);
                }
            }
            Ok(out)
        }
        Func::Intersect | Func::Exclude => {
            let other = arg(0)?;
            let mut out = Vec::new();
            for i in base {
                let mut inside = false;
                for o in &other {
                    inside |= item_eq(&i, o).ok_or(Unknown)?;
                }
                if inside == matches!(func, Func::Intersect) {
                    if matches!(func, Func::Intersect) {
                        distinct_push(&mut out, i)?;
                    } else {
                        out.push(i);
                    }
                }
            }
            Ok(out)
        }
        Func::UnionFn => binary_values(Op::Union, base.clone(), arg(0)?),
        Func::Combine => {
            let mut out = base.clone();
            out.extend(arg(0)?);
            Ok(out)
        }
        Func::AllTrue | Func::AnyTrue | Func::AllFalse | Func::AnyFalse => {
            let want = matches!(func, Func::AllTrue | Func::AnyTrue);
            let mut all = true;
            let mut any = false;
            for i in &base {
                let b = match i {
                    Item::B(b) | Item::J(Value::Bool(b), _) => *b == want,
                    _ => return Err(Unknown),
                };
                all &= b;
                any |= b;
            }
            Ok(boolean(Some(if matches!(func, Func::AllTrue | Func::AllFalse) { all } else { any })))
        }
        Func::ReplaceMatches => {
            let (re, with) = (arg(0)?, arg(1)?);
            let (Some(re), Some(with)) = (single(&re)?, single(&with)?) else { return Ok(vec![]) };
            let re = Regex::new(as_str(re).ok_or(Unknown)?).map_err(|_| Unknown)?;
            let with = as_str(with).ok_or(Unknown)?.to_string();
            string_fn(&|s| Ok(vec![Item::S(re.replace_all(s, with.as_str()).into_owned())]))
        }
        Func::ToInteger => match single(&base)? {
            None => Ok(vec![]),
            Some(i) => match (as_num(i), as_str(i)) {
                (Some(n), _) if n.fract() == 0.0 => Ok(vec![Item::N(n)]),
                (_, Some(s)) => Ok(s.parse::<i64>().map(|n| vec![Item::N(n as f64)]).unwrap_or_default()),
                _ => Ok(vec![]),
            },
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ev(e: &str, v: Value) -> Option<bool> {
        Expr::parse(e).unwrap_or_else(|| panic!("{e} parses")).eval(&v)
    }

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
    fn evaluates_r4_invariants_beyond_paths() {
        // ras-2
        let ras2 = "probability is decimal implies (probability as decimal) <= 100";
        assert_eq!(ev(ras2, json!({"probabilityDecimal": 101})), Some(false));
        assert_eq!(ev(ras2, json!({"probabilityDecimal": 99.5})), Some(true));
        assert_eq!(ev(ras2, json!({"probabilityRange": {"low": {"value": 1}}})), Some(true));
        // que-2, que-10
        let que2 = "descendants().linkId.isDistinct()";
        assert_eq!(ev(que2, json!({"item": [{"linkId": "1"}, {"linkId": "1"}]})), Some(false));
        assert_eq!(ev(que2, json!({"item": [{"linkId": "1", "item": [{"linkId": "2"}]}]})), Some(true));
        let que10 = "(type in ('boolean' | 'decimal' | 'integer' | 'string' | 'text' | 'url' | 'open-choice')) or maxLength.empty()";
        assert_eq!(ev(que10, json!({"type": "date", "maxLength": 3})), Some(false));
        assert_eq!(ev(que10, json!({"type": "string", "maxLength": 3})), Some(true));
        // bdl-7
        let bdl7 =
            "(type = 'history') or entry.where(fullUrl.exists()).select(fullUrl&resource.meta.versionId).isDistinct()";
        assert_eq!(ev(bdl7, json!({"type": "collection", "entry": [{"fullUrl": "a"}, {"fullUrl": "a"}]})), Some(false));
        // matches, count, comparison
        assert_eq!(ev("value.matches('[0-9]+')", json!({"value": "12a"})), Some(false));
        assert_eq!(ev("value.matches('a\\sb')", json!({"value": "a b"})), Some(true));
        assert_eq!(ev("name.count() > 1", json!({"name": ["a", "b"]})), Some(true));
        assert_eq!(ev("code = 'a' implies system.exists()", json!({"code": "a"})), Some(false));
    }

    #[test]
    fn evaluates_context_resource_and_conversions() {
        let eld3 = Expr::parse("empty() or ($this = '*') or (toInteger() >= 0)").expect("eld-3");
        assert_eq!(eld3.eval(&json!("*")), Some(true));
        assert_eq!(eld3.eval(&json!("-1")), Some(false));
        let tim9 = "offset.empty() or (when.exists() and when.select($this in ('C' | 'CM' | 'CD' | 'CV')).allFalse())";
        assert_eq!(ev(tim9, json!({"offset": 10, "when": ["C"]})), Some(false));
        assert_eq!(ev(tim9, json!({"offset": 10, "when": ["HS"]})), Some(true));
        let obs7 = Expr::parse(
            "value.empty() or component.code.where(coding.intersect(%resource.code.coding).exists()).empty()",
        )
        .expect("obs-7");
        let o = json!({"code": {"coding": [{"system": "http://loinc.org", "code": "1"}]}, "valueString": "x",
            "component": [{"code": {"coding": [{"system": "http://loinc.org", "code": "1"}]}}]});
        assert_eq!(obs7.eval_in(&o, Some(&o), None), Some(false));
        assert_eq!(obs7.eval(&o), None); // without the resource: not evaluated
        let ref1 = Expr::parse(
            "reference.startsWith('#').not() or (reference.substring(1).trace('url') in %rootResource.contained.id.trace('ids'))",
        )
        .expect("ref-1");
        let p = json!({"contained": [{"resourceType": "Organization", "id": "o1"}]});
        assert_eq!(ref1.eval_in(&json!({"reference": "#o1"}), Some(&p), None), Some(true));
        assert_eq!(ref1.eval_in(&json!({"reference": "#o2"}), Some(&p), None), Some(false));
        let sdf8a = "differential.element.first().path.replaceMatches('\\\\..*','') = 'Patient'";
        assert_eq!(ev(sdf8a, json!({"differential": {"element": [{"path": "Patient.name"}]}})), Some(true));
    }

    #[test]
    fn extension_function_filters_by_url() {
        // zib-Alert-2 (nl-core-Alert)
        let alert2 = "extension('http://hl7.org/fhir/StructureDefinition/flag-detail').exists() implies code.coding.where($this.system = 'http://terminology.hl7.org/CodeSystem/data-absent-reason' and $this.code = 'not-applicable').exists()";
        let detail = json!([{"url": "http://hl7.org/fhir/StructureDefinition/flag-detail", "valueReference": {"reference": "Condition/c"}}]);
        let icpc = json!({"coding": [{"system": "http://hl7.org/fhir/sid/icpc-1-nl", "code": "K78"}]});
        let dar = json!({"coding": [{"system": "http://terminology.hl7.org/CodeSystem/data-absent-reason", "code": "not-applicable"}]});
        assert_eq!(ev(alert2, json!({"extension": detail, "code": icpc})), Some(false));
        assert_eq!(ev(alert2, json!({"extension": detail, "code": dar})), Some(true));
        assert_eq!(ev(alert2, json!({"code": icpc})), Some(true));
        // another url does not count
        let other = json!([{"url": "http://example.org/x", "valueString": "y"}]);
        assert_eq!(ev(alert2, json!({"extension": other, "code": icpc})), Some(true));
        // a primitive's extensions are in its `_name` sibling (zib-NameInformation-1)
        let name1 = "family.extension('http://hl7.org/fhir/StructureDefinition/humanname-own-prefix').empty().not() implies family.extension('http://hl7.org/fhir/StructureDefinition/humanname-own-name').empty().not()";
        let ext =
            |url: &str| json!({"url": format!("http://hl7.org/fhir/StructureDefinition/{url}"), "valueString": "x"});
        assert_eq!(ev(name1, json!({"family": "Putten"})), Some(true));
        let prefix_only = json!({"family": "van Putten", "_family": {"extension": [ext("humanname-own-prefix")]}});
        assert_eq!(ev(name1, prefix_only), Some(false));
        let both = json!({"family": "van Putten", "_family": {"extension": [ext("humanname-own-prefix"), ext("humanname-own-name")]}});
        assert_eq!(ev(name1, both), Some(true));
        // a value-less primitive with extensions only, and a list of primitives item by item
        assert_eq!(ev(name1, json!({"_family": {"extension": [ext("humanname-own-prefix")]}})), Some(false));
        let given = "given.extension('http://example.org/q').exists()";
        let q = json!({"url": "http://example.org/q", "valueCode": "BR"});
        assert_eq!(ev(given, json!({"given": ["A", "B"], "_given": [null, {"extension": [q]}]})), Some(true));
        assert_eq!(ev(given, json!({"given": ["A", "B"]})), Some(false));
    }

    #[test]
    fn resolve_finds_contained_resources_and_bundle_entries() {
        let ctm1 = Expr::parse(
            "onBehalfOf.exists() implies (member.resolve().iif(empty(), true, ofType(Practitioner).exists()))",
        )
        .expect("ctm-1 parses");
        let team = json!({"resourceType": "CareTeam", "contained": [{"resourceType": "Organization", "id": "o"}]});
        let part = |r: &str| json!({"member": {"reference": r}, "onBehalfOf": {"reference": "Organization/x"}});
        let bundle = json!({"resourceType": "Bundle", "entry": [
            {"fullUrl": "http://x/fhir/Practitioner/p", "resource": {"resourceType": "Practitioner", "id": "p"}},
            {"fullUrl": "urn:uuid:2", "resource": {"resourceType": "PractitionerRole", "id": "r"}}
        ]});
        let ev = |p: Value, b: Option<&Value>| ctm1.eval_typed(&p, None, Some(&team), None, b);
        assert_eq!(ev(part("#o"), None), Some(false));
        assert_eq!(ev(part("Practitioner/p"), Some(&bundle)), Some(true));
        assert_eq!(ev(part("http://x/fhir/Practitioner/p"), Some(&bundle)), Some(true));
        assert_eq!(ev(part("urn:uuid:2"), Some(&bundle)), Some(false));
        assert_eq!(ev(part("PractitionerRole/r"), Some(&bundle)), Some(false));
        // not found: not evaluated (a server may have it), never a guess
        assert_eq!(ev(part("Practitioner/q"), Some(&bundle)), None);
        assert_eq!(ev(part("Practitioner/p"), None), None);
        assert_eq!(ev(part("#missing"), None), None);
        // a reference by identifier resolves to nothing
        let by_id = json!({"member": {"identifier": {"value": "1"}}, "onBehalfOf": {"reference": "Organization/x"}});
        assert_eq!(ev(by_id, None), Some(true));
    }

    #[test]
    fn vs1_is_evaluated_where_the_choice_type_is_known() {
        let vs1 = Expr::parse("($this as dateTime).toString().length() >= 8").expect("vs-1 parses");
        assert_eq!(vs1.eval_typed(&json!("2024-03"), Some("DateTime"), None, None, None), Some(false));
        assert_eq!(vs1.eval_typed(&json!("2024-03-15"), Some("DateTime"), None, None, None), Some(true));
        // a Period is not a dateTime: nothing to check
        assert_eq!(vs1.eval_typed(&json!({"start": "2024"}), Some("Period"), None, None, None), None);
        // without the type: not evaluated
        assert_eq!(vs1.eval(&json!("2024")), None);
        // only `$this` may be asked for a type JSON does not show
        assert!(Expr::parse("value as dateTime").is_none());
    }

    #[test]
    fn gives_up_rather_than_guess() {
        // the FHIR type of a plain string is in the definition, not in the JSON
        assert_eq!(ev("value is Quantity", json!({"value": {"value": 1}})), None);
        assert_eq!(ev("(a | 'x').count() = 2", json!({"a": {"x": 1}})), None);
    }

    #[test]
    fn rejects_what_it_cannot_evaluate() {
        assert!(Expr::parse("code.memberOf('http://x')").is_none());
        assert!(Expr::parse("%vsUnknown = 'x'").is_none());
        assert!(Expr::parse("a or").is_none());
        assert!(Expr::parse("htmlChecks()").is_none());
        // the FHIR type of a JSON string is in the definition
        assert!(Expr::parse("descendants().as(canonical)").is_none());
    }
}
