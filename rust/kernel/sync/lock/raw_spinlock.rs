// SPDX-License-Identifier: GPL-2.0

//! A kernel raw spinlock, held with interrupts disabled.
//!
//! This module allows Rust code to use the kernel's `raw_spinlock_t`. A raw spinlock spins on
//! every kernel configuration, including `PREEMPT_RT`, where a `spinlock_t` becomes a sleeping
//! lock. It is for the code that must not sleep even there: irq chip operations (which run with
//! the IRQ descriptor's raw lock held), low-level interrupt and scheduler code.
//!
//! Only the form that disables local interrupts is provided, with the refcounted interrupt
//! disabling of [`SpinLockIrq`](super::spinlock::SpinLockIrq) (`raw_spin_lock_irq_disable()`):
//! such code runs in interrupt context or alongside it.
//!
//! A raw spinlock embedded in a C structure is used through [`Lock::from_raw`].

use super::*;

/// Creates a [`RawSpinLockIrq`] initialiser with the given name and a newly-created lock class.
///
/// It uses the name if one is given, otherwise it generates one based on the file name and line
/// number.
#[macro_export]
macro_rules! new_raw_spinlock_irq {
    ($inner:expr $(, $name:literal)? $(,)?) => {
        $crate::sync::RawSpinLockIrq::new(
            $inner, $crate::optional_name!($($name)?), $crate::static_lock_class!())
    };
}
pub use new_raw_spinlock_irq;

/// A raw spinlock held with local interrupts disabled.
///
/// Exposes the kernel's [`raw_spinlock_t`], locked with `raw_spin_lock_irq_disable()`: while it
/// is held, local interrupts are off, and they come back on (if they were on before) when the last
/// of the locks held this way on the CPU is released.
///
/// # Examples
///
/// ```
/// use kernel::sync::{new_raw_spinlock_irq, RawSpinLockIrq};
///
/// #[pin_data]
/// struct Counter {
///     #[pin]
///     n: RawSpinLockIrq<u32>,
/// }
///
/// let c = KBox::pin_init(pin_init!(Counter { n <- new_raw_spinlock_irq!(1) }), GFP_KERNEL)?;
/// *c.n.lock() += 1;
/// assert_eq!(*c.n.lock(), 2);
/// {
///     let _held = c.n.lock();
///     // Held: a second attempt fails rather than spin.
///     assert!(c.n.try_lock().is_none());
/// }
/// assert!(c.n.try_lock().is_some());
/// # Ok::<(), Error>(())
/// ```
///
/// A lock that C code embeds in a structure of its own, and initialised:
///
/// ```
/// use kernel::{bindings, sync::RawSpinLockIrq};
///
/// /// Bumps a counter under the lock that C code keeps next to it.
/// ///
/// /// # Safety
/// ///
/// /// `lock` is an initialised `raw_spinlock_t` that protects `*count`; both stay valid.
/// unsafe fn bump(lock: *mut bindings::raw_spinlock_t, count: *mut u32) {
///     // SAFETY: The caller passes an initialised lock that outlives this call.
///     let lock = unsafe { RawSpinLockIrq::<()>::from_raw(lock) };
///     let _guard = lock.lock();
///     // SAFETY: `count` is valid, and protected by the lock held.
///     unsafe { *count += 1 };
/// }
/// ```
///
/// [`raw_spinlock_t`]: srctree/include/linux/spinlock_types_raw.h
pub type RawSpinLockIrq<T> = super::Lock<T, RawSpinLockIrqBackend>;

/// A kernel `raw_spinlock_t` lock backend that disables local interrupts while it is held.
pub struct RawSpinLockIrqBackend;

/// A [`Guard`] acquired from locking a [`RawSpinLockIrq`].
///
/// It unlocks the lock and decrements the local processor's interrupt disablement refcount when
/// dropped.
pub type RawSpinLockIrqGuard<'a, T> = Guard<'a, T, RawSpinLockIrqBackend>;

// SAFETY: The underlying kernel `raw_spinlock_t` object ensures mutual exclusion. `relock` uses
// the default implementation that always calls the same locking method.
unsafe impl Backend for RawSpinLockIrqBackend {
    type State = bindings::raw_spinlock_t;
    type GuardState = ();

    #[inline]
    unsafe fn init(
        ptr: *mut Self::State,
        name: *const crate::ffi::c_char,
        key: *mut bindings::lock_class_key,
    ) {
        // SAFETY: The safety requirements ensure that `ptr` is valid for writes, and `name` and
        // `key` are valid for read indefinitely.
        unsafe { bindings::raw_spin_lock_init(ptr, name, key) }
    }

    #[inline]
    unsafe fn lock(ptr: *mut Self::State) -> Self::GuardState {
        // SAFETY: The safety requirements of this function ensure that `ptr` points to valid
        // memory, and that it has been initialised before.
        unsafe { bindings::raw_spin_lock_irq_disable(ptr) }
    }

    #[inline]
    unsafe fn unlock(ptr: *mut Self::State, _guard_state: &Self::GuardState) {
        // SAFETY: The safety requirements of this function ensure that `ptr` is valid and that the
        // caller is the owner of the lock.
        unsafe { bindings::raw_spin_unlock_irq_enable(ptr) }
    }

    #[inline]
    unsafe fn try_lock(ptr: *mut Self::State) -> Option<Self::GuardState> {
        // SAFETY: The `ptr` pointer is guaranteed to be valid and initialised before use.
        let result = unsafe { bindings::raw_spin_trylock_irq_disable(ptr) };

        if result != 0 {
            Some(())
        } else {
            None
        }
    }

    #[inline]
    unsafe fn assert_is_held(ptr: *mut Self::State) {
        // SAFETY: The `ptr` pointer is guaranteed to be valid and initialised before use.
        unsafe { bindings::raw_spin_assert_is_held(ptr) }
    }
}
