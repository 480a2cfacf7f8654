//! A small SQL lexer for the relay: words, quoted identifiers, literals, semicolons and
//! punctuation, skipping whitespace and comments. String literals, quoted identifiers and
//! dollar quotes are single tokens, so nothing inside data is ever read as a keyword.

/// A token: its kind and its byte range in the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tok {
    pub kind: Kind,
    pub start: u32,
    pub end: u32,
}

impl Tok {
    /// The token's bytes in `sql`.
    pub fn text<'a>(&self, sql: &'a [u8]) -> &'a [u8] {
        &sql[self.start as usize..self.end as usize]
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    Word,
    Quoted,
    Literal,
    Semicolon,
    Punct,
}

/// Splits SQL into tokens. Unterminated quotes or comments end the text.
pub fn tokens(sql: &[u8]) -> Vec<Tok> {
    Lexer::new(sql).collect()
}

/// The tokens of a text, one at a time, without allocating.
pub struct Lexer<'a> {
    sql: &'a [u8],
    i: usize,
}

impl<'a> Lexer<'a> {
    pub fn new(sql: &'a [u8]) -> Self {
        Lexer { sql, i: 0 }
    }
}

impl Iterator for Lexer<'_> {
    type Item = Tok;

    fn next(&mut self) -> Option<Tok> {
        let sql = self.sql;
        let mut i = self.i;
        loop {
            let &c = sql.get(i)?;
            let start = i;
            let kind = match c {
                b' ' | b'\t' | b'\n' | b'\r' | b'\x0c' => {
                    i += 1;
                    continue;
                }
                b'-' if sql.get(i + 1) == Some(&b'-') => {
                    i = memchr::memchr(b'\n', &sql[i..]).map_or(sql.len(), |n| i + n + 1);
                    continue;
                }
                b'/' if sql.get(i + 1) == Some(&b'*') => {
                    i = skip_block_comment(sql, i);
                    continue;
                }
                b'\'' => {
                    i = skip_quoted(sql, i, b'\'');
                    Kind::Literal
                }
                b'"' => {
                    i = skip_quoted(sql, i, b'"');
                    Kind::Quoted
                }
                b'$' if dollar_tag(sql, i).is_some() => {
                    i = skip_dollar(sql, i);
                    Kind::Literal
                }
                b';' => {
                    i += 1;
                    Kind::Semicolon
                }
                c if c.is_ascii_alphabetic() || c == b'_' || c >= 0x80 => {
                    while i < sql.len() && is_word_byte(sql[i]) {
                        i += 1;
                    }
                    Kind::Word
                }
                c if c.is_ascii_digit() => {
                    while i < sql.len() && (sql[i].is_ascii_alphanumeric() || sql[i] == b'.') {
                        i += 1;
                    }
                    Kind::Literal
                }
                _ => {
                    i += 1;
                    Kind::Punct
                }
            };
            self.i = i;
            return Some(Tok {
                kind,
                start: start as u32,
                end: i as u32,
            });
        }
    }
}

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80
}

fn skip_block_comment(sql: &[u8], mut i: usize) -> usize {
    let mut depth = 0;
    while i < sql.len() {
        if sql[i..].starts_with(b"/*") {
            depth += 1;
            i += 2;
        } else if sql[i..].starts_with(b"*/") {
            depth -= 1;
            i += 2;
            if depth == 0 {
                return i;
            }
        } else {
            i += 1;
        }
    }
    sql.len()
}

fn skip_quoted(sql: &[u8], mut i: usize, q: u8) -> usize {
    i += 1;
    while i < sql.len() {
        if sql[i] == q {
            if sql.get(i + 1) == Some(&q) {
                i += 2;
                continue;
            }
            return i + 1;
        }
        i += 1;
    }
    sql.len()
}

/// The `$tag$` opening at `i`, if there is one.
fn dollar_tag(sql: &[u8], i: usize) -> Option<&[u8]> {
    let rest = &sql[i + 1..];
    let end = rest.iter().position(|&b| b == b'$')?;
    let tag = &rest[..end];
    let ok = tag
        .iter()
        .enumerate()
        .all(|(n, &b)| b.is_ascii_alphabetic() || b == b'_' || (n > 0 && b.is_ascii_digit()));
    ok.then_some(&sql[i..i + end + 2])
}

fn skip_dollar(sql: &[u8], i: usize) -> usize {
    let Some(tag) = dollar_tag(sql, i) else {
        return i + 1;
    };
    let body = i + tag.len();
    match memchr::memmem::find(&sql[body..], tag) {
        Some(n) => body + n + tag.len(),
        None => sql.len(),
    }
}
