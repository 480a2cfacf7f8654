//! Date and time arithmetic in a statement for the SQLite backend, rewritten into the
//! functions of `interval.rs`: `t ± interval '…'` (also `'…'::interval` and an interval
//! a function made), `date ± integer`, `date - date`, `timestamp - timestamp`, and an
//! interval on its own (shown as PostgreSQL shows it). SQLite would otherwise fail on
//! `INTERVAL '1 day'`, and read `'2024-05-06'::date + 1` as 2025 and `date - date` as 0.
//!
//! Which operand is a date, a timestamp or a timestamptz is read from the statement: a
//! cast or typed literal, `now()`/`current_date`/`localtimestamp`, or a column of that
//! type in the statement's tables.

use std::ops::ControlFlow;

use sqlparser::ast::{
    BinaryOperator as B, DataType, Expr, Function, Query, Statement, TimezoneInfo, UnaryOperator,
    Value, VisitMut, VisitorMut,
};

use super::coerce::{Col, Schema};
use super::types;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Date,
    Local,
    Instant,
    Interval,
    Integer,
    Other,
}

impl Kind {
    fn moment(self) -> bool {
        matches!(self, Kind::Date | Kind::Local | Kind::Instant)
    }
}

fn of_type(t: &DataType) -> Kind {
    match t {
        DataType::Date => Kind::Date,
        DataType::Timestamp(_, TimezoneInfo::WithTimeZone | TimezoneInfo::Tz) => Kind::Instant,
        DataType::Timestamp(_, _) | DataType::Datetime(_) => Kind::Local,
        DataType::Interval { .. } => Kind::Interval,
        _ => Kind::Other,
    }
}

fn name_of(f: &Function) -> String {
    f.name
        .0
        .last()
        .and_then(|p| p.as_ident())
        .map(|i| i.value.to_lowercase())
        .unwrap_or_default()
}

fn first_arg(f: &Function) -> Option<&Expr> {
    use sqlparser::ast::{FunctionArg, FunctionArgExpr, FunctionArguments};
    match &f.args {
        FunctionArguments::List(l) => match l.args.first() {
            Some(FunctionArg::Unnamed(FunctionArgExpr::Expr(e))) => Some(e),
            _ => None,
        },
        _ => None,
    }
}

fn call(name: &str, args: Vec<Expr>) -> Expr {
    super::decimal_rewrite::call(name, args)
}

struct Rewrite<'a> {
    tables: &'a [String],
    schema: Schema<'a>,
    /// The tables' date, timestamp and integer columns, looked up at first need.
    cols: Option<Vec<Col>>,
}

impl Rewrite<'_> {
    fn column(&mut self, name: &str) -> Kind {
        let (tables, schema) = (self.tables, self.schema);
        let cols = self.cols.get_or_insert_with(|| {
            super::coerce::columns_typed(tables, schema, |ty| {
                matches!(
                    ty,
                    types::DATE
                        | types::TIMESTAMP
                        | types::TIMESTAMPTZ
                        | types::INT2
                        | types::INT4
                        | types::INT8
                )
            })
        });
        match cols
            .iter()
            .find(|c| c.0.eq_ignore_ascii_case(name))
            .map(|c| c.1)
        {
            Some(types::DATE) => Kind::Date,
            Some(types::TIMESTAMP) => Kind::Local,
            Some(types::TIMESTAMPTZ) => Kind::Instant,
            Some(_) => Kind::Integer,
            None => Kind::Other,
        }
    }

    fn kind(&mut self, e: &Expr) -> Kind {
        match e {
            Expr::Nested(inner) => self.kind(inner),
            Expr::Interval(_) => Kind::Interval,
            Expr::Cast { data_type, .. } => of_type(data_type),
            Expr::TypedString(t) => of_type(&t.data_type),
            Expr::Value(v) => match &v.value {
                Value::Number(n, _) if !n.contains(['.', 'e', 'E']) => Kind::Integer,
                _ => Kind::Other,
            },
            Expr::UnaryOp {
                op: UnaryOperator::Minus,
                expr,
            } if self.kind(expr) == Kind::Integer => Kind::Integer,
            Expr::Identifier(i) => self.column(&i.value),
            Expr::CompoundIdentifier(p) => match p.last() {
                Some(i) => self.column(&i.value),
                None => Kind::Other,
            },
            Expr::Function(f) => match name_of(f).as_str() {
                "now"
                | "current_timestamp"
                | "transaction_timestamp"
                | "statement_timestamp"
                | "clock_timestamp" => Kind::Instant,
                "current_date" => Kind::Date,
                "localtimestamp" | "sy_timestamp" => Kind::Local,
                "sy_timestamptz" => Kind::Instant,
                "sy_interval" | "sy_ts_sub" => Kind::Interval,
                "sy_date_add" => Kind::Date,
                "sy_ts_add" => match first_arg(f).map(|a| self.kind(a)) {
                    Some(Kind::Instant) => Kind::Instant,
                    _ => Kind::Local,
                },
                _ => Kind::Other,
            },
            _ => Kind::Other,
        }
    }

    /// `e ± interval`, `date ± n`, `date - date`, `timestamp - timestamp`, rewritten.
    fn arithmetic(&mut self, e: &mut Expr) {
        let Expr::BinaryOp { left, op, right } = e else {
            return;
        };
        let minus = match op {
            B::Plus => false,
            B::Minus => true,
            _ => return,
        };
        let (l, r) = (self.kind(left), self.kind(right));
        let sign = Expr::value(Value::Number(if minus { "-1" } else { "1" }.into(), false));
        let (l_e, r_e) = ((**left).clone(), (**right).clone());
        *e = match (l, r) {
            (m, Kind::Interval) if m.moment() => {
                call("sy_ts_add", vec![l_e, interval_text(r_e), sign])
            }
            (Kind::Interval, m) if m.moment() && !minus => {
                call("sy_ts_add", vec![r_e, interval_text(l_e), sign])
            }
            (Kind::Date, Kind::Integer) => {
                let n = if minus {
                    Expr::UnaryOp {
                        op: UnaryOperator::Minus,
                        expr: Box::new(Expr::Nested(Box::new(r_e))),
                    }
                } else {
                    r_e
                };
                call("sy_date_add", vec![l_e, n])
            }
            (Kind::Integer, Kind::Date) if !minus => call("sy_date_add", vec![r_e, l_e]),
            (Kind::Date, Kind::Date) if minus => call("sy_date_sub", vec![l_e, r_e]),
            (a, b) if minus && a.moment() && b.moment() => call("sy_ts_sub", vec![l_e, r_e]),
            _ => return,
        };
    }
}

/// The text of an interval operand: the literal's own words (`'3' DAY` as `3 DAY`), else
/// the expression, whose value is an interval's text.
fn interval_text(e: Expr) -> Expr {
    match e {
        Expr::Nested(inner) => interval_text(*inner),
        Expr::Function(f) if name_of(&f) == "sy_interval" => {
            first_arg(&f).cloned().unwrap_or(Expr::Function(f))
        }
        other => other,
    }
}

/// `INTERVAL '…' [unit]` as the text `sy_interval` reads.
fn literal(iv: &sqlparser::ast::Interval) -> Expr {
    let value = match iv.value.as_ref() {
        Expr::Value(v) => match &v.value {
            Value::SingleQuotedString(s) => {
                Expr::value(Value::SingleQuotedString(match &iv.leading_field {
                    Some(unit) => format!("{s} {unit}"),
                    None => s.clone(),
                }))
            }
            _ => (*iv.value).clone(),
        },
        other => other.clone(),
    };
    call("sy_interval", vec![value])
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
            Expr::Interval(iv) => *e = literal(iv),
            Expr::Cast {
                expr, data_type, ..
            } if of_type(data_type) == Kind::Interval => {
                *e = call("sy_interval", vec![(**expr).clone()])
            }
            Expr::BinaryOp { .. } => self.arithmetic(e),
            _ => {}
        }
        ControlFlow::Continue(())
    }
}

/// Rewrites `stmt`'s date and time arithmetic (see the module doc).
pub fn rewrite(stmt: &mut Statement, tables: &[String], schema: Schema<'_>) {
    if !matches!(
        stmt,
        Statement::Query(_) | Statement::Insert(_) | Statement::Update(_) | Statement::Delete(_)
    ) {
        return;
    }
    let mut rw = Rewrite {
        tables,
        schema,
        cols: None,
    };
    let _ = stmt.visit(&mut rw);
}
