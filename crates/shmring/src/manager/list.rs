//! [`ListProxy`]: a typed view of a list held by the server.

use super::protocol::{ListOp, Reply, Request};
use super::{ManagerError, Shared, dec, enc, unexpected};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::marker::PhantomData;

/// A list on the manager's server, as Python's `Manager().list()`: every method is one
/// round trip and one step on the server. Indices are Rust's (from 0, no negative
/// indices); an index past the end is [`ManagerError::IndexOutOfRange`] for `set`,
/// `insert` and `remove`, and `None` for `get`.
///
/// ```
/// use shmring::manager::Manager;
///
/// let server = Manager::serve(&format!("@shmring-doc-list-{}", std::process::id()).parse()?, None)?;
/// let m = Manager::connect(server.address(), None)?;
/// let l = m.list::<String>("names")?;
/// l.push(&"b".into())?;
/// l.extend(&["c".to_string(), "d".into()])?;
/// l.insert(0, &"a".into())?;
/// assert_eq!(l.remove(3)?, "d");
/// assert_eq!(l.set(1, &"B".into())?, "b");
/// assert_eq!(l.to_vec()?, ["a", "B", "c"]);
/// assert_eq!((l.pop()?, l.len()?, l.get(5)?), (Some("c".into()), 2, None));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct ListProxy<T> {
    conn: Shared,
    id: u32,
    name: String,
    _types: PhantomData<fn(T) -> T>,
}

impl<T> std::fmt::Debug for ListProxy<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ListProxy").field("name", &self.name).finish()
    }
}

impl<T> Clone for ListProxy<T> {
    fn clone(&self) -> Self {
        ListProxy {
            conn: self.conn.clone(),
            id: self.id,
            name: self.name.clone(),
            _types: PhantomData,
        }
    }
}

impl<T: Serialize + DeserializeOwned> ListProxy<T> {
    pub(crate) fn new(conn: Shared, id: u32, name: String) -> Self {
        ListProxy {
            conn,
            id,
            name,
            _types: PhantomData,
        }
    }

    /// The name this list has on the server.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn call(&self, op: ListOp) -> Result<Reply, ManagerError> {
        match self.conn.call(&Request::List { id: self.id, op })? {
            Reply::IndexOutOfRange { index, len } => Err(ManagerError::IndexOutOfRange { index, len }),
            r => Ok(r),
        }
    }

    fn ok(&self, op: ListOp) -> Result<(), ManagerError> {
        match self.call(op)? {
            Reply::Ok => Ok(()),
            r => Err(unexpected(r)),
        }
    }

    fn value(&self, op: ListOp) -> Result<Option<T>, ManagerError> {
        match self.call(op)? {
            Reply::Value(v) => v.as_deref().map(dec).transpose(),
            r => Err(unexpected(r)),
        }
    }

    fn some(&self, op: ListOp) -> Result<T, ManagerError> {
        self.value(op)?
            .ok_or_else(|| ManagerError::Protocol("the server returned no item".into()))
    }

    /// Append `item`.
    pub fn push(&self, item: &T) -> Result<(), ManagerError> {
        self.ok(ListOp::Push(enc(item)?))
    }

    /// Append every item, in one step.
    pub fn extend<'a, I>(&self, items: I) -> Result<(), ManagerError>
    where
        I: IntoIterator<Item = &'a T>,
        T: 'a,
    {
        let items = items.into_iter().map(enc).collect::<Result<Vec<_>, _>>()?;
        self.ok(ListOp::Extend(items))
    }

    /// The item at `index`, or `None` past the end.
    pub fn get(&self, index: usize) -> Result<Option<T>, ManagerError> {
        self.value(ListOp::Get(index as u64))
    }

    /// Replace the item at `index`; returns the previous one.
    pub fn set(&self, index: usize, item: &T) -> Result<T, ManagerError> {
        self.some(ListOp::Set(index as u64, enc(item)?))
    }

    /// Remove and return the last item, if any.
    pub fn pop(&self) -> Result<Option<T>, ManagerError> {
        self.value(ListOp::Pop)
    }

    /// Insert `item` at `index` (`index == len` appends), shifting the rest.
    pub fn insert(&self, index: usize, item: &T) -> Result<(), ManagerError> {
        self.ok(ListOp::Insert(index as u64, enc(item)?))
    }

    /// Remove and return the item at `index`, shifting the rest.
    pub fn remove(&self, index: usize) -> Result<T, ManagerError> {
        self.some(ListOp::Remove(index as u64))
    }

    /// The number of items.
    pub fn len(&self) -> Result<usize, ManagerError> {
        match self.call(ListOp::Len)? {
            Reply::Len(n) => Ok(n as usize),
            r => Err(unexpected(r)),
        }
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> Result<bool, ManagerError> {
        Ok(self.len()? == 0)
    }

    /// A snapshot of the whole list.
    pub fn to_vec(&self) -> Result<Vec<T>, ManagerError> {
        match self.call(ListOp::ToVec)? {
            Reply::Many(v) => v.iter().map(|b| dec(b)).collect(),
            r => Err(unexpected(r)),
        }
    }
}
