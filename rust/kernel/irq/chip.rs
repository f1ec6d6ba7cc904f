// SPDX-License-Identifier: GPL-2.0

//! Interrupt controller chips.
//!
//! C header: [`include/linux/irq.h`](srctree/include/linux/irq.h)
//!
//! An irq chip is what the generic IRQ layer calls to act on the controller behind an IRQ: mask
//! and unmask it, acknowledge it, end it, move it to other CPUs. A Rust implementation of a chip
//! implements [`Chip`]; [`ChipVtable::new`] builds the `struct irq_chip` from it, as a constant,
//! so that it can be a `static` that C code installs on its IRQs (`irq_set_chip_and_handler()`)
//! or looks at by name (the name shows in `/proc/interrupts`).
//!
//! Only the operations a chip implements are set in its `struct irq_chip`; the IRQ layer treats
//! the others as absent, as it does for a C chip that leaves them out.
//!
//! # Examples
//!
//! ```
//! use kernel::irq::chip::{Chip, ChipVtable, IrqData};
//! use kernel::sync::atomic::{Atomic, Relaxed};
//!
//! static MASKED: Atomic<u32> = Atomic::new(0);
//!
//! struct Counting;
//!
//! #[vtable]
//! impl Chip for Counting {
//!     const NAME: &'static CStr = c"counting";
//!
//!     fn mask(_irq: &IrqData) {
//!         MASKED.fetch_add(1, Relaxed);
//!     }
//! }
//!
//! static COUNTING_CHIP: ChipVtable = ChipVtable::new::<Counting>();
//!
//! // SAFETY: The chip is only read.
//! let chip = unsafe { &*COUNTING_CHIP.as_raw() };
//! assert!(chip.irq_mask.is_some());
//! assert!(chip.irq_unmask.is_none());
//! ```

use crate::{
    bindings,
    cpumask::Cpumask,
    error::{
        from_result,
        Result,
        VTABLE_DEFAULT_ERROR, //
    },
    ffi::{
        c_int,
        c_uint, //
    },
    prelude::*,
    str::as_char_ptr_in_const_context,
    types::Opaque,
};

/// The IRQ a chip operation is called for (`struct irq_data`).
///
/// # Invariants
///
/// `self.0` is a valid `struct irq_data`. A reference to one is only made for the duration of
/// a chip operation the IRQ layer calls, which serialises the operations of an IRQ under its
/// descriptor's lock (or otherwise, as the C contract of each operation says).
#[repr(transparent)]
pub struct IrqData(Opaque<bindings::irq_data>);

impl IrqData {
    /// Creates a reference to an `irq_data` the IRQ layer passed.
    ///
    /// # Safety
    ///
    /// `ptr` must be a valid `struct irq_data` for the lifetime `'a`.
    pub unsafe fn from_raw<'a>(ptr: *mut bindings::irq_data) -> &'a Self {
        // SAFETY: `IrqData` is a transparent wrapper of `irq_data`; the caller guarantees that
        // `ptr` is valid for `'a`.
        unsafe { &*ptr.cast() }
    }

    /// The raw `struct irq_data`.
    pub fn as_raw(&self) -> *mut bindings::irq_data {
        self.0.get()
    }

    /// The IRQ number (`irq_data::irq`).
    pub fn irq(&self) -> u32 {
        // SAFETY: `self.0` is valid (type invariant); an IRQ's number does not change.
        unsafe { (*self.0.get()).irq }
    }
}

/// How a chip took a new affinity ([`Chip::set_affinity`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AffinitySet {
    /// The IRQ layer records the new mask as the IRQ's affinity (`IRQ_SET_MASK_OK`).
    Ok,
    /// The chip recorded it itself (`IRQ_SET_MASK_OK_NOCOPY`).
    NoCopy,
    /// Done, including any change of the parent chips (`IRQ_SET_MASK_OK_DONE`).
    Done,
}

impl AffinitySet {
    fn to_raw(self) -> c_int {
        (match self {
            Self::Ok => bindings::IRQ_SET_MASK_OK,
            Self::NoCopy => bindings::IRQ_SET_MASK_OK_NOCOPY,
            Self::Done => bindings::IRQ_SET_MASK_OK_DONE,
        }) as c_int
    }
}

/// The operations of an interrupt controller chip (`struct irq_chip`).
///
/// Each is called by the IRQ layer, for an IRQ this chip was installed on, in the context its C
/// counterpart documents (most with the IRQ descriptor's raw lock held and interrupts off: they
/// must not sleep).
#[vtable]
pub trait Chip {
    /// The chip's name, shown in `/proc/interrupts`.
    const NAME: &'static CStr;

    /// Starts the IRQ up (`irq_startup`); returns what C's does (the IRQs pending, usually 0).
    fn startup(_irq: &IrqData) -> u32 {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// Shuts the IRQ down (`irq_shutdown`).
    fn shutdown(_irq: &IrqData) {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// Enables the IRQ (`irq_enable`).
    fn enable(_irq: &IrqData) {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// Disables the IRQ (`irq_disable`).
    fn disable(_irq: &IrqData) {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// Acknowledges the start of a new interrupt (`irq_ack`).
    fn ack(_irq: &IrqData) {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// Masks the IRQ (`irq_mask`).
    fn mask(_irq: &IrqData) {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// Masks and acknowledges the IRQ (`irq_mask_ack`).
    fn mask_ack(_irq: &IrqData) {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// Unmasks the IRQ (`irq_unmask`).
    fn unmask(_irq: &IrqData) {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// Ends the interrupt (`irq_eoi`).
    fn eoi(_irq: &IrqData) {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// Moves the IRQ to a CPU of `dest` (`irq_set_affinity`); `force` moves it even to a CPU
    /// that is not online.
    fn set_affinity(_irq: &IrqData, _dest: &Cpumask, _force: bool) -> Result<AffinitySet> {
        build_error!(VTABLE_DEFAULT_ERROR)
    }

    /// Raises the IRQ again in the chip (`irq_retrigger`); returns whether it did.
    fn retrigger(_irq: &IrqData) -> bool {
        build_error!(VTABLE_DEFAULT_ERROR)
    }
}

/// A `struct irq_chip` built from a [`Chip`], for a `static`.
///
/// # Invariants
///
/// The `irq_chip` holds `T::NAME` and a callback for each operation `T` implements, and nothing
/// else, for the `T` it was built from.
#[repr(transparent)]
pub struct ChipVtable(Opaque<bindings::irq_chip>);

// SAFETY: The `irq_chip` is a name and function pointers, set when it is built and never
// written after: the IRQ layer takes a `struct irq_chip *` (not const, for historical reasons)
// but only reads the chips it is given. Reading it from any thread is safe.
unsafe impl Sync for ChipVtable {}

impl ChipVtable {
    /// Builds the `struct irq_chip` of `T`.
    pub const fn new<T: Chip>() -> Self {
        Self(Opaque::new(bindings::irq_chip {
            name: as_char_ptr_in_const_context(T::NAME),
            irq_startup: if T::HAS_STARTUP {
                Some(startup_callback::<T>)
            } else {
                None
            },
            irq_shutdown: if T::HAS_SHUTDOWN {
                Some(shutdown_callback::<T>)
            } else {
                None
            },
            irq_enable: if T::HAS_ENABLE {
                Some(enable_callback::<T>)
            } else {
                None
            },
            irq_disable: if T::HAS_DISABLE {
                Some(disable_callback::<T>)
            } else {
                None
            },
            irq_ack: if T::HAS_ACK {
                Some(ack_callback::<T>)
            } else {
                None
            },
            irq_mask: if T::HAS_MASK {
                Some(mask_callback::<T>)
            } else {
                None
            },
            irq_mask_ack: if T::HAS_MASK_ACK {
                Some(mask_ack_callback::<T>)
            } else {
                None
            },
            irq_unmask: if T::HAS_UNMASK {
                Some(unmask_callback::<T>)
            } else {
                None
            },
            irq_eoi: if T::HAS_EOI {
                Some(eoi_callback::<T>)
            } else {
                None
            },
            irq_set_affinity: if T::HAS_SET_AFFINITY {
                Some(set_affinity_callback::<T>)
            } else {
                None
            },
            irq_retrigger: if T::HAS_RETRIGGER {
                Some(retrigger_callback::<T>)
            } else {
                None
            },
            // SAFETY: All-zero is a valid `irq_chip`: every other callback absent, no flags, no
            // parent device.
            ..unsafe { core::mem::zeroed() }
        }))
    }

    /// The `struct irq_chip`, for the C functions that install a chip on an IRQ.
    pub const fn as_raw(&self) -> *mut bindings::irq_chip {
        self.0.get()
    }
}

/// # Safety
///
/// `data` is a valid `irq_data` for the duration of the call (the IRQ layer's callback contract).
unsafe extern "C" fn startup_callback<T: Chip>(data: *mut bindings::irq_data) -> c_uint {
    // SAFETY: The IRQ layer passes a valid `irq_data` for the call.
    T::startup(unsafe { IrqData::from_raw(data) })
}

/// Defines the callbacks of the operations that take only the IRQ and return nothing.
macro_rules! void_callbacks {
    ($($callback:ident => $op:ident),* $(,)?) => {$(
        /// # Safety
        ///
        /// As [`startup_callback`].
        unsafe extern "C" fn $callback<T: Chip>(data: *mut bindings::irq_data) {
            // SAFETY: The IRQ layer passes a valid `irq_data` for the call.
            T::$op(unsafe { IrqData::from_raw(data) })
        }
    )*};
}

void_callbacks!(
    shutdown_callback => shutdown,
    enable_callback => enable,
    disable_callback => disable,
    ack_callback => ack,
    mask_callback => mask,
    mask_ack_callback => mask_ack,
    unmask_callback => unmask,
    eoi_callback => eoi,
);

/// # Safety
///
/// As [`startup_callback`]; `dest` is a valid cpumask for the duration of the call.
unsafe extern "C" fn set_affinity_callback<T: Chip>(
    data: *mut bindings::irq_data,
    dest: *const bindings::cpumask,
    force: bool,
) -> c_int {
    from_result(|| {
        // SAFETY: The IRQ layer passes a valid `irq_data` and cpumask for the call.
        let (irq, dest) = unsafe { (IrqData::from_raw(data), Cpumask::from_raw(dest)) };
        Ok(T::set_affinity(irq, dest, force)?.to_raw())
    })
}

/// # Safety
///
/// As [`startup_callback`].
unsafe extern "C" fn retrigger_callback<T: Chip>(data: *mut bindings::irq_data) -> c_int {
    // SAFETY: The IRQ layer passes a valid `irq_data` for the call.
    c_int::from(T::retrigger(unsafe { IrqData::from_raw(data) }))
}

#[macros::kunit_tests(rust_kernel_irq_chip)]
mod tests {
    use super::*;
    use crate::sync::atomic::{
        Atomic,
        Relaxed, //
    };

    /// What the test chip's operations saw: the last IRQ number, and how many calls.
    static LAST_IRQ: Atomic<u32> = Atomic::new(0);
    static CALLED: Atomic<u32> = Atomic::new(0);

    fn saw(irq: &IrqData) {
        LAST_IRQ.store(irq.irq(), Relaxed);
        CALLED.fetch_add(1, Relaxed);
    }

    struct Partial;

    #[vtable]
    impl Chip for Partial {
        const NAME: &'static CStr = c"rust-test-chip";

        fn mask(irq: &IrqData) {
            saw(irq);
        }

        fn unmask(irq: &IrqData) {
            saw(irq);
        }

        fn set_affinity(irq: &IrqData, dest: &Cpumask, force: bool) -> Result<AffinitySet> {
            saw(irq);
            if force {
                return Err(EINVAL);
            }
            Ok(if dest.empty() {
                AffinitySet::NoCopy
            } else {
                AffinitySet::Ok
            })
        }

        fn retrigger(irq: &IrqData) -> bool {
            saw(irq);
            irq.irq() % 2 == 0
        }
    }

    static PARTIAL: ChipVtable = ChipVtable::new::<Partial>();

    fn chip() -> &'static bindings::irq_chip {
        // SAFETY: The chip lives for ever and is only read here.
        unsafe { &*PARTIAL.as_raw() }
    }

    #[test]
    fn only_the_operations_implemented_are_set() {
        let c = chip();
        // SAFETY: The name is a NUL-terminated string that lives for ever.
        let name = unsafe { CStr::from_char_ptr(c.name) };
        assert_eq!(name.to_bytes(), b"rust-test-chip");
        assert!(c.irq_mask.is_some());
        assert!(c.irq_unmask.is_some());
        assert!(c.irq_set_affinity.is_some());
        assert!(c.irq_retrigger.is_some());
        assert!(c.irq_startup.is_none());
        assert!(c.irq_shutdown.is_none());
        assert!(c.irq_enable.is_none());
        assert!(c.irq_disable.is_none());
        assert!(c.irq_ack.is_none());
        assert!(c.irq_mask_ack.is_none());
        assert!(c.irq_eoi.is_none());
        assert!(c.irq_set_type.is_none());
    }

    #[test]
    fn callbacks_get_their_irq_and_answer_in_c_terms() -> Result {
        let data: Opaque<bindings::irq_data> = Opaque::zeroed();
        // SAFETY: `data` is a zeroed `irq_data` of this test's own.
        unsafe { (*data.get()).irq = 42 };
        let c = chip();
        CALLED.store(0, Relaxed);
        if let (Some(mask), Some(unmask)) = (c.irq_mask, c.irq_unmask) {
            // SAFETY: `data` is valid for the calls.
            unsafe { mask(data.get()) };
            assert_eq!(LAST_IRQ.load(Relaxed), 42);
            // SAFETY: As above.
            unsafe { (*data.get()).irq = 43 };
            // SAFETY: As above.
            unsafe { unmask(data.get()) };
            assert_eq!(LAST_IRQ.load(Relaxed), 43);
        }
        assert_eq!(CALLED.load(Relaxed), 2);

        let mut some = crate::cpumask::CpumaskVar::new_zero(GFP_KERNEL)?;
        let none = crate::cpumask::CpumaskVar::new_zero(GFP_KERNEL)?;
        some.set(crate::cpu::CpuId::current());
        if let Some(set_affinity) = c.irq_set_affinity {
            // SAFETY: `data` and the masks are valid for the calls.
            let r = unsafe {
                [
                    set_affinity(data.get(), some.as_raw(), false),
                    set_affinity(data.get(), none.as_raw(), false),
                    set_affinity(data.get(), some.as_raw(), true),
                ]
            };
            assert_eq!(
                r,
                [
                    bindings::IRQ_SET_MASK_OK as c_int,
                    bindings::IRQ_SET_MASK_OK_NOCOPY as c_int,
                    EINVAL.to_errno()
                ]
            );
        }
        if let Some(retrigger) = c.irq_retrigger {
            // SAFETY: `data` is valid for the calls; its IRQ is 43, odd.
            assert_eq!(unsafe { retrigger(data.get()) }, 0);
            // SAFETY: As above.
            unsafe { (*data.get()).irq = 44 };
            // SAFETY: As above.
            assert_eq!(unsafe { retrigger(data.get()) }, 1);
        }
        assert_eq!(CALLED.load(Relaxed), 7);
        Ok(())
    }
}
