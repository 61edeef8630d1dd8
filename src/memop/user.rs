//! User space as the ioctls see it: the buffers behind `buf` and `old_addr`.
//!
//! The kernel reaches user memory only through `copy_from_user` / `copy_to_user`, and
//! only at the moments §3 names. The model passes the user memory next to the struct
//! (the struct's `buf` and `old_addr` values are not dereferenced): each buffer is
//! either mapped ([`UserBuffer::Valid`]) or not ([`UserBuffer::Null`], a NULL or
//! unmapped address, where every copy fails with -EFAULT).
//!
//! A copy is all or nothing: a buffer shorter than the copy faults as a whole
//! (-EFAULT) and is left untouched. The kernel's copies can stop part-way at a page
//! boundary of user memory; a model buffer has no such boundary, and a whole-or-nothing
//! fault keeps the rule "user buffers are changed only on success" exact.
#![forbid(unsafe_code)]

use crate::exception::Errno;

/// One user-space buffer.
#[derive(Debug, Default)]
pub enum UserBuffer<'a> {
    /// A NULL or unmapped address: every copy faults.
    #[default]
    Null,
    /// Mapped, readable and writable user memory.
    Valid(&'a mut [u8]),
}

impl<'a> UserBuffer<'a> {
    /// A mapped buffer.
    pub fn valid(bytes: &'a mut [u8]) -> Self {
        Self::Valid(bytes)
    }

    /// Whether the buffer is mapped.
    pub fn is_valid(&self) -> bool {
        matches!(self, Self::Valid(_))
    }

    /// `copy_from_user` of `len` bytes: the bytes, or -EFAULT. Copying 0 bytes never
    /// faults.
    pub fn copy_from(&self, len: usize) -> Result<&[u8], Errno> {
        match self {
            Self::Valid(b) if b.len() >= len => Ok(&b[..len]),
            _ if len == 0 => Ok(&[]),
            _ => Err(Errno::Efault),
        }
    }

    /// The first `len` bytes, if a `copy_to_user` of `len` bytes would succeed (for
    /// callers that fill the user's memory in place; `None` means it would fault).
    pub fn writable(&mut self, len: usize) -> Option<&mut [u8]> {
        match self {
            Self::Valid(b) if b.len() >= len => Some(&mut b[..len]),
            _ => None,
        }
    }

    /// `copy_to_user` of `data`: stores all of it, or faults with -EFAULT and stores
    /// nothing. Copying 0 bytes never faults.
    pub fn copy_to(&mut self, data: &[u8]) -> Result<(), Errno> {
        match self {
            Self::Valid(b) if b.len() >= data.len() => {
                b[..data.len()].copy_from_slice(data);
                Ok(())
            }
            _ if data.is_empty() => Ok(()),
            _ => Err(Errno::Efault),
        }
    }
}

/// The user memory a `KVM_S390_MEM_OP` call may touch: the buffer at `buf` and the
/// buffer at `old_addr` (cmpxchg only).
#[derive(Debug, Default)]
pub struct UserMemory<'a> {
    /// The buffer at `buf`: data to write, data read, or cmpxchg's new value.
    pub buf: UserBuffer<'a>,
    /// The buffer at `old_addr`: cmpxchg's compare value, rewritten per §7.
    pub old: UserBuffer<'a>,
}

impl<'a> UserMemory<'a> {
    /// `buf` mapped to `bytes`, `old_addr` unmapped.
    pub fn new(buf: &'a mut [u8]) -> Self {
        Self {
            buf: UserBuffer::Valid(buf),
            old: UserBuffer::Null,
        }
    }

    /// Both addresses unmapped.
    pub fn null() -> Self {
        Self::default()
    }

    /// `buf` and `old_addr` mapped (cmpxchg's new and old values).
    pub fn cmpxchg(new: &'a mut [u8], old: &'a mut [u8]) -> Self {
        Self {
            buf: UserBuffer::Valid(new),
            old: UserBuffer::Valid(old),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_are_all_or_nothing() {
        let mut b = [1u8, 2, 3];
        let mut u = UserBuffer::valid(&mut b);
        assert_eq!(u.copy_from(2), Ok(&[1u8, 2][..]));
        assert_eq!(u.copy_from(4), Err(Errno::Efault));
        assert_eq!(u.copy_to(&[9, 9, 9, 9]), Err(Errno::Efault));
        assert_eq!(u.copy_to(&[7]), Ok(()));
        assert_eq!(b, [7, 2, 3]);
        let mut n = UserBuffer::Null;
        assert_eq!(n.copy_to(&[1]), Err(Errno::Efault));
        assert_eq!(n.copy_to(&[]), Ok(()));
    }
}
