//! The one door through which async code reaches the store: a cloneable
//! handle to the store of a command, shared by its connections. Every use
//! holds the store for the closure only; file I/O and fsyncs never run on
//! the async threads' time unannounced.

use std::sync::{Arc, Mutex, MutexGuard};

use super::Store;

#[derive(Clone)]
pub struct SharedStore(Arc<Mutex<Store>>);

impl SharedStore {
    pub fn new(store: Store) -> SharedStore {
        SharedStore(Arc::new(Mutex::new(store)))
    }

    /// Runs `f` on the store on a blocking thread, for async code.
    pub async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Store) -> T + Send + 'static,
    ) -> T {
        let me = self.clone();
        tokio::task::spawn_blocking(move || f(&mut me.lock()))
            .await
            .expect("store task panicked")
    }

    /// Runs `f` on the store right here, for async code that cannot yield
    /// in the middle of what it does (a FETCH being read): the async thread
    /// is handed over to blocking work meanwhile. Needs the multi-threaded
    /// runtime.
    pub fn run_here<T>(&self, f: impl FnOnce(&mut Store) -> T) -> T {
        tokio::task::block_in_place(|| f(&mut self.lock()))
    }

    /// Runs `f` on the store, for code that is not async.
    pub fn with<T>(&self, f: impl FnOnce(&mut Store) -> T) -> T {
        f(&mut self.lock())
    }

    /// A store whose user panicked is still the store: every write is
    /// whole on disk, so it stays usable.
    fn lock(&self) -> MutexGuard<'_, Store> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}
