//! Translating offlineimap's Python `folderfilter` and `nametrans` lambdas into twinbox's
//! declarative rules, for `import-config`. No Python is run: a small parser reads the
//! common forms (membership tests, comparisons, `startswith`/`endswith`, `re.match` /
//! `re.search` / `re.sub`, string concatenation, `str.replace`, `X if COND else Y`), and
//! anything else is reported as untranslatable.

use std::fmt::Write as _;

/// A parsed Python expression (the subset the translator knows).
#[derive(Debug, Clone, PartialEq)]
enum Expr {
    /// The lambda's folder parameter.
    Var,
    /// Another name (`re.I`, a function defined in a pythonfile, `True`).
    Name(String),
    Str(String),
    Int(i64),
    List(Vec<Expr>),
    /// `func(args)` where `func` is a dotted name.
    Call(String, Vec<Expr>),
    /// `recv.method(args)`.
    Method(Box<Expr>, String, Vec<Expr>),
    /// `name=value` in a call.
    Kw(String, Box<Expr>),
    Add(Vec<Expr>),
    Cmp(Box<Expr>, &'static str, Box<Expr>),
    Not(Box<Expr>),
    And(Vec<Expr>),
    Or(Vec<Expr>),
    /// `then if cond else otherwise`.
    If(Box<Expr>, Box<Expr>, Box<Expr>),
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    Int(i64),
    Punct(&'static str),
}

fn tokenize(s: &str) -> Result<Vec<Tok>, String> {
    let c: Vec<char> = s.chars().collect();
    let mut i = 0;
    let mut out = Vec::new();
    while i < c.len() {
        let ch = c[i];
        if ch.is_whitespace() || ch == '\\' && c.get(i + 1) == Some(&'\n') {
            i += 1;
            continue;
        }
        // String literal, with optional r/u/b prefixes.
        let mut j = i;
        let mut raw = false;
        while j < c.len() && "rRuUbB".contains(c[j]) && j - i < 2 {
            raw |= c[j] == 'r' || c[j] == 'R';
            j += 1;
        }
        if j < c.len()
            && (c[j] == '\'' || c[j] == '"')
            && (j == i || !c[i].is_alphanumeric() || j - i <= 2)
        {
            let q = c[j];
            let mut k = j + 1;
            let mut v = String::new();
            loop {
                let Some(&x) = c.get(k) else {
                    return Err("unterminated string".to_string());
                };
                if x == q {
                    break;
                }
                if x == '\\' {
                    let Some(&n) = c.get(k + 1) else {
                        return Err("unterminated string".to_string());
                    };
                    if raw {
                        v.push('\\');
                        v.push(n);
                    } else {
                        match n {
                            '\\' => v.push('\\'),
                            '\'' | '"' => v.push(n),
                            'n' => v.push('\n'),
                            't' => v.push('\t'),
                            '\n' => {}
                            _ => {
                                v.push('\\');
                                v.push(n);
                            }
                        }
                    }
                    k += 2;
                    continue;
                }
                v.push(x);
                k += 1;
            }
            out.push(Tok::Str(v));
            i = k + 1;
            continue;
        }
        if ch.is_alphabetic() || ch == '_' {
            let mut k = i;
            while k < c.len() && (c[k].is_alphanumeric() || c[k] == '_') {
                k += 1;
            }
            out.push(Tok::Ident(c[i..k].iter().collect()));
            i = k;
            continue;
        }
        if ch.is_ascii_digit() {
            let mut k = i;
            while k < c.len() && c[k].is_ascii_digit() {
                k += 1;
            }
            let n: String = c[i..k].iter().collect();
            out.push(Tok::Int(n.parse().map_err(|_| "bad number".to_string())?));
            i = k;
            continue;
        }
        let two: String = c[i..(i + 2).min(c.len())].iter().collect();
        if let Some(p) = ["==", "!="].into_iter().find(|p| *p == two) {
            out.push(Tok::Punct(p));
            i += 2;
            continue;
        }
        let p = match ch {
            '(' => "(",
            ')' => ")",
            '[' => "[",
            ']' => "]",
            ',' => ",",
            '.' => ".",
            '+' => "+",
            ':' => ":",
            '=' => "=",
            _ => return Err(format!("unexpected character {ch:?}")),
        };
        out.push(Tok::Punct(p));
        i += 1;
    }
    Ok(out)
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
    var: String,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }
    fn is_kw(&self, k: &str) -> bool {
        matches!(self.peek(), Some(Tok::Ident(i)) if i == k)
    }
    fn is_p(&self, p: &str) -> bool {
        matches!(self.peek(), Some(Tok::Punct(x)) if *x == p)
    }
    fn expect_p(&mut self, p: &str) -> Result<(), String> {
        if self.is_p(p) {
            self.pos += 1;
            Ok(())
        } else {
            Err(format!("expected '{p}'"))
        }
    }
    fn expr(&mut self) -> Result<Expr, String> {
        let then = self.or()?;
        if self.is_kw("if") {
            self.pos += 1;
            let cond = self.or()?;
            if !self.is_kw("else") {
                return Err("expected 'else'".to_string());
            }
            self.pos += 1;
            let otherwise = self.expr()?;
            return Ok(Expr::If(
                Box::new(then),
                Box::new(cond),
                Box::new(otherwise),
            ));
        }
        Ok(then)
    }
    fn or(&mut self) -> Result<Expr, String> {
        let mut v = vec![self.and()?];
        while self.is_kw("or") {
            self.pos += 1;
            v.push(self.and()?);
        }
        Ok(if v.len() == 1 {
            v.remove(0)
        } else {
            Expr::Or(v)
        })
    }
    fn and(&mut self) -> Result<Expr, String> {
        let mut v = vec![self.not()?];
        while self.is_kw("and") {
            self.pos += 1;
            v.push(self.not()?);
        }
        Ok(if v.len() == 1 {
            v.remove(0)
        } else {
            Expr::And(v)
        })
    }
    fn not(&mut self) -> Result<Expr, String> {
        if self.is_kw("not") {
            self.pos += 1;
            return Ok(Expr::Not(Box::new(self.not()?)));
        }
        self.cmp()
    }
    fn cmp(&mut self) -> Result<Expr, String> {
        let l = self.sum()?;
        let op = if self.is_p("==") {
            "=="
        } else if self.is_p("!=") {
            "!="
        } else if self.is_kw("in") {
            "in"
        } else if self.is_kw("not")
            && matches!(self.toks.get(self.pos + 1), Some(Tok::Ident(i)) if i == "in")
        {
            self.pos += 1;
            "not in"
        } else {
            return Ok(l);
        };
        self.pos += 1;
        let r = self.sum()?;
        Ok(Expr::Cmp(Box::new(l), op, Box::new(r)))
    }
    fn sum(&mut self) -> Result<Expr, String> {
        let mut v = vec![self.postfix()?];
        while self.is_p("+") {
            self.pos += 1;
            v.push(self.postfix()?);
        }
        Ok(if v.len() == 1 {
            v.remove(0)
        } else {
            Expr::Add(v)
        })
    }
    fn args(&mut self) -> Result<Vec<Expr>, String> {
        self.expect_p("(")?;
        let mut args = Vec::new();
        while !self.is_p(")") {
            if let (Some(Tok::Ident(k)), Some(Tok::Punct("="))) =
                (self.peek().cloned(), self.toks.get(self.pos + 1))
            {
                self.pos += 2;
                args.push(Expr::Kw(k, Box::new(self.expr()?)));
            } else {
                args.push(self.expr()?);
            }
            if self.is_p(",") {
                self.pos += 1;
            } else {
                break;
            }
        }
        self.expect_p(")")?;
        Ok(args)
    }
    fn postfix(&mut self) -> Result<Expr, String> {
        let mut e = self.atom()?;
        loop {
            if self.is_p(".") {
                self.pos += 1;
                let Some(Tok::Ident(name)) = self.peek().cloned() else {
                    return Err("expected a name after '.'".to_string());
                };
                self.pos += 1;
                if self.is_p("(") {
                    let args = self.args()?;
                    e = match e {
                        Expr::Name(n) => Expr::Call(format!("{n}.{name}"), args),
                        other => Expr::Method(Box::new(other), name, args),
                    };
                } else {
                    e = match e {
                        Expr::Name(n) => Expr::Name(format!("{n}.{name}")),
                        _ => return Err(format!("attribute .{name} is not supported")),
                    };
                }
            } else if self.is_p("(") {
                let Expr::Name(f) = e else {
                    return Err("only named functions can be called".to_string());
                };
                let args = self.args()?;
                e = Expr::Call(f, args);
            } else {
                return Ok(e);
            }
        }
    }
    fn atom(&mut self) -> Result<Expr, String> {
        let t = self.peek().cloned().ok_or("unexpected end")?;
        self.pos += 1;
        match t {
            Tok::Str(mut s) => {
                // Adjacent literals concatenate.
                while let Some(Tok::Str(n)) = self.peek().cloned() {
                    s.push_str(&n);
                    self.pos += 1;
                }
                Ok(Expr::Str(s))
            }
            Tok::Int(n) => Ok(Expr::Int(n)),
            Tok::Ident(i) if i == self.var => Ok(Expr::Var),
            Tok::Ident(i) => Ok(Expr::Name(i)),
            Tok::Punct("[") | Tok::Punct("(") => {
                let close = if t == Tok::Punct("[") { "]" } else { ")" };
                let mut items = Vec::new();
                let mut comma = false;
                while !self.is_p(close) {
                    items.push(self.expr()?);
                    if self.is_p(",") {
                        comma = true;
                        self.pos += 1;
                    } else {
                        break;
                    }
                }
                self.expect_p(close)?;
                if close == ")" && items.len() == 1 && !comma {
                    return Ok(items.remove(0));
                }
                Ok(Expr::List(items))
            }
            Tok::Punct(p) => Err(format!("unexpected '{p}'")),
        }
    }
}

/// Parses `lambda NAME[, NAME]: EXPR`; the folder is the last parameter.
fn parse_lambda(text: &str) -> Result<Expr, String> {
    let t = text.trim();
    let Some(rest) = t.strip_prefix("lambda") else {
        let name = t
            .split(|c: char| !(c.is_alphanumeric() || c == '_'))
            .next()
            .unwrap_or(t);
        return Err(format!(
            "'{name}' is Python code (a function from a pythonfile?), not a lambda twinbox can read"
        ));
    };
    let colon = rest.find(':').ok_or("a lambda without ':'")?;
    let params: Vec<&str> = rest[..colon].split(',').map(str::trim).collect();
    let var = params.last().copied().unwrap_or("").to_string();
    if var.is_empty() {
        return Err("a lambda without a parameter".to_string());
    }
    let body = &rest[colon + 1..];
    let mut p = Parser {
        toks: tokenize(body)?,
        pos: 0,
        var,
    };
    let e = p.expr()?;
    if p.pos != p.toks.len() {
        return Err("unexpected text after the expression".to_string());
    }
    if params.len() > 1 {
        let first = params[0];
        if body
            .split(|c: char| !(c.is_alphanumeric() || c == '_'))
            .any(|w| w == first)
        {
            return Err(format!(
                "the filter uses '{first}' as well as the folder name"
            ));
        }
    }
    Ok(e)
}

fn strs(items: &[Expr]) -> Option<Vec<String>> {
    items
        .iter()
        .map(|i| match i {
            Expr::Str(s) => Some(s.clone()),
            _ => None,
        })
        .collect()
}

/// Include rules for a positive predicate on the folder name, if it has that form.
fn positive(e: &Expr) -> Option<Vec<String>> {
    let esc = |s: &str| regex::escape(s);
    match e {
        Expr::Cmp(l, "in", r) if **l == Expr::Var => match &**r {
            Expr::List(items) => strs(items),
            _ => None,
        },
        Expr::Cmp(l, "in", r) if **r == Expr::Var => match &**l {
            Expr::Str(s) => Some(vec![format!("re:.*{}.*", esc(s))]),
            _ => None,
        },
        Expr::Cmp(l, "==", r) => match (&**l, &**r) {
            (Expr::Var, Expr::Str(s)) | (Expr::Str(s), Expr::Var) => Some(vec![s.clone()]),
            _ => None,
        },
        Expr::Method(recv, m, args) if **recv == Expr::Var && args.len() == 1 => {
            let list = match &args[0] {
                Expr::Str(s) => vec![s.clone()],
                Expr::List(items) => strs(items)?,
                _ => return None,
            };
            match m.as_str() {
                "startswith" => Some(list.iter().map(|s| format!("re:{}.*", esc(s))).collect()),
                "endswith" => Some(list.iter().map(|s| format!("re:.*{}", esc(s))).collect()),
                _ => None,
            }
        }
        Expr::Call(f, args) if args.len() == 2 && args[1] == Expr::Var && f.starts_with("re.") => {
            let Expr::Str(pat) = &args[0] else {
                return None;
            };
            match f.as_str() {
                "re.match" => Some(vec![format!("re:(?:{pat}).*")]),
                "re.search" => Some(vec![format!("re:.*(?:{pat}).*")]),
                "re.fullmatch" => Some(vec![format!("re:{pat}")]),
                _ => None,
            }
        }
        Expr::Or(v) => {
            let mut out = Vec::new();
            for x in v {
                out.extend(positive(x)?);
            }
            Some(out)
        }
        _ => None,
    }
}

/// Exclude rules (without the `!`) for a negative predicate, if it has that form.
fn negative(e: &Expr) -> Option<Vec<String>> {
    match e {
        Expr::Not(inner) => match &**inner {
            Expr::Or(v) => {
                let mut out = Vec::new();
                for x in v {
                    out.extend(positive(x)?);
                }
                Some(out)
            }
            x => positive(x),
        },
        Expr::Cmp(l, "not in", r) => positive(&Expr::Cmp(l.clone(), "in", r.clone())),
        Expr::Cmp(l, "!=", r) => positive(&Expr::Cmp(l.clone(), "==", r.clone())),
        Expr::And(v) => {
            let mut out = Vec::new();
            for x in v {
                out.extend(negative(x)?);
            }
            Some(out)
        }
        _ => None,
    }
}

/// Quotes a list item for twinbox's list syntax when needed.
fn quote(item: &str) -> String {
    if item.is_empty()
        || item
            .chars()
            .any(|c| c.is_whitespace() || c == ',' || c == '\'' || c == '"' || c == '[' || c == ']')
    {
        if !item.contains('\'') {
            return format!("'{item}'");
        }
        return format!("\"{}\"", item.replace('\\', "\\\\").replace('"', "\\\""));
    }
    item.to_string()
}

/// Translates a `folderfilter` lambda into twinbox filter rules (a list value).
pub fn folderfilter(text: &str) -> Result<String, String> {
    let e = parse_lambda(text)?;
    if matches!(&e, Expr::Name(n) if n == "True") {
        return Ok(String::new());
    }
    let (includes, excludes) = if let Some(inc) = positive(&e) {
        (inc, Vec::new())
    } else if let Some(exc) = negative(&e) {
        (Vec::new(), exc)
    } else if let Expr::And(terms) = &e {
        let mut inc: Option<Vec<String>> = None;
        let mut exc = Vec::new();
        for t in terms {
            if let Some(n) = negative(t) {
                exc.extend(n);
            } else if let (Some(p), None) = (positive(t), &inc) {
                inc = Some(p);
            } else {
                return Err("this combination of conditions has no rule form".to_string());
            }
        }
        (inc.unwrap_or_default(), exc)
    } else {
        return Err("this condition has no rule form".to_string());
    };
    let items: Vec<String> = includes
        .iter()
        .map(|i| quote(i))
        .chain(excludes.iter().map(|x| quote(&format!("!{x}"))))
        .collect();
    Ok(items.join(", "))
}

/// A sed rule `s/PAT/REPL/FLAGS` with a delimiter that does not clash.
fn sed(pat: &str, repl: &str, flags: &str) -> String {
    let d = ['/', '|', '#', '!', '@', '~']
        .into_iter()
        .find(|d| !pat.contains(*d) && !repl.contains(*d))
        .unwrap_or('/');
    let e = |s: &str| s.replace(d, &format!("\\{d}"));
    format!("s{d}{}{d}{}{d}{flags}", e(pat), e(repl))
}

/// A literal replacement text in twinbox's replacement syntax.
fn literal_repl(s: &str) -> String {
    s.replace('\\', "\\\\").replace('$', "$$")
}

/// A Python `re.sub` replacement in twinbox's syntax (`\1`, `\g<1>`, `\g<name>`).
fn python_repl(s: &str) -> Result<String, String> {
    let mut out = String::new();
    let c: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < c.len() {
        match c[i] {
            '$' => out.push_str("$$"),
            '\\' => match c.get(i + 1) {
                Some(d) if d.is_ascii_digit() => {
                    let _ = write!(out, "${{{d}}}");
                    i += 1;
                }
                Some('g') if c.get(i + 2) == Some(&'<') => {
                    let end = c[i..]
                        .iter()
                        .position(|x| *x == '>')
                        .ok_or("bad \\g<...>")?;
                    let name: String = c[i + 3..i + end].iter().collect();
                    let _ = write!(out, "${{{name}}}");
                    i += end;
                }
                Some('\\') => {
                    out.push_str("\\\\");
                    i += 1;
                }
                Some(x) => return Err(format!("the replacement escape \\{x} is not supported")),
                None => return Err("a replacement ending in a backslash".to_string()),
            },
            x => out.push(x),
        }
        i += 1;
    }
    Ok(out)
}

fn trans(e: &Expr, rules: &mut Vec<String>) -> Result<(), String> {
    match e {
        Expr::Var => Ok(()),
        Expr::Call(f, args) if f == "re.sub" && args.len() >= 3 => {
            let (Expr::Str(pat), Expr::Str(repl)) = (&args[0], &args[1]) else {
                return Err("re.sub with a computed pattern or replacement".to_string());
            };
            trans(&args[2], rules)?;
            let mut flags = "g".to_string();
            for a in &args[3..] {
                match a {
                    Expr::Kw(k, v) if k == "flags" => match &**v {
                        Expr::Name(n) if n == "re.I" || n == "re.IGNORECASE" => flags.push('i'),
                        _ => return Err("re.sub flags other than re.I".to_string()),
                    },
                    Expr::Kw(k, v) if k == "count" && **v == Expr::Int(1) => {
                        flags = flags.replace('g', "")
                    }
                    Expr::Int(1) => flags = flags.replace('g', ""),
                    Expr::Int(0) => {}
                    Expr::Name(n) if n == "re.I" || n == "re.IGNORECASE" => flags.push('i'),
                    _ => return Err("re.sub arguments beyond count=1 and flags=re.I".to_string()),
                }
            }
            rules.push(sed(pat, &python_repl(repl)?, &flags));
            Ok(())
        }
        Expr::Method(recv, m, args) if m == "replace" && args.len() == 2 => {
            let (Expr::Str(a), Expr::Str(b)) = (&args[0], &args[1]) else {
                return Err("str.replace with computed arguments".to_string());
            };
            trans(recv, rules)?;
            rules.push(sed(&regex::escape(a), &literal_repl(b), "g"));
            Ok(())
        }
        Expr::Add(parts) => {
            let var_at: Vec<usize> = parts
                .iter()
                .enumerate()
                .filter(|(_, p)| !matches!(p, Expr::Str(_)))
                .map(|(i, _)| i)
                .collect();
            let [at] = var_at[..] else {
                return Err("a concatenation of more than the folder name and literals".to_string());
            };
            trans(&parts[at], rules)?;
            let lit = |ps: &[Expr]| -> String {
                ps.iter()
                    .map(|p| match p {
                        Expr::Str(s) => s.clone(),
                        _ => String::new(),
                    })
                    .collect()
            };
            let (pre, post) = (lit(&parts[..at]), lit(&parts[at + 1..]));
            if !pre.is_empty() {
                rules.push(sed("^", &literal_repl(&pre), ""));
            }
            if !post.is_empty() {
                rules.push(sed("$", &literal_repl(&post), ""));
            }
            Ok(())
        }
        Expr::If(then, cond, otherwise) => {
            // `f if f in [...] else X`, `'lit' if f == 'x' else X`, `X if f not in [...] else f`.
            let (names, result, rest) = match (exact_names(cond, false), exact_names(cond, true)) {
                (Some(n), _) => (n, &**then, &**otherwise),
                (None, Some(n)) if **otherwise == Expr::Var => (n, &Expr::Var, &**then),
                _ => {
                    return Err("a condition other than a list of names or an equality".to_string())
                }
            };
            for n in &names {
                let to = match result {
                    Expr::Var => n.clone(),
                    Expr::Str(s) => s.clone(),
                    _ => {
                        return Err(
                            "a conditional whose result is neither the name nor a literal"
                                .to_string(),
                        )
                    }
                };
                rules.push(sed(
                    &format!("^{}$", regex::escape(n)),
                    &literal_repl(&to),
                    "q",
                ));
            }
            trans(rest, rules)
        }
        Expr::Name(n) => Err(format!("'{n}' is not something twinbox can translate")),
        _ => Err("this expression has no rule form".to_string()),
    }
}

/// The literal names a condition tests for (`f in [...]`, `f == 'x'`), or with `negated`
/// those it tests against (`f not in [...]`, `f != 'x'`).
fn exact_names(cond: &Expr, negated: bool) -> Option<Vec<String>> {
    let (member, equal) = if negated {
        ("not in", "!=")
    } else {
        ("in", "==")
    };
    match cond {
        Expr::Cmp(l, op, r) if *op == member && **l == Expr::Var => match &**r {
            Expr::List(items) => strs(items),
            _ => None,
        },
        Expr::Cmp(l, op, r) if *op == equal => match (&**l, &**r) {
            (Expr::Var, Expr::Str(s)) | (Expr::Str(s), Expr::Var) => Some(vec![s.clone()]),
            _ => None,
        },
        Expr::Not(inner) => exact_names(inner, !negated),
        _ => None,
    }
}

/// Translates a `nametrans` lambda into twinbox substitution rules, one per line.
pub fn nametrans(text: &str) -> Result<Vec<String>, String> {
    let e = parse_lambda(text)?;
    let mut rules = Vec::new();
    trans(&e, &mut rules)?;
    Ok(rules)
}

/// A Python `remotepasseval` that only runs a command (`os.popen("CMD").read()`,
/// `subprocess.check_output(["pass", "show", "x"]).strip()`, `commands.getoutput("CMD")`),
/// as the command line for `remotepasscmd`.
pub fn passeval_command(text: &str) -> Option<String> {
    let mut p = Parser {
        toks: tokenize(text).ok()?,
        pos: 0,
        var: String::new(),
    };
    let mut e = p.expr().ok()?;
    if p.pos != p.toks.len() {
        return None;
    }
    // Peel `.read()`, `.strip()`, `.decode(...)`, `.rstrip(...)`, `[...]`-free wrappers.
    while let Expr::Method(inner, m, _) = &e {
        if !matches!(
            m.as_str(),
            "read" | "strip" | "rstrip" | "decode" | "splitlines"
        ) {
            return None;
        }
        e = (**inner).clone();
    }
    let Expr::Call(f, args) = e else { return None };
    let shell_quote = |w: &str| {
        if !w.is_empty()
            && w.chars()
                .all(|c| c.is_alphanumeric() || "-_./=:@+%,".contains(c))
        {
            w.to_string()
        } else {
            format!("'{}'", w.replace('\'', "'\\''"))
        }
    };
    match (f.as_str(), args.first()?) {
        ("os.popen" | "commands.getoutput" | "subprocess.getoutput", Expr::Str(cmd)) => {
            Some(cmd.clone())
        }
        ("subprocess.check_output" | "subprocess.run", Expr::Str(cmd))
            if args.iter().any(
                |a| matches!(a, Expr::Kw(k, v) if k == "shell" && **v == Expr::Name("True".into())),
            ) =>
        {
            Some(cmd.clone())
        }
        ("subprocess.check_output", Expr::List(items)) => {
            let words = strs(items)?;
            Some(
                words
                    .iter()
                    .map(|w| shell_quote(w))
                    .collect::<Vec<_>>()
                    .join(" "),
            )
        }
        _ => None,
    }
}

#[cfg(test)]
#[path = "import_lambda_tests.rs"]
mod tests;
