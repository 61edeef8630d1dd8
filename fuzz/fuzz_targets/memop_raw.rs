#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = s390_gaccess_fuzz::memop_raw::run(data);
});
