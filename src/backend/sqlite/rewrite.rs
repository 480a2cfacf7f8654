//! The tree rewrite behind [`super::translate`]: PostgreSQL forms become SQLite ones in
//! place (placeholders, casts, ILIKE, IS DISTINCT FROM, `= ANY(ARRAY[…])`, function names,
//! `public.`/`pg_catalog.` prefixes, FOR UPDATE, OFFSET without LIMIT), result columns are
//! named as PostgreSQL names them, and what has no SQLite form is refused.

use std::ops::ControlFlow;

use sqlparser::ast::{
    BinaryOperator, ColumnOption, Expr, FunctionArguments, Ident, LimitClause, ObjectName,
    ObjectNamePart, Query, SetExpr, Statement, Value, VisitorMut,
};
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::Parser;

pub(super) use super::column_names::{name_columns, pg_column_name};
use super::translate::{TranslateError, ident_name};

/// Walks the tree rewriting PostgreSQL forms into SQLite ones.
#[derive(Default)]
pub(super) struct Rewriter {
    /// The highest `$n` placeholder seen.
    pub(super) params: usize,
    /// Why the statement cannot be translated, when it cannot.
    pub(super) error: Option<TranslateError>,
    /// Inside CREATE or ALTER TABLE: a column default stays plain SQLite (the file must
    /// take inserts from any SQLite client, which knows no function of switchyard's).
    pub(super) ddl: bool,
    /// It calls setval() or nextval(), which write the AUTOINCREMENT counters.
    pub(super) moves_sequences: bool,
}

/// An argument of a FROM function that becomes raw SQL (`json_srf.rs`, `lateral.rs`),
/// rewritten first as the walk would have rewritten it (`'[1]'::jsonb`).
pub(super) fn fragment(e: &Expr) -> String {
    let mut e = e.clone();
    let _ = sqlparser::ast::VisitMut::visit(&mut e, &mut Rewriter::default());
    e.to_string()
}

/// A number literal other than zero (a divisor that needs no check).
fn nonzero_literal(e: &Expr) -> bool {
    matches!(e, Expr::Value(v) if matches!(&v.value, Value::Number(n, _) if n.parse::<f64>().is_ok_and(|x| x != 0.0)))
}

/// A raw SQL fragment in place of an expression (printed verbatim).
pub fn raw(sql: impl Into<String>) -> Expr {
    Expr::Identifier(Ident {
        value: sql.into(),
        quote_style: None,
        span: sqlparser::tokenizer::Span::empty(),
    })
}

use super::defaults::NOW_TZ;

/// `e [NOT] LIKE pattern ESCAPE …` with PostgreSQL's default escape, lower-cased for ILIKE.
fn like(negated: bool, ci: bool, e: &Expr, pattern: &Expr, escape: Option<&Expr>) -> Expr {
    let not = if negated { "NOT " } else { "" };
    let escape = match escape {
        None => " ESCAPE '\\'".to_string(),
        Some(Expr::Value(v)) if v.value == Value::SingleQuotedString(String::new()) => {
            String::new()
        }
        Some(x) => format!(" ESCAPE {x}"),
    };
    if ci {
        raw(format!("(lower({e}) {not}LIKE lower({pattern}){escape})"))
    } else {
        raw(format!("({e} {not}LIKE {pattern}{escape})"))
    }
}

fn function_name(f: &sqlparser::ast::Function) -> String {
    ident_name(&f.name).to_lowercase()
}

impl Rewriter {
    fn refuse(&mut self, what: &str) -> ControlFlow<()> {
        self.error = Some(TranslateError::Refused(what.into()));
        ControlFlow::Break(())
    }

    fn rewrite_function(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        let Expr::Function(f) = expr else {
            return ControlFlow::Continue(());
        };
        let name = function_name(f);
        if f.name.0.len() > 1 {
            // SQLite has no schema-qualified functions: pg_catalog.f(…) → f(…).
            f.name.0.drain(..f.name.0.len() - 1);
        }
        let name = name.rsplit('.').next().unwrap_or(&name).to_string();
        if name == "array"
            && let FunctionArguments::Subquery(q) = &mut f.args
        {
            // ARRAY(SELECT x …) → a JSON array of the subquery's first column.
            if let SetExpr::Select(sel) = q.body.as_mut()
                && let Some(first) = sel.projection.first_mut()
            {
                let e = match first {
                    sqlparser::ast::SelectItem::UnnamedExpr(e)
                    | sqlparser::ast::SelectItem::ExprWithAlias { expr: e, .. } => e.clone(),
                    _ => return self.refuse("ARRAY(SELECT *)"),
                };
                *first = sqlparser::ast::SelectItem::ExprWithAlias {
                    expr: e,
                    alias: Ident::new("_c0"),
                };
            }
            *expr = raw(format!("(SELECT json_group_array(_c0) FROM ({q}))"));
            return ControlFlow::Continue(());
        }
        self.moves_sequences |= matches!(name.as_str(), "setval" | "nextval");
        let renamed = match name.as_str() {
            // The transaction's start, as PostgreSQL answers (the session keeps it).
            "now" | "current_timestamp" | "transaction_timestamp" => {
                *expr = raw(if self.ddl { NOW_TZ } else { "sy_now()" });
                return ControlFlow::Continue(());
            }
            "statement_timestamp" | "clock_timestamp" => {
                *expr = raw(NOW_TZ);
                return ControlFlow::Continue(());
            }
            "localtimestamp" => {
                *expr = raw("strftime('%Y-%m-%d %H:%M:%f', 'now')");
                return ControlFlow::Continue(());
            }
            // The transaction's date in the session's TimeZone (plain SQLite in a table's
            // definition).
            "current_date" => {
                *expr = raw(if self.ddl {
                    "date('now')"
                } else {
                    "sy_date(sy_now())"
                });
                return ControlFlow::Continue(());
            }
            "current_user" | "session_user" | "current_role" | "user"
                if matches!(f.args, sqlparser::ast::FunctionArguments::None) =>
            {
                *expr = raw(format!("{name}()"));
                return ControlFlow::Continue(());
            }
            "string_agg" => {
                distinct_comma(f);
                "group_concat"
            }
            // Booleans are 0/1: all true is the least, any true the greatest.
            "bool_and" | "every" => "min",
            "bool_or" => "max",
            "char_length" | "character_length" => "length",
            "btrim" => "trim",
            "array_agg" => "json_group_array",
            "jsonb_typeof" | "json_typeof" => "json_type",
            "json_array_length" | "jsonb_array_length" => "json_array_length",
            _ => return ControlFlow::Continue(()),
        };
        f.name = ObjectName(vec![ObjectNamePart::Identifier(Ident::new(renamed))]);
        ControlFlow::Continue(())
    }
}

/// Whether a `generate_series`'s arguments are numerics (a decimal literal, a numeric
/// cast): SQLite's series counts integers only.
fn numeric_series(args: &sqlparser::ast::TableFunctionArgs) -> bool {
    args.args.iter().any(|a| {
        let text = a.to_string();
        text.contains("sy_dec")
            || matches!(a, sqlparser::ast::FunctionArg::Unnamed(sqlparser::ast::FunctionArgExpr::Expr(Expr::Value(v)))
                if matches!(&v.value, sqlparser::ast::Value::Number(n, _) if n.contains(['.', 'e', 'E'])))
    })
}

/// `string_agg(DISTINCT x, ',')`: SQLite's DISTINCT aggregates take one argument, and
/// `group_concat` separates by a comma when given none.
fn distinct_comma(f: &mut sqlparser::ast::Function) {
    if let FunctionArguments::List(l) = &mut f.args
        && matches!(
            l.duplicate_treatment,
            Some(sqlparser::ast::DuplicateTreatment::Distinct)
        )
        && l.args.len() == 2
        && l.args[1].to_string() == "','"
    {
        l.args.truncate(1);
    }
}

impl VisitorMut for Rewriter {
    type Break = ();

    fn pre_visit_statement(&mut self, stmt: &mut Statement) -> ControlFlow<()> {
        self.ddl = matches!(
            stmt,
            Statement::CreateTable(_) | Statement::AlterTable { .. }
        );
        ControlFlow::Continue(())
    }

    fn post_visit_query(&mut self, q: &mut Query) -> ControlFlow<()> {
        if let SetExpr::Select(s) = q.body.as_mut() {
            super::rewrite_ops::set_returning_projection(s);
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_query(&mut self, q: &mut Query) -> ControlFlow<()> {
        q.locks.clear();
        if let Some(LimitClause::LimitOffset {
            limit: limit @ None,
            offset: Some(_),
            ..
        }) = &mut q.limit_clause
        {
            *limit = Some(Expr::Value(Value::Number("-1".into(), false).into()));
        }
        if let Err(e) = super::distinct_on::rewrite(q) {
            self.error = Some(e);
            return ControlFlow::Break(());
        }
        super::null_order::query(q);
        if let Err(e) = super::srf_select::rewrite(q) {
            self.error = Some(e);
            return ControlFlow::Break(());
        }
        super::lateral::rewrite(q);
        if let SetExpr::Select(s) = q.body.as_mut() {
            name_columns(&mut s.projection);
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        if let Expr::Function(f) = expr {
            super::null_order::function(f);
        }
        // `||` with a jsonb operand (known only before the casts are rewritten) is jsonb
        // concatenation; marked here, turned into a call after the operands are.
        if let Expr::BinaryOp { left, op, right } = expr
            && *op == BinaryOperator::StringConcat
            && (super::rewrite_ops::is_jsonb_cast(left) || super::rewrite_ops::is_jsonb_cast(right))
        {
            *op = BinaryOperator::Custom(super::rewrite_ops::JSONB_CONCAT.into());
        }
        if let Some(name) = super::rewrite_ops::regclass_text(expr) {
            *expr = name;
            return ControlFlow::Continue(());
        }
        // schema.table.column → table.column, as the tables lose their schema prefix.
        if let Expr::CompoundIdentifier(parts) = expr
            && parts.len() == 3
            && ["public", "pg_catalog", "main"]
                .iter()
                .any(|s| parts[0].value.eq_ignore_ascii_case(s))
        {
            parts.remove(0);
        }
        if let Expr::AnyOp {
            left,
            compare_op: BinaryOperator::Eq,
            right,
            ..
        } = expr
            && let Expr::Array(a) = right.as_ref()
        {
            *expr = Expr::InList {
                expr: left.clone(),
                list: a.elem.clone(),
                negated: false,
            };
        }
        ControlFlow::Continue(())
    }

    fn post_visit_table_factor(&mut self, tf: &mut sqlparser::ast::TableFactor) -> ControlFlow<()> {
        if let sqlparser::ast::TableFactor::UNNEST { .. } = tf {
            *tf = super::rewrite_ops::unnest(tf);
            return ControlFlow::Continue(());
        }
        if let Some(t) = super::rewrite_ops::partition_ancestors(tf) {
            *tf = t;
            return ControlFlow::Continue(());
        }
        if let Some(t) = super::series::timestamps(tf) {
            *tf = t;
            return ControlFlow::Continue(());
        }
        // A single-column function in FROM names its column after its alias in PostgreSQL
        // (`generate_series(1, 3) s` has column `s`); SQLite calls it `value`.
        if let sqlparser::ast::TableFactor::Table {
            name,
            args: args @ Some(_),
            alias,
            ..
        } = tf
        {
            let func = ident_name(name).to_lowercase();
            if func == "generate_series" && args.as_ref().is_some_and(numeric_series) {
                return self.refuse("generate_series over numeric (non-integer) values");
            }
            // Unaliased, its column and the FROM item are named after the function.
            if alias.is_none() && func == "generate_series" {
                *alias = Some(sqlparser::ast::TableAlias {
                    explicit: true,
                    name: Ident::new(func.clone()),
                    columns: Vec::new(),
                    at: None,
                });
            }
            let Some(alias) = alias else {
                return ControlFlow::Continue(());
            };
            // With a column list (`generate_series(1, 32) pos (n)`, as pgjdbc writes it), the
            // column is the one it names.
            if matches!(func.as_str(), "generate_series" | "json_each" | "unnest")
                && alias.columns.len() <= 1
            {
                let column = alias
                    .columns
                    .pop()
                    .map_or_else(|| alias.name.value.clone(), |c| c.name.value);
                let call = format!(
                    "{name}({})",
                    args.as_ref()
                        .map(|a| a
                            .args
                            .iter()
                            .map(|x| x.to_string())
                            .collect::<Vec<_>>()
                            .join(", "))
                        .unwrap_or_default()
                );
                let inner = format!(
                    "(SELECT value AS \"{}\" FROM {})",
                    column.replace('"', "\"\""),
                    call.replace("unnest(", "json_each(")
                );
                *name = ObjectName(vec![ObjectNamePart::Identifier(Ident {
                    value: inner,
                    quote_style: None,
                    span: sqlparser::tokenizer::Span::empty(),
                })]);
                *args = None;
            }
        }
        ControlFlow::Continue(())
    }

    /// `(VALUES …) AS t (a, b)` → `(SELECT column1 AS a, column2 AS b FROM (VALUES …)) AS t`:
    /// SQLite has no column list on a derived table (SQLAlchemy 2's bulk INSERT uses one).
    fn pre_visit_table_factor(&mut self, tf: &mut sqlparser::ast::TableFactor) -> ControlFlow<()> {
        if let sqlparser::ast::TableFactor::Derived {
            subquery,
            alias: Some(alias),
            ..
        } = tf
            && !alias.columns.is_empty()
            && matches!(subquery.body.as_ref(), SetExpr::Values(_))
        {
            let cols: Vec<String> = alias
                .columns
                .iter()
                .enumerate()
                .map(|(i, c)| format!("column{} AS {}", i + 1, c.name))
                .collect();
            let sql = format!("SELECT {} FROM ({subquery})", cols.join(", "));
            match Parser::parse_sql(&PostgreSqlDialect {}, &sql).map(|mut v| v.pop()) {
                Ok(Some(Statement::Query(q))) => {
                    *subquery = q;
                    alias.columns.clear();
                }
                _ => {
                    self.error = Some(TranslateError::Refused(
                        "a column list on a VALUES derived table".into(),
                    ))
                }
            }
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_relation(&mut self, rel: &mut ObjectName) -> ControlFlow<()> {
        if rel.0.len() == 2 {
            let schema = rel.0[0]
                .as_ident()
                .map(|i| i.value.to_lowercase())
                .unwrap_or_default();
            if schema == "public" || schema == "pg_catalog" || schema == "main" {
                rel.0.remove(0);
            } else if schema == "information_schema" {
                let table = rel.0[1]
                    .as_ident()
                    .map(|i| i.value.to_lowercase())
                    .unwrap_or_default();
                *rel = ObjectName(vec![ObjectNamePart::Identifier(Ident::new(format!(
                    "information_schema_{table}"
                )))]);
            }
        }
        ControlFlow::Continue(())
    }

    fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        match expr {
            Expr::Value(v) => {
                if let Value::EscapedStringLiteral(text) = &v.value {
                    v.value = Value::SingleQuotedString(text.clone());
                }
                if let Value::Placeholder(p) = &mut v.value
                    && let Some(n) = p.strip_prefix('$').and_then(|n| n.parse::<usize>().ok())
                {
                    self.params = self.params.max(n);
                    *p = format!("?{n}");
                }
            }
            // PostgreSQL's LIKE is case-sensitive (the connection sets SQLite's
            // case_sensitive_like) and takes `\` as its escape unless told otherwise
            // (`ESCAPE ''`: none); ILIKE compares lower-cased.
            Expr::Like {
                negated,
                any: false,
                expr: e,
                pattern,
                escape_char,
            } => *expr = like(*negated, false, e, pattern, escape_char.as_deref()),
            Expr::ILike {
                negated,
                any: false,
                expr: e,
                pattern,
                escape_char,
            } => *expr = like(*negated, true, e, pattern, escape_char.as_deref()),
            Expr::BinaryOp { left, op, right } if super::rewrite_ops::is_jsonb(op, right) => {
                *expr = super::rewrite_ops::jsonb_operator(left, op, right);
            }
            Expr::CompoundFieldAccess { root, access_chain } => {
                if let Some(e) = super::rewrite_ops::subscript(root, access_chain) {
                    *expr = e;
                } else if let Some(e) = super::rewrite_ops::expanded_element(expr) {
                    *expr = e;
                }
            }
            Expr::Position { .. }
            | Expr::Substring { .. }
            | Expr::Extract { .. }
            | Expr::SimilarTo { .. }
            | Expr::Identifier(_)
            | Expr::AtTimeZone { .. }
            | Expr::TypedString(_) => {
                if let Some(e) = super::standard_forms::call_form(expr) {
                    *expr = e;
                }
            }
            // `TRIM(BOTH 'x' FROM e)`: SQLite has trim(e, 'x'), ltrim and rtrim.
            Expr::Trim {
                expr: e,
                trim_where,
                trim_what: Some(what),
                trim_characters: None,
            } => {
                let f = match trim_where {
                    Some(sqlparser::ast::TrimWhereField::Leading) => "ltrim",
                    Some(sqlparser::ast::TrimWhereField::Trailing) => "rtrim",
                    _ => "trim",
                };
                *expr = raw(format!("{f}({e}, {what})"));
            }
            Expr::IsDistinctFrom(a, b) => {
                *expr = Expr::BinaryOp {
                    left: a.clone(),
                    op: BinaryOperator::Custom("IS NOT".into()),
                    right: b.clone(),
                };
            }
            Expr::IsNotDistinctFrom(a, b) => {
                *expr = Expr::BinaryOp {
                    left: a.clone(),
                    op: BinaryOperator::Custom("IS".into()),
                    right: b.clone(),
                };
            }
            Expr::AnyOp {
                left,
                compare_op: BinaryOperator::Eq,
                right,
                ..
            } => {
                // Over a NULL array the answer is NULL, as in PostgreSQL (not false).
                *expr = raw(format!(
                    "(CASE WHEN {right} IS NULL THEN NULL ELSE {left} IN (SELECT value FROM json_each(sy_array({right}))) END)"
                ));
            }
            Expr::Function(f) if !f.within_group.is_empty() => {
                if let Some(call) = super::ordered_set::rewrite(f) {
                    *expr = call;
                }
            }
            Expr::Cast { .. } => super::casts::rewrite_cast(expr, self.ddl),
            // Division by zero fails as in PostgreSQL (SQLite answers NULL); a table's
            // definition stays plain SQLite.
            Expr::BinaryOp {
                op: BinaryOperator::Divide | BinaryOperator::Modulo,
                right,
                ..
            } if !self.ddl && !nonzero_literal(right) => {
                **right = raw(format!("sy_nonzero({right})"));
            }
            Expr::Collate { expr: inner, .. } => *expr = Expr::Nested(inner.clone()),
            Expr::BinaryOp {
                left,
                op: BinaryOperator::PGExp,
                right,
            } => *expr = raw(format!("power({left}, {right})")),
            // An object or array as text reads as PostgreSQL prints jsonb (`[1, 2]`), not
            // as SQLite's minified JSON.
            Expr::BinaryOp {
                left,
                op: BinaryOperator::LongArrow,
                right,
            } => {
                *expr = raw(format!(
                    "sy_json_item({left} ->> {right}, json_type({left} -> {right}), 1)"
                ))
            }
            Expr::BinaryOp { left, op, right } => {
                let (negated, ci) = match op {
                    BinaryOperator::PGRegexMatch => (false, false),
                    BinaryOperator::PGRegexIMatch => (false, true),
                    BinaryOperator::PGRegexNotMatch => (true, false),
                    BinaryOperator::PGRegexNotIMatch => (true, true),
                    BinaryOperator::PGCustomBinaryOperator(parts)
                        if parts.last().is_some_and(|p| p == "~") =>
                    {
                        (false, false)
                    }
                    _ => return ControlFlow::Continue(()),
                };
                let (l, r) = if ci {
                    (format!("lower({left})"), format!("lower({right})"))
                } else {
                    (left.to_string(), right.to_string())
                };
                let not = if negated { "NOT " } else { "" };
                *expr = raw(format!("({not}regexp({r}, {l}))"));
            }
            Expr::Function(_) => return self.rewrite_function(expr),
            Expr::Array(_) => {
                let Expr::Array(a) = expr else { unreachable!() };
                let items: Vec<String> = a.elem.iter().map(|e| e.to_string()).collect();
                *expr = raw(format!("json_array({})", items.join(", ")));
            }
            _ => {}
        }
        ControlFlow::Continue(())
    }

    fn post_visit_statement(&mut self, stmt: &mut Statement) -> ControlFlow<()> {
        // `INSERT … SELECT … ON CONFLICT`: SQLite reads that ON as a join's unless the
        // SELECT has a WHERE (its documented way out).
        if let Statement::Insert(ins) = stmt
            && ins.on.is_some()
            && let Some(q) = ins.source.as_mut()
            && let SetExpr::Select(sel) = q.body.as_mut()
            && sel.selection.is_none()
        {
            sel.selection = Some(raw("true"));
        }
        if let Statement::CreateIndex(ci) = stmt {
            // Operator classes (varchar_pattern_ops), the access method, CONCURRENTLY and
            // storage parameters mean nothing to SQLite's b-trees. An operator class is kept
            // as a comment beside its column, which SQLite keeps in the index's definition
            // (through renames too), for `pg_get_indexdef` and psql's `\d` to show.
            for c in &mut ci.columns {
                if let Some(op) = c.operator_class.take() {
                    let expr = &c.column.expr;
                    c.column.expr = raw(format!(
                        "{expr} {}",
                        super::indexdef::opclass_mark(&op.to_string())
                    ));
                }
            }
            ci.using = None;
            ci.concurrently = false;
            ci.with.clear();
            ci.include.clear();
        }
        if let Statement::CreateTable(ct) = stmt {
            for c in &mut ct.columns {
                c.options.retain(
                    |o| !matches!(&o.option, ColumnOption::DialectSpecific(t) if t.is_empty()),
                );
            }
        }
        ControlFlow::Continue(())
    }
}
