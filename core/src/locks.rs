//! Locks that fail instead of panicking: a lock poisoned by an earlier
//! panic is an error the app gets back, never a crash of the host app. A
//! leaf.

use std::sync::{Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::error::{Error, Result};

fn poisoned() -> Error {
    Error::Database("an earlier operation panicked while holding the engine's lock".into())
}

/// A mutex's guard, or the error a poisoned one is.
pub(crate) fn lock<T>(m: &Mutex<T>) -> Result<MutexGuard<'_, T>> {
    m.lock().map_err(|_| poisoned())
}

/// A read guard, or the error a poisoned lock is.
pub(crate) fn read<T>(m: &RwLock<T>) -> Result<RwLockReadGuard<'_, T>> {
    m.read().map_err(|_| poisoned())
}

/// A write guard, or the error a poisoned lock is.
pub(crate) fn write<T>(m: &RwLock<T>) -> Result<RwLockWriteGuard<'_, T>> {
    m.write().map_err(|_| poisoned())
}
