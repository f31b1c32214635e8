//! What evcxr's generated code around each cell calls, compiled once here instead of in every
//! cell: the store that carries variables from one cell to the next, and the cells' runtime.
//!
//! evcxr pastes its own copy of this module into every cell's crate, and fetches the cells'
//! tokio runtime out of the store with a closure that is a new type in each cell; together
//! they were over half of a trivial cell's rustc time. tandem's patched evcxr names this
//! module instead (`:runtime_module`, patches/README.md). The lines it prints are the ones
//! evcxr's kernel side looks for.

use std::any::Any;
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::runtime::Runtime;

/// Printed when a stored variable's type changed, before its name.
pub const VARIABLE_CHANGED_TYPE: &str = "EVCXR_VARIABLE_CHANGED_TYPE:";
/// Printed when a `?` in a cell returned an error.
pub const USER_ERROR_OCCURRED: &str = "EVCXR_ERROR_OCCURRED";

/// The session's variables between cells, by name. One store lives in the process that runs
/// the cells; each cell gets it from the one before.
#[derive(Default)]
pub struct VariableStore {
    variables: HashMap<String, Box<dyn Any>>,
}

/// A new, empty store, for the session's first cell (it is never freed: it lives as long as
/// the process that runs the cells).
pub fn create_variable_store() -> *mut VariableStore {
    Box::into_raw(Box::default())
}

impl VariableStore {
    /// Keeps `value` under `name` for the cells that follow.
    pub fn put_variable<T: 'static>(&mut self, name: &str, value: T) {
        self.put(name, Box::new(value));
    }

    /// Whether the variable `name`, if there is one, still has type `T`; when not, says so
    /// (the variable is lost).
    pub fn check_variable<T: 'static>(&mut self, name: &str) -> bool {
        self.holds(name, |value| value.is::<T>())
    }

    /// Takes the variable `name` out, to be put back at the cell's end.
    pub fn take_variable<T: 'static>(&mut self, name: &str) -> T {
        match self.take(name).downcast::<T>() {
            Ok(value) => *value,
            Err(_) => panic!("the variable {name} changed type"),
        }
    }

    /// The shared value stored under `name`, made by `create` the first time.
    pub fn lazy_arc<T: 'static, F: FnOnce() -> T>(&mut self, name: &str, create: F) -> Arc<T> {
        if !self.variables.contains_key(name) {
            self.put(name, Box::new(Arc::new(create())));
        }
        match self
            .variables
            .get(name)
            .and_then(|value| value.downcast_ref::<Arc<T>>())
        {
            Some(value) => Arc::clone(value),
            None => panic!("the shared value {name} changed type"),
        }
    }

    /// Moves every variable of `other` into this store.
    pub fn merge(&mut self, mut other: VariableStore) {
        self.variables.extend(other.variables.drain());
    }

    #[inline(never)]
    fn put(&mut self, name: &str, value: Box<dyn Any>) {
        self.variables.insert(name.to_owned(), value);
    }

    #[inline(never)]
    fn take(&mut self, name: &str) -> Box<dyn Any> {
        match self.variables.remove(name) {
            Some(value) => value,
            None => panic!("the variable {name} has gone missing"),
        }
    }

    #[inline(never)]
    fn holds(&mut self, name: &str, has_type: impl Fn(&dyn Any) -> bool) -> bool {
        match self.variables.get(name) {
            Some(value) if !has_type(value.as_ref()) => {
                eprintln!("The type of the variable {name} was redefined, so was lost.");
                println!("{VARIABLE_CHANGED_TYPE}{name}");
                false
            }
            _ => true,
        }
    }
}

/// The session's tokio runtime, made by the first async cell and kept in the store, as
/// evcxr's own code does.
#[inline(never)]
pub fn session_runtime(store: &mut VariableStore) -> Arc<Mutex<Runtime>> {
    store.lazy_arc("evcxr_tokio_runtime", || {
        Mutex::new(Runtime::new().expect("the cells' tokio runtime could not start"))
    })
}

/// Runs a cell's future on `runtime` (from [`session_runtime`]).
pub fn block_on<F: Future>(runtime: &Mutex<Runtime>, future: F) -> F::Output {
    lock(runtime).block_on(future)
}

/// The runtime, locked for one cell. A cell that panicked while holding it leaves it usable
/// for the next.
#[inline(never)]
fn lock(runtime: &Mutex<Runtime>) -> MutexGuard<'_, Runtime> {
    match runtime.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variables_go_from_cell_to_cell_and_a_new_type_is_caught() {
        // SAFETY: the pointer comes from Box::into_raw, and nothing else holds it.
        let mut store = unsafe { Box::from_raw(create_variable_store()) };
        store.put_variable::<i32>("x", 7);
        assert!(store.check_variable::<i32>("x"));
        assert!(!store.check_variable::<String>("x"));
        assert!(store.check_variable::<String>("not there"));
        assert_eq!(store.take_variable::<i32>("x"), 7);
        let mut other = VariableStore::default();
        other.put_variable("y", String::from("kept"));
        store.merge(other);
        assert_eq!(store.take_variable::<String>("y"), "kept");
    }

    #[test]
    fn the_shared_value_is_made_once() {
        let mut store = VariableStore::default();
        let first = store.lazy_arc("n", || 1);
        let second = store.lazy_arc("n", || 2);
        assert!(Arc::ptr_eq(&first, &second));
        assert_eq!(*second, 1);
    }
}
