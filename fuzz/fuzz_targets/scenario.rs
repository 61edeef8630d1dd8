#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    s390_gaccess_fuzz::scenario::run(data);
});
