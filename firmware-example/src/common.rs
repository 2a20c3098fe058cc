//! What every firmware of this example shares: the defmt logger over semihosting, a panic and a
//! HardFault handler that make QEMU exit with a failure code, and the exit itself.
//!
//! Included by each binary with `#[path]` so that the handlers are always linked in.

use cortex_m_rt::{ExceptionFrame, exception};
use cortex_m_semihosting::debug;
use defmt_semihosting as _;

/// Ends the QEMU run: exit code 0 if `ok`, 1 otherwise.
pub fn exit(ok: bool) -> ! {
    debug::exit(if ok {
        debug::EXIT_SUCCESS
    } else {
        debug::EXIT_FAILURE
    });
    // Only reached if no debugger/semihosting host is attached.
    loop {
        cortex_m::asm::bkpt();
    }
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    defmt::error!("panic: {}", defmt::Display2Format(info));
    exit(false)
}

#[exception]
unsafe fn HardFault(frame: &ExceptionFrame) -> ! {
    defmt::error!(
        "HardFault at pc={=u32:#010x} lr={=u32:#010x}",
        frame.pc(),
        frame.lr()
    );
    exit(false)
}

defmt::timestamp!("");
