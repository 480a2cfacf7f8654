//! Which expressions are PostgreSQL `numeric` arithmetic, rewritten into the exact
//! functions of [`super::decimal`]: `+ - * / %` with a numeric operand (a literal with a
//! decimal point or an exponent, a `numeric` column, a `::numeric` cast, another such
//! expression) and no floating-point one; `::numeric(p, s)` casts; `sum` of numerics and
//! `avg` of integers or numerics. Between these functions values travel as decimal text
//! (its scale is PostgreSQL's `dscale`); the outermost is wrapped in `sy_dec_num`, a
//! number for SQLite to compare, sort and store — except in the result columns of the
//! statement itself, which keep the text, so the client reads `6985.80`, not `6985.8`.

use std::ops::ControlFlow;

use sqlparser::ast::{
    BinaryOperator as B, CastKind, DataType, ExactNumberInfo, Expr, Function, FunctionArg,
    FunctionArgExpr, FunctionArgumentList, FunctionArguments, Ident, ObjectName, Query, Statement,
    UnaryOperator, Value, VisitMut, VisitorMut,
};

use super::coerce::{Col, Schema};
use super::types;

const NUM: &str = "sy_dec_num";

/// What an operand is, as far as the statement tells.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Decimal,
    Integer,
    Float,
    /// A timestamptz (a column, `now()`, a cast): made text in the session's zone
    /// (`sy_tz_text`).
    Instant,
    Unknown,
}

struct Rewrite<'a> {
    tables: &'a [String],
    schema: Schema<'a>,
    /// The tables' numeric, integer and floating-point columns, looked up at the first
    /// arithmetic that names a column.
    cols: Option<Vec<Col>>,
}

pub(super) fn call(name: &str, args: Vec<Expr>) -> Expr {
    Expr::Function(Function {
        name: ObjectName::from(vec![Ident::new(name)]),
        uses_odbc_syntax: false,
        parameters: FunctionArguments::None,
        args: FunctionArguments::List(FunctionArgumentList {
            duplicate_treatment: None,
            args: args
                .into_iter()
                .map(|e| FunctionArg::Unnamed(FunctionArgExpr::Expr(e)))
                .collect(),
            clauses: Vec::new(),
        }),
        filter: None,
        null_treatment: None,
        over: None,
        within_group: Vec::new(),
    })
}

pub(super) fn name_of(f: &Function) -> String {
    f.name
        .0
        .last()
        .and_then(|p| p.as_ident())
        .map(|i| i.value.to_lowercase())
        .unwrap_or_default()
}

/// The only argument of `f`, if it has exactly one plain one.
fn only_arg(f: &mut Function) -> Option<&mut Expr> {
    let FunctionArguments::List(l) = &mut f.args else {
        return None;
    };
    if l.args.len() != 1 || l.duplicate_treatment.is_some() || !l.clauses.is_empty() {
        return None;
    }
    match &mut l.args[0] {
        FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => Some(e),
        _ => None,
    }
}

/// What is written into a numeric column (`sy_dec_store`) or rounded to its scale
/// (`sy_dec`) takes the exact decimal text, not the double `sy_dec_num` would make of it.
fn exact_argument(f: &mut Function) {
    if !matches!(name_of(f).as_str(), "sy_dec_store" | "sy_dec") {
        return;
    }
    let FunctionArguments::List(l) = &mut f.args else {
        return;
    };
    if let Some(FunctionArg::Unnamed(FunctionArgExpr::Expr(first))) = l.args.first_mut()
        && let Some(inner) = unwrapped(first).cloned()
    {
        *first = inner;
    }
}

/// The text inside `sy_dec_num(…)`, if `e` is one (seen through parentheses).
pub(super) fn unwrapped(e: &Expr) -> Option<&Expr> {
    match e {
        Expr::Nested(inner) => unwrapped(inner),
        Expr::Function(f) if name_of(f) == NUM => match &f.args {
            FunctionArguments::List(l) => match l.args.first() {
                Some(FunctionArg::Unnamed(FunctionArgExpr::Expr(x))) => Some(x),
                _ => None,
            },
            _ => None,
        },
        _ => None,
    }
}

fn number_literal(e: &Expr) -> Option<String> {
    match e {
        Expr::Value(v) => match &v.value {
            Value::Number(n, _) => Some(n.clone()),
            _ => None,
        },
        Expr::UnaryOp {
            op: UnaryOperator::Minus,
            expr,
        } => number_literal(expr).map(|n| format!("-{n}")),
        Expr::UnaryOp {
            op: UnaryOperator::Plus,
            expr,
        } => number_literal(expr),
        _ => None,
    }
}

fn float_type(t: &DataType) -> bool {
    matches!(
        t,
        DataType::Real
            | DataType::Float4
            | DataType::Float8
            | DataType::Float(_)
            | DataType::Double(_)
            | DataType::DoublePrecision
    )
}

fn instant_type(t: &DataType) -> bool {
    use sqlparser::ast::TimezoneInfo as Tz;
    matches!(t, DataType::Timestamp(_, Tz::WithTimeZone | Tz::Tz))
}

/// Functions that return the transaction's (or the statement's) timestamptz.
fn instant_function(name: &str) -> bool {
    matches!(
        name,
        "now"
            | "current_timestamp"
            | "transaction_timestamp"
            | "statement_timestamp"
            | "clock_timestamp"
    )
}

fn text_type(t: &DataType) -> bool {
    matches!(
        t,
        DataType::Text | DataType::Varchar(_) | DataType::CharacterVarying(_)
    )
}

/// The scale a `numeric` cast target fixes: `Some(None)` for plain `numeric`.
fn numeric_target(t: &DataType) -> Option<Option<i64>> {
    let info = match t {
        DataType::Numeric(i) | DataType::Decimal(i) | DataType::Dec(i) => i,
        _ => return None,
    };
    Some(match info {
        ExactNumberInfo::None => None,
        ExactNumberInfo::Precision(_) => Some(0),
        ExactNumberInfo::PrecisionAndScale(_, s) => Some(*s),
    })
}

impl Rewrite<'_> {
    fn column(&mut self, e: &Expr) -> Option<Col> {
        let name = match e {
            Expr::Identifier(i) => &i.value,
            Expr::CompoundIdentifier(p) => &p.last()?.value,
            _ => return None,
        };
        let (tables, schema) = (self.tables, self.schema);
        let cols = self.cols.get_or_insert_with(|| {
            super::coerce::columns_typed(tables, schema, |ty| {
                matches!(
                    ty,
                    types::NUMERIC
                        | types::INT2
                        | types::INT4
                        | types::INT8
                        | types::FLOAT4
                        | types::FLOAT8
                        | types::TIMESTAMPTZ
                )
            })
        });
        cols.iter()
            .find(|c| c.0.eq_ignore_ascii_case(name))
            .cloned()
    }

    fn kind(&mut self, e: &Expr) -> Kind {
        if unwrapped(e).is_some() {
            return Kind::Decimal;
        }
        if let Some(n) = number_literal(e) {
            return if n.contains(['.', 'e', 'E']) {
                Kind::Decimal
            } else {
                Kind::Integer
            };
        }
        match e {
            Expr::Nested(inner) => self.kind(inner),
            Expr::Cast { data_type, .. } if float_type(data_type) => Kind::Float,
            Expr::Cast { data_type, .. } if instant_type(data_type) => Kind::Instant,
            Expr::Function(f) if instant_function(&name_of(f)) => Kind::Instant,
            // What is left of arithmetic after the rewrite: floating point or integers.
            Expr::BinaryOp {
                left,
                op: B::Plus | B::Minus | B::Multiply | B::Divide | B::Modulo,
                right,
            } => match [self.kind(left), self.kind(right)] {
                k if k.contains(&Kind::Float) => Kind::Float,
                [Kind::Integer, Kind::Integer] => Kind::Integer,
                _ => Kind::Unknown,
            },
            _ => match self.column(e).map(|c| c.1) {
                Some(types::NUMERIC) => Kind::Decimal,
                Some(types::FLOAT4 | types::FLOAT8) => Kind::Float,
                Some(types::TIMESTAMPTZ) => Kind::Instant,
                Some(_) => Kind::Integer,
                None => Kind::Unknown,
            },
        }
    }

    /// `e` as an argument of a `sy_dec*` function: decimal text where it is one.
    fn operand(&mut self, e: Expr) -> Expr {
        if let Some(inner) = unwrapped(&e) {
            return inner.clone();
        }
        // A decimal literal as text: its scale is part of its value (`2.50 * 2` is 5.00).
        if let Some(n) = number_literal(&e).filter(|n| n.contains(['.', 'e', 'E'])) {
            return Expr::value(Value::SingleQuotedString(n));
        }
        if let Expr::Nested(inner) = e {
            return self.operand(*inner);
        }
        match self.column(&e) {
            Some((_, types::NUMERIC, Some(s))) => call(
                "sy_dec",
                vec![e, Expr::value(Value::Number(s.to_string(), false))],
            ),
            _ => e,
        }
    }

    fn arithmetic(&mut self, e: &mut Expr) {
        let Expr::BinaryOp { left, op, right } = e else {
            return;
        };
        let name = match op {
            B::Plus => "sy_dec_add",
            B::Minus => "sy_dec_sub",
            B::Multiply => "sy_dec_mul",
            B::Divide => "sy_dec_div",
            B::Modulo => "sy_dec_mod",
            _ => return,
        };
        let kinds = [self.kind(left), self.kind(right)];
        if !kinds.contains(&Kind::Decimal)
            || kinds.contains(&Kind::Float)
            || kinds.contains(&Kind::Instant)
        {
            return;
        }
        let (l, r) = (*left.clone(), *right.clone());
        *e = call(
            NUM,
            vec![call(name, vec![self.operand(l), self.operand(r)])],
        );
    }

    /// `-x` of a numeric column or expression (a literal stays one).
    fn negation(&mut self, e: &mut Expr) {
        let Expr::UnaryOp {
            op: UnaryOperator::Minus,
            expr,
        } = e
        else {
            return;
        };
        if number_literal(expr).is_some() || self.kind(expr) != Kind::Decimal {
            return;
        }
        let inner = self.operand(*expr.clone());
        *e = call(NUM, vec![call("sy_dec_neg", vec![inner])]);
    }

    fn cast(&mut self, e: &mut Expr) {
        let Expr::Cast {
            kind: CastKind::Cast | CastKind::DoubleColon,
            expr,
            data_type,
            format: None,
        } = e
        else {
            return;
        };
        let Some(scale) = numeric_target(data_type) else {
            return;
        };
        let scale = scale.map_or(Expr::value(Value::Null), |s| {
            Expr::value(Value::Number(s.to_string(), false))
        });
        let inner = self.operand(*expr.clone());
        *e = call(NUM, vec![call("sy_dec", vec![inner, scale])]);
    }

    /// An operand PostgreSQL prints as text (an argument of `concat`, `concat_ws`,
    /// `string_agg`, `format`, an operand of `||`, a `::text` cast): a numeric keeps its
    /// scale, a float reads as PostgreSQL writes it, a timestamptz is shown in the
    /// session's `TimeZone`.
    fn as_text(&mut self, e: &mut Expr) {
        if let Some(inner) = unwrapped(e) {
            *e = inner.clone();
            return;
        }
        if number_literal(e).is_some() {
            return;
        }
        match self.kind(e) {
            Kind::Decimal => *e = self.operand(e.clone()),
            Kind::Float => *e = call("sy_float_text", vec![e.clone()]),
            Kind::Instant => *e = call("sy_tz_text", vec![e.clone()]),
            _ => {}
        }
    }

    fn text_context(&mut self, e: &mut Expr) {
        match e {
            Expr::BinaryOp {
                left,
                op: B::StringConcat,
                right,
            } => {
                self.as_text(left);
                self.as_text(right);
            }
            Expr::Cast {
                expr, data_type, ..
            } if text_type(data_type) => self.as_text(expr),
            Expr::Function(f)
                if matches!(
                    name_of(f).as_str(),
                    "concat" | "concat_ws" | "string_agg" | "format"
                ) =>
            {
                if let FunctionArguments::List(l) = &mut f.args {
                    for a in &mut l.args {
                        if let FunctionArg::Unnamed(FunctionArgExpr::Expr(x)) = a {
                            self.as_text(x);
                        }
                    }
                }
            }
            _ => {}
        }
    }

    /// `round(numeric [, n])` / `trunc(numeric, n)` with a constant `n` ≥ 0: exact, at
    /// scale `n`, as PostgreSQL prints it (`round(2.5, 2)` is 2.50) — also of a window's
    /// `avg`/`sum` of numerics or integers, which SQLite computes in floating point.
    fn round(&mut self, e: &mut Expr, exact: &str) {
        let Expr::Function(f) = e else { return };
        let FunctionArguments::List(l) = &f.args else {
            return;
        };
        let args: Vec<&Expr> = l
            .args
            .iter()
            .filter_map(|a| match a {
                FunctionArg::Unnamed(FunctionArgExpr::Expr(x)) => Some(x),
                _ => None,
            })
            .collect();
        let places = match args.get(1).map(|n| number_literal(n)) {
            None => "0".to_string(),
            Some(Some(n)) if n.parse::<u32>().is_ok() => n,
            Some(_) => return,
        };
        if args.len() != l.args.len() || args.is_empty() || args.len() > 2 {
            return;
        }
        let x = args[0].clone();
        if self.kind(&x) != Kind::Decimal && !self.window_average(&x) {
            return;
        }
        let inner = self.operand(x);
        let scale = Expr::value(Value::Number(places, false));
        *e = call(NUM, vec![call(exact, vec![inner, scale])]);
    }

    /// `coalesce(…)` with a numeric argument: each value keeps its own scale (`coalesce(bal,
    /// 0)` is `10.50` or `0`, as PostgreSQL prints them); `array_agg(bal)`'s elements keep
    /// the column's (`{10.50}`).
    fn scaled_arguments(&mut self, e: &mut Expr) {
        let Expr::Function(f) = e else { return };
        let name = name_of(f);
        let FunctionArguments::List(l) = &mut f.args else {
            return;
        };
        match name.as_str() {
            "coalesce" => {
                let args = l.args.iter_mut().filter_map(|a| match a {
                    FunctionArg::Unnamed(FunctionArgExpr::Expr(x)) => Some(x),
                    _ => None,
                });
                if self.keep_scales(args.collect()) {
                    *e = call(NUM, vec![e.clone()]);
                }
            }
            "array_agg" => {
                if let [FunctionArg::Unnamed(FunctionArgExpr::Expr(x))] = l.args.as_mut_slice()
                    && let Some((_, types::NUMERIC, Some(_))) = self.column(x)
                {
                    *x = self.operand(x.clone());
                }
            }
            _ => {}
        }
    }

    /// A `CASE` with a numeric result: each result keeps its own scale (`CASE … THEN total
    /// ELSE 0 END` is `10.00` or `0`), as with `coalesce`.
    fn scaled_case(&mut self, e: &mut Expr) {
        let Expr::Case {
            conditions,
            else_result,
            ..
        } = e
        else {
            return;
        };
        let mut results: Vec<&mut Expr> = conditions.iter_mut().map(|w| &mut w.result).collect();
        results.extend(else_result.as_deref_mut());
        if self.keep_scales(results) {
            *e = call(NUM, vec![e.clone()]);
        }
    }

    /// The values one of which a `coalesce` or `CASE` gives, made decimal text each with its
    /// own scale when one is a numeric and none a float (then true: the caller wraps the
    /// whole in `sy_dec_num`).
    fn keep_scales(&mut self, mut values: Vec<&mut Expr>) -> bool {
        let kinds: Vec<Kind> = values.iter().map(|v| self.kind(v)).collect();
        if !kinds.contains(&Kind::Decimal) || kinds.contains(&Kind::Float) {
            return false;
        }
        for v in values.iter_mut() {
            **v = self.operand((**v).clone());
        }
        true
    }

    /// `avg(x) OVER (…)` or `sum(x) OVER (…)` of a numeric or integer `x`.
    fn window_average(&mut self, e: &Expr) -> bool {
        let Expr::Function(f) = e else { return false };
        if f.over.is_none() || !matches!(name_of(f).as_str(), "avg" | "sum") {
            return false;
        }
        super::infer_functions::nth_arg(f, 0)
            .is_some_and(|a| matches!(self.kind(a), Kind::Decimal | Kind::Integer))
    }

    fn aggregate(&mut self, e: &mut Expr) {
        let Expr::Function(f) = e else { return };
        let name = name_of(f);
        if name == "round" && f.over.is_none() {
            return self.round(e, "sy_dec");
        }
        if name == "trunc" && f.over.is_none() {
            return self.round(e, "sy_dec_trunc");
        }
        let spread = super::decimal_spread::is_spread(&name);
        if !(matches!(name.as_str(), "sum" | "avg") || spread) || f.over.is_some() {
            return;
        }
        let filter = f.filter.clone();
        let Some(arg) = only_arg(f) else { return };
        let arg = arg.clone();
        let exact = match self.kind(&arg) {
            Kind::Decimal => true,
            Kind::Integer => name == "avg" || spread,
            _ => false,
        };
        if exact {
            let inner = self.operand(arg);
            let mut agg = call(&format!("sy_dec_{name}"), vec![inner]);
            if let Expr::Function(g) = &mut agg {
                g.filter = filter;
            }
            *e = call(NUM, vec![agg]);
        }
    }
}

impl VisitorMut for Rewrite<'_> {
    type Break = ();

    fn pre_visit_query(&mut self, q: &mut Query) -> ControlFlow<()> {
        // Result columns are named from what the client wrote, before it is rewritten.
        super::column_names::name_query(q);
        ControlFlow::Continue(())
    }

    fn post_visit_expr(&mut self, e: &mut Expr) -> ControlFlow<()> {
        match e {
            Expr::BinaryOp { .. } => self.arithmetic(e),
            Expr::Cast { .. } => self.cast(e),
            Expr::UnaryOp { .. } => self.negation(e),
            Expr::Case { .. } => self.scaled_case(e),
            Expr::Extract { .. } => *e = super::standard_forms::exact_extract(e),
            Expr::Function(f) => {
                exact_argument(f);
                self.aggregate(e);
                self.scaled_arguments(e);
            }
            _ => {}
        }
        self.text_context(e);
        ControlFlow::Continue(())
    }
}

/// Rewrites `stmt`'s numeric arithmetic; says which of its result columns are numeric
/// text (PostgreSQL's `numeric`, shown as computed).
pub fn rewrite(stmt: &mut Statement, tables: &[String], schema: Schema<'_>) -> Vec<bool> {
    if !matches!(
        stmt,
        Statement::Query(_) | Statement::Insert(_) | Statement::Update(_) | Statement::Delete(_)
    ) {
        return Vec::new();
    }
    let returning = match stmt {
        Statement::Insert(i) => i.returning.as_mut(),
        Statement::Update(u) => u.returning.as_mut(),
        Statement::Delete(d) => d.returning.as_mut(),
        _ => None,
    };
    if let Some(r) = returning {
        super::rewrite::name_columns(r);
    }
    let mut rw = Rewrite {
        tables,
        schema,
        cols: None,
    };
    let _ = stmt.visit(&mut rw);
    super::decimal_shown::shown_columns(stmt)
}

#[cfg(test)]
#[path = "decimal_rewrite_tests.rs"]
mod tests;
