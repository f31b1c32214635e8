//! A real embedded database (SQLite, compiled into the helpers), queried blocking or from
//! async code without stalling the runtime. SQLite itself answers in microseconds; to play
//! a database server that takes its time, every connection has a `sleep(seconds)` SQL
//! function: `SELECT sleep(0.5), name FROM users WHERE id = 1`.

use crate::spans::Kind;
use crate::task_run::TaskRun;
use rusqlite::functions::FunctionFlags;
use rusqlite::types::ValueRef;
use rusqlite::Connection;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use rusqlite::Error as DatabaseError;

/// Rows as text, one `Vec<String>` per row.
pub type Rows = Vec<Vec<String>>;

/// An SQLite database file with a `users(id, name, score)` table.
///
/// ```
/// use tandem_helpers::database::Database;
/// let db = Database::create("doc-example.db", 100).unwrap();
/// let rows = db.query("SELECT count(*), max(id) FROM users").unwrap();
/// assert_eq!(rows, vec![vec!["100".to_string(), "100".to_string()]]);
/// let slow = db.query("SELECT sleep(0.2), name FROM users WHERE id = 7").unwrap();
/// assert_eq!(slow[0][1], "user 7");
/// ```
#[derive(Debug, Clone)]
pub struct Database {
    path: PathBuf,
}

impl Database {
    /// Creates (or replaces) `name` in the helpers' scratch directory with `rows` users.
    pub fn create(name: &str, rows: usize) -> Result<Database, DatabaseError> {
        let path = crate::files::scratch_dir().join(name);
        let _ = std::fs::remove_file(&path);
        let database = Database { path };
        let mut connection = database.connect()?;
        let fill = connection.transaction()?;
        fill.execute(
            "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL, score INTEGER)",
            [],
        )?;
        {
            let mut insert =
                fill.prepare("INSERT INTO users (id, name, score) VALUES (?1, ?2, ?3)")?;
            for id in 1..=rows as i64 {
                insert.execute((id, format!("user {id}"), (id * 37) % 101))?;
            }
        }
        fill.commit()?;
        Ok(database)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn connect(&self) -> Result<Connection, DatabaseError> {
        let connection = Connection::open(&self.path)?;
        connection.busy_timeout(Duration::from_secs(30))?;
        connection.create_scalar_function("sleep", 1, FunctionFlags::SQLITE_UTF8, |context| {
            let seconds: f64 = context.get(0)?;
            sleep_in_database(seconds)?;
            Ok(seconds)
        })?;
        Ok(connection)
    }

    /// Runs `sql` and returns its rows as text, holding this thread until the database
    /// answers. Records a blocking span.
    pub fn query(&self, sql: &str) -> Result<Rows, DatabaseError> {
        let run = TaskRun::start(&label(sql), Kind::Blocking, false);
        let rows = run_query(&self.connect()?, sql);
        crate::interrupt::stop_if_interrupted();
        let rows = rows?;
        run.finish();
        Ok(rows)
    }

    /// The same query from async code: it runs on tokio's blocking pool (`spawn_blocking`)
    /// so this thread's other tasks go on while the database works. Records an async span.
    ///
    /// ```
    /// use tandem_helpers::prelude::*;
    /// let db = Database::create("doc-async.db", 10).unwrap();
    /// let (rows, took) = run_on_one_thread(timed_async(gather(
    ///     (1..=3).map(|id| db.query_async(format!("SELECT sleep(0.3), name FROM users WHERE id = {id}"))),
    /// )));
    /// assert_eq!(rows.len(), 3);
    /// assert!(took.as_secs_f64() < 0.8, "the three queries waited together");
    /// ```
    pub async fn query_async(&self, sql: impl Into<String>) -> Result<Rows, DatabaseError> {
        let sql = sql.into();
        let run = TaskRun::start(&label(&sql), Kind::Async, false);
        let database = self.clone();
        let work = tokio::task::spawn_blocking(move || run_query(&database.connect()?, &sql));
        let rows = match crate::interrupt::interruptible(work).await {
            Ok(rows) => rows,
            Err(failed) => std::panic::resume_unwind(failed.into_panic()),
        };
        crate::interrupt::stop_if_interrupted();
        let rows = rows?;
        run.finish();
        Ok(rows)
    }
}

/// The span's name: the start of the statement.
fn label(sql: &str) -> String {
    let flat: String = sql.split_whitespace().collect::<Vec<_>>().join(" ");
    match flat.char_indices().nth(32) {
        Some((cut, _)) => format!("sql {}…", &flat[..cut]),
        None => format!("sql {flat}"),
    }
}

fn run_query(connection: &Connection, sql: &str) -> Result<Rows, DatabaseError> {
    let mut statement = connection.prepare(sql)?;
    let columns = statement.column_count();
    let mut rows = statement.query([])?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        let mut values = Vec::with_capacity(columns);
        for column in 0..columns {
            values.push(match row.get_ref(column)? {
                ValueRef::Null => "NULL".to_owned(),
                ValueRef::Integer(n) => n.to_string(),
                ValueRef::Real(x) => x.to_string(),
                ValueRef::Text(text) => String::from_utf8_lossy(text).into_owned(),
                ValueRef::Blob(bytes) => format!("<{} bytes>", bytes.len()),
            });
        }
        out.push(values);
    }
    Ok(out)
}

/// The `sleep` SQL function: waits like a busy server would, and gives up (with an error,
/// never a panic across SQLite's C code) when the kernel asks the cell to stop.
fn sleep_in_database(seconds: f64) -> Result<(), DatabaseError> {
    let deadline = std::time::Instant::now() + Duration::from_secs_f64(seconds.clamp(0.0, 600.0));
    loop {
        if crate::kernel_link::interrupt_requested() {
            return Err(DatabaseError::UserFunctionError("interrupted".into()));
        }
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return Ok(());
        }
        std::thread::sleep(left.min(Duration::from_millis(10)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_the_start_of_the_statement() {
        assert_eq!(label("SELECT 1"), "sql SELECT 1");
        assert_eq!(
            label("SELECT   sleep(0.5), name\n FROM users WHERE id = 12345678"),
            "sql SELECT sleep(0.5), name FROM use…"
        );
    }

    #[test]
    fn errors_in_sql_are_errors() {
        let db = Database::create("test-errors.db", 3).unwrap();
        assert!(db.query("SELECT nope FROM users").is_err());
        assert_eq!(db.query("SELECT count(*) FROM users").unwrap()[0][0], "3");
    }
}
