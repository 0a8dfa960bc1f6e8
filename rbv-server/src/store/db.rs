// SPDX-License-Identifier: MPL-2.0
//! The two databases the store runs on, behind one small interface: SQL
//! written once (`?1` parameters, portable types and functions), values as
//! [`V`], rows as [`Row`]. SQLite is embedded (one file, one connection);
//! PostgreSQL is reached over the network (one connection per node,
//! reopened when it breaks).
//!
//! The dialect differences are few and handled here: `?N` becomes `$N`,
//! and the migrations' SQLite types become PostgreSQL's (`INTEGER` ->
//! `BIGINT`, `REAL` -> `DOUBLE PRECISION`, the implicit `rowid` made an
//! explicit `BIGSERIAL` column so orderings by insertion hold on both).

use std::sync::Mutex;

use postgres::types::{IsNull, ToSql, Type, to_sql_checked};

/// A value passed to or read from the database.
#[derive(Debug, Clone, PartialEq)]
pub enum V {
    Null,
    I(i64),
    F(f64),
    T(String),
}

impl From<&str> for V {
    fn from(s: &str) -> V {
        V::T(s.to_owned())
    }
}
impl From<String> for V {
    fn from(s: String) -> V {
        V::T(s)
    }
}
impl From<&String> for V {
    fn from(s: &String) -> V {
        V::T(s.clone())
    }
}
impl From<i64> for V {
    fn from(i: i64) -> V {
        V::I(i)
    }
}
impl From<&i64> for V {
    fn from(i: &i64) -> V {
        V::I(*i)
    }
}
impl From<u16> for V {
    fn from(i: u16) -> V {
        V::I(i.into())
    }
}
impl From<f64> for V {
    fn from(f: f64) -> V {
        V::F(f)
    }
}
impl From<&f64> for V {
    fn from(f: &f64) -> V {
        V::F(*f)
    }
}
impl<T: Into<V>> From<Option<T>> for V {
    fn from(o: Option<T>) -> V {
        o.map_or(V::Null, Into::into)
    }
}
impl<'a> From<&'a Option<String>> for V {
    fn from(o: &'a Option<String>) -> V {
        o.as_deref().map_or(V::Null, V::from)
    }
}
impl<'a> From<&'a Option<i64>> for V {
    fn from(o: &'a Option<i64>) -> V {
        o.map_or(V::Null, V::I)
    }
}
impl<'a> From<&'a Option<f64>> for V {
    fn from(o: &'a Option<f64>) -> V {
        o.map_or(V::Null, V::F)
    }
}

/// Parameters: `p![a, b, c]`.
macro_rules! p {
    ($($v:expr),* $(,)?) => { &[$($crate::store::db::V::from($v)),*][..] };
}
pub(crate) use p;

/// What went wrong with the database.
#[derive(Debug)]
pub enum Error {
    Sqlite(rusqlite::Error),
    Postgres(postgres::Error),
    /// A value of another type than the code expects.
    Value(String),
    /// The database could not be reached a moment ago: not tried again yet.
    Unreachable(String),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Sqlite(e) => write!(f, "SQLite: {e}"),
            Error::Postgres(e) => match e.as_db_error() {
                Some(d) => write!(f, "PostgreSQL: {}: {}", d.code().code(), d.message()),
                None => {
                    write!(f, "PostgreSQL: {e}")?;
                    // "error connecting to server" says why only in its source.
                    let mut cause = std::error::Error::source(e);
                    while let Some(c) = cause {
                        write!(f, ": {c}")?;
                        cause = c.source();
                    }
                    Ok(())
                }
            },
            Error::Value(m) => f.write_str(m),
            Error::Unreachable(m) => write!(
                f,
                "PostgreSQL: {m} (a moment ago; tried again after {} s)",
                RECONNECT_PAUSE.as_secs()
            ),
        }
    }
}

impl std::error::Error for Error {}

impl Error {
    /// The database cannot be reached (connection refused, closed, shut
    /// down): the request may work again shortly, unlike an error of the
    /// statement itself.
    pub fn unavailable(&self) -> bool {
        let e = match self {
            Error::Postgres(e) => e,
            Error::Unreachable(_) => return true,
            Error::Sqlite(_) | Error::Value(_) => return false,
        };
        if let Some(d) = e.as_db_error() {
            let code = d.code().code();
            // connection_exception (08...), admin_shutdown, crash_shutdown,
            // cannot_connect_now.
            return code.starts_with("08") || ["57P01", "57P02", "57P03"].contains(&code);
        }
        // A closed connection, or one that failed on the network; not a
        // value the code could not convert (a bug, not worth a retry).
        let mut cause = std::error::Error::source(e);
        let mut io = false;
        while let Some(c) = cause {
            io |= c.is::<std::io::Error>();
            cause = c.source();
        }
        e.is_closed() || io || e.to_string().contains("error connecting to server")
    }
}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Error {
        Error::Sqlite(e)
    }
}
impl From<postgres::Error> for Error {
    fn from(e: postgres::Error) -> Error {
        Error::Postgres(e)
    }
}

pub type Result<T> = std::result::Result<T, Error>;

/// A value read as a Rust type.
pub trait FromV: Sized {
    fn from_v(v: &V) -> Option<Self>;
}
impl FromV for i64 {
    fn from_v(v: &V) -> Option<i64> {
        match v {
            V::I(i) => Some(*i),
            _ => None,
        }
    }
}
impl FromV for f64 {
    fn from_v(v: &V) -> Option<f64> {
        match v {
            V::F(f) => Some(*f),
            // SQLite gives an integer for a whole REAL expression (SUM of none).
            V::I(i) => Some(*i as f64),
            _ => None,
        }
    }
}
impl FromV for String {
    fn from_v(v: &V) -> Option<String> {
        match v {
            V::T(s) => Some(s.clone()),
            _ => None,
        }
    }
}
impl<T: FromV> FromV for Option<T> {
    fn from_v(v: &V) -> Option<Option<T>> {
        match v {
            V::Null => Some(None),
            v => T::from_v(v).map(Some),
        }
    }
}

/// One result row.
#[derive(Debug, Clone)]
pub struct Row(Vec<V>);

impl Row {
    pub fn get<T: FromV>(&self, i: usize) -> Result<T> {
        let v = self.0.get(i).unwrap_or(&V::Null);
        T::from_v(v).ok_or_else(|| {
            Error::Value(format!(
                "column {i} holds {v:?}, not a {}",
                std::any::type_name::<T>()
            ))
        })
    }
}

/// Which database a connection talks to, where the SQL must differ.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

/// A connection (or an open transaction) to run statements on.
pub enum Conn<'a> {
    Sqlite(&'a rusqlite::Connection),
    Postgres(&'a mut dyn PgExec),
}

/// What the store needs of a PostgreSQL transaction (object-safe).
pub trait PgExec {
    fn pg_execute(&mut self, sql: &str, p: &[&(dyn ToSql + Sync)]) -> Result<u64>;
    fn pg_query(&mut self, sql: &str, p: &[&(dyn ToSql + Sync)]) -> Result<Vec<postgres::Row>>;
    fn pg_batch(&mut self, sql: &str) -> Result<()>;
}

impl PgExec for postgres::Transaction<'_> {
    fn pg_execute(&mut self, sql: &str, p: &[&(dyn ToSql + Sync)]) -> Result<u64> {
        Ok(self.execute(sql, p)?)
    }
    fn pg_query(&mut self, sql: &str, p: &[&(dyn ToSql + Sync)]) -> Result<Vec<postgres::Row>> {
        Ok(self.query(sql, p)?)
    }
    fn pg_batch(&mut self, sql: &str) -> Result<()> {
        Ok(self.batch_execute(sql)?)
    }
}

impl Conn<'_> {
    pub fn dialect(&self) -> Dialect {
        match self {
            Conn::Sqlite(_) => Dialect::Sqlite,
            Conn::Postgres(_) => Dialect::Postgres,
        }
    }

    /// Runs a statement; returns the rows it changed.
    pub fn exec(&mut self, sql: &str, params: &[V]) -> Result<u64> {
        match self {
            Conn::Sqlite(c) => {
                Ok(c.execute(sql, rusqlite::params_from_iter(params.iter()))? as u64)
            }
            Conn::Postgres(t) => t.pg_execute(&pg_sql(sql), &pg_params(params)),
        }
    }

    pub fn rows(&mut self, sql: &str, params: &[V]) -> Result<Vec<Row>> {
        match self {
            Conn::Sqlite(c) => {
                let mut st = c.prepare_cached(sql)?;
                let n = st.column_count();
                let mut rows = st.query(rusqlite::params_from_iter(params.iter()))?;
                let mut out = Vec::new();
                while let Some(r) = rows.next()? {
                    out.push(Row((0..n)
                        .map(|i| sqlite_value(r, i))
                        .collect::<Result<_>>()?));
                }
                Ok(out)
            }
            Conn::Postgres(t) => t
                .pg_query(&pg_sql(sql), &pg_params(params))?
                .iter()
                .map(pg_row)
                .collect(),
        }
    }

    /// Runs statements separated by `;`, with no parameters.
    pub fn batch(&mut self, sql: &str) -> Result<()> {
        match self {
            Conn::Sqlite(c) => Ok(c.execute_batch(sql)?),
            Conn::Postgres(t) => t.pg_batch(sql),
        }
    }

    /// The first row, if any.
    pub fn row(&mut self, sql: &str, params: &[V]) -> Result<Option<Row>> {
        Ok(self.rows(sql, params)?.into_iter().next())
    }

    /// The first row (an error when there is none).
    pub fn one_row(&mut self, sql: &str, params: &[V]) -> Result<Row> {
        self.row(sql, params)?
            .ok_or_else(|| Error::Value(format!("no row from {sql}")))
    }

    /// The first column of the first row (an error when there is none).
    pub fn one<T: FromV>(&mut self, sql: &str, params: &[V]) -> Result<T> {
        self.row(sql, params)?
            .ok_or_else(|| Error::Value(format!("no row from {sql}")))?
            .get(0)
    }
}

impl rusqlite::ToSql for V {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, Value, ValueRef};
        Ok(match self {
            V::Null => ToSqlOutput::Owned(Value::Null),
            V::I(i) => ToSqlOutput::Owned(Value::Integer(*i)),
            V::F(f) => ToSqlOutput::Owned(Value::Real(*f)),
            V::T(s) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
        })
    }
}

fn sqlite_value(r: &rusqlite::Row, i: usize) -> Result<V> {
    use rusqlite::types::ValueRef;
    Ok(match r.get_ref(i)? {
        ValueRef::Null => V::Null,
        ValueRef::Integer(i) => V::I(i),
        ValueRef::Real(f) => V::F(f),
        ValueRef::Text(t) => V::T(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(_) => return Err(Error::Value(format!("column {i} is a blob"))),
    })
}

impl ToSql for V {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut postgres::types::private::BytesMut,
    ) -> std::result::Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match (self, ty) {
            (V::Null, _) => Ok(IsNull::Yes),
            (V::I(i), &Type::INT8) => i.to_sql(ty, out),
            (V::I(i), &Type::INT4) => i32::try_from(*i)?.to_sql(ty, out),
            (V::I(i), &Type::INT2) => i16::try_from(*i)?.to_sql(ty, out),
            (V::I(i), &Type::FLOAT8) => (*i as f64).to_sql(ty, out),
            (V::I(i), &Type::BOOL) => (*i != 0).to_sql(ty, out),
            (V::F(f), &Type::FLOAT8) => f.to_sql(ty, out),
            (V::F(f), &Type::FLOAT4) => (*f as f32).to_sql(ty, out),
            (V::T(s), t)
                if [
                    Type::TEXT,
                    Type::VARCHAR,
                    Type::BPCHAR,
                    Type::NAME,
                    Type::UNKNOWN,
                ]
                .contains(t) =>
            {
                s.to_sql(ty, out)
            }
            // Written as another type's bytes it would be read as garbage:
            // the statement needs a CAST.
            (v, t) => Err(format!("{v:?} for a parameter PostgreSQL types {t}: add a CAST").into()),
        }
    }

    fn accepts(ty: &Type) -> bool {
        [
            Type::INT2,
            Type::INT4,
            Type::INT8,
            Type::FLOAT4,
            Type::FLOAT8,
            Type::BOOL,
            Type::TEXT,
            Type::VARCHAR,
            Type::BPCHAR,
            Type::NAME,
            Type::UNKNOWN,
        ]
        .contains(ty)
    }

    to_sql_checked!();
}

fn pg_params(params: &[V]) -> Vec<&(dyn ToSql + Sync)> {
    params.iter().map(|v| v as &(dyn ToSql + Sync)).collect()
}

fn pg_row(r: &postgres::Row) -> Result<Row> {
    let mut out = Vec::with_capacity(r.len());
    for (i, c) in r.columns().iter().enumerate() {
        let ty = c.type_();
        let v = if *ty == Type::INT8 {
            r.try_get::<_, Option<i64>>(i)?.map(V::I)
        } else if *ty == Type::INT4 {
            r.try_get::<_, Option<i32>>(i)?.map(|v| V::I(v.into()))
        } else if *ty == Type::INT2 {
            r.try_get::<_, Option<i16>>(i)?.map(|v| V::I(v.into()))
        } else if *ty == Type::FLOAT8 {
            r.try_get::<_, Option<f64>>(i)?.map(V::F)
        } else if *ty == Type::FLOAT4 {
            r.try_get::<_, Option<f32>>(i)?.map(|v| V::F(v.into()))
        } else if *ty == Type::BOOL {
            r.try_get::<_, Option<bool>>(i)?.map(|v| V::I(v.into()))
        } else if [Type::TEXT, Type::VARCHAR, Type::BPCHAR, Type::NAME].contains(ty) {
            r.try_get::<_, Option<String>>(i)?.map(V::T)
        } else {
            return Err(Error::Value(format!(
                "column {} is of PostgreSQL type {ty}, which the store does not read",
                c.name()
            )));
        };
        out.push(v.unwrap_or(V::Null));
    }
    Ok(Row(out))
}

/// `?N` parameters as PostgreSQL's `$N` (outside string literals).
pub fn pg_sql(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut quoted = false;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\'' {
            quoted = !quoted;
        }
        if c == '?' && !quoted && chars.peek().is_some_and(char::is_ascii_digit) {
            out.push('$');
        } else {
            out.push(c);
        }
    }
    out
}

/// A migration written for SQLite, as PostgreSQL runs it.
pub fn pg_migration(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 256);
    for line in sql.lines() {
        let code = line.split("--").next().unwrap_or("");
        let mut l = code
            .replace("INTEGER PRIMARY KEY AUTOINCREMENT", "BIGSERIAL PRIMARY KEY")
            .replace(" INTEGER", " BIGINT")
            .replace(" REAL", " DOUBLE PRECISION");
        // SQLite's implicit rowid, which orderings by insertion use.
        if let Some(table) = l.trim().strip_prefix("CREATE TABLE ")
            && let Some(name) = table.strip_suffix('(')
        {
            l = format!("CREATE TABLE {name}(\n    rowid BIGSERIAL,");
        }
        out.push_str(&l);
        out.push('\n');
    }
    out
}

/// After a failed connection, calls fail at once for this long instead of
/// each waiting out a connect of its own (a database host that drops
/// packets would hold every call for the connect timeout).
const RECONNECT_PAUSE: std::time::Duration = std::time::Duration::from_secs(2);

/// The PostgreSQL connection of one node, reopened when it broke.
pub struct Pg {
    config: postgres::Config,
    client: Mutex<Option<postgres::Client>>,
    /// Until when, and why, the database is taken as unreachable.
    unreachable: Mutex<Option<(std::time::Instant, String)>>,
}

impl Pg {
    pub fn connect(url: &str) -> std::result::Result<Pg, String> {
        let mut config: postgres::Config = url
            .parse()
            .map_err(|e| format!("the database URL is not valid: {e}"))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(std::time::Duration::from_secs(10));
        }
        config.application_name("rbv serve");
        // A connection that went half-open (a host or a network gone) is
        // noticed in about a minute instead of the system's 15, and no
        // statement holds the node's connection past 30 s.
        config
            .keepalives(true)
            .keepalives_idle(std::time::Duration::from_secs(30))
            .tcp_user_timeout(std::time::Duration::from_secs(60));
        if config.get_options().is_none() {
            config.options("-c statement_timeout=30000");
        }
        let pg = Pg {
            config,
            client: Mutex::new(None),
            unreachable: Mutex::new(None),
        };
        pg.run(|_| Ok(()))
            .map_err(|e| format!("cannot reach the database: {e}"))?;
        Ok(pg)
    }

    /// Runs `f` in a transaction, committed when it returns Ok; once more
    /// on a new connection when the connection broke under it (a database
    /// restart). The synchronous client runs its own small runtime, which
    /// may not be entered from a Tokio worker: there the call runs on a
    /// scoped thread, and Tokio's other tasks leave the waiting worker
    /// thread (`block_in_place`).
    pub fn run<T: Send>(&self, f: impl Fn(&mut Conn) -> Result<T> + Send) -> Result<T> {
        let (client, config, unreachable) = (&self.client, &self.config, &self.unreachable);
        // Within the pause: at once, not after the call dialling now.
        let paused = || {
            let down = unreachable.lock().unwrap_or_else(|e| e.into_inner());
            match down.as_ref() {
                Some((until, why)) if std::time::Instant::now() < *until => {
                    Err(Error::Unreachable(why.clone()))
                }
                _ => Ok(()),
            }
        };
        let work = move || -> Result<T> {
            paused()?;
            let mut guard = client.lock().unwrap_or_else(|e| e.into_inner());
            let once = |guard: &mut Option<postgres::Client>| -> Result<T> {
                if guard.as_ref().is_none_or(postgres::Client::is_closed) {
                    paused()?;
                    // Not held while dialling: callers in the pause answer at once.
                    match config.connect(postgres::NoTls) {
                        Ok(c) => {
                            *unreachable.lock().unwrap_or_else(|e| e.into_inner()) = None;
                            *guard = Some(c);
                        }
                        Err(e) => {
                            let e = Error::from(e);
                            // Only a database out of reach pauses the node
                            // (not a wrong password or a missing database).
                            if e.unavailable() {
                                let why = e.to_string();
                                let why = why.strip_prefix("PostgreSQL: ").unwrap_or(&why);
                                *unreachable.lock().unwrap_or_else(|e| e.into_inner()) = Some((
                                    std::time::Instant::now() + RECONNECT_PAUSE,
                                    why.to_owned(),
                                ));
                            }
                            return Err(e);
                        }
                    }
                }
                let client = guard.as_mut().expect("connected above");
                let mut tx = client.transaction()?;
                let out = f(&mut Conn::Postgres(&mut tx))?;
                tx.commit()?;
                Ok(out)
            };
            match once(&mut guard) {
                Err(Error::Postgres(_))
                    if guard.as_ref().is_some_and(postgres::Client::is_closed) =>
                {
                    once(&mut guard)
                }
                r => r,
            }
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return work();
        };
        let on_thread = || {
            std::thread::scope(|s| {
                s.spawn(work)
                    .join()
                    .unwrap_or_else(|p| std::panic::resume_unwind(p))
            })
        };
        match runtime.runtime_flavor() {
            tokio::runtime::RuntimeFlavor::MultiThread => tokio::task::block_in_place(on_thread),
            _ => on_thread(),
        }
    }
}

impl Drop for Pg {
    /// Closing the client blocks on its runtime too: off Tokio's threads.
    fn drop(&mut self) {
        let client = self
            .client
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(client) = client
            && tokio::runtime::Handle::try_current().is_ok()
        {
            std::thread::scope(|s| {
                s.spawn(move || drop(client));
            });
        }
    }
}

/// For tests and set-up: creates a database named `name` on the server
/// `url` points at, unless it is there, and returns its URL.
pub fn create_database(url: &str, name: &str) -> std::result::Result<String, String> {
    if !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return Err(format!("{name}: a database name of letters, digits and _"));
    }
    let pg = Pg::connect(url)?;
    {
        let mut guard = pg.client.lock().unwrap_or_else(|e| e.into_inner());
        let client = guard.as_mut().ok_or("not connected")?;
        let create = format!("CREATE DATABASE {name}");
        let mut run = move || client.batch_execute(&create);
        let done = if tokio::runtime::Handle::try_current().is_ok() {
            std::thread::scope(|s| s.spawn(run).join().expect("no panic"))
        } else {
            run()
        };
        match done {
            Ok(()) => {}
            Err(e) if e.code() == Some(&postgres::error::SqlState::DUPLICATE_DATABASE) => {}
            Err(e) => return Err(format!("CREATE DATABASE {name}: {e}")),
        }
    }
    let mut base = url.to_owned();
    if let Some(q) = base.find('?') {
        base.truncate(q);
    }
    let slash = base.rfind('/').filter(|&i| i > "postgres://".len());
    Ok(match slash {
        Some(i) => format!("{}/{name}", &base[..i]),
        None => format!("{base}/{name}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unreachable_database_is_not_dialled_again_at_once() {
        // Nothing listens on port 1 of 127.0.0.1.
        let pg = Pg {
            config: "postgres://rbv@127.0.0.1:1/rbv".parse().unwrap(),
            client: Mutex::new(None),
            unreachable: Mutex::new(None),
        };
        let first = pg.run(|_| Ok(())).unwrap_err();
        assert!(first.unavailable(), "{first}");
        assert!(matches!(first, Error::Postgres(_)), "{first}");
        // Within the pause: the same reason, without a connect.
        let again = pg.run(|_| Ok(())).unwrap_err();
        assert!(matches!(again, Error::Unreachable(_)), "{again}");
        assert!(again.unavailable());
        assert!(again.to_string().contains("Connection refused"), "{again}");
        // After it: dialled again.
        std::thread::sleep(RECONNECT_PAUSE);
        let later = pg.run(|_| Ok(())).unwrap_err();
        assert!(matches!(later, Error::Postgres(_)), "{later}");
    }

    #[test]
    fn parameters_become_dollars_outside_literals() {
        assert_eq!(
            pg_sql("SELECT a FROM t WHERE b = ?1 AND c = '?2' AND d = ?12"),
            "SELECT a FROM t WHERE b = $1 AND c = '?2' AND d = $12"
        );
    }

    #[test]
    fn migrations_get_postgres_types_and_a_rowid() {
        let sql = "CREATE TABLE t (\n    id INTEGER PRIMARY KEY AUTOINCREMENT,\n    n INTEGER NOT NULL, -- INTEGER\n    x REAL\n);\nALTER TABLE t ADD COLUMN y INTEGER;";
        assert_eq!(
            pg_migration(sql),
            "CREATE TABLE t (\n    rowid BIGSERIAL,\n    id BIGSERIAL PRIMARY KEY,\n    n BIGINT NOT NULL, \n    x DOUBLE PRECISION\n);\nALTER TABLE t ADD COLUMN y BIGINT;\n"
        );
    }

    #[test]
    fn values_read_as_what_the_code_asks() {
        let r = Row(vec![V::I(3), V::F(1.5), V::T("a".into()), V::Null]);
        assert_eq!(r.get::<i64>(0).unwrap(), 3);
        assert_eq!(r.get::<f64>(0).unwrap(), 3.0);
        assert_eq!(r.get::<f64>(1).unwrap(), 1.5);
        assert_eq!(r.get::<String>(2).unwrap(), "a");
        assert_eq!(r.get::<Option<String>>(3).unwrap(), None);
        assert!(
            r.get::<i64>(2)
                .unwrap_err()
                .to_string()
                .contains("not a i64")
        );
        assert!(r.get::<String>(3).is_err());
    }
}
